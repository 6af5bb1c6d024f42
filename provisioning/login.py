"""`spotreg login`: make the local Docker engine trust a deployment's registry and log in to it.

Planning reads AWS (the deployment's address, and for `tls.mode = "selfsigned"` its CA in SSM) and
decides what to do; the effects install the CA where the engine reads it and run `docker login` with
the password on stdin, never on a command line. `printed_commands` is the same plan as shell lines that
never hold the secret: they read it from its reference (`env:VAR`, `ssm:/path`) themselves.

The registry is named as image references name it: `host` when it answers on 443, `host:port`
otherwise; the engine looks for the CA in `certs.d/<that name>/ca.crt` of its configuration directory:
`/etc/docker` for a rootful engine, `$XDG_CONFIG_HOME/docker` (default `~/.config/docker`) for a
rootless one (`docker info` lists `name=rootless` among its security options).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from provisioning.aws.addresses import public_addresses
from provisioning.aws.parameters import read_deployment_parameters
from provisioning.clients import AwsClients
from provisioning.errors import SpotregError
from provisioning.health.endpoint import registry_url
from provisioning.names import tls_ca_parameter
from provisioning.secrets import resolve_secrets
from provisioning.spec import Spec

ROOTFUL_CERTS_D = Path("/etc/docker/certs.d")
DOCKER_TIMEOUT = 120.0  # seconds for one docker command

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


@dataclass(frozen=True)
class LoginPlan:
    """What `login` does: trust `ca_pem` (self-signed only) in `certs_dir`, log `username` in to `registry`."""

    registry: str  # host[:port], as image references name the registry
    username: str
    password_ref: str  # the spec's reference (env:VAR, ssm:/path), never the value
    ca_pem: str | None
    certs_dir: Path  # the engine's certs.d

    @property
    def ca_path(self) -> Path:
        """Where the engine reads the registry's CA."""
        return self.certs_dir / self.registry / "ca.crt"


def registry_name(spec: Spec, host: str) -> str:
    """``host`` or ``host:port`` (port unless the scheme's default), as `docker tag`/`login` name it."""
    return urlsplit(registry_url(spec, host)).netloc


def certs_d(*, rootless: bool, environ: Mapping[str, str], home: Path | None = None) -> Path:
    """The certs.d directory the engine reads: /etc/docker's, or the rootless engine's own."""
    if not rootless:
        return ROOTFUL_CERTS_D
    config = environ.get("XDG_CONFIG_HOME") or str((home or Path.home()) / ".config")
    return Path(config) / "docker" / "certs.d"


def docker_executable() -> str:
    """The `docker` client on PATH, or a SpotregError saying it is missing."""
    found = shutil.which("docker")
    if found is None:
        raise SpotregError("the docker client is not installed (no 'docker' on PATH)", hint="install Docker first")
    return found


def engine_is_rootless(run: Runner = subprocess.run) -> bool:
    """Whether the local engine runs rootless (its security options name it); a SpotregError when it
    does not answer."""
    answer = run(
        [docker_executable(), "info", "--format", "{{json .SecurityOptions}}"],
        capture_output=True,
        text=True,
        timeout=DOCKER_TIMEOUT,
        check=False,
    )
    if answer.returncode != 0:
        raise SpotregError(f"the Docker engine does not answer: {answer.stderr.strip()}", hint="start dockerd")
    return "rootless" in answer.stdout


def registry_host(spec: Spec, clients: AwsClients) -> str:
    """The registry's host: dns.hostname, else the deployment's first public address."""
    if spec.dns.hostname:
        return spec.dns.hostname
    found = public_addresses(clients.ec2, spec.deployment.name)
    if not found:
        raise SpotregError(f"deployment {spec.deployment.name!r} has no public address", hint="run 'spotreg up' first")
    return found[0]


def deployment_ca(spec: Spec, clients: AwsClients) -> str | None:
    """The self-signed CA (PEM) `up` stored in SSM; None unless tls.mode is selfsigned."""
    if spec.tls.mode != "selfsigned":
        return None
    stored = read_deployment_parameters(clients.ssm, spec).get(tls_ca_parameter(spec))
    if stored is None:
        raise SpotregError(
            f"no CA in SSM at {tls_ca_parameter(spec)} for deployment {spec.deployment.name!r}",
            hint="run 'spotreg up' first",
        )
    return stored.value


def plan_login(spec: Spec, clients: AwsClients, *, certs_dir: Path) -> LoginPlan:
    """The login of the spec's first registry user (reads the address and the CA from AWS)."""
    user = spec.registry.users[0]
    return LoginPlan(
        registry=registry_name(spec, registry_host(spec, clients)),
        username=user.name,
        password_ref=user.password,
        ca_pem=deployment_ca(spec, clients),
        certs_dir=certs_dir,
    )


def _password_source(ref: str, region: str) -> str:
    """A shell command printing the secret behind ``ref`` (never the secret itself)."""
    if ref.startswith("env:"):
        return f"printf '%s' \"${ref.removeprefix('env:')}\""
    name = ref.removeprefix("ssm:")
    read = ["aws", "ssm", "get-parameter", "--region", region, "--name", name, "--with-decryption"]
    return shlex.join([*read, "--query", "Parameter.Value", "--output", "text"])


def printed_commands(plan: LoginPlan, *, region: str, ca_file: Path | None, sudo: bool) -> list[str]:
    """The plan as shell lines: install the CA from ``ca_file`` (self-signed), then `docker login`
    with the password read from its reference and piped to --password-stdin."""
    lines: list[str] = []
    if plan.ca_pem is not None:
        if ca_file is None:
            raise ValueError("a self-signed deployment's commands need the CA's file")
        prefix = ["sudo"] if sudo else []
        lines.append(shlex.join([*prefix, "mkdir", "-p", str(plan.ca_path.parent)]))
        lines.append(shlex.join([*prefix, "cp", str(ca_file), str(plan.ca_path)]))
    login = shlex.join(["docker", "login", plan.registry, "--username", plan.username, "--password-stdin"])
    lines.append(f"{_password_source(plan.password_ref, region)} | {login}")
    return lines


def install_ca(plan: LoginPlan) -> Path | None:
    """Write the CA where the engine reads it (read on every connection: no restart); None if no CA."""
    if plan.ca_pem is None:
        return None
    try:
        plan.ca_path.parent.mkdir(parents=True, exist_ok=True)
        plan.ca_path.write_text(plan.ca_pem, encoding="utf-8")
    except PermissionError as error:
        raise SpotregError(
            f"cannot write {plan.ca_path}: {error.strerror}", hint="run as root, or use --print and sudo"
        ) from error
    return plan.ca_path


def docker_login(plan: LoginPlan, password: str, *, run: Runner = subprocess.run) -> None:
    """`docker login` with the password on stdin; a SpotregError with docker's own words if refused."""
    argv: Sequence[str] = [
        docker_executable(),
        "login",
        plan.registry,
        "--username",
        plan.username,
        "--password-stdin",
    ]
    answer = run(argv, input=password, capture_output=True, text=True, timeout=DOCKER_TIMEOUT, check=False)
    if answer.returncode != 0:
        said = (answer.stderr or answer.stdout).strip().replace(password, "***")
        raise SpotregError(f"docker login {plan.registry} failed: {said}")


def login(
    plan: LoginPlan, spec: Spec, clients: AwsClients, environ: Mapping[str, str], *, run: Runner = subprocess.run
) -> Path | None:
    """Install the CA (self-signed) and log the first user in; returns where the CA went."""
    password = resolve_secrets(spec, environ, clients.ssm).users[plan.username]
    installed = install_ca(plan)
    docker_login(plan, password, run=run)
    return installed
