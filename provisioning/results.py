"""What `plan`, `up`, `status` and `down` report: plain records, printed as the CLI shows them."""

from __future__ import annotations

from dataclasses import dataclass

from provisioning.changes import Change
from provisioning.errors import SpotregError
from provisioning.health import Healthy
from provisioning.inventory import Inventory
from provisioning.records import InstanceFacts, Launched


@dataclass(frozen=True)
class Plan:
    """What `up` would do, resource by resource; nothing was changed to find out."""

    deployment: str
    changes: tuple[Change, ...]

    @property
    def is_noop(self) -> bool:
        return not any(c.changes_anything for c in self.changes)

    def pending(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.changes_anything)

    def __str__(self) -> str:
        return f"plan for {self.deployment}:\n" + "\n".join(f"  {c}" for c in self.changes)


@dataclass(frozen=True)
class UpReport:
    """What the last `up` did, and where it settled the instance and why."""

    changes: tuple[Change, ...]
    launch: Launched | None
    inventory: Inventory

    @property
    def placement(self) -> str:
        return self.launch.reason if self.launch is not None else "no instance step ran"


@dataclass(frozen=True)
class Status:
    """What `status` saw; `status_verdict.judge` is what it concludes.

    `health` and `health_error` both None: health was not probed. `dns_values`: the A record's values
    (route53 only; empty when there is no A record). `dns_elsewhere`: why DNS does not lead to this
    deployment's instance, None when it does or cannot be checked (mode none, namecheap)."""

    deployment: str
    region: str
    instance: InstanceFacts | None
    address: str | None
    dns: str | None
    endpoint: str | None
    health: Healthy | None
    health_error: str | None
    inventory: Inventory
    dns_mode: str = "none"
    dns_hostname: str | None = None
    dns_values: tuple[str, ...] | None = None
    dns_elsewhere: str | None = None

    def __str__(self) -> str:
        lines = [f"deployment {self.deployment} in {self.region}"]
        if self.instance is None:
            lines.append("  instance: none")
        else:
            i = self.instance
            lines.append(f"  instance: {i.instance_id} {i.state} ({i.instance_type} in {i.zone})")
        lines.append(f"  address: {self.address or '-'}")
        lines.append(f"  dns: {self.dns or '-'}")
        lines.append(f"  endpoint: {self.endpoint or '-'}")
        if self.health is not None:
            lines.append(f"  health: HTTP {self.health.status} after {self.health.attempts} attempts")
        else:
            lines.append(f"  health: {self.health_error or 'not checked'}")
        if self.dns_elsewhere is not None:
            lines.append(f"  dns problem: {self.dns_elsewhere}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Removed:
    """What `down` removed, what it kept on purpose, and the steps that failed (and why)."""

    changes: tuple[Change, ...]
    kept: tuple[Change, ...] = ()
    failures: tuple[SpotregError, ...] = ()

    @property
    def notes(self) -> tuple[str, ...]:
        """What was kept that the user has to see to themselves."""
        return tuple(f"{c.kind} {c.name}: {c.detail}" for c in self.kept if c.note)

    def __str__(self) -> str:
        lines = [f"  {c}" for c in (*self.changes, *(c for c in self.kept if not c.note))]
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  failed  {e.step}: {e.message}" for e in self.failures]
        return "down:\n" + ("\n".join(lines) if lines else "  nothing to remove")


class IncompleteDown(SpotregError):
    """`down` went through every step, but some failed: something may be left. Exit code: the first
    failure's."""

    def __init__(self, removed: Removed) -> None:
        self.removed = removed
        self.exit_code = removed.failures[0].exit_code
        steps = ", ".join(str(e.step) for e in removed.failures)
        super().__init__(
            f"down did not finish: {steps} failed\n{removed}", hint="fix the cause, then run 'spotreg down' again"
        )
