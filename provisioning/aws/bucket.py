"""The S3 bucket the registry keeps its images in: private, encrypted, owner-enforced, with a
lifecycle rule that aborts abandoned multipart uploads (the registry never does, and they cost)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from provisioning.aws.storage_moves import bucket_tags, old_buckets, refuse_unasked, takeover, takeover_change
from provisioning.changes import Change
from provisioning.clients import AwsClients
from provisioning.errors import InputError, InputProblem, OwnershipError, PermissionDenied
from provisioning.names import TAG_CREATED, TAG_DEPLOYMENT
from provisioning.spec import Spec
from provisioning.step import Context, Run
from provisioning.tags import aws_tags, error_code, is_denied, missing_tags, tag_dict

KIND = "bucket"
# Set only on a bucket spotreg itself created, to the deployment's name: `down --delete-data` empties
# and deletes only such a bucket. A bucket that existed before (adopted) never gets it.
LIFECYCLE_RULE_ID = "spotreg-abort-incomplete-multipart-uploads"
ABORT_INCOMPLETE_AFTER_DAYS = 7
PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
ENCRYPTED_ALGORITHMS = frozenset({"AES256", "aws:kms", "aws:kms:dsse"})
LIFECYCLE_RULE: dict[str, Any] = {
    "ID": LIFECYCLE_RULE_ID,
    "Status": "Enabled",
    "Filter": {"Prefix": ""},
    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": ABORT_INCOMPLETE_AFTER_DAYS},
}


@dataclass(frozen=True)
class BucketState:
    """What S3 says about a bucket that exists."""

    name: str
    region: str
    tags: Mapping[str, str]
    public_access_block: Mapping[str, bool] | None
    encryption: str | None
    ownership: str | None
    lifecycle_rules: tuple[Mapping[str, Any], ...] = field(default=())
    versioning: str | None = None


def location_region(constraint: str | None) -> str:
    """GetBucketLocation's answer as a region name (None means us-east-1, 'EU' eu-west-1)."""
    if not constraint:
        return "us-east-1"
    return "eu-west-1" if constraint == "EU" else constraint


def _optional(call: Any, missing: tuple[str, ...], **kwargs: Any) -> Any:
    try:
        return call(**kwargs)
    except ClientError as error:
        if error_code(error) in missing:
            return None
        raise


def _is_listed_here(s3: Any, name: str) -> bool | None:
    """Whether this account owns a bucket by that name (None: it may not list its buckets)."""
    try:
        return name in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    except ClientError as error:
        if is_denied(error):
            return None
        raise


def bucket_region(s3: Any, name: str) -> str | None:
    """The bucket's region, None when it does not exist. Denied: OwnershipError when the bucket is not
    among this account's (S3 refused this account as its expected owner), else PermissionDenied."""
    try:
        answer = s3.get_bucket_location(Bucket=name)
    except ClientError as error:
        if error_code(error) == "NoSuchBucket":
            return None
        if is_denied(error):  # asked with this account as ExpectedBucketOwner (see clients.py)
            if _is_listed_here(s3, name) is False:
                raise OwnershipError(
                    KIND,
                    name,
                    "belongs to another AWS account (bucket names are global): choose another storage.bucket",
                ) from error
            raise PermissionDenied(
                "s3:GetBucketLocation",
                f"bucket {name}",
                "these credentials may not read the bucket",
                hint="grant s3:GetBucketLocation on it (see 'spotreg render operator-policy')",
            ) from error
        raise
    return location_region(answer.get("LocationConstraint"))


def read_bucket(s3: Any, name: str) -> BucketState | None:
    """Everything spotreg sets on a bucket, read without changing anything; None if it is absent."""
    region = bucket_region(s3, name)
    if region is None:
        return None
    tagging = _optional(s3.get_bucket_tagging, ("NoSuchTagSet", "NoSuchTagSetError"), Bucket=name)
    pab = _optional(s3.get_public_access_block, ("NoSuchPublicAccessBlockConfiguration",), Bucket=name)
    enc = _optional(s3.get_bucket_encryption, ("ServerSideEncryptionConfigurationNotFoundError",), Bucket=name)
    own = _optional(s3.get_bucket_ownership_controls, ("OwnershipControlsNotFoundError",), Bucket=name)
    life = _optional(s3.get_bucket_lifecycle_configuration, ("NoSuchLifecycleConfiguration",), Bucket=name)
    versioning = s3.get_bucket_versioning(Bucket=name).get("Status")
    algorithm = None
    if enc:
        rules = enc["ServerSideEncryptionConfiguration"].get("Rules", [])
        if rules:
            algorithm = rules[0].get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm")
    ownership = None
    if own:
        rules = own["OwnershipControls"].get("Rules", [])
        ownership = rules[0].get("ObjectOwnership") if rules else None
    return BucketState(
        name=name,
        region=region,
        tags=tag_dict(tagging["TagSet"]) if tagging else {},
        public_access_block=dict(pab["PublicAccessBlockConfiguration"]) if pab else None,
        encryption=algorithm,
        ownership=ownership,
        lifecycle_rules=tuple(life["Rules"]) if life else (),
        versioning=versioning,
    )


def _has_abort_rule(rules: tuple[Mapping[str, Any], ...]) -> bool:
    for rule in rules:
        if rule.get("ID") != LIFECYCLE_RULE_ID or rule.get("Status") != "Enabled":
            continue
        days = rule.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation")
        prefix = rule.get("Filter", {}).get("Prefix", rule.get("Prefix", ""))
        if days == ABORT_INCOMPLETE_AFTER_DAYS and prefix in ("", None):
            return True
    return False


def bucket_drift(state: BucketState, spec: Spec, tags: Mapping[str, str]) -> list[str]:
    """What differs between a bucket and what the spec wants, in words (pure)."""
    drift = []
    missing = missing_tags(state.tags, tags)
    if missing:
        drift.append(f"tags {sorted(missing)}")
    if state.public_access_block != PUBLIC_ACCESS_BLOCK:
        drift.append("public access block")
    if state.encryption not in ENCRYPTED_ALGORITHMS:
        drift.append("default encryption")
    if state.ownership != "BucketOwnerEnforced":
        drift.append("object ownership")
    if not _has_abort_rule(state.lifecycle_rules):
        drift.append("lifecycle rule")
    # versioning is only ever turned on (storage.versioning); spotreg never suspends what an owner enabled
    if spec.storage.versioning and state.versioning != "Enabled":
        drift.append("versioning on")
    return drift


def _check_region(state: BucketState, spec: Spec) -> None:
    if state.region != spec.deployment.region:
        raise InputError(
            [
                InputProblem(
                    "storage.bucket",
                    state.name,
                    f"the bucket is in {state.region} but deployment.region is {spec.deployment.region}",
                )
            ]
        )


def inspect_bucket(clients: AwsClients, spec: Spec, tags: Mapping[str, str]) -> list[Change]:
    name = spec.storage.bucket
    state = read_bucket(clients.s3, name)
    if state is None:
        return [Change(KIND, name, "create", "private, encrypted, owner-enforced, abort-multipart rule")]
    _check_region(state, spec)
    owner = takeover(dict(state.tags), spec)
    if owner is not None:
        return [takeover_change(owner, spec)]
    drift = bucket_drift(state, spec, tags)
    return [Change(KIND, name, "update" if drift else "keep", ", ".join(drift))]


def _apply(s3: Any, state: BucketState, spec: Spec, tags: Mapping[str, str]) -> None:
    name = state.name
    if missing_tags(state.tags, tags):
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": aws_tags({**state.tags, **tags})})
    if state.public_access_block != PUBLIC_ACCESS_BLOCK:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK)
    if state.encryption not in ENCRYPTED_ALGORITHMS:
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]
            },
        )
    if state.ownership != "BucketOwnerEnforced":
        s3.put_bucket_ownership_controls(
            Bucket=name, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
        )
    if not _has_abort_rule(state.lifecycle_rules):
        others = [dict(rule) for rule in state.lifecycle_rules if rule.get("ID") != LIFECYCLE_RULE_ID]
        s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": [*others, LIFECYCLE_RULE]})
    if spec.storage.versioning and state.versioning != "Enabled":
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})


def ensure_bucket(clients: AwsClients, spec: Spec, tags: Mapping[str, str]) -> Change:
    """Create the bucket or correct its settings. A bucket created here and not finished is removed
    again (it is empty), so a failure leaves nothing; an existing bucket is never removed."""
    s3, name = clients.s3, spec.storage.bucket
    state = read_bucket(s3, name)
    if state is not None:
        _check_region(state, spec)
        owner = takeover(dict(state.tags), spec)
        if owner is not None:  # asked for (refuse_unasked ran first): the bucket is this deployment's now
            if state.tags.get(TAG_CREATED) == owner:
                tags = {**tags, TAG_CREATED: spec.deployment.name}
            _apply(s3, state, spec, tags)
            return takeover_change(owner, spec)
        drift = bucket_drift(state, spec, tags)
        _apply(s3, state, spec, tags)
        return Change(KIND, name, "update" if drift else "keep", ", ".join(drift))
    params: dict[str, Any] = {"Bucket": name}
    if clients.region != "us-east-1":
        params["CreateBucketConfiguration"] = {"LocationConstraint": clients.region}
    try:
        s3.create_bucket(**params)
    except ClientError as error:
        if error_code(error) == "BucketAlreadyExists":
            raise OwnershipError(
                KIND, name, "exists in another AWS account (bucket names are global): choose another storage.bucket"
            ) from error
        raise
    fresh = BucketState(name, clients.region, {}, None, None, None)
    try:
        _apply(s3, fresh, spec, {**tags, TAG_CREATED: spec.deployment.name})
    except BaseException:
        _delete_if_empty(s3, name)
        raise
    return Change(KIND, name, "create")


def _delete_if_empty(s3: Any, name: str) -> None:
    # not empty, or not allowed: it stays, tagged if tagging got that far; down keeps it anyway
    with contextlib.suppress(ClientError):
        s3.delete_bucket(Bucket=name)


def empty_bucket(s3: Any, name: str) -> int:
    """Delete every object version, delete marker and unfinished multipart upload, however many there
    are; returns the count. Each round lists from the start again (what it deleted is gone), so no
    listing marker is carried across deletions."""
    removed = 0
    while True:
        page = s3.list_object_versions(Bucket=name, MaxKeys=1000)
        batch = [
            {"Key": item["Key"], "VersionId": item["VersionId"]}
            for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        ]
        if not batch:
            break
        answer = s3.delete_objects(Bucket=name, Delete={"Objects": batch, "Quiet": True})
        if answer.get("Errors"):
            first = answer["Errors"][0]
            raise PermissionDenied("s3:DeleteObject", f"{name}/{first.get('Key')}", first.get("Message", ""))
        removed += len(batch)
    while uploads := s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
        for upload in uploads:
            s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
            removed += 1
    return removed


NOT_CREATED = "not created by spotreg: kept; delete it yourself"


def remove_bucket(clients: AwsClients, spec: Spec, *, delete_data: bool) -> Change:
    """Keep the bucket (the default), or with `delete_data` empty every version and delete it —
    only when this deployment created it (tagged spotreg:created=<deployment>). A bucket that was
    there before spotreg adopted it may hold anyone's data: it is kept, whatever `delete_data` says."""
    name = spec.storage.bucket
    try:
        region = bucket_region(clients.s3, name)
    except PermissionDenied:
        if delete_data:
            raise
        return Change(KIND, name, "keep", "not readable with these credentials: left as it is")
    if region is None:
        return Change(KIND, name, "keep", "absent")
    if not delete_data:
        return Change(KIND, name, "keep", "kept with its images (delete_data not asked for)")
    tagging = _optional(clients.s3.get_bucket_tagging, ("NoSuchTagSet", "NoSuchTagSetError"), Bucket=name)
    tags = tag_dict(tagging["TagSet"]) if tagging else {}
    if tags.get(TAG_CREATED) != spec.deployment.name or tags.get(TAG_DEPLOYMENT) != spec.deployment.name:
        return Change(KIND, name, "keep", NOT_CREATED)
    count = empty_bucket(clients.s3, name)
    clients.s3.delete_bucket(Bucket=name)
    return Change(KIND, name, "delete", f"{count} object versions, markers and uploads removed")


class BucketStep:
    """The image bucket: made private and encrypted; kept by `down` unless data deletion was asked for."""

    name = "bucket"

    def resource(self, spec: Spec) -> str:
        return f"bucket {spec.storage.bucket}"

    def check(self, run: Run) -> None:
        """The bucket checks its owner itself, in plan and apply, before it creates anything."""

    def plan(self, run: Run) -> list[Change]:
        return inspect_bucket(run.clients, run.spec, run.ctx.tags) + old_buckets(run.clients.s3, run.spec)

    def apply(self, run: Run) -> list[Change]:
        s3, spec = run.clients.s3, run.spec
        refuse_unasked(s3, spec, bucket_tags(s3, spec.storage.bucket), switch_storage=run.switch_storage)
        return [ensure_bucket(run.clients, spec, run.ctx.tags), *old_buckets(s3, spec)]

    def remove(self, ctx: Context, *, delete_data: bool) -> list[Change]:
        change = remove_bucket(ctx.clients, ctx.spec, delete_data=delete_data)
        if delete_data and change.detail == NOT_CREATED:  # asked to delete what spotreg may not
            raise OwnershipError(KIND, change.name, NOT_CREATED)
        return [change, *old_buckets(ctx.clients.s3, ctx.spec)]
