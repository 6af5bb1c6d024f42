"""``MetadataService``: IMDS for one instance of moto's, every answer read from moto on the request."""

from __future__ import annotations

import base64
import binascii
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

from provisioning.rehearsal.metadata_service import answer
from provisioning.rehearsal.metadata_service.answer import Answer
from provisioning.rehearsal.metadata_service.credentials import RoleCredentials
from provisioning.rehearsal.metadata_service.server import HttpServer
from provisioning.rehearsal.metadata_service.tokens import TOKEN_HEADER, TOKEN_PATH, TOKEN_TTL_HEADER, SessionTokens
from provisioning.rehearsal.metadata_service.tree import (
    VERSIONS,
    Node,
    iam_info,
    identity_document,
    instance_tree,
    resolve,
)

log = logging.getLogger("spotreg.rehearsal.metadata")

INTERRUPTION_ACTIONS = frozenset({"stop", "terminate", "hibernate"})
DEFAULT_ACCOUNT_ID = "123456789012"

_VERSION_PATH = re.compile(r"^/(latest|\d{4}-\d{2}-\d{2})(?:/(.*))?$")


class MetadataService:
    """IMDS for ``instance_id`` of moto's; ``serve`` it on a listening socket, ``close`` it after."""

    def __init__(
        self,
        clients_factory: Callable[[], tuple[Any, Any, Any]],
        instance_id: str,
        *,
        region: str,
        token_ttl_max: int = 21600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``clients_factory()`` returns boto3 clients (ec2, iam, sts) for moto's server; it is called once."""
        self.instance_id = instance_id
        self.region = region
        self.token_ttl_max = token_ttl_max
        self.requests: list[tuple[str, str, int]] = []
        self._clients_factory = clients_factory
        self._clock = clock
        self._lock = threading.Lock()
        self._clients: tuple[Any, Any, Any] | None = None
        self._tokens = SessionTokens()
        self._credentials = RoleCredentials(lambda: self._aws()[2], instance_id, clock)
        self._interruption: tuple[str, float] | None = None
        self._server: HttpServer | None = None

    # -- serving -------------------------------------------------------------------------------

    def serve(self, listener: socket.socket) -> None:
        """Serve HTTP on ``listener`` (bound and listening) from a daemon thread."""
        if self._server is not None:
            raise RuntimeError("the metadata service is already serving")
        self._server = HttpServer(listener, self.answer, self._record)

    def close(self) -> None:
        """Stop serving and close the listening socket (idle keep-alive connections time out)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()

    def schedule_interruption(self, action: str = "stop", after_seconds: float = 120) -> None:
        """Make ``spot/instance-action`` announce ``action`` at ``after_seconds`` from now."""
        if action not in INTERRUPTION_ACTIONS:
            raise ValueError(f"interruption action must be one of {sorted(INTERRUPTION_ACTIONS)}, not {action!r}")
        with self._lock:
            self._interruption = (action, self._clock() + after_seconds)

    def clear_interruption(self) -> None:
        """No interruption scheduled: ``spot/instance-action`` answers 404 again."""
        with self._lock:
            self._interruption = None

    def _record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.requests.append((method, path, status))

    # -- requests ------------------------------------------------------------------------------

    def answer(self, method: str, path: str, headers: Mapping[str, str]) -> Answer:
        """The response to one request (``headers`` keyed in lower case); never raises."""
        try:
            return self._answer(method, path.split("?", 1)[0], headers)
        except Exception as error:
            log.exception("metadata service: %s %s failed", method, path)
            return answer.text(500, f"500 - Internal Server Error: {type(error).__name__}: {error}")

    def _answer(self, method: str, path: str, headers: Mapping[str, str]) -> Answer:
        if method == "PUT":
            return self._put_token(headers) if path == TOKEN_PATH else answer.NOT_ALLOWED
        if method not in ("GET", "HEAD"):
            return answer.NOT_ALLOWED
        now = self._clock()
        token = headers.get(TOKEN_HEADER.lower())
        expires: float | None = None
        if token is not None:
            expires = self._tokens.expiry(token)
            if expires is None or expires <= now:
                return answer.UNAUTHORIZED
        reservation, instance = self._describe()
        options = instance.get("MetadataOptions") or {}
        if options.get("HttpEndpoint", "enabled") == "disabled":
            return answer.FORBIDDEN
        if token is None and options.get("HttpTokens", "optional") == "required":
            return answer.UNAUTHORIZED
        extra = {TOKEN_TTL_HEADER: str(int(expires - now))} if expires is not None else {}
        if path == "/":
            return answer.text(200, "\n".join(VERSIONS), **extra)
        match = _VERSION_PATH.match(path)
        if match is None:
            return answer.NOT_FOUND
        parts = [part for part in (match.group(2) or "").split("/") if part]
        user_data = self._user_data() if not parts or parts[0] == "user-data" else None
        node = resolve(self._tree(reservation, instance, user_data), parts)
        if node is None:
            return answer.NOT_FOUND
        if isinstance(node, dict):
            entries = list(node) if parts else [key.rstrip("/") for key in node]  # "/latest/": no slashes
            return answer.text(200, "\n".join(entries), **extra)
        body = node if isinstance(node, bytes) else node.encode()
        return Answer(200, body, extra)

    def _put_token(self, headers: Mapping[str, str]) -> Answer:
        if "x-forwarded-for" in headers:
            return answer.FORBIDDEN
        _, instance = self._describe()
        if (instance.get("MetadataOptions") or {}).get("HttpEndpoint", "enabled") == "disabled":
            return answer.FORBIDDEN
        issued = self._tokens.issue(headers.get(TOKEN_TTL_HEADER.lower(), ""), self.token_ttl_max, self._clock())
        if issued is None:
            return answer.BAD_REQUEST
        token, ttl = issued
        return answer.text(200, token, **{TOKEN_TTL_HEADER: str(ttl)})

    # -- moto's records ------------------------------------------------------------------------

    def _aws(self) -> tuple[Any, Any, Any]:
        with self._lock:
            if self._clients is None:
                self._clients = self._clients_factory()
            return self._clients

    def _describe(self) -> tuple[dict[str, Any], dict[str, Any]]:
        ec2, _, _ = self._aws()
        reservations = ec2.describe_instances(InstanceIds=[self.instance_id])["Reservations"]
        for reservation in reservations:
            for instance in reservation["Instances"]:
                if instance["InstanceId"] == self.instance_id:
                    return reservation, instance
        raise LookupError(f"describe_instances returned no record of {self.instance_id}")

    def _user_data(self) -> bytes | None:
        ec2, _, _ = self._aws()
        attribute = ec2.describe_instance_attribute(InstanceId=self.instance_id, Attribute="userData")
        value = (attribute.get("UserData") or {}).get("Value")
        if not value:
            return None
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error:
            return str(value).encode()  # not base64: moto kept what it was sent

    def _profile(self, instance: Mapping[str, Any]) -> dict[str, Any]:
        _, iam, _ = self._aws()
        name = str(instance["IamInstanceProfile"]["Arn"]).rsplit("/", 1)[-1]
        return cast(dict[str, Any], iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"])

    def _role_credentials(self, instance: Mapping[str, Any]) -> dict[str, Node]:
        roles = self._profile(instance).get("Roles") or []
        if not roles:
            return {}
        role = roles[0]
        return {str(role["RoleName"]): lambda: self._credentials.document(str(role["Arn"]))}

    def _account_id(self, reservation: Mapping[str, Any]) -> str:
        if reservation.get("OwnerId"):
            return str(reservation["OwnerId"])
        _, _, sts = self._aws()
        return str(sts.get_caller_identity().get("Account") or DEFAULT_ACCOUNT_ID)

    def _tree(
        self, reservation: Mapping[str, Any], instance: Mapping[str, Any], user_data: bytes | None
    ) -> dict[str, Node]:
        iam: Node | None = None
        if instance.get("IamInstanceProfile"):
            iam = {
                "info": lambda: iam_info(self._profile(instance), self._clock()),
                "security-credentials/": lambda: self._role_credentials(instance),
            }
        with self._lock:
            interruption = self._interruption
        return instance_tree(
            reservation,
            instance,
            region=self.region,
            user_data=user_data,
            iam=iam,
            identity_document=lambda: identity_document(
                instance, account_id=self._account_id(reservation), region=self.region
            ),
            interruption=interruption,
        )
