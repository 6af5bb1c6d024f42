"""The one validated, immutable description of a deployment (read by spec_loading.py from TOML plus
SPOTREG_* overrides)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_serializer, field_validator

from provisioning import rules

BucketName = Annotated[str, AfterValidator(rules.bucket_name)]
Cidr = Annotated[str, AfterValidator(rules.cidr)]
SshCidr = Annotated[str, AfterValidator(rules.cidr), AfterValidator(rules.not_world)]
HostName = Annotated[str, AfterValidator(rules.hostname)]
InstanceType = Annotated[str, AfterValidator(rules.instance_type)]
SecretRef = Annotated[str, AfterValidator(rules.secret_ref)]
TagKey = Annotated[str, AfterValidator(rules.tag_key)]
TagValue = Annotated[str, AfterValidator(rules.tag_value)]


def _unique(values: tuple[str, ...], what: str) -> tuple[str, ...]:
    if len(set(values)) != len(values):
        raise ValueError(f"each {what} may be listed once")
    return values


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class Deployment(_Section):
    name: Annotated[str, AfterValidator(rules.deployment_name)]
    region: Annotated[str, AfterValidator(rules.region)] = "us-east-1"


class Storage(_Section):
    bucket: BucketName
    rootdirectory: Annotated[str, AfterValidator(rules.root_directory)] = "/registry"
    redirect: bool = True
    versioning: bool = False


class Instance(_Section):
    types: tuple[InstanceType, ...] = Field(default=("t4g.micro", "t3.micro"), min_length=1, max_length=10)
    max_price: Decimal | None = Field(default=None, gt=0, le=100, decimal_places=6)
    interruption: Literal["stop", "terminate"] = "stop"
    subnet_id: Annotated[str, AfterValidator(rules.subnet_id)] | None = None
    volume_gb: int = Field(default=8, ge=8, le=1024)

    @field_validator("types")
    @classmethod
    def _unique_types(cls, types: tuple[str, ...]) -> tuple[str, ...]:
        return _unique(types, "instance type")


class Network(_Section):
    operator_cidrs: tuple[Cidr, ...] = Field(min_length=1, max_length=50)
    ssh: bool = False
    ssh_cidrs: tuple[SshCidr, ...] = Field(default=(), max_length=50)

    @field_validator("operator_cidrs", "ssh_cidrs")
    @classmethod
    def _unique_cidrs(cls, cidrs: tuple[str, ...]) -> tuple[str, ...]:
        return _unique(cidrs, "CIDR")

    @field_validator("ssh_cidrs")
    @classmethod
    def _ssh_not_world_together(cls, cidrs: tuple[str, ...]) -> tuple[str, ...]:
        return rules.not_world_together(cidrs)


class Dns(_Section):
    mode: Literal["route53", "namecheap", "eip", "none"] = "none"
    hostname: HostName | None = None
    zone_id: Annotated[str, AfterValidator(rules.zone_id)] | None = None
    domain: HostName | None = None
    password: SecretRef | None = None


class Tls(_Section):
    mode: Literal["letsencrypt", "selfsigned", "none"] = "selfsigned"
    email: Annotated[str, AfterValidator(rules.email)] | None = None
    proxy_image: Annotated[str, AfterValidator(rules.image_reference)] = "docker.io/library/caddy:2.8.4"


class User(_Section):
    name: Annotated[str, AfterValidator(rules.user_name)]
    password: SecretRef


class Registry(_Section):
    image: Annotated[str, AfterValidator(rules.image_reference)] = "docker.io/library/registry:2.8.3"
    # nginx in front of the registry: checks passwords (caching each verified one briefly) and caches the
    # answers to content-addressed requests (see provisioning.render.front_config).
    front_image: Annotated[str, AfterValidator(rules.image_reference)] = "docker.io/library/nginx:1.28.0-alpine"
    major: Literal[2, 3] | None = None
    port: int = Field(default=443, ge=1, le=65535)
    # The htpasswd lives in one SSM parameter (4096 characters): 40 bcrypt lines of at most 94 fit.
    users: tuple[User, ...] = Field(min_length=1, max_length=40)
    health_interval_seconds: int = Field(default=300, ge=60, le=86400)

    @property
    def version_major(self) -> int:
        """The major version: given, or read from the image tag."""
        if self.major is not None:
            return self.major
        tag = rules.image_tag(self.image) or ""
        return int(tag.split(".")[0])


class Spec(_Section):
    deployment: Deployment
    storage: Storage
    network: Network
    instance: Instance = Instance()
    dns: Dns = Dns()
    tls: Tls = Tls()
    registry: Registry
    tags: Mapping[TagKey, TagValue] = Field(default_factory=dict, max_length=40)

    @field_serializer("tags")
    def _tags_as_dict(self, tags: Mapping[str, str]) -> dict[str, str]:
        return dict(tags)

    def model_post_init(self, context: Any, /) -> None:
        # frozen=True guards the fields; a read-only view guards the one mutable container.
        object.__setattr__(self, "tags", MappingProxyType(dict(self.tags)))

    @property
    def open_to_world(self) -> bool:
        """Whether the operator networks, between them, cover all of IPv4 or all of IPv6."""
        return bool(rules.world_covered(self.network.operator_cidrs))
