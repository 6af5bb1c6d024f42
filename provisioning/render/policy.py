"""The instance role's IAM policies: S3 on the one bucket, and the smallest grants the boot needs."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from provisioning import names
from provisioning.spec import Spec

POLICY_VERSION: Final = "2012-10-17"

# What the registry's S3 storage driver calls, by the resource it calls it on. Nothing else on S3.
REGISTRY_S3_ACTIONS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "bucket": ("s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"),
        "object": (
            "s3:PutObject",
            "s3:GetObject",
            "s3:DeleteObject",
            "s3:ListMultipartUploadParts",
            "s3:AbortMultipartUpload",
        ),
    }
)

# Region prefixes of the partitions other than "aws" (longest first where prefixes nest).
_PARTITION_PREFIXES: Final = (
    ("us-gov-", "aws-us-gov"),
    ("cn-", "aws-cn"),
    ("us-isob-", "aws-iso-b"),
    ("us-isof-", "aws-iso-f"),
    ("us-iso-", "aws-iso"),
    ("eu-isoe-", "aws-iso-e"),
    ("eusc-", "aws-eusc"),
)


def partition_of(region: str) -> str:
    """The ARN partition a region belongs to (aws, aws-cn, aws-us-gov, ...)."""
    for prefix, partition in _PARTITION_PREFIXES:
        if region.startswith(prefix):
            return partition
    return "aws"


def bucket_arns(spec: Spec) -> tuple[str, str]:
    """The bucket's ARN and the ARN of every object in it."""
    bucket = f"arn:{partition_of(spec.deployment.region)}:s3:::{spec.storage.bucket}"
    return bucket, f"{bucket}/*"


def parameters_arn(spec: Spec, account_id: str) -> str:
    """ARN of every SSM parameter below the deployment's prefix."""
    region = spec.deployment.region
    path = names.parameter_prefix(spec).lstrip("/")
    return f"arn:{partition_of(region)}:ssm:{region}:{account_id}:parameter/{path}/*"


def render_registry_policy(spec: Spec, account_id: str) -> dict[str, Any]:
    """The instance role's inline policy: the registry's bucket, its SSM parameters, its DNS record."""
    if not (len(account_id) == 12 and account_id.isascii() and account_id.isdigit()):
        raise ValueError(f"an AWS account id is 12 digits, not {account_id!r}")
    bucket_arn, objects_arn = bucket_arns(spec)
    statements: list[dict[str, Any]] = [
        {
            "Sid": "RegistryBucket",
            "Effect": "Allow",
            "Action": list(REGISTRY_S3_ACTIONS["bucket"]),
            "Resource": bucket_arn,
        },
        {
            "Sid": "RegistryObjects",
            "Effect": "Allow",
            "Action": list(REGISTRY_S3_ACTIONS["object"]),
            "Resource": objects_arn,
        },
        {
            "Sid": "BootParameters",
            "Effect": "Allow",
            "Action": ["ssm:GetParameter"],
            "Resource": parameters_arn(spec, account_id),
        },
    ]
    if spec.dns.mode == "route53":
        assert spec.dns.zone_id is not None and spec.dns.hostname is not None  # the Spec's rules
        statements.append(
            {
                "Sid": "BootDnsRecord",
                "Effect": "Allow",
                "Action": ["route53:ChangeResourceRecordSets"],
                "Resource": f"arn:{partition_of(spec.deployment.region)}:route53:::hostedzone/{spec.dns.zone_id}",
                # Only UPSERT of the A record of this one name: the boot does nothing else.
                "Condition": {
                    "ForAllValues:StringEquals": {
                        "route53:ChangeResourceRecordSetsNormalizedRecordNames": [spec.dns.hostname],
                        "route53:ChangeResourceRecordSetsRecordTypes": ["A"],
                        "route53:ChangeResourceRecordSetsActions": ["UPSERT"],
                    }
                },
            }
        )
    return {"Version": POLICY_VERSION, "Statement": statements}


def render_assume_role_policy() -> dict[str, Any]:
    """Trust policy letting EC2 instances assume the role (through the instance profile)."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "Ec2AssumeRole",
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
