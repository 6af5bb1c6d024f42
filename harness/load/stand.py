"""What the load is measured against: moto's S3 in its own process, and registry containers on the host
engine with the rendered config, each CPU-limited like an instance type's baseline.

Why not the instance box: the box runs the registry in its own Docker engine inside a systemd
container, so limiting the registry's CPU (and Caddy's with it) would mean reaching into nested
cgroups; here the registry is one container of the host engine and ``--cpus`` is one update. What
differs from the instance is written here once: no TLS (the rendered config with ``tls.mode = none``),
``http.addr`` bound to 127.0.0.1, S3 at moto's server, and for ``caddy`` the registry's auth removed
and Caddy in front (see ``harness.load.caddy``).
"""

from __future__ import annotations

import contextlib
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import requests
import yaml

from harness.load import caddy
from harness.loopback import free_port
from provisioning.errors import WaitTimeout
from provisioning.health import probe
from provisioning.rehearsal.moto_server import MotoServer
from provisioning.render.registry_config import render_registry_config
from provisioning.secrets import make_htpasswd
from provisioning.spec import Spec
from provisioning.spec_loading import spec_from_mapping
from provisioning.waits import poll_until

LOAD_LABEL: Final = "io.spotreg.load"
CPU_PERIOD_US: Final = 100_000
DEFAULT_IMAGE: Final = "spotreg/registry:2.8.2-debian"
USER: Final = "load"


@dataclass(frozen=True)
class Configuration:
    """One way to serve pulls: who checks the password (``registry`` htpasswd or ``caddy``) at which bcrypt cost."""

    name: str
    auth_by: str  # "registry" or "caddy"
    bcrypt_cost: int


CONFIGURATIONS: Final = {
    c.name: c
    for c in (
        Configuration("htpasswd-5", "registry", 5),
        Configuration("htpasswd-10", "registry", 10),
        Configuration("caddy-10", "caddy", 10),
    )
}


def load_spec(run_id: str, image: str) -> Spec:
    """The spec whose rendered config the load's registries run: redirect on, as shipped; no TLS."""
    return spec_from_mapping(
        {
            "deployment": {"name": f"load-{run_id}", "region": "us-east-1"},
            "network": {"operator_cidrs": ["127.0.0.1/32"]},
            "storage": {"bucket": f"spotreg-load-{run_id}", "redirect": True},
            "tls": {"mode": "none"},
            "registry": {
                "image": image,
                "port": 5000,
                "users": [{"name": USER, "password": "env:SPOTREG_LOAD_PASSWORD"}],
            },
        }
    )


def registry_config(spec: Spec, port: int, *, auth: bool) -> str:
    """The rendered config, bound to 127.0.0.1:``port``; without its ``auth`` section behind Caddy."""
    config: dict[str, Any] = yaml.safe_load(render_registry_config(spec))
    config["http"]["addr"] = f"127.0.0.1:{port}"
    if not auth:
        del config["auth"]
    return yaml.safe_dump(config, sort_keys=False)


@dataclass
class Served:
    """One configuration running: its container, the URL clients use, and the user's password."""

    configuration: Configuration
    container: Any
    url: str
    password: str

    def limit_cpus(self, cpus: float) -> None:
        """``docker update --cpus``: the CFS quota of the container's cgroup (the registry and Caddy in it)."""
        self.container.update(cpu_period=CPU_PERIOD_US, cpu_quota=int(cpus * CPU_PERIOD_US))


@dataclass
class Stand:
    """moto's server, one bucket, and the registries of a run; ``close`` removes all of it."""

    docker: Any
    image: str = DEFAULT_IMAGE
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="spotreg-load-")))
    moto: MotoServer | None = None
    served: list[Served] = field(default_factory=list)

    def open(self) -> Stand:
        self.moto = MotoServer().start()
        self.spec = load_spec(self.run_id, self.image)
        self.moto.client("s3").create_bucket(Bucket=self.spec.storage.bucket)
        return self

    def serve(self, configuration: Configuration) -> Served:
        """Start one configuration's container (and Caddy in it); wait until it answers."""
        assert self.moto is not None, "open() first"
        password = secrets.token_urlsafe(16)
        directory = self.workdir / configuration.name
        (directory / "config").mkdir(parents=True)
        (directory / "auth").mkdir()
        htpasswd = make_htpasswd({USER: password}, rounds=configuration.bcrypt_cost)
        (directory / "auth" / "htpasswd").write_text(htpasswd, encoding="utf-8")
        registry_port = free_port()
        behind_caddy = configuration.auth_by == "caddy"
        (directory / "config" / "config.yml").write_text(
            registry_config(self.spec, registry_port, auth=not behind_caddy), encoding="utf-8"
        )
        volumes: dict[str, dict[str, str]] = {
            str(directory / "config"): {"bind": "/etc/docker/registry", "mode": "ro"},
            str(directory / "auth"): {"bind": "/auth", "mode": "ro"},
        }
        port = registry_port
        if behind_caddy:
            port = free_port()
            bcrypt_hash = htpasswd.split(":", 1)[1].strip().replace("$2y$", "$2b$", 1)
            caddy.write_caddyfile(directory / "caddy", caddy.render_caddyfile(port, registry_port, USER, bcrypt_hash))
            volumes |= caddy.caddy_mounts(directory / "caddy")
        container = self.docker.containers.run(
            self.image,
            ["serve", "/etc/docker/registry/config.yml"],
            name=f"spotreg-load-{self.run_id}-{configuration.name}",
            detach=True,
            network_mode="host",
            labels={LOAD_LABEL: self.run_id},
            volumes=volumes,
            environment={
                "REGISTRY_HTTP_SECRET": secrets.token_hex(16),
                "REGISTRY_STORAGE_S3_REGIONENDPOINT": self.moto.endpoint_url,
                "REGISTRY_STORAGE_S3_ACCESSKEY": self.moto.access_key,
                "REGISTRY_STORAGE_S3_SECRETKEY": self.moto.secret_key,
            },
        )
        served = Served(configuration, container, f"http://127.0.0.1:{port}", password)
        self.served.append(served)
        _wait_until_answering(container, f"http://127.0.0.1:{registry_port}")
        if behind_caddy:
            container.exec_run(list(caddy.CADDY_COMMAND), detach=True, environment=caddy.CADDY_ENVIRONMENT)
            _wait_until_answering(container, served.url)
        return served

    def close(self) -> None:
        for leftover in self.docker.containers.list(all=True, filters={"label": f"{LOAD_LABEL}={self.run_id}"}):
            with contextlib.suppress(Exception):
                leftover.remove(force=True, v=True)
        self.served.clear()
        if self.moto is not None:
            self.moto.stop()
            self.moto = None

    def __enter__(self) -> Stand:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _wait_until_answering(container: Any, url: str, seconds: float = 30.0) -> None:
    """Until ``/v2/`` at ``url`` answers at all; RuntimeError with the container's log when it exits
    or ``seconds`` pass."""

    def gone() -> RuntimeError:
        log = container.logs(tail=30).decode(errors="replace")
        return RuntimeError(f"{container.name}: no answer on {url}; its log:\n{log}")

    def answering() -> tuple[bool, str]:
        with requests.Session() as session:
            seen = probe(f"{url}/v2/", session=session, verify=False, timeout=2)
        if seen.status is not None:
            return True, str(seen.status)
        container.reload()
        if container.status in ("exited", "dead"):
            raise gone()
        return False, seen.error or "no answer"

    try:
        poll_until(f"{container.name} to answer", answering, timeout=seconds, interval=0.1, max_interval=0.5)
    except WaitTimeout:
        raise gone() from None
