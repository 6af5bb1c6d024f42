"""An EC2 instance played by a system container: the "instance box".

Two containers make one box:

- the **holder** owns the box's network namespace: it sits on a Docker network the run created, at
  the instance's public address, and lives as long as the box: a reboot keeps the address, and after a
  stop/start without an Elastic IP ``move_to`` gives it the new one EC2 (moto) handed out;
- the **instance** joins that namespace and boots the instance image: systemd as PID 1, cloud-init with
  its Ec2 datasource reading the box's metadata service, the instance's own Docker engine.

In the holder's namespace this process listens at ``169.254.169.254:80`` (the metadata service) and at
``127.0.0.1:<port>`` for each forwarded host port (moto's server, a test's fault proxy), so that the
same endpoint URL reaches the same server inside the box and on the host. Everything that differs
from EC2 is in ``provisioning.rehearsal.overrides``.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import secrets
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from provisioning.rehearsal import netns, overrides
from provisioning.rehearsal.forward import Forwarder
from provisioning.rehearsal.metadata_service import MetadataService
from provisioning.render.paths import REGISTRY_UNIT

BOX_LABEL: Final = "io.spotreg.box"  # value: the run that made it
ROLE_LABEL: Final = "io.spotreg.box-role"  # holder | instance | network
INSTANCE_LABEL: Final = "io.spotreg.box-instance"
METADATA_ADDRESS: Final = "169.254.169.254"
PRELOAD_DIR_IN_BOX: Final = "/var/lib/spotreg-box/images"
SUBNET_POOL: Final = ipaddress.IPv4Network("10.213.0.0/16")

#: Every capability but CAP_SYS_RESOURCE, which this kernel's bounding set lacks (so --privileged fails).
CAPABILITIES: Final = (
    "AUDIT_CONTROL", "AUDIT_READ", "BLOCK_SUSPEND", "DAC_READ_SEARCH", "IPC_LOCK", "IPC_OWNER", "LEASE",
    "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "NET_ADMIN", "NET_BROADCAST", "SYS_ADMIN", "SYS_BOOT",
    "SYS_MODULE", "SYS_NICE", "SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO", "SYS_TIME", "SYS_TTY_CONFIG", "SYSLOG",
    "WAKE_ALARM",
)  # fmt: skip


class BoxError(RuntimeError):
    """The box could not be started, or did not reach a state in time; the message says what it saw."""


@dataclass
class BoxNetwork:
    """A Docker network this run created for its boxes: internal (no route off this machine)."""

    docker: Any
    name: str
    subnet: ipaddress.IPv4Network

    @classmethod
    def create(cls, docker: Any, run_id: str) -> BoxNetwork:
        """A new network on a free /24 of 10.213.0.0/16."""
        from docker.errors import APIError

        subnets = list(SUBNET_POOL.subnets(new_prefix=24))
        rng = secrets.SystemRandom()
        for subnet in rng.sample(subnets, 40):
            name = f"spotreg-box-{run_id}-{subnet.network_address.packed[2]}"
            ipam = {"Config": [{"Subnet": str(subnet), "Gateway": str(subnet.network_address + 1)}]}
            try:
                docker.api.create_network(
                    name, driver="bridge", internal=True, ipam=ipam, labels={BOX_LABEL: run_id, ROLE_LABEL: "network"}
                )
            except APIError as error:  # a pool another network has: try another subnet
                if "overlap" in str(error).lower() or "already" in str(error).lower():
                    continue
                raise
            return cls(docker, name, subnet)
        raise BoxError("no free /24 in 10.213.0.0/16 for a box network")

    @property
    def addresses(self) -> str:
        """The CIDR moto's server draws public addresses from: the network's, past the gateway."""
        return str(self.subnet)

    def remove(self) -> None:
        with contextlib.suppress(Exception):
            self.docker.api.remove_network(self.name)


@dataclass(frozen=True)
class Preload:
    """An image the instance would pull: saved from this engine, loaded into the box's as ``target``."""

    archive: Path
    source: str
    target: str


@dataclass
class BootTimes:
    """Seconds from the instance container's start to each phase of its boot."""

    systemd: float | None = None
    cloud_init: float | None = None
    registry: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        return {"systemd_up": self.systemd, "cloud_init_done": self.cloud_init, "registry_healthy": self.registry}

    def __str__(self) -> str:
        """``systemd up 1.9 s, cloud-init done 6.3 s, registry healthy 9.9 s`` (phases without a time left out)."""
        labels = {
            "systemd_up": "systemd up",
            "cloud_init_done": "cloud-init done",
            "registry_healthy": "registry healthy",
        }
        return ", ".join(f"{labels[name]} {value:.1f} s" for name, value in self.as_dict().items() if value is not None)


@dataclass
class InstanceBox:
    """One EC2 instance played on this machine; see the module's docstring."""

    docker: Any
    image: str
    network: BoxNetwork
    instance_id: str
    address: str
    run_id: str
    metadata: MetadataService  # served in the box's namespace
    forwarded_ports: Sequence[int] = ()
    unit_environment: Mapping[str, str] = field(default_factory=dict)
    preloads: Sequence[Preload] = ()
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="spotreg-box-")))
    holder: Any = None
    instance: Any = None
    forwarders: list[Forwarder] = field(default_factory=list)
    started_at: float = 0.0
    times: BootTimes | None = None  # the last boot's phases, once waited for

    @property
    def name(self) -> str:
        return f"spotreg-box-{self.run_id}-{self.instance_id}"

    def _labels(self, role: str) -> dict[str, str]:
        return {BOX_LABEL: self.run_id, ROLE_LABEL: role, INSTANCE_LABEL: self.instance_id}

    # -- start ----------------------------------------------------------------------------------

    def start(self) -> InstanceBox:
        """Holder, namespace services, then the instance booting; returns at once (see ``wait_*``)."""
        self._start_holder()
        self._serve_namespace()
        self._create_instance()
        self.boot()
        return self

    def _start_holder(self) -> None:
        api = self.docker.api
        networking = api.create_networking_config(
            {self.network.name: api.create_endpoint_config(ipv4_address=self.address)}
        )
        created = api.create_container(
            self.image,
            command=["sleep", "infinity"],
            name=f"{self.name}-net",
            labels=self._labels("holder"),
            host_config=api.create_host_config(network_mode=self.network.name),
            networking_config=networking,
        )
        api.start(created["Id"])
        self.holder = self.docker.containers.get(created["Id"])

    def _holder_pid(self) -> int:
        self.holder.reload()
        pid = int(self.holder.attrs["State"]["Pid"])
        if pid <= 0:
            raise BoxError(f"the box's network holder {self.holder.name} is not running")
        return pid

    def _serve_namespace(self) -> None:
        pid = self._holder_pid()
        netns.run_in(pid, ["ip", "address", "add", f"{METADATA_ADDRESS}/32", "dev", "lo"])
        self.metadata.serve(netns.listen_in(pid, METADATA_ADDRESS, 80))
        for port in self.forwarded_ports:
            self.forwarders.append(Forwarder(netns.listen_in(pid, "127.0.0.1", port), ("127.0.0.1", port)))

    def _create_instance(self) -> None:
        from docker.types import Mount

        mounts = [
            Mount("/sys/fs/cgroup", "/sys/fs/cgroup", type="bind", read_only=False),
            Mount("/var/lib/docker", None, type="volume"),  # the instance's disk for its engine
        ]
        # no resolver answers on the box's network: name lookups fail at once instead of timing out
        resolv_conf = self.workdir / "resolv.conf"
        resolv_conf.write_text(overrides.RESOLV_CONF)
        mounts.append(Mount("/etc/resolv.conf", str(resolv_conf), "bind", True))
        for preload in self.preloads:
            mounts.append(Mount(f"{PRELOAD_DIR_IN_BOX}/{preload.archive.name}", str(preload.archive), "bind", True))
        self.instance = self.docker.containers.create(
            self.image,
            name=self.name,
            labels=self._labels("instance"),
            network_mode=f"container:{self.holder.id}",
            cap_add=list(CAPABILITIES),
            security_opt=["seccomp=unconfined", "apparmor=unconfined"],
            device_cgroup_rules=["a *:* rwm"],
            tmpfs={"/run": "", "/run/lock": "", "/tmp": ""},
            mounts=mounts,
            stop_signal="SIGRTMIN+3",
        )
        self.instance.put_archive("/", self._box_files())

    def _box_files(self) -> bytes:
        """The per-box files: the units' environment drop-in and the preload list."""
        files = {
            overrides.UNIT_DROP_IN: overrides.render_unit_drop_in(self.unit_environment),
            overrides.PRELOAD_LIST: "".join(
                f"{PRELOAD_DIR_IN_BOX}/{p.archive.name} {p.source} {p.target}\n" for p in self.preloads
            ),
        }
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            for path, text in files.items():
                data = text.encode()
                info = tarfile.TarInfo(path.lstrip("/"))
                info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
                archive.addfile(info, io.BytesIO(data))
        return buffer.getvalue()

    # -- life cycle -----------------------------------------------------------------------------

    def boot(self) -> None:
        """Power on (or on again after ``stop``)."""
        self.started_at = time.monotonic()
        self.instance.start()

    def reboot(self) -> None:
        """What ``reboot`` does on the instance: systemd stops everything, then the box boots again."""
        self.instance.stop(timeout=30)
        self.boot()

    def stop(self) -> None:
        """The instance stopped (a spot interruption with behaviour ``stop``): its disk is kept."""
        self.instance.stop(timeout=30)

    def move_to(self, address: str) -> None:
        """A stopped instance starts with another public address (EC2 gives a new one on start, unless
        an Elastic IP holds it): the box's network namespace, and everything served in it, stays."""
        network = self.docker.networks.get(self.network.name)
        network.disconnect(self.holder)
        network.connect(self.holder, ipv4_address=address)
        self.address = address

    def remove(self) -> None:
        """The box and everything it holds (the instance's engine and its disk included)."""
        for forwarder in self.forwarders:
            forwarder.close()
        with contextlib.suppress(Exception):
            self.metadata.close()
        for container in (self.instance, self.holder):
            if container is not None:
                with contextlib.suppress(Exception):
                    container.remove(force=True, v=True)
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- looking inside -------------------------------------------------------------------------

    def exec(self, argv: list[str]) -> tuple[int, str]:
        """Run a command in the box; its exit code and output."""
        result = self.instance.exec_run(argv, demux=False)
        return int(result.exit_code), result.output.decode("utf-8", "replace")

    def journal(self, unit: str) -> str:
        """The box's journal for ``unit`` in this boot and the ones before."""
        return self.exec(["journalctl", "--no-pager", "-o", "short-iso", "-u", unit])[1]

    def cloud_init_status(self) -> str:
        return self.exec(["cloud-init", "status", "--long"])[1]

    def is_running(self) -> bool:
        """Whether the instance container runs (False once it is gone: removed by ``rehearse --down``)."""
        from docker.errors import NotFound

        try:
            self.instance.reload()
        except NotFound:
            return False
        return bool(self.instance.attrs["State"]["Running"])

    def wait_boot(
        self, health_probe: Callable[[], bool], *, timeout: float = 120, say: Callable[[str], None] | None = None
    ) -> BootTimes:
        """Wait for the registry (``health_probe``); the seconds each boot phase took (also ``self.times``).

        Only the probe and the container's state are polled (cheap: the boot has the CPU); systemd's and
        cloud-init's moments are read afterwards from systemd's own timestamps (CLOCK_MONOTONIC, the
        host's clock too): ``basic.target`` reached, ``cloud-final.service`` done."""
        deadline = self.started_at + timeout
        polls = unstarted = 0
        while not health_probe():
            if time.monotonic() > deadline:
                raise BoxError(
                    f"the box {self.name} did not boot to a healthy registry in {timeout:.0f} s" + self._why()
                )
            if not self.is_running():
                raise BoxError(f"the box {self.name} stopped while booting")
            polls += 1
            if polls % 10 == 0:  # every 2 s: give up early on a boot that cannot succeed
                unstarted = unstarted + 1 if self._check_boot_can_succeed() else 0
                if unstarted >= 3:  # cloud-init finished 6 s ago and never started the unit
                    raise BoxError("cloud-init finished, but the registry unit never started" + self._why())
            time.sleep(0.2)
        registry = time.monotonic() - self.started_at
        reached = self._entered(["basic.target", "cloud-final.service"])
        self.times = BootTimes(
            systemd=reached.get("basic.target"), cloud_init=reached.get("cloud-final.service"), registry=registry
        )
        if say:
            say(f"  booted: {self.times}")
        return self.times

    def _why(self) -> str:
        return (
            f"; cloud-init: {self.cloud_init_status().strip()}\nregistry unit:\n{self.journal(REGISTRY_UNIT)[-3000:]}"
        )

    def _check_boot_can_succeed(self) -> bool:
        """Raise ``BoxError`` when the registry unit already failed (systemd restarted it): waiting longer
        would not help. True when cloud-init has finished and the unit has not started."""
        _, output = self.exec(
            [
                "sh",
                "-c",
                f"systemctl show -p NRestarts --value {REGISTRY_UNIT}; "
                f"systemctl is-active {REGISTRY_UNIT}; "
                "test -e /run/cloud-init/result.json && echo cloud-init-done",
            ]
        )
        lines = output.split()
        restarts = int(lines[0]) if lines and lines[0].isdigit() else 0
        if restarts > 0:
            raise BoxError(f"the box's registry unit failed and systemd restarted it {restarts} time(s)" + self._why())
        return "cloud-init-done" in lines and "inactive" in lines

    def _entered(self, units: list[str]) -> dict[str, float]:
        """Seconds from this boot's start to each unit becoming active (absent: not active yet)."""
        _, output = self.exec(["systemctl", "show", "-p", "Id,ActiveEnterTimestampMonotonic", *units])
        entered: dict[str, float] = {}
        unit = None
        for line in output.splitlines():
            key, _, value = line.partition("=")
            if key == "Id":
                unit = value
            elif key == "ActiveEnterTimestampMonotonic" and unit and value.isdigit() and int(value) > 0:
                seconds = int(value) / 1e6 - self.started_at
                if seconds >= 0:
                    entered[unit] = round(seconds, 2)
        return entered


def remove_boxes(docker: Any, run_id: str) -> list[str]:
    """Remove the boxes and networks of run ``run_id``; the names removed."""
    selector = f"{BOX_LABEL}={run_id}"
    removed = []
    for container in docker.containers.list(all=True, filters={"label": selector}):
        with contextlib.suppress(Exception):
            container.remove(force=True, v=True)
            removed.append(container.name)
    for network in docker.networks.list(filters={"label": selector}):
        with contextlib.suppress(Exception):
            network.remove()
            removed.append(network.name)
    return removed
