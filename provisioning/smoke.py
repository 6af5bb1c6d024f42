"""Pre-deploy smoke checks of a deployed registry, over HTTP(S) with ``requests`` only (no AWS, no Docker).

Four checks, each a function of a ``SmokeTarget`` returning a ``CheckResult`` with a short verdict:

- ``check_tls_chain``: the server's chain verifies and its leaf certificate has more than N days left;
- ``check_auth_challenge``: ``GET /v2/`` without credentials answers 401 with a Basic or Bearer challenge;
- ``check_anonymous_refused``: anonymous ``GET /v2/_catalog`` and an anonymous blob upload are refused;
- ``check_round_trip``: push a tiny unique image through the Registry HTTP API v2, pull it back, compare
  digests, and delete it again where the registry allows deletes.

``run_smoke`` runs them all and ``format_verdicts`` prints one line per check. The pytest suite
(``suites/smoke``) and ``python -m provisioning.smoke`` both build their target with ``target_from_environ``:
credentials come from ``SPOTREG_SMOKE_USER`` / ``SPOTREG_SMOKE_PASSWORD``, never from the command line.

Every request has a timeout; only failures to connect are retried (a few times, with a short backoff).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import ipaddress
import json
import os
import secrets
import socket
import ssl
import sys
import tarfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import urljoin, urlsplit

import requests
from cryptography import x509
from cryptography.x509.oid import NameOID
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, NewConnectionError
from urllib3.util.retry import Retry

USER_ENV = "SPOTREG_SMOKE_USER"
PASSWORD_ENV = "SPOTREG_SMOKE_PASSWORD"  # noqa: S105 - the variable's name, not a password
DEFAULT_MIN_CERT_DAYS = 14

TLS_CHAIN = "tls-chain"
AUTH_CHALLENGE = "auth-challenge"
ANONYMOUS_REFUSED = "anonymous-refused"
ROUND_TRIP = "round-trip"
CHECK_NAMES: tuple[str, ...] = (TLS_CHAIN, AUTH_CHALLENGE, ANONYMOUS_REFUSED, ROUND_TRIP)

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
IMAGE_CONFIG = "application/vnd.docker.container.image.v1+json"
LAYER_TAR_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
SMOKE_NAMESPACE = "spotreg-smoke"

LOOPBACK_V4 = ipaddress.ip_network("127.0.0.0/8")
REFUSED_STATUSES = frozenset({401, 403})
_DEFAULT_PORTS = {"https": 443, "http": 80}
_SECONDS_PER_DAY = 86400.0


class SmokeConfigError(ValueError):
    """A smoke target that cannot be checked as given (the message says which field and why)."""


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


def _split_endpoint(endpoint: str) -> tuple[str, int | None]:
    """``HOST``, ``HOST:PORT``, ``[V6]`` or ``[V6]:PORT`` -> (host, port or None)."""
    if not endpoint or endpoint != endpoint.strip():
        raise SmokeConfigError(f"endpoint {endpoint!r}: expected HOST[:PORT]")
    if "://" in endpoint or "/" in endpoint or "@" in endpoint:
        raise SmokeConfigError(
            f"endpoint {endpoint!r}: expected HOST[:PORT] without scheme, path or user "
            "(https is the default; plain http needs the loopback-only insecure flag)"
        )
    host, port_text = endpoint, None
    if endpoint.startswith("["):
        close = endpoint.find("]")
        rest = endpoint[close + 1 :] if close >= 0 else ""
        if close < 0 or (rest and not rest.startswith(":")):
            raise SmokeConfigError(f"endpoint {endpoint!r}: expected [IPV6] or [IPV6]:PORT")
        host, port_text = endpoint[1:close], (rest[1:] if rest else None)
    elif endpoint.count(":") == 1:
        host, port_text = endpoint.split(":")
    elif endpoint.count(":") > 1:
        raise SmokeConfigError(f"endpoint {endpoint!r}: write an IPv6 address in brackets, [::1]:5000")
    if not host:
        raise SmokeConfigError(f"endpoint {endpoint!r}: the host is empty")
    if port_text is None:
        return host, None
    if not port_text:
        raise SmokeConfigError(f"endpoint {endpoint!r}: the port is empty")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise SmokeConfigError(f"endpoint {endpoint!r}: port {port_text!r} is not a number in 1..65535")
    return host, int(port_text)


def system_ca_location() -> str | None:
    """OpenSSL's default CA file (or directory), honouring SSL_CERT_FILE / SSL_CERT_DIR, if it exists."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.capath):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _is_loopback_v4(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.version == 4 and address in LOOPBACK_V4


@dataclass(frozen=True)
class SmokeTarget:
    """A deployed registry to check: ``endpoint`` is ``HOST[:PORT]`` (port 443 for https by default).

    ``ca_file`` is a PEM bundle to verify the server against instead of the system CAs. Plain ``http``
    is accepted only for an address in 127.0.0.0/8 and only with ``insecure_http=True``: anything a
    Docker engine reaches beyond loopback must speak TLS.
    """

    endpoint: str
    username: str
    password: str = field(repr=False)
    ca_file: Path | None = None
    min_cert_days: int = DEFAULT_MIN_CERT_DAYS
    scheme: Literal["https", "http"] = "https"
    insecure_http: bool = False
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    connect_retries: int = 2

    def __post_init__(self) -> None:
        host, _port = _split_endpoint(self.endpoint)
        if self.scheme not in _DEFAULT_PORTS:
            raise SmokeConfigError(f"scheme {self.scheme!r}: expected 'https' (or 'http' on loopback)")
        if self.scheme == "http":
            if not self.insecure_http:
                raise SmokeConfigError(
                    f"scheme 'http' for {self.endpoint}: plain http needs the explicit insecure flag "
                    "(--smoke-insecure-http), and is allowed only on 127.0.0.0/8"
                )
            if not _is_loopback_v4(host):
                raise SmokeConfigError(
                    f"endpoint {self.endpoint!r}: plain http is allowed only for an address in 127.0.0.0/8; "
                    "anything else must use https"
                )
        if self.ca_file is not None and not Path(self.ca_file).is_file():
            raise SmokeConfigError(f"ca_file {str(self.ca_file)!r}: no such file")
        if self.min_cert_days < 0:
            raise SmokeConfigError(f"min_cert_days {self.min_cert_days}: must be 0 or more")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise SmokeConfigError("timeouts must be positive")
        if self.connect_retries < 0:
            raise SmokeConfigError(f"connect_retries {self.connect_retries}: must be 0 or more")

    @property
    def host(self) -> str:
        return _split_endpoint(self.endpoint)[0]

    @property
    def port(self) -> int:
        return _split_endpoint(self.endpoint)[1] or _DEFAULT_PORTS[self.scheme]

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def verify(self) -> bool | str:
        """What ``requests`` verifies the server with: the CA file, or the system CAs (the same ones
        ``check_tls_chain`` uses, rather than the ``certifi`` bundle requests would pick)."""
        if self.ca_file is not None:
            return str(self.ca_file)
        return system_ca_location() or True

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"


def target_from_environ(
    endpoint: str,
    *,
    ca_file: Path | str | None = None,
    min_cert_days: int = DEFAULT_MIN_CERT_DAYS,
    insecure_http: bool = False,
    environ: Mapping[str, str] | None = None,
) -> SmokeTarget:
    """The target the CLI and pytest paths check; credentials from SPOTREG_SMOKE_USER/_PASSWORD.

    Missing credentials are not an error here: the anonymous checks still run, and the round trip
    fails saying which variables to set.
    """
    env = os.environ if environ is None else environ
    return SmokeTarget(
        endpoint=endpoint,
        username=env.get(USER_ENV, ""),
        password=env.get(PASSWORD_ENV, ""),
        ca_file=Path(ca_file) if ca_file is not None else None,
        min_cert_days=min_cert_days,
        scheme="http" if insecure_http else "https",
        insecure_http=insecure_http,
    )


# --- HTTP plumbing -------------------------------------------------------------------------------------


def _session(target: SmokeTarget, *, authenticated: bool) -> requests.Session:
    """A session that retries failures to connect only (never a request the server may have seen)."""
    session = requests.Session()
    retry = Retry(
        total=None,
        connect=target.connect_retries,
        read=0,
        status=0,
        other=0,
        redirect=0,
        allowed_methods=None,
        backoff_factor=0.3,
        raise_on_redirect=False,
        raise_on_status=False,
    )
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.verify = target.verify
    session.trust_env = False  # no proxies or netrc credentials from the environment
    session.headers["User-Agent"] = "spotreg-smoke/1"
    if authenticated:
        session.auth = (target.username, target.password)
    return session


@contextmanager
def _open_session(target: SmokeTarget, *, authenticated: bool) -> Iterator[requests.Session]:
    session = _session(target, authenticated=authenticated)
    try:
        yield session
    finally:
        session.close()


def _innermost(error: BaseException) -> BaseException:
    """The reason under requests' and urllib3's wrappers (MaxRetryError(... reason=SSLError(...)))."""
    seen: set[int] = set()
    current: BaseException = error
    while id(current) not in seen:
        seen.add(id(current))
        inner: object = None
        if isinstance(current, MaxRetryError):
            inner = current.reason
        elif current.args and isinstance(current.args[0], BaseException):
            inner = current.args[0]
        if not isinstance(inner, BaseException):
            break
        current = inner
    return current


def _attempts(target: SmokeTarget) -> str:
    return f" ({target.connect_retries + 1} attempts)" if target.connect_retries else ""


def _plain_http_hint(reason: str) -> str:
    return " (is the server speaking plain http?)" if "WRONG_VERSION_NUMBER" in reason else ""


def describe_error(target: SmokeTarget, error: BaseException) -> str:
    """A short sentence for a failed request: TLS, refused connection, timeout."""
    where = f"{target.host}:{target.port}"
    inner = _innermost(error)
    if isinstance(error, requests.exceptions.SSLError) or isinstance(inner, ssl.SSLError):
        if isinstance(inner, ssl.SSLCertVerificationError):
            return f"TLS to {where} failed: {inner.verify_message}"
        reason = getattr(inner, "reason", None) or str(inner)
        return f"TLS to {where} failed: {reason}{_plain_http_hint(str(reason))}"
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return f"cannot connect to {where}: no answer in {target.connect_timeout:g} s{_attempts(target)}"
    if isinstance(error, requests.exceptions.ReadTimeout):
        return f"{where} accepted the connection but sent no answer in {target.read_timeout:g} s"
    if isinstance(error, requests.exceptions.ConnectionError) and isinstance(inner, NewConnectionError):
        text = str(inner).split(": ", 1)[-1]
        return f"cannot connect to {where}{_attempts(target)}: {text}"
    if isinstance(error, requests.exceptions.ConnectionError):
        return f"the connection to {where} broke: {inner}"
    return f"request to {where} failed: {type(error).__name__}: {error}"


def _error_code(response: requests.Response) -> str:
    """The registry's error code(s) from a JSON error body (``UNAUTHORIZED``), or ``""``."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    errors = body.get("errors")
    if not isinstance(errors, list):
        return ""
    codes = [str(item.get("code")) for item in errors if isinstance(item, dict) and item.get("code")]
    return ",".join(codes)


def _answer(response: requests.Response) -> str:
    """``401 UNAUTHORIZED`` / ``200``: the status and the registry's error code, if any."""
    code = _error_code(response)
    return f"{response.status_code} {code}".rstrip()


# --- 1. TLS chain and certificate lifetime ------------------------------------------------------------


def _peer_certificate_der(target: SmokeTarget, context: ssl.SSLContext) -> bytes:
    """The leaf certificate the server presents, after a handshake with ``context``.

    Retries failures to connect (refused, timed out); never a TLS failure, which is the answer.
    """
    attempts = target.connect_retries + 1
    for attempt in range(attempts):
        try:
            with (
                socket.create_connection((target.host, target.port), timeout=target.connect_timeout) as raw,
                context.wrap_socket(raw, server_hostname=target.host) as tls,
            ):
                der = tls.getpeercert(binary_form=True)
                if not der:
                    raise ssl.SSLError("the server presented no certificate")
                return der
        except ssl.SSLError:
            raise
        except OSError:
            if attempt + 1 >= attempts:
                raise
            time.sleep(0.3 * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _unverified_context() -> ssl.SSLContext:
    """For reading the certificate of a server whose chain did not verify (to say when it expires)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else certificate.subject.rfc4514_string() or "(no subject)"


def _lifetime(certificate: x509.Certificate, now: datetime) -> tuple[float, str]:
    """(days left, negative once expired; the expiry as ``2025-03-01 12:00 UTC``)."""
    expires = certificate.not_valid_after_utc
    return (expires - now).total_seconds() / _SECONDS_PER_DAY, expires.strftime("%Y-%m-%d %H:%M UTC")


def _days(days: float) -> str:
    whole = int(days)
    return f"{whole} day" if whole == 1 else f"{whole} days"


def _lifetime_phrase(days: float, expires: str) -> str:
    if days < 0:
        return f"leaf certificate expired {expires} ({_days(-days)} ago)"
    return f"{_days(days)} left (expires {expires})"


def check_tls_chain(target: SmokeTarget, *, now: datetime | None = None) -> CheckResult:
    """The chain verifies against the system CAs or ``ca_file``, for the endpoint's host name, and
    the leaf certificate has more than ``min_cert_days`` left. Skipped for plain http."""
    if target.scheme == "http":
        return CheckResult(TLS_CHAIN, None, f"plain http to {target.endpoint} (loopback, insecure flag): no TLS")
    now = now or datetime.now(UTC)
    where = f"{target.host}:{target.port}"
    trust = f"CA file {target.ca_file}" if target.ca_file is not None else "the system CAs"
    context = ssl.create_default_context(cafile=str(target.ca_file) if target.ca_file is not None else None)
    try:
        der = _peer_certificate_der(target, context)
    except ssl.SSLCertVerificationError as error:
        detail = f"chain does not verify against {trust}: {error.verify_message}"
        try:
            leaf = x509.load_der_x509_certificate(_peer_certificate_der(target, _unverified_context()))
        except (OSError, ValueError):
            return CheckResult(TLS_CHAIN, False, detail)
        days, expires = _lifetime(leaf, now)
        return CheckResult(TLS_CHAIN, False, f"{detail}; {_lifetime_phrase(days, expires)}")
    except ssl.SSLError as error:
        reason = error.reason or str(error)
        return CheckResult(TLS_CHAIN, False, f"TLS handshake with {where} failed: {reason}{_plain_http_hint(reason)}")
    except OSError as error:
        return CheckResult(TLS_CHAIN, False, f"cannot connect to {where}{_attempts(target)}: {error}")
    leaf = x509.load_der_x509_certificate(der)
    days, expires = _lifetime(leaf, now)
    if days <= target.min_cert_days:
        return CheckResult(
            TLS_CHAIN,
            False,
            f"{_lifetime_phrase(days, expires)}: fewer than the {target.min_cert_days} required "
            f"(leaf {_common_name(leaf)!r}); renew the certificate",
        )
    return CheckResult(
        TLS_CHAIN,
        True,
        f"{_lifetime_phrase(days, expires)}, more than {target.min_cert_days} required; "
        f"chain of {_common_name(leaf)!r} verifies against {trust}",
    )


# --- 2. the auth challenge -----------------------------------------------------------------------------


def check_auth_challenge(target: SmokeTarget) -> CheckResult:
    """``GET /v2/`` without credentials answers 401 with ``WWW-Authenticate: Basic|Bearer realm=...``."""
    with _open_session(target, authenticated=False) as session:
        try:
            response = session.get(target.url("/v2/"), timeout=target.timeout, allow_redirects=False)
        except requests.RequestException as error:
            return CheckResult(AUTH_CHALLENGE, False, describe_error(target, error))
    challenge = response.headers.get("WWW-Authenticate", "")
    scheme = challenge.split(" ", 1)[0].lower()
    if response.status_code != 401:
        hint = ": registry auth is off" if response.status_code == 200 else ""
        return CheckResult(
            AUTH_CHALLENGE, False, f"GET /v2/ without credentials answered {_answer(response)}, not 401{hint}"
        )
    if scheme not in ("basic", "bearer") or "realm=" not in challenge.lower():
        shown = repr(challenge) if challenge else "no WWW-Authenticate header"
        return CheckResult(
            AUTH_CHALLENGE, False, f"GET /v2/ answered 401 but with {shown}: expected a Basic or Bearer realm"
        )
    api = response.headers.get("Docker-Distribution-API-Version", "")
    note = "" if api else " (no Docker-Distribution-API-Version header: is this a registry?)"
    return CheckResult(AUTH_CHALLENGE, True, f"GET /v2/ answered 401 with WWW-Authenticate: {challenge}{note}")


# --- 3. anonymous access refused -----------------------------------------------------------------------


def _cancel_upload(session: requests.Session, target: SmokeTarget, response: requests.Response) -> str:
    """DELETE an upload session a registry wrongly started for us; say how that went."""
    location = response.headers.get("Location")
    if not location:
        return "no Location to cancel it"
    try:
        cancelled = session.delete(urljoin(target.base_url + "/", location), timeout=target.timeout)
    except requests.RequestException as error:
        return f"cancelling it failed: {describe_error(target, error)}"
    return "cancelled it" if cancelled.status_code in (202, 204) else f"cancelling it answered {_answer(cancelled)}"


def check_anonymous_refused(target: SmokeTarget) -> CheckResult:
    """Anonymous ``GET /v2/_catalog`` and an anonymous blob upload start are refused (401/403)."""
    repository = f"{SMOKE_NAMESPACE}/{secrets.token_hex(6)}"
    failures: list[str] = []
    seen: list[str] = []
    with _open_session(target, authenticated=False) as session:
        try:
            catalog = session.get(target.url("/v2/_catalog"), timeout=target.timeout, allow_redirects=False)
            upload = session.post(
                target.url(f"/v2/{repository}/blobs/uploads/"), timeout=target.timeout, allow_redirects=False
            )
        except requests.RequestException as error:
            return CheckResult(ANONYMOUS_REFUSED, False, describe_error(target, error))
        if catalog.status_code in REFUSED_STATUSES:
            seen.append(f"GET /v2/_catalog {catalog.status_code}")
        else:
            listed = ""
            if catalog.status_code == 200:
                try:
                    repositories = catalog.json().get("repositories") or []
                    listed = f" listing {len(repositories)} repositories"
                except (ValueError, AttributeError):
                    listed = ""
            failures.append(f"GET /v2/_catalog answered {_answer(catalog)}{listed}")
        if upload.status_code in REFUSED_STATUSES:
            seen.append(f"POST /v2/{repository}/blobs/uploads/ {upload.status_code}")
        else:
            cancelled = f" ({_cancel_upload(session, target, upload)})" if upload.status_code == 202 else ""
            failures.append(f"POST /v2/{repository}/blobs/uploads/ answered {_answer(upload)}{cancelled}")
    if failures:
        return CheckResult(ANONYMOUS_REFUSED, False, "; ".join(failures) + " without credentials")
    return CheckResult(ANONYMOUS_REFUSED, True, "anonymous " + ", ".join(seen))


# --- 4. authenticated round trip ----------------------------------------------------------------------


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class SmokeImage:
    """A tiny unique image: one gzipped layer of random bytes, its config, and the manifest naming both."""

    repository: str
    tag: str
    layer: bytes
    config: bytes
    manifest: bytes

    @property
    def layer_digest(self) -> str:
        return sha256_digest(self.layer)

    @property
    def config_digest(self) -> str:
        return sha256_digest(self.config)

    @property
    def manifest_digest(self) -> str:
        return sha256_digest(self.manifest)

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"

    def blobs(self) -> list[tuple[str, bytes]]:
        """(kind, bytes) of every blob the manifest names, in push order."""
        return [("layer", self.layer), ("config", self.config)]


def make_smoke_image(token: str | None = None, *, payload_bytes: int = 1024) -> SmokeImage:
    """A new image under ``spotreg-smoke/<token>:smoke-<token>``, different every call."""
    token = token or secrets.token_hex(6)
    content = f"spotreg smoke {token}\n".encode() + secrets.token_bytes(payload_bytes)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        member = tarfile.TarInfo(f"spotreg-smoke/{token}")
        member.size, member.mode, member.mtime = len(content), 0o644, 0
        archive.addfile(member, io.BytesIO(content))
    layer_tar = buffer.getvalue()
    layer = gzip.compress(layer_tar, mtime=0)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"io.spotreg.smoke": token}},
            "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer_tar)]},
            "history": [{"created_by": "spotreg smoke check"}],
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_V2,
            "config": {"mediaType": IMAGE_CONFIG, "size": len(config), "digest": sha256_digest(config)},
            "layers": [{"mediaType": LAYER_TAR_GZIP, "size": len(layer), "digest": sha256_digest(layer)}],
        },
        indent=3,
    ).encode()
    return SmokeImage(f"{SMOKE_NAMESPACE}/{token}", f"smoke-{token}", layer, config, manifest)


class _StepFailed(Exception):
    """One step of the round trip went wrong; the message is the verdict's detail."""


def _push_blob(session: requests.Session, target: SmokeTarget, repository: str, kind: str, data: bytes) -> None:
    """Monolithic upload: POST starts an upload session, one PUT with ``?digest=`` sends every byte."""
    digest = sha256_digest(data)
    start = session.post(target.url(f"/v2/{repository}/blobs/uploads/"), timeout=target.timeout, allow_redirects=False)
    if start.status_code == 401:
        raise _StepFailed(
            f"starting the {kind} upload answered {_answer(start)}: user {target.username!r} may not push"
        )
    if start.status_code != 202 or not start.headers.get("Location"):
        raise _StepFailed(
            f"POST /v2/{repository}/blobs/uploads/ answered {_answer(start)}, expected 202 and a Location"
        )
    location = urljoin(target.base_url + "/", start.headers["Location"])
    if not _same_origin(target, location):
        raise _StepFailed(
            f"the {kind} upload's Location {location.split('?', 1)[0]} is not on {target.base_url}: not sending "
            "credentials there (behind a TLS proxy, pass X-Forwarded-Proto/Host or set http.relativeurls)"
        )
    put = session.put(
        location,
        params={"digest": digest},
        data=data,
        headers={"Content-Type": "application/octet-stream"},
        timeout=target.timeout,
        allow_redirects=False,
    )
    if put.status_code != 201:
        raise _StepFailed(f"uploading the {kind} blob ({len(data)} bytes) answered {_answer(put)}, expected 201")
    answered = put.headers.get("Docker-Content-Digest")
    if answered and answered != digest:
        raise _StepFailed(f"the registry stored the {kind} blob as {answered}, but its bytes are {digest}")


def _same_origin(target: SmokeTarget, url: str) -> bool:
    parts = urlsplit(url)
    origin = (parts.scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(parts.scheme))
    return origin == (target.scheme, target.host.lower(), target.port)


def _pull_blob(session: requests.Session, target: SmokeTarget, repository: str, kind: str, digest: str) -> str:
    """GET a blob and compare the digest of its bytes; follows a redirect to storage (S3) itself:
    without our credentials there, and with the system CAs where the storage is not our host."""
    url = target.url(f"/v2/{repository}/blobs/{digest}")
    response = session.get(url, timeout=target.timeout, allow_redirects=False)
    via = ""
    if response.status_code in (301, 302, 303, 307, 308) and response.headers.get("Location"):
        location = urljoin(url, response.headers["Location"])
        if _same_origin(target, location):
            response = session.get(location, timeout=target.timeout)
        else:
            with requests.Session() as storage:
                storage.trust_env = False
                storage.verify = system_ca_location() or True
                response = storage.get(location, timeout=target.timeout)
            via = f" via redirect to {urlsplit(location).hostname}"
    if response.status_code != 200:
        raise _StepFailed(f"GET of the {kind} blob {digest[:19]}{via} answered {_answer(response)}, expected 200")
    got = sha256_digest(response.content)
    if got != digest:
        raise _StepFailed(f"the {kind} blob came back{via} as {got[:19]}..., not the {digest[:19]}... pushed")
    return via


def _cleanup(
    session: requests.Session, target: SmokeTarget, image: SmokeImage, manifest_pushed: bool
) -> tuple[bool, str]:
    """Delete what the round trip pushed: (whether that went acceptably, what happened).

    Distribution deletes a manifest by digest (202) only with ``storage.delete.enabled``; otherwise
    it answers 405 UNSUPPORTED, which is the operator's choice and not a failure of the round trip.
    Deleting the manifest also removes the tags that point at it; the blobs' links go the same way.
    """
    repository = image.repository
    if manifest_pushed:
        url = target.url(f"/v2/{repository}/manifests/{image.manifest_digest}")
        try:
            deleted = session.delete(url, timeout=target.timeout, allow_redirects=False)
        except requests.RequestException as error:
            return False, f"cleanup failed: {describe_error(target, error)}; {image.reference} left behind"
        if deleted.status_code in (405, 403):
            why = "the registry" if deleted.status_code == 405 else f"user {target.username!r}"
            return True, (
                f"cleanup not allowed by {why} (DELETE manifest answered {_answer(deleted)}); "
                f"{image.reference} left behind"
            )
        if deleted.status_code != 202:
            return False, f"cleanup failed: DELETE manifest answered {_answer(deleted)}; {image.reference} left behind"
    unlinked = 0
    for _kind, data in image.blobs():
        try:
            answer = session.delete(target.url(f"/v2/{repository}/blobs/{sha256_digest(data)}"), timeout=target.timeout)
        except requests.RequestException:
            continue
        unlinked += answer.status_code == 202
    if not manifest_pushed:
        return True, f"cleanup: {unlinked} of {len(image.blobs())} blobs deleted"
    try:
        gone = session.get(
            target.url(f"/v2/{repository}/manifests/{image.tag}"),
            headers={"Accept": MANIFEST_V2},
            timeout=target.timeout,
        )
    except requests.RequestException as error:
        return True, f"cleanup: manifest deleted (202), but re-reading the tag failed: {describe_error(target, error)}"
    tag_state = "tag gone (404)" if gone.status_code == 404 else f"tag still answers {_answer(gone)}"
    return True, f"cleanup: manifest deleted (202), {tag_state}, {unlinked} of {len(image.blobs())} blobs deleted"


def check_round_trip(target: SmokeTarget, *, image: SmokeImage | None = None) -> CheckResult:
    """Push a tiny unique image with the target's credentials, pull it back comparing digests, and
    delete it again (where the registry allows deletes)."""
    if not target.username:
        return CheckResult(ROUND_TRIP, False, f"no credentials: set {USER_ENV} and {PASSWORD_ENV}")
    image = image or make_smoke_image()
    started = time.perf_counter()
    manifest_pushed = False
    blobs_pushed = False
    failure = ""
    via = ""
    with _open_session(target, authenticated=True) as session:
        try:
            login = session.get(target.url("/v2/"), timeout=target.timeout, allow_redirects=False)
            if login.status_code == 401:
                challenge = login.headers.get("WWW-Authenticate", "")
                if challenge.lower().startswith("bearer"):
                    raise _StepFailed(
                        f"the registry wants a token ({challenge}); this round trip speaks Basic auth only"
                    )
                raise _StepFailed(
                    f"the registry refused user {target.username!r}: GET /v2/ with credentials answered "
                    f"{_answer(login)} (check {USER_ENV} / {PASSWORD_ENV})"
                )
            if login.status_code != 200:
                raise _StepFailed(f"GET /v2/ with credentials answered {_answer(login)}, expected 200")
            for kind, data in image.blobs():
                _push_blob(session, target, image.repository, kind, data)
                blobs_pushed = True
            put = session.put(
                target.url(f"/v2/{image.repository}/manifests/{image.tag}"),
                data=image.manifest,
                headers={"Content-Type": MANIFEST_V2},
                timeout=target.timeout,
                allow_redirects=False,
            )
            if put.status_code != 201:
                raise _StepFailed(f"PUT manifest {image.reference} answered {_answer(put)}, expected 201")
            manifest_pushed = True
            if put.headers.get("Docker-Content-Digest", image.manifest_digest) != image.manifest_digest:
                raise _StepFailed(
                    f"the registry stored the manifest as {put.headers['Docker-Content-Digest']}, "
                    f"but the bytes sent are {image.manifest_digest}"
                )
            pulled = session.get(
                target.url(f"/v2/{image.repository}/manifests/{image.tag}"),
                headers={"Accept": MANIFEST_V2},
                timeout=target.timeout,
            )
            if pulled.status_code != 200:
                raise _StepFailed(f"GET manifest {image.reference} answered {_answer(pulled)}, expected 200")
            header = pulled.headers.get("Docker-Content-Digest")
            if header != image.manifest_digest:
                raise _StepFailed(
                    f"GET manifest {image.reference}: Docker-Content-Digest {header} is not the "
                    f"{image.manifest_digest} pushed"
                )
            if sha256_digest(pulled.content) != image.manifest_digest:
                raise _StepFailed(f"GET manifest {image.reference}: the bytes differ from those pushed")
            for kind, data in image.blobs():
                via = _pull_blob(session, target, image.repository, kind, sha256_digest(data)) or via
        except _StepFailed as step:
            failure = str(step)
        except requests.RequestException as error:
            failure = describe_error(target, error)
        elapsed = time.perf_counter() - started
        cleanup_ok, cleanup = (
            _cleanup(session, target, image, manifest_pushed) if (manifest_pushed or blobs_pushed) else (True, "")
        )
    if failure:
        return CheckResult(ROUND_TRIP, False, f"{failure}" + (f"; {cleanup}" if cleanup else ""))
    size = sum(len(data) for _, data in image.blobs()) + len(image.manifest)
    summary = (
        f"pushed and pulled {image.reference} ({size} bytes) as {target.username!r} in {elapsed:.2f} s, "
        f"digests match{via}; {cleanup}"
    )
    return CheckResult(ROUND_TRIP, cleanup_ok, summary)


# --- all of them ---------------------------------------------------------------------------------------

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


def add_smoke_arguments(parser: argparse.ArgumentParser) -> None:
    """The smoke options, as ``spotreg`` and ``python -m provisioning.smoke`` spell them."""
    parser.add_argument("--smoke-ca", type=Path, default=None, help="PEM CA bundle to verify the registry against")
    parser.add_argument(
        "--smoke-min-cert-days",
        type=int,
        default=DEFAULT_MIN_CERT_DAYS,
        help=f"fail when the certificate has this many days left or fewer (default {DEFAULT_MIN_CERT_DAYS})",
    )
    parser.add_argument(
        "--smoke-insecure-http",
        action="store_true",
        help="plain http instead of https; only for an endpoint in 127.0.0.0/8",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m provisioning.smoke --endpoint HOST[:PORT]``: print the verdicts; 0 when none failed."""
    parser = argparse.ArgumentParser(
        prog="python -m provisioning.smoke",
        description=f"smoke-check a deployed registry (credentials from ${USER_ENV} and ${PASSWORD_ENV})",
    )
    parser.add_argument("--endpoint", required=True, help="HOST[:PORT] of the registry")
    add_smoke_arguments(parser)
    args = parser.parse_args(argv)
    try:
        target = target_from_environ(
            args.endpoint,
            ca_file=args.smoke_ca,
            min_cert_days=args.smoke_min_cert_days,
            insecure_http=args.smoke_insecure_http,
        )
    except SmokeConfigError as error:
        print(f"smoke: {error}", file=sys.stderr)
        return 2
    results = run_smoke(target)
    print(format_verdicts(results))
    return 0 if smoke_passed(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
