"""How the smoke checks talk to the registry: a ``RegistryApi`` (harness.registry_api) over a session
that retries failures to connect only, and a short sentence for each way a request can fail."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, NewConnectionError
from urllib3.util.retry import Retry

from harness.registry_api import RegistryApi
from harness.smoke.target import SmokeTarget
from provisioning.health import ResolvedAdapter


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
    if target.resolve is not None:
        for scheme in ("https", "http"):
            session.mount(f"{scheme}://{target.host}", ResolvedAdapter(target.host, target.resolve, max_retries=retry))
    session.verify = target.verify
    session.trust_env = False  # no proxies or netrc credentials from the environment
    session.headers["User-Agent"] = "spotreg-smoke/1"
    if authenticated:
        session.auth = (target.username, target.password)
    return session


@contextmanager
def open_api(target: SmokeTarget, *, authenticated: bool) -> Iterator[RegistryApi]:
    """The registry's API at `target`, with the target's credentials when `authenticated`; closed after."""
    with RegistryApi(
        target.base_url, timeout=target.timeout, session=_session(target, authenticated=authenticated)
    ) as api:
        yield api


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


def attempts(target: SmokeTarget) -> str:
    """`` (3 attempts)`` when failures to connect are retried, else nothing."""
    return f" ({target.connect_retries + 1} attempts)" if target.connect_retries else ""


def plain_http_hint(reason: str) -> str:
    return " (is the server speaking plain http?)" if "WRONG_VERSION_NUMBER" in reason else ""


def describe_error(target: SmokeTarget, error: BaseException) -> str:
    """A short sentence for a failed request: TLS, refused connection, timeout."""
    where = f"{target.host}:{target.port}"
    inner = _innermost(error)
    if isinstance(error, requests.exceptions.SSLError) or isinstance(inner, ssl.SSLError):
        if isinstance(inner, ssl.SSLCertVerificationError):
            return f"TLS to {where} failed: {inner.verify_message}"
        reason = getattr(inner, "reason", None) or str(inner)
        return f"TLS to {where} failed: {reason}{plain_http_hint(str(reason))}"
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return f"cannot connect to {where}: no answer in {target.connect_timeout:g} s{attempts(target)}"
    if isinstance(error, requests.exceptions.ReadTimeout):
        return f"{where} accepted the connection but sent no answer in {target.read_timeout:g} s"
    if isinstance(error, requests.exceptions.ConnectionError) and isinstance(inner, NewConnectionError):
        text = str(inner).split(": ", 1)[-1]
        return f"cannot connect to {where}{attempts(target)}: {text}"
    if isinstance(error, requests.exceptions.ConnectionError):
        return f"the connection to {where} broke: {inner}"
    return f"request to {where} failed: {type(error).__name__}: {error}"
