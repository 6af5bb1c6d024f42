"""The instance role's policy: one bucket, exactly the registry's S3 actions, the boot's few grants."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from parliament import analyze_policy_string

from provisioning import names, rules
from provisioning.render.policy import (
    REGISTRY_S3_ACTIONS,
    partition_of,
    render_assume_role_policy,
    render_registry_policy,
)
from provisioning.spec_loading import spec_from_mapping
from suites.offline.render_samples import MODES, matrix_spec, mode_id, statements_by_sid
from suites.offline.spec_strategies import example_mapping, valid_spec_mappings

ACCOUNT = "123456789012"


# parliament 1.6 knows the partitions aws, aws-cn, aws-us-gov and aws-iso only; botocore (so the
# spec) knows more (aws-iso-b/e/f, aws-eusc), whose ARNs it calls "Unexpected partition".
_PARLIAMENT_PARTITIONS = ("aws", "aws-cn", "aws-us-gov", "aws-iso")
# A trust policy names a Principal, never a Resource: parliament reviews identity policies only.
_TRUST_POLICY_NO_RESOURCE = ("MALFORMED", "Statement contains neither Resource nor NotResource")


def parliament_findings(policy: dict[str, Any], *, ignore: tuple[tuple[str, str], ...] = ()) -> list[str]:
    findings = analyze_policy_string(json.dumps(policy)).findings
    return [f"{f.issue}: {f.detail}" for f in findings if (f.issue, f.detail) not in ignore]


def s3_grants(policy: dict[str, Any]) -> dict[str, set[str]]:
    """Resource -> S3 actions granted on it."""
    grants: dict[str, set[str]] = {}
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        s3 = {a for a in actions if a.lower().startswith("s3:")}
        if s3:
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for resource in resources:
                grants.setdefault(resource, set()).update(s3)
    return grants


@settings(max_examples=30, deadline=None)
@given(valid_spec_mappings())
def test_policy_grants_exactly_the_registry_actions_on_one_bucket_and_passes_parliament(
    mapping: dict[str, Any],
) -> None:
    spec = spec_from_mapping(mapping)
    policy = render_registry_policy(spec, ACCOUNT)
    partition = partition_of(spec.deployment.region)
    bucket = f"arn:{partition}:s3:::{spec.storage.bucket}"
    assert s3_grants(policy) == {
        bucket: set(REGISTRY_S3_ACTIONS["bucket"]),
        f"{bucket}/*": set(REGISTRY_S3_ACTIONS["object"]),
    }
    # parliament knows neither the newer partitions nor the isolated regions' names (us-iso-east-1).
    ignore: tuple[tuple[str, str], ...] = ()
    if partition not in _PARLIAMENT_PARTITIONS:
        ignore += (("INVALID_ARN", "Unexpected partition"),)
    if partition.startswith("aws-iso"):
        ignore += (("INVALID_ARN", "Region expected to be of form like us-east-1"),)
    assert parliament_findings(policy, ignore=ignore) == []
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert "*" not in "".join(statement["Action"])  # no wildcard actions
        assert statement["Resource"] != "*"
    sids = [s["Sid"] for s in policy["Statement"]]
    assert len(sids) == len(set(sids))
    assert policy == render_registry_policy(spec, ACCOUNT)  # deterministic


def test_s3_actions_are_exactly_the_listed_ones() -> None:
    assert REGISTRY_S3_ACTIONS == {
        "bucket": ("s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"),
        "object": (
            "s3:PutObject",
            "s3:GetObject",
            "s3:DeleteObject",
            "s3:ListMultipartUploadParts",
            "s3:AbortMultipartUpload",
        ),
    }
    with pytest.raises(TypeError):
        REGISTRY_S3_ACTIONS["bucket"] = ()  # type: ignore[index]


@pytest.mark.parametrize("modes", MODES, ids=mode_id)
def test_boot_grants_per_dns_mode(modes: tuple[str, str]) -> None:
    spec = matrix_spec(modes)
    statements = statements_by_sid(render_registry_policy(spec, ACCOUNT))
    assert statements["BootParameters"]["Action"] == ["ssm:GetParameter"]
    assert statements["BootParameters"]["Resource"] == (
        f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter{names.parameter_prefix(spec)}/*"
    )
    if spec.dns.mode == "route53":
        dns = statements["BootDnsRecord"]
        assert dns["Action"] == ["route53:ChangeResourceRecordSets"]
        assert dns["Resource"] == f"arn:aws:route53:::hostedzone/{spec.dns.zone_id}"
        assert dns["Condition"] == {
            "ForAllValues:StringEquals": {
                "route53:ChangeResourceRecordSetsNormalizedRecordNames": ["registry.example.com"],
                "route53:ChangeResourceRecordSetsRecordTypes": ["A"],
                "route53:ChangeResourceRecordSetsActions": ["UPSERT"],
            }
        }
        assert set(statements) == {"RegistryBucket", "RegistryObjects", "BootParameters", "BootDnsRecord"}
    else:
        assert set(statements) == {"RegistryBucket", "RegistryObjects", "BootParameters"}


@pytest.mark.parametrize(
    ("region", "partition"),
    [("us-east-1", "aws"), ("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov"), ("eu-west-3", "aws")],
)
def test_arns_use_the_regions_partition(region: str, partition: str) -> None:
    spec = spec_from_mapping(example_mapping(deployment={"region": region}))
    policy = render_registry_policy(spec, ACCOUNT)
    for statement in policy["Statement"]:
        assert statement["Resource"].startswith(f"arn:{partition}:")
    assert statements_by_sid(policy)["BootParameters"]["Resource"].startswith(f"arn:{partition}:ssm:{region}:")


def test_partition_table_agrees_with_botocore_for_every_known_region() -> None:
    session = boto3.session.Session()
    assert {r: partition_of(r) for r in rules.known_regions()} == {
        r: session.get_partition_for_region(r) for r in rules.known_regions()
    }


@pytest.mark.parametrize("account", ["", "12345678901", "1234567890123", "12345678901a", "*", "١٢٣٤٥٦٧٨٩٠١٢"])
def test_account_id_must_be_twelve_digits(account: str) -> None:
    with pytest.raises(ValueError, match="12 digits"):
        render_registry_policy(matrix_spec(MODES[0]), account)


def test_assume_role_policy_trusts_ec2_only() -> None:
    policy = render_assume_role_policy()
    assert policy["Statement"] == [
        {
            "Sid": "Ec2AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    assert parliament_findings(policy, ignore=(_TRUST_POLICY_NO_RESOURCE,)) == []
