"""Bounded waits: how long each kind of wait may take, and one polling helper with backoff."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

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
    started = time.monotonic()
    seen = [""]

    def attempt() -> bool:
        done, seen[0] = check()
        return done

    backoff = wait_exponential(multiplier=interval, min=interval, max=max_interval)

    def wait(state: RetryCallState) -> float:
        return max(0.0, min(backoff(state), timeout - (time.monotonic() - started)))

    def report(state: RetryCallState) -> None:
        if progress is not None:
            progress(f"{step}: waiting for {what}: {seen[0]} ({time.monotonic() - started:.0f}s of {timeout:.0f}s)")

    done = Retrying(
        retry=retry_if_result(lambda ok: not ok),
        stop=stop_after_delay(timeout),
        wait=wait,
        before_sleep=report,
        retry_error_callback=lambda state: False,
    )(attempt)
    if not done:
        raise WaitTimeout(what, time.monotonic() - started, seen[0])
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
    started = time.monotonic()
    backoff = wait_exponential(multiplier=interval, min=interval, max=max_interval)

    def wait(state: RetryCallState) -> float:
        return max(0.0, min(backoff(state), timeout - (time.monotonic() - started)))

    def should(state: RetryCallState) -> bool:
        if state.outcome is None or not state.outcome.failed:
            return False
        error = state.outcome.exception()
        return error is not None and should_retry(error)

    def report(state: RetryCallState) -> None:
        if progress is not None and state.outcome is not None:
            progress(f"{step}: retrying {what}: {state.outcome.exception()} ({time.monotonic() - started:.0f}s)")

    result: T = Retrying(retry=should, stop=stop_after_delay(timeout), wait=wait, before_sleep=report, reraise=True)(
        call
    )
    return result
