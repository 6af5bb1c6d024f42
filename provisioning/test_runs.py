"""What test runs left behind: every resource carrying spotreg's run tag, found by its tags (and, for a
DNS record, by its owner marker), with the run and expiry it was tagged with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from provisioning.aws.instance import LIVE_STATES, OPEN_SPOT_REQUEST_STATES
from provisioning.aws.parameters import parameter_tags
from provisioning.aws.role import profile_tags
from provisioning.aws.storage_moves import bucket_tags
from provisioning.clients import AwsClients
from provisioning.dns.route53 import marked_records
from provisioning.names import NAME_PREFIX, PARAMETER_ROOT, TAG_DEPLOYMENT, TAG_EXPIRES, TAG_RUN
from provisioning.tags import tag_dict

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
                tags = profile_tags(iam, name) or {}
                if _has(tags):
                    found.append((_found("instance-profile", name, tags), tags))
    for page in iam.get_paginator("list_users").paginate():
        for item in page.get("Users", []):
            if item["UserName"].startswith(NAME_PREFIX):
                tags = tag_dict(iam.list_user_tags(UserName=item["UserName"]).get("Tags"))
                if _has(tags):
                    found.append((_found("iam-user", item["UserName"], tags), tags))
    return found


def _ssm_found(ssm: Any) -> list[tuple[Found, Mapping[str, str]]]:
    found: list[tuple[Found, Mapping[str, str]]] = []
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=PARAMETER_ROOT, Recursive=True):
        for item in page.get("Parameters", []):
            tags = parameter_tags(ssm, item["Name"])
            if _has(tags):
                found.append((_found("parameter", item["Name"], tags), tags))
    return found


def _s3_found(s3: Any) -> list[tuple[Found, Mapping[str, str]]]:
    found: list[tuple[Found, Mapping[str, str]]] = []
    for item in s3.list_buckets().get("Buckets", []):
        tags = bucket_tags(s3, item["Name"]) or {}
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
