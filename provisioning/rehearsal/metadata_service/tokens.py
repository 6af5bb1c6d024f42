"""IMDSv2 session tokens: issued by ``PUT /latest/api/token`` for a TTL of 1..max seconds."""

from __future__ import annotations

import base64
import re
import secrets
import threading

TOKEN_PATH = "/latest/api/token"  # noqa: S105 (a path, not a secret)
TOKEN_HEADER = "X-aws-ec2-metadata-token"  # noqa: S105 (a header name)
TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"  # noqa: S105 (a header name)

_TTL = re.compile(r"[0-9]{1,6}")


class SessionTokens:
    """The tokens issued so far and when each expires (expired ones are dropped at the next issue)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._expiries: dict[str, float] = {}

    def issue(self, ttl_text: str, ttl_max: int, now: float) -> tuple[str, int] | None:
        """A new token and its TTL, or None when ``ttl_text`` is not a whole number in 1..``ttl_max``."""
        ttl_text = ttl_text.strip()
        if not _TTL.fullmatch(ttl_text) or not 1 <= int(ttl_text) <= ttl_max:
            return None
        ttl = int(ttl_text)
        token = base64.b64encode(secrets.token_bytes(42)).decode()
        with self._lock:
            self._expiries = {known: end for known, end in self._expiries.items() if end > now}
            self._expiries[token] = now + ttl
        return token, ttl

    def expiry(self, token: str) -> float | None:
        """When ``token`` expires; None if it was never issued (or dropped after expiring)."""
        with self._lock:
            return self._expiries.get(token)
