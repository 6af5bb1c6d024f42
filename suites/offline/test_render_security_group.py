"""Ingress: the registry port from the operators, ACME ports for Let's Encrypt, SSH only when asked."""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

import botocore.session
import pytest
from botocore.validate import validate_parameters
from hypothesis import given, settings

from provisioning import rules
from provisioning.render.security_group import IngressRule, render_ingress_rules, to_ip_permissions
from provisioning.spec_loading import spec_from_mapping
from suites.offline.spec_strategies import example_mapping, valid_spec_mappings


@settings(max_examples=40, deadline=None)
@given(valid_spec_mappings())
def test_ingress_follows_the_spec(mapping: dict[str, Any]) -> None:
    spec = spec_from_mapping(mapping)
    rules_ = render_ingress_rules(spec)
    keys = [(r.protocol, r.from_port, r.to_port, r.cidr) for r in rules_]
    assert len(keys) == len(set(keys)), "no duplicates"
    assert rules_ == render_ingress_rules(spec), "deterministic"
    assert all(r.protocol == "tcp" and r.from_port == r.to_port for r in rules_)
    by_port: dict[int, list[str]] = {}
    for rule in rules_:
        by_port.setdefault(rule.from_port, []).append(rule.cidr)
    ssh = list(dict.fromkeys(spec.network.ssh_cidrs)) if spec.network.ssh else []
    operators = list(dict.fromkeys(spec.network.operator_cidrs))
    if spec.tls.mode == "letsencrypt":
        expected = {80: ["0.0.0.0/0", "::/0"], 443: operators}
    else:
        expected = {spec.registry.port: operators}
    for cidr in ssh:
        if cidr not in expected.setdefault(22, []):
            expected[22].append(cidr)
    assert by_port == expected
    assert not any(r.from_port == 22 and r.cidr in rules.WORLD_CIDRS for r in rules_ if r.description.endswith("SSH"))


def test_example_rules() -> None:
    spec = spec_from_mapping(
        example_mapping(network={"operator_cidrs": ["203.0.113.7/32", "2001:db8::/48"], "ssh": True,
                                 "ssh_cidrs": ["198.51.100.0/24"]})
    )  # fmt: skip
    assert render_ingress_rules(spec) == (
        IngressRule("tcp", 443, 443, "203.0.113.7/32", "spotreg registry from an operator network"),
        IngressRule("tcp", 443, 443, "2001:db8::/48", "spotreg registry from an operator network"),
        IngressRule("tcp", 22, 22, "198.51.100.0/24", "spotreg SSH"),
    )


def test_ssh_closed_by_default() -> None:
    spec = spec_from_mapping(example_mapping())
    assert all(rule.from_port != 22 for rule in render_ingress_rules(spec))


def test_letsencrypt_opens_80_to_the_internet_and_443_to_the_operators_only() -> None:
    spec = spec_from_mapping(
        example_mapping(
            tls={"mode": "letsencrypt"}, registry={"port": 5000}, network={"operator_cidrs": ["203.0.113.7/32"]}
        )
    )
    ports = {(r.from_port, r.cidr) for r in render_ingress_rules(spec)}
    assert ports == {(80, "0.0.0.0/0"), (80, "::/0"), (443, "203.0.113.7/32")}  # not registry.port


def test_one_network_for_registry_and_ssh_gets_one_rule_per_port() -> None:
    spec = spec_from_mapping(
        example_mapping(network={"operator_cidrs": ["10.0.0.0/8"], "ssh": True, "ssh_cidrs": ["10.0.0.0/8"]})
    )
    rules = render_ingress_rules(spec)
    assert sorted((r.from_port, r.cidr) for r in rules) == [(22, "10.0.0.0/8"), (443, "10.0.0.0/8")]


def test_ip_permissions_shape_is_what_ec2_accepts() -> None:
    spec = spec_from_mapping(
        example_mapping(network={"operator_cidrs": ["203.0.113.7/32", "2001:db8::/48"], "ssh": True,
                                 "ssh_cidrs": ["198.51.100.0/24"]})
    )  # fmt: skip
    permissions = to_ip_permissions(render_ingress_rules(spec))
    assert permissions == [
        {
            "IpProtocol": "tcp",
            "FromPort": 443,
            "ToPort": 443,
            "IpRanges": [{"CidrIp": "203.0.113.7/32", "Description": "spotreg registry from an operator network"}],
            "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/48", "Description": "spotreg registry from an operator network"}],
        },
        {
            "IpProtocol": "tcp",
            "FromPort": 22,
            "ToPort": 22,
            "IpRanges": [{"CidrIp": "198.51.100.0/24", "Description": "spotreg SSH"}],
        },
    ]
    model = botocore.session.get_session().get_service_model("ec2")
    shape = model.operation_model("AuthorizeSecurityGroupIngress").input_shape
    assert shape is not None
    validate_parameters({"GroupId": "sg-0123456789abcdef0", "IpPermissions": permissions}, shape)


@pytest.mark.parametrize("cidr", ["10.0.0.0/8", "2001:db8::/32", "::/0", "0.0.0.0/0"])
def test_ipv6_ranges_go_to_ipv6(cidr: str) -> None:
    [entry] = to_ip_permissions([IngressRule("tcp", 1, 1, cidr, "d")])
    key = "Ipv6Ranges" if ipaddress.ip_network(cidr).version == 6 else "IpRanges"
    assert list(entry) == ["IpProtocol", "FromPort", "ToPort", key]


def test_descriptions_use_only_characters_ec2_allows() -> None:
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789. _-:/()#,@[]+=&;{}!$*")
    spec = spec_from_mapping(example_mapping(tls={"mode": "letsencrypt"}, registry={"port": 5000},
                                             network={"ssh": True, "ssh_cidrs": ["10.0.0.0/8"]}))  # fmt: skip
    for rule in render_ingress_rules(spec):
        assert set(rule.description) <= allowed and len(rule.description) <= 255


def test_rule_is_frozen() -> None:
    rule = IngressRule("tcp", 1, 1, "10.0.0.0/8", "d")
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule.cidr = "0.0.0.0/0"  # type: ignore[misc]
