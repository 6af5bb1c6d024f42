"""The teardown helper (harness.teardown): actions run once, last first, whatever ends the run; signals
interrupt the run and wait for the teardown; a child that owns its teardown is waited for."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.teardown import RunInterrupted, TeardownRegistry, not_ignored, run_to_the_end


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_interrupts_the_run_and_the_teardown_runs_once(signum):
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    said: list[str] = []
    ran: list[str] = []
    registry = TeardownRegistry(say=said.append)
    registry.register("first made", lambda: ran.append("first"))

    def last_made() -> None:
        ran.append("last")
        signal.raise_signal(signum)  # a second signal during the teardown: ignored, the teardown goes on

    registry.register("last made", last_made)

    with pytest.raises(RunInterrupted) as caught, registry.armed():
        assert registry.handlers_installed
        signal.raise_signal(signum)
        time.sleep(5)  # never reached: the handler interrupts here
        pytest.fail("the signal did not interrupt the run")

    assert caught.value.signum == signum
    assert ran == ["last", "first"]  # last registered, first undone; each once
    assert registry.pending == () and all(r.error is None for r in registry.results)
    assert any("the teardown is under way" in line for line in said)
    assert {s: signal.getsignal(s) for s in before} == before
    assert not registry.handlers_installed


def test_a_failing_teardown_action_does_not_stop_the_others():
    ran: list[str] = []
    registry = TeardownRegistry()
    registry.register("bucket", lambda: ran.append("bucket"))
    registry.register("instance", lambda: 1 / 0)

    results = registry.run()
    registry.close()

    assert ran == ["bucket"]
    assert [(r.name, r.error is None) for r in results] == [("instance", False), ("bucket", True)]
    assert "ZeroDivisionError" in str(results[0])


def test_disarm_keeps_everything():
    ran: list[str] = []
    registry = TeardownRegistry()
    registry.register("down", lambda: ran.append("down"))
    assert registry.disarm() == ("down",)
    assert registry.run() == [] and ran == []
    registry.close()


def test_a_background_jobs_ignored_sigint_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert not_ignored((signal.SIGTERM, signal.SIGINT)) == (signal.SIGTERM,)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert not_ignored((signal.SIGTERM, signal.SIGINT)) == (signal.SIGTERM, signal.SIGINT)


def test_run_to_the_end_returns_the_childs_status_and_says_nothing(capsys):
    said: list[str] = []
    code = run_to_the_end([sys.executable, "-c", "raise SystemExit(4)"], {}, said.append, what="the test")
    assert code == 4
    assert said == []
    assert signal.getsignal(signal.SIGTERM) is not None


CHILD = textwrap.dedent(
    """
    import pathlib, signal, sys, time
    out = pathlib.Path(sys.argv[1])
    def torn_down(signum, frame):
        time.sleep(0.5)  # its own teardown takes a while: the parent must wait for it
        out.write_text("torn down")
        sys.exit(3)
    signal.signal(signal.SIGTERM, torn_down)
    out.with_suffix(".ready").write_text("")
    time.sleep(30)
    """
)
PARENT = textwrap.dedent(
    """
    import os, sys
    from harness.teardown import run_to_the_end
    code = run_to_the_end([sys.executable, "-c", sys.argv[1], sys.argv[2]], os.environ, print, what="the test")
    print(f"child exited {code}", flush=True)
    """
)


def test_sigterm_is_passed_to_the_child_and_its_teardown_awaited(tmp_path: Path):
    out = tmp_path / "child.txt"
    repo = Path(__file__).resolve().parents[2]
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, CHILD, str(out)], cwd=repo, stdout=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while not out.with_suffix(".ready").exists():
            assert parent.poll() is None and time.monotonic() < deadline, "the child never started"
            time.sleep(0.05)
        parent.send_signal(signal.SIGTERM)
        output, _ = parent.communicate(timeout=30)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    assert parent.returncode == 0, output
    assert "SIGTERM: interrupting the test to tear it down" in output
    assert "child exited 3" in output
    assert out.read_text() == "torn down"
