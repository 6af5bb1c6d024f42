"""The operator's IAM policy: what `plan`, `up`, `status` and `down` of one spec call, and no more.

Every grant is scoped to the deployment's own resources where AWS allows it: its bucket, its role,
instance profile and legacy user, its SSM parameters and lock, its hosted zone; EC2 creations must
carry the deployment's tag and EC2 changes may touch only what carries it. What AWS cannot scope
(Describe calls, ListAllMyBuckets, ListHostedZones) is granted on "*", and only reads are.

Not granted, and needed once per account before the first spot launch: the service-linked role
AWSServiceRoleForEC2Spot (`aws iam create-service-linked-role --aws-service-name spot.amazonaws.com`).
"""

from __future__ import annotations

from typing import Any, Final

from provisioning import names
from provisioning.render.launch import AL2023_AMI_PARAMETER
from provisioning.render.policy import POLICY_VERSION, partition_of
from provisioning.rules import architecture_of
from provisioning.spec import Spec

# What the steps read in EC2 that has no resource-level permissions (Describe*).
EC2_READS: Final = (
    "ec2:DescribeAddresses",
    "ec2:DescribeInstances",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSpotInstanceRequests",
    "ec2:DescribeSpotPriceHistory",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
)
# What RunInstances creates (TAGGED_RESOURCES in render/launch.py: each tagged at launch).
LAUNCH_CREATES: Final = ("instance", "volume", "network-interface", "spot-instances-request")
# EC2 calls on resources that already carry the deployment's tag (the Elastic IP's: dns.mode = "eip" only).
EC2_OWN: Final = (
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:CancelSpotInstanceRequests",
    "ec2:CreateTags",
    "ec2:DeleteSecurityGroup",
    "ec2:DescribeInstanceAttribute",
    "ec2:GetConsoleOutput",
    "ec2:RevokeSecurityGroupIngress",
    "ec2:TerminateInstances",
)
EC2_OWN_ADDRESS: Final = ("ec2:AssociateAddress", "ec2:DisassociateAddress", "ec2:ReleaseAddress")
EC2_OWN_RESOURCES: Final = ("instance", "network-interface", "security-group", "spot-instances-request")

S3_BUCKET: Final = (
    "s3:CreateBucket",
    "s3:GetBucketLocation",
    "s3:GetBucketOwnershipControls",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketTagging",
    "s3:GetBucketVersioning",
    "s3:GetEncryptionConfiguration",
    "s3:GetLifecycleConfiguration",
    "s3:PutBucketOwnershipControls",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketTagging",
    "s3:PutBucketVersioning",
    "s3:PutEncryptionConfiguration",
    "s3:PutLifecycleConfiguration",
    # `down --delete-data` only: list every version and upload, then delete the bucket
    "s3:DeleteBucket",
    "s3:ListBucketMultipartUploads",
    "s3:ListBucketVersions",
)
# `down --delete-data` only: the objects, their versions and unfinished uploads.
S3_OBJECTS: Final = ("s3:AbortMultipartUpload", "s3:DeleteObject", "s3:DeleteObjectVersion")

# The instance role and its instance profile (one statement: each action applies to its own kind).
IAM_ROLE_AND_PROFILE: Final = (
    "iam:AddRoleToInstanceProfile",
    "iam:CreateInstanceProfile",
    "iam:CreateRole",
    "iam:DeleteInstanceProfile",
    "iam:DeleteRole",
    "iam:DeleteRolePolicy",
    "iam:DetachRolePolicy",
    "iam:GetInstanceProfile",
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole",
    "iam:ListRolePolicies",
    "iam:ListRoleTags",
    "iam:PutRolePolicy",
    "iam:RemoveRoleFromInstanceProfile",
    "iam:TagInstanceProfile",
    "iam:TagRole",
    "iam:UpdateAssumeRolePolicy",
)
# Looking for the legacy user and removing it: every `up` without --legacy-access-key, and `down`.
IAM_LEGACY_USER: Final = (
    "iam:DeleteAccessKey",
    "iam:DeleteUser",
    "iam:DeleteUserPolicy",
    "iam:DetachUserPolicy",
    "iam:GetUser",
    "iam:ListAccessKeys",
    "iam:ListAttachedUserPolicies",
    "iam:ListUserPolicies",
    "iam:ListUserTags",
)
# Making it: `up --legacy-access-key` only.
IAM_LEGACY_USER_CREATION: Final = (
    "iam:CreateAccessKey",
    "iam:CreateUser",
    "iam:GetUserPolicy",
    "iam:PutUserPolicy",
    "iam:TagUser",
)

# The deployment's parameters (read by path, written, tagged, deleted) and its lock parameter.
SSM_PARAMETERS: Final = (
    "ssm:AddTagsToResource",
    "ssm:DeleteParameter",
    "ssm:DeleteParameters",
    "ssm:GetParameter",
    "ssm:GetParametersByPath",
    "ssm:ListTagsForResource",
    "ssm:PutParameter",
)


class _Arns:
    """The ARNs of one deployment's resources."""

    def __init__(self, spec: Spec, account_id: str, partition: str) -> None:
        self.partition, self.region, self.account = partition, spec.deployment.region, account_id

    def ec2(self, kind: str, ident: str = "*", *, account: bool = True) -> str:
        owner = self.account if account else ""
        return f"arn:{self.partition}:ec2:{self.region}:{owner}:{kind}/{ident}"

    def iam(self, kind: str, name: str) -> str:
        return f"arn:{self.partition}:iam::{self.account}:{kind}/{name}"

    def parameter(self, name: str, *, public: bool = False) -> str:
        owner = "" if public else self.account
        return f"arn:{self.partition}:ssm:{self.region}:{owner}:parameter/{name.lstrip('/')}"

    def s3(self, name: str) -> str:
        return f"arn:{self.partition}:s3:::{name}"

    def zone(self, zone_id: str) -> str:
        return f"arn:{self.partition}:route53:::hostedzone/{zone_id}"


def _statement(
    sid: str, actions: tuple[str, ...] | list[str], resources: str | list[str], **condition: Any
) -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def ssm_secret_parameters(spec: Spec) -> list[str]:
    """The SSM parameters the spec's `ssm:` secret references name (resolved before anything is made)."""
    refs = [user.password for user in spec.registry.users]
    if spec.dns.password is not None:
        refs.append(spec.dns.password)
    return sorted({ref.removeprefix("ssm:") for ref in refs if ref.startswith("ssm:")})


def _ec2(spec: Spec, arns: _Arns) -> list[dict[str, Any]]:
    deployment = spec.deployment.name
    tagged = {"StringEquals": {f"aws:RequestTag/{names.TAG_DEPLOYMENT}": deployment}}
    owned = {"StringEquals": {f"ec2:ResourceTag/{names.TAG_DEPLOYMENT}": deployment}}
    eip = spec.dns.mode == "eip"
    created = ["security-group", *(["elastic-ip"] if eip else [])]
    own_actions = EC2_OWN + (EC2_OWN_ADDRESS if eip else ())
    own = (*EC2_OWN_RESOURCES, *(["elastic-ip"] if eip else []))
    return [
        _statement("Ec2Read", EC2_READS, "*"),
        # RunInstances is authorized once per resource it touches: what it creates must carry the tag ...
        _statement("Ec2Launch", ["ec2:RunInstances"], [arns.ec2(kind) for kind in LAUNCH_CREATES], **tagged),
        # ... the security group it uses must be the deployment's, the image Amazon's
        _statement("Ec2LaunchOwnGroup", ["ec2:RunInstances"], arns.ec2("security-group"), **owned),
        _statement(
            "Ec2LaunchAmazonImage",
            ["ec2:RunInstances"],
            arns.ec2("image", account=False),
            StringEquals={"ec2:Owner": "amazon"},
        ),
        # the subnet (RunInstances) and VPC (CreateSecurityGroup) are the default VPC's or the spec's
        _statement(
            "Ec2Network", ["ec2:CreateSecurityGroup", "ec2:RunInstances"], [arns.ec2("subnet"), arns.ec2("vpc")]
        ),
        _statement(
            "Ec2CreateTagged",
            ["ec2:CreateSecurityGroup", *(["ec2:AllocateAddress"] if eip else [])],
            [arns.ec2(kind) for kind in created],
            **tagged,
        ),
        # Tags given at creation need CreateTags too: allowed only within those creations.
        _statement(
            "Ec2TagOnCreate",
            ["ec2:CreateTags"],
            [arns.ec2(kind) for kind in (*LAUNCH_CREATES, *created)],
            StringEquals={
                "ec2:CreateAction": ["CreateSecurityGroup", "RunInstances", *(["AllocateAddress"] if eip else [])],
                f"aws:RequestTag/{names.TAG_DEPLOYMENT}": deployment,
            },
        ),
        _statement("Ec2Own", own_actions, [arns.ec2(kind) for kind in own], **owned),
    ]


def _iam(spec: Spec, arns: _Arns, *, legacy_access_key: bool) -> list[dict[str, Any]]:
    name = names.resource_name(spec)
    role = arns.iam("role", name)
    services = ["ec2.amazonaws.com"] + (["ec2.amazonaws.com.cn"] if arns.partition == "aws-cn" else [])
    legacy = IAM_LEGACY_USER + (IAM_LEGACY_USER_CREATION if legacy_access_key else ())
    return [
        _statement("RoleAndProfile", IAM_ROLE_AND_PROFILE, [role, arns.iam("instance-profile", name)]),
        # Passed to EC2 by RunInstances; AddRoleToInstanceProfile checks PassRole too, naming no service
        # (hence IfExists: a pass to any other service names it, and is refused).
        _statement("PassRoleToEc2", ["iam:PassRole"], role, StringEqualsIfExists={"iam:PassedToService": services}),
        _statement("LegacyUser", legacy, arns.iam("user", names.legacy_user_name(spec))),
    ]


def _ssm(spec: Spec, arns: _Arns) -> list[dict[str, Any]]:
    prefix = names.parameter_prefix(spec)
    images = sorted({AL2023_AMI_PARAMETER[architecture_of(t)] for t in spec.instance.types})
    reads = [arns.parameter(p, public=True) for p in images] + [arns.parameter(p) for p in ssm_secret_parameters(spec)]
    return [
        _statement(
            "Parameters",
            SSM_PARAMETERS,
            [arns.parameter(prefix), arns.parameter(f"{prefix}/*"), arns.parameter(names.lock_parameter(spec))],
        ),
        # the AL2023 image ids, and the secrets the spec names by `ssm:` reference
        _statement("ReadParameters", ["ssm:GetParameter"], reads),
    ]


def _s3(spec: Spec, arns: _Arns) -> list[dict[str, Any]]:
    bucket = arns.s3(spec.storage.bucket)
    return [
        # the inventory lists the account's buckets to find the deployment's by tag
        _statement("ListBuckets", ["s3:ListAllMyBuckets"], "*"),
        _statement("Bucket", S3_BUCKET, bucket),
        _statement("DeleteData", S3_OBJECTS, f"{bucket}/*"),
    ]


def _route53(spec: Spec, arns: _Arns) -> list[dict[str, Any]]:
    if spec.dns.mode == "route53":
        assert spec.dns.zone_id is not None and spec.dns.hostname is not None  # the Spec's rules
        zone = arns.zone(spec.dns.zone_id)
        return [
            _statement("DnsZone", ["route53:GetHostedZone", "route53:ListResourceRecordSets"], zone),
            # the A record and its owner TXT record at the one host name: UPSERT by `up`, DELETE by `down`
            _statement(
                "DnsRecords",
                ["route53:ChangeResourceRecordSets"],
                zone,
                **{
                    "ForAllValues:StringEquals": {
                        "route53:ChangeResourceRecordSetsNormalizedRecordNames": [spec.dns.hostname],
                        "route53:ChangeResourceRecordSetsRecordTypes": ["A", "TXT"],
                        "route53:ChangeResourceRecordSetsActions": ["DELETE", "UPSERT"],
                    }
                },
            ),
        ]
    # Another mode still looks (reads only) for records an earlier route53 `up` marked as the
    # deployment's: in the zone the spec names, else in every zone.
    if spec.dns.zone_id is not None:
        return [_statement("FindDnsRecords", ["route53:ListResourceRecordSets"], arns.zone(spec.dns.zone_id))]
    return [
        _statement("ListZones", ["route53:ListHostedZones"], "*"),
        _statement("FindDnsRecords", ["route53:ListResourceRecordSets"], arns.zone("*")),
    ]


def render_operator_policy(
    spec: Spec, account_id: str, partition: str | None = None, *, legacy_access_key: bool = False
) -> dict[str, Any]:
    """The identity policy an operator (or CI role) needs for `plan`, `up`, `status` and `down` of
    `spec`: scoped to the deployment's resources; `legacy_access_key` adds `up --legacy-access-key`'s
    IAM user. `partition` defaults to the region's."""
    if not (len(account_id) == 12 and account_id.isascii() and account_id.isdigit()):
        raise ValueError(f"an AWS account id is 12 digits, not {account_id!r}")
    arns = _Arns(spec, account_id, partition or partition_of(spec.deployment.region))
    statements = [
        _statement("CallerIdentity", ["sts:GetCallerIdentity"], "*"),
        *_s3(spec, arns),
        *_iam(spec, arns, legacy_access_key=legacy_access_key),
        *_ssm(spec, arns),
        *_ec2(spec, arns),
        *_route53(spec, arns),
    ]
    return {"Version": POLICY_VERSION, "Statement": statements}
