"""The spec's rules that tie fields together: each problem names the field the operator should change.

Field by field rules are in ``rules``; these run on a Spec whose every field already passed them.
A key that only a mode not chosen reads (``dns.zone_id`` with ``dns.mode = "eip"``) is not a problem but
a warning (``spec_warnings``), and ``without_ignored`` takes it out of the Spec, so nothing reads it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from pydantic import BaseModel

from provisioning import names
from provisioning.errors import InputProblem as Problem
from provisioning.rules import image_tag, world_covered
from provisioning.spec import Spec

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


def _image_problems(spec: Spec) -> list[Problem]:
    reg = spec.registry
    tag = image_tag(reg.image)
    if reg.major is not None:
        return []
    if tag is None or not (tag.split(".")[0].isascii() and tag.split(".")[0].isdigit()):
        return [
            Problem("registry.major", None, f"cannot tell the registry's major version from {reg.image!r}: set 2 or 3")
        ]
    if int(tag.split(".")[0]) not in (2, 3):
        return [Problem("registry.image", reg.image, "spotreg renders configuration for registry majors 2 and 3 only")]
    return []


def _major_problems(spec: Spec) -> list[Problem]:
    """A given major that contradicts a 2.x/3.x tag would render the other major's configuration."""
    reg = spec.registry
    leading = (image_tag(reg.image) or "").split(".")[0]
    if reg.major is None or leading not in ("2", "3") or int(leading) == reg.major:
        return []
    return [
        Problem(
            "registry.major",
            reg.major,
            f"contradicts the tag of registry.image ({reg.image}, major {leading}): set {leading} or leave it out",
        )
    ]


def _tls_and_dns_problems(spec: Spec) -> list[Problem]:
    tls, dns = spec.tls, spec.dns
    problems = []
    if spec.open_to_world and tls.mode == "none":
        world = " and ".join(world_covered(spec.network.operator_cidrs))
        problems.append(
            Problem(
                "tls.mode",
                tls.mode,
                f"network.operator_cidrs cover {world} (the whole internet, listed or by their union): "
                "a registry open to the world needs TLS; 'none' is for named CIDRs",
            )
        )
    if tls.mode == "letsencrypt" and (dns.mode == "none" or dns.hostname is None):
        problems.append(
            Problem("dns.hostname", dns.hostname, "letsencrypt needs a public host name kept current by dns.mode")
        )
    if dns.mode in ("route53", "namecheap") and dns.hostname is None:
        problems.append(Problem("dns.hostname", None, f"dns.mode = {dns.mode!r} needs the host name to update"))
    if dns.mode == "route53" and dns.zone_id is None:
        problems.append(Problem("dns.zone_id", None, "dns.mode = 'route53' needs the hosted zone id"))
    if (
        dns.domain is not None
        and dns.hostname is not None
        and not (dns.hostname == dns.domain or dns.hostname.endswith(f".{dns.domain}"))
    ):
        problems.append(
            Problem("dns.domain", dns.domain, f"must be dns.hostname ({dns.hostname}) or a domain it ends in")
        )
    if dns.mode == "namecheap" and dns.password is None:
        problems.append(
            Problem("dns.password", None, "dns.mode = 'namecheap' needs the dynamic DNS password reference")
        )
    return problems


def _network_problems(spec: Spec) -> list[Problem]:
    net = spec.network
    problems = []
    if net.ssh and not net.ssh_cidrs:
        problems.append(
            Problem("network.ssh_cidrs", net.ssh_cidrs, "network.ssh = true needs the networks SSH is opened to")
        )
    if not net.ssh and net.ssh_cidrs:
        problems.append(
            Problem("network.ssh", net.ssh, "network.ssh_cidrs is set but SSH is off: set ssh = true or drop the CIDRs")
        )
    for family, quota in _rules_per_family(spec).items():
        if quota > SECURITY_GROUP_RULES_PER_FAMILY:
            problems.append(
                Problem(
                    "network.operator_cidrs",
                    net.operator_cidrs,
                    f"{quota} IPv{family} ingress rules (operator and SSH networks) exceed a security group's "
                    f"default quota of {SECURITY_GROUP_RULES_PER_FAMILY}: name fewer, wider networks",
                )
            )
    return problems


def _user_problems(spec: Spec) -> list[Problem]:
    reg, dns = spec.registry, spec.dns
    problems = []
    owned = f"{names.parameter_prefix(spec)}/"
    refs = [(f"registry.users[{i}].password", u.password) for i, u in enumerate(reg.users)]
    refs += [("dns.password", dns.password)] if dns.password else []
    for field, ref in refs:
        if ref.startswith(f"ssm:{owned}"):
            problems.append(
                Problem(field, REDACTED, f"{owned} is spotreg's own parameter path: keep your secret elsewhere")
            )
    if len({u.name for u in reg.users}) != len(reg.users):
        problems.append(Problem("registry.users", [u.name for u in reg.users], "each user name may appear once"))
    if spec.network.ssh and reg.port == 22:
        problems.append(Problem("registry.port", reg.port, "port 22 is SSH's when network.ssh = true"))
    return problems


def spec_problems(spec: Spec) -> list[Problem]:
    """Rules that tie fields together; each names the field the operator should change."""
    return [
        *_image_problems(spec),
        *_major_problems(spec),
        *_tls_and_dns_problems(spec),
        *_network_problems(spec),
        *_user_problems(spec),
    ]


@dataclass(frozen=True)
class SpecWarning(Problem):
    """A key given in the spec that the chosen modes do not read: spotreg ignores it."""

    def __str__(self) -> str:
        return f"warning: {super().__str__()}"


@dataclass(frozen=True)
class _ModeKey:
    """``section.key`` is read only when ``mode`` (a field of the spec) is one of ``modes``."""

    section: str
    key: str
    mode: str
    modes: tuple[str, ...]
    instead: str = ""


# Kept as warnings, not errors: a user switching modes (often from the environment, where a key cannot
# be removed, only replaced) plausibly keeps the other mode's keys for the way back.
MODE_KEYS = (
    _ModeKey("dns", "zone_id", "dns.mode", ("route53",)),
    _ModeKey("dns", "password", "dns.mode", ("namecheap",)),
    _ModeKey("dns", "domain", "dns.mode", ("namecheap",)),
    _ModeKey("tls", "email", "tls.mode", ("letsencrypt",)),
    _ModeKey("tls", "proxy_image", "tls.mode", ("letsencrypt",)),
    _ModeKey(
        "registry",
        "port",
        "tls.mode",
        ("selfsigned", "none"),
        "; with 'letsencrypt' operators connect to 443 (the proxy) and the registry listens on loopback",
    ),
)


def _section(spec: Spec, name: str) -> BaseModel:
    section = getattr(spec, name)
    assert isinstance(section, BaseModel)
    return section


def _given(section: BaseModel, key: str) -> bool:
    """Whether ``key`` holds something other than its default (a default changes nothing)."""
    default = type(section).model_fields[key].get_default(call_default_factory=True)
    return bool(getattr(section, key) != default)


def _ignored(spec: Spec) -> list[_ModeKey]:
    found = []
    for mode_key in MODE_KEYS:
        mode_section, mode_name = mode_key.mode.split(".")
        if getattr(_section(spec, mode_section), mode_name) not in mode_key.modes and _given(
            _section(spec, mode_key.section), mode_key.key
        ):
            found.append(mode_key)
    return found


def spec_warnings(spec: Spec) -> list[SpecWarning]:
    """Every key the spec gives that its modes do not read, saying which mode reads it."""
    warnings = []
    for mode_key in _ignored(spec):
        mode_section, mode_name = mode_key.mode.split(".")
        current = getattr(_section(spec, mode_section), mode_name)
        value = getattr(_section(spec, mode_key.section), mode_key.key)
        readers = " or ".join(repr(m) for m in mode_key.modes)
        warnings.append(
            SpecWarning(
                f"{mode_key.section}.{mode_key.key}",
                REDACTED if mode_key.key == "password" else value,
                f"ignored: only {mode_key.mode} = {readers} reads it, and it is {current!r}{mode_key.instead}",
            )
        )
    return warnings


def without_ignored(spec: Spec) -> Spec:
    """The spec with every key ``spec_warnings`` names set back to its default: nothing can read it."""
    for mode_key in _ignored(spec):
        section = _section(spec, mode_key.section)
        default = type(section).model_fields[mode_key.key].get_default(call_default_factory=True)
        spec = spec.model_copy(update={mode_key.section: section.model_copy(update={mode_key.key: default})})
    return spec
