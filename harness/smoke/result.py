"""A smoke check's verdict, and the checks' names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TLS_CHAIN = "tls-chain"
AUTH_CHALLENGE = "auth-challenge"
ANONYMOUS_REFUSED = "anonymous-refused"
ROUND_TRIP = "round-trip"
CHECK_NAMES: tuple[str, ...] = (TLS_CHAIN, AUTH_CHALLENGE, ANONYMOUS_REFUSED, ROUND_TRIP)


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict: ``passed`` is True, False, or None when the check was skipped."""

    name: str
    passed: bool | None
    detail: str

    @property
    def skipped(self) -> bool:
        return self.passed is None

    @property
    def verdict(self) -> Literal["PASS", "FAIL", "SKIP"]:
        if self.passed is None:
            return "SKIP"
        return "PASS" if self.passed else "FAIL"

    def line(self) -> str:
        """``PASS tls-chain: 87 days left ...``."""
        return f"{self.verdict} {self.name}: {self.detail}"
