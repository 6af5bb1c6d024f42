"""An Elastic IP for the instance: a fixed address that survives stop and start (dns.mode = "eip")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provisioning.aws.changes import Change
from provisioning.aws.tags import aws_tags, deployment_filter, ec2_tag_specifications, missing_tags, tag_dict
from provisioning.aws.waits import Progress, Waits, poll_until
from provisioning.errors import SpotregError

KIND = "elastic-ip"


@dataclass(frozen=True)
class Address:
    allocation_id: str
    public_ip: str
    association_id: str | None
    instance_id: str | None
    tags: Mapping[str, str]

    @classmethod
    def of(cls, item: Mapping[str, Any]) -> Address:
        return cls(
            allocation_id=item["AllocationId"],
            public_ip=item["PublicIp"],
            association_id=item.get("AssociationId"),
            instance_id=item.get("InstanceId"),
            tags=tag_dict(item.get("Tags")),
        )


def deployment_addresses(ec2: Any, deployment: str) -> list[Address]:
    answer = ec2.describe_addresses(Filters=deployment_filter(deployment))
    return sorted((Address.of(a) for a in answer.get("Addresses", [])), key=lambda a: a.allocation_id)


def address_changes(
    ec2: Any, deployment: str, tags: Mapping[str, str], *, apply: bool
) -> tuple[Change, Address | None]:
    """The deployment's one address: allocated (tagged) if there is none."""
    found = deployment_addresses(ec2, deployment)
    if found:
        address = found[0]
        missing = missing_tags(address.tags, tags)
        if missing and apply:
            ec2.create_tags(Resources=[address.allocation_id], Tags=aws_tags(missing))
        detail = f"tags {sorted(missing)}" if missing else ""
        return Change(
            KIND, f"{address.public_ip} ({address.allocation_id})", "update" if missing else "keep", detail
        ), address
    if not apply:
        return Change(KIND, "(new address)", "create"), None
    answer = ec2.allocate_address(Domain="vpc", TagSpecifications=ec2_tag_specifications(["elastic-ip"], tags))
    address = Address(answer["AllocationId"], answer["PublicIp"], None, None, dict(tags))
    return Change(KIND, f"{address.public_ip} ({address.allocation_id})", "create"), address


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

    poll_until(
        f"{instance_id} to run",
        check,
        timeout=waits.instance_terminated,
        interval=waits.poll_interval,
        max_interval=waits.max_interval,
        progress=progress,
        step="dns",
    )


def association_changes(
    ec2: Any,
    address: Address | None,
    instance_id: str | None,
    *,
    apply: bool,
    waits: Waits | None = None,
    progress: Progress | None = None,
) -> Change:
    """Associate the address with the instance unless it already is, once the instance runs."""
    if address is None or instance_id is None:
        return Change("address-association", "(new address)", "create", "once the instance exists")
    name = f"{address.public_ip} -> {instance_id}"
    if address.instance_id == instance_id:
        return Change("address-association", name, "keep")
    if apply:
        wait_until_running(ec2, instance_id, waits=waits or Waits(), progress=progress)
        ec2.associate_address(AllocationId=address.allocation_id, InstanceId=instance_id, AllowReassociation=True)
    return Change("address-association", name, "update" if address.instance_id else "create")


def remove_addresses(ec2: Any, deployment: str) -> list[Change]:
    changes = []
    for address in deployment_addresses(ec2, deployment):
        if address.association_id:
            ec2.disassociate_address(AssociationId=address.association_id)
        ec2.release_address(AllocationId=address.allocation_id)
        changes.append(Change(KIND, f"{address.public_ip} ({address.allocation_id})", "delete"))
    return changes
