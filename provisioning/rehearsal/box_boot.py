"""Waiting for a box's boot: until its registry answers, giving up early on a boot that cannot succeed.

Only the probe and the container's state are polled (cheap: the boot has the CPU); systemd's and
cloud-init's moments are read afterwards from systemd's own timestamps (CLOCK_MONOTONIC, the host's
clock too): ``basic.target`` reached, ``cloud-final.service`` done.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from provisioning.errors import WaitTimeout
from provisioning.rehearsal.box_network import BoxError
from provisioning.render.paths import PROXY_UNIT, REGISTRY_UNIT
from provisioning.waits import poll_until


class BootingBox(Protocol):
    """What the wait needs of an instance box (provisioning.rehearsal.instance_box.InstanceBox)."""

    @property
    def name(self) -> str: ...

    @property
    def started_at(self) -> float: ...

    def exec(self, argv: list[str]) -> tuple[int, str]: ...

    def journal(self, unit: str) -> str: ...

    def cloud_init_status(self) -> str: ...

    def is_running(self) -> bool: ...


_POLL_SECONDS = 0.2
_CHECK_EVERY_POLLS = 10  # every 2 s: give up early on a boot that cannot succeed
_UNSTARTED_CHECKS = 3  # cloud-init finished 6 s ago and never started the unit


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


def wait_boot(box: BootingBox, health_probe: Callable[[], bool], timeout: float) -> BootTimes:
    """Wait until ``health_probe`` is true; the seconds each boot phase of ``box`` took (BoxError on
    ``timeout`` from the boot's start, or sooner when the boot cannot succeed)."""
    polls = [0, 0]  # polls so far, checks in a row that found the unit not started after cloud-init

    def booted() -> tuple[bool, str]:
        if health_probe():
            return True, "healthy"
        if not box.is_running():
            raise BoxError(f"the box {box.name} stopped while booting")
        polls[0] += 1
        if polls[0] % _CHECK_EVERY_POLLS == 0:
            polls[1] = polls[1] + 1 if _check_boot_can_succeed(box) else 0
            if polls[1] >= _UNSTARTED_CHECKS:
                raise BoxError("cloud-init finished, but the registry unit never started" + _why(box))
        return False, "booting"

    remaining = max(0.0, box.started_at + timeout - time.monotonic())
    try:
        poll_until(
            f"the box {box.name} to boot", booted, timeout=remaining, interval=_POLL_SECONDS, max_interval=_POLL_SECONDS
        )
    except WaitTimeout:
        raise BoxError(
            f"the box {box.name} did not boot to a healthy registry in {timeout:.0f} s" + _why(box)
        ) from None
    registry = time.monotonic() - box.started_at
    reached = _entered(box, ["basic.target", "cloud-final.service"])
    return BootTimes(
        systemd=reached.get("basic.target"), cloud_init=reached.get("cloud-final.service"), registry=registry
    )


def _why(box: BootingBox) -> str:
    why = f"; cloud-init: {box.cloud_init_status().strip()}\nregistry unit:\n{box.journal(REGISTRY_UNIT)[-3000:]}"
    proxy = box.journal(PROXY_UNIT)
    return why + (f"\nproxy unit:\n{proxy[-3000:]}" if "spotreg" in proxy else "")


def _check_boot_can_succeed(box: BootingBox) -> bool:
    """Raise ``BoxError`` when the registry unit already failed (systemd restarted it): waiting longer
    would not help. True when cloud-init has finished and the unit has not started."""
    _, output = box.exec(
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
        raise BoxError(f"the box's registry unit failed and systemd restarted it {restarts} time(s)" + _why(box))
    return "cloud-init-done" in lines and "inactive" in lines


def _entered(box: BootingBox, units: list[str]) -> dict[str, float]:
    """Seconds from this boot's start to each unit becoming active (absent: not active yet)."""
    _, output = box.exec(["systemctl", "show", "-p", "Id,ActiveEnterTimestampMonotonic", *units])
    entered: dict[str, float] = {}
    unit = None
    for line in output.splitlines():
        key, _, value = line.partition("=")
        if key == "Id":
            unit = value
        elif key == "ActiveEnterTimestampMonotonic" and unit and value.isdigit() and int(value) > 0:
            seconds = int(value) / 1e6 - box.started_at
            if seconds >= 0:
                entered[unit] = round(seconds, 2)
    return entered
