"""Everything of a deployment that exists in AWS, found by tag or by its deterministic name.

An Inventory is a frozen value: two of them compare equal when nothing changed, and `diff` names what
did. Details hold what a careless second `up` would change (parameter versions, policy digests, rules,
tags), so "up twice gives the same inventory" means "the second up changed nothing". What changes by
itself (instance and spot request states, the bucket's objects) is left out: `status` reports it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from provisioning import names
from provisioning.aws.elastic_ip import deployment_addresses
from provisioning.aws.instance import live_instances, open_spot_requests
from provisioning.aws.role import canonical
from provisioning.aws.security_group import atoms
from provisioning.aws.storage_moves import bucket_tags
from provisioning.clients import AwsClients
from provisioning.dns.route53 import marked_records, records_at
from provisioning.names import TAG_DEPLOYMENT
from provisioning.tags import deployment_filter, error_code, is_denied, tag_dict

RESOURCE_KINDS = (
    "bucket",
    "role",
    "role-policy",
    "instance-profile",
    "iam-user",
    "access-key",
    "parameter",
    "security-group",
    "instance",
    "spot-request",
    "elastic-ip",
    "dns-record",
)


def digest(value: Any) -> str:
    return hashlib.sha256(canonical(value).encode()).hexdigest()[:16]


def _tags_text(tags: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(tags.items()))


@dataclass(frozen=True, order=True)
class Resource:
    """One resource: its kind, its id, and the facts about it that matter."""

    kind: str
    id: str
    details: tuple[tuple[str, str], ...] = field(default=())

    def detail(self, key: str) -> str | None:
        return dict(self.details).get(key)

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"


def _resource(kind: str, ident: str, **details: Any) -> Resource:
    return Resource(kind, ident, tuple(sorted((k, str(v)) for k, v in details.items() if v is not None)))


@dataclass(frozen=True)
class Inventory:
    deployment: str
    resources: tuple[Resource, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "resources", tuple(sorted(self.resources)))

    @property
    def is_empty(self) -> bool:
        return not self.resources

    def kinds(self) -> set[str]:
        return {r.kind for r in self.resources}

    def of(self, kind: str) -> tuple[Resource, ...]:
        return tuple(r for r in self.resources if r.kind == kind)

    def without(self, *kinds: str) -> Inventory:
        return Inventory(self.deployment, tuple(r for r in self.resources if r.kind not in kinds))

    def diff(self, other: Inventory) -> list[str]:
        """What changed from self to other, one line per resource: added, removed, or which details."""
        mine = {(r.kind, r.id): r for r in self.resources}
        theirs = {(r.kind, r.id): r for r in other.resources}
        lines = []
        for key in sorted(mine.keys() | theirs.keys()):
            before, after = mine.get(key), theirs.get(key)
            if before is None and after is not None:
                lines.append(f"added {after}")
            elif after is None and before is not None:
                lines.append(f"removed {before}")
            elif before is not None and after is not None and before.details != after.details:
                old, new = dict(before.details), dict(after.details)
                changed = [
                    f"{k}: {old.get(k)!r} -> {new.get(k)!r}"
                    for k in sorted(old.keys() | new.keys())
                    if old.get(k) != new.get(k)
                ]
                lines.append(f"changed {after}: " + "; ".join(changed))
        return lines

    def __str__(self) -> str:
        if not self.resources:
            return f"deployment {self.deployment}: nothing"
        return f"deployment {self.deployment}:\n" + "\n".join(f"  {r}" for r in self.resources)


def _optional(call: Any, codes: tuple[str, ...], **kwargs: Any) -> Any:
    try:
        return call(**kwargs)
    except ClientError as error:
        if error_code(error) in codes:
            return None
        raise


def _buckets(s3: Any, deployment: str, named: Sequence[str]) -> list[Resource]:
    found = []
    listed = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    for name in sorted(set(listed) | set(named)):
        tags = bucket_tags(s3, name)
        if tags is None or (tags.get(TAG_DEPLOYMENT) != deployment and name not in named):
            continue
        versioning = s3.get_bucket_versioning(Bucket=name).get("Status")
        life = _optional(s3.get_bucket_lifecycle_configuration, ("NoSuchLifecycleConfiguration",), Bucket=name)
        pab = _optional(s3.get_public_access_block, ("NoSuchPublicAccessBlockConfiguration",), Bucket=name)
        enc = _optional(s3.get_bucket_encryption, ("ServerSideEncryptionConfigurationNotFoundError",), Bucket=name)
        found.append(
            _resource(
                "bucket",
                name,
                tags=_tags_text(tags),
                versioning=versioning,
                lifecycle=digest(life["Rules"]) if life else None,
                public_access_block=digest(pab["PublicAccessBlockConfiguration"]) if pab else None,
                encryption=digest(enc["ServerSideEncryptionConfiguration"]) if enc else None,
            )
        )
    return found


def _iam(iam: Any, deployment: str) -> list[Resource]:
    name = names.deployment_resource_name(deployment)
    found = []
    role = _optional(iam.get_role, ("NoSuchEntity",), RoleName=name)
    if role is not None:
        tags = tag_dict(iam.list_role_tags(RoleName=name).get("Tags"))
        found.append(
            _resource(
                "role",
                name,
                arn=role["Role"]["Arn"],
                trust=digest(role["Role"]["AssumeRolePolicyDocument"]),
                tags=_tags_text(tags),
            )
        )
        for policy in iam.list_role_policies(RoleName=name).get("PolicyNames", []):
            document = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
            found.append(_resource("role-policy", f"{name}/{policy}", document=digest(document)))
    profile = _optional(iam.get_instance_profile, ("NoSuchEntity",), InstanceProfileName=name)
    if profile is not None:
        tags = tag_dict(profile["InstanceProfile"].get("Tags"))
        roles = ",".join(sorted(r["RoleName"] for r in profile["InstanceProfile"].get("Roles", [])))
        found.append(
            _resource(
                "instance-profile", name, arn=profile["InstanceProfile"]["Arn"], roles=roles, tags=_tags_text(tags)
            )
        )
    user = names.deployment_legacy_user_name(deployment)
    if _optional(iam.get_user, ("NoSuchEntity",), UserName=user) is not None:
        tags = tag_dict(iam.list_user_tags(UserName=user).get("Tags"))
        policies = ",".join(sorted(iam.list_user_policies(UserName=user).get("PolicyNames", [])))
        found.append(_resource("iam-user", user, policies=policies, tags=_tags_text(tags)))
        for key in iam.list_access_keys(UserName=user).get("AccessKeyMetadata", []):
            found.append(_resource("access-key", key["AccessKeyId"], user=user, status=key.get("Status")))
    return found


def _parameters(ssm: Any, deployment: str) -> list[Resource]:
    found = []
    path = names.deployment_parameter_prefix(deployment)
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=path, Recursive=True):
        for item in page.get("Parameters", []):
            tags = tag_dict(
                ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=item["Name"]).get("TagList")
            )
            found.append(
                _resource("parameter", item["Name"], type=item["Type"], version=item["Version"], tags=_tags_text(tags))
            )
    return found


def _security_groups(ec2: Any, deployment: str) -> list[Resource]:
    """The deployment's security groups: by tag, and by its deterministic name."""
    found = []
    by_tag = ec2.describe_security_groups(Filters=deployment_filter(deployment))["SecurityGroups"]
    named = [{"Name": "group-name", "Values": [names.deployment_resource_name(deployment)]}]
    by_name = ec2.describe_security_groups(Filters=named)["SecurityGroups"]
    groups = {g["GroupId"]: g for g in [*by_tag, *by_name]}
    for group_id, group in sorted(groups.items()):
        rules = ";".join(
            f"{a.protocol}:{a.from_port}-{a.to_port}:{a.source}:{a.description}"
            for a in sorted(atoms(group.get("IpPermissions", [])))
        )
        found.append(
            _resource(
                "security-group",
                group_id,
                name=group["GroupName"],
                vpc=group.get("VpcId"),
                rules=rules,
                tags=_tags_text(tag_dict(group.get("Tags"))),
            )
        )
    return found


def _instances(ec2: Any, deployment: str) -> list[Resource]:
    """The deployment's live instances, open spot requests and Elastic IPs, by tag."""
    found = []
    for instance in live_instances(ec2, deployment):
        found.append(
            _resource(
                "instance",
                instance.instance_id,
                type=instance.instance_type,
                zone=instance.zone,
                groups=",".join(instance.security_groups),
                profile=instance.profile_arn,
                tags=_tags_text(instance.tags),
            )
        )
    for request in open_spot_requests(ec2, deployment):
        found.append(
            _resource(
                "spot-request",
                request["SpotInstanceRequestId"],
                instance=request.get("InstanceId"),
            )
        )
    for address in deployment_addresses(ec2, deployment):
        found.append(
            _resource(
                "elastic-ip",
                address.allocation_id,
                ip=address.public_ip,
                instance=address.instance_id,
                tags=_tags_text(address.tags),
            )
        )
    return found


def _dns(
    route53: Any, deployment: str, zone_ids: Sequence[str] | None, *, optional: bool, own_zone: str | None
) -> list[Resource]:
    found = []
    try:
        marked = marked_records(route53, None if zone_ids is None else list(zone_ids))
    except ClientError as error:
        if not is_denied(error):
            raise
        if optional:
            return []
        if own_zone is None:
            raise
        marked = marked_records(route53, [own_zone])  # may not list every zone: the spec's own, then
    for record, marker in marked:
        if marker.get(TAG_DEPLOYMENT) != deployment:
            continue
        for kind, record_set in sorted(records_at(route53, record.zone_id, record.name).items()):
            if kind in ("A", "TXT"):
                found.append(
                    _resource(
                        "dns-record",
                        f"{record.name} {kind} in {record.zone_id}",
                        values=",".join(record_set.values),
                        ttl=record_set.ttl,
                    )
                )
    return found


def take_inventory(
    clients: AwsClients,
    deployment_name: str,
    *,
    bucket_names: Iterable[str] = (),
    zone_ids: Sequence[str] | None = None,
    route53_optional: bool = False,
    own_zone: str | None = None,
) -> Inventory:
    """Every resource of the deployment, of every kind spotreg makes.

    Buckets are found by tag (and by `bucket_names`, which are listed whatever their tags say); IAM
    resources and parameters by their deterministic names; EC2 resources by tag; DNS records by the
    owner TXT record spotreg writes beside them, in `zone_ids` (default: every hosted zone); with
    `route53_optional` (a spec that does not use Route 53), Route 53 denying the search finds none; when
    listing every zone is denied, `own_zone` (the spec's) is searched alone.
    """
    resources = [
        *_buckets(clients.s3, deployment_name, list(bucket_names)),
        *_iam(clients.iam, deployment_name),
        *_parameters(clients.ssm, deployment_name),
        *_security_groups(clients.ec2, deployment_name),
        *_instances(clients.ec2, deployment_name),
        *_dns(clients.route53, deployment_name, zone_ids, optional=route53_optional, own_zone=own_zone),
    ]
    return Inventory(deployment_name, tuple(resources))
