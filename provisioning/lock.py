"""One writer at a time: the deployment's lock, an SSM parameter created only if absent (atomic in AWS,
so it works across machines: a laptop and a CI job at once), released on exit, lapsing after LOCK_TTL
when its holder died without releasing it."""

from __future__ import annotations

import getpass
import json
import os
import secrets
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

from botocore.exceptions import ClientError

from provisioning.errors import LockHeld
from provisioning.tags import aws_tags, is_code

LOCK_TTL = timedelta(minutes=60)  # longer than any `up` or `down` takes (their waits are bounded)
_STAMP = "%Y-%m-%dT%H:%M:%SZ"


def whoami(command: str) -> str:
    """Who holds the lock, in words: user, host, process and command."""
    return f"{getpass.getuser()}@{socket.gethostname()} (pid {os.getpid()}, spotreg {command})"


class DeploymentLock:
    """`with DeploymentLock(...)`: held for the block; LockHeld when another run holds it."""

    def __init__(
        self,
        ssm: Any,
        parameter: str,
        holder: str,
        *,
        tags: dict[str, str],
        now: Callable[[], datetime],
        say: Callable[[str], None],
    ) -> None:
        self.ssm, self.parameter, self.holder, self.tags, self.now, self.say = ssm, parameter, holder, tags, now, say
        self.token = secrets.token_hex(8)

    def _value(self) -> str:
        since = self.now().astimezone(UTC)
        return json.dumps(
            {
                "holder": self.holder,
                "since": since.strftime(_STAMP),
                "expires": (since + LOCK_TTL).strftime(_STAMP),
                "token": self.token,
            }
        )

    def _create(self) -> bool:
        try:
            self.ssm.put_parameter(
                Name=self.parameter,
                Value=self._value(),
                Type="String",
                Overwrite=False,
                Description="spotreg: the run that is changing this deployment",
                Tags=aws_tags(self.tags),
            )
        except ClientError as error:
            if is_code(error, "ParameterAlreadyExists"):
                return False
            raise
        return True

    def _current(self) -> dict[str, str] | None:
        try:
            value = self.ssm.get_parameter(Name=self.parameter)["Parameter"]["Value"]
        except ClientError as error:
            if is_code(error, "ParameterNotFound"):
                return None
            raise
        try:
            found = json.loads(value)
        except ValueError:
            found = {}
        return {k: str(found.get(k, "?")) for k in ("holder", "since", "expires", "token")}

    def __enter__(self) -> DeploymentLock:
        for _ in range(2):  # a second try after a stale lock was removed (or released meanwhile)
            if self._create():
                return self
            held = self._current()
            if held is None:
                continue
            try:
                expired = datetime.strptime(held["expires"], _STAMP).replace(tzinfo=UTC) <= self.now()
            except ValueError:
                expired = True  # unreadable: no run could have written it
            if not expired:
                raise LockHeld(self.parameter, held["holder"], held["since"], held["expires"])
            self.say(f"lock: taking over the lapsed lock of {held['holder']} (expired {held['expires']})")
            self.ssm.delete_parameter(Name=self.parameter)
        held = self._current() or {"holder": "another run", "since": "?", "expires": "?"}
        raise LockHeld(self.parameter, held["holder"], held["since"], held["expires"])

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        held = self._current()
        if held is not None and held["token"] == self.token:
            self.ssm.delete_parameter(Name=self.parameter)
