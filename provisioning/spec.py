"""The one validated, immutable description of a deployment, loaded from TOML plus SPOTREG_* overrides."""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_serializer, field_validator

from provisioning import names, rules
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


SECURITY_GROUP_RULES_PER_FAMILY = 60
REDACTED = "<not shown: a secret>"


def _rules_per_family(spec: Spec) -> dict[int, int]:
    """Ingress rules the security group will hold, per IP version."""
    counts = {4: 0, 6: 0}
    for cidr in (*spec.network.operator_cidrs, *spec.network.ssh_cidrs):
        counts[ipaddress.ip_network(cidr).version] += 1
    if spec.tls.mode == "letsencrypt":
        counts = {family: count + 2 for family, count in counts.items()}
    return counts


def _cross_field_problems(spec: Spec) -> list[Problem]:
    """Rules that tie fields together; each names the field the operator should change."""
    problems: list[Problem] = []
    reg, tls, dns, net = spec.registry, spec.tls, spec.dns, spec.network

    def add(field: str, value: object, rule: str) -> None:
        problems.append(Problem(field, value, rule))

    tag = rules.image_tag(reg.image)
    if reg.major is None:
        if tag is None or not (tag.split(".")[0].isascii() and tag.split(".")[0].isdigit()):
            add("registry.major", None, f"cannot tell the registry's major version from {reg.image!r}: set 2 or 3")
        elif int(tag.split(".")[0]) not in (2, 3):
            add("registry.image", reg.image, "spotreg renders configuration for registry majors 2 and 3 only")
    if spec.open_to_world and tls.mode == "none":
        add("tls.mode", tls.mode, "a registry open to 0.0.0.0/0 or ::/0 needs TLS; 'none' is for named CIDRs")
    if tls.mode == "letsencrypt" and (dns.mode == "none" or dns.hostname is None):
        add("dns.hostname", dns.hostname, "letsencrypt needs a public host name kept current by dns.mode")
    if dns.mode in ("route53", "namecheap") and dns.hostname is None:
        add("dns.hostname", None, f"dns.mode = {dns.mode!r} needs the host name to update")
    if dns.mode == "route53" and dns.zone_id is None:
        add("dns.zone_id", None, "dns.mode = 'route53' needs the hosted zone id")
    if dns.domain is not None and dns.hostname is not None and not (
        dns.hostname == dns.domain or dns.hostname.endswith(f".{dns.domain}")
    ):
        add("dns.domain", dns.domain, f"must be dns.hostname ({dns.hostname}) or a domain it ends in")
    if dns.mode == "namecheap" and dns.password is None:
        add("dns.password", None, "dns.mode = 'namecheap' needs the dynamic DNS password reference")
    if net.ssh and not net.ssh_cidrs:
        add("network.ssh_cidrs", net.ssh_cidrs, "network.ssh = true needs the networks SSH is opened to")
    if not net.ssh and net.ssh_cidrs:
        add("network.ssh", net.ssh, "network.ssh_cidrs is set but SSH is off: set ssh = true or drop the CIDRs")
    for family, quota in _rules_per_family(spec).items():
        if quota > SECURITY_GROUP_RULES_PER_FAMILY:
            add(
                "network.operator_cidrs",
                net.operator_cidrs,
                f"{quota} IPv{family} ingress rules (operator and SSH networks) exceed a security group's "
                f"default quota of {SECURITY_GROUP_RULES_PER_FAMILY}: name fewer, wider networks",
            )
    owned = f"{names.parameter_prefix(spec)}/"
    refs = [(f"registry.users[{i}].password", u.password) for i, u in enumerate(reg.users)]
    refs += [("dns.password", dns.password)] if dns.password else []
    for field, ref in refs:
        if ref.startswith(f"ssm:{owned}"):
            add(field, REDACTED, f"{owned} is spotreg's own parameter path: keep your secret elsewhere")
    if len({u.name for u in reg.users}) != len(reg.users):
        add("registry.users", [u.name for u in reg.users], "each user name may appear once")
    if net.ssh and reg.port == 22:
        add("registry.port", reg.port, "port 22 is SSH's when network.ssh = true")
    return problems


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
    problems = _cross_field_problems(spec)
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
