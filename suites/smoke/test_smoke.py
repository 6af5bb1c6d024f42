"""The smoke tier: one test per check of a deployed registry (harness.smoke).

Each test fails with the check's one-line verdict (``FAIL auth-challenge: ...``) as its message.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.smoke import (
    CheckResult,
    SmokeTarget,
    check_anonymous_refused,
    check_auth_challenge,
    check_round_trip,
    check_tls_chain,
)

pytestmark = pytest.mark.smoke


def verdict(result: CheckResult, record_verdict: Callable[[CheckResult], None]) -> None:
    """Skip a skipped check with its reason; otherwise assert it passed, the verdict as the message.
    Every verdict is also listed in the "smoke verdicts" section at the end of the run."""
    record_verdict(result)
    if result.skipped:
        pytest.skip(result.line())
    assert result.passed, result.line()


def test_tls_chain(smoke_target: SmokeTarget, record_verdict: Callable[[CheckResult], None]) -> None:
    verdict(check_tls_chain(smoke_target), record_verdict)


def test_auth_challenge(smoke_target: SmokeTarget, record_verdict: Callable[[CheckResult], None]) -> None:
    verdict(check_auth_challenge(smoke_target), record_verdict)


def test_anonymous_refused(smoke_target: SmokeTarget, record_verdict: Callable[[CheckResult], None]) -> None:
    verdict(check_anonymous_refused(smoke_target), record_verdict)


def test_round_trip(smoke_target: SmokeTarget, record_verdict: Callable[[CheckResult], None]) -> None:
    verdict(check_round_trip(smoke_target), record_verdict)
