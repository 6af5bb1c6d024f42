"""Every smoke check in order, and their verdicts: one line per check."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from harness.smoke.access import check_anonymous_refused, check_auth_challenge
from harness.smoke.result import ANONYMOUS_REFUSED, AUTH_CHALLENGE, ROUND_TRIP, TLS_CHAIN, CheckResult
from harness.smoke.round_trip import check_round_trip
from harness.smoke.target import SmokeTarget
from harness.smoke.tls import check_tls_chain

CHECKS: tuple[tuple[str, Callable[[SmokeTarget], CheckResult]], ...] = (
    (TLS_CHAIN, check_tls_chain),
    (AUTH_CHALLENGE, check_auth_challenge),
    (ANONYMOUS_REFUSED, check_anonymous_refused),
    (ROUND_TRIP, check_round_trip),
)


def run_smoke(target: SmokeTarget) -> list[CheckResult]:
    """Every check, in order; each one runs whatever the others said."""
    return [check(target) for _name, check in CHECKS]


def format_verdicts(results: Sequence[CheckResult]) -> str:
    """One line per check: ``PASS tls-chain: 87 days left ...``."""
    return "\n".join(result.line() for result in results)


def smoke_passed(results: Sequence[CheckResult]) -> bool:
    """No check failed (a skipped check is not a failure)."""
    return all(result.passed is not False for result in results)
