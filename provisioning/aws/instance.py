"""The spot instance: found by tag, launched with the rendered parameters, falling back to the next
type or zone when AWS has no capacity or the price cap is too low, and terminated (with its spot
request) on the way down."""

from __future__ import annotations

import base64
import binascii
import functools
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from provisioning.aws.changes import Change
from provisioning.aws.clients import AwsClients
from provisioning.aws.spot_prices import price_rows
from provisioning.aws.tags import deployment_filter, ec2_tag_specifications, error_code, tag_dict
from provisioning.aws.waits import Progress, Waits, poll_until, retry_on
from provisioning.errors import CapacityError, InputError, InputProblem, LaunchAttempt
from provisioning.placement import Choice, launch_order, rank_placements, unpriced_order
from provisioning.render.launch import TAGGED_RESOURCES, render_launch_parameters
from provisioning.spec import Spec

KIND = "instance"
LIVE_STATES = ("pending", "running", "shutting-down", "stopping", "stopped")
OPEN_SPOT_REQUEST_STATES = ("open", "active", "disabled")
MAX_LAUNCH_ATTEMPTS = 24

# Errors that say "not this type here, now": the next type or zone may well work.
FALLBACK_CODES = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientCapacity",
        "InsufficientHostCapacity",
        "InsufficientReservedInstanceCapacity",
        "InsufficientFreeAddressesInSubnet",
        "SpotMaxPriceTooLow",
        "Unsupported",
        "UnfulfillableCapacity",
    }
)


@dataclass(frozen=True)
class InstanceFacts:
    """What spotreg reads back of a live instance."""

    instance_id: str
    state: str
    instance_type: str
    zone: str
    public_ip: str | None
    spot_request_id: str | None
    security_groups: tuple[str, ...]
    profile_arn: str | None
    tags: Mapping[str, str]

    @classmethod
    def of(cls, item: Mapping[str, Any]) -> InstanceFacts:
        return cls(
            instance_id=item["InstanceId"],
            state=item["State"]["Name"],
            instance_type=item["InstanceType"],
            zone=item.get("Placement", {}).get("AvailabilityZone", ""),
            public_ip=item.get("PublicIpAddress"),
            spot_request_id=item.get("SpotInstanceRequestId"),
            # moto lists groups given through NetworkInterfaces only on the interface: read both
            security_groups=tuple(
                sorted(
                    {g["GroupId"] for g in item.get("SecurityGroups", [])}
                    | {g["GroupId"] for eni in item.get("NetworkInterfaces", []) for g in eni.get("Groups", [])}
                )
            ),
            profile_arn=(item.get("IamInstanceProfile") or {}).get("Arn"),
            tags=tag_dict(item.get("Tags")),
        )


@dataclass(frozen=True)
class Launched:
    """The instance `up` settled on, where, and why (with every failed attempt before it)."""

    instance: InstanceFacts
    choice: Choice | None
    attempts: tuple[LaunchAttempt, ...]
    change: Change

    @property
    def reason(self) -> str:
        if self.choice is None:
            return "kept the running instance"
        failed = [a for a in self.attempts if a.error_code is not None]
        tried = f" after {len(failed)} failed attempts ({'; '.join(map(str, failed))})" if failed else ""
        return f"{self.choice.instance_type} in {self.choice.zone}: {self.choice.reason}{tried}"


def live_instances(ec2: Any, deployment: str) -> list[InstanceFacts]:
    """Every instance of the deployment that is not terminated, oldest launch first."""
    filters = [*deployment_filter(deployment), {"Name": "instance-state-name", "Values": list(LIVE_STATES)}]
    found: list[tuple[str, InstanceFacts]] = []
    for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
        for reservation in page.get("Reservations", []):
            for item in reservation.get("Instances", []):
                found.append((str(item.get("LaunchTime", "")), InstanceFacts.of(item)))
    found.sort(key=lambda pair: (pair[0], pair[1].instance_id))
    return [facts for _, facts in found]


def open_spot_requests(ec2: Any, deployment: str) -> list[Mapping[str, Any]]:
    filters = [*deployment_filter(deployment), {"Name": "state", "Values": list(OPEN_SPOT_REQUEST_STATES)}]
    return list(ec2.describe_spot_instance_requests(Filters=filters).get("SpotInstanceRequests", []))


def user_data_of(ec2: Any, instance_id: str) -> str | None:
    answer = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    encoded = (answer.get("UserData") or {}).get("Value")
    if not encoded:
        return None
    try:
        return base64.b64decode(encoded).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def subnets_by_zone(clients: AwsClients, spec: Spec) -> dict[str, str]:
    """The subnet to launch into, per zone: the named subnet alone, or the default VPC's default subnets."""
    ec2 = clients.ec2
    if spec.instance.subnet_id is not None:
        subnets = ec2.describe_subnets(SubnetIds=[spec.instance.subnet_id])["Subnets"]
    else:
        subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    found = {s["AvailabilityZone"]: s["SubnetId"] for s in subnets if s.get("State", "available") == "available"}
    if not found:
        raise InputError(
            [InputProblem("instance.subnet_id", spec.instance.subnet_id or "", "no usable subnet to launch into")]
        )
    return dict(sorted(found.items()))


def launch_candidates(clients: AwsClients, spec: Spec, zones: Sequence[str], *, now: datetime) -> list[Choice]:
    """Where to try, in order: from spot price history when there is some, else the spec's order."""
    types = spec.instance.types
    ranked = rank_placements(price_rows(clients.ec2, types, zones, now=now), types)
    priced = {(c.instance_type, c.zone) for c in ranked}
    order = launch_order(ranked)
    # types or zones without price history still get a turn, after every priced one
    order.extend(c for c in unpriced_order(types, zones) if (c.instance_type, c.zone) not in priced)
    return order[:MAX_LAUNCH_ATTEMPTS]


def _is_fresh_profile_error(error: BaseException) -> bool:
    """A just-made instance profile is not yet visible to EC2 (IAM is eventually consistent)."""
    if not isinstance(error, ClientError) or error_code(error) != "InvalidParameterValue":
        return False
    message = str(error.response.get("Error", {}).get("Message", "")).lower()
    return "instance profile" in message or "iaminstanceprofile" in message


@dataclass(frozen=True)
class LaunchInputs:
    """Everything a launch needs that earlier steps made."""

    image_ids: Mapping[str, str]  # architecture -> AMI id
    security_group_id: str
    profile_arn: str
    user_data: str
    tags: Mapping[str, str]


def launch_parameters(spec: Spec, choice: Choice, subnet_id: str, inputs: LaunchInputs, arch: str) -> dict[str, Any]:
    params = render_launch_parameters(
        spec,
        instance_type=choice.instance_type,
        image_id=inputs.image_ids[arch],
        subnet_id=subnet_id,
        security_group_id=inputs.security_group_id,
        instance_profile_arn=inputs.profile_arn,
        user_data=inputs.user_data,
    )
    params["TagSpecifications"] = ec2_tag_specifications(TAGGED_RESOURCES, inputs.tags)
    params.setdefault("ClientToken", uuid.uuid4().hex)
    return params


def launch(
    clients: AwsClients,
    spec: Spec,
    candidates: Sequence[Choice],
    subnets: Mapping[str, str],
    inputs: LaunchInputs,
    *,
    architecture_of: Callable[[str], str],
    waits: Waits,
    progress: Progress | None = None,
) -> Launched:
    """Try the candidates in order until one launches; CapacityError lists every attempt if none does."""
    attempts: list[LaunchAttempt] = []
    for choice in candidates:
        params = launch_parameters(spec, choice, subnets[choice.zone], inputs, architecture_of(choice.instance_type))
        if progress is not None:
            progress(f"instance: launching {choice.instance_type} in {choice.zone} ({choice.reason})")
        try:
            answer = retry_on(
                "run_instances with a fresh instance profile",
                functools.partial(clients.ec2.run_instances, **params),
                _is_fresh_profile_error,
                timeout=waits.profile_propagation,
                interval=waits.poll_interval,
                max_interval=waits.max_interval,
                progress=progress,
                step="instance",
            )
        except ClientError as error:
            code = error_code(error)
            if code not in FALLBACK_CODES:
                raise
            message = str(error.response.get("Error", {}).get("Message", ""))
            attempts.append(LaunchAttempt(choice.instance_type, choice.zone, code, message))
            if progress is not None:
                progress(f"instance: {choice.instance_type} in {choice.zone}: {code}; trying the next candidate")
            continue
        attempts.append(LaunchAttempt(choice.instance_type, choice.zone, None))
        facts = InstanceFacts.of(answer["Instances"][0])
        detail = f"{choice.instance_type} in {choice.zone}"
        if len(attempts) > 1:
            detail += f" after {len(attempts) - 1} failed attempts"
        return Launched(facts, choice, tuple(attempts), Change(KIND, facts.instance_id, "create", detail))
    raise CapacityError(attempts)


def instance_drift(facts: InstanceFacts, spec: Spec, inputs: LaunchInputs | None, user_data: str | None) -> list[str]:
    """Why a live instance no longer matches the spec (pure). The AMI is not compared: a newer AL2023
    release is no reason to replace a running registry."""
    drift = []
    if facts.instance_type not in spec.instance.types:
        drift.append(f"type {facts.instance_type} is not in instance.types")
    if inputs is not None:
        if user_data != inputs.user_data:
            drift.append("user data")
        if inputs.security_group_id not in facts.security_groups:
            drift.append("security group")
        if facts.profile_arn is not None and facts.profile_arn != inputs.profile_arn:
            drift.append("instance profile")
    return drift


def cancel_spot_requests(ec2: Any, deployment: str, extra_ids: Sequence[str] = ()) -> list[Change]:
    """Cancel the deployment's open spot requests first, or a persistent one relaunches the instance."""
    ids = sorted({*(r["SpotInstanceRequestId"] for r in open_spot_requests(ec2, deployment)), *extra_ids})
    if ids:
        ec2.cancel_spot_instance_requests(SpotInstanceRequestIds=ids)
    return [Change("spot-request", request_id, "delete") for request_id in ids]


def terminate(
    ec2: Any, instance_ids: Sequence[str], *, waits: Waits, progress: Progress | None = None, step: str = "instance"
) -> None:
    """Terminate and wait (bounded) until every one is terminated."""
    if not instance_ids:
        return
    ec2.terminate_instances(InstanceIds=list(instance_ids))

    def check() -> tuple[bool, str]:
        states = {}
        for page in ec2.get_paginator("describe_instances").paginate(InstanceIds=list(instance_ids)):
            for reservation in page.get("Reservations", []):
                for item in reservation.get("Instances", []):
                    states[item["InstanceId"]] = item["State"]["Name"]
        seen = ", ".join(f"{i} {s}" for i, s in sorted(states.items()))
        return all(s == "terminated" for s in states.values()), seen

    poll_until(
        f"instances {', '.join(instance_ids)} to terminate",
        check,
        timeout=waits.instance_terminated,
        interval=waits.poll_interval,
        max_interval=waits.max_interval,
        progress=progress,
        step=step,
    )


def remove_instances(ec2: Any, deployment: str, *, waits: Waits, progress: Progress | None = None) -> list[Change]:
    """Cancel the spot requests, terminate every live instance of the deployment, wait for it."""
    instances = live_instances(ec2, deployment)
    changes = cancel_spot_requests(ec2, deployment, [i.spot_request_id for i in instances if i.spot_request_id])
    terminate(ec2, [i.instance_id for i in instances], waits=waits, progress=progress)
    changes.extend(Change(KIND, i.instance_id, "delete", f"{i.instance_type}, was {i.state}") for i in instances)
    return changes
