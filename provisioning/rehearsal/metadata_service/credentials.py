"""The instance profile role's credentials, as ``iam/security-credentials/<role>`` answers them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from provisioning.rehearsal.metadata_service.tree import iso, json_leaf

#: role credentials are assumed again this long before they expire (as EC2 rotates them early)
CREDENTIALS_REFRESH_SECONDS = 300.0


class RoleCredentials:
    """Credentials from ``sts:AssumeRole`` per role, kept until shortly before they expire."""

    def __init__(self, sts: Callable[[], Any], session_name: str, clock: Callable[[], float]) -> None:
        """``sts()`` returns the STS client (moto's server); ``session_name`` names the assumed sessions."""
        self._sts = sts
        self._session_name = session_name
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[dict[str, Any], float]] = {}

    def document(self, role_arn: str) -> str:
        """The JSON leaf of ``role_arn``'s credentials, assumed again when near their expiry."""
        now = self._clock()
        with self._lock:
            cached = self._cache.get(role_arn)
        if cached is None or now >= cached[1] - CREDENTIALS_REFRESH_SECONDS:
            credentials = self._sts().assume_role(RoleArn=role_arn, RoleSessionName=self._session_name)["Credentials"]
            expiration = credentials["Expiration"]
            if not isinstance(expiration, datetime):
                expiration = datetime.fromisoformat(str(expiration).replace("Z", "+00:00"))
            document = {
                "Code": "Success",
                "LastUpdated": iso(now),
                "Type": "AWS-HMAC",
                "AccessKeyId": credentials["AccessKeyId"],
                "SecretAccessKey": credentials["SecretAccessKey"],
                "Token": credentials["SessionToken"],
                "Expiration": iso(expiration),
            }
            cached = (document, expiration.timestamp())
            with self._lock:
                self._cache[role_arn] = cached
        return json_leaf(cached[0])
