"""What spotreg reads back from AWS and hands from step to step: an address, a parameter, an instance."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from provisioning.changes import Change
from provisioning.errors import LaunchAttempt
from provisioning.placement import Choice
from provisioning.tags import tag_dict


@dataclass(frozen=True)
class Address:
    allocation_id: str
    public_ip: str
    association_id: str | None
    instance_id: str | None
    tags: Mapping[str, str]

    @classmethod
    def of(cls, item: Mapping[str, Any]) -> Address:
        return cls(
            allocation_id=item["AllocationId"],
            public_ip=item["PublicIp"],
            association_id=item.get("AssociationId"),
            instance_id=item.get("InstanceId"),
            tags=tag_dict(item.get("Tags")),
        )


@dataclass(frozen=True)
class StoredParameter:
    name: str
    value: str = field(repr=False)
    type: str
    version: int


@dataclass(frozen=True)
class InstanceFacts:
    """What spotreg reads back of a live instance."""

    instance_id: str
    state: str
    instance_type: str
    zone: str
    public_ip: str | None
    spot_request_id: str | None
    security_groups: tuple[str, ...]
    profile_arn: str | None
    tags: Mapping[str, str]

    @classmethod
    def of(cls, item: Mapping[str, Any]) -> InstanceFacts:
        return cls(
            instance_id=item["InstanceId"],
            state=item["State"]["Name"],
            instance_type=item["InstanceType"],
            zone=item.get("Placement", {}).get("AvailabilityZone", ""),
            public_ip=item.get("PublicIpAddress"),
            spot_request_id=item.get("SpotInstanceRequestId"),
            # moto lists groups given through NetworkInterfaces only on the interface: read both
            security_groups=tuple(
                sorted(
                    {g["GroupId"] for g in item.get("SecurityGroups", [])}
                    | {g["GroupId"] for eni in item.get("NetworkInterfaces", []) for g in eni.get("Groups", [])}
                )
            ),
            profile_arn=(item.get("IamInstanceProfile") or {}).get("Arn"),
            tags=tag_dict(item.get("Tags")),
        )


@dataclass(frozen=True)
class Launched:
    """The instance `up` settled on, where, and why (with every failed attempt before it)."""

    instance: InstanceFacts
    choice: Choice | None
    attempts: tuple[LaunchAttempt, ...]
    change: Change

    @property
    def reason(self) -> str:
        if self.choice is None:
            return "kept the running instance"
        failed = [a for a in self.attempts if a.error_code is not None]
        tried = f" after {len(failed)} failed attempts ({'; '.join(map(str, failed))})" if failed else ""
        return f"{self.choice.instance_type} in {self.choice.zone}: {self.choice.reason}{tried}"
