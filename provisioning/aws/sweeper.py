"""The sweeper: finds what test runs left behind (by their `spotreg:run` and `spotreg:expires` tags),
lists it, and — only when asked — deletes exactly what it listed, re-reading each resource's tags
first. A resource without spotreg's run tag is never listed, so never touched: real deployments carry
no run tag."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from provisioning.aws import role as role_step
from provisioning.aws.bucket import NOT_CREATED, TAG_CREATED, empty_bucket
from provisioning.aws.clients import AwsClients
from provisioning.aws.instance import LIVE_STATES, OPEN_SPOT_REQUEST_STATES, terminate
from provisioning.aws.legacy_user import delete_user
from provisioning.aws.tags import is_code, tag_dict
from provisioning.dns.route53 import marked_records, parse_marker, records_at, remove_records
from provisioning.errors import InputError, InputProblem
from provisioning.names import TAG_DEPLOYMENT, TAG_EXPIRES, TAG_RUN
from provisioning.waits import Progress, Waits, retry_on

NAME_PREFIX = "spotreg-"
PARAMETER_ROOT = "/spotreg"
# Deletion order: what holds others first.
ORDER = (
    "spot-request",
    "instance",
    "elastic-ip",
    "security-group",
    "dns-record",
    "instance-profile",
    "role",
    "iam-user",
    "parameter",
    "bucket",
)


@dataclass(frozen=True)
class Found:
    """One resource of a test run; `outcome` says what the sweep did with it."""

    kind: str
    id: str
    deployment: str
    run: str
    expires: str | None
    outcome: str = "listed"

    def __str__(self) -> str:
        expiry = f", expires {self.expires}" if self.expires else ""
        return f"{self.kind} {self.id} (deployment {self.deployment}, run {self.run}{expiry}): {self.outcome}"


def parse_expiry(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _selected(tags: Mapping[str, str], run_id: str | None, expired_before: datetime | None) -> bool:
    """A test run's resource (both spotreg tags), of the run asked for and/or expired before the time."""
    if TAG_RUN not in tags or TAG_DEPLOYMENT not in tags:
        return False
    if run_id is not None and tags[TAG_RUN] != run_id:
        return False
    if expired_before is not None:
        expiry = parse_expiry(tags.get(TAG_EXPIRES))
        if expiry is None or expiry >= expired_before:
            return False
    return True


def _found(kind: str, ident: str, tags: Mapping[str, str]) -> Found:
    return Found(kind, ident, tags[TAG_DEPLOYMENT], tags[TAG_RUN], tags.get(TAG_EXPIRES))


# -- discovery: kind -> (found, fresh tags reader) ------------------------------------------------

RUN_FILTER = [{"Name": "tag-key", "Values": [TAG_RUN]}]


def _ec2_found(ec2: Any) -> list[tuple[Found, Mapping[str, str]]]:
    items: list[tuple[str, str, Mapping[str, Any]]] = []
    for page in ec2.get_paginator("describe_instances").paginate(
        Filters=[*RUN_FILTER, {"Name": "instance-state-name", "Values": list(LIVE_STATES)}]
    ):
        for reservation in page.get("Reservations", []):
            items.extend(("instance", i["InstanceId"], i) for i in reservation.get("Instances", []))
    requests = ec2.describe_spot_instance_requests(
        Filters=[*RUN_FILTER, {"Name": "state", "Values": list(OPEN_SPOT_REQUEST_STATES)}]
    )
    items.extend(("spot-request", i["SpotInstanceRequestId"], i) for i in requests.get("SpotInstanceRequests", []))
    items.extend(("elastic-ip", i["AllocationId"], i) for i in ec2.describe_addresses(Filters=RUN_FILTER)["Addresses"])
    groups = ec2.describe_security_groups(Filters=RUN_FILTER)["SecurityGroups"]
    items.extend(("security-group", i["GroupId"], i) for i in groups)
    found: list[tuple[Found, Mapping[str, str]]] = []
    for kind, ident, item in items:
        tags = tag_dict(item.get("Tags"))
        if _has(tags):
            found.append((_found(kind, ident, tags), tags))
    return found


def _has(tags: Mapping[str, str]) -> bool:
    return TAG_RUN in tags and TAG_DEPLOYMENT in tags


def _iam_found(iam: Any) -> list[tuple[Found, Mapping[str, str]]]:
    found: list[tuple[Found, Mapping[str, str]]] = []
    for page in iam.get_paginator("list_roles").paginate():
        for item in page.get("Roles", []):
            if item["RoleName"].startswith(NAME_PREFIX):
                tags = tag_dict(iam.list_role_tags(RoleName=item["RoleName"]).get("Tags"))
                if _has(tags):
                    found.append((_found("role", item["RoleName"], tags), tags))
    for page in iam.get_paginator("list_instance_profiles").paginate():
        for item in page.get("InstanceProfiles", []):
            name = item["InstanceProfileName"]
            if name.startswith(NAME_PREFIX):
                tags = role_step.profile_tags(iam, name) or {}
                if _has(tags):
                    found.append((_found("instance-profile", name, tags), tags))
    for page in iam.get_paginator("list_users").paginate():
        for item in page.get("Users", []):
            if item["UserName"].startswith(NAME_PREFIX):
                tags = tag_dict(iam.list_user_tags(UserName=item["UserName"]).get("Tags"))
                if _has(tags):
                    found.append((_found("iam-user", item["UserName"], tags), tags))
    return found


def _parameter_tags(ssm: Any, name: str) -> dict[str, str]:
    try:
        return tag_dict(ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name).get("TagList"))
    except ClientError as error:
        if is_code(error, "InvalidResourceId", "ParameterNotFound"):
            return {}
        raise


def _ssm_found(ssm: Any) -> list[tuple[Found, Mapping[str, str]]]:
    found: list[tuple[Found, Mapping[str, str]]] = []
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=PARAMETER_ROOT, Recursive=True):
        for item in page.get("Parameters", []):
            tags = _parameter_tags(ssm, item["Name"])
            if _has(tags):
                found.append((_found("parameter", item["Name"], tags), tags))
    return found


def _bucket_tags(s3: Any, name: str) -> dict[str, str]:
    try:
        return tag_dict(s3.get_bucket_tagging(Bucket=name).get("TagSet"))
    except ClientError:
        return {}


def _s3_found(s3: Any) -> list[tuple[Found, Mapping[str, str]]]:
    found: list[tuple[Found, Mapping[str, str]]] = []
    for item in s3.list_buckets().get("Buckets", []):
        tags = _bucket_tags(s3, item["Name"])
        if _has(tags):
            found.append((_found("bucket", item["Name"], tags), tags))
    return found


def _dns_found(route53: Any) -> list[tuple[Found, Mapping[str, str]]]:
    found: list[tuple[Found, Mapping[str, str]]] = []
    for record, marker in marked_records(route53):
        if _has(marker):
            found.append((_found("dns-record", f"{record.zone_id}:{record.name}", marker), marker))
    return found


def find_test_resources(
    clients: AwsClients, run_id: str | None = None, expired_before: datetime | None = None
) -> list[Found]:
    """Every resource carrying spotreg's deployment and run tags that matches run and/or expiry."""
    listed = [
        *_ec2_found(clients.ec2),
        *_iam_found(clients.iam),
        *_ssm_found(clients.ssm),
        *_s3_found(clients.s3),
        *_dns_found(clients.route53),
    ]
    chosen = [found for found, tags in listed if _selected(tags, run_id, expired_before)]
    return sorted(chosen, key=lambda f: (ORDER.index(f.kind), f.id))


# -- deletion, each after re-reading the resource's tags ------------------------------------------


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
            return _parameter_tags(clients.ssm, found.id) or None
        if found.kind == "bucket":
            return _bucket_tags(clients.s3, found.id) or None
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
        retry_on(
            f"deleting security group {found.id}",
            lambda: ec2.delete_security_group(GroupId=found.id),
            lambda error: is_code(error, "DependencyViolation"),
            timeout=waits.security_group_release,
            interval=waits.poll_interval,
            max_interval=waits.max_interval,
            progress=progress,
            step="sweep",
        )
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
