"""Ingress rules of the instance's security group (egress stays the default: all outbound)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from provisioning.spec import Spec

INTERNET: tuple[str, str] = ("0.0.0.0/0", "::/0")


@dataclass(frozen=True)
class IngressRule:
    """One allowed inbound flow: a port range from one network."""

    protocol: str
    from_port: int
    to_port: int
    cidr: str
    description: str

    @property
    def is_ipv6(self) -> bool:
        return ipaddress.ip_network(self.cidr).version == 6


def render_ingress_rules(spec: Spec) -> tuple[IngressRule, ...]:
    """The registry from the operators; with Let's Encrypt also 80 from anywhere; SSH only if asked.

    With ``tls.mode = "letsencrypt"`` the registry listens on loopback behind the proxy: operators
    connect to the proxy's 443, and ACME validates by HTTP-01 on port 80 (the Caddyfile turns TLS-ALPN
    off), the one port the whole internet needs. The proxy also admits only ``operator_cidrs``.
    """
    rules: list[IngressRule] = []
    port = 443 if spec.tls.mode == "letsencrypt" else spec.registry.port
    if spec.tls.mode == "letsencrypt":
        rules.extend(IngressRule("tcp", 80, 80, cidr, "spotreg 80 for ACME HTTP-01") for cidr in INTERNET)
    rules.extend(
        IngressRule("tcp", port, port, cidr, "spotreg registry from an operator network")
        for cidr in spec.network.operator_cidrs
    )
    if spec.network.ssh:
        rules.extend(IngressRule("tcp", 22, 22, cidr, "spotreg SSH") for cidr in spec.network.ssh_cidrs)
    return _unique(rules)


def _unique(rules: Iterable[IngressRule]) -> tuple[IngressRule, ...]:
    """Drop repeats of the same (protocol, ports, network), keeping the first."""
    seen: set[tuple[str, int, int, str]] = set()
    kept: list[IngressRule] = []
    for rule in rules:
        key = (rule.protocol, rule.from_port, rule.to_port, rule.cidr)
        if key not in seen:
            seen.add(key)
            kept.append(rule)
    return tuple(kept)


def to_ip_permissions(rules: Iterable[IngressRule]) -> list[dict[str, Any]]:
    """EC2 ``IpPermissions``: one entry per (protocol, ports), networks in rule order."""
    grouped: dict[tuple[str, int, int], dict[str, Any]] = {}
    for rule in _unique(rules):
        entry = grouped.setdefault(
            (rule.protocol, rule.from_port, rule.to_port),
            {"IpProtocol": rule.protocol, "FromPort": rule.from_port, "ToPort": rule.to_port},
        )
        if rule.is_ipv6:
            entry.setdefault("Ipv6Ranges", []).append({"CidrIpv6": rule.cidr, "Description": rule.description})
        else:
            entry.setdefault("IpRanges", []).append({"CidrIp": rule.cidr, "Description": rule.description})
    return list(grouped.values())
