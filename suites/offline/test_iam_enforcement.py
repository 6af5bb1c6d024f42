"""moto with IAM enforcement on: the instance role's rendered policy lets the registry's S3 calls through
on its bucket and denies them on any other bucket (and the legacy user's key is held to the same)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.core import set_initial_no_auth_action_count

from suites.offline.conftest import REGION

BUCKET = "spotreg-offline-images"
OTHER = "someone-elses-bucket"
KEY = "registry/docker/registry/v2/blobs/sha256/ab/abcdef/data"


def _enforced(calls: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run `calls` with moto checking every request against IAM policies (from the first request on)."""
    return set_initial_no_auth_action_count(0)(calls)()


def _outcome(call: Callable[[], Any]) -> str:
    try:
        call()
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    return "ok"


def _registry_calls(s3: Any, bucket: str) -> dict[str, str]:
    """What distribution's S3 storage driver does to a bucket, one call of each kind."""
    results: dict[str, str] = {}
    results["PutObject"] = _outcome(lambda: s3.put_object(Bucket=bucket, Key=KEY, Body=b"layer"))
    results["GetObject"] = _outcome(lambda: s3.get_object(Bucket=bucket, Key=KEY)["Body"].read())
    results["HeadObject"] = _outcome(lambda: s3.head_object(Bucket=bucket, Key=KEY))
    results["ListObjectsV2"] = _outcome(lambda: s3.list_objects_v2(Bucket=bucket, Prefix="registry/"))
    results["CopyObject"] = _outcome(
        lambda: s3.copy_object(Bucket=bucket, Key=f"{KEY}.copy", CopySource={"Bucket": bucket, "Key": KEY})
    )
    upload: dict[str, str] = {}

    def multipart() -> None:
        upload.update(s3.create_multipart_upload(Bucket=bucket, Key=f"{KEY}.big"))
        s3.upload_part(Bucket=bucket, Key=f"{KEY}.big", UploadId=upload["UploadId"], PartNumber=1, Body=b"x")
        s3.list_parts(Bucket=bucket, Key=f"{KEY}.big", UploadId=upload["UploadId"])
        s3.list_multipart_uploads(Bucket=bucket)
        s3.abort_multipart_upload(Bucket=bucket, Key=f"{KEY}.big", UploadId=upload["UploadId"])

    results["Multipart"] = _outcome(multipart)
    results["DeleteObject"] = _outcome(lambda: s3.delete_object(Bucket=bucket, Key=f"{KEY}.copy"))
    return results


@pytest.fixture
def deployed(make_provisioner, clients):
    provisioner = make_provisioner()
    provisioner.up(legacy_access_key=True)
    clients.s3.create_bucket(Bucket=OTHER)
    clients.s3.put_object(Bucket=OTHER, Key=KEY, Body=b"not yours")
    return provisioner


def _role_session(clients) -> boto3.session.Session:
    role = clients.iam.get_role(RoleName="spotreg-offline")["Role"]
    credentials = clients.sts.assume_role(RoleArn=role["Arn"], RoleSessionName="i-registry")["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )


def test_role_can_do_the_registrys_s3_calls_on_its_bucket_only(deployed, clients):
    session = _role_session(clients)
    s3 = session.client("s3")

    def calls() -> dict[str, Any]:
        return {"own": _registry_calls(s3, BUCKET), "other": _registry_calls(s3, OTHER)}

    results = _enforced(calls)
    assert set(results["own"].values()) == {"ok"}, results["own"]
    assert set(results["other"].values()) == {"AccessDenied"}, results["other"]


def test_role_reads_its_parameters_and_nothing_else(deployed, clients):
    """moto checks SSM (and every JSON service) against resource "*", so the role's resource-scoped
    GetParameter grant is judged by moto's own policy evaluator on the real ARNs; what needs no
    resource (writes, EC2, IAM) is checked end to end."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    policy = clients.iam.get_role_policy(RoleName="spotreg-offline", PolicyName="spotreg-registry")["PolicyDocument"]
    arn = f"arn:aws:ssm:{REGION}:{clients.account_id()}:parameter"
    judge = IAMPolicy(policy if isinstance(policy, str) else json.dumps(policy))
    assert (
        judge.is_action_permitted("ssm:GetParameter", f"{arn}/spotreg/offline/htpasswd") == PermissionResult.PERMITTED
    )
    assert judge.is_action_permitted("ssm:GetParameter", f"{arn}/spotreg/offline/tls-key") == PermissionResult.PERMITTED
    for other in (f"{arn}/spotreg/other/htpasswd", f"{arn}/spotreg/offline-two/htpasswd", f"{arn}/team/secret"):
        assert judge.is_action_permitted("ssm:GetParameter", other) != PermissionResult.PERMITTED, other
    assert (
        judge.is_action_permitted("ssm:PutParameter", f"{arn}/spotreg/offline/htpasswd") != PermissionResult.PERMITTED
    )

    session = _role_session(clients)
    ssm, ec2, iam = session.client("ssm"), session.client("ec2"), session.client("iam")

    def calls() -> dict[str, Any]:
        return {
            "write": _outcome(lambda: ssm.put_parameter(Name="/spotreg/offline/htpasswd", Value="x", Overwrite=True)),
            "ec2": _outcome(lambda: ec2.describe_instances()),
            "iam": _outcome(lambda: iam.create_user(UserName="escalate")),
        }

    results = _enforced(calls)
    assert all(
        v in {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "403"} for v in results.values()
    ), results


def test_legacy_users_key_is_held_to_the_same_bucket(deployed, clients):
    import json

    stored = clients.ssm.get_parameter(Name="/spotreg/offline/legacy-access-key", WithDecryption=True)
    key = json.loads(stored["Parameter"]["Value"])
    s3 = boto3.session.Session(
        aws_access_key_id=key["access_key_id"], aws_secret_access_key=key["secret_access_key"], region_name=REGION
    ).client("s3")

    def calls() -> dict[str, Any]:
        return {"own": _registry_calls(s3, BUCKET), "other": _registry_calls(s3, OTHER)}

    results = _enforced(calls)
    assert set(results["own"].values()) == {"ok"}, results["own"]
    assert set(results["other"].values()) == {"AccessDenied"}, results["other"]


def test_legacy_mode_warns_why_it_is_worse(make_provisioner, caplog):
    messages: list[str] = []
    provisioner = make_provisioner(progress=messages.append)
    with caplog.at_level("WARNING", logger="spotreg.provisioner"):
        inventory = provisioner.up(legacy_access_key=True)
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert "never rotates" in warning and "instance profile" in warning
    assert any(line.startswith("legacy-user: ") and "long-lived" in line for line in messages)
    assert len(inventory.of("access-key")) == 1
    assert {r.id for r in inventory.of("iam-user")} == {"spotreg-offline-legacy"}
    provisioner.down()
    left = provisioner.inventory()
    assert not left.of("iam-user") and not left.of("access-key") and not left.of("parameter")
