"""The operator's policy: `plan`, `up`, `up` again, `status`, `down` and `down --delete-data` run as an
IAM user whose only policy is the rendered one, with moto's IAM enforcement on; and what it grants.

moto authenticates every request (signature, access key, the user's policies) and evaluates the
policies with its own evaluator, but it authorizes most services against the resource "*" and names
some S3 actions unlike IAM (PutBucketEncryption is "s3:CreateBucket" to it). So the test tells moto,
for each call, the IAM actions and resource ARNs AWS authorizes it against (`required`, written from
the Service Authorization Reference, independently of the renderer): a resource-scoped grant then
counts only on the deployment's own ARNs. moto evaluates only `StringEquals` conditions, and those
against no request values: conditions are checked statically below, not enforced. On Route 53 moto's
signature check refuses every request, so there it is skipped; its denials (and SSM's) are answered in
the error shape botocore reads for that service, as AWS answers them.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto.core.authorization import enable_iam_authentication
from moto.core.models import DEFAULT_ACCOUNT_ID as ACCOUNT
from moto.iam.access_control import IAMPolicy, IAMRequestBase, PermissionResult
from parliament import analyze_policy_string
from werkzeug.exceptions import HTTPException

from provisioning import names
from provisioning.clients import AwsClients, make_clients
from provisioning.errors import PermissionDenied
from provisioning.health.deployment import console_reader
from provisioning.provisioner import Provisioner
from provisioning.render.operator_policy import render_operator_policy
from provisioning.spec import Spec
from spotreg.cli import main
from suites.offline.conftest import FAST_WAITS, REGION, ZONE_ID, build_spec, create_zone

HOSTNAME = "registry.example.com"
OTHER_BUCKET = "someone-elses-bucket"
DNS = {
    "none": {"mode": "none"},
    "eip": {"mode": "eip"},
    "route53": {"mode": "route53", "hostname": HOSTNAME, "zone_id": ZONE_ID},
}
MUTATING_EC2 = {
    "ec2:AllocateAddress",
    "ec2:AssociateAddress",
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:CancelSpotInstanceRequests",
    "ec2:CreateSecurityGroup",
    "ec2:CreateTags",
    "ec2:DeleteSecurityGroup",
    "ec2:DisassociateAddress",
    "ec2:ReleaseAddress",
    "ec2:RevokeSecurityGroupIngress",
    "ec2:RunInstances",
    "ec2:TerminateInstances",
}
# Granted, and not called by the lifecycle of a fresh deployment: reached when AWS drifted from the
# spec, by other options, or by the deployment lock. Every other granted action must be called by it.
DRIFT_ONLY = {
    "ec2:RevokeSecurityGroupIngress",  # a rule added by hand
    "iam:DetachRolePolicy",  # a managed policy attached by hand
    "iam:UpdateAssumeRolePolicy",  # a trust policy changed by hand
    "iam:DeleteAccessKey",  # the legacy user, left by `up --legacy-access-key` (test_legacy_lifecycle...)
    "iam:DeleteUser",
    "iam:DeleteUserPolicy",
    "iam:DetachUserPolicy",
    "iam:ListAccessKeys",
    "iam:ListAttachedUserPolicies",
    "iam:ListUserPolicies",
    "ec2:GetConsoleOutput",  # read by a health wait that fails (test_status_can_read_the_console_output)
    "s3:PutBucketVersioning",  # storage.versioning = true
}
# Granted, and not called under moto: it makes no spot request for RunInstances' spot market options,
# so `down` finds none to cancel (on EC2 a persistent request relaunches the instance if not cancelled).
MOTO_NEVER_CALLS = {"ec2:CancelSpotInstanceRequests"}
# The legacy key's parameter, and the deployment lock's release once `up` and `down` take the lock.
LOCK_RELEASE = {"ssm:DeleteParameter"}


# --- what AWS authorizes each call against ------------------------------------------------------


class Unmapped(Exception):
    """A call `required` does not know: add it, from the Service Authorization Reference."""


def _ec2_arn(kind: str, ident: str = "*") -> str:
    return f"arn:aws:ec2:{REGION}:{ACCOUNT}:{kind}/{ident}"


_EC2_KINDS = {"sg": "security-group", "eipalloc": "elastic-ip", "i": "instance", "sir": "spot-instances-request"}


def _ec2_id_arn(ident: str) -> str:
    return _ec2_arn(_EC2_KINDS[ident.split("-", 1)[0]], ident)


def _parameter_arn(name: str) -> str:
    account = "" if name.startswith("/aws/service/") else ACCOUNT
    return f"arn:aws:ssm:{REGION}:{account}:parameter/{name.lstrip('/')}"


S3_BUCKET_ACTIONS = {
    "CreateBucket": "s3:CreateBucket",
    "DeleteBucket": "s3:DeleteBucket",
    "GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
    "GetBucketLocation": "s3:GetBucketLocation",
    "GetBucketOwnershipControls": "s3:GetBucketOwnershipControls",
    "GetBucketTagging": "s3:GetBucketTagging",
    "GetBucketVersioning": "s3:GetBucketVersioning",
    "GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "ListObjectVersions": "s3:ListBucketVersions",
    "PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "PutBucketLifecycleConfiguration": "s3:PutLifecycleConfiguration",
    "PutBucketOwnershipControls": "s3:PutBucketOwnershipControls",
    "PutBucketTagging": "s3:PutBucketTagging",
    "PutBucketVersioning": "s3:PutBucketVersioning",
    "PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
}


def _s3(operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    if operation == "ListBuckets":
        return [("s3:ListAllMyBuckets", "*")]
    bucket = f"arn:aws:s3:::{params['Bucket']}"
    if operation in S3_BUCKET_ACTIONS:
        return [(S3_BUCKET_ACTIONS[operation], bucket)]
    if operation == "AbortMultipartUpload":
        return [("s3:AbortMultipartUpload", f"{bucket}/{params['Key']}")]
    if operation == "DeleteObjects":
        found = []
        for item in params["Delete"]["Objects"]:
            found.append(("s3:DeleteObject", f"{bucket}/{item['Key']}"))
            if item.get("VersionId"):
                found.append(("s3:DeleteObjectVersion", f"{bucket}/{item['Key']}"))
        return found
    raise Unmapped(f"s3 {operation}")


def _ec2(operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    action = f"ec2:{operation}"
    tagged_on_create = [
        ("ec2:CreateTags", _ec2_arn(spec["ResourceType"])) for spec in params.get("TagSpecifications", [])
    ]
    if operation.startswith("Describe") and operation != "DescribeInstanceAttribute":
        return [(action, "*")]
    if operation in ("DescribeInstanceAttribute", "GetConsoleOutput"):
        return [(action, _ec2_arn("instance", params["InstanceId"]))]
    if operation == "RunInstances":
        interface = params["NetworkInterfaces"][0]
        found = [(action, _ec2_arn(kind)) for kind in ("instance", "volume", "network-interface")]
        if params.get("InstanceMarketOptions", {}).get("MarketType") == "spot":
            found.append((action, _ec2_arn("spot-instances-request")))
        found += [(action, _ec2_arn("security-group", group)) for group in interface["Groups"]]
        found.append((action, _ec2_arn("subnet", interface.get("SubnetId", "*"))))
        found.append((action, f"arn:aws:ec2:{REGION}::image/{params['ImageId']}"))
        profile = params["IamInstanceProfile"]["Arn"].rsplit("/", 1)[-1]  # the profile holds the role of its name
        found.append(("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/{profile}"))
        return found + tagged_on_create
    if operation == "CreateSecurityGroup":
        return [(action, _ec2_arn("security-group")), (action, _ec2_arn("vpc", params["VpcId"])), *tagged_on_create]
    if operation == "AllocateAddress":
        return [(action, _ec2_arn("elastic-ip")), *tagged_on_create]
    if operation in ("AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress", "DeleteSecurityGroup"):
        return [(action, _ec2_arn("security-group", params["GroupId"]))]
    if operation == "CreateTags":
        return [(action, _ec2_id_arn(ident)) for ident in params["Resources"]]
    if operation == "ReleaseAddress":
        return [(action, _ec2_arn("elastic-ip", params["AllocationId"]))]
    if operation == "DisassociateAddress":
        return [(action, _ec2_arn("elastic-ip"))]  # named by association id: some address
    if operation == "AssociateAddress":
        return [(action, _ec2_arn("elastic-ip", params["AllocationId"])), (action, _ec2_id_arn(params["InstanceId"]))]
    if operation == "TerminateInstances":
        return [(action, _ec2_arn("instance", ident)) for ident in params["InstanceIds"]]
    if operation == "CancelSpotInstanceRequests":
        return [(action, _ec2_arn("spot-instances-request", ident)) for ident in params["SpotInstanceRequestIds"]]
    raise Unmapped(f"ec2 {operation}")


def _ssm(operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    action = f"ssm:{operation}"
    if operation in ("GetParameter", "PutParameter", "DeleteParameter"):
        found = [(action, _parameter_arn(params["Name"]))]
        if operation == "PutParameter" and params.get("Tags"):
            found.append(("ssm:AddTagsToResource", _parameter_arn(params["Name"])))
        return found
    if operation == "GetParametersByPath":
        return [(action, _parameter_arn(params["Path"]))]
    if operation == "DeleteParameters":
        return [(action, _parameter_arn(name)) for name in params["Names"]]
    if operation in ("AddTagsToResource", "ListTagsForResource") and params["ResourceType"] == "Parameter":
        return [(action, _parameter_arn(params["ResourceId"]))]
    raise Unmapped(f"ssm {operation}")


def _iam(operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    action, arn = f"iam:{operation}", f"arn:aws:iam::{ACCOUNT}"
    if "InstanceProfileName" in params:
        found = [(action, f"{arn}:instance-profile/{params['InstanceProfileName']}")]
        if operation == "AddRoleToInstanceProfile":
            found.append(("iam:PassRole", f"{arn}:role/{params['RoleName']}"))
        if operation == "CreateInstanceProfile" and params.get("Tags"):
            found.append(("iam:TagInstanceProfile", found[0][1]))
        return found
    for key, kind in (("RoleName", "role"), ("UserName", "user")):
        if key in params:
            found = [(action, f"{arn}:{kind}/{params[key]}")]
            if operation in ("CreateRole", "CreateUser") and params.get("Tags"):
                found.append((f"iam:Tag{kind.title()}", found[0][1]))
            return found
    raise Unmapped(f"iam {operation}")


def _route53(operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    if operation == "ListHostedZones":
        return [("route53:ListHostedZones", "*")]
    if "HostedZoneId" in params or "Id" in params:
        zone = str(params.get("HostedZoneId") or params["Id"]).rsplit("/", 1)[-1]
        return [(f"route53:{operation}", f"arn:aws:route53:::hostedzone/{zone}")]
    raise Unmapped(f"route53 {operation}")


def required(service: str, operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """The (IAM action, resource ARN) pairs AWS authorizes one API call against."""
    if service == "sts" and operation == "GetCallerIdentity":
        return [("sts:GetCallerIdentity", "*")]
    by_service: dict[str, Callable[[str, dict[str, Any]], list[tuple[str, str]]]] = {
        "s3": _s3,
        "ec2": _ec2,
        "ssm": _ssm,
        "iam": _iam,
        "route53": _route53,
    }
    if service not in by_service:
        raise Unmapped(f"{service} {operation}")
    return by_service[service](operation, params)


# --- moto's enforcement, told what each call is ----------------------------------------------------


class _Denied(HTTPException):
    """AccessDenied in the error shape of a service moto answers in another (botocore reads no code)."""

    code = 403

    def __init__(self, service: str, message: str) -> None:
        super().__init__()
        if service == "ssm":
            self.description = json.dumps({"__type": "AccessDeniedException", "message": message})
        else:  # route53: rest-xml
            self.description = (
                "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
                f"<Message>{message}</Message></Error></ErrorResponse>"
            )


@dataclass
class Judge:
    """moto's verdict on each call of the watched clients, on the actions and ARNs `required` names."""

    current: tuple[str, str, dict[str, Any]] | None = None
    checked: list[tuple[str, str, str, bool]] = field(default_factory=list)  # operation, action, arn, allowed
    unmapped: list[str] = field(default_factory=list)
    called: list[str] = field(default_factory=list)

    def note(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.current = (model.service_model.service_name, model.name, copy.deepcopy(params))
        self.called.append(model.name)

    def check(self, request: IAMRequestBase, resource: str) -> None:
        assert self.current is not None and self.current[0] == request._service, (self.current, request._action)
        service, operation, params = self.current
        try:
            pairs = required(service, operation, params)
        except Unmapped as error:
            self.unmapped.append(str(error))
            pairs = [(request._action, resource)]
        policies = request._access_key.collect_policies()
        for action, arn in pairs:
            verdicts = {IAMPolicy(policy).is_action_permitted(action, arn) for policy in policies}
            allowed = PermissionResult.PERMITTED in verdicts and PermissionResult.DENIED not in verdicts
            self.checked.append((operation, action, arn, allowed))
            if not allowed:
                request._action = action
                if service in ("ssm", "route53"):
                    raise _Denied(service, f"User: {request._access_key.arn} is not authorized to perform: {action}")
                request._raise_access_denied()

    def actions(self) -> set[str]:
        return {action for _, action, _, allowed in self.checked if allowed}


@dataclass
class Operator:
    """An IAM user whose only policy is `policy`, its clients, and the judge watching them."""

    clients: AwsClients
    judge: Judge
    spec: Spec
    environ: dict[str, str]

    def provisioner(self) -> Provisioner:
        return Provisioner(self.spec, self.clients, environ=self.environ, waits=FAST_WAITS)

    @contextmanager
    def enforced(self) -> Iterator[None]:
        with enable_iam_authentication():
            yield


_moto_check_signature = IAMRequestBase.check_signature


def _check_signature(request: IAMRequestBase) -> None:
    """moto's signature check, except on Route 53: moto computes a signature no Route 53 request
    matches (every call answers SignatureDoesNotMatch), so there only the key and the policy count."""
    if request._service != "route53":
        _moto_check_signature(request)


def _admit(admin: AwsClients, policy: dict[str, Any], name: str = "operator") -> boto3.session.Session:
    """An IAM user with `policy` as its one (managed) policy, and a session with its access key."""
    admin.iam.create_user(UserName=name)
    arn = admin.iam.create_policy(PolicyName=f"{name}-policy", PolicyDocument=json.dumps(policy))["Policy"]["Arn"]
    admin.iam.attach_user_policy(UserName=name, PolicyArn=arn)
    key = admin.iam.create_access_key(UserName=name)["AccessKey"]
    return boto3.session.Session(
        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], region_name=REGION
    )


@pytest.fixture
def operator_for(
    clients: AwsClients, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Operator]:
    """operator_for(spec, policy=None) -> an Operator under the rendered (or the given) policy."""

    def make(spec: Spec, policy: dict[str, Any] | None = None, **render: Any) -> Operator:
        create_zone(clients.route53)  # route53: the spec's zone; otherwise some zone of the account
        clients.s3.create_bucket(Bucket=OTHER_BUCKET)  # the inventory meets a bucket it may not read
        document = policy if policy is not None else render_operator_policy(spec, clients.account_id(), **render)
        session = _admit(clients, document)
        judge = Judge()
        monkeypatch.setattr(
            IAMRequestBase, "check_action_permitted", lambda request, resource: judge.check(request, resource)
        )
        monkeypatch.setattr(IAMRequestBase, "check_signature", _check_signature)
        operator = make_clients(REGION, session=session)
        for client in operator.all():
            client.meta.events.register("provide-client-params.*.*", judge.note)
        return Operator(operator, judge, spec, environ)

    return make


def _leave_data(admin: AwsClients, bucket: str) -> None:
    """Objects, an old version and an unfinished upload: what `down --delete-data` must remove."""
    admin.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    admin.s3.put_object(Bucket=bucket, Key="registry/a", Body=b"one")
    admin.s3.put_object(Bucket=bucket, Key="registry/a", Body=b"two")
    admin.s3.create_multipart_upload(Bucket=bucket, Key="registry/big")


# --- the lifecycle --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", sorted(DNS))
def test_the_whole_lifecycle_needs_nothing_beyond_the_rendered_policy(
    mode: str, operator_for: Callable[..., Operator], clients: AwsClients
) -> None:
    spec = build_spec(dns=DNS[mode])
    operator = operator_for(spec)
    provisioner = operator.provisioner()
    with operator.enforced():
        plan = provisioner.plan()
        first = provisioner.up()
        second = provisioner.up()
        status = provisioner.status(health_timeout=0)
    assert any(change.action == "create" for change in plan.changes)
    assert first == second, first.diff(second)  # the second `up` changed nothing
    assert status.instance is not None and status.address is not None
    assert {"bucket", "role", "instance-profile", "security-group", "instance"} <= first.kinds()
    if mode == "route53":
        assert status.dns is not None and status.address in status.dns
    if mode == "eip":
        assert first.of("elastic-ip")
    _leave_data(clients, spec.storage.bucket)
    with operator.enforced():
        kept = provisioner.down()
        removed = provisioner.down(delete_data=True)
    assert any(change.kind == "bucket" for change in kept.kept)
    assert [c.action for c in removed.changes if c.kind == "bucket"] == ["delete"]
    assert provisioner.inventory().is_empty

    judge = operator.judge
    assert judge.unmapped == []
    # the refusals: the inventory looked at the other bucket (and reads the refusal as "not ours"); in
    # route53 mode, listing every zone (the search then stays in the spec's zone)
    refused = {check for check in judge.checked if not check[3]}
    expected = {("GetBucketTagging", "s3:GetBucketTagging", f"arn:aws:s3:::{OTHER_BUCKET}", False)}
    if mode == "route53":
        expected.add(("ListHostedZones", "route53:ListHostedZones", "*", False))
    assert refused == expected
    # every call of the lifecycle went through moto's enforcement: none slipped past it
    assert set(judge.called) == {operation for operation, *_ in judge.checked}
    granted = _granted_actions(render_operator_policy(spec, ACCOUNT))
    assert judge.actions() <= granted
    assert not DRIFT_ONLY & judge.actions(), "called, so not drift only: " + ", ".join(
        sorted(DRIFT_ONLY & judge.actions())
    )
    unused = granted - judge.actions() - DRIFT_ONLY - MOTO_NEVER_CALLS - LOCK_RELEASE
    assert not unused, "granted and never needed: " + ", ".join(sorted(unused))


def test_legacy_access_key_is_allowed_only_when_rendered_for_it(
    operator_for: Callable[..., Operator],
) -> None:
    spec = build_spec()
    operator = operator_for(spec)
    with operator.enforced(), pytest.raises(PermissionDenied) as denied:
        operator.provisioner().up(legacy_access_key=True)
    assert denied.value.action == "CreateUser" and "iam:CreateUser" in str(denied.value)
    assert denied.value.exit_code == 3


def test_legacy_lifecycle_under_the_legacy_policy(operator_for: Callable[..., Operator]) -> None:
    operator = operator_for(build_spec(), legacy_access_key=True)
    provisioner = operator.provisioner()
    with operator.enforced():
        provisioner.plan(legacy_access_key=True)
        first = provisioner.up(legacy_access_key=True)
        assert first == provisioner.up(legacy_access_key=True)
        provisioner.up()  # without the flag: the user and its key go
        provisioner.up(legacy_access_key=True)
        provisioner.down(delete_data=True)
    assert operator.judge.unmapped == []
    assert provisioner.inventory().is_empty
    assert {
        "iam:CreateUser",
        "iam:CreateAccessKey",
        "iam:DeleteUser",
        "iam:DeleteAccessKey",
    } <= operator.judge.actions()


def test_status_can_read_the_console_output(operator_for: Callable[..., Operator]) -> None:
    """A health wait that fails reads the instance's console output (and swallows a refusal): read it."""
    operator = operator_for(build_spec())
    with operator.enforced():
        operator.provisioner().up()
        instance = operator.provisioner().status().instance
        assert instance is not None
        assert console_reader(operator.clients, instance.instance_id)() is not None
    assert ("GetConsoleOutput", "ec2:GetConsoleOutput") in {(c[0], c[1]) for c in operator.judge.checked if c[3]}


def _without(policy: dict[str, Any], sid: str) -> dict[str, Any]:
    statements = [s for s in policy["Statement"] if s["Sid"] != sid]
    assert len(statements) == len(policy["Statement"]) - 1, sid
    return {**policy, "Statement": statements}


@pytest.mark.parametrize(
    ("mode", "sid", "operation", "action"),
    [
        ("none", "Ec2CreateTagged", "CreateSecurityGroup", "ec2:CreateSecurityGroup"),
        ("none", "Ec2Launch", "RunInstances", "ec2:RunInstances"),
        ("none", "PassRoleToEc2", "AddRoleToInstanceProfile", "iam:PassRole"),
        ("none", "Parameters", "PutParameter", "ssm:PutParameter"),  # the lock, before any change
        ("none", "Bucket", "GetBucketLocation", "s3:GetBucketLocation"),
        ("route53", "DnsRecords", "ChangeResourceRecordSets", "route53:ChangeResourceRecordSets"),
    ],
)
def test_without_one_statement_a_step_is_denied_naming_the_action(
    mode: str, sid: str, operation: str, action: str, operator_for: Callable[..., Operator], clients: AwsClients
) -> None:
    spec = build_spec(dns=DNS[mode])
    operator = operator_for(spec, _without(render_operator_policy(spec, ACCOUNT), sid))
    if sid == "Bucket":  # the account's own bucket: S3 refusing it is a missing right (exit 3), not exit 7
        clients.s3.create_bucket(Bucket=spec.storage.bucket)
    with operator.enforced(), pytest.raises(PermissionDenied) as denied:
        operator.provisioner().up()
    assert denied.value.exit_code == 3
    assert denied.value.action in (operation, action), str(denied.value)
    assert action in str(denied.value)


def test_the_cli_exits_3_naming_the_denied_action(
    operator_for: Callable[..., Operator],
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = build_spec()
    operator = operator_for(spec, _without(render_operator_policy(spec, ACCOUNT), "Ec2CreateTagged"))
    monkeypatch.setattr("provisioning.clients.make_clients", lambda *_, **__: operator.clients)
    monkeypatch.setenv("SPOTREG_PASSWORD_CI", "correct horse battery staple")
    config = tmp_path / "spotreg.toml"
    config.write_text(
        '[deployment]\nname = "offline"\n[storage]\nbucket = "spotreg-offline-images"\n'
        '[network]\noperator_cidrs = ["203.0.113.7/32"]\n'
        '[[registry.users]]\nname = "ci"\npassword = "env:SPOTREG_PASSWORD_CI"\n'
    )
    with operator.enforced():
        code = main(["up", "--config", str(config)])
    assert code == 3
    assert "ec2:CreateSecurityGroup" in capsys.readouterr().err


# --- the document ----------------------------------------------------------------------------------


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def _granted_actions(policy: dict[str, Any]) -> set[str]:
    return {action for s in policy["Statement"] for action in _as_list(s["Action"])}


def _by_action(policy: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for statement in policy["Statement"]:
        for action in _as_list(statement["Action"]):
            found.setdefault(action, []).append(statement)
    return found


# parliament reads each statement alone: RunInstances' resource types are split over statements by
# the condition each needs (their union is checked below), and a public SSM parameter's ARN names
# no account, which parliament's format does not allow.
_SPLIT_BY_CONDITION = {"ec2:RunInstances", "ec2:CreateSecurityGroup", "ssm:GetParameter"}


def parliament_findings(policy: dict[str, Any]) -> list[str]:
    findings = []
    for finding in analyze_policy_string(json.dumps(policy)).findings:
        if finding.issue == "RESOURCE_MISMATCH" and {d["action"] for d in finding.detail} <= _SPLIT_BY_CONDITION:
            continue
        findings.append(f"{finding.issue}: {finding.detail}")
    return findings


SPECS = {
    "none": build_spec(),
    "eip": build_spec(dns=DNS["eip"]),
    "eip-with-zone": build_spec(dns={**DNS["eip"], "zone_id": ZONE_ID}),
    "route53": build_spec(dns=DNS["route53"]),
    "ssm-secrets": build_spec(registry={"users": [{"name": "ci", "password": "ssm:/team/registry/ci"}]}),
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_the_document_passes_parliament_and_scopes_every_change(name: str) -> None:
    spec = SPECS[name]
    policy = render_operator_policy(spec, ACCOUNT)
    assert parliament_findings(policy) == []
    assert policy == render_operator_policy(spec, ACCOUNT)  # deterministic
    sids = [s["Sid"] for s in policy["Statement"]]
    assert len(sids) == len(set(sids))
    reads = ("Describe", "Get", "List")
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert all("*" not in action for action in _as_list(statement["Action"]))
        if statement["Resource"] == "*":  # only reads, and only where AWS has no resource to name
            assert all(a.split(":")[1].startswith(reads) for a in _as_list(statement["Action"])), statement
    deployment = spec.deployment.name
    for action, statements in _by_action(policy).items():
        if action in MUTATING_EC2 - {"ec2:RunInstances", "ec2:CreateSecurityGroup"}:
            for statement in statements:
                condition = statement["Condition"]["StringEquals"]
                tag = (
                    condition.get("ec2:ResourceTag/spotreg:deployment")
                    or condition["aws:RequestTag/spotreg:deployment"]
                )
                assert tag == deployment, (action, statement)
    # RunInstances: what it creates carries the tag; the group it uses is the deployment's; the image Amazon's
    launch = {r: s.get("Condition") for s in _by_action(policy)["ec2:RunInstances"] for r in _as_list(s["Resource"])}
    created = {_ec2_arn(kind) for kind in ("instance", "volume", "network-interface", "spot-instances-request")}
    for arn in created:
        assert launch[arn] == {"StringEquals": {"aws:RequestTag/spotreg:deployment": deployment}}
    assert launch[_ec2_arn("security-group")] == {"StringEquals": {"ec2:ResourceTag/spotreg:deployment": deployment}}
    assert launch[f"arn:aws:ec2:{REGION}::image/*"] == {"StringEquals": {"ec2:Owner": "amazon"}}
    assert set(launch) == created | {
        _ec2_arn("security-group"),
        _ec2_arn("subnet"),
        _ec2_arn("vpc"),
        f"arn:aws:ec2:{REGION}::image/*",
    }
    (pass_role,) = _by_action(policy)["iam:PassRole"]
    assert pass_role["Resource"] == f"arn:aws:iam::{ACCOUNT}:role/spotreg-{deployment}"
    assert pass_role["Condition"] == {"StringEqualsIfExists": {"iam:PassedToService": ["ec2.amazonaws.com"]}}
    lock = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/spotreg-locks/{deployment}"
    for action in (
        "ssm:PutParameter",
        "ssm:GetParameter",
        "ssm:DeleteParameter",
        "ssm:AddTagsToResource",
        "ssm:ListTagsForResource",
    ):
        assert any(lock in _as_list(s["Resource"]) for s in _by_action(policy)[action]), action
    assert names.lock_parameter(spec) == f"/spotreg-locks/{deployment}"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_route53_appears_only_as_the_spec_needs_it(name: str) -> None:
    spec = SPECS[name]
    policy = render_operator_policy(spec, ACCOUNT)
    route53 = {s["Sid"]: s for s in policy["Statement"] if any(a.startswith("route53:") for a in _as_list(s["Action"]))}
    zone = f"arn:aws:route53:::hostedzone/{ZONE_ID}"
    if spec.dns.mode == "route53":
        assert set(route53) == {"DnsZone", "DnsRecords"}
        assert {s["Resource"] for s in route53.values()} == {zone}
        changes = route53["DnsRecords"]["Condition"]["ForAllValues:StringEquals"]
        assert changes["route53:ChangeResourceRecordSetsNormalizedRecordNames"] == [HOSTNAME]
        return
    # only reads: finding records an earlier route53 `up` marked as this deployment's
    actions = _granted_actions({"Statement": list(route53.values())})
    assert actions <= {"route53:ListHostedZones", "route53:ListResourceRecordSets"}
    if spec.dns.zone_id is not None:
        assert [s["Resource"] for s in route53.values()] == [zone]


def test_the_secrets_the_spec_names_in_ssm_are_readable_and_no_others() -> None:
    policy = render_operator_policy(SPECS["ssm-secrets"], ACCOUNT)
    reads = {r for s in _by_action(policy)["ssm:GetParameter"] for r in _as_list(s["Resource"])}
    assert f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/team/registry/ci" in reads
    assert f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/team/registry/ci" not in {
        r
        for s in _by_action(render_operator_policy(SPECS["none"], ACCOUNT))["ssm:GetParameter"]
        for r in _as_list(s["Resource"])
    }


def test_the_partition_follows_the_region_and_the_account_is_checked() -> None:
    spec = build_spec(deployment={"name": "offline", "region": "cn-north-1"})
    policy = json.dumps(render_operator_policy(spec, ACCOUNT))
    assert "arn:aws:" not in policy and "arn:aws-cn:" in policy and "ec2.amazonaws.com.cn" in policy
    with pytest.raises(ValueError, match="12 digits"):
        render_operator_policy(spec, "12345")


def test_render_operator_policy_from_the_cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example's policy fits a customer managed policy (6,144 characters without white space)."""
    from suites.offline.test_cli import EXAMPLE

    monkeypatch.setenv("SPOTREG_ACCOUNT_ID", "210987654321")
    assert main(["render", "operator-policy", "--config", str(EXAMPLE)]) == 0
    policy = json.loads(capsys.readouterr().out)
    assert "210987654321" in json.dumps(policy)
    assert len("".join(json.dumps(policy).split())) <= 6144
    assert "iam:CreateUser" not in _granted_actions(policy)
    assert main(["render", "operator-policy", "--legacy-access-key", "--config", str(EXAMPLE)]) == 0
    assert "iam:CreateUser" in _granted_actions(json.loads(capsys.readouterr().out))
