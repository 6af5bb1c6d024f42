"""Legacy mode, as the 2014 recipe did it: an IAM user whose access key the registry uses.

Worse than the instance profile in every way that matters: the key lives for ever (no rotation), sits
on the instance and in SSM where anyone who reads either can use it from anywhere, and outlives the
instance. Made only when asked for explicitly (`up(legacy_access_key=True)`), and removed by `down`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from provisioning.aws.parameters import parameter_tags
from provisioning.aws.role import canonical
from provisioning.changes import Change
from provisioning.clients import AwsClients
from provisioning.errors import OwnershipError
from provisioning.names import LEGACY_POLICY_NAME, legacy_key_parameter, legacy_user_name
from provisioning.records import StoredParameter
from provisioning.render.policy import REGISTRY_S3_ACTIONS, bucket_arns
from provisioning.spec import Spec
from provisioning.step import Context, Run
from provisioning.tags import aws_tags, belongs_to, is_code, tag_dict

WARNING = (
    "legacy mode: the registry gets a long-lived IAM access key instead of the instance profile's "
    "temporary credentials. The key never rotates, is stored in SSM and on the instance, works from "
    "anywhere until deleted, and is worth stealing. Prefer the default (instance profile)."
)


def legacy_policy(spec: Spec) -> dict[str, Any]:
    """The registry's S3 grants on its bucket, nothing else."""
    bucket, objects = bucket_arns(spec)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": list(REGISTRY_S3_ACTIONS["bucket"]), "Resource": bucket},
            {"Effect": "Allow", "Action": list(REGISTRY_S3_ACTIONS["object"]), "Resource": objects},
        ],
    }


def _user_tags(iam: Any, name: str) -> dict[str, str] | None:
    try:
        return tag_dict(iam.list_user_tags(UserName=name).get("Tags"))
    except ClientError as error:
        if is_code(error, "NoSuchEntity"):
            return None
        raise


def legacy_changes(
    clients: AwsClients,
    spec: Spec,
    tags: Mapping[str, str],
    parameters: Mapping[str, StoredParameter],
    *,
    enabled: bool,
    apply: bool,
) -> list[Change]:
    """With `enabled`, the user, its policy, one access key and the key's parameter; without, none."""
    iam, name, deployment = clients.iam, legacy_user_name(spec), spec.deployment.name
    user_tags = _user_tags(iam, name)
    if user_tags is not None and not belongs_to(user_tags, deployment):
        raise OwnershipError("IAM user", name, "exists without this deployment's spotreg tags")
    if not enabled:
        if user_tags is None:
            return []
        if apply:
            return remove_legacy_user(clients, spec)
        return [Change("iam-user", name, "delete", "legacy mode not asked for")]
    changes = []
    if user_tags is None:
        changes.append(Change("iam-user", name, "create", "legacy mode: long-lived access key"))
        if apply:
            iam.create_user(UserName=name, Tags=aws_tags(tags))
    else:
        changes.append(Change("iam-user", name, "keep"))
    policy = json.dumps(legacy_policy(spec), sort_keys=True)
    current = None
    if user_tags is not None:
        try:
            current = iam.get_user_policy(UserName=name, PolicyName=LEGACY_POLICY_NAME)["PolicyDocument"]
        except ClientError as error:
            if not is_code(error, "NoSuchEntity"):
                raise
    if current is None or canonical(current) != canonical(policy):
        changes.append(Change("user-policy", f"{name}/{LEGACY_POLICY_NAME}", "create" if current is None else "update"))
        if apply:
            iam.put_user_policy(UserName=name, PolicyName=LEGACY_POLICY_NAME, PolicyDocument=policy)
    keys = [] if user_tags is None else iam.list_access_keys(UserName=name).get("AccessKeyMetadata", [])
    stored = parameters.get(legacy_key_parameter(spec))
    stored_id = json.loads(stored.value).get("access_key_id") if stored is not None else None
    if stored_id is not None and [k["AccessKeyId"] for k in keys] == [stored_id]:
        changes.append(Change("access-key", stored_id, "keep"))
        return changes
    changes.append(Change("access-key", name, "create", "stored as SecureString " + legacy_key_parameter(spec)))
    if apply:
        for key in keys:
            iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
        key = iam.create_access_key(UserName=name)["AccessKey"]
        value = json.dumps({"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]})
        if stored is None:
            clients.ssm.put_parameter(
                Name=legacy_key_parameter(spec),
                Value=value,
                Type="SecureString",
                Tags=aws_tags(tags),
                Description="spotreg legacy mode: the registry's long-lived access key",
            )
        else:
            clients.ssm.put_parameter(Name=legacy_key_parameter(spec), Value=value, Type="SecureString", Overwrite=True)
    return changes


def remove_legacy_user(clients: AwsClients, spec: Spec) -> list[Change]:
    """Delete the key parameter, the keys, the policies and the user (only when tagged as ours)."""
    iam, name = clients.iam, legacy_user_name(spec)
    tags = _user_tags(iam, name)
    changes = []
    if belongs_to(parameter_tags(clients.ssm, legacy_key_parameter(spec)), spec.deployment.name):
        try:
            clients.ssm.delete_parameter(Name=legacy_key_parameter(spec))
            changes.append(Change("parameter", legacy_key_parameter(spec), "delete"))
        except ClientError as error:
            if not is_code(error, "ParameterNotFound"):
                raise
    if tags is None or not belongs_to(tags, spec.deployment.name):
        return changes
    delete_user(iam, name)
    changes.append(Change("iam-user", name, "delete"))
    return changes


def delete_user(iam: Any, name: str) -> None:
    for key in iam.list_access_keys(UserName=name).get("AccessKeyMetadata", []):
        iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    for policy in iam.list_user_policies(UserName=name).get("PolicyNames", []):
        iam.delete_user_policy(UserName=name, PolicyName=policy)
    for policy in iam.list_attached_user_policies(UserName=name).get("AttachedPolicies", []):
        iam.detach_user_policy(UserName=name, PolicyArn=policy["PolicyArn"])
    iam.delete_user(UserName=name)


class LegacyUserStep:
    """Legacy mode's IAM user and its access key: made only when asked for, removed otherwise."""

    name = "legacy-user"

    def resource(self, spec: Spec) -> str:
        return f"IAM user {legacy_user_name(spec)}"

    def check(self, run: Run) -> None:
        """The user's owner is checked in plan and apply, before anything is made."""

    def plan(self, run: Run) -> list[Change]:
        return legacy_changes(
            run.clients, run.spec, run.ctx.tags, run.existing_parameters, enabled=run.legacy, apply=False
        )

    def apply(self, run: Run) -> list[Change]:
        if run.legacy:
            logging.getLogger("spotreg.provisioner").warning(WARNING)
            run.ctx.say(self.name, WARNING)
        return legacy_changes(
            run.clients, run.spec, run.ctx.tags, run.existing_parameters, enabled=run.legacy, apply=True
        )

    def remove(self, ctx: Context, *, delete_data: bool) -> list[Change]:
        return remove_legacy_user(ctx.clients, ctx.spec)
