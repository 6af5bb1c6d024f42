"""An Elastic IP for the instance: a fixed address that survives stop and start (dns.mode = "eip")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisioning.changes import Change
from provisioning.names import resource_name
from provisioning.records import Address
from provisioning.spec import Spec
from provisioning.step import Context, Run
from provisioning.tags import aws_tags, deployment_filter, ec2_tag_specifications, missing_tags

KIND = "elastic-ip"


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


def remove_addresses(ec2: Any, deployment: str) -> list[Change]:
    changes = []
    for address in deployment_addresses(ec2, deployment):
        if address.association_id:
            ec2.disassociate_address(AssociationId=address.association_id)
        ec2.release_address(AllocationId=address.allocation_id)
        changes.append(Change(KIND, f"{address.public_ip} ({address.allocation_id})", "delete"))
    return changes


class AddressStep:
    """The deployment's one Elastic IP (dns.mode = "eip"): allocated once, released by `down`."""

    name = "address"

    def resource(self, spec: Spec) -> str:
        return f"Elastic IP of {resource_name(spec)}"

    def check(self, run: Run) -> None:
        """Nothing to check: the address is found by the deployment's tag."""

    def _changes(self, run: Run, *, apply: bool) -> list[Change]:
        ec2, deployment = run.clients.ec2, run.ctx.deployment
        if run.spec.dns.mode == "eip":
            change, run.address = address_changes(ec2, deployment, run.ctx.tags, apply=apply)
            return [change]
        if apply:  # an address of an earlier eip deployment: released, not left allocated and billed
            return remove_addresses(ec2, deployment)
        return [
            Change(KIND, f"{a.public_ip} ({a.allocation_id})", "delete", "dns.mode is no longer eip")
            for a in deployment_addresses(ec2, deployment)
        ]

    def plan(self, run: Run) -> list[Change]:
        return self._changes(run, apply=False)

    def apply(self, run: Run) -> list[Change]:
        return self._changes(run, apply=True)

    def remove(self, ctx: Context, *, delete_data: bool) -> list[Change]:
        return remove_addresses(ctx.clients.ec2, ctx.deployment)
