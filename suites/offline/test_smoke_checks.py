"""The smoke checks (harness.smoke) against real registries on 127.0.0.1, and the smoke suite end to end.

Registries come from the stack's registry image (distribution 2.8.2) on the host network, each with a
config written here: filesystem storage in a temporary directory, htpasswd auth, deletes enabled, TLS
from a CA generated here for IP 127.0.0.1. Variants break one thing each: auth off, an expired leaf
certificate, one expiring in 5 days, plain http with deletes disabled. Tests that need Docker are
marked ``stack`` and skip, saying why, without an engine or the image; the rest need neither.
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from fixtures.registry_container import Mount, PortTaken, RegistryContainer
from harness import smoke
from harness.loopback import LOOPBACK, free_port
from harness.registry_api import IMAGE_CONFIG, LAYER_TAR_GZIP, MANIFEST_V2, sha256_digest
from harness.smoke import (
    ANONYMOUS_REFUSED,
    AUTH_CHALLENGE,
    CHECK_NAMES,
    ROUND_TRIP,
    TLS_CHAIN,
    CheckResult,
    SmokeConfigError,
    SmokeTarget,
    check_anonymous_refused,
    check_auth_challenge,
    check_round_trip,
    check_tls_chain,
    format_verdicts,
    make_smoke_image,
    run_smoke,
    target_from_environ,
)
from provisioning.render.tls import render_selfsigned

REPO_ROOT = Path(__file__).resolve().parents[2]
USER = "smoke"
PASSWORD = "smoke-test-password"
CONFIG_DIR = "/etc/docker/registry"
TLS_DIR = "/etc/spotreg-smoke-tls"
STORAGE_DIR = "/var/lib/registry"
_START_ATTEMPTS = 3

stack = pytest.mark.stack


# --- TLS material ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """One CA key; per variant, a certificate for 127.0.0.1 made by the product's own render_selfsigned.

    Every rendering with the same CA key yields a CA of the same key and name, so the one in ``ca_file``
    verifies every variant's server certificate.
    """

    directory: Path
    ca_key: ec.EllipticCurvePrivateKey
    ca_file: Path

    def issue(self, name: str, *, now: datetime, days: int) -> Path:
        """A directory with ``server.crt`` (leaf, then CA) and ``server.key``, valid from ``now`` for ``days``."""
        material = render_selfsigned([LOOPBACK], now=now, days=days, ca_key=self.ca_key)
        directory = self.directory / name
        directory.mkdir()
        (directory / "server.crt").write_bytes(material.server_cert_pem + self.ca_file.read_bytes())
        (directory / "server.key").write_bytes(material.server_key_pem)
        return directory


def make_pki(directory: Path) -> Pki:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = render_selfsigned([LOOPBACK], now=datetime.now(UTC) - timedelta(days=1), days=400, ca_key=ca_key)
    ca_file = directory / "ca.crt"
    ca_file.write_bytes(ca.ca_cert_pem)
    return Pki(directory, ca_key, ca_file)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("smoke-pki"))


# --- registries --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Registry:
    """A running registry variant and how to check it."""

    container: RegistryContainer
    scheme: str

    @property
    def endpoint(self) -> str:
        return self.container.address

    def target(self, ca_file: Path | None, **changes: Any) -> SmokeTarget:
        target = SmokeTarget(
            self.endpoint,
            USER,
            PASSWORD,
            ca_file=ca_file if self.scheme == "https" else None,
            scheme="https" if self.scheme == "https" else "http",
            insecure_http=self.scheme == "http",
            connect_retries=1,
            read_timeout=10.0,
        )
        return replace(target, **changes)


def registry_config(port: int, *, tls: bool, auth: bool, delete: bool) -> dict[str, Any]:
    http: dict[str, Any] = {"addr": f"{LOOPBACK}:{port}", "secret": secrets.token_hex(16)}
    if tls:
        http["tls"] = {"certificate": f"{TLS_DIR}/server.crt", "key": f"{TLS_DIR}/server.key"}
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": STORAGE_DIR},
            "delete": {"enabled": delete},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": http,
    }
    if auth:
        config["auth"] = {"htpasswd": {"realm": "spotreg-smoke-test", "path": f"{CONFIG_DIR}/htpasswd"}}
    return config


@pytest.fixture(scope="module")
def start_registry(registry_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Registry]]:
    """``start_registry(name, tls_dir=..., auth=..., delete=...)``: a registry on a free 127.0.0.1 port.
    Every container started is removed when the module is done, whatever happened."""
    started: list[RegistryContainer] = []
    htpasswd = f"{USER}:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()}\n"

    def start(name: str, *, tls_dir: Path | None, auth: bool = True, delete: bool = True) -> Registry:
        root = tmp_path_factory.mktemp(f"smoke-{name}")
        (root / "config").mkdir()
        (root / "storage").mkdir()
        (root / "config" / "htpasswd").write_text(htpasswd)
        mounts = [Mount(str(root / "config"), CONFIG_DIR), Mount(str(root / "storage"), STORAGE_DIR, "rw")]
        if tls_dir is not None:
            mounts.append(Mount(str(tls_dir), TLS_DIR))
        for attempt in range(_START_ATTEMPTS):
            port = free_port()
            config = registry_config(port, tls=tls_dir is not None, auth=auth, delete=delete)
            (root / "config" / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
            container = RegistryContainer(
                image=registry_image,
                command=["serve", f"{CONFIG_DIR}/config.yml"],
                environment={},
                mounts=mounts,
                port=port,
                scheme="https" if tls_dir is not None else "http",
            )
            started.append(container)
            try:
                container.start()
            except PortTaken:
                container.remove()
                if attempt + 1 == _START_ATTEMPTS:
                    raise
                continue
            return Registry(container, container.scheme)
        raise AssertionError("unreachable")

    try:
        yield start
    finally:
        for container in started:
            container.remove()


@pytest.fixture(scope="module")
def good(start_registry: Callable[..., Registry], pki: Pki) -> Registry:
    """TLS (90 days left), htpasswd auth, deletes enabled: what a deployment should look like."""
    now = datetime.now(UTC)
    tls = pki.issue("good", now=now - timedelta(days=1), days=91)  # 90 days left
    return start_registry("good", tls_dir=tls)


@pytest.fixture(scope="module")
def no_auth(start_registry: Callable[..., Registry], pki: Pki) -> Registry:
    """Good TLS, but no auth section: anyone may pull and push."""
    now = datetime.now(UTC)
    tls = pki.issue("noauth", now=now - timedelta(days=1), days=91)
    return start_registry("noauth", tls_dir=tls, auth=False)


@pytest.fixture(scope="module")
def expired(start_registry: Callable[..., Registry], pki: Pki) -> Registry:
    """A leaf certificate that expired yesterday (the registry serves it all the same)."""
    now = datetime.now(UTC)
    tls = pki.issue("expired", now=now - timedelta(days=91), days=90)  # expired yesterday
    return start_registry("expired", tls_dir=tls)


@pytest.fixture(scope="module")
def expiring(start_registry: Callable[..., Registry], pki: Pki) -> Registry:
    """A valid leaf certificate with 5 days left: fewer than the default 14."""
    now = datetime.now(UTC)
    tls = pki.issue("expiring", now=now - timedelta(hours=23), days=6)  # 5 days and 1 hour left
    return start_registry("expiring", tls_dir=tls)


@pytest.fixture(scope="module")
def plain_no_delete(start_registry: Callable[..., Registry]) -> Registry:
    """Plain http on loopback, auth on, deletes disabled (distribution's default)."""
    return start_registry("plain", tls_dir=None, delete=False)


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    assert [result.name for result in results] == list(CHECK_NAMES)
    return {result.name: result for result in results}


# --- against real registries -------------------------------------------------------------------------


@stack
def test_every_check_passes_against_a_good_registry(good: Registry, pki: Pki) -> None:
    results = by_name(run_smoke(good.target(pki.ca_file)))
    report = format_verdicts(list(results.values()))
    assert all(result.passed for result in results.values()), report
    assert report.splitlines()[0].startswith("PASS tls-chain: 89 days left (expires ")
    assert "more than 14 required" in results[TLS_CHAIN].detail
    assert 'WWW-Authenticate: Basic realm="spotreg-smoke-test"' in results[AUTH_CHALLENGE].detail
    assert "GET /v2/_catalog 401" in results[ANONYMOUS_REFUSED].detail
    round_trip = results[ROUND_TRIP].detail
    assert "digests match" in round_trip, round_trip
    assert "manifest deleted (202), tag gone (404), 2 of 2 blobs deleted" in round_trip, round_trip
    assert [line.split(" ", 2)[:2] for line in report.splitlines()] == [["PASS", f"{name}:"] for name in CHECK_NAMES]


@stack
def test_round_trip_leaves_nothing_behind_and_is_unique(good: Registry, pki: Pki) -> None:
    target = good.target(pki.ca_file)
    image = make_smoke_image()
    assert check_round_trip(target, image=image).passed
    auth, verify = (USER, PASSWORD), str(pki.ca_file)
    manifest = requests.get(
        target.url(f"/v2/{image.repository}/manifests/{image.manifest_digest}"),
        headers={"Accept": MANIFEST_V2},
        auth=auth,
        verify=verify,
        timeout=10,
    )
    tags = requests.get(target.url(f"/v2/{image.repository}/tags/list"), auth=auth, verify=verify, timeout=10)
    assert manifest.status_code == 404, manifest.text
    assert tags.status_code == 404 or not (tags.json().get("tags") or []), tags.text
    assert make_smoke_image().repository != image.repository


@stack
def test_auth_turned_off_fails_the_auth_checks_by_name(no_auth: Registry, pki: Pki) -> None:
    results = by_name(run_smoke(no_auth.target(pki.ca_file)))
    report = format_verdicts(list(results.values()))
    assert results[TLS_CHAIN].passed, report
    assert results[AUTH_CHALLENGE].passed is False, report
    assert results[ANONYMOUS_REFUSED].passed is False, report
    assert "FAIL auth-challenge: GET /v2/ without credentials answered 200, not 401: registry auth is off" in report
    assert "FAIL anonymous-refused: GET /v2/_catalog answered 200 listing" in report
    # the upload the registry started for nobody is cancelled again
    assert "blobs/uploads/ answered 202 (cancelled it)" in results[ANONYMOUS_REFUSED].detail, report


@stack
def test_an_expired_certificate_fails_the_tls_check(expired: Registry, pki: Pki) -> None:
    result = check_tls_chain(expired.target(pki.ca_file))
    assert result.passed is False, result.line()
    assert result.line().startswith("FAIL tls-chain: chain does not verify against CA file"), result.line()
    assert "certificate has expired" in result.detail
    assert "leaf certificate expired " in result.detail and "(1 day ago)" in result.detail, result.detail
    # nothing else can talk to it either, and says why
    challenge = check_auth_challenge(expired.target(pki.ca_file))
    assert challenge.passed is False and "certificate has expired" in challenge.detail, challenge.line()


@stack
def test_a_certificate_expiring_within_min_cert_days_fails(expiring: Registry, pki: Pki) -> None:
    result = check_tls_chain(expiring.target(pki.ca_file))
    assert result.passed is False, result.line()
    assert "5 days left (expires " in result.detail and "fewer than the 14 required" in result.detail, result.detail
    relaxed = check_tls_chain(expiring.target(pki.ca_file, min_cert_days=3))
    assert relaxed.passed, relaxed.line()
    assert "5 days left" in relaxed.detail and "more than 3 required" in relaxed.detail


@stack
def test_a_chain_from_an_unknown_ca_fails(good: Registry) -> None:
    result = check_tls_chain(good.target(None))
    assert result.passed is False, result.line()
    assert "against the system CAs: self-signed certificate in certificate chain" in result.detail, result.detail
    assert "89 days left" in result.detail


@stack
def test_a_wrong_password_fails_the_round_trip_clearly(good: Registry, pki: Pki) -> None:
    result = check_round_trip(good.target(pki.ca_file, password="not-the-password"))
    assert result.passed is False, result.line()
    assert result.detail == (
        f"the registry refused user {USER!r}: GET /v2/ with credentials answered 401 UNAUTHORIZED "
        "(check SPOTREG_SMOKE_USER / SPOTREG_SMOKE_PASSWORD)"
    )


@stack
def test_plain_http_skips_tls_and_reports_disabled_deletes(plain_no_delete: Registry) -> None:
    results = by_name(run_smoke(plain_no_delete.target(None)))
    report = format_verdicts(list(results.values()))
    assert results[TLS_CHAIN].skipped and report.startswith("SKIP tls-chain: plain http"), report
    assert results[AUTH_CHALLENGE].passed and results[ANONYMOUS_REFUSED].passed, report
    round_trip = results[ROUND_TRIP]
    assert round_trip.passed, report
    assert "cleanup not allowed by the registry (DELETE manifest answered 405 UNSUPPORTED)" in round_trip.detail
    assert "left behind" in round_trip.detail
    assert smoke.smoke_passed(list(results.values()))


# --- the smoke suite end to end ----------------------------------------------------------------------


def run_smoke_suite(endpoint: str, *options: str) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_", "SPOTREG_SMOKE_")) or key == "PYTEST_DISABLE_PLUGIN_AUTOLOAD"
    }
    env.update({smoke.USER_ENV: USER, smoke.PASSWORD_ENV: PASSWORD})
    command = [
        sys.executable,
        "-m",
        "pytest",
        "suites/smoke",
        "--endpoint",
        endpoint,
        *options,
        "-p",
        "no:cacheprovider",
        "-q",
        "-rA",
    ]
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


@stack
def test_smoke_suite_passes_against_a_good_registry(good: Registry, pki: Pki) -> None:
    started = time.monotonic()
    done = run_smoke_suite(good.endpoint, "--smoke-ca", str(pki.ca_file))
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "4 passed" in output, output
    verdicts = output.split("smoke verdicts", 1)[1].splitlines()[1:5]
    assert [line.split(":", 1)[0] for line in verdicts] == [f"PASS {name}" for name in CHECK_NAMES], output
    assert time.monotonic() - started < 30


@stack
def test_smoke_suite_fails_naming_the_check_against_auth_off(no_auth: Registry, pki: Pki) -> None:
    done = run_smoke_suite(no_auth.endpoint, "--smoke-ca", str(pki.ca_file), "--smoke-min-cert-days", "30")
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "2 failed, 2 passed" in output, output
    assert "FAILED suites/smoke/test_smoke.py::test_auth_challenge" in output, output
    assert "FAIL auth-challenge: GET /v2/ without credentials answered 200" in output, output
    assert "FAIL anonymous-refused:" in output, output


def test_smoke_suite_refuses_plain_http_beyond_loopback() -> None:
    done = run_smoke_suite("192.0.2.1:5000", "--smoke-insecure-http")
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "plain http is allowed only for an address in 127.0.0.0/8" in output, output


# --- a fake registry on 127.0.0.1, for what the real one here does not do ------------------------------


@dataclass
class FakeRegistry:
    """Just enough of the Registry API v2 for a round trip, with knobs a real registry turns elsewhere:
    blob GETs redirected to a separate "storage" origin (distribution on S3 with redirects on), upload
    Locations on another origin (a TLS proxy without X-Forwarded-*), a Bearer challenge."""

    storage_port: int = 0
    redirect_blobs: bool = False
    upload_origin: str | None = None
    challenge: str = 'Basic realm="fake"'
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[str, bytes] = field(default_factory=dict)
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)  # (server, method path, Authorization)


def _handler(fake: FakeRegistry, server: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def handle_any(self) -> None:
            authorization = self.headers.get("Authorization")
            fake.seen.append((server, f"{self.command} {self.path}", authorization))
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path, _, query = self.path.partition("?")
            if server == "storage":
                self.reply(200, fake.blobs[path.rsplit("/", 1)[-1]])
                return
            expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            if authorization != expected or fake.challenge.startswith("Bearer"):
                self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": fake.challenge})
                return
            parts = path.split("/")
            if self.command == "GET" and path == "/v2/":
                self.reply(200, b"{}")
            elif self.command == "POST" and path.endswith("/blobs/uploads/"):
                self.reply(202, headers={"Location": f"{fake.upload_origin or ''}{path}upload-1?_state=x"})
            elif self.command == "PUT" and "/blobs/uploads/" in path:
                digest = query.split("digest=", 1)[1].replace("%3A", ":")
                fake.blobs[digest] = body
                self.reply(201, headers={"Docker-Content-Digest": digest})
            elif self.command == "PUT" and parts[-2] == "manifests":
                digest = sha256_digest(body)
                fake.manifests[parts[-1]] = fake.manifests[digest] = body
                self.reply(201, headers={"Docker-Content-Digest": digest})
            elif self.command == "GET" and parts[-2] == "manifests" and parts[-1] in fake.manifests:
                manifest = fake.manifests[parts[-1]]
                self.reply(200, manifest, {"Docker-Content-Digest": sha256_digest(manifest)})
            elif self.command == "GET" and parts[-2] == "blobs" and fake.redirect_blobs:
                storage = f"http://{LOOPBACK}:{fake.storage_port}/bucket/{parts[-1]}?X-Amz-Signature=fake"
                self.reply(307, headers={"Location": storage})
            elif self.command == "GET" and parts[-2] == "blobs":
                self.reply(200, fake.blobs[parts[-1]])
            elif self.command == "DELETE" and parts[-2] == "manifests":
                fake.manifests = {}
                self.reply(202)
            elif self.command == "DELETE":
                self.reply(202)
            else:
                self.reply(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any

    return Handler


@pytest.fixture
def fake_registry() -> Iterator[tuple[FakeRegistry, SmokeTarget]]:
    """A fake registry and its storage origin, both plain http on 127.0.0.1 (threads in this process)."""
    fake = FakeRegistry()
    servers = [ThreadingHTTPServer((LOOPBACK, 0), _handler(fake, name)) for name in ("registry", "storage")]
    fake.storage_port = servers[1].server_address[1]
    threads = [threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True) for server in servers]
    for thread in threads:
        thread.start()
    endpoint = f"{LOOPBACK}:{servers[0].server_address[1]}"
    try:
        yield fake, SmokeTarget(endpoint, USER, PASSWORD, scheme="http", insecure_http=True, connect_retries=0)
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_blobs_redirected_to_storage_are_fetched_there_without_credentials(
    fake_registry: tuple[FakeRegistry, SmokeTarget],
) -> None:
    fake, target = fake_registry
    fake.redirect_blobs = True
    result = check_round_trip(target)
    assert result.passed, result.line()
    assert f"digests match via redirect to {LOOPBACK}" in result.detail, result.detail
    storage_requests = [(request, auth) for server, request, auth in fake.seen if server == "storage"]
    assert len(storage_requests) == 2, fake.seen
    assert all(auth is None for _, auth in storage_requests), "credentials leaked to the storage origin"


def test_an_upload_location_on_another_origin_gets_no_credentials(
    fake_registry: tuple[FakeRegistry, SmokeTarget],
) -> None:
    fake, target = fake_registry
    fake.upload_origin = f"http://127.0.0.2:{fake.storage_port}"
    result = check_round_trip(target)
    assert result.passed is False, result.line()
    assert "upload's Location http://127.0.0.2:" in result.detail and "not sending credentials there" in result.detail
    assert [server for server, _, _ in fake.seen] == ["registry"] * len(fake.seen)


def test_a_bearer_challenge_passes_the_challenge_and_explains_the_round_trip(
    fake_registry: tuple[FakeRegistry, SmokeTarget],
) -> None:
    fake, target = fake_registry
    fake.challenge = 'Bearer realm="https://auth.example.com/token",service="registry"'
    challenge = check_auth_challenge(target)
    assert challenge.passed, challenge.line()
    assert "Bearer realm=" in challenge.detail
    round_trip = check_round_trip(target)
    assert round_trip.passed is False
    assert "wants a token" in round_trip.detail and "Basic auth only" in round_trip.detail, round_trip.line()


# --- without a registry ------------------------------------------------------------------------------


def test_plain_http_needs_the_flag_and_loopback() -> None:
    with pytest.raises(SmokeConfigError, match="needs the explicit insecure flag"):
        SmokeTarget("127.0.0.1:5000", "u", "p", scheme="http")
    with pytest.raises(SmokeConfigError, match=r"only for an address in 127\.0\.0\.0/8"):
        SmokeTarget("registry.example.com:5000", "u", "p", scheme="http", insecure_http=True)
    with pytest.raises(SmokeConfigError, match=r"only for an address in 127\.0\.0\.0/8"):
        SmokeTarget("[::1]:5000", "u", "p", scheme="http", insecure_http=True)
    assert SmokeTarget("127.8.9.10:5000", "u", "p", scheme="http", insecure_http=True).base_url == (
        "http://127.8.9.10:5000"
    )


@pytest.mark.parametrize(
    ("endpoint", "base_url"),
    [
        ("registry.example.com", "https://registry.example.com:443"),
        ("registry.example.com:5000", "https://registry.example.com:5000"),
        ("[2001:db8::1]:5000", "https://[2001:db8::1]:5000"),
        ("[2001:db8::1]", "https://[2001:db8::1]:443"),
    ],
)
def test_endpoint_is_host_and_optional_port(endpoint: str, base_url: str) -> None:
    assert SmokeTarget(endpoint, "u", "p").base_url == base_url


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("https://registry.example.com", "without scheme"),
        ("registry.example.com/v2/", "without scheme, path"),
        ("registry.example.com:", "the port is empty"),
        ("registry.example.com:http", "is not a number"),
        ("registry.example.com:70000", "is not a number in 1..65535"),
        ("2001:db8::1", "in brackets"),
        (":5000", "the host is empty"),
        ("", "expected HOST"),
    ],
)
def test_bad_endpoints_are_refused_with_the_rule(endpoint: str, message: str) -> None:
    with pytest.raises(SmokeConfigError, match=message):
        SmokeTarget(endpoint, "u", "p")


def test_target_from_environ_reads_credentials_and_hides_the_password(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("placeholder")
    target = target_from_environ(
        "registry.example.com",
        ca_file=ca,
        min_cert_days=30,
        environ={smoke.USER_ENV: "ci", smoke.PASSWORD_ENV: "hunter2-secret"},
    )
    assert (target.username, target.password, target.ca_file, target.min_cert_days) == ("ci", "hunter2-secret", ca, 30)
    assert "hunter2-secret" not in repr(target)
    with pytest.raises(SmokeConfigError, match="no such file"):
        target_from_environ("registry.example.com", ca_file=tmp_path / "missing.pem", environ={})


def test_round_trip_without_credentials_fails_naming_the_variables() -> None:
    result = check_round_trip(target_from_environ("registry.example.com", environ={}))
    assert result.line() == "FAIL round-trip: no credentials: set SPOTREG_SMOKE_USER and SPOTREG_SMOKE_PASSWORD"


def test_nothing_listening_fails_every_network_check_quickly() -> None:
    target = SmokeTarget(f"{LOOPBACK}:{free_port()}", "u", "p", connect_retries=0)
    for check in (check_tls_chain, check_auth_challenge, check_anonymous_refused):
        result = check(target)
        assert result.passed is False
        assert f"cannot connect to {target.endpoint}" in result.detail and "refused" in result.detail, result.line()


def test_smoke_images_are_unique_and_self_consistent() -> None:
    import json

    first, second = make_smoke_image(), make_smoke_image()
    assert first.repository != second.repository and first.tag != second.tag
    assert first.layer_digest != second.layer_digest
    manifest = json.loads(first.manifest)
    assert manifest["mediaType"] == MANIFEST_V2
    config = {"mediaType": IMAGE_CONFIG, "size": len(first.config), "digest": first.config_digest}
    layer = {"mediaType": LAYER_TAR_GZIP, "size": len(first.layer), "digest": first.layer_digest}
    assert (manifest["config"], manifest["layers"]) == (config, [layer])
    assert first.repository.startswith("spotreg-smoke/") and first.tag.startswith("smoke-")


def test_format_verdicts_prints_one_line_per_check() -> None:
    results = [
        CheckResult(TLS_CHAIN, True, "87 days left"),
        CheckResult(AUTH_CHALLENGE, False, "GET /v2/ answered 200"),
        CheckResult(ANONYMOUS_REFUSED, None, "skipped for a reason"),
    ]
    assert format_verdicts(results) == (
        "PASS tls-chain: 87 days left\nFAIL auth-challenge: GET /v2/ answered 200\n"
        "SKIP anonymous-refused: skipped for a reason"
    )
    assert not smoke.smoke_passed(results)
    assert smoke.smoke_passed([results[0], results[2]])
