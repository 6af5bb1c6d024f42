"""``ResolvedAdapter`` / ``--smoke-resolve``: a name reached at a given address, as ``curl --resolve``."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
import requests

from harness.smoke import SmokeConfigError, SmokeTarget
from provisioning.health import resolving_session


@pytest.fixture
def server() -> Iterator[tuple[int, list[str]]]:
    """An HTTP server on 127.0.0.1 that records each request's Host header."""
    hosts: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hosts.append(self.headers["Host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            """Quiet."""

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1], hosts
    httpd.shutdown()
    httpd.server_close()


def test_a_name_that_does_not_resolve_reaches_the_address_with_its_own_host_header(server) -> None:
    port, hosts = server
    with resolving_session("registry.invalid", "127.0.0.1") as session:
        answer = session.get(f"http://registry.invalid:{port}/v2/", timeout=5)

    assert answer.status_code == 204
    assert hosts == [f"registry.invalid:{port}"]


def test_other_names_are_not_redirected(server) -> None:
    port, hosts = server
    # the name goes to 127.0.0.2, where nothing listens: a redirected request would be refused
    with resolving_session("registry.invalid", "127.0.0.2") as session:
        answer = session.get(f"http://127.0.0.1:{port}/v2/", timeout=5)
        with pytest.raises(requests.ConnectionError):
            session.get(f"http://registry.invalid:{port}/v2/", timeout=5)

    assert answer.status_code == 204
    assert hosts == [f"127.0.0.1:{port}"]


def test_smoke_resolve_must_be_an_address() -> None:
    with pytest.raises(SmokeConfigError, match=r"resolve 'registry\.example\.com': expected an IP address"):
        SmokeTarget(endpoint="registry.example.com", username="u", password="p", resolve="registry.example.com")
    target = SmokeTarget(endpoint="registry.example.com", username="u", password="p", resolve="10.0.0.7")
    assert (target.host, target.connect_host) == ("registry.example.com", "10.0.0.7")
