"""Bounded waits: how long each kind of wait may take, and one bounded-poll primitive with backoff.

`bounded_retrying` is the one place that knows how a wait backs off and never sleeps past its
deadline; `poll_until` (wait for a condition), `retry_on` (retry chosen errors) and the registry's
health wait are built on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_result, stop_after_delay, wait_exponential

from provisioning.errors import WaitTimeout

T = TypeVar("T")
Progress = Callable[[str], None]  # one line of text: "<step>: <what is happening>"


@dataclass(frozen=True)
class Waits:
    """Deadlines (seconds) and the first poll interval; tests shrink them, real AWS needs them."""

    profile_propagation: float = 90.0
    instance_terminated: float = 300.0
    security_group_release: float = 180.0
    poll_interval: float = 2.0
    max_interval: float = 15.0

    def poll(
        self, what: str, check: Callable[[], tuple[bool, str]], timeout: float, progress: Progress | None, step: str
    ) -> str:
        """poll_until with these intervals."""
        return poll_until(
            what,
            check,
            timeout=timeout,
            interval=self.poll_interval,
            max_interval=self.max_interval,
            progress=progress,
            step=step,
        )

    def retry(
        self,
        what: str,
        call: Callable[[], T],
        should_retry: Callable[[BaseException], bool],
        timeout: float,
        progress: Progress | None,
        step: str,
    ) -> T:
        """retry_on with these intervals."""
        return retry_on(
            what,
            call,
            should_retry,
            timeout=timeout,
            interval=self.poll_interval,
            max_interval=self.max_interval,
            progress=progress,
            step=step,
        )


class Deadline:
    """A monotonic deadline `timeout` seconds from now."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.started = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def remaining(self) -> float:
        return max(0.0, self.timeout - self.elapsed)


def bounded_retrying(
    deadline: Deadline,
    *,
    interval: float,
    max_interval: float,
    retry: Any,
    before_sleep: Callable[[RetryCallState], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs: Any,
) -> Retrying:
    """A tenacity Retrying that backs off exponentially from `interval` to `max_interval`, stops at the
    deadline, and never sleeps past it (the last attempt happens at the deadline, not after it)."""
    backoff = wait_exponential(multiplier=interval, min=interval, max=max_interval)

    def wait(state: RetryCallState) -> float:
        return min(backoff(state), deadline.remaining)

    return Retrying(
        retry=retry,
        stop=stop_after_delay(deadline.timeout),
        wait=wait,
        before_sleep=before_sleep,
        sleep=sleep,
        **kwargs,
    )


def poll_until(
    what: str,
    check: Callable[[], tuple[bool, str]],
    *,
    timeout: float,
    interval: float,
    max_interval: float = 15.0,
    progress: Progress | None = None,
    step: str = "",
) -> str:
    """Call `check` (returns done, what it saw) with backoff until done, for at most `timeout` seconds.
    Returns what was last seen; raises WaitTimeout with it."""
    deadline = Deadline(timeout)
    seen = [""]

    def attempt() -> bool:
        done, seen[0] = check()
        return done

    def report(state: RetryCallState) -> None:
        if progress is not None:
            progress(f"{step}: waiting for {what}: {seen[0]} ({deadline.elapsed:.0f}s of {timeout:.0f}s)")

    done = bounded_retrying(
        deadline,
        interval=interval,
        max_interval=max_interval,
        retry=retry_if_result(lambda ok: not ok),
        before_sleep=report,
        retry_error_callback=lambda state: False,
    )(attempt)
    if not done:
        raise WaitTimeout(what, deadline.elapsed, seen[0])
    return seen[0]


def retry_on(
    what: str,
    call: Callable[[], T],
    should_retry: Callable[[BaseException], bool],
    *,
    timeout: float,
    interval: float,
    max_interval: float = 15.0,
    progress: Progress | None = None,
    step: str = "",
) -> T:
    """Call `call`, retrying (with backoff, for at most `timeout` seconds) the errors `should_retry`
    accepts; any other error, or the last one at the deadline, propagates."""
    deadline = Deadline(timeout)

    def should(state: RetryCallState) -> bool:
        if state.outcome is None or not state.outcome.failed:
            return False
        error = state.outcome.exception()
        return error is not None and should_retry(error)

    def report(state: RetryCallState) -> None:
        if progress is not None and state.outcome is not None:
            progress(f"{step}: retrying {what}: {state.outcome.exception()} ({deadline.elapsed:.0f}s)")

    retrying = bounded_retrying(
        deadline, interval=interval, max_interval=max_interval, retry=should, before_sleep=report, reraise=True
    )
    result: T = retrying(call)
    return result
