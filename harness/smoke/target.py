"""What the smoke checks check: a deployed registry's endpoint, the credentials and how to trust it.

Credentials come from ``SPOTREG_SMOKE_USER`` / ``SPOTREG_SMOKE_PASSWORD`` (``target_from_environ``),
never from the command line.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

USER_ENV = "SPOTREG_SMOKE_USER"
PASSWORD_ENV = "SPOTREG_SMOKE_PASSWORD"  # noqa: S105 - the variable's name, not a password
DEFAULT_MIN_CERT_DAYS = 14
SMOKE_NAMESPACE = "spotreg-smoke"

LOOPBACK_V4 = ipaddress.ip_network("127.0.0.0/8")
DEFAULT_PORTS = {"https": 443, "http": 80}


class SmokeConfigError(ValueError):
    """A smoke target that cannot be checked as given (the message says which field and why)."""


def split_endpoint(endpoint: str) -> tuple[str, int | None]:
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


def is_loopback_v4(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.version == 4 and address in LOOPBACK_V4


@dataclass(frozen=True)
class SmokeTarget:
    """A deployed registry to check: ``endpoint`` is ``HOST[:PORT]`` (port 443 for https by default).

    ``ca_file`` is a PEM bundle to verify the server against instead of the system CAs. ``resolve`` is
    the address to connect to instead of looking the host up (``curl --resolve``: before DNS points at a
    new instance); the certificate is still checked for the host name. Plain ``http``
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
    resolve: str | None = None

    def __post_init__(self) -> None:
        host, _port = split_endpoint(self.endpoint)
        if self.resolve is not None:
            try:
                ipaddress.ip_address(self.resolve)
            except ValueError:
                raise SmokeConfigError(f"resolve {self.resolve!r}: expected an IP address to connect to") from None
        if self.scheme not in DEFAULT_PORTS:
            raise SmokeConfigError(f"scheme {self.scheme!r}: expected 'https' (or 'http' on loopback)")
        if self.scheme == "http":
            if not self.insecure_http:
                raise SmokeConfigError(
                    f"scheme 'http' for {self.endpoint}: plain http needs the explicit insecure flag "
                    "(--smoke-insecure-http), and is allowed only on 127.0.0.0/8"
                )
            if not is_loopback_v4(host):
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
        return split_endpoint(self.endpoint)[0]

    @property
    def connect_host(self) -> str:
        """Where connections go: the ``resolve`` address, else the host."""
        return self.resolve or self.host

    @property
    def port(self) -> int:
        return split_endpoint(self.endpoint)[1] or DEFAULT_PORTS[self.scheme]

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
    resolve: str | None = None,
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
        resolve=resolve,
    )
