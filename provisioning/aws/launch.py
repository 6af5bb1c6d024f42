"""Launching the spot instance: where to try (spot price history, else the spec's order), and the
fallback to the next type or zone when AWS has no capacity or the price cap is too low."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from provisioning.aws.spot_prices import price_rows
from provisioning.changes import Change
from provisioning.clients import AwsClients
from provisioning.errors import CapacityError, LaunchAttempt
from provisioning.placement import Choice, launch_order, rank_placements, unpriced_order
from provisioning.records import InstanceFacts, Launched
from provisioning.render.launch import TAGGED_RESOURCES, render_launch_parameters
from provisioning.render.user_data import pack_user_data
from provisioning.spec import Spec
from provisioning.tags import ec2_tag_specifications, error_code
from provisioning.waits import Progress, Waits

KIND = "instance"
MAX_LAUNCH_ATTEMPTS = 24
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
        user_data=pack_user_data(inputs.user_data),
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
            answer = waits.retry(
                "run_instances with a fresh instance profile",
                functools.partial(clients.ec2.run_instances, **params),
                _is_fresh_profile_error,
                waits.profile_propagation,
                progress,
                "instance",
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
