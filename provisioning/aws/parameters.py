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

from provisioning import names
from provisioning.changes import Change
from provisioning.names import parameter_prefix
from provisioning.records import StoredParameter
from provisioning.render.tls import reuse_or_renew
from provisioning.secrets import htpasswd_matches, make_htpasswd
from provisioning.spec import Spec
from provisioning.step import Context, Run
from provisioning.tags import aws_tags, belongs_to, is_code, missing_tags, tag_dict

KIND = "parameter"
PENDING_ADDRESS = "elastic-ip-not-allocated-yet.invalid"  # stands for it in a plan; never in a certificate


@dataclass(frozen=True)
class WantedParameter:
    name: str
    value: str = field(repr=False)
    secure: bool
    description: str = ""

    @property
    def type(self) -> str:
        return "SecureString" if self.secure else "String"


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


def _tls_names(run: Run) -> list[str]:
    """The names the self-signed certificate is for: the host name, else the Elastic IP, else the
    deployment's resource name (for an /etc/hosts entry: a plain public IP changes on every start)."""
    if run.spec.dns.hostname is not None:
        return [run.spec.dns.hostname]
    if run.address is not None:
        return [run.address.public_ip]
    if run.spec.dns.mode == "eip":  # a plan, before the address exists: whatever it will be, a new certificate
        return [PENDING_ADDRESS]
    return [names.resource_name(run.spec)]


def _stored_tls(run: Run) -> tuple[str, str, str] | None:
    found = [
        run.existing_parameters.get(name(run.spec))
        for name in (names.tls_key_parameter, names.tls_cert_parameter, names.tls_ca_parameter)
    ]
    return None if None in found else tuple(p.value for p in found if p is not None)  # type: ignore[return-value]


def wanted_parameters(run: Run) -> list[WantedParameter]:
    """The parameters the spec needs: the htpasswd file (unchanged while it still matches the users),
    the self-signed TLS material (re-used while it fits), the Namecheap password."""
    spec, stored = run.spec, run.existing_parameters
    current = stored.get(names.htpasswd_parameter(spec))
    if current is not None and htpasswd_matches(current.value, run.secrets.users):
        htpasswd = current.value
    else:
        htpasswd = make_htpasswd(run.secrets.users)
    wanted = [WantedParameter(names.htpasswd_parameter(spec), htpasswd, True, "registry htpasswd")]
    if spec.tls.mode == "selfsigned":
        key, cert, ca = reuse_or_renew(_tls_names(run), _stored_tls(run), now=run.ctx.now())
        run.server_cert_pem = cert.encode("ascii")
        wanted += [
            WantedParameter(names.tls_key_parameter(spec), key, True, "self-signed TLS server key"),
            WantedParameter(names.tls_cert_parameter(spec), cert, False, "self-signed TLS server certificate"),
            WantedParameter(names.tls_ca_parameter(spec), ca, False, "self-signed TLS CA certificate"),
        ]
    if spec.dns.mode == "namecheap":
        assert run.secrets.dns_password is not None  # the Spec's rules and resolve_secrets
        wanted.append(
            WantedParameter(
                names.dns_password_parameter(spec), run.secrets.dns_password, True, "Namecheap dynamic DNS password"
            )
        )
    return wanted


class ParametersStep:
    """The deployment's SSM parameters: exactly what the spec needs, below /spotreg/<deployment>."""

    name = "parameters"

    def resource(self, spec: Spec) -> str:
        return f"SSM parameters {parameter_prefix(spec)}/*"

    def check(self, run: Run) -> None:
        """Nothing to check: a parameter below the prefix that is not ours is left alone."""

    def _changes(self, run: Run, *, apply: bool) -> list[Change]:
        ssm = run.clients.ssm
        run.existing_parameters = read_deployment_parameters(ssm, run.spec)
        keep = [names.legacy_key_parameter(run.spec)] if run.legacy else []
        wanted = wanted_parameters(run)
        return parameter_changes(
            ssm, run.spec, wanted, run.ctx.tags, existing=run.existing_parameters, keep=keep, apply=apply
        )

    def plan(self, run: Run) -> list[Change]:
        return self._changes(run, apply=False)

    def apply(self, run: Run) -> list[Change]:
        return self._changes(run, apply=True)

    def remove(self, ctx: Context, *, delete_data: bool) -> list[Change]:
        return remove_parameters(ctx.clients.ssm, ctx.spec)
