"""The live tier (``pytest suites/live --live --config FILE``): one run against real AWS per session.

The run itself is ``fixtures.live_aws`` (the ``live_run`` fixture); the root conftest skips these tests
without ``--live``. The tests are the run's phases in order and share one deployment, so they run in one
process: under pytest-xdist they stop with the reason instead of provisioning one deployment per worker.
"""

from __future__ import annotations

import os

import pytest

from harness.refusal import record_refusal


@pytest.fixture(scope="session", autouse=True)
def _one_process_per_live_run(pytestconfig: pytest.Config) -> None:
    if pytestconfig.getoption("--live") and os.environ.get("PYTEST_XDIST_WORKER"):
        reason = "the live tier runs its phases in order on one deployment: run it without -n (pytest-xdist)"
        record_refusal(reason)
        pytest.exit(
            reason,
            returncode=pytest.ExitCode.USAGE_ERROR,
        )
