"""`spotreg login`: the CA where the engine reads it, `docker login` with the password on stdin only,
and `--print`'s commands, which read the secret from its reference and never hold it. A fake `docker`
on PATH records what it was run with."""

from __future__ import annotations

import json
import os
import shlex
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from provisioning import login as registry_login
from provisioning.clients import AwsClients
from provisioning.errors import SpotregError
from provisioning.names import tls_ca_parameter
from provisioning.provisioner import Provisioner
from provisioning.spec import Spec
from spotreg.cli import build_parser
from spotreg.cli import main as spotreg
from suites.offline.conftest import PASSWORD, PASSWORD_ENV, build_spec

FAKE_DOCKER = """#!{python}
import json, os, sys
record = os.environ["FAKE_DOCKER_RECORD"]
stdin = "" if sys.stdin.isatty() else sys.stdin.read()
with open(record, "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "stdin": stdin}}) + "\\n")
if sys.argv[1:2] == ["info"]:
    print(os.environ.get("FAKE_DOCKER_SECURITY", '["name=seccomp,profile=builtin"]'))
elif sys.argv[1:2] == ["login"] and os.environ.get("FAKE_DOCKER_REFUSE"):
    print("Error response from daemon: unauthorized: " + stdin, file=sys.stderr)
    sys.exit(1)
else:
    print("Login Succeeded")
"""

LETSENCRYPT = {
    "dns": {"mode": "route53", "hostname": "registry.example.com", "zone_id": "Z0123456789ABCDEFGHIJ"},
    "tls": {"mode": "letsencrypt", "email": "ops@example.com"},
}


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[dict[str, Any]]]:
    """A `docker` first on PATH; returns a reader of its calls (argv, stdin)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER.format(python=sys.executable))
    docker.chmod(docker.stat().st_mode | stat.S_IXUSR)
    record = tmp_path / "docker-calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DOCKER_RECORD", str(record))

    def calls() -> list[dict[str, Any]]:
        if not record.exists():
            return []
        return [json.loads(line) for line in record.read_text().splitlines()]

    return calls


def _up(make_provisioner: Callable[..., Provisioner], spec: Spec) -> Provisioner:
    provisioner = make_provisioner(spec)
    provisioner.up()
    return provisioner


def write_config(path: Path, *, tls: str = 'mode = "selfsigned"', dns: str = 'mode = "eip"') -> Path:
    path.write_text(
        f"""
[deployment]
name = "offline"
region = "us-east-1"

[storage]
bucket = "spotreg-offline-images"

[instance]
types = ["t4g.micro", "t3.micro"]

[network]
operator_cidrs = ["203.0.113.7/32"]

[dns]
{dns}

[tls]
{tls}

[[registry.users]]
name = "ci"
password = "env:{PASSWORD_ENV}"
""",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("overrides", "host", "name"),
    [
        ({"tls": {"mode": "selfsigned"}, "registry": {"port": 443}}, "203.0.113.9", "203.0.113.9"),
        ({"tls": {"mode": "selfsigned"}, "registry": {"port": 5000}}, "203.0.113.9", "203.0.113.9:5000"),
        (LETSENCRYPT, "registry.example.com", "registry.example.com"),
        ({"tls": {"mode": "none"}, "registry": {"port": 5000}}, "10.0.0.5", "10.0.0.5:5000"),
        ({"tls": {"mode": "none"}, "registry": {"port": 80}}, "10.0.0.5", "10.0.0.5"),
    ],
)
def test_the_registry_is_named_as_image_references_name_it(overrides: dict[str, Any], host: str, name: str) -> None:
    """The port is left out when it is the scheme's own: `docker tag`, `login` and certs.d all use this."""
    assert registry_login.registry_name(build_spec(**overrides), host) == name


def test_certs_d_is_etc_docker_or_the_rootless_engines_own(tmp_path: Path) -> None:
    assert registry_login.certs_d(rootless=False, environ={}) == Path("/etc/docker/certs.d")
    assert registry_login.certs_d(rootless=True, environ={"XDG_CONFIG_HOME": "/x"}) == Path("/x/docker/certs.d")
    assert registry_login.certs_d(rootless=True, environ={}, home=tmp_path) == tmp_path / ".config/docker/certs.d"


def test_selfsigned_plan_trusts_the_stored_ca_at_the_deployments_address(
    make_provisioner: Callable[..., Provisioner], clients: AwsClients, tmp_path: Path
) -> None:
    spec = build_spec(dns={"mode": "eip"}, registry={"port": 5000})
    _up(make_provisioner, spec)
    address = clients.ec2.describe_addresses()["Addresses"][0]["PublicIp"]
    ca = clients.ssm.get_parameter(Name=tls_ca_parameter(spec), WithDecryption=True)["Parameter"]["Value"]

    plan = registry_login.plan_login(spec, clients, certs_dir=tmp_path / "certs.d")

    assert plan.registry == f"{address}:5000" and plan.username == "ci" and plan.ca_pem == ca
    assert plan.ca_path == tmp_path / "certs.d" / f"{address}:5000" / "ca.crt"
    lines = registry_login.printed_commands(plan, region="us-east-1", ca_file=Path("/w/ca.crt"), sudo=True)
    assert lines == [
        f"sudo mkdir -p {tmp_path}/certs.d/{address}:5000",
        f"sudo cp /w/ca.crt {tmp_path}/certs.d/{address}:5000/ca.crt",
        f"printf '%s' \"${PASSWORD_ENV}\" | docker login {address}:5000 --username ci --password-stdin",
    ]


def test_letsencrypt_and_none_log_in_with_no_ca(clients: AwsClients, tmp_path: Path) -> None:
    """No CA to trust: a public certificate, or plain HTTP (which the engine must list as insecure)."""
    spec = build_spec(**LETSENCRYPT, registry={"users": [{"name": "ci", "password": "ssm:/team/registry/ci"}]})
    plan = registry_login.plan_login(spec, clients, certs_dir=tmp_path)
    assert plan.ca_pem is None and plan.registry == "registry.example.com"
    assert registry_login.printed_commands(plan, region="eu-west-1", ca_file=None, sudo=False) == [
        "aws ssm get-parameter --region eu-west-1 --name /team/registry/ci --with-decryption "
        "--query Parameter.Value --output text | docker login registry.example.com --username ci --password-stdin"
    ]
    plain = build_spec(tls={"mode": "none"}, dns={"mode": "none"}, registry={"port": 5000})
    clients.ec2.allocate_address(Domain="vpc")  # another deployment's: not this one's address
    with pytest.raises(SpotregError, match="has no public address"):
        registry_login.plan_login(plain, clients, certs_dir=tmp_path)


def test_login_installs_the_ca_and_passes_the_password_on_stdin_only(
    make_provisioner: Callable[..., Provisioner],
    clients: AwsClients,
    environ: dict[str, str],
    fake_docker: Callable[[], list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    spec = build_spec(dns={"mode": "eip"}, registry={"port": 443})
    _up(make_provisioner, spec)
    plan = registry_login.plan_login(spec, clients, certs_dir=tmp_path / "certs.d")

    installed = registry_login.login(plan, spec, clients, environ)

    assert installed == plan.ca_path and installed.read_text() == plan.ca_pem
    assert fake_docker() == [
        {"argv": ["login", plan.registry, "--username", "ci", "--password-stdin"], "stdin": PASSWORD}
    ]


def test_a_refused_login_is_an_error_that_never_shows_the_password(
    make_provisioner: Callable[..., Provisioner],
    clients: AwsClients,
    environ: dict[str, str],
    fake_docker: Callable[[], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    spec = build_spec(dns={"mode": "eip"})
    _up(make_provisioner, spec)
    plan = registry_login.plan_login(spec, clients, certs_dir=tmp_path / "certs.d")
    monkeypatch.setenv("FAKE_DOCKER_REFUSE", "1")  # docker echoes stdin into its error: it must not get out

    with pytest.raises(SpotregError, match=r"docker login .* failed: .*unauthorized") as raised:
        registry_login.login(plan, spec, clients, environ)
    assert PASSWORD not in str(raised.value)


def test_docker_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SpotregError, match="docker client is not installed"):
        registry_login.engine_is_rootless()


@pytest.fixture
def deployed_config(
    make_provisioner: Callable[..., Provisioner], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Path:
    """An eip deployment that ``up`` made, its config file, and its user's password in the environment."""
    _up(make_provisioner, build_spec(dns={"mode": "eip"}))
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    return write_config(tmp_path / "spotreg.toml")


def test_cli_login_runs_docker_login_and_never_shows_the_secret(
    deployed_config: Path,
    fake_docker: Callable[[], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Rootless (as the fake engine says): the CA goes to $XDG_CONFIG_HOME/docker/certs.d."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("FAKE_DOCKER_SECURITY", '["name=seccomp,profile=builtin","name=rootless"]')

    assert spotreg(["login", "--config", str(deployed_config)]) == 0

    calls = fake_docker()
    assert [call["argv"][0] for call in calls] == ["info", "login"]
    registry = calls[1]["argv"][1]
    assert calls[1] == {"argv": ["login", registry, "--username", "ci", "--password-stdin"], "stdin": PASSWORD}
    assert (tmp_path / "xdg/docker/certs.d" / registry / "ca.crt").read_text().startswith("-----BEGIN CERTIFICATE")
    out, err = capsys.readouterr()
    assert f"logged in to {registry} as ci" in out
    assert PASSWORD not in out + err


def test_cli_print_shows_the_commands_and_runs_nothing(
    deployed_config: Path,
    fake_docker: Callable[[], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.chdir(tmp_path)

    assert spotreg(["login", "--config", str(deployed_config), "--print"]) == 0

    out, err = capsys.readouterr()
    assert fake_docker() == []  # nothing run, nothing installed
    ca_file = tmp_path / "offline-ca.crt"
    assert ca_file.read_text().startswith("-----BEGIN CERTIFICATE")
    lines = out.splitlines()
    assert len(lines) == 3, out
    registry = lines[2].split(" docker login ")[1].split()[0]
    assert lines[0].endswith(f"mkdir -p /etc/docker/certs.d/{registry}")
    assert lines[1].endswith(f"cp {ca_file} /etc/docker/certs.d/{registry}/ca.crt")
    assert lines[2].startswith(f"printf '%s' \"${PASSWORD_ENV}\" | docker login ")
    assert PASSWORD not in out + err


def test_the_readmes_use_it_commands_parse() -> None:
    """The README's "Use it" `spotreg` lines are valid for the parser."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Use it\n", 1)[1].split("\n## ", 1)[0]
    lines = [line.split("#")[0] for line in section.splitlines() if line.startswith(".venv/bin/spotreg ")]
    assert [shlex.split(line)[1] for line in lines] == ["up", "login", "login"]
    for line in lines:
        build_parser().parse_args(shlex.split(line)[1:])
