"""What `spotreg status` concludes from a Status: one verdict, its exit code, and the `--json` document.

The verdict is the first of these that holds, in this order (each one hides the ones after it; DNS
is judged before health because a probe by address can pass while clients reach another host):

| verdict | exit | when |
|---|---|---|
| not-deployed | 10 | no resource of the deployment exists, apart from a kept bucket |
| instance-down | 11 | resources exist, but no instance, or one that is not running (stopped, pending, ...) |
| dns-elsewhere | 13 | route53: no A record, or values other than the address; eip: EIP not on the instance |
| unhealthy | 12 | the health probe (the one `up --wait-healthy` uses) failed or timed out |
| not-checked | 14 | everything above is fine, but health was not probed (`--endpoint-url`, `--health-timeout 0`) |
| healthy | 0 | everything above is fine and /v2/ answered |

`0` means "probed and healthy", never "nothing was found wrong": monitoring can trust it. Against moto
(`--endpoint-url`) health is never probed (its addresses are not real), so the best there is `14`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provisioning.results import Status

# A bucket outlives `down` on purpose (the images): on its own it is not a deployment.
KEPT_KINDS = frozenset({"bucket"})


class Verdict(StrEnum):
    HEALTHY = "healthy"
    NOT_DEPLOYED = "not-deployed"
    INSTANCE_DOWN = "instance-down"
    DNS_ELSEWHERE = "dns-elsewhere"
    UNHEALTHY = "unhealthy"
    NOT_CHECKED = "not-checked"

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self]


EXIT_CODES: dict[Verdict, int] = {
    Verdict.HEALTHY: 0,
    Verdict.NOT_DEPLOYED: 10,
    Verdict.INSTANCE_DOWN: 11,
    Verdict.UNHEALTHY: 12,
    Verdict.DNS_ELSEWHERE: 13,
    Verdict.NOT_CHECKED: 14,
}


def judge(status: Status) -> Verdict:
    """The first verdict of the table above that holds for `status`."""
    if all(r.kind in KEPT_KINDS for r in status.inventory.resources):
        return Verdict.NOT_DEPLOYED
    if status.instance is None or status.instance.state != "running":
        return Verdict.INSTANCE_DOWN
    if status.dns_elsewhere is not None:
        return Verdict.DNS_ELSEWHERE
    if status.health_error is not None:
        return Verdict.UNHEALTHY
    if status.health is None:
        return Verdict.NOT_CHECKED
    return Verdict.HEALTHY


def as_json(status: Status) -> dict[str, Any]:
    """The `status --json` document: every key is always present (null when there is nothing)."""
    verdict = judge(status)
    i = status.instance
    health = status.health
    return {
        "deployment": status.deployment,
        "region": status.region,
        "verdict": verdict.value,
        "exit_code": verdict.exit_code,
        "instance": None
        if i is None
        else {"id": i.instance_id, "state": i.state, "type": i.instance_type, "zone": i.zone},
        "address": status.address,
        "dns": {
            "mode": status.dns_mode,
            "hostname": status.dns_hostname,
            "values": None if status.dns_values is None else list(status.dns_values),
            "elsewhere": status.dns_elsewhere,
        },
        "endpoint": status.endpoint,
        "health": {
            "checked": health is not None or status.health_error is not None,
            "status": None if health is None else health.status,
            "attempts": None if health is None else health.attempts,
            "waited": None if health is None else round(health.waited, 3),
            "error": status.health_error,
        },
        "resources": [{"kind": r.kind, "id": r.id} for r in status.inventory.resources],
    }
