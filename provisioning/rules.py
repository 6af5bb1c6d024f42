"""Field rules for the spec: each check returns the value or raises ValueError stating the rule."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from functools import cache

import boto3

from provisioning.names import TAG_PREFIX

_BUCKET_CHARS = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_BUCKET_BAD_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_BAD_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_INSTANCE_TYPE = re.compile(r"^(?P<family>[a-z]+\d+[a-z-]*)\.(?P<size>[a-z0-9]+)$")
_ARM_FAMILY = re.compile(r"^(a1|[a-z]+\d+[a-z]*g[a-z]*)$")
_USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
_SECRET_REF = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]{0,127}|ssm:/[A-Za-z0-9_./-]{1,1000})$")
_ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,31}$")
_SUBNET = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,63}$")
_TAG_CHARS = re.compile(r"^[\w .:/=+@-]*$", re.ASCII)
_ROOTDIR = re.compile(r"^/[A-Za-z0-9._/-]{0,254}$")
# distribution/reference grammar, restricted to what a registry name may hold.
_REF_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_REF_DOMAIN = rf"(?:{_REF_LABEL}(?:\.{_REF_LABEL})*(?::\d{{1,5}})?/)"
_REF_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
_IMAGE_REF = re.compile(
    rf"^(?P<name>{_REF_DOMAIN}?{_REF_PATH})(?::(?P<tag>[\w][\w.-]{{0,127}}))?(?:@(?P<digest>sha256:[0-9a-f]{{64}}))?$",
    re.ASCII,
)

WORLD_CIDRS = frozenset({"0.0.0.0/0", "::/0"})


def bucket_name(value: str) -> str:
    """S3 general-purpose bucket naming rules."""
    if not _BUCKET_CHARS.fullmatch(value):
        raise ValueError(
            "S3 bucket names are 3-63 characters of lowercase letters, digits, dots and hyphens, "
            "beginning and ending with a letter or digit"
        )
    if ".." in value or ".-" in value or "-." in value:
        raise ValueError("S3 bucket names may not hold '..', '.-' or '-.'")
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        pass
    else:
        raise ValueError("S3 bucket names may not be formatted as an IP address")
    if value.startswith(_BUCKET_BAD_PREFIXES) or value.endswith(_BUCKET_BAD_SUFFIXES):
        raise ValueError(
            f"S3 reserves bucket names beginning with {', '.join(_BUCKET_BAD_PREFIXES)} "
            f"or ending with {', '.join(_BUCKET_BAD_SUFFIXES)}"
        )
    return value


def deployment_name(value: str) -> str:
    """Names resources and tags: short, lowercase, DNS-safe."""
    if not _NAME.fullmatch(value):
        raise ValueError(
            "a deployment name is 2-32 characters of lowercase letters, digits and hyphens, "
            "beginning with a letter and ending with a letter or digit"
        )
    return value


@cache
def known_regions() -> frozenset[str]:
    """Regions botocore knows for EC2 (read from its bundled endpoint data, no network)."""
    session = boto3.session.Session()
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("ec2", partition_name=partition))
    return frozenset(regions)


def region(value: str) -> str:
    if value not in known_regions():
        raise ValueError("must be an AWS region this botocore knows (for example us-east-1, eu-west-1)")
    return value


def hostname(value: str) -> str:
    """RFC 1123 host name, lowercase, fully qualified."""
    labels = value.split(".")
    if len(value) > 253 or len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(
            "must be a fully qualified RFC 1123 host name: dot-separated labels of 1-63 lowercase "
            "letters, digits and hyphens, not beginning or ending with a hyphen, 253 characters at most"
        )
    if labels[-1].isdigit():
        raise ValueError("a host name's last label may not be all digits (RFC 1123)")
    return value


def cidr(value: str) -> str:
    """A network in CIDR notation with no host bits set."""
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as error:
        raise ValueError(f"must be a network in CIDR notation with no host bits set ({error})") from None
    if str(network) != value:
        raise ValueError(f"must be written in canonical CIDR form ({network})")
    return value


def world_covered(cidrs: Iterable[str]) -> tuple[str, ...]:
    """The world networks (``0.0.0.0/0``, ``::/0``) that ``cidrs`` cover between them: by effect, so
    ``0.0.0.0/1`` with ``128.0.0.0/1`` covers ``0.0.0.0/0`` as much as ``0.0.0.0/0`` itself does."""
    networks = [ipaddress.ip_network(c) for c in cidrs]
    v4 = [n for n in networks if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in networks if isinstance(n, ipaddress.IPv6Network)]
    covered = []
    if ipaddress.IPv4Network("0.0.0.0/0") in ipaddress.collapse_addresses(v4):
        covered.append("0.0.0.0/0")
    if ipaddress.IPv6Network("::/0") in ipaddress.collapse_addresses(v6):
        covered.append("::/0")
    return tuple(covered)


def not_world(value: str) -> str:
    if value in WORLD_CIDRS:
        raise ValueError("SSH is never opened to the whole internet: name the operator's networks")
    return value


def not_world_together(values: tuple[str, ...]) -> tuple[str, ...]:
    """SSH networks that between them cover all of IPv4 or IPv6 open SSH to the world as much as
    ``0.0.0.0/0`` does."""
    covered = world_covered(values)
    if covered:
        raise ValueError(
            f"together these networks cover {' and '.join(covered)}, the whole internet: SSH is never opened "
            "to the whole internet; name the operator's networks"
        )
    return values


def instance_type(value: str) -> str:
    if not _INSTANCE_TYPE.fullmatch(value):
        raise ValueError("must be an EC2 instance type such as t4g.micro or t3.small")
    return value


def architecture_of(instance_type_name: str) -> str:
    """arm64 for Graviton families (a1, t4g, m7g, c7gn, ...), x86_64 for the rest."""
    match = _INSTANCE_TYPE.fullmatch(instance_type_name)
    if not match:
        raise ValueError(f"not an instance type: {instance_type_name!r}")
    return "arm64" if _ARM_FAMILY.fullmatch(match["family"]) else "x86_64"


def user_name(value: str) -> str:
    if not _USER.fullmatch(value):
        raise ValueError(
            "a registry user name is 1-32 characters of lowercase letters, digits, '_', '.', '-', "
            "beginning with a letter or '_'"
        )
    return value


def secret_ref(value: str) -> str:
    if not _SECRET_REF.fullmatch(value):
        raise ValueError(
            "secrets never live in the spec: write 'env:VARIABLE' or 'ssm:/parameter/name', not the secret"
        )
    return value


def zone_id(value: str) -> str:
    if not _ZONE_ID.fullmatch(value):
        raise ValueError("must be a Route 53 hosted zone id such as Z0123456789ABCDEFGHIJ")
    return value


def subnet_id(value: str) -> str:
    if not _SUBNET.fullmatch(value):
        raise ValueError("must be a subnet id such as subnet-0123456789abcdef0")
    return value


def email(value: str) -> str:
    if not _EMAIL.fullmatch(value):
        raise ValueError("must be an e-mail address (user@example.com)")
    return value


def root_directory(value: str) -> str:
    if not _ROOTDIR.fullmatch(value) or "//" in value or "/../" in f"{value}/" or "/./" in f"{value}/":
        raise ValueError("must be an absolute key prefix of letters, digits, '.', '_', '-' and '/' segments")
    return value


def image_reference(value: str) -> str:
    if len(value) > 255 or not _IMAGE_REF.fullmatch(value):
        raise ValueError("must be an image reference such as registry:2.8.3 or ghcr.io/org/registry@sha256:<64 hex>")
    return value


def image_tag(value: str) -> str | None:
    match = _IMAGE_REF.fullmatch(value)
    return match["tag"] if match else None


def tag_key(value: str) -> str:
    if not 1 <= len(value) <= 128 or not _TAG_CHARS.fullmatch(value):
        raise ValueError("tag keys are 1-128 characters of letters, digits, spaces and _ . : / = + - @")
    if value.lower().startswith(("aws:", TAG_PREFIX)):
        raise ValueError(f"tag keys beginning with 'aws:' or '{TAG_PREFIX}' are reserved")
    return value


def tag_value(value: str) -> str:
    if len(value) > 256 or not _TAG_CHARS.fullmatch(value):
        raise ValueError("tag values are up to 256 characters of letters, digits, spaces and _ . : / = + - @")
    return value
