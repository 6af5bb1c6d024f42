"""An EC2 Instance Metadata Service (IMDS) for one instance of moto's, served over HTTP.

The box (a container playing the instance) reaches this service where an instance reaches
169.254.169.254: cloud-init's Ec2 datasource, botocore's ``InstanceMetadataFetcher`` (the AWS CLI)
and curl read it. Every answer is read from moto on the request (``describe_instances`` and friends),
so it follows the instance: a stopped instance's public address disappears here as it does in EC2.

IMDS semantics kept: IMDSv2 session tokens (``PUT /latest/api/token``, TTL 1..21600 seconds, a PUT
with ``X-Forwarded-For`` refused) and the instance's ``MetadataOptions.HttpTokens`` deciding whether a
GET without a token is answered; any version prefix (``/latest/``, ``/2009-04-04/``, ...);
directory listings one entry a line, sub-directories with a trailing ``/``, a directory named
without its slash answering its listing; role credentials from ``sts:AssumeRole`` on the instance
profile's role; ``spot/instance-action`` only while an interruption is scheduled; ``text/plain``
everywhere and ``Server: EC2ws``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeAlias, cast

log = logging.getLogger("spotreg.rehearsal.metadata")

TOKEN_PATH = "/latest/api/token"  # noqa: S105 (a path, not a secret)
TOKEN_HEADER = "X-aws-ec2-metadata-token"  # noqa: S105 (a header name)
TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"  # noqa: S105 (a header name)
VERSIONS = ("2009-04-04", "2016-09-02", "2018-09-24", "2021-03-23", "latest")
INTERRUPTION_ACTIONS = frozenset({"stop", "terminate", "hibernate"})
DEFAULT_ACCOUNT_ID = "123456789012"
#: the MAC address answered when moto's record has no network interface (a locally administered one)
FALLBACK_MAC = "02:00:00:00:00:01"
#: role credentials are assumed again this long before they expire (as EC2 rotates them early)
CREDENTIALS_REFRESH_SECONDS = 300.0

_VERSION_PATH = re.compile(r"^/(latest|\d{4}-\d{2}-\d{2})(?:/(.*))?$")
_TTL = re.compile(r"[0-9]{1,6}")

#: a tree node: a leaf (text or bytes), a directory (keys of sub-directories end with "/"), or
#: either one computed only when a request reaches it (None: absent)
Node: TypeAlias = "str | bytes | dict[str, Node] | Callable[[], Node | None]"


@dataclass(frozen=True)
class Answer:
    """One HTTP response of the service."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def _text(status: int, text: str, **headers: str) -> Answer:
    return Answer(status, text.encode(), dict(headers))


_BAD_REQUEST = _text(400, "400 - Bad Request")
_UNAUTHORIZED = _text(401, "401 - Unauthorized")
_FORBIDDEN = _text(403, "403 - Forbidden")
_NOT_FOUND = _text(404, "404 - Not Found")
_NOT_ALLOWED = _text(405, "405 - Method Not Allowed", Allow="GET, HEAD, PUT")


def _iso(moment: datetime | float) -> str:
    """``2026-01-02T03:04:05Z``: the timestamp format of IMDS's JSON leaves."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(document: Mapping[str, Any]) -> str:
    """A JSON leaf laid out as IMDS does (indented, ``"key" : value``)."""
    return json.dumps(document, indent=2, separators=(",", " : "))


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
        self._tokens: dict[str, float] = {}
        self._credentials: dict[str, tuple[dict[str, Any], float]] = {}
        self._interruption: tuple[str, float] | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- serving -------------------------------------------------------------------------------

    def serve(self, listener: socket.socket) -> None:
        """Serve HTTP on ``listener`` (bound and listening) from a daemon thread."""
        if self._server is not None:
            raise RuntimeError("the metadata service is already serving")
        server = _Server(listener.getsockname()[:2], _Handler, bind_and_activate=False)
        server.socket.close()  # the one the constructor made: the listener replaces it
        server.socket = listener
        server.service = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="imds", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving and close the listening socket (idle keep-alive connections time out)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

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
            return _text(500, f"500 - Internal Server Error: {type(error).__name__}: {error}")

    def _answer(self, method: str, path: str, headers: Mapping[str, str]) -> Answer:
        if method == "PUT":
            return self._put_token(headers) if path == TOKEN_PATH else _NOT_ALLOWED
        if method not in ("GET", "HEAD"):
            return _NOT_ALLOWED
        now = self._clock()
        token = headers.get(TOKEN_HEADER.lower())
        expires: float | None = None
        if token is not None:
            with self._lock:
                expires = self._tokens.get(token)
            if expires is None or expires <= now:
                return _UNAUTHORIZED
        reservation, instance = self._describe()
        options = instance.get("MetadataOptions") or {}
        if options.get("HttpEndpoint", "enabled") == "disabled":
            return _FORBIDDEN
        if token is None and options.get("HttpTokens", "optional") == "required":
            return _UNAUTHORIZED
        extra = {TOKEN_TTL_HEADER: str(int(expires - now))} if expires is not None else {}
        if path == "/":
            return _text(200, "\n".join(VERSIONS), **extra)
        match = _VERSION_PATH.match(path)
        if match is None:
            return _NOT_FOUND
        parts = [part for part in (match.group(2) or "").split("/") if part]
        user_data = self._user_data() if not parts or parts[0] == "user-data" else None
        tree = self._tree(reservation, instance, user_data)
        node = _resolve(tree, parts)
        if node is None:
            return _NOT_FOUND
        if isinstance(node, dict):
            entries = list(node) if parts else [key.rstrip("/") for key in node]  # "/latest/": no slashes
            return _text(200, "\n".join(entries), **extra)
        body = node if isinstance(node, bytes) else node.encode()
        return Answer(200, body, extra)

    def _put_token(self, headers: Mapping[str, str]) -> Answer:
        if "x-forwarded-for" in headers:
            return _FORBIDDEN
        _, instance = self._describe()
        if (instance.get("MetadataOptions") or {}).get("HttpEndpoint", "enabled") == "disabled":
            return _FORBIDDEN
        ttl_text = headers.get(TOKEN_TTL_HEADER.lower(), "").strip()
        if not _TTL.fullmatch(ttl_text) or not 1 <= int(ttl_text) <= self.token_ttl_max:
            return _BAD_REQUEST
        ttl = int(ttl_text)
        token = base64.b64encode(secrets.token_bytes(42)).decode()
        now = self._clock()
        with self._lock:
            self._tokens = {known: end for known, end in self._tokens.items() if end > now}
            self._tokens[token] = now + ttl
        return _text(200, token, **{TOKEN_TTL_HEADER: str(ttl)})

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

    def _iam_info(self, instance: Mapping[str, Any]) -> str:
        profile = self._profile(instance)
        return _json(
            {
                "Code": "Success",
                "LastUpdated": _iso(self._clock()),
                "InstanceProfileArn": profile["Arn"],
                "InstanceProfileId": profile["InstanceProfileId"],
            }
        )

    def _role_credentials(self, instance: Mapping[str, Any]) -> dict[str, Node]:
        roles = self._profile(instance).get("Roles") or []
        if not roles:
            return {}
        role = roles[0]
        return {str(role["RoleName"]): lambda: self._credentials_document(str(role["Arn"]))}

    def _credentials_document(self, role_arn: str) -> str:
        now = self._clock()
        with self._lock:
            cached = self._credentials.get(role_arn)
        if cached is None or now >= cached[1] - CREDENTIALS_REFRESH_SECONDS:
            _, _, sts = self._aws()
            credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName=self.instance_id)["Credentials"]
            expiration = credentials["Expiration"]
            if not isinstance(expiration, datetime):
                expiration = datetime.fromisoformat(str(expiration).replace("Z", "+00:00"))
            document = {
                "Code": "Success",
                "LastUpdated": _iso(now),
                "Type": "AWS-HMAC",
                "AccessKeyId": credentials["AccessKeyId"],
                "SecretAccessKey": credentials["SecretAccessKey"],
                "Token": credentials["SessionToken"],
                "Expiration": _iso(expiration),
            }
            cached = (document, expiration.timestamp())
            with self._lock:
                self._credentials[role_arn] = cached
        return _json(cached[0])

    def _account_id(self, reservation: Mapping[str, Any]) -> str:
        if reservation.get("OwnerId"):
            return str(reservation["OwnerId"])
        _, _, sts = self._aws()
        return str(sts.get_caller_identity().get("Account") or DEFAULT_ACCOUNT_ID)

    def _identity_document(self, reservation: Mapping[str, Any], instance: Mapping[str, Any]) -> str:
        return _json(
            {
                "accountId": self._account_id(reservation),
                "architecture": instance.get("Architecture") or "x86_64",
                "availabilityZone": (instance.get("Placement") or {}).get("AvailabilityZone"),
                "billingProducts": None,
                "devpayProductCodes": None,
                "marketplaceProductCodes": None,
                "imageId": instance.get("ImageId"),
                "instanceId": self.instance_id,
                "instanceType": instance.get("InstanceType"),
                "kernelId": None,
                "pendingTime": _iso(instance["LaunchTime"]) if instance.get("LaunchTime") else None,
                "privateIp": instance.get("PrivateIpAddress"),
                "ramdiskId": None,
                "region": self.region,
                "version": "2017-09-30",
            }
        )

    def _tree(
        self, reservation: Mapping[str, Any], instance: Mapping[str, Any], user_data: bytes | None
    ) -> dict[str, Node]:
        interfaces = instance.get("NetworkInterfaces") or []
        leaves: dict[str, Node | None] = {
            "ami-id": instance.get("ImageId"),
            "ami-launch-index": _optional_str(instance.get("AmiLaunchIndex")),
            "hostname": instance.get("PrivateDnsName") or None,
            "instance-id": self.instance_id,
            "instance-life-cycle": "spot" if instance.get("InstanceLifecycle") == "spot" else "on-demand",
            "instance-type": instance.get("InstanceType"),
            "local-hostname": instance.get("PrivateDnsName") or None,
            "local-ipv4": instance.get("PrivateIpAddress"),
            "mac": (interfaces[0].get("MacAddress") if interfaces else None) or FALLBACK_MAC,
            "network/": {"interfaces/": {"macs/": _macs(instance)}},
            "placement/": _present(
                {"availability-zone": (instance.get("Placement") or {}).get("AvailabilityZone"), "region": self.region}
            ),
            "public-hostname": instance.get("PublicDnsName") or None,
            "public-ipv4": instance.get("PublicIpAddress"),
            "reservation-id": reservation.get("ReservationId"),
            "security-groups": "\n".join(g["GroupName"] for g in instance.get("SecurityGroups") or []) or None,
            "services/": {"domain": "amazonaws.com", "partition": "aws"},
        }
        if instance.get("IamInstanceProfile"):
            leaves["iam/"] = {
                "info": lambda: self._iam_info(instance),
                "security-credentials/": lambda: self._role_credentials(instance),
            }
        with self._lock:
            interruption = self._interruption
        if interruption is not None:
            action, moment = interruption
            leaves["spot/"] = {"instance-action": json.dumps({"action": action, "time": _iso(moment)})}
        root: dict[str, Node] = {
            "dynamic/": {"instance-identity/": {"document": lambda: self._identity_document(reservation, instance)}},
            "meta-data/": _present(dict(sorted(leaves.items()))),
        }
        if user_data is not None:
            root["user-data"] = user_data
        return root


def _macs(instance: Mapping[str, Any]) -> dict[str, Node]:
    """``network/interfaces/macs/``: one directory per interface, as cloud-init's network config reads it."""
    interfaces = instance.get("NetworkInterfaces") or [
        {"MacAddress": FALLBACK_MAC, "PrivateIpAddress": instance.get("PrivateIpAddress"), "Attachment": {}}
    ]
    macs: dict[str, Node] = {}
    for interface in interfaces:
        mac = interface.get("MacAddress") or FALLBACK_MAC
        public = (interface.get("Association") or {}).get("PublicIp") or instance.get("PublicIpAddress")
        entries: dict[str, Node | None] = {
            "device-number": str((interface.get("Attachment") or {}).get("DeviceIndex", 0)),
            "interface-id": interface.get("NetworkInterfaceId"),
            "local-ipv4s": interface.get("PrivateIpAddress"),
            "mac": mac,
            "owner-id": interface.get("OwnerId"),
            "public-ipv4s": public,
            "subnet-id": interface.get("SubnetId"),
            "vpc-id": interface.get("VpcId"),
        }
        macs[f"{mac}/"] = _present(entries)
    return macs


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _present(directory: Mapping[str, Node | None]) -> dict[str, Node]:
    """``directory`` without its entries whose value is absent (None)."""
    return {key: value for key, value in directory.items() if value is not None}


def _resolve(tree: dict[str, Node], parts: list[str]) -> str | bytes | dict[str, Node] | None:
    """The node at ``parts`` below ``tree``; a directory is found with or without its slash."""
    node: Node | None = tree
    for part in parts:
        node = _force(node)
        if not isinstance(node, dict):
            return None
        node = node[part] if part in node else node.get(f"{part}/")
    return _force(node)


def _force(node: Node | None) -> str | bytes | dict[str, Node] | None:
    """``node`` computed, if it is computed on demand."""
    while callable(node):
        node = node()
    return node


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # close() must not wait for clients' idle keep-alive connections
    service: MetadataService


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections end after this

    def version_string(self) -> str:
        return "EC2ws"

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: ``MetadataService.requests`` records every request."""

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > 0:
            self.rfile.read(length)  # a body nobody reads would be taken for the next request
        service = cast(_Server, self.server).service
        headers = {name.lower(): value for name, value in self.headers.items()}
        answer = service.answer(self.command, self.path, headers)
        service._record(self.command, self.path, answer.status)  # before the client sees the answer
        self.send_response(answer.status)
        self.send_header("Content-Type", "text/plain")
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = _dispatch
