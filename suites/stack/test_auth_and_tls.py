"""Auth: nobody without the right password pushes or pulls. TLS (selfsigned): HTTPS with the
rendered CA through the engine's certs.d, and a client without the CA is refused."""

from __future__ import annotations

import secrets

import pytest
import requests

from fixtures.booted_registry import USER
from fixtures.docker_engine import engine_trusts_ca
from fixtures.round_trip import EngineError, pull, push, round_trip

pytestmark = pytest.mark.stack

CHALLENGE = 'Basic realm="spotreg"'


@pytest.fixture(scope="module")
def pushed(booted_registries, docker_client, base_image):
    """An image pushed (with credentials) to the plain registry, for the anonymous pull to fail on."""
    registry = booted_registries("redirect-on")
    repository = f"stack/auth-{secrets.token_hex(4)}"
    remote = f"{registry.address}/{repository}"
    docker_client.images.get(base_image).tag(remote, tag="v1")
    try:
        push(docker_client, remote, "v1", registry.auth)
    finally:
        docker_client.images.remove(f"{remote}:v1")
    return registry, repository


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
        with pytest.raises(EngineError, match=r"(?i)no basic auth credentials|unauthorized|authentication required"):
            push(docker_client, remote, "refused", auth)
    finally:
        docker_client.images.remove(f"{remote}:refused")
    with pytest.raises(EngineError, match=r"(?i)no basic auth credentials|unauthorized|authentication required"):
        pull(docker_client, remote, "v1", auth)
    assert registry.api().tags(repository) == ["v1"]  # nothing was added


def test_selfsigned_round_trip_over_https_with_the_ca_in_certs_d(
    booted_registries, docker_client, make_test_image, phases
):
    """The engine pushes and pulls over HTTPS, trusting the rendered CA through certs.d.

    Note: an engine treats 127.0.0.0/8 as an insecure registry and then does not *verify* the
    certificate it is shown (it would fall back to plain HTTP if the registry spoke it). That this
    registry speaks only HTTPS is checked below; that the CA is what makes the certificate valid is
    checked with clients that verify (``requests`` here, skopeo in test_independent_client.py).
    """
    registry = booted_registries("selfsigned")
    assert registry.tls is not None and registry.url.startswith("https://")
    repository = f"stack/tls-{secrets.token_hex(4)}"
    image = make_test_image(f"{registry.address}/{repository}:build")

    with engine_trusts_ca(registry.address, registry.tls.ca_pem):
        round_trip(docker_client, registry.api(), image, registry.address, repository, "v1", registry.auth, phases)


def test_selfsigned_registry_refuses_clients_without_the_ca_and_plain_http(booted_registries):
    registry = booted_registries("selfsigned")
    assert registry.tls is not None

    with pytest.raises(requests.exceptions.SSLError, match=r"(?i)certificate verify failed"):
        requests.get(f"{registry.url}/v2/", timeout=10)  # the system's CAs only

    plain = requests.get(f"http://{registry.address}/v2/", timeout=10)
    assert plain.status_code == 400 and "HTTP request to an HTTPS server" in plain.text

    trusted = requests.get(f"{registry.url}/v2/", timeout=10, verify=str(registry.tls.ca_path))
    assert trusted.status_code == 401 and trusted.headers["WWW-Authenticate"] == CHALLENGE
