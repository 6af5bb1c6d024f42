"""The Spec contract: valid mappings validate, each broken rule is refused naming its field, all at once."""

from __future__ import annotations

import copy
import string
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from provisioning import rules
from provisioning.spec import Spec
from provisioning.spec_loading import SpecError, apply_env_overrides, load_spec, spec_from_mapping
from suites.offline.spec_strategies import (
    bucket_names,
    example_mapping,
    mode_matrix,
    valid_spec_mappings,
)

EXAMPLE_TOML = Path(__file__).resolve().parents[2] / "examples" / "spotreg.toml"
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def set_field(mapping: dict[str, Any], path: str, value: Any) -> None:
    """Set "section.key" or "registry.users[0].key" in a mapping; "tags" replaces the whole table."""
    if path == "tags":
        mapping["tags"] = value
        return
    section, key = path.split(".", 1)
    target = mapping.setdefault(section, {})
    if key.startswith("users[0]."):
        target = target["users"][0]
        key = key.removeprefix("users[0].")
    target[key] = value


def fields_named(error: SpecError) -> list[str]:
    return [problem.field for problem in error.problems]


def names_field(error: SpecError, path: str) -> bool:
    return any(f == path or f.startswith((f"{path}.", f"{path}[")) for f in fields_named(error))


# --- every valid mapping validates ---------------------------------------------------------------


@FAST
@given(valid_spec_mappings())
def test_every_valid_mapping_validates(mapping: dict[str, Any]) -> None:
    spec = spec_from_mapping(mapping)
    assert spec.deployment.name == mapping["deployment"]["name"]
    assert spec.registry.version_major in (2, 3)


@FAST
@given(valid_spec_mappings(nasty=True))
def test_every_nasty_but_valid_mapping_validates(mapping: dict[str, Any]) -> None:
    spec_from_mapping(mapping)


@pytest.mark.parametrize("modes", sorted(mode_matrix()), ids="-".join)
def test_mode_matrix_is_valid(modes: tuple[str, str]) -> None:
    spec = spec_from_mapping(mode_matrix()[modes])
    assert (spec.tls.mode, spec.dns.mode) == modes


def test_example_file_loads() -> None:
    spec = load_spec(EXAMPLE_TOML, environ={})
    assert spec.storage.bucket == "example-spotreg-images"
    assert spec.registry.version_major == 2


# --- each broken rule is refused, naming its field -------------------------------------------------


def _text_not(rule: Any, alphabet: str = string.printable, max_size: int = 20) -> st.SearchStrategy[str]:
    def refused(value: str) -> bool:
        try:
            rule(value)
        except ValueError:
            return True
        return False

    return st.text(alphabet, max_size=max_size).filter(refused)


BAD_BUCKETS = [
    "ab", "a" * 64, "My_Bucket", "UPPER", "under_score", "-leading", "trailing-", ".leading", "trailing.",
    "a..b", "a.-b", "a-.b", "192.168.1.1", "xn--punycode", "sthree-bucket", "amzn-s3-demo-bucket",
    "b-s3alias", "b--ol-s3", "b.mrap", "b--x-s3", "b--table-s3", "spa ce", "ünï",
]  # fmt: skip
BAD_IMAGES = [
    "", "Registry:2", "registry:", "registry:-2", "registry@sha256:abc", "registry:2 ", " registry:2",
    "registry:2;reboot", "registry:$(id)", "a" * 256, "registry//x:2", "-registry:2",
]  # fmt: skip
BAD_HOSTNAMES = [
    "localhost", "Reg.example.com", "-a.example.com", "a-.example.com", "a_b.example.com", "example.123",
    "a..b.com", "a" * 64 + ".com", ".".join(["a" * 60] * 5), "reg.example.com.", " reg.example.com", "reg.ex ample.com",
]  # fmt: skip
LITERAL_PASSWORDS = ["hunter2", "s3cr3t!", "env:", "env:1BAD", "ssm:relative/path", "ssm:/", "env:A B"]
HOST_BIT_CIDRS = st.builds(lambda a, p: f"{a}/{p}", st.ip_addresses(v=4), st.integers(0, 31)).filter(
    lambda c: rules_refuses(rules.cidr, c)
)


def rules_refuses(rule: Any, value: str) -> bool:
    try:
        rule(value)
    except ValueError:
        return True
    return False


# (field, curated invalid values each tried on every mode's mapping, generated ones on random mappings)
INVALID: list[tuple[str, list[Any], st.SearchStrategy[Any] | None]] = [
    ("deployment.name", ["", "a", "Example", "1abc", "abc-", "a_b", "a" * 33], _text_not(rules.deployment_name)),
    ("deployment.region", ["us-east-9", "mars-1", "US-EAST-1", "", " us-east-1"],
     st.text(max_size=12).filter(lambda r: r not in rules.known_regions())),
    ("storage.bucket", BAD_BUCKETS, bucket_names().map(lambda b: b.upper() + "_")),
    ("storage.rootdirectory",
     ["", "registry", "/a//b", "/a/../b", "/a/./b", "/..", "/.", "/a b", "/a\\b", "/" + "a" * 255, "/ü", "/$x"], None),
    ("storage.redirect", ["maybe", "2", 2, [True]], None),
    ("storage.versioning", ["maybe", 3], None),
    ("instance.types", [[], ["T3.micro"], ["t3"], ["t3.micro "], ["x.y"], ["t3.micro"] * 11], None),
    ("instance.max_price", [0, -1, "-0.5", 100.01, 1e9, "0.0000001", 1e-7, "abc", "NaN"],
     st.one_of(st.decimals(max_value=0, allow_nan=False, places=3).map(str),
               st.decimals(min_value=Decimal("100.000001"), max_value=10**9, places=6).map(str))),
    ("instance.interruption", ["hibernate", "Stop", ""], None),
    ("instance.subnet_id", ["subnet-xyz", "sg-0123456789abcdef0", "subnet-0123", "", "SUBNET-01234567"], None),
    ("instance.volume_gb", [7, 0, -1, 1025, 8.5], st.one_of(st.integers(max_value=7), st.integers(min_value=1025))),
    ("network.operator_cidrs",
     [[], ["garbage"], ["10.0.0.0/33"], ["2001:DB8::/32"], ["2001:db8:0::/48"], ["10.0.0.0"], ["10.0.0.1/8"]],
     st.lists(HOST_BIT_CIDRS, min_size=1, max_size=3)),
    ("network.ssh", ["maybe", 7], None),
    ("network.ssh_cidrs", [["0.0.0.0/0"], ["::/0"], ["10.0.0.0/8", "0.0.0.0/0"], ["10.0.0.1/8"], ["x"]], None),
    ("dns.mode", ["godaddy", "Route53", ""], None),
    ("dns.hostname", BAD_HOSTNAMES, None),
    ("dns.zone_id", ["z123", "Zabc", "", "Z" + "A" * 32, "/hostedzone/Z123"], None),
    ("dns.password", LITERAL_PASSWORDS, _text_not(rules.secret_ref, max_size=30).filter(bool)),
    ("tls.mode", ["acme", "self-signed", ""], None),
    ("tls.email", ["nobody", "a@b", "@example.com", "a b@example.com", "a@example.c"], None),
    ("tls.proxy_image", BAD_IMAGES, None),
    ("registry.image", BAD_IMAGES, None),
    ("registry.major", [1, 4, 0, "three"], None),
    ("registry.port", [0, -1, 65536], st.one_of(st.integers(max_value=0), st.integers(min_value=65536))),
    ("registry.users", [[]], None),
    ("registry.users[0].name", ["CI", "1ci", "a" * 33, "", "c i", "ci:x", "ci\tx"], None),
    ("registry.users[0].password", LITERAL_PASSWORDS, _text_not(rules.secret_ref, max_size=30).filter(bool)),
    ("registry.health_interval_seconds", [59, 10, 0, 86401],
     st.one_of(st.integers(max_value=59), st.integers(min_value=86401))),
    ("tags", [{"aws:created-by": "me"}, {"AWS:x": "v"}, {"spotreg:deployment": "x"}, {"a#b": "v"}, {"k": "v#"},
              {"k": "x" * 257}, {"": "v"}, {"k" * 129: "v"}, {"k": 5}], None),
]  # fmt: skip


def assert_refused(mapping: dict[str, Any], path: str, value: Any) -> None:
    set_field(mapping, path, value)
    with pytest.raises(SpecError) as caught:
        spec_from_mapping(mapping)
    assert names_field(caught.value, path), (path, value, caught.value.problems)
    problem = caught.value.problems[0]
    assert problem.rule and str(problem).startswith(problem.field)


@pytest.mark.parametrize(("path", "curated", "generated"), INVALID, ids=[path for path, *_ in INVALID])
def test_each_invalid_value_is_refused_naming_its_field(
    path: str, curated: list[Any], generated: st.SearchStrategy[Any] | None
) -> None:
    for base in mode_matrix().values():
        for value in curated:
            assert_refused(copy.deepcopy(base), path, copy.deepcopy(value))
    if generated is None:
        return

    @settings(max_examples=10, deadline=None)
    @given(valid_spec_mappings(), generated)
    def check(mapping: dict[str, Any], value: Any) -> None:
        assert_refused(mapping, path, value)

    check()


SECTIONS: dict[str, type[BaseModel]] = {
    name: info.annotation
    for name, info in Spec.model_fields.items()
    if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
}
# spec._field_path drops location parts that begin with these (see test_unknown_key_named_like_a_type_prefix).
_PATH_QUIRK_PREFIXES = ("function-", "constrained-", "union[", "str", "none")


@pytest.mark.parametrize("where", ["(top level)", *SECTIONS, "registry.users[0]"])
def test_unknown_keys_are_refused_at_each_level(where: str) -> None:
    keys = st.from_regex(r"[a-z][a-z_]{0,15}", fullmatch=True).filter(lambda k: not k.startswith(_PATH_QUIRK_PREFIXES))

    @settings(max_examples=10, deadline=None)
    @given(valid_spec_mappings(), keys)
    def check(mapping: dict[str, Any], key: str) -> None:
        if where == "(top level)":
            known, target, expected = set(Spec.model_fields), mapping, key
        elif where == "registry.users[0]":
            known, target, expected = {"name", "password"}, mapping["registry"]["users"][0], f"{where}.{key}"
        else:
            known, target, expected = set(SECTIONS[where].model_fields), mapping.setdefault(where, {}), f"{where}.{key}"
        if key in known:
            return
        target[key] = "x"
        with pytest.raises(SpecError) as caught:
            spec_from_mapping(mapping)
        assert expected in fields_named(caught.value)
        assert "unknown key" in str(caught.value)

    check()


# --- several problems at once ----------------------------------------------------------------------


def test_ssh_open_to_world_and_bad_bucket_are_both_reported() -> None:
    mapping = example_mapping(network={"ssh": True, "ssh_cidrs": ["0.0.0.0/0"]}, storage={"bucket": "My_Bucket"})
    with pytest.raises(SpecError) as caught:
        spec_from_mapping(mapping)
    fields = fields_named(caught.value)
    assert "storage.bucket" in fields
    assert "network.ssh_cidrs[0]" in fields
    assert "My_Bucket" in str(caught.value) and "0.0.0.0/0" in str(caught.value)


_INDEPENDENT = [(p, st.sampled_from(c)) for p, c, _ in INVALID if not p.startswith("registry.users")]


@settings(max_examples=40, deadline=None)
@given(valid_spec_mappings(), st.data())
def test_any_two_broken_fields_are_reported_together(mapping: dict[str, Any], data: st.DataObject) -> None:
    (path_a, values_a), (path_b, values_b) = data.draw(
        st.lists(st.sampled_from(_INDEPENDENT), min_size=2, max_size=2, unique_by=lambda c: c[0])
    )
    set_field(mapping, path_a, copy.deepcopy(data.draw(values_a)))
    set_field(mapping, path_b, copy.deepcopy(data.draw(values_b)))
    with pytest.raises(SpecError) as caught:
        spec_from_mapping(mapping)
    assert names_field(caught.value, path_a) and names_field(caught.value, path_b), caught.value.problems


def test_cross_field_rules_are_reported_together() -> None:
    mapping = example_mapping(network={"operator_cidrs": ["0.0.0.0/0"], "ssh": True}, tls={"mode": "none"})
    mapping["dns"] = {"mode": "namecheap"}
    with pytest.raises(SpecError) as caught:
        spec_from_mapping(mapping)
    assert {"tls.mode", "dns.hostname", "dns.password", "network.ssh_cidrs"} <= set(fields_named(caught.value))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"tls": {"mode": "letsencrypt"}, "dns": {"mode": "none", "hostname": None, "zone_id": None}}, "dns.hostname"),
        ({"network": {"ssh": True, "ssh_cidrs": ["10.0.0.0/8"]}, "registry": {"port": 22}}, "registry.port"),
        ({"network": {"operator_cidrs": ["10.0.0.0/8", "10.0.0.0/8"]}}, "network.operator_cidrs"),
        ({"network": {"ssh_cidrs": ["10.0.0.0/8"]}}, "network.ssh"),
        ({"dns": {"zone_id": None}}, "dns.zone_id"),
        ({"registry": {"image": "registry:latest"}}, "registry.major"),
        ({"registry": {"image": "registry:4.0.0"}}, "registry.image"),
        ({"registry": {"users": [{"name": "ci", "password": "env:A"}, {"name": "ci", "password": "env:B"}]}},
         "registry.users"),
    ],
)  # fmt: skip
def test_each_cross_field_rule_names_the_field_to_change(changes: dict[str, dict[str, Any]], field: str) -> None:
    mapping = example_mapping(**changes)
    for name, section in changes.items():
        for key, value in section.items():
            if value is None:
                mapping[name].pop(key, None)
    with pytest.raises(SpecError) as caught:
        spec_from_mapping(mapping)
    assert field in fields_named(caught.value)


# --- environment overrides -------------------------------------------------------------------------


@FAST
@given(valid_spec_mappings(), bucket_names())
def test_env_override_replaces_a_key(mapping: dict[str, Any], bucket: str) -> None:
    original = copy.deepcopy(mapping)
    spec = spec_from_mapping(apply_env_overrides(mapping, {"SPOTREG_STORAGE__BUCKET": bucket}))
    assert spec.storage.bucket == bucket
    assert mapping == original  # the input is not modified


def test_env_overrides_split_lists_and_reach_tags_and_booleans() -> None:
    environ = {
        "SPOTREG_INSTANCE__TYPES": " t4g.small, t3.small ,",
        "SPOTREG_NETWORK__OPERATOR_CIDRS": "10.0.0.0/8,2001:db8::/32",
        "SPOTREG_STORAGE__REDIRECT": "false",
        "SPOTREG_TAGS__OWNER": "me",
        "SPOTREG_PASSWORD_CI": "not an override: no section",
        "HOME": "/root",
    }
    spec = spec_from_mapping(apply_env_overrides(example_mapping(), environ))
    assert spec.instance.types == ("t4g.small", "t3.small")
    assert spec.network.operator_cidrs == ("10.0.0.0/8", "2001:db8::/32")
    assert spec.storage.redirect is False
    assert spec.tags == {"team": "platform", "owner": "me"}


def test_env_overrides_apply_in_load_spec() -> None:
    spec = load_spec(EXAMPLE_TOML, environ={"SPOTREG_DEPLOYMENT__NAME": "other"})
    assert spec.deployment.name == "other"


@pytest.mark.parametrize(
    ("variable", "field"),
    [
        ("SPOTREG_STORAGE__BUKCET", "storage.bukcet"),
        ("SPOTREG_NOPE__KEY", "nope"),
        ("SPOTREG_STORAGE__BUCKET__DEEP", "SPOTREG_STORAGE__BUCKET__DEEP"),
        ("SPOTREG_INSTANCE__TYPES", "instance.types"),
    ],
)
def test_unknown_or_bad_env_overrides_are_errors(variable: str, field: str) -> None:
    value = "" if variable == "SPOTREG_INSTANCE__TYPES" else "x"
    with pytest.raises(SpecError) as caught:
        spec_from_mapping(apply_env_overrides(example_mapping(), {variable: value}))
    assert field in fields_named(caught.value)


def test_missing_or_broken_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path / "missing.toml", environ={})
    broken = tmp_path / "broken.toml"
    broken.write_text("[storage\n", encoding="utf-8")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(broken, environ={})


# --- immutability ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("owner", "attribute", "value"),
    [
        ("", "storage", None),
        ("storage", "bucket", "other-bucket"),
        ("network", "operator_cidrs", ("0.0.0.0/0",)),
        ("registry", "port", 80),
        ("dns", "mode", "none"),
        ("tls", "mode", "none"),
        ("instance", "types", ("t3.micro",)),
        ("deployment", "name", "other"),
    ],
)
def test_spec_is_immutable(owner: str, attribute: str, value: Any) -> None:
    spec = spec_from_mapping(example_mapping())
    target = getattr(spec, owner) if owner else spec
    with pytest.raises(ValueError, match="frozen"):
        setattr(target, attribute, value)
    with pytest.raises(TypeError):
        spec.network.operator_cidrs[0] = "0.0.0.0/0"  # type: ignore[index]
    assert spec == spec_from_mapping(example_mapping())


# --- holes found in review, fixed; kept so they stay fixed ------------------------------------------


def test_tags_cannot_be_mutated() -> None:
    spec = spec_from_mapping(example_mapping())
    with pytest.raises(TypeError):
        spec.tags["owner"] = "me"  # type: ignore[index]


@pytest.mark.parametrize(
    "path",
    ["storage.bucket", "storage.rootdirectory", "dns.hostname", "registry.users[0].name", "registry.image"],
)
def test_trailing_newline_is_refused(path: str) -> None:
    mapping = example_mapping()
    current = {
        "storage.bucket": "example-spotreg-images",
        "storage.rootdirectory": "/registry",
        "dns.hostname": "registry.example.com",
        "registry.users[0].name": "ci",
        "registry.image": "docker.io/library/registry:2.8.3",
    }[path]
    set_field(mapping, path, current + "\n")
    with pytest.raises(SpecError):
        spec_from_mapping(mapping)


def test_duplicate_instance_types_name_the_types_field() -> None:
    with pytest.raises(SpecError) as caught:
        spec_from_mapping(example_mapping(instance={"types": ["t3.micro", "t3.micro"]}))
    assert "instance.types" in fields_named(caught.value)


def test_unknown_key_named_like_a_type_prefix() -> None:
    with pytest.raises(SpecError) as caught:
        spec_from_mapping(example_mapping(storage={"strict": True}))
    assert "storage.strict" in fields_named(caught.value)


def test_spec_serialises_to_json_with_its_tags() -> None:
    spec = spec_from_mapping(example_mapping())
    dumped = spec.model_dump(mode="json")
    assert dumped["tags"] == dict(spec.tags)
    assert spec_from_mapping(dumped) == spec


def test_a_secret_written_into_the_spec_is_not_echoed() -> None:
    mapping = example_mapping(registry={"users": [{"name": "ci", "password": "Hunter2-SuperSecret"}]})
    with pytest.raises(SpecError) as caught:
        spec_from_mapping(mapping)
    assert "registry.users[0].password" in fields_named(caught.value)
    assert "Hunter2" not in str(caught.value)


def test_a_secret_under_spotregs_own_parameter_path_is_refused() -> None:
    name = example_mapping()["deployment"]["name"]
    mapping = example_mapping(registry={"users": [{"name": "ci", "password": f"ssm:/spotreg/{name}/users/ci"}]})
    with pytest.raises(SpecError) as caught:
        spec_from_mapping(mapping)
    assert "registry.users[0].password" in fields_named(caught.value)


def test_more_ingress_rules_than_a_security_group_holds_are_refused() -> None:
    operators = [f"10.{i}.0.0/16" for i in range(40)]
    ssh = [f"172.16.{i}.0/24" for i in range(21)]
    with pytest.raises(SpecError) as caught:
        spec_from_mapping(example_mapping(network={"operator_cidrs": operators, "ssh": True, "ssh_cidrs": ssh}))
    assert "network.operator_cidrs" in fields_named(caught.value)
    assert "quota" in str(caught.value)
    spec_from_mapping(example_mapping(network={"operator_cidrs": operators, "ssh": True, "ssh_cidrs": ssh[:20]}))


def test_a_domain_the_host_name_does_not_end_in_is_refused() -> None:
    with pytest.raises(SpecError) as caught:
        spec_from_mapping(example_mapping(dns={"domain": "example.org"}))
    assert "dns.domain" in fields_named(caught.value)
    spec_from_mapping(example_mapping(dns={"domain": "example.com"}))
