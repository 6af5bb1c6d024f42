"""Bounded waiting for the registry endpoint to answer."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, retry_if_result

from provisioning.errors import HealthTimeout
from provisioning.waits import Deadline, bounded_retrying

# /v2/ answers 200 without auth and 401 with auth on: both mean the registry is up and serving.
HEALTHY_STATUSES: frozenset[int] = frozenset({200, 401})


@dataclass(frozen=True)
class Probe:
    """What one request to the endpoint saw."""

    status: int | None
    body: str
    error: str | None
    elapsed: float

    def healthy(self, statuses: Collection[int]) -> bool:
        return self.status is not None and self.status in statuses


@dataclass(frozen=True)
class Healthy:
    url: str
    status: int
    attempts: int
    waited: float


ProgressCallback = Callable[[str], None]


class ServerNameAdapter(HTTPAdapter):
    """Connects to the URL's host but sends `server_name` as SNI and checks the certificate against it:
    for a certificate issued to a name the client reaches by address (a self-signed certificate for
    `spotreg-<name>`, the instance found by its public IP). The chain is still verified."""

    def __init__(self, server_name: str, **kwargs: Any) -> None:
        self.server_name = server_name  # before super().__init__, which builds the pool manager
        super().__init__(**kwargs)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        pool_kwargs["server_hostname"] = self.server_name
        pool_kwargs["assert_hostname"] = self.server_name
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)


class ResolvedAdapter(ServerNameAdapter):
    """Sends what is addressed to ``server_name`` to ``address`` instead, as if DNS had answered it
    (``curl --resolve``): the Host header, SNI and certificate check stay the name's. For a registry
    whose name does not resolve yet, or resolves only where the client is not (a test's fake DNS)."""

    def __init__(self, server_name: str, address: str, **kwargs: Any) -> None:
        self.address = address
        super().__init__(server_name, **kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        parts = urlsplit(request.url or "")
        if parts.hostname == self.server_name:
            request.headers["Host"] = parts.netloc
            request.url = urlunsplit(parts._replace(netloc=self.address + (f":{parts.port}" if parts.port else "")))
        return super().send(request, **kwargs)


def resolving_session(server_name: str, address: str, session: requests.Session | None = None) -> requests.Session:
    """``session`` (default: a new one) with ``server_name`` resolved to ``address`` (``ResolvedAdapter``)."""
    session = session or requests.Session()
    for scheme in ("https", "http"):
        session.mount(f"{scheme}://{server_name}", ResolvedAdapter(server_name, address))
    return session


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"


def probe(url: str, *, session: requests.Session, verify: bool | str, timeout: float) -> Probe:
    """One GET of `url`; never raises for a network problem, it reports it."""
    started = time.monotonic()
    try:
        response = session.get(url, timeout=timeout, verify=verify, allow_redirects=False)
    except requests.RequestException as error:
        return Probe(None, "", f"{type(error).__name__}: {error}", time.monotonic() - started)
    return Probe(response.status_code, response.text[:2000], None, time.monotonic() - started)


def wait_until_healthy(
    url: str,
    timeout: float = 600.0,
    *,
    healthy_statuses: Collection[int] = HEALTHY_STATUSES,
    verify: bool | str = True,
    request_timeout: float = 10.0,
    initial_interval: float = 1.0,
    max_interval: float = 15.0,
    progress: ProgressCallback | None = None,
    console_output: Callable[[], str | None] | None = None,
    session: requests.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
    server_name: str | None = None,
) -> Healthy:
    """GET `url` until it answers one of `healthy_statuses`, backing off exponentially, for at most
    `timeout` seconds. On timeout raise HealthTimeout with the last status, body or error and, when
    `console_output` is given, what it returns (the instance's console, say). With `server_name`, TLS
    checks the certificate against that name instead of the URL's host (see ServerNameAdapter)."""
    http = session or requests.Session()
    origin = _origin(url)
    replaced = http.adapters.get(origin)
    if server_name is not None:
        http.mount(origin, ServerNameAdapter(server_name))
    deadline = Deadline(timeout)
    seen: list[Probe] = []

    def attempt() -> Probe:
        remaining = max(0.1, deadline.remaining)
        result = probe(url, session=http, verify=verify, timeout=min(request_timeout, remaining))
        seen.append(result)
        return result

    def report(state: RetryCallState) -> None:
        if progress is None or state.outcome is None:
            return
        last = seen[-1]
        what = f"HTTP {last.status}" if last.status is not None else (last.error or "no answer")
        progress(f"{url}: {what} after {deadline.elapsed:.0f}s of {timeout:.0f}s (attempt {state.attempt_number})")

    retrying = bounded_retrying(
        deadline,
        interval=initial_interval,
        max_interval=max_interval,
        retry=retry_if_result(lambda p: not p.healthy(healthy_statuses)),
        before_sleep=report,
        sleep=sleep,
        reraise=True,
        retry_error_callback=lambda state: None,
    )
    try:
        result = retrying(attempt)
    finally:
        if server_name is not None:
            http.adapters.pop(origin).close()
            if replaced is not None:
                http.mount(origin, replaced)  # the caller's session as it was
        if session is None:
            http.close()
    waited = deadline.elapsed
    if isinstance(result, Probe) and result.healthy(healthy_statuses) and result.status is not None:
        if progress is not None:
            progress(f"{url}: healthy (HTTP {result.status}) after {waited:.1f}s")
        return Healthy(url, result.status, len(seen), waited)
    last = seen[-1] if seen else Probe(None, "", "never asked", 0.0)
    console = console_output() if console_output is not None else None
    raise HealthTimeout(
        url,
        waited,
        attempts=len(seen),
        last_status=last.status,
        last_body=last.body,
        last_error=last.error,
        console_output=console,
    )
