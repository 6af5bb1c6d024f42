"""Auth: nobody without the right password pushes or pulls. TLS (self-signed, every stack variant):
the box's address is not loopback, so the Docker engine verifies the registry's certificate — it
pushes and pulls with the deployment's CA in its certs.d and refuses without it (or with another
CA); a client without the CA, and plain HTTP, are refused."""

from __future__ import annotations

import contextlib
import secrets
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from fixtures.booted_registry import USER, BootedRegistry
from fixtures.docker_engine import CERTS_D
from fixtures.round_trip import EngineError, pull, push, round_trip
from provisioning.render.tls import render_selfsigned

pytestmark = pytest.mark.stack

CHALLENGE = 'Basic realm="spotreg"'
REFUSED = r"(?i)no basic auth credentials|unauthorized|authentication required"
UNTRUSTED = r"x509: certificate signed by unknown authority"


@pytest.fixture(scope="module")
def pushed(booted_registries, docker_client, base_image):
    """An image pushed (with credentials) to the registry, for the refused pulls and pushes to fail on."""
    registry = booted_registries("redirect-on")
    repository = f"stack/auth-{secrets.token_hex(4)}"
    remote = f"{registry.address}/{repository}"
    docker_client.images.get(base_image).tag(remote, tag="v1")
    try:
        push(docker_client, remote, "v1", registry.auth)
    finally:
        docker_client.images.remove(f"{remote}:v1")
    return registry, repository


def trusted_ca_directory(registry: BootedRegistry) -> Path:
    """The engine's certs.d entry the fixture made for the registry: it holds the deployment's CA."""
    directory = CERTS_D / registry.address
    assert (directory / "ca.crt").read_bytes() == registry.ca_pem, f"{directory} does not hold the deployment's CA"
    return directory


@contextlib.contextmanager
def certs_d_replaced(registry: BootedRegistry, parking: Path, ca_pem: bytes | None = None) -> Iterator[None]:
    """The engine's certs.d entry for the registry moved aside (to ``parking``) for the block — with
    ``ca_pem`` in its place if given — and put back afterwards, whatever happened."""
    directory = trusted_ca_directory(registry)
    parked = parking / "certs.d-entry"
    shutil.move(directory, parked)
    try:
        if ca_pem is not None:
            directory.mkdir()
            (directory / "ca.crt").write_bytes(ca_pem)
        yield
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        shutil.move(parked, directory)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/"),
        ("GET", "/v2/_catalog"),
        ("GET", "/v2/{repository}/manifests/v1"),
        ("GET", "/v2/{repository}/tags/list"),
        ("POST", "/v2/{repository}/blobs/uploads/"),
        ("PUT", "/v2/{repository}/manifests/v2"),
    ],
)
@pytest.mark.parametrize("credentials", ["anonymous", "wrong password", "wrong user"])
def test_requests_without_the_right_credentials_get_a_basic_challenge(pushed, method, path, credentials):
    registry, repository = pushed
    password = registry.auth["password"]
    auth = {"anonymous": None, "wrong password": (USER, password + "x"), "wrong user": ("nobody", password)}
    api = registry.api(auth=auth[credentials])

    response = api.request(method, path.format(repository=repository), allow_redirects=False)

    assert response.status_code == 401, response.text
    assert response.headers.get("WWW-Authenticate") == CHALLENGE
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_the_right_credentials_are_accepted(pushed):
    registry, repository = pushed
    api = registry.api()
    assert api.request("GET", "/v2/").status_code == 200
    assert api.tags(repository) == ["v1"]


@pytest.mark.parametrize("credentials", ["anonymous", "wrong password"])
def test_engine_push_and_pull_without_the_right_credentials_fail(pushed, docker_client, base_image, credentials):
    registry, repository = pushed
    auth = None if credentials == "anonymous" else {"username": USER, "password": registry.auth["password"] + "x"}
    remote = f"{registry.address}/{repository}"
    docker_client.images.get(base_image).tag(remote, tag="refused")
    try:
        with pytest.raises(EngineError, match=REFUSED):
            push(docker_client, remote, "refused", auth)
    finally:
        docker_client.images.remove(f"{remote}:refused")
    with pytest.raises(EngineError, match=REFUSED):
        pull(docker_client, remote, "v1", auth)
    assert registry.api().tags(repository) == ["v1"]  # nothing was added


def test_round_trip_over_https_with_the_ca_in_certs_d(booted_registries, docker_client, make_test_image, phases):
    """The engine pushes and pulls over HTTPS to the box's (non-loopback) address, verifying the
    shipped certificate against the deployment's CA in certs.d (what the fixture put there)."""
    registry = booted_registries("redirect-on")
    assert registry.url == f"https://{registry.box.address}"  # port 443: the scheme's own
    trusted_ca_directory(registry)
    repository = f"stack/tls-{secrets.token_hex(4)}"
    image = make_test_image(f"{registry.address}/{repository}:build")

    round_trip(docker_client, registry.api(), image, registry.address, repository, "v1", registry.auth, phases)


def test_engine_refuses_the_registry_without_its_ca_or_with_another_ca(pushed, docker_client, base_image, tmp_path):
    """The engine verifies the certificate: with the right credentials, but without the deployment's
    CA in certs.d — or with another CA there, whose own certificate names the same address — it
    neither pushes nor pulls; with the CA back, it does both."""
    registry, repository = pushed
    source = f"{registry.address}/{repository}"
    target_repository = f"{repository}-tls"
    target = f"{registry.address}/{target_repository}"
    host = registry.address.rsplit(":", 1)[0]
    stranger = render_selfsigned([host], now=datetime.now(UTC), days=1).ca_cert_pem
    assert stranger != registry.ca_pem
    base_id = docker_client.images.get(base_image).id
    docker_client.images.get(base_image).tag(target, tag="v1")
    try:
        for replacement, parking in ((None, tmp_path / "without"), (stranger, tmp_path / "another")):
            parking.mkdir()
            with certs_d_replaced(registry, parking, replacement):
                with pytest.raises(EngineError, match=UNTRUSTED):
                    push(docker_client, target, "v1", registry.auth)
                with pytest.raises(EngineError, match=UNTRUSTED):
                    pull(docker_client, source, "v1", registry.auth)
        assert registry.api().manifest_status(target_repository, "v1") == 404  # nothing got through

        trusted_ca_directory(registry)  # put back
        assert (
            push(docker_client, target, "v1", registry.auth) == registry.api().manifest(target_repository, "v1").digest
        )
        assert pull(docker_client, source, "v1", registry.auth).id == base_id
    finally:
        for reference in (f"{target}:v1", f"{source}:v1"):
            with contextlib.suppress(Exception):
                docker_client.images.remove(reference)


def test_registry_refuses_clients_without_the_ca_and_plain_http(booted_registries):
    registry = booted_registries("redirect-on")

    with pytest.raises(requests.exceptions.SSLError, match=r"(?i)certificate verify failed"):
        requests.get(f"{registry.url}/v2/", timeout=10)  # the system's CAs only

    plain = requests.get(f"http://{registry.address}/v2/", timeout=10)
    assert plain.status_code == 400 and "plain HTTP request was sent to HTTPS port" in plain.text  # the front's

    trusted = requests.get(f"{registry.url}/v2/", timeout=10, verify=str(registry.ca_path))
    assert trusted.status_code == 401 and trusted.headers["WWW-Authenticate"] == CHALLENGE
