"""A client that is not the project's code: skopeo pushes to and pulls from the stack's registry with
the configured auth, verifying the shipped certificate against the deployment's CA (``--cert-dir``);
without the CA it is refused."""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from fixtures.round_trip import check_layers, forget_locally, pull

pytestmark = pytest.mark.stack

SKOPEO = shutil.which("skopeo")


def skopeo(*arguments: str) -> subprocess.CompletedProcess[str]:
    assert SKOPEO is not None
    return subprocess.run(
        [SKOPEO, "--insecure-policy", *arguments], capture_output=True, text=True, timeout=180, check=False
    )


def _cert_dir(directory: Path, ca_pem: bytes | None) -> Path:
    """A ``--cert-dir`` for skopeo: ``ca.crt`` when given, else empty. skopeo then reads this directory
    instead of /etc/containers/certs.d and /etc/docker/certs.d (where the fixture put the CA for the
    engine), so what it trusts is exactly this."""
    directory.mkdir(exist_ok=True)
    if ca_pem is not None:
        (directory / "ca.crt").write_bytes(ca_pem)
    return directory


def _tls_options(registry, prefix: str, tmp_path: Path) -> list[str]:
    """``--<prefix>cert-dir`` holding the deployment's CA (verifying)."""
    return [f"--{prefix}cert-dir={_cert_dir(tmp_path / 'certs', registry.ca_pem)}"]


@pytest.mark.skipif(SKOPEO is None, reason="skopeo is not installed (Debian: apt-get install -y skopeo)")
@pytest.mark.parametrize("variant", ["redirect-on", "redirect-off"])
def test_skopeo_pushes_and_pulls_with_the_configured_auth(
    variant, booted_registries, docker_client, make_test_image, tmp_path
):
    registry = booted_registries(variant)
    repository = f"stack/skopeo-{secrets.token_hex(4)}"
    reference = f"docker://{registry.address}/{repository}:v1"
    creds = f"{registry.auth['username']}:{registry.auth['password']}"
    image = make_test_image(f"spotreg-test/skopeo-{secrets.token_hex(4)}:v1", layer_sizes=(2 * 1024 * 1024,))
    archive = tmp_path / "image.tar"
    with archive.open("wb") as sink:
        for chunk in docker_client.images.get(image.id).save(named=True):
            sink.write(chunk)

    refused = skopeo("copy", *_tls_options(registry, "dest-", tmp_path), f"docker-archive:{archive}", reference)
    assert refused.returncode != 0 and "unauthorized" in refused.stderr.lower(), refused.stderr

    source = f"docker-archive:{archive}"
    pushed = skopeo("copy", "--dest-creds", creds, *_tls_options(registry, "dest-", tmp_path), source, reference)
    assert pushed.returncode == 0, pushed.stderr

    inspected = skopeo("inspect", "--creds", creds, *_tls_options(registry, "", tmp_path), reference)
    assert inspected.returncode == 0, inspected.stderr
    manifest = registry.api().manifest(repository, "v1")
    assert json.loads(inspected.stdout)["Digest"] == manifest.digest
    check_layers(registry.api(), repository, manifest, image)  # the layers are the image's

    pulled_dir = tmp_path / "pulled"
    pulled = skopeo(
        "copy", "--src-creds", creds, *_tls_options(registry, "src-", tmp_path), reference, f"dir:{pulled_dir}"
    )
    assert pulled.returncode == 0, pulled.stderr
    assert (pulled_dir / "manifest.json").read_bytes() == manifest.raw
    for layer in manifest.layers:
        blob = pulled_dir / layer["digest"].removeprefix("sha256:")
        assert "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest() == layer["digest"]

    # and the engine (verifying the CA the fixture put in its certs.d) pulls what skopeo pushed: the same image
    forget_locally(docker_client, image.id)
    assert pull(docker_client, f"{registry.address}/{repository}", "v1", registry.auth).id == image.id


@pytest.mark.skipif(SKOPEO is None, reason="skopeo is not installed (Debian: apt-get install -y skopeo)")
def test_skopeo_without_the_ca_is_refused(booted_registries, tmp_path):
    registry = booted_registries("redirect-on")
    creds = f"{registry.auth['username']}:{registry.auth['password']}"
    reference = f"docker://{registry.address}/stack/unknown-{secrets.token_hex(4)}:v1"
    without = _cert_dir(tmp_path / "empty", None)
    with_ca = _cert_dir(tmp_path / "ca", registry.ca_pem)

    refused = skopeo("inspect", "--creds", creds, f"--cert-dir={without}", reference)

    assert refused.returncode != 0
    assert "certificate signed by unknown authority" in refused.stderr, refused.stderr
    # the same request with the CA gets past TLS and auth, to the registry's answer: no such repository
    answered = skopeo("inspect", "--creds", creds, f"--cert-dir={with_ca}", reference)
    assert answered.returncode != 0
    assert "certificate" not in answered.stderr and "unauthorized" not in answered.stderr.lower(), answered.stderr
    assert "unknown" in answered.stderr.lower(), answered.stderr
