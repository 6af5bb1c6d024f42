"""When the registry's storage changes hands, nothing is stranded silently.

- A new `storage.bucket`: the registry starts empty there; the images so far stay in the deployment's
  old bucket (kept, still tagged as the deployment's, listed by inventory).
- A bucket tagged as another spotreg deployment's (a renamed `deployment.name`): taking it over hands it
  to this deployment; the old deployment keeps running until it is removed with its own configuration.

`plan` shows both as what they are; `up` makes either only with `switch_storage` (`--switch-storage`).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from provisioning.changes import Change
from provisioning.errors import InputError, InputProblem, OwnershipError
from provisioning.names import TAG_DEPLOYMENT
from provisioning.spec import Spec
from provisioning.tags import is_code, tag_dict

KIND = "bucket"
FLAG = "--switch-storage"


def bucket_tags(s3: Any, name: str) -> dict[str, str] | None:
    """A bucket's tags ({} when it has none); None when it is gone or not ours to read."""
    try:
        return tag_dict(s3.get_bucket_tagging(Bucket=name).get("TagSet"))
    except ClientError as error:
        if is_code(error, "NoSuchTagSet", "NoSuchTagSetError"):
            return {}
        if is_code(error, "NoSuchBucket", "AccessDenied", "PermanentRedirect", "AuthorizationHeaderMalformed"):
            return None
        raise


def deployment_buckets(s3: Any, deployment: str) -> list[str]:
    """Every bucket tagged as `deployment`'s."""
    names = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    return sorted(n for n in names if (bucket_tags(s3, n) or {}).get(TAG_DEPLOYMENT) == deployment)


def holds_objects(s3: Any, name: str) -> bool:
    try:
        return bool(s3.list_objects_v2(Bucket=name, MaxKeys=1).get("KeyCount", 0))
    except ClientError:
        return True  # unreadable: assume it holds images


def old_buckets(s3: Any, spec: Spec) -> list[Change]:
    """The deployment's buckets other than storage.bucket: kept, each with what it means."""
    changes = []
    for old in deployment_buckets(s3, spec.deployment.name):
        if old == spec.storage.bucket:
            continue
        images = "its images so far" if holds_objects(s3, old) else "no images"
        detail = (
            f"the deployment's old bucket ({images}) is kept; the registry uses {spec.storage.bucket} from now "
            f"on. Delete it when done: aws s3 rb s3://{old} --force"
        )
        changes.append(Change(KIND, old, "keep", detail, note=True))
    return changes


def takeover(tags: dict[str, str], spec: Spec) -> str | None:
    """The other spotreg deployment `storage.bucket` belongs to (a renamed deployment?), if any."""
    owner = tags.get(TAG_DEPLOYMENT)
    return owner if owner is not None and owner != spec.deployment.name else None


def takeover_change(owner: str, spec: Spec) -> Change:
    return Change(
        KIND,
        spec.storage.bucket,
        "update",
        f"taken over from deployment {owner!r} (needs {FLAG}): {owner!r} keeps running until removed with its "
        f"own configuration ('spotreg down')",
    )


def refuse_unasked(s3: Any, spec: Spec, tags: dict[str, str] | None, *, switch_storage: bool) -> None:
    """Before `up` changes anything: refuse a storage change that was not asked for."""
    if switch_storage:
        return
    owner = None if tags is None else takeover(tags, spec)
    if owner is not None:
        raise OwnershipError(
            KIND,
            spec.storage.bucket,
            f"belongs to the spotreg deployment {owner!r}: a renamed deployment? '{FLAG}' hands it to "
            f"{spec.deployment.name!r} ({owner!r} keeps running until 'spotreg down' with its configuration)",
        )
    holding = [c.name for c in old_buckets(s3, spec) if c.detail.startswith("the deployment's old bucket (its")]
    if holding:
        raise InputError(
            [
                InputProblem(
                    "storage.bucket",
                    spec.storage.bucket,
                    f"the deployment's images are in {', '.join(holding)}: the registry would start empty here; "
                    f"'spotreg up {FLAG}' accepts that (the old bucket is kept), or set storage.bucket back",
                )
            ]
        )
