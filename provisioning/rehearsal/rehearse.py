"""``spotreg rehearse``: the user's own configuration deployed on this machine, before paying for EC2.

``up`` runs against an embedded moto server (with the configuration's hosted zone made there), the
instance it launches boots in an instance box, and its registry stores on moto's S3. The command then
prints the registry's address, the CA to trust and the ``docker login`` line, and waits: Ctrl-C (or
``spotreg rehearse --down`` from another terminal) removes everything it made.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, Final

from provisioning.errors import InputError, InputProblem, SpotregError
from provisioning.spec import Spec
from provisioning.spec_loading import load_spec

RUN_PREFIX: Final = "rehearse-"
DEFAULT_REGISTRY_IMAGE: Final = "spotreg/registry:2.8.2-debian"  # `make images` builds it
REGISTRY_IMAGE_ENV: Final = "SPOTREG_REGISTRY_IMAGE"
DEFAULT_FRONT_IMAGE: Final = "spotreg/nginx:1.22.1-debian"  # `make images` builds it
FRONT_IMAGE_ENV: Final = "SPOTREG_FRONT_IMAGE"
STATE_DIR: Final = Path(".spotreg-rehearsal")

Say = Callable[[str], None]


class RehearsalError(SpotregError):
    """The rehearsal could not start here (no engine, no image, a configuration it cannot play)."""


def _docker() -> Any:
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        raise RehearsalError(
            "rehearse needs the docker and moto packages", hint="pip install -e '.[test]' (or make venv)"
        ) from None
    try:
        client = docker.from_env(timeout=300)
        client.ping()
    except DockerException as error:
        raise RehearsalError(
            f"no Docker engine answers ({error})",
            hint="start one (as root: scripts/with-docker-engine.sh spotreg rehearse ...)",
        ) from None
    return client


def _local_source(
    docker: Any, what: str, *, chosen: str | None, env: str, field: str, configured: str, default: str
) -> str:
    """The first image the engine has of: ``chosen``, or ``$env``, the ``configured`` one and ``default``;
    RehearsalError naming each candidate and where it came from."""
    from docker.errors import ImageNotFound

    origins = (
        {f"--{what}-image": chosen}
        if chosen
        else {f"${env}": os.environ.get(env), field: configured, "default": default}
    )
    candidates = {origin: name for origin, name in origins.items() if name}
    for name in candidates.values():
        try:
            docker.images.get(name)
            return name
        except ImageNotFound:
            continue
    tried = ", ".join(f"{origin} = {name!r}" for origin, name in candidates.items())
    raise RehearsalError(
        f"no {what} image in the Docker engine: tried {tried}",
        hint=f"build the {what} image from Debian's package with `make images`",
    )


def _registry_source(docker: Any, spec: Spec, chosen: str | None) -> str:
    return _local_source(
        docker, "registry", chosen=chosen, env=REGISTRY_IMAGE_ENV, field="registry.image",
        configured=spec.registry.image, default=DEFAULT_REGISTRY_IMAGE,
    )  # fmt: skip


def _front_source(docker: Any, spec: Spec, chosen: str | None) -> str:
    return _local_source(
        docker, "front", chosen=chosen, env=FRONT_IMAGE_ENV, field="registry.front_image",
        configured=spec.registry.front_image, default=DEFAULT_FRONT_IMAGE,
    )  # fmt: skip


def _refuse_unplayable(spec: Spec) -> None:
    if spec.dns.mode == "namecheap":
        rule = "cannot be rehearsed: its update goes to Namecheap on the internet, which a rehearsal never reaches"
        raise InputError(
            [InputProblem("dns.mode", spec.dns.mode, rule)], hint="rehearse with 'route53', 'eip' or 'none'"
        )
    if spec.tls.mode == "letsencrypt":
        rule = "cannot be rehearsed yet: it needs an ACME server"
        raise InputError([InputProblem("tls.mode", spec.tls.mode, rule)], hint="rehearse with 'selfsigned'")


def _zone_name(hostname: str) -> str:
    """The hosted zone a rehearsal makes for ``hostname``: its parent domain."""
    return hostname.split(".", 1)[1]


def _teardown_on_signals() -> None:
    """SIGTERM and SIGINT end the rehearsal through its teardown (SIGINT too: a shell that started it in
    the background has it ignored)."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)


def remove_rehearsals(say: Say) -> int:
    """Remove every rehearsal's boxes and networks (found by their labels) and its /etc/hosts lines."""
    from provisioning.rehearsal import hosts_file
    from provisioning.rehearsal.box_network import BOX_LABEL, remove_boxes

    docker = _docker()
    runs = {
        container.labels.get(BOX_LABEL, "")
        for container in docker.containers.list(all=True, filters={"label": BOX_LABEL})
    } | {
        network.attrs.get("Labels", {}).get(BOX_LABEL, "")
        for network in docker.networks.list(filters={"label": BOX_LABEL})
    }
    removed = [name for run in sorted(runs) if run.startswith(RUN_PREFIX) for name in remove_boxes(docker, run)]
    lines = hosts_file.remove_prefixed(f"spotreg {RUN_PREFIX}") if os.access(hosts_file.HOSTS, os.W_OK) else 0
    say(f"removed {len(removed)} container(s) and network(s){f' and {lines} /etc/hosts line(s)' if lines else ''}")
    for name in removed:
        say(f"  {name}")
    return 0


def rehearse(
    config: Path | None,
    *,
    down: bool = False,
    registry_image: str | None = None,
    front_image: str | None = None,
    etc_hosts: bool = False,
    timeout: float = 300,
    say: Say,
    tell: Say,
) -> int:
    """Deploy ``config`` on this machine and wait for Ctrl-C (with ``down``: remove every rehearsal);
    ``registry_image`` plays registry.image and ``front_image`` registry.front_image, ``etc_hosts`` points
    dns.hostname at the box in /etc/hosts; ``say`` is progress, ``tell`` the result."""
    if down:
        return remove_rehearsals(say)
    if config is None:
        raise InputError([InputProblem("--config", None, "rehearse needs a configuration file (or --down)")])
    spec = load_spec(config)
    _refuse_unplayable(spec)
    docker = _docker()
    source = _registry_source(docker, spec, registry_image)
    front = _front_source(docker, spec, front_image)
    run_id = f"{RUN_PREFIX}{secrets.token_hex(3)}"
    zones = {}
    if spec.dns.mode == "route53":
        assert spec.dns.hostname is not None and spec.dns.zone_id is not None  # the Spec's rules
        zones[_zone_name(spec.dns.hostname)] = spec.dns.zone_id
    from provisioning.rehearsal.world import World

    _teardown_on_signals()
    say(f"rehearsal {run_id}: {config} on this machine (moto AWS, an instance box, moto's S3)")
    world = World.open(docker, run_id, source, zones=zones, say=say, front_source=front)
    try:
        return _run(world, spec, run_id, etc_hosts=etc_hosts, timeout=timeout, say=say, tell=tell)
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    finally:
        say(f"removing rehearsal {run_id}")
        world.close()
        shutil.rmtree(STATE_DIR / run_id, ignore_errors=True)  # its CA: of no use once the rehearsal is gone
        with contextlib.suppress(OSError):
            STATE_DIR.rmdir()  # when no other rehearsal keeps its files there
        if etc_hosts and spec.dns.hostname:
            from provisioning.rehearsal import hosts_file

            hosts_file.remove(f"spotreg {run_id}")


def _run(world: Any, spec: Spec, run_id: str, *, etc_hosts: bool, timeout: float, say: Say, tell: Say) -> int:
    from provisioning.clients import make_clients
    from provisioning.health import registry_url
    from provisioning.names import tls_ca_parameter
    from provisioning.provisioner import Provisioner
    from provisioning.rehearsal import hosts_file

    clients = make_clients(spec.deployment.region, endpoint_url=world.moto.endpoint_url, session=world.moto.session())
    provisioner = Provisioner(spec, clients, run_id=run_id, progress=lambda line: say(f"· {line}"))
    provisioner.up()
    launch = provisioner.last_up.launch if provisioner.last_up is not None else None
    if launch is None:
        raise RehearsalError("up launched no instance")
    box = world.boot(spec, launch.instance.instance_id, timeout=timeout)
    address, port = box.address, spec.registry.port
    host = spec.dns.hostname or address
    if etc_hosts and spec.dns.hostname:
        hosts_file.point(spec.dns.hostname, [address], f"spotreg {run_id}")
    state = STATE_DIR / run_id
    state.mkdir(parents=True, exist_ok=True)
    lines = [
        "",
        f"rehearsal {run_id} is up: the registry answers at {registry_url(spec, address)}",
        f"  boot: {box.times}",
    ]
    if spec.dns.hostname:
        lines.append(f"  {spec.dns.hostname} -> {address} in the rehearsal's Route 53 (the boot's own UPSERT)")
        if not etc_hosts:
            lines.append(f"  make it resolve here:  echo '{address} {spec.dns.hostname}' | sudo tee -a /etc/hosts")
    if spec.tls.mode == "selfsigned":
        ca = state / "ca.crt"
        ca.write_text(clients.ssm.get_parameter(Name=tls_ca_parameter(spec))["Parameter"]["Value"])
        lines += [
            f"  CA to trust: {ca.resolve()}",
            f"    sudo mkdir -p /etc/docker/certs.d/{host}:{port} && "
            f"sudo cp {ca.resolve()} /etc/docker/certs.d/{host}:{port}/ca.crt",
        ]
    user = spec.registry.users[0]
    secret = user.password.removeprefix("env:") if user.password.startswith("env:") else None
    password = f'"${secret}"' if secret else "<the password in " + user.password + ">"
    lines += [
        f"  docker login {host}:{port} -u {user.name} --password-stdin <<< {password}",
        f"  docker tag IMAGE {host}:{port}/REPOSITORY:TAG && docker push {host}:{port}/REPOSITORY:TAG",
        f"  the box: docker exec -it {box.name} bash    (journalctl -u spotreg-registry, cloud-init status)",
        "",
        "Ctrl-C (or `spotreg rehearse --down`) removes everything the rehearsal made.",
    ]
    for line in lines:
        tell(line)
    while box.is_running():
        time.sleep(1)
    say("the box is gone (spotreg rehearse --down?)")
    return 0
