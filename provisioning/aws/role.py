"""The instance's IAM role (rendered least-privilege inline policy) and its instance profile."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import ClientError

from provisioning.changes import Change
from provisioning.clients import AwsClients
from provisioning.errors import OwnershipError
from provisioning.names import REGISTRY_POLICY_NAME, resource_name
from provisioning.render.policy import render_assume_role_policy, render_registry_policy
from provisioning.spec import Spec
from provisioning.step import Context, Run
from provisioning.tags import aws_tags, belongs_to, is_code, missing_tags, tag_dict

ROLE_DESCRIPTION = "spotreg: the registry instance reads and writes its image bucket"


def canonical(document: Any) -> str:
    """A policy document in one comparable form (IAM hands some back URL-encoded)."""
    if isinstance(document, str):
        document = json.loads(unquote(document)) if document.lstrip().startswith("%") else json.loads(document)
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def _get(call: Any, **kwargs: Any) -> Any:
    try:
        return call(**kwargs)
    except ClientError as error:
        if is_code(error, "NoSuchEntity"):
            return None
        raise


def read_role(iam: Any, name: str) -> tuple[Mapping[str, Any] | None, dict[str, str]]:
    found = _get(iam.get_role, RoleName=name)
    if found is None:
        return None, {}
    tags = tag_dict(iam.list_role_tags(RoleName=name).get("Tags"))
    return found["Role"], tags


def read_profile(iam: Any, name: str) -> Mapping[str, Any] | None:
    """The instance profile, with its Tags (GetInstanceProfile returns them; moto has no
    ListInstanceProfileTags)."""
    found = _get(iam.get_instance_profile, InstanceProfileName=name)
    return None if found is None else found["InstanceProfile"]


def profile_tags(iam: Any, name: str) -> dict[str, str] | None:
    profile = read_profile(iam, name)
    return None if profile is None else tag_dict(profile.get("Tags"))


def check_owner(iam: Any, name: str, deployment: str) -> None:
    """OwnershipError when a role or instance profile by this name exists without the deployment's tag."""
    role, tags = read_role(iam, name)
    if role is not None and not belongs_to(tags, deployment):
        raise OwnershipError("IAM role", name, "exists without this deployment's spotreg tags: spotreg leaves it be")
    found = profile_tags(iam, name)
    if found is not None and not belongs_to(found, deployment):
        raise OwnershipError("instance profile", name, "exists without this deployment's spotreg tags")


def _role_changes(
    clients: AwsClients, spec: Spec, tags: Mapping[str, str], *, apply: bool
) -> tuple[list[Change], str | None, str | None]:
    """Compare role, policy and profile with what the spec renders; with `apply`, make them so."""
    iam, name = clients.iam, resource_name(spec)
    trust = render_assume_role_policy()
    policy = render_registry_policy(spec, clients.account_id())
    changes: list[Change] = []

    role, role_tags = read_role(iam, name)
    if role is not None and not belongs_to(role_tags, spec.deployment.name):
        raise OwnershipError("IAM role", name, "exists without this deployment's spotreg tags: spotreg leaves it be")
    if role is None:
        changes.append(Change("role", name, "create"))
        if apply:
            role = iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=json.dumps(trust),
                Description=ROLE_DESCRIPTION,
                Tags=aws_tags(tags),
            )["Role"]
    else:
        drift = []
        if canonical(role["AssumeRolePolicyDocument"]) != canonical(trust):
            drift.append("trust policy")
            if apply:
                iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
        missing = missing_tags(role_tags, tags)
        if missing:
            drift.append(f"tags {sorted(missing)}")
            if apply:
                iam.tag_role(RoleName=name, Tags=aws_tags(missing))
        changes.append(Change("role", name, "update" if drift else "keep", ", ".join(drift)))

    current = None if role is None else _get(iam.get_role_policy, RoleName=name, PolicyName=REGISTRY_POLICY_NAME)
    if current is None:
        changes.append(Change("role-policy", f"{name}/{REGISTRY_POLICY_NAME}", "create"))
    elif canonical(current["PolicyDocument"]) != canonical(policy):
        changes.append(Change("role-policy", f"{name}/{REGISTRY_POLICY_NAME}", "update", "policy document"))
    else:
        changes.append(Change("role-policy", f"{name}/{REGISTRY_POLICY_NAME}", "keep"))
    if apply and changes[-1].action != "keep":
        iam.put_role_policy(RoleName=name, PolicyName=REGISTRY_POLICY_NAME, PolicyDocument=json.dumps(policy))

    profile = read_profile(iam, name)
    if profile is not None:
        profile_tags = tag_dict(profile.get("Tags"))
        if not belongs_to(profile_tags, spec.deployment.name):
            raise OwnershipError(
                "instance profile", name, "exists without this deployment's spotreg tags: spotreg leaves it be"
            )
        drift = []
        missing = missing_tags(profile_tags, tags)
        if missing:
            drift.append(f"tags {sorted(missing)}")
            if apply:
                iam.tag_instance_profile(InstanceProfileName=name, Tags=aws_tags(missing))
        roles = [r["RoleName"] for r in profile.get("Roles", [])]
        if roles != [name]:
            drift.append(f"roles {roles} -> [{name!r}]")
            if apply:
                for other in roles:
                    if other != name:
                        iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=other)
                if name not in roles:
                    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
        changes.append(Change("instance-profile", name, "update" if drift else "keep", ", ".join(drift)))
    else:
        changes.append(Change("instance-profile", name, "create"))
        if apply:
            profile = iam.create_instance_profile(InstanceProfileName=name, Tags=aws_tags(tags))["InstanceProfile"]
            iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    role_arn = None if role is None else str(role["Arn"])
    profile_arn = None if profile is None else str(profile["Arn"])
    return changes, role_arn, profile_arn


def remove_role(clients: AwsClients, spec: Spec) -> list[Change]:
    """Remove profile, inline policies and role — each only if tagged as this deployment's."""
    iam, name, deployment = clients.iam, resource_name(spec), spec.deployment.name
    removed: list[Change] = []
    profile = read_profile(iam, name)
    if profile is not None and belongs_to(tag_dict(profile.get("Tags")), deployment):
        delete_instance_profile(iam, name)
        removed.append(Change("instance-profile", name, "delete"))
    role, tags = read_role(iam, name)
    if role is not None and belongs_to(tags, deployment):
        delete_role(iam, name)
        removed.append(Change("role", name, "delete"))
    return removed


def delete_role(iam: Any, name: str) -> None:
    """Delete a role with everything attached to it (inline and managed policies, profiles)."""
    for page in iam.get_paginator("list_role_policies").paginate(RoleName=name):
        for policy in page.get("PolicyNames", []):
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
    for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name):
        for policy in page.get("AttachedPolicies", []):
            iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
    for page in iam.get_paginator("list_instance_profiles_for_role").paginate(RoleName=name):
        for profile in page.get("InstanceProfiles", []):
            iam.remove_role_from_instance_profile(InstanceProfileName=profile["InstanceProfileName"], RoleName=name)
    iam.delete_role(RoleName=name)


def delete_instance_profile(iam: Any, name: str) -> None:
    profile = read_profile(iam, name)
    if profile is None:
        return
    for attached in profile.get("Roles", []):
        iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=attached["RoleName"])
    iam.delete_instance_profile(InstanceProfileName=name)


class RoleStep:
    """The instance's IAM role, its least-privilege policy, and its instance profile."""

    name = "role"

    def resource(self, spec: Spec) -> str:
        return f"IAM role and instance profile {resource_name(spec)}"

    def check(self, run: Run) -> None:
        check_owner(run.clients.iam, resource_name(run.spec), run.ctx.deployment)

    def plan(self, run: Run) -> list[Change]:
        changes, _, run.profile_arn = _role_changes(run.clients, run.spec, run.ctx.tags, apply=False)
        return changes

    def apply(self, run: Run) -> list[Change]:
        changes, _, run.profile_arn = _role_changes(run.clients, run.spec, run.ctx.tags, apply=True)
        return changes

    def remove(self, ctx: Context, *, delete_data: bool) -> list[Change]:
        return remove_role(ctx.clients, ctx.spec)
