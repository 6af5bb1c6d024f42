"""SSM parameters below /spotreg/<deployment>: the htpasswd file, TLS material, the DNS password.

Secrets are SecureStrings (encrypted with the account's aws/ssm key; the role's policy lets only the
instance read them). A value is rewritten only when it is no longer right, so a second `up` leaves
every parameter at the version it had.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from provisioning.aws.changes import Change
from provisioning.aws.tags import aws_tags, belongs_to, is_code, missing_tags, tag_dict
from provisioning.names import parameter_prefix
from provisioning.spec import Spec

KIND = "parameter"


@dataclass(frozen=True)
class WantedParameter:
    name: str
    value: str = field(repr=False)
    secure: bool
    description: str = ""

    @property
    def type(self) -> str:
        return "SecureString" if self.secure else "String"


@dataclass(frozen=True)
class StoredParameter:
    name: str
    value: str = field(repr=False)
    type: str
    version: int


def read_parameters(ssm: Any, prefix: str) -> dict[str, StoredParameter]:
    """Every parameter below `prefix`, decrypted."""
    found: dict[str, StoredParameter] = {}
    paginator = ssm.get_paginator("get_parameters_by_path")
    for page in paginator.paginate(Path=prefix, Recursive=True, WithDecryption=True):
        for item in page.get("Parameters", []):
            found[item["Name"]] = StoredParameter(item["Name"], item["Value"], item["Type"], int(item["Version"]))
    return found


def read_deployment_parameters(ssm: Any, spec: Spec) -> dict[str, StoredParameter]:
    return read_parameters(ssm, parameter_prefix(spec))


def parameter_tags(ssm: Any, name: str) -> dict[str, str]:
    try:
        answer = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)
    except ClientError as error:
        if is_code(error, "InvalidResourceId", "ParameterNotFound"):
            return {}
        raise
    return tag_dict(answer.get("TagList"))


def parameter_changes(
    ssm: Any,
    spec: Spec,
    wanted: Sequence[WantedParameter],
    tags: Mapping[str, str],
    *,
    existing: Mapping[str, StoredParameter],
    keep: Sequence[str] = (),
    apply: bool,
) -> list[Change]:
    """Make the parameters below the deployment's prefix exactly `wanted` (plus `keep`, which another
    step owns); with `apply` false only say what would change."""
    changes: list[Change] = []
    for item in wanted:
        stored = existing.get(item.name)
        if stored is None:
            changes.append(Change(KIND, item.name, "create", item.type))
            if apply:
                ssm.put_parameter(
                    Name=item.name,
                    Value=item.value,
                    Type=item.type,
                    Description=item.description,
                    Tags=aws_tags(tags),
                )
            continue
        drift = []
        if stored.type != item.type:
            drift.append(f"type {stored.type} -> {item.type}")
        if stored.value != item.value:
            drift.append("value")
        if drift and apply:
            ssm.put_parameter(
                Name=item.name, Value=item.value, Type=item.type, Description=item.description, Overwrite=True
            )
        missing = missing_tags(parameter_tags(ssm, item.name), tags)
        if missing:
            drift.append(f"tags {sorted(missing)}")
            if apply:
                ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId=item.name, Tags=aws_tags(missing))
        changes.append(Change(KIND, item.name, "update" if drift else "keep", ", ".join(drift)))
    unwanted = owned_parameters(ssm, sorted(set(existing) - {w.name for w in wanted} - set(keep)), spec)
    for name in unwanted:
        changes.append(Change(KIND, name, "delete", "no longer needed by the spec"))
    if apply:
        _delete(ssm, unwanted)
    return changes


def owned_parameters(ssm: Any, names: Sequence[str], spec: Spec) -> list[str]:
    """The `names` tagged as this deployment's: only those are spotreg's to delete. A parameter
    someone put below the prefix themselves (a password an ssm: reference points at) is not."""
    return [name for name in names if belongs_to(parameter_tags(ssm, name), spec.deployment.name)]


def _delete(ssm: Any, names: Sequence[str]) -> None:
    for start in range(0, len(names), 10):  # DeleteParameters takes 10 names at most
        ssm.delete_parameters(Names=list(names[start : start + 10]))


def remove_parameters(ssm: Any, spec: Spec) -> list[Change]:
    """Delete the parameters below the deployment's prefix that carry its tag; leave the rest."""
    names = owned_parameters(ssm, sorted(read_parameters(ssm, parameter_prefix(spec))), spec)
    _delete(ssm, names)
    return [Change(KIND, name, "delete") for name in names]
