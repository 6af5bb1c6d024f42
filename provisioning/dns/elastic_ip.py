"""DNS by Elastic IP (dns.mode = "eip"): the fixed address follows the instance; no name is managed."""

from __future__ import annotations

from typing import Any

from provisioning.changes import Change
from provisioning.errors import SpotregError
from provisioning.records import Address
from provisioning.spec import Spec
from provisioning.step import Context, Run
from provisioning.waits import Progress, Waits

KIND = "address-association"


def wait_until_running(ec2: Any, instance_id: str, *, waits: Waits, progress: Progress | None = None) -> None:
    """Wait (bounded, with progress) until the instance is running: EC2 refuses to associate an
    address with a pending instance (IncorrectInstanceState)."""

    def check() -> tuple[bool, str]:
        found = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        state = str(found["State"]["Name"])
        if state not in ("pending", "running"):
            raise SpotregError(
                f"instance {instance_id} is {state} instead of starting: the Elastic IP cannot be associated",
                hint="see the instance's console output, then run 'spotreg up' again",
            )
        return state == "running", state

    waits.poll(
        f"{instance_id} to run",
        check,
        waits.instance_terminated,
        progress,
        "dns",
    )


def association_change(address: Address | None, instance_id: str | None) -> Change:
    """Whether the address is associated with the instance already (pure)."""
    if address is None or instance_id is None:
        return Change(KIND, "(new address)", "create", "once the instance exists")
    name = f"{address.public_ip} -> {instance_id}"
    if address.instance_id == instance_id:
        return Change(KIND, name, "keep")
    return Change(KIND, name, "update" if address.instance_id else "create")


class ElasticIpDns:
    """Associates the deployment's Elastic IP (the address step's) with its instance."""

    name = "dns"

    def resource(self, spec: Spec) -> str:
        return "the Elastic IP's association"

    def check(self, run: Run) -> None:
        """Nothing to check: the address step found or made the address."""

    def plan(self, run: Run) -> list[Change]:
        return [association_change(run.address, None if run.facts is None else run.facts.instance_id)]

    def apply(self, run: Run) -> list[Change]:
        change = self.plan(run)[0]
        if change.changes_anything and run.address is not None and run.facts is not None:
            ec2, instance_id = run.clients.ec2, run.facts.instance_id
            wait_until_running(ec2, instance_id, waits=run.ctx.waits, progress=run.ctx.progress)
            ec2.associate_address(
                AllocationId=run.address.allocation_id, InstanceId=instance_id, AllowReassociation=True
            )
        return [change]

    def remove(self, ctx: Context, *, delete_data: bool) -> list[Change]:
        return []  # releasing the address (the address step) ends the association
