"""What the load is measured against: moto's S3 in its own process, and registry containers on the host
engine with the rendered config, each CPU-limited like an instance type's baseline.

Why not the instance box: the box runs the registry in its own Docker engine inside a systemd
container, so limiting the registry's CPU (and the front's with it) would mean reaching into nested
cgroups; here the registry is one container of the host engine and ``--cpus`` is one update. What
differs from the instance is written here once:

- no TLS (the rendered configs with ``tls.mode = none``), S3 at moto's server;
- the registry's ``http.addr`` on a free port of 127.0.0.1 (``registry_config``);
- ``direct-*``: the registry checks passwords itself, the shape shipped before the front: the stand adds
  ``auth: {htpasswd: ...}`` back to the rendered config, which no longer has it, and runs no front;
- ``front-10``: the front's ``listen`` and its upstream on free ports of 127.0.0.1 (``front_config``), and
  the host's nginx run inside the registry's container rather than the front image in its own, so that
  both share one CPU limit (see ``harness.load.front``).
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

from harness.load import front
from harness.loopback import free_port
from provisioning.errors import WaitTimeout
from provisioning.health import probe
from provisioning.rehearsal.moto_server import MotoServer
from provisioning.render import paths
from provisioning.render.front_config import REALM, front_listen, render_front_config
from provisioning.render.registry_config import render_registry_config
from provisioning.secrets import make_htpasswd
from provisioning.spec import Spec
from provisioning.spec_loading import spec_from_mapping
from provisioning.waits import poll_until

LOAD_LABEL: Final = "io.spotreg.load"
CPU_PERIOD_US: Final = 100_000
DEFAULT_IMAGE: Final = "spotreg/registry:2.8.2-debian"
USER: Final = "load"
#: A second user, whom ``auth_check`` removes from the htpasswd file (the load's user stays).
LEAVER: Final = "leaver"


@dataclass(frozen=True)
class Configuration:
    """One way to serve pulls: the registry checks passwords itself, or the front does; at which bcrypt cost."""

    name: str
    front: bool
    bcrypt_cost: int


CONFIGURATIONS: Final = {
    c.name: c
    for c in (
        Configuration("direct-5", front=False, bcrypt_cost=5),
        Configuration("direct-10", front=False, bcrypt_cost=10),
        Configuration("front-10", front=True, bcrypt_cost=10),
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
    """The rendered config, bound to 127.0.0.1:``port``; with ``auth`` the htpasswd section it had before the front."""
    config: dict[str, Any] = yaml.safe_load(render_registry_config(spec))
    config["http"]["addr"] = f"127.0.0.1:{port}"
    if auth:
        config["auth"] = {"htpasswd": {"realm": REALM, "path": paths.HTPASSWD_IN_CONTAINER}}
    return yaml.safe_dump(config, sort_keys=False)


def front_config(spec: Spec, port: int, registry_port: int) -> str:
    """The rendered ``nginx.conf`` with its addresses moved to free ports of 127.0.0.1 (host networking):
    the IPv4 listen and the upstream; the IPv6 listen (the registry port on ``[::]``) is dropped."""
    text = render_front_config(spec)
    ipv4, ipv6 = front_listen(spec)
    for rendered, here in (
        (ipv4, f"listen 127.0.0.1:{port};"),
        (f"\n        {ipv6}", ""),
        (f"server {paths.REGISTRY_ADDR};", f"server 127.0.0.1:{registry_port};"),
    ):
        if text.count(rendered) != 1:
            raise ValueError(f"the rendered front config has not exactly one {rendered!r}")
        text = text.replace(rendered, here)
    return text


@dataclass
class Served:
    """One configuration running: its container, the URL clients use, its htpasswd file and its users' passwords."""

    configuration: Configuration
    container: Any
    url: str
    htpasswd: Path
    passwords: dict[str, str]

    @property
    def password(self) -> str:
        """The load's user's password."""
        return self.passwords[USER]

    def limit_cpus(self, cpus: float) -> None:
        """``docker update --cpus``: the CFS quota of the container's cgroup (the registry and the front in it)."""
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
        """Start one configuration's container (and the front in it); wait until it answers."""
        assert self.moto is not None, "open() first"
        passwords = {USER: secrets.token_urlsafe(16), LEAVER: secrets.token_urlsafe(16)}
        directory = self.workdir / configuration.name
        (directory / "config").mkdir(parents=True)
        (directory / "auth").mkdir()
        htpasswd = directory / "auth" / "htpasswd"
        htpasswd.write_text(make_htpasswd(passwords, rounds=configuration.bcrypt_cost), encoding="utf-8")
        registry_port = port = free_port()
        (directory / "config" / "config.yml").write_text(
            registry_config(self.spec, registry_port, auth=not configuration.front), encoding="utf-8"
        )
        volumes: dict[str, dict[str, str]] = {
            str(directory / "config"): {"bind": "/etc/docker/registry", "mode": "ro"},
            str(directory / "auth"): {"bind": paths.AUTH_DIR_IN_CONTAINER, "mode": "ro"},
        }
        if configuration.front:
            port = free_port()
            (directory / "front").mkdir()
            (directory / "front" / "nginx.conf").write_text(
                front_config(self.spec, port, registry_port), encoding="utf-8"
            )
            volumes |= front.front_mounts(directory / "front")
        container = self.docker.containers.run(
            self.image,
            ["serve", "/etc/docker/registry/config.yml"],
            name=f"spotreg-load-{self.run_id}-{configuration.name}",
            detach=True,
            network_mode="host",
            labels={LOAD_LABEL: self.run_id},
            volumes=volumes,
            tmpfs=front.TMPFS if configuration.front else {},
            environment={
                "REGISTRY_HTTP_SECRET": secrets.token_hex(16),
                "REGISTRY_STORAGE_S3_REGIONENDPOINT": self.moto.endpoint_url,
                "REGISTRY_STORAGE_S3_ACCESSKEY": self.moto.access_key,
                "REGISTRY_STORAGE_S3_SECRETKEY": self.moto.secret_key,
            },
        )
        served = Served(configuration, container, f"http://127.0.0.1:{port}", htpasswd, passwords)
        self.served.append(served)
        _wait_until_answering(container, f"http://127.0.0.1:{registry_port}")
        if configuration.front:
            container.exec_run(list(front.COMMAND), detach=True)
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
