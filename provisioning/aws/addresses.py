"""The public addresses a deployment holds: the one lookup `up`, `status` and the DNS steps share."""

from __future__ import annotations

from typing import Any

from provisioning.aws.elastic_ip import deployment_addresses
from provisioning.aws.instance import live_instances
from provisioning.records import InstanceFacts
from provisioning.step import Run


def public_addresses(ec2: Any, deployment: str) -> list[str]:
    """Every public address the deployment holds now: its Elastic IPs first, then its live instances' own."""
    found = [a.public_ip for a in deployment_addresses(ec2, deployment)]
    found += [f.public_ip for f in live_instances(ec2, deployment) if f.public_ip and f.public_ip not in found]
    return found


def wait_for_public_ip(run: Run, step: str) -> str | None:
    """The instance's own public address, waiting (bounded) for AWS to assign one."""
    if run.facts is None or run.facts.public_ip is not None:
        return None if run.facts is None else run.facts.public_ip
    ec2, instance_id, waits = run.clients.ec2, run.facts.instance_id, run.ctx.waits

    def check() -> tuple[bool, str]:
        found = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        run.facts = InstanceFacts.of(found)
        return run.facts.public_ip is not None, run.facts.state

    waits.poll(
        f"a public address for {instance_id}",
        check,
        waits.instance_terminated,
        run.ctx.progress,
        step,
    )
    return run.facts.public_ip
