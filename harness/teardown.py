"""Teardown that runs however a run ends: at its end, on an error, on Ctrl-C (SIGINT) or SIGTERM.

One helper for every harness run that makes things it must remove (a live run, ``spotreg verify``'s
pytest child, a benchmark):

- ``TeardownRegistry``: actions registered before what they undo exists, run once, last registered
  first; while armed, a signal interrupts the run (``RunInterrupted``, raised in the main thread where
  the run was) so that the teardown in the caller's ``finally`` happens. The handlers never undo
  anything themselves (an interrupted call may hold a lock the teardown's calls need). A second signal,
  or one during the teardown, is reported and ignored: the teardown finishes.
- ``run_to_the_end``: a child process that owns its teardown (pytest and its finalizers), waited for
  whatever signal arrives; SIGTERM is passed on to it.
- ``not_ignored``: the signals a process should handle (a shell's background job ignores SIGINT).
"""

from __future__ import annotations

import atexit
import contextlib
import signal
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from provisioning.errors import SpotregError

SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)
LIVE_RUN = "the live run"
AFTER_KILL = "kill -9 leaves the rest to the sweeper"

Say = Callable[[str], None]


class RunInterrupted(KeyboardInterrupt):
    """SIGTERM or SIGINT arrived during a run: raised where the run was, so that its teardown runs as
    it unwinds (a KeyboardInterrupt: pytest stops the session and runs its finalizers)."""

    def __init__(self, signum: int, what: str = LIVE_RUN) -> None:
        self.signum = signum
        super().__init__(f"{signal.Signals(signum).name}: {what} was interrupted; tearing it down")


@dataclass(frozen=True)
class TeardownResult:
    name: str
    error: str | None = None

    def __str__(self) -> str:
        return f"{self.name}: " + ("done" if self.error is None else f"FAILED: {self.error}")


class TeardownError(SpotregError):
    """Some teardown action failed (the others still ran); says which, and how to finish by hand."""

    def __init__(self, results: Sequence[TeardownResult], hint: str | None = None) -> None:
        self.results = tuple(results)
        failures = "; ".join(str(r) for r in self.results if r.error is not None)
        super().__init__(f"teardown incomplete: {failures}", hint=hint)


def not_ignored(signals: Iterable[int]) -> tuple[int, ...]:
    """The signals of `signals` this process does not ignore (a shell's background job ignores SIGINT,
    and should go on ignoring it)."""
    return tuple(s for s in signals if signal.getsignal(s) is not signal.SIG_IGN)


class TeardownRegistry:
    """Actions that undo a run, registered before what they undo exists.

    `run()` runs each action once, last registered first; a failing action does not stop the others.
    `install_signal_handlers()` makes each of `signals` interrupt the run (RunInterrupted, raised in the
    main thread wherever it is) so that the `run()` in the caller's ``finally`` / finalizer happens. A
    second signal, or one during the teardown, is reported and ignored (`after_kill` says what a kill -9
    would leave). `restore_signal_handlers()` puts the previous handlers back. Actions still pending when
    the interpreter exits run then (atexit). `what` names the run in what is said.
    """

    def __init__(
        self,
        say: Say | None = None,
        signals: Sequence[int] = SIGNALS,
        *,
        what: str = LIVE_RUN,
        after_kill: str = AFTER_KILL,
    ) -> None:
        self._say = say or (lambda line: None)
        self._signals = tuple(signals)
        self._what = what
        self._after_kill = after_kill
        self._actions: list[tuple[str, Callable[[], object]]] = []
        self._previous: dict[int, Any] = {}
        self._running = False
        self.interrupted: int | None = None
        self.results: list[TeardownResult] = []
        self._exit_hook = False

    @property
    def pending(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self._actions)

    @property
    def handlers_installed(self) -> bool:
        """Whether this registry's handler is the one in place for each of its signals."""
        return bool(self._previous) and all(signal.getsignal(s) == self._on_signal for s in self._signals)

    def register(self, name: str, action: Callable[[], object]) -> None:
        self._actions.append((name, action))
        if not self._exit_hook:
            atexit.register(self._at_exit)
            self._exit_hook = True

    def install_signal_handlers(self) -> None:
        """Handle the signals until restore_signal_handlers (main thread only, as Python requires)."""
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("signal handlers can only be installed from the main thread")
        for signum in self._signals:
            if signum not in self._previous:
                self._previous[signum] = signal.signal(signum, self._on_signal)

    def restore_signal_handlers(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self._running or self.interrupted is not None:
            self._say(f"{name} again: the teardown is under way and will finish ({self._after_kill})")
            return
        self.interrupted = signum
        self._say(f"{name}: interrupting {self._what} to tear it down")
        raise RunInterrupted(signum, self._what)

    def disarm(self) -> tuple[str, ...]:
        """Drop every pending action (the resources are kept on purpose); returns their names."""
        kept = self.pending
        self._actions.clear()
        return kept

    def run(self) -> list[TeardownResult]:
        """Run every pending action once, last registered first; returns what each did."""
        self._running = True
        results: list[TeardownResult] = []
        try:
            while self._actions:
                name, action = self._actions.pop()
                self._say(f"teardown: {name}")
                try:
                    action()
                except Exception as error:  # one failing action must not keep the others from running
                    results.append(TeardownResult(name, f"{type(error).__name__}: {error}"))
                    self._say(f"teardown: {name} FAILED: {error}")
                else:
                    results.append(TeardownResult(name))
        finally:
            self._running = False
        self.results.extend(results)
        return results

    def close(self) -> None:
        """Restore the signal handlers and forget the exit hook (after run() or disarm())."""
        self.restore_signal_handlers()
        if self._exit_hook:
            atexit.unregister(self._at_exit)
            self._exit_hook = False

    def _at_exit(self) -> None:
        if self._actions:
            self._say("exiting with teardown actions pending: running them now")
            self.run()

    @contextlib.contextmanager
    def armed(self) -> Iterator[TeardownRegistry]:
        """Signal handlers installed for the block; on leaving it (however), run and restore."""
        self.install_signal_handlers()
        try:
            yield self
        finally:
            try:
                self.run()
            finally:
                self.close()


def run_to_the_end(
    command: Sequence[str], env: Mapping[str, str], say: Say, *, what: str, cwd: Path | None = None
) -> int:
    """Run `command` and wait for it even when interrupted: its own finalizers tear down what it made.

    Ctrl-C reaches the child from the terminal too (same process group); SIGTERM is passed on to it.
    Either way the wait goes on until the child has ended; its exit status is returned. `cwd`: where
    the child runs (this process's directory when None).
    """
    child = subprocess.Popen(list(command), env=dict(env), cwd=cwd)
    teardown = TeardownRegistry(say, what=what, after_kill="kill -9 leaves the child without its teardown")

    def wait_for_the_child() -> None:
        if teardown.interrupted == signal.SIGTERM:
            child.send_signal(signal.SIGTERM)
        child.wait()

    teardown.register("waiting for the tests' teardown", wait_for_the_child)
    with contextlib.suppress(RunInterrupted), teardown.armed():
        child.wait()
        teardown.disarm()  # it ended by itself: nothing to wait for
    return child.wait()
