"""The metadata tree of one instance, built from moto's record of it, and finding a path in it.

A node is a leaf (text or bytes), a directory (keys of sub-directories end with ``/``), or either one
computed only when a request reaches it. Leaves whose value moto's record lacks are left out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeAlias

VERSIONS = ("2009-04-04", "2016-09-02", "2018-09-24", "2021-03-23", "latest")
#: the MAC address answered when moto's record has no network interface (a locally administered one)
FALLBACK_MAC = "02:00:00:00:00:01"

#: a tree node: a leaf (text or bytes), a directory (keys of sub-directories end with "/"), or
#: either one computed only when a request reaches it (None: absent)
Node: TypeAlias = "str | bytes | dict[str, Node] | Callable[[], Node | None]"


def iso(moment: datetime | float) -> str:
    """``2026-01-02T03:04:05Z``: the timestamp format of IMDS's JSON leaves."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def json_leaf(document: Mapping[str, Any]) -> str:
    """A JSON leaf laid out as IMDS does (indented, ``"key" : value``)."""
    return json.dumps(document, indent=2, separators=(",", " : "))


def instance_tree(
    reservation: Mapping[str, Any],
    instance: Mapping[str, Any],
    *,
    region: str,
    user_data: bytes | None,
    iam: Node | None,
    identity_document: Node,
    interruption: tuple[str, float] | None,
) -> dict[str, Node]:
    """``/latest/``: ``meta-data/`` from the instance's record, ``dynamic/``, and ``user-data`` if any.

    ``iam`` is the ``iam/`` directory (None without an instance profile); ``interruption`` the
    scheduled (action, moment) that ``spot/instance-action`` announces."""
    leaves = _meta_data(reservation, instance, region)
    if iam is not None:
        leaves["iam/"] = iam
    if interruption is not None:
        action, moment = interruption
        leaves["spot/"] = {"instance-action": json.dumps({"action": action, "time": iso(moment)})}
    root: dict[str, Node] = {
        "dynamic/": {"instance-identity/": {"document": identity_document}},
        "meta-data/": _present(dict(sorted(leaves.items()))),
    }
    if user_data is not None:
        root["user-data"] = user_data
    return root


def _meta_data(reservation: Mapping[str, Any], instance: Mapping[str, Any], region: str) -> dict[str, Node | None]:
    interfaces = instance.get("NetworkInterfaces") or []
    return {
        "ami-id": instance.get("ImageId"),
        "ami-launch-index": _optional_str(instance.get("AmiLaunchIndex")),
        "hostname": instance.get("PrivateDnsName") or None,
        "instance-id": instance["InstanceId"],
        "instance-life-cycle": "spot" if instance.get("InstanceLifecycle") == "spot" else "on-demand",
        "instance-type": instance.get("InstanceType"),
        "local-hostname": instance.get("PrivateDnsName") or None,
        "local-ipv4": instance.get("PrivateIpAddress"),
        "mac": (interfaces[0].get("MacAddress") if interfaces else None) or FALLBACK_MAC,
        "network/": {"interfaces/": {"macs/": _macs(instance)}},
        "placement/": _present(
            {"availability-zone": (instance.get("Placement") or {}).get("AvailabilityZone"), "region": region}
        ),
        "public-hostname": instance.get("PublicDnsName") or None,
        "public-ipv4": instance.get("PublicIpAddress"),
        "reservation-id": reservation.get("ReservationId"),
        "security-groups": "\n".join(g["GroupName"] for g in instance.get("SecurityGroups") or []) or None,
        "services/": {"domain": "amazonaws.com", "partition": "aws"},
    }


def _macs(instance: Mapping[str, Any]) -> dict[str, Node]:
    """``network/interfaces/macs/``: one directory per interface, as cloud-init's network config reads it."""
    interfaces = instance.get("NetworkInterfaces") or [
        {"MacAddress": FALLBACK_MAC, "PrivateIpAddress": instance.get("PrivateIpAddress"), "Attachment": {}}
    ]
    macs: dict[str, Node] = {}
    for interface in interfaces:
        mac = interface.get("MacAddress") or FALLBACK_MAC
        public = (interface.get("Association") or {}).get("PublicIp") or instance.get("PublicIpAddress")
        entries: dict[str, Node | None] = {
            "device-number": str((interface.get("Attachment") or {}).get("DeviceIndex", 0)),
            "interface-id": interface.get("NetworkInterfaceId"),
            "local-ipv4s": interface.get("PrivateIpAddress"),
            "mac": mac,
            "owner-id": interface.get("OwnerId"),
            "public-ipv4s": public,
            "subnet-id": interface.get("SubnetId"),
            "vpc-id": interface.get("VpcId"),
        }
        macs[f"{mac}/"] = _present(entries)
    return macs


def identity_document(instance: Mapping[str, Any], *, account_id: str, region: str) -> str:
    """``dynamic/instance-identity/document``."""
    return json_leaf(
        {
            "accountId": account_id,
            "architecture": instance.get("Architecture") or "x86_64",
            "availabilityZone": (instance.get("Placement") or {}).get("AvailabilityZone"),
            "billingProducts": None,
            "devpayProductCodes": None,
            "marketplaceProductCodes": None,
            "imageId": instance.get("ImageId"),
            "instanceId": instance["InstanceId"],
            "instanceType": instance.get("InstanceType"),
            "kernelId": None,
            "pendingTime": iso(instance["LaunchTime"]) if instance.get("LaunchTime") else None,
            "privateIp": instance.get("PrivateIpAddress"),
            "ramdiskId": None,
            "region": region,
            "version": "2017-09-30",
        }
    )


def iam_info(profile: Mapping[str, Any], now: float) -> str:
    """``iam/info``: the instance profile."""
    return json_leaf(
        {
            "Code": "Success",
            "LastUpdated": iso(now),
            "InstanceProfileArn": profile["Arn"],
            "InstanceProfileId": profile["InstanceProfileId"],
        }
    )


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _present(directory: Mapping[str, Node | None]) -> dict[str, Node]:
    """``directory`` without its entries whose value is absent (None)."""
    return {key: value for key, value in directory.items() if value is not None}


def resolve(tree: dict[str, Node], parts: list[str]) -> str | bytes | dict[str, Node] | None:
    """The node at ``parts`` below ``tree``; a directory is found with or without its slash."""
    node: Node | None = tree
    for part in parts:
        node = _force(node)
        if not isinstance(node, dict):
            return None
        node = node[part] if part in node else node.get(f"{part}/")
    return _force(node)


def _force(node: Node | None) -> str | bytes | dict[str, Node] | None:
    """``node`` computed, if it is computed on demand."""
    while callable(node):
        node = node()
    return node
