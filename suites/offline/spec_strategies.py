"""Hypothesis strategies for spec mappings (what ``tomllib`` hands to ``spec_from_mapping``).

- ``valid_spec_mappings()``: mappings every one of which validates; realistic values, usable
  against moto and local S3 servers;
- ``valid_spec_mappings(nasty=True)``: still valid, but every free-text field holds the nastiest
  values the rules admit (trailing newlines, Unicode word characters, spaces, '=', '@', '+', ...),
  for the tests that show the renderers keep values inert. Not for AWS-facing tests;
- ``mode_matrix()``: one valid mapping per (tls.mode, dns.mode) pair the rules allow, deterministic;
- ``example_mapping()``: a small valid mapping to modify in tests.
"""

from __future__ import annotations

import copy
import ipaddress
import operator
import string
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from typing import Any, Literal

from hypothesis import strategies as st

from provisioning import rules

TLS_MODES = ("letsencrypt", "selfsigned", "none")
DNS_MODES = ("route53", "namecheap", "eip", "none")
INSTANCE_TYPES = (
    "t4g.micro", "t4g.small", "t3.micro", "t3a.small", "t2.nano", "m7g.medium",
    "c7gn.large", "m5.large", "a1.medium", "r6i.xlarge", "c6a.2xlarge", "m5d.metal",
)  # fmt: skip
_LOWER = string.ascii_lowercase
_LOWER_DIGITS = _LOWER + string.digits
_UPPER_DIGITS = string.ascii_uppercase + string.digits


def _admitted(rule: Callable[[str], str]) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        try:
            rule(value)
        except ValueError:
            return False
        return True

    return check


def _maybe_newline(strategy: st.SearchStrategy[str], nasty: bool) -> st.SearchStrategy[str]:
    """The rules refuse a trailing newline now (fullmatch): nasty values stay within the rules."""
    return strategy


def _word(first: str, rest: str, max_rest: int) -> st.SearchStrategy[str]:
    return st.builds(operator.add, st.sampled_from(first), st.text(rest, max_size=max_rest))


# Strategies are built once per flavour (hypothesis validates a strategy when first drawn from).


@cache
def deployment_names(nasty: bool = False) -> st.SearchStrategy[str]:
    return _maybe_newline(_word(_LOWER, _LOWER_DIGITS + "-", 31), nasty).filter(_admitted(rules.deployment_name))


@cache
def regions() -> st.SearchStrategy[str]:
    return st.sampled_from(sorted(rules.known_regions()))


@st.composite
def _bucket_name(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.text(_LOWER_DIGITS, min_size=1, max_size=12), min_size=1, max_size=6))
    separators = draw(st.lists(st.sampled_from(["-", ".", "--"]), min_size=len(parts), max_size=len(parts)))
    return parts[0] + "".join(sep + part for sep, part in zip(separators, parts[1:], strict=False))


@cache
def bucket_names(nasty: bool = False) -> st.SearchStrategy[str]:
    return _maybe_newline(_bucket_name(), nasty).filter(_admitted(rules.bucket_name))


@cache
def root_directories(nasty: bool = False) -> st.SearchStrategy[str]:
    segment = st.text(string.ascii_letters + string.digits + "._-", min_size=1, max_size=20)
    built = st.builds(
        lambda segments, slash: "/" + "/".join(segments) + ("/" if slash and segments else ""),
        st.lists(segment.filter(lambda s: s not in (".", "..")), max_size=5),
        st.booleans(),
    )
    return _maybe_newline(built, nasty).filter(_admitted(rules.root_directory))


@cache
def instance_type_lists(nasty: bool = False) -> st.SearchStrategy[list[str]]:
    names = st.sampled_from(INSTANCE_TYPES)
    if nasty:
        odd = st.builds(
            lambda family, digits, suffix, size: f"{family}{digits}{suffix}.{size}",
            st.text(_LOWER, min_size=1, max_size=3),
            st.integers(0, 99),
            st.text(_LOWER + "-", max_size=3),
            st.text(_LOWER_DIGITS, min_size=1, max_size=8),
        )
        names = st.one_of(names, _maybe_newline(odd, nasty).filter(_admitted(rules.instance_type)))
    return st.lists(names, min_size=1, max_size=4, unique=True)


@cache
def max_prices() -> st.SearchStrategy[Any]:
    price = st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(100), places=6)
    return st.one_of(st.none(), price.map(str), price.map(float).filter(lambda f: 0 < f <= 100))


@cache
def subnet_ids(nasty: bool = False) -> st.SearchStrategy[str]:
    return _maybe_newline(st.text("0123456789abcdef", min_size=8, max_size=17).map("subnet-".__add__), nasty)


def _network(version: Literal[4, 6], max_prefix: int) -> st.SearchStrategy[str]:
    return st.builds(
        lambda a, p: str(ipaddress.ip_network(f"{a}/{p}", strict=False)),
        st.ip_addresses(v=version),
        st.integers(1, max_prefix),
    )


@cache
def cidrs(*, world: bool = True) -> st.SearchStrategy[str]:
    """Canonical networks (no host bits), IPv4 and IPv6; with ``world``, 0.0.0.0/0 and ::/0 too."""
    v4, v6 = _network(4, 32), _network(6, 128)
    options = [v4, v4, v6] + ([st.sampled_from(sorted(rules.WORLD_CIDRS))] if world else [])
    return st.one_of(*options)


@cache
def host_names(nasty: bool = False) -> st.SearchStrategy[str]:
    label = st.text(_LOWER_DIGITS + "-", min_size=1, max_size=20).filter(
        lambda s: not s.startswith("-") and not s.endswith("-")
    )
    tld = _word(_LOWER, _LOWER_DIGITS, 8)
    built = st.builds(lambda labels, last: ".".join([*labels, last]), st.lists(label, min_size=1, max_size=4), tld)
    return _maybe_newline(built, nasty).filter(_admitted(rules.hostname))


@cache
def zone_ids(nasty: bool = False) -> st.SearchStrategy[str]:
    return _maybe_newline(st.text(_UPPER_DIGITS, min_size=1, max_size=31).map("Z".__add__), nasty)


@cache
def secret_refs(nasty: bool = False) -> st.SearchStrategy[str]:
    env = _word(string.ascii_letters + "_", string.ascii_letters + string.digits + "_", 30).map("env:".__add__)
    ssm = st.text(string.ascii_letters + string.digits + "_./-", min_size=1, max_size=60).map("ssm:/".__add__)
    return _maybe_newline(st.one_of(env, ssm), nasty)


@cache
def emails(nasty: bool = False) -> st.SearchStrategy[str]:
    local = st.text(string.ascii_letters + string.digits + "._%+-", min_size=1, max_size=20)
    built = st.builds(lambda user, host: f"{user}@{host}", local, host_names())
    return _maybe_newline(built, nasty).filter(_admitted(rules.email))


_COMPONENT = st.builds(
    lambda a, sep, b: a + (sep + b if b else ""),
    st.text(_LOWER_DIGITS, min_size=1, max_size=8),
    st.sampled_from([".", "_", "__", "-", "--"]),
    st.text(_LOWER_DIGITS, max_size=8),
)
_IMAGE_NAMES = st.builds(
    lambda d, parts: d + "/".join(parts),
    st.sampled_from(["", "docker.io/", "ghcr.io/", "registry.example.com:5000/", "Local-Host:5000/"]),
    st.lists(_COMPONENT, min_size=1, max_size=3),
)
_DIGESTS = st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda h: f"@sha256:{h}")
# Unicode letters and digits are word characters: the rules' \w admits them in tags and image tags.
_WORD_CHARS = st.characters(categories=["Lu", "Ll", "Lt", "Lo", "Nd"], max_codepoint=0x2FFFF)


@cache
def image_refs(nasty: bool = False) -> st.SearchStrategy[str]:
    """Any image reference (the proxy image)."""
    if nasty:
        tag = st.text(st.one_of(_WORD_CHARS, st.sampled_from("_.-")), min_size=1, max_size=20)
    else:
        tag = st.text(_LOWER_DIGITS + ".-", min_size=1, max_size=15)
    built = st.builds(
        lambda name, t, digest: name + (f":{t}" if t else "") + digest,
        _IMAGE_NAMES,
        st.one_of(st.none(), tag),
        st.one_of(st.just(""), _DIGESTS),
    )
    return _maybe_newline(built, nasty).filter(_admitted(rules.image_reference))


@st.composite
def _registry_image(draw: st.DrawFn, nasty: bool) -> tuple[str, int | None]:
    name = draw(_IMAGE_NAMES)
    major = draw(st.sampled_from([2, 3]))
    kind = draw(st.sampled_from(["tag", "tag+digest", "digest", "other-tag"]))
    suffix = draw(st.sampled_from(["", "-rc.1", "-alpine"])) if nasty else ""
    minor, patch = draw(st.integers(0, 9)), draw(st.integers(0, 9))
    if kind == "tag":
        image, given = f"{name}:{major}.{minor}.{patch}{suffix}", None
    elif kind == "tag+digest":
        image, given = f"{name}:{major}.{minor}{draw(_DIGESTS)}", None
    elif kind == "digest":
        image, given = f"{name}{draw(_DIGESTS)}", major
    else:
        image, given = f"{name}:{draw(st.sampled_from(['latest', 'stable', 'edge']))}", major
    if given is None and draw(_BOOLS):
        given = major  # saying it as well is fine
    return image, given


@cache
def registry_images(nasty: bool = False) -> st.SearchStrategy[tuple[str, int | None]]:
    """(image, major): the major is read from a "2.x"/"3.x" tag or, when the tag cannot tell, given."""
    return _registry_image(nasty).filter(lambda pair: _admitted(rules.image_reference)(pair[0]))


@cache
def user_names(nasty: bool = False) -> st.SearchStrategy[str]:
    return _maybe_newline(_word(_LOWER + "_", _LOWER_DIGITS + "_.-", 31), nasty).filter(_admitted(rules.user_name))


def _tag_text(nasty: bool, min_size: int, max_size: int) -> st.SearchStrategy[str]:
    ascii_chars = string.ascii_letters + string.digits + " _.:/=+@-"
    chars = st.one_of(st.sampled_from(ascii_chars), _WORD_CHARS) if nasty else st.sampled_from(ascii_chars)
    return _maybe_newline(st.text(chars, min_size=min_size, max_size=max_size), nasty)


@cache
def tag_keys(nasty: bool = False) -> st.SearchStrategy[str]:
    return _tag_text(nasty, 1, 40).filter(_admitted(rules.tag_key))


@cache
def tag_values(nasty: bool = False) -> st.SearchStrategy[str]:
    return _tag_text(nasty, 0, 60).filter(_admitted(rules.tag_value))


@cache
def _users(nasty: bool) -> st.SearchStrategy[list[dict[str, str]]]:
    user = st.fixed_dictionaries({"name": user_names(nasty), "password": secret_refs(nasty)})
    return st.lists(user, min_size=1, max_size=4, unique_by=lambda u: u["name"])


@cache
def _tags(nasty: bool) -> st.SearchStrategy[dict[str, str]]:
    return st.dictionaries(tag_keys(nasty), tag_values(nasty), max_size=5)


_PORTS = st.integers(1, 65535)
_BOOLS = st.booleans()
_VOLUMES = st.integers(8, 1024)
_INTERVALS = st.integers(60, 86400)
_INTERRUPTIONS = st.sampled_from(["stop", "terminate"])
# Without TLS the operator networks, and always the SSH networks, may not cover the world even together.
_OPERATORS = {
    True: st.lists(cidrs(world=True), min_size=1, max_size=5, unique=True),
    False: st.lists(cidrs(world=False), min_size=1, max_size=5, unique=True).filter(
        lambda cs: not rules.world_covered(cs)
    ),
}
_SSH_CIDRS = st.lists(cidrs(world=False), min_size=1, max_size=3, unique=True).filter(
    lambda cs: not rules.world_covered(cs)
)
_MODES = st.sampled_from([(t, d) for t in TLS_MODES for d in DNS_MODES if (t, d) != ("letsencrypt", "none")])


@st.composite
def valid_spec_mappings(draw: st.DrawFn, nasty: bool = False) -> dict[str, Any]:
    """A mapping ``spec_from_mapping`` accepts: cross-field rules honoured, optional keys left out at random.

    It holds no key its modes ignore (no ``SpecWarning``): the Spec holds every value drawn.
    """

    def maybe(section: dict[str, Any], key: str, strategy: st.SearchStrategy[Any]) -> None:
        if draw(_BOOLS):
            section[key] = draw(strategy)

    tls_mode, dns_mode = draw(_MODES)

    deployment: dict[str, Any] = {"name": draw(deployment_names(nasty))}
    maybe(deployment, "region", regions())

    storage: dict[str, Any] = {"bucket": draw(bucket_names(nasty))}
    maybe(storage, "rootdirectory", root_directories(nasty))
    maybe(storage, "redirect", _BOOLS)
    maybe(storage, "versioning", _BOOLS)

    instance: dict[str, Any] = {}
    maybe(instance, "types", instance_type_lists(nasty))
    maybe(instance, "max_price", max_prices())
    maybe(instance, "interruption", _INTERRUPTIONS)
    maybe(instance, "subnet_id", subnet_ids(nasty))
    maybe(instance, "volume_gb", _VOLUMES)

    operators = draw(_OPERATORS[tls_mode != "none"])
    network: dict[str, Any] = {"operator_cidrs": operators}
    if draw(_BOOLS):
        network["ssh"] = True
        network["ssh_cidrs"] = draw(_SSH_CIDRS)
    else:
        maybe(network, "ssh", st.just(False))

    dns: dict[str, Any] = {}
    if dns_mode != "none" or draw(_BOOLS):
        dns["mode"] = dns_mode
    if dns_mode in ("route53", "namecheap") or tls_mode == "letsencrypt":
        dns["hostname"] = draw(host_names(nasty))
    else:
        maybe(dns, "hostname", host_names(nasty))
    if dns_mode == "route53":
        dns["zone_id"] = draw(zone_ids(nasty))
    if dns_mode == "namecheap":
        dns["password"] = draw(secret_refs(nasty))
        labels = dns["hostname"].split(".")
        maybe(dns, "domain", st.integers(2, len(labels)).map(lambda n: ".".join(labels[-n:])))

    tls: dict[str, Any] = {}
    if tls_mode != "selfsigned" or draw(_BOOLS):
        tls["mode"] = tls_mode
    if tls_mode == "letsencrypt":
        maybe(tls, "email", emails(nasty))
        maybe(tls, "proxy_image", image_refs(nasty))

    image, major = draw(registry_images(nasty))
    users = draw(_users(nasty))
    registry: dict[str, Any] = {"image": image, "users": users}
    if major is not None:
        registry["major"] = major
    # the rules keep 22 for SSH when it is open; behind the Let's Encrypt proxy the port is not read
    ssh_open = bool(network.get("ssh"))
    if tls_mode != "letsencrypt":
        maybe(registry, "port", _PORTS.filter(lambda p: not (ssh_open and p == 22)))
    maybe(registry, "health_interval_seconds", _INTERVALS)

    mapping: dict[str, Any] = {
        "deployment": deployment,
        "storage": storage,
        "network": network,
        "registry": registry,
    }
    for name, section in (("instance", instance), ("dns", dns), ("tls", tls)):
        if len(section) > 0 or draw(_BOOLS):
            mapping[name] = section
    if draw(_BOOLS):
        mapping["tags"] = draw(_tags(nasty))
    return mapping


_EXAMPLE: dict[str, Any] = {
    "deployment": {"name": "example", "region": "us-east-1"},
    "storage": {"bucket": "example-spotreg-images"},
    "network": {"operator_cidrs": ["203.0.113.7/32"]},
    "dns": {"mode": "route53", "hostname": "registry.example.com", "zone_id": "Z0123456789ABCDEFGHIJ"},
    "tls": {"mode": "selfsigned"},
    "registry": {
        "image": "docker.io/library/registry:2.8.3",
        "users": [{"name": "ci", "password": "env:SPOTREG_PASSWORD_CI"}],
    },
    "tags": {"team": "platform"},
}


def example_mapping(**sections: dict[str, Any]) -> dict[str, Any]:
    """A fresh valid mapping; each keyword replaces keys of that section (``tls={"mode": "none"}``)."""
    mapping = copy.deepcopy(_EXAMPLE)
    for name, values in sections.items():
        mapping.setdefault(name, {}).update(copy.deepcopy(values))
    return mapping


def mode_matrix() -> dict[tuple[str, str], dict[str, Any]]:
    """One valid mapping per allowed (tls.mode, dns.mode), keyed by that pair."""
    matrix: dict[tuple[str, str], dict[str, Any]] = {}
    for tls_mode in TLS_MODES:
        for dns_mode in DNS_MODES:
            if tls_mode == "letsencrypt" and dns_mode == "none":
                continue
            dns: dict[str, Any] = {"mode": dns_mode, "hostname": "registry.example.com"}
            if dns_mode == "route53":
                dns["zone_id"] = "Z0123456789ABCDEFGHIJ"
            if dns_mode == "namecheap":
                dns["password"] = "env:NAMECHEAP_DDNS_PASSWORD"
                dns["domain"] = "example.com"
            mapping = example_mapping(tls={"mode": tls_mode})
            mapping["dns"] = dns
            if tls_mode == "letsencrypt":
                mapping["tls"]["email"] = "ops@example.com"
            matrix[(tls_mode, dns_mode)] = mapping
    return matrix
