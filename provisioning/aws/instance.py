"""The spot instance: found by tag, kept while it matches the spec, replaced when it drifts, launched
(see launch.py) when there is none, and terminated (with its spot request) on the way down."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any

from provisioning.aws.launch import KIND, LaunchInputs, launch, launch_candidates
from provisioning.changes import Change
from provisioning.clients import AwsClients
from provisioning.errors import InputError, InputProblem
from provisioning.names import TAG_LEGACY_KEY, resource_name
from provisioning.records import InstanceFacts, Launched
from provisioning.render.user_data import render_user_data, unpack_user_data
from provisioning.rules import architecture_of
from provisioning.spec import Spec
from provisioning.step import Context, Run
from provisioning.tags import deployment_filter
from provisioning.waits import Progress, Waits

LIVE_STATES = ("pending", "running", "shutting-down", "stopping", "stopped")
OPEN_SPOT_REQUEST_STATES = ("open", "active", "disabled")


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
        return unpack_user_data(base64.b64decode(encoded))
    except (binascii.Error, UnicodeDecodeError, OSError, EOFError):
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


def legacy_tag(legacy: bool) -> dict[str, str]:
    """The instance's record of how its registry reaches S3 (read once, at boot): legacy key or profile."""
    return {TAG_LEGACY_KEY: "true" if legacy else "false"}


def instance_drift(
    facts: InstanceFacts, spec: Spec, inputs: LaunchInputs | None, user_data: str | None, *, legacy: bool = False
) -> list[str]:
    """Why a live instance no longer matches the spec (pure). The AMI is not compared: a newer AL2023
    release is no reason to replace a running registry."""
    drift = []
    if facts.instance_type not in spec.instance.types:
        drift.append(f"type {facts.instance_type} is not in instance.types")
    if facts.tags.get(TAG_LEGACY_KEY, "false") != legacy_tag(legacy)[TAG_LEGACY_KEY]:
        drift.append("legacy access key " + ("on" if legacy else "off") + " (the registry reads it at boot)")
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

    waits.poll(
        f"instances {', '.join(instance_ids)} to terminate",
        check,
        waits.instance_terminated,
        progress,
        step,
    )


def remove_instances(ec2: Any, deployment: str, *, waits: Waits, progress: Progress | None = None) -> list[Change]:
    """Cancel the spot requests, terminate every live instance of the deployment, wait for it."""
    instances = live_instances(ec2, deployment)
    changes = cancel_spot_requests(ec2, deployment, [i.spot_request_id for i in instances if i.spot_request_id])
    terminate(ec2, [i.instance_id for i in instances], waits=waits, progress=progress)
    changes.extend(Change(KIND, i.instance_id, "delete", f"{i.instance_type}, was {i.state}") for i in instances)
    return changes


def launch_inputs(run: Run) -> LaunchInputs | None:
    """What a launch needs from the earlier steps; None while they have not made it (a plan)."""
    if run.security_group_id is None or run.profile_arn is None:
        return None
    return LaunchInputs(
        image_ids=run.image_ids,
        security_group_id=run.security_group_id,
        profile_arn=run.profile_arn,
        user_data=render_user_data(run.spec, run.server_cert_pem),
        tags={**run.ctx.tags, **legacy_tag(run.legacy)},
    )


def sort_out(
    run: Run, inputs: LaunchInputs | None
) -> tuple[InstanceFacts | None, list[tuple[InstanceFacts, list[str]]]]:
    """The live instance to keep (the first that matches the spec), and the others with why they go."""
    ec2 = run.clients.ec2
    keep: InstanceFacts | None = None
    retire: list[tuple[InstanceFacts, list[str]]] = []
    for facts in live_instances(ec2, run.ctx.deployment):
        user_data = user_data_of(ec2, facts.instance_id) if inputs is not None else None
        drift = instance_drift(facts, run.spec, inputs, user_data, legacy=run.legacy)
        if not drift and keep is None:
            keep = facts
        else:
            retire.append((facts, drift or ["a second instance of the deployment"]))
    return keep, retire


def _survey(run: Run, inputs: LaunchInputs | None) -> tuple[InstanceFacts | None, list[Change], list[InstanceFacts]]:
    """The instance to keep, the changes that says, and the instances to retire."""
    if not run.subnets:
        run.subnets = subnets_by_zone(run.clients, run.spec)
    keep, retire = sort_out(run, inputs)
    changes = [
        Change(KIND, facts.instance_id, "replace" if keep is None else "delete", ", ".join(drift))
        for facts, drift in retire
    ]
    if keep is not None:
        run.facts = keep
        changes.append(Change(KIND, keep.instance_id, "keep", f"{keep.instance_type} {keep.state}"))
    return keep, changes, [facts for facts, _ in retire]


class InstanceStep:
    """The spot instance: one per deployment, matching the spec."""

    name = KIND

    def resource(self, spec: Spec) -> str:
        return f"spot instance of {resource_name(spec)}"

    def check(self, run: Run) -> None:
        run.subnets = subnets_by_zone(run.clients, run.spec)

    def plan(self, run: Run) -> list[Change]:
        keep, changes, _ = _survey(run, launch_inputs(run))
        if keep is None:
            candidates = launch_candidates(run.clients, run.spec, list(run.subnets), now=run.ctx.now())
            first = candidates[0] if candidates else None
            detail = (
                "no candidate" if first is None else f"would try {first.instance_type} in {first.zone} ({first.reason})"
            )
            changes.append(Change(KIND, "(new spot instance)", "create", detail))
        return changes

    def apply(self, run: Run) -> list[Change]:
        inputs = launch_inputs(run)
        assert inputs is not None  # the role and security group steps ran first
        ctx, ec2 = run.ctx, run.clients.ec2
        keep, changes, retire = _survey(run, inputs)
        if retire:
            ctx.say(KIND, f"replacing {', '.join(f.instance_id for f in retire)}: " + changes[0].detail)
        requests = [f.spot_request_id for f in retire if f.spot_request_id]
        if requests:
            ec2.cancel_spot_instance_requests(SpotInstanceRequestIds=requests)
        terminate(ec2, [f.instance_id for f in retire], waits=ctx.waits, progress=ctx.progress)
        if keep is not None:
            run.launched = Launched(keep, None, (), changes[-1])  # placement: "kept the running instance"
            return changes
        candidates = launch_candidates(run.clients, run.spec, list(run.subnets), now=ctx.now())
        run.launched = launch(
            run.clients,
            run.spec,
            candidates,
            run.subnets,
            inputs,
            architecture_of=architecture_of,
            waits=ctx.waits,
            progress=ctx.progress,
        )
        run.facts = run.launched.instance
        ctx.say(KIND, f"settled on {run.launched.reason}")
        return [*changes, run.launched.change]

    def remove(self, ctx: Context, *, delete_data: bool) -> list[Change]:
        return remove_instances(ctx.clients.ec2, ctx.deployment, waits=ctx.waits, progress=ctx.progress)
