"""How many pulls a minute an instance type serves: the load tier's measured figures, scaled by the
type's CPU (``provisioning/data/capacity.json``, written from ``python -m benchmarks.pull_capacity``).

Sustained, a burstable instance has its baseline share of its vCPUs; the figure measured at 0.2 core is
scaled linearly to that share (what its CPU per pull allows: past 0.4 core this host's load generator,
not the registry, was the limit). Bursting, it has all its vCPUs: the figure measured at 2 cores, a
floor for the same reason (and never below the sustained figure).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

MEASURED_CORES = "0.2"
BURST_CORES = "2"


@dataclass(frozen=True)
class Capacity:
    """Pulls a minute of one instance type, sustained (at its baseline cores) and bursting."""

    instance_type: str
    baseline_cores: float
    sustained_per_minute: int
    burst_per_minute: int
    measured: str
    command: str
    pull: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance_type": self.instance_type,
            "baseline_cores": self.baseline_cores,
            "pulls_per_minute_sustained": self.sustained_per_minute,
            "pulls_per_minute_burst": self.burst_per_minute,
            "measured": self.measured,
            "command": self.command,
            "pull": self.pull,
        }

    def sentence(self) -> str:
        return (
            f"capacity: a {self.instance_type} serves about {self.sustained_per_minute:,} pulls a minute "
            f"sustained (its baseline, {self.baseline_cores:g} core) and at least {self.burst_per_minute:,} "
            f"while it bursts; {self.pull}; measured {self.measured} (`{self.command}`)"
        )


@cache
def _figures() -> dict[str, Any]:
    text = resources.files("provisioning").joinpath("data/capacity.json").read_text(encoding="utf-8")
    figures: dict[str, Any] = json.loads(text)
    return figures


def capacity_of(instance_type: str) -> Capacity | None:
    """The capacity of ``instance_type``; None for a type the figures do not describe."""
    figures = _figures()
    cpu = figures["instance_types"].get(instance_type)
    if cpu is None:
        return None
    rates = figures["pulls_per_s_at_cores"]
    baseline = round(cpu["vcpus"] * cpu["baseline_per_vcpu"], 3)
    per_core_second = rates[MEASURED_CORES] / float(MEASURED_CORES)
    sustained = int(round(per_core_second * baseline * 60, -1))
    burst = int(round(rates[BURST_CORES] * cpu["vcpus"] / float(BURST_CORES) * 60, -1))
    return Capacity(
        instance_type=instance_type,
        baseline_cores=baseline,
        sustained_per_minute=sustained,
        burst_per_minute=max(burst, sustained),
        measured=figures["measured"],
        command=figures["command"],
        pull=figures["pull"],
    )
