"""AWS tags (spotreg's own and the user's, as every API spells them) and AWS error codes: shared by every step."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from provisioning.errors import aws_error_code, is_denied_code
from provisioning.names import TAG_DEPLOYMENT, TAG_EXPIRES, TAG_RUN


def aws_tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """{"k": "v"} -> [{"Key": "k", "Value": "v"}], sorted by key."""
    return [{"Key": key, "Value": value} for key, value in sorted(tags.items())]


def tag_dict(tags: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    """[{"Key": "k", "Value": "v"}] -> {"k": "v"}."""
    return {str(tag["Key"]): str(tag.get("Value", "")) for tag in tags or ()}


def ec2_tag_specifications(resource_types: Iterable[str], tags: Mapping[str, str]) -> list[dict[str, Any]]:
    return [{"ResourceType": kind, "Tags": aws_tags(tags)} for kind in resource_types]


def deployment_filter(deployment: str) -> list[dict[str, Any]]:
    """EC2 filter for this deployment's resources."""
    return [{"Name": f"tag:{TAG_DEPLOYMENT}", "Values": [deployment]}]


def belongs_to(tags: Mapping[str, str], deployment: str) -> bool:
    return tags.get(TAG_DEPLOYMENT) == deployment


def missing_tags(actual: Mapping[str, str], wanted: Mapping[str, str]) -> dict[str, str]:
    """The wanted tags that are absent or differ (extra tags someone else set are left alone)."""
    return {key: value for key, value in wanted.items() if actual.get(key) != value}


def stale_spotreg_tags(actual: Mapping[str, str], wanted: Mapping[str, str]) -> list[str]:
    """spotreg's own run/expiry tags that are set but no longer wanted (a test run re-used by a real one)."""
    return [key for key in (TAG_RUN, TAG_EXPIRES) if key in actual and key not in wanted]


def error_code(error: ClientError) -> str:
    return aws_error_code(error)


def is_denied(error: ClientError) -> bool:
    return is_denied_code(aws_error_code(error))


def is_code(error: BaseException, *codes: str) -> bool:
    return isinstance(error, ClientError) and error_code(error) in codes
