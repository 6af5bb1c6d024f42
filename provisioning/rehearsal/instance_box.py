"""An EC2 instance played by a system container: the "instance box".

Two containers make one box:

- the **holder** owns the box's network namespace: it sits on a Docker network the run created, at
  the instance's public address, and lives as long as the box: a reboot keeps the address, and after a
  stop/start without an Elastic IP ``move_to`` gives it the new one EC2 (moto) handed out;
- the **instance** joins that namespace and boots the instance image: systemd as PID 1, cloud-init with
  its Ec2 datasource reading the box's metadata service, the instance's own Docker engine.

In the holder's namespace this process listens at ``169.254.169.254:80`` (the metadata service, through
a DNAT rule to its own port: port 80 stays the instance's) and at
``127.0.0.1:<port>`` for each forwarded host port (moto's server, a test's fault proxy), so that the
same endpoint URL reaches the same server inside the box and on the host. Everything that differs
from EC2 is in ``provisioning.rehearsal.overrides``.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from provisioning.rehearsal import box_boot, netns, overrides
from provisioning.rehearsal.box_boot import BootTimes
from provisioning.rehearsal.box_network import BOX_LABEL, ROLE_LABEL, BoxError, BoxNetwork
from provisioning.rehearsal.forward import Forwarder
from provisioning.rehearsal.metadata_service import MetadataService

INSTANCE_LABEL: Final = "io.spotreg.box-instance"
METADATA_ADDRESS: Final = "169.254.169.254"
#: The metadata service listens on this port of METADATA_ADDRESS; a DNAT rule sends the instance's
#: requests for port 80 there, so that port 80 of the box stays free (Caddy's, in letsencrypt mode).
METADATA_PORT: Final = 16925
PRELOAD_DIR_IN_BOX: Final = "/var/lib/spotreg-box/images"

#: Every capability but CAP_SYS_RESOURCE, which this kernel's bounding set lacks (so --privileged fails).
CAPABILITIES: Final = (
    "AUDIT_CONTROL", "AUDIT_READ", "BLOCK_SUSPEND", "DAC_READ_SEARCH", "IPC_LOCK", "IPC_OWNER", "LEASE",
    "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "NET_ADMIN", "NET_BROADCAST", "SYS_ADMIN", "SYS_BOOT",
    "SYS_MODULE", "SYS_NICE", "SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO", "SYS_TIME", "SYS_TTY_CONFIG", "SYSLOG",
    "WAKE_ALARM",
)  # fmt: skip


@dataclass(frozen=True)
class Preload:
    """An image the instance would pull: saved from this engine, loaded into the box's as ``target``."""

    archive: Path
    source: str
    target: str


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
    acme: overrides.AcmeServer | None = None  # letsencrypt: the ACME server Caddy uses
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
        to = f"{METADATA_ADDRESS}:{METADATA_PORT}"
        netns.run_in(
            pid,
            [
                "iptables",
                "-t",
                "nat",
                "-I",
                "OUTPUT",
                "-d",
                METADATA_ADDRESS,
                "-p",
                "tcp",
                "--dport",
                "80",
                "-j",
                "DNAT",
                "--to-destination",
                to,
            ],
        )
        self.metadata.serve(netns.listen_in(pid, METADATA_ADDRESS, METADATA_PORT))
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
        """The per-box files: the units' drop-ins, the ACME server's CA and the preload list."""
        files = {
            **overrides.box_files(self.unit_environment, self.acme),
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
        ``BoxError`` after ``timeout`` from the boot's start, or as soon as the boot cannot succeed."""
        self.times = box_boot.wait_boot(self, health_probe, timeout)
        if say:
            say(f"  booted: {self.times}")
        return self.times
