"""Pairs of deployments (spec mapping plus the legacy flag of `up`) for the transition tests.

One side varies exactly the dimensions a transition can move, each over a few values that are valid:
DNS mode (route53 at one of two host names, eip with or without a host name, none, namecheap), TLS
mode (selfsigned, none only from named networks, letsencrypt only with a host name kept current),
instance types (subsets of Arm and x86 types), operator CIDRs, SSH, users (strong `env:` passwords,
one of them rotated), the bucket, and legacy mode. Deployment name and region stay fixed: a pair is
two states of one deployment.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from suites.offline.conftest import REGION, ZONE_ID
from suites.offline.spec_strategies import example_mapping

DEPLOYMENT = "transit"
ZONE_NAME = "example.com"
HOSTNAMES = ("registry.example.com", "hub.example.com")
BUCKETS = ("spotreg-transit-images", "spotreg-transit-images-b")
INSTANCE_TYPES = ("t4g.micro", "t3.micro", "t4g.small", "t3a.small")  # Arm and x86
OPERATOR_CIDRS = ("203.0.113.7/32", "198.51.100.0/24", "2001:db8::/32", "0.0.0.0/0")
SSH_CIDRS = ("203.0.113.7/32", "192.0.2.0/28")
WORLD = "0.0.0.0/0"
NAMECHEAP_PASSWORD_ENV = "NAMECHEAP_DDNS_PASSWORD"

# Every `env:` reference a side may use, with a strong password (16+ characters, every class).
ENVIRON: dict[str, str] = {
    "SPOTREG_PW_CI": "Ci-Transit-2024-pass!X",
    "SPOTREG_PW_CI_ROTATED": "Ci-Rotated#2025-Word7q",
    "SPOTREG_PW_DEPLOY": "Deploy$Transit-99-zeta",
    "SPOTREG_PW_ALICE": "Alice&Transit-31-omega",
    NAMECHEAP_PASSWORD_ENV: "Namecheap%Ddns-4711-Kx",
}
USERS: dict[str, tuple[str, ...]] = {
    "ci": ("env:SPOTREG_PW_CI", "env:SPOTREG_PW_CI_ROTATED"),
    "deploy": ("env:SPOTREG_PW_DEPLOY",),
    "alice": ("env:SPOTREG_PW_ALICE",),
}


@dataclass(frozen=True)
class Side:
    """One state of the deployment: the spec mapping and `up`'s legacy_access_key flag."""

    mapping: dict[str, Any] = field(hash=False, compare=True)
    legacy: bool = False

    @property
    def dns_mode(self) -> str:
        return str(self.mapping["dns"]["mode"])

    @property
    def tls_mode(self) -> str:
        return str(self.mapping["tls"]["mode"])

    @property
    def bucket(self) -> str:
        return str(self.mapping["storage"]["bucket"])

    def describe(self) -> str:
        """A one-line summary for failure messages and test ids."""
        m = self.mapping
        dns = m["dns"]["mode"] + (f"@{m['dns']['hostname']}" if "hostname" in m["dns"] else "")
        users = ",".join(f"{u['name']}:{u['password'].removeprefix('env:')}" for u in m["registry"]["users"])
        ssh = ",".join(m["network"].get("ssh_cidrs", ())) if m["network"].get("ssh") else "off"
        return (
            f"dns={dns} tls={m['tls']['mode']} types={','.join(m['instance']['types'])} "
            f"cidrs={','.join(m['network']['operator_cidrs'])} ssh={ssh} users={users} "
            f"bucket={m['storage']['bucket']} legacy={self.legacy}"
        )


def side(
    *,
    dns: str = "none",
    hostname: str | None = None,
    tls: str = "selfsigned",
    types: tuple[str, ...] = ("t4g.micro", "t3.micro"),
    cidrs: tuple[str, ...] = ("203.0.113.7/32",),
    ssh_cidrs: tuple[str, ...] = (),
    users: tuple[tuple[str, str], ...] = (("ci", "env:SPOTREG_PW_CI"),),
    bucket: str = BUCKETS[0],
    legacy: bool = False,
) -> Side:
    """A valid side: each DNS mode gets the fields it needs (route53 and namecheap a host name, the
    default when none is given), letsencrypt an e-mail and the registry behind the proxy on 5000."""
    mapping = example_mapping()
    mapping["deployment"] = {"name": DEPLOYMENT, "region": REGION}
    mapping["storage"] = {"bucket": bucket}
    mapping["instance"] = {"types": list(types)}
    network: dict[str, Any] = {"operator_cidrs": list(cidrs)}
    if ssh_cidrs:
        network.update(ssh=True, ssh_cidrs=list(ssh_cidrs))
    mapping["network"] = network
    if dns in ("route53", "namecheap") and hostname is None:
        hostname = HOSTNAMES[0]
    dns_section: dict[str, Any] = {"mode": dns}
    if hostname is not None:
        dns_section["hostname"] = hostname
    if dns == "route53":
        dns_section["zone_id"] = ZONE_ID
    if dns == "namecheap":
        dns_section.update(domain=ZONE_NAME, password=f"env:{NAMECHEAP_PASSWORD_ENV}")
    mapping["dns"] = dns_section
    mapping["tls"] = {"mode": tls}
    if tls == "letsencrypt":
        mapping["tls"]["email"] = "ops@example.com"
        mapping["registry"]["port"] = 5000
    mapping["registry"]["users"] = [{"name": name, "password": ref} for name, ref in users]
    return Side(copy.deepcopy(mapping), legacy)


DNS_MODES = ("route53", "eip", "none", "namecheap")


# The dimensions a transition moves, in the order they are drawn (a later one's values depend on
# the earlier ones: TLS on the host name, CIDRs on TLS).
DIMENSIONS = ("dns", "tls", "cidrs", "types", "ssh", "users", "bucket", "legacy")


def _draw(draw: st.DrawFn, dimension: str, chosen: dict[str, Any], dns_modes: tuple[str, ...]) -> Any:
    """One dimension's value, valid with what `chosen` already holds."""
    if dimension == "dns":
        mode = draw(st.sampled_from(dns_modes))
        if mode in ("route53", "namecheap"):
            return mode, draw(st.sampled_from(HOSTNAMES))
        if mode == "eip":
            return mode, draw(st.sampled_from((None, *HOSTNAMES)))
        return mode, None
    if dimension == "tls":
        return draw(st.sampled_from(("selfsigned", "none", *(("letsencrypt",) if chosen["dns"][1] else ()))))
    if dimension == "cidrs":
        allowed = [c for c in OPERATOR_CIDRS if not (chosen["tls"] == "none" and c == WORLD)]
        return tuple(draw(st.lists(st.sampled_from(allowed), min_size=1, max_size=3, unique=True)))
    if dimension == "types":
        return tuple(draw(st.lists(st.sampled_from(INSTANCE_TYPES), min_size=1, max_size=3, unique=True)))
    if dimension == "ssh":
        return tuple(draw(st.one_of(st.just([]), st.lists(st.sampled_from(SSH_CIDRS), min_size=1, unique=True))))
    if dimension == "users":
        names = draw(st.lists(st.sampled_from(sorted(USERS)), min_size=1, max_size=3, unique=True))
        return tuple((name, draw(st.sampled_from(USERS[name]))) for name in names)
    if dimension == "bucket":
        return draw(st.sampled_from(BUCKETS))
    return draw(st.booleans())


def _still_valid(dimension: str, chosen: dict[str, Any]) -> bool:
    """Whether a value kept from A still fits B's earlier dimensions (else it is drawn anew)."""
    if dimension == "tls":
        return chosen["tls"] != "letsencrypt" or chosen["dns"][1] is not None
    if dimension == "cidrs":
        return not (chosen["tls"] == "none" and WORLD in chosen["cidrs"])
    return True


def _side(chosen: dict[str, Any]) -> Side:
    return side(
        dns=chosen["dns"][0],
        hostname=chosen["dns"][1],
        tls=chosen["tls"],
        types=chosen["types"],
        cidrs=chosen["cidrs"],
        ssh_cidrs=chosen["ssh"],
        users=chosen["users"],
        bucket=chosen["bucket"],
        legacy=chosen["legacy"],
    )


@st.composite
def sides(draw: st.DrawFn, dns_modes: tuple[str, ...] = DNS_MODES) -> Side:
    """A valid side, varying exactly the dimensions listed in the module's docstring."""
    chosen: dict[str, Any] = {}
    for dimension in DIMENSIONS:
        chosen[dimension] = _draw(draw, dimension, chosen, dns_modes)
    return _side(chosen)


@st.composite
def pairs(draw: st.DrawFn, first_dns_mode: str | None = None) -> tuple[Side, Side]:
    """Two sides of one deployment: the state `up A` made and the one `up B` asks for. B is A with a
    non-empty set of dimensions drawn anew (all of them at most), so that a failure shrinks to the
    one dimension that moved; a kept value B's new ones make invalid is drawn anew too. With
    `first_dns_mode`, A's DNS mode is that one."""
    first = DNS_MODES if first_dns_mode is None else (first_dns_mode,)
    a: dict[str, Any] = {}
    for dimension in DIMENSIONS:
        a[dimension] = _draw(draw, dimension, a, first)
    moved = draw(st.sets(st.sampled_from(DIMENSIONS), min_size=1))
    b: dict[str, Any] = {}
    for dimension in DIMENSIONS:
        b[dimension] = a[dimension]
        if dimension in moved or not _still_valid(dimension, b):
            b[dimension] = _draw(draw, dimension, b, DNS_MODES)
    return _side(a), _side(b)


# The pairs that always run: each moves one dimension (the id says which) from a common start.
FIXED_PAIRS: dict[str, tuple[Side, Side]] = {
    "route53-to-eip": (side(dns="route53"), side(dns="eip")),
    "route53-host-renamed": (side(dns="route53", hostname=HOSTNAMES[0]), side(dns="route53", hostname=HOSTNAMES[1])),
    "eip-to-none": (side(dns="eip"), side(dns="none")),
    "none-to-eip": (side(dns="none"), side(dns="eip")),
    "namecheap-to-route53": (side(dns="namecheap"), side(dns="route53")),
    "selfsigned-to-no-tls": (side(tls="selfsigned"), side(tls="none")),
    "no-tls-to-selfsigned": (side(tls="none"), side(tls="selfsigned", cidrs=(WORLD,))),
    "letsencrypt-to-selfsigned": (side(dns="route53", tls="letsencrypt"), side(dns="route53", tls="selfsigned")),
    "legacy-on-to-off": (side(legacy=True), side(legacy=False)),
    "legacy-off-to-on": (side(legacy=False), side(legacy=True)),
    "bucket-changed": (side(bucket=BUCKETS[0]), side(bucket=BUCKETS[1])),
    "users-changed": (
        side(users=(("ci", "env:SPOTREG_PW_CI"), ("alice", "env:SPOTREG_PW_ALICE"))),
        side(users=(("ci", "env:SPOTREG_PW_CI_ROTATED"), ("deploy", "env:SPOTREG_PW_DEPLOY"))),
    ),
    "instance-types-changed": (side(types=("t4g.micro",)), side(types=("t3.micro", "t3a.small"))),
    "cidrs-and-ssh-changed": (
        side(cidrs=("203.0.113.7/32", "2001:db8::/32"), ssh_cidrs=SSH_CIDRS),
        side(cidrs=("198.51.100.0/24",)),
    ),
}
