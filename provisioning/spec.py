"""The one validated, immutable description of a deployment, loaded from TOML plus SPOTREG_* overrides."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_serializer, field_validator

from provisioning import rules
from provisioning.cross_field_rules import REDACTED, spec_problems
from provisioning.errors import InputError, InputProblem

ENV_PREFIX = "SPOTREG_"
ENV_NESTING = "__"

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
        return any(c in rules.WORLD_CIDRS for c in self.network.operator_cidrs)


Problem = InputProblem


class SpecError(InputError, ValueError):
    """All the problems of a configuration at once (exit code 2)."""

    def __init__(self, problems: list[InputProblem]) -> None:
        super().__init__(problems)
        self.args = ("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems),)


# Pydantic puts the branch of a union or validator chain in an error's location: not a key of ours.
_NOT_KEYS = frozenset({"str", "none", "int", "float", "bool", "decimal", "literal"})


def _field_path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1] += f"[{item}]"
        elif item not in _NOT_KEYS and "[" not in item:
            parts.append(item)
    return ".".join(parts) or "(top level)"


def _problems_of(error: ValidationError) -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False):
        message = str(item["msg"]).removeprefix("Value error, ")
        value = item.get("input")
        if str(item["loc"][-1]) == "password":
            value = REDACTED
        if item["type"] == "extra_forbidden":
            message = "unknown key (a typo?): see examples/spotreg.toml for the keys spotreg reads"
        elif item["type"] == "missing":
            value, message = None, "required, and missing"
        problems.append(Problem(_field_path(item["loc"]), value, message))
    # Unions (`X | None`) report one error per branch: keep the first of each field. A list whose items
    # were refused is also "too short" after validation: the item's problem says it all.
    unique: dict[str, Problem] = {}
    for problem in problems:
        if not any(other.field.startswith(f"{problem.field}[") for other in problems):
            unique.setdefault(problem.field, problem)
    return list(unique.values())


def spec_from_mapping(data: Mapping[str, Any]) -> Spec:
    """Validate a mapping into a Spec, or raise SpecError listing every problem."""
    try:
        spec = Spec.model_validate(data)
    except ValidationError as error:
        raise SpecError(_problems_of(error)) from None
    problems = spec_problems(spec)
    if problems:
        raise SpecError(problems)
    return spec


def _list_fields() -> set[tuple[str, str]]:
    found = set()
    for section, info in Spec.model_fields.items():
        model = info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            for key, field in model.model_fields.items():
                if "tuple" in str(field.annotation):
                    found.add((section, key))
    return found


def apply_env_overrides(data: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """SPOTREG_SECTION__KEY=value overrides [section] key; lists are comma-separated."""
    merged: dict[str, Any] = {k: dict(v) if isinstance(v, Mapping) else v for k, v in data.items()}
    list_fields = _list_fields()
    for variable, raw in sorted(environ.items()):
        if not variable.startswith(ENV_PREFIX) or ENV_NESTING not in variable:
            continue
        shown = REDACTED if "password" in variable.lower() else raw
        path = variable.removeprefix(ENV_PREFIX).lower().split(ENV_NESTING)
        if len(path) != 2:
            raise SpecError([Problem(variable, shown, "overrides are SPOTREG_<SECTION>__<KEY>, one level deep")])
        section, key = path
        value: Any = [v.strip() for v in raw.split(",") if v.strip()] if (section, key) in list_fields else raw
        merged.setdefault(section, {})
        if not isinstance(merged[section], dict):
            raise SpecError([Problem(variable, shown, f"{section} is not a section")])
        merged[section][key] = value
    return merged


def load_spec(path: Path, environ: Mapping[str, str] | None = None) -> Spec:
    """Read a spec file, apply SPOTREG_* overrides, validate."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError([Problem("--config", str(path), "the file does not exist")]) from None
    except tomllib.TOMLDecodeError as error:
        raise SpecError([Problem("--config", str(path), f"not valid TOML: {error}")]) from None
    return spec_from_mapping(apply_env_overrides(data, os.environ if environ is None else environ))
