"""`spotreg login` against a booted self-signed registry at the box's non-loopback address, with this
machine's real Docker engine: before it the engine refuses the registry's certificate; after it (the CA
in /etc/docker/certs.d under the name image references use, `docker login` with the password on stdin)
the `docker` client tags, pushes and pulls by that name."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from fixtures.booted_registry import USER
from fixtures.stack_deployment import PASSWORD_ENV
from provisioning import login as registry_login

pytestmark = [pytest.mark.stack, pytest.mark.box_variant("redirect-on")]

UNTRUSTED = "x509: certificate signed by unknown authority"


def docker(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The `docker` client (its configuration: $DOCKER_CONFIG), as a user runs it."""
    return subprocess.run(["docker", *argv], capture_output=True, text=True, timeout=300, check=check)


def test_login_then_tag_push_pull_by_the_registrys_name(
    booted_registries, base_image, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if shutil.which("docker") is None:
        pytest.skip("no docker client on PATH")
    if os.geteuid() != 0:
        pytest.skip(f"login writes {registry_login.ROOTFUL_CERTS_D}: run as root")
    registry = booted_registries("redirect-on")
    deployment = registry.deployment
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))  # the login's credentials: this test's
    plan = registry_login.plan_login(deployment.spec, deployment.clients, certs_dir=registry_login.ROOTFUL_CERTS_D)
    # port 443 is the scheme's own: the name is the bare address, the fixture's certs.d entry (host:443) not it
    assert plan.registry == registry.box.address, (plan.registry, registry.box.address)
    assert plan.username == USER
    assert not plan.ca_path.parent.exists(), f"{plan.ca_path.parent} exists already"
    remote = f"{plan.registry}/stack/login-{secrets.token_hex(4)}"
    docker("tag", base_image, f"{remote}:v1")
    try:
        refused = docker("push", f"{remote}:v1", check=False)
        assert refused.returncode != 0 and UNTRUSTED in refused.stderr, refused.stderr

        installed = registry_login.login(
            plan, deployment.spec, deployment.clients, {PASSWORD_ENV: registry.auth["password"]}
        )

        assert installed == plan.ca_path and installed.read_bytes() == registry.ca_pem
        stored = (tmp_path / "docker-config" / "config.json").read_text()
        assert plan.registry in stored and registry.auth["password"] not in stored  # base64 of user:password
        pushed = docker("push", f"{remote}:v1")
        digest = registry.api().manifest("/".join(remote.split("/")[1:]), "v1").digest
        assert digest in pushed.stdout, pushed.stdout
        docker("rmi", f"{remote}:v1")
        pulled = docker("pull", f"{remote}:v1")
        assert digest in pulled.stdout, pulled.stdout
    finally:
        docker("rmi", f"{remote}:v1", check=False)
        shutil.rmtree(plan.ca_path.parent, ignore_errors=True)
