"""The security group: the registry port open to the operator's networks, SSH only if asked for."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from provisioning.changes import Change
from provisioning.clients import AwsClients
from provisioning.errors import InputError, InputProblem, OwnershipError, WaitTimeout
from provisioning.names import resource_name
from provisioning.render.security_group import render_ingress_rules, to_ip_permissions
from provisioning.spec import Spec
from provisioning.step import Context, Run
from provisioning.tags import (
    aws_tags,
    belongs_to,
    deployment_filter,
    ec2_tag_specifications,
    is_code,
    missing_tags,
    tag_dict,
)
from provisioning.waits import Progress, Waits

KIND = "security-group"


@dataclass(frozen=True, order=True)
class Atom:
    """One (protocol, ports, source) of an ingress permission: the unit rules are compared in."""

    protocol: str
    from_port: int | None
    to_port: int | None
    family: str  # "ipv4" | "ipv6" | "group" | "prefix"
    source: str
    description: str

    def permission(self) -> dict[str, Any]:
        perm: dict[str, Any] = {"IpProtocol": self.protocol}
        if self.from_port is not None:
            perm["FromPort"] = self.from_port
        if self.to_port is not None:
            perm["ToPort"] = self.to_port
        entry: dict[str, Any] = {}
        if self.description:
            entry["Description"] = self.description
        if self.family == "ipv4":
            perm["IpRanges"] = [{"CidrIp": self.source, **entry}]
        elif self.family == "ipv6":
            perm["Ipv6Ranges"] = [{"CidrIpv6": self.source, **entry}]
        elif self.family == "group":
            perm["UserIdGroupPairs"] = [{"GroupId": self.source, **entry}]
        else:
            perm["PrefixListIds"] = [{"PrefixListId": self.source, **entry}]
        return perm


def atoms(permissions: Iterable[Mapping[str, Any]]) -> set[Atom]:
    found: set[Atom] = set()
    for perm in permissions:
        protocol = str(perm.get("IpProtocol", "-1"))
        low = perm.get("FromPort")
        high = perm.get("ToPort")
        if protocol == "-1":
            low = high = None
        key = (protocol, None if low is None else int(low), None if high is None else int(high))
        for r in perm.get("IpRanges", []):
            found.add(Atom(*key, "ipv4", r["CidrIp"], r.get("Description", "")))
        for r in perm.get("Ipv6Ranges", []):
            found.add(Atom(*key, "ipv6", r["CidrIpv6"], r.get("Description", "")))
        for r in perm.get("UserIdGroupPairs", []):
            found.add(Atom(*key, "group", r["GroupId"], r.get("Description", "")))
        for r in perm.get("PrefixListIds", []):
            found.add(Atom(*key, "prefix", r["PrefixListId"], r.get("Description", "")))
    return found


def vpc_of(clients: AwsClients, spec: Spec) -> str:
    """The VPC the instance goes into: the subnet's, or the region's default VPC."""
    ec2 = clients.ec2
    if spec.instance.subnet_id is not None:
        try:
            subnets = ec2.describe_subnets(SubnetIds=[spec.instance.subnet_id])["Subnets"]
        except Exception as error:
            if is_code(error, "InvalidSubnetID.NotFound", "InvalidSubnetID.Malformed"):
                subnets = []
            else:
                raise
        if not subnets:
            raise InputError(
                [InputProblem("instance.subnet_id", spec.instance.subnet_id, f"no such subnet in {clients.region}")]
            )
        return str(subnets[0]["VpcId"])
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    if not vpcs:
        raise InputError(
            [InputProblem("instance.subnet_id", "", f"{clients.region} has no default VPC: name a subnet to use")]
        )
    return str(vpcs[0]["VpcId"])


def find_security_group(ec2: Any, spec: Spec, vpc_id: str | None = None) -> Mapping[str, Any] | None:
    """The deployment's group: by its name (unique per VPC), checked to carry the deployment's tag."""
    filters = [{"Name": "group-name", "Values": [resource_name(spec)]}]
    if vpc_id is not None:
        filters.append({"Name": "vpc-id", "Values": [vpc_id]})
    groups = ec2.describe_security_groups(Filters=filters)["SecurityGroups"]
    if not groups:
        return None
    group = groups[0]
    if not belongs_to(tag_dict(group.get("Tags")), spec.deployment.name):
        raise OwnershipError(
            "security group", f"{group['GroupId']} ({resource_name(spec)})", "exists without this deployment's tags"
        )
    return dict(group)


def _changes(clients: AwsClients, spec: Spec, tags: Mapping[str, str], *, apply: bool) -> tuple[Change, str | None]:
    ec2, name = clients.ec2, resource_name(spec)
    vpc_id = vpc_of(clients, spec)
    wanted = atoms(to_ip_permissions(render_ingress_rules(spec)))
    group = find_security_group(ec2, spec, vpc_id)
    if group is None:
        if not apply:
            return Change(KIND, name, "create", f"in {vpc_id}, {len(wanted)} ingress rules"), None
        group_id = ec2.create_security_group(
            GroupName=name,
            Description=f"spotreg {spec.deployment.name}: registry access",
            VpcId=vpc_id,
            TagSpecifications=ec2_tag_specifications(["security-group"], tags),
        )["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[a.permission() for a in sorted(wanted)])
        return Change(KIND, f"{name} ({group_id})", "create", f"in {vpc_id}"), group_id
    group_id = str(group["GroupId"])
    actual = atoms(group.get("IpPermissions", []))
    extra, absent = sorted(actual - wanted), sorted(wanted - actual)
    drift = []
    if extra:
        drift.append(f"revoke {len(extra)} rules")
    if absent:
        drift.append(f"authorize {len(absent)} rules")
    missing = missing_tags(tag_dict(group.get("Tags")), tags)
    if missing:
        drift.append(f"tags {sorted(missing)}")
    if apply:
        if extra:
            ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=[a.permission() for a in extra])
        if absent:
            ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[a.permission() for a in absent])
        if missing:
            ec2.create_tags(Resources=[group_id], Tags=aws_tags(missing))
    return Change(KIND, f"{name} ({group_id})", "update" if drift else "keep", ", ".join(drift)), group_id


def deployment_security_groups(ec2: Any, deployment: str) -> list[Mapping[str, Any]]:
    """Every security group tagged as this deployment's, in any VPC."""
    return list(ec2.describe_security_groups(Filters=deployment_filter(deployment))["SecurityGroups"])


def delete_security_group(
    ec2: Any, group_id: str, *, waits: Waits, progress: Progress | None = None, step: str = KIND
) -> None:
    """Delete a group, retrying (bounded) while a terminated instance's interface still holds it."""

    def delete() -> None:
        try:
            ec2.delete_security_group(GroupId=group_id)
        except ClientError as error:
            if is_code(error, "InvalidGroup.NotFound"):
                return
            raise

    started = time.monotonic()
    try:
        waits.retry(
            f"deleting security group {group_id}",
            delete,
            lambda error: is_code(error, "DependencyViolation"),
            waits.security_group_release,
            progress,
            step,
        )
    except ClientError as error:
        if not is_code(error, "DependencyViolation"):
            raise
        raise WaitTimeout(
            f"security group {group_id} to be released by its network interfaces",
            time.monotonic() - started,
            str(error),
            hint="an interface of a terminated instance may linger for minutes: run 'spotreg down' again",
        ) from error


class SecurityGroupStep:
    """The security group: the registry port open to the operator's networks, SSH only if asked for."""

    name = KIND

    def resource(self, spec: Spec) -> str:
        return f"security group {resource_name(spec)}"

    def check(self, run: Run) -> None:
        find_security_group(run.clients.ec2, run.spec, vpc_of(run.clients, run.spec))

    def plan(self, run: Run) -> list[Change]:
        change, run.security_group_id = _changes(run.clients, run.spec, run.ctx.tags, apply=False)
        return [change]

    def apply(self, run: Run) -> list[Change]:
        change, run.security_group_id = _changes(run.clients, run.spec, run.ctx.tags, apply=True)
        return [change]

    def remove(self, ctx: Context, *, delete_data: bool) -> list[Change]:
        removed = []
        for group in deployment_security_groups(ctx.clients.ec2, ctx.deployment):
            delete_security_group(ctx.clients.ec2, str(group["GroupId"]), waits=ctx.waits, progress=ctx.progress)
            removed.append(Change(KIND, f"{group['GroupName']} ({group['GroupId']})", "delete"))
        return removed
