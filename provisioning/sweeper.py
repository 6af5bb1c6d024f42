"""The sweeper: finds what test runs left behind (by their `spotreg:run` and `spotreg:expires` tags),
lists it, and — only when asked — deletes exactly what it listed, re-reading each resource's tags
first. A resource without spotreg's run tag is never listed, so never touched: real deployments carry
no run tag."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from provisioning.aws import role as role_step
from provisioning.aws.bucket import NOT_CREATED, empty_bucket
from provisioning.aws.instance import terminate
from provisioning.aws.legacy_user import delete_user
from provisioning.aws.parameters import parameter_tags
from provisioning.aws.security_group import delete_security_group
from provisioning.aws.storage_moves import bucket_tags
from provisioning.clients import AwsClients
from provisioning.dns.route53 import parse_marker, records_at, remove_records
from provisioning.errors import InputError, InputProblem
from provisioning.names import TAG_CREATED, TAG_DEPLOYMENT, TAG_RUN
from provisioning.tags import is_code, tag_dict
from provisioning.test_runs import Found, find_test_resources, parse_expiry
from provisioning.waits import Progress, Waits

__all__ = ["Found", "failed", "find_test_resources", "remove_listed", "sweep"]


def _current_tags(clients: AwsClients, found: Found) -> Mapping[str, str] | None:
    """The resource's tags now; None if it is gone."""
    ec2 = clients.ec2
    try:
        if found.kind == "instance":
            reservations = ec2.describe_instances(InstanceIds=[found.id])["Reservations"]
            items = [i for r in reservations for i in r["Instances"]]
            return tag_dict(items[0].get("Tags")) if items and items[0]["State"]["Name"] != "terminated" else None
        if found.kind == "spot-request":
            items = ec2.describe_spot_instance_requests(SpotInstanceRequestIds=[found.id])["SpotInstanceRequests"]
            return tag_dict(items[0].get("Tags")) if items else None
        if found.kind == "elastic-ip":
            items = ec2.describe_addresses(AllocationIds=[found.id])["Addresses"]
            return tag_dict(items[0].get("Tags")) if items else None
        if found.kind == "security-group":
            items = ec2.describe_security_groups(GroupIds=[found.id])["SecurityGroups"]
            return tag_dict(items[0].get("Tags")) if items else None
        if found.kind == "role":
            return tag_dict(clients.iam.list_role_tags(RoleName=found.id).get("Tags"))
        if found.kind == "instance-profile":
            return role_step.profile_tags(clients.iam, found.id)
        if found.kind == "iam-user":
            return tag_dict(clients.iam.list_user_tags(UserName=found.id).get("Tags"))
        if found.kind == "parameter":
            return parameter_tags(clients.ssm, found.id) or None
        if found.kind == "bucket":
            return bucket_tags(clients.s3, found.id) or None
        if found.kind == "dns-record":
            zone_id, name = found.id.split(":", 1)
            txt = records_at(clients.route53, zone_id, name).get("TXT")
            if txt is None:
                return None
            for value in txt.values:
                marker = parse_marker(value)
                if TAG_DEPLOYMENT in marker:
                    return marker
            return None
    except ClientError as error:
        if is_code(
            error,
            "InvalidInstanceID.NotFound",
            "InvalidSpotInstanceRequestID.NotFound",
            "InvalidAllocationID.NotFound",
            "InvalidGroup.NotFound",
            "NoSuchEntity",
            "NoSuchBucket",
            "InvalidResourceId",
        ):
            return None
        raise
    raise ValueError(f"unknown kind {found.kind}")


def _delete(clients: AwsClients, found: Found, waits: Waits, progress: Progress | None) -> None:
    ec2, iam = clients.ec2, clients.iam
    if found.kind == "spot-request":
        ec2.cancel_spot_instance_requests(SpotInstanceRequestIds=[found.id])
    elif found.kind == "instance":
        terminate(ec2, [found.id], waits=waits, progress=progress, step="sweep")
    elif found.kind == "elastic-ip":
        for address in ec2.describe_addresses(AllocationIds=[found.id])["Addresses"]:
            if address.get("AssociationId"):
                ec2.disassociate_address(AssociationId=address["AssociationId"])
        ec2.release_address(AllocationId=found.id)
    elif found.kind == "security-group":
        delete_security_group(ec2, found.id, waits=waits, progress=progress, step="sweep")
    elif found.kind == "instance-profile":
        role_step.delete_instance_profile(iam, found.id)
    elif found.kind == "role":
        role_step.delete_role(iam, found.id)
    elif found.kind == "iam-user":
        delete_user(iam, found.id)
    elif found.kind == "parameter":
        clients.ssm.delete_parameter(Name=found.id)
    elif found.kind == "dns-record":
        # the A record and spotreg's marker value only: other TXT values at the name are someone else's
        zone_id, name = found.id.split(":", 1)
        remove_records(clients.route53, zone_id, name, found.deployment)
    elif found.kind == "bucket":
        empty_bucket(clients.s3, found.id)
        clients.s3.delete_bucket(Bucket=found.id)
    else:
        raise ValueError(f"unknown kind {found.kind}")


def sweep(
    clients: AwsClients,
    run_id: str | None = None,
    expired_before: datetime | str | None = None,
    dry_run: bool = True,
    *,
    waits: Waits | None = None,
    progress: Progress | None = None,
    now: Callable[[], datetime] | None = None,
) -> list[Found]:
    """List the resources of test runs — of `run_id`, and/or expired before `expired_before` (with
    neither: expired now) — and, unless `dry_run`, delete exactly those, each only if it still carries
    the run's tags. Returns the listed resources with what happened to each. `expired_before` may
    be an ISO 8601 time ("2030-01-01T00:00:00Z"; without a zone: UTC)."""
    if isinstance(expired_before, str):
        parsed = parse_expiry(expired_before)
        if parsed is None:
            raise InputError([InputProblem("--expired-before", expired_before, "must be an ISO 8601 time")])
        expired_before = parsed
    if run_id is None and expired_before is None:
        expired_before = (now or (lambda: datetime.now(UTC)))()
    listed = find_test_resources(clients, run_id, expired_before)
    if dry_run:
        return listed
    return remove_listed(clients, listed, waits=waits, progress=progress)


def remove_listed(
    clients: AwsClients, listed: Sequence[Found], *, waits: Waits | None = None, progress: Progress | None = None
) -> list[Found]:
    """Delete exactly the listed resources, each only if it still carries the run's tags it was
    listed with (else it is refused); returns each with its outcome."""
    waits = waits or Waits()
    results: list[Found] = []
    for found in listed:
        tags = _current_tags(clients, found)
        if tags is None:
            results.append(dataclasses.replace(found, outcome="gone"))
            continue
        if tags.get(TAG_RUN) != found.run or tags.get(TAG_DEPLOYMENT) != found.deployment:
            results.append(dataclasses.replace(found, outcome="refused: its spotreg tags changed since it was listed"))
            continue
        if found.kind == "bucket" and tags.get(TAG_CREATED) != found.deployment:
            results.append(dataclasses.replace(found, outcome=NOT_CREATED))  # adopted: its data is not ours
            continue
        try:
            _delete(clients, found, waits, progress)
        except Exception as error:  # one stubborn resource must not stop the rest
            results.append(dataclasses.replace(found, outcome=f"failed: {error}"))
            continue
        if progress is not None:
            progress(f"sweep: deleted {found.kind} {found.id}")
        results.append(dataclasses.replace(found, outcome="deleted"))
    return results


def failed(results: Sequence[Found]) -> list[Found]:
    return [f for f in results if f.outcome.startswith(("failed", "refused"))]
