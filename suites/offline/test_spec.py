"""The Spec contract: valid mappings validate, each broken rule is refused naming its field, all at once."""

from __future__ import annotations

import copy
import ipaddress
import string
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from provisioning import rules
from provisioning.cross_field_rules import REDACTED
from provisioning.spec import Spec
from provisioning.spec_loading import SpecError, SpecWarning, apply_env_overrides, load_spec, spec_from_mapping
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
        "SPOTREG_TAGS__Owner": "me",
        "SPOTREG_PASSWORD_CI": "not an override: no section",
        "HOME": "/root",
    }
    spec = spec_from_mapping(apply_env_overrides(example_mapping(), environ))
    assert spec.instance.types == ("t4g.small", "t3.small")
    assert spec.network.operator_cidrs == ("10.0.0.0/8", "2001:db8::/32")
    assert spec.storage.redirect is False
    assert spec.tags == {"team": "platform", "Owner": "me"}  # a tag's key keeps its case


def test_env_overrides_apply_in_load_spec() -> None:
    spec = load_spec(EXAMPLE_TOML, environ={"SPOTREG_DEPLOYMENT__NAME": "other"})
    assert spec.deployment.name == "other"


@pytest.mark.parametrize(
    ("variable", "field"),
    [
        ("SPOTREG_STORAGE__BUKCET", "storage.bukcet"),
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
    namecheap = mode_matrix()[("selfsigned", "namecheap")]
    with pytest.raises(SpecError) as caught:
        spec_from_mapping(merged(namecheap, dns={"domain": "example.org"}))
    assert "dns.domain" in fields_named(caught.value)
    assert spec_from_mapping(merged(namecheap, dns={"domain": "example.com"})).dns.domain == "example.com"


# --- keys of a mode not chosen: a warning that says they are ignored, and the Spec does not hold them --


def merged(mapping: dict[str, Any], **sections: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``mapping`` with keys of sections replaced (a value None removes the key)."""
    result = copy.deepcopy(mapping)
    for name, values in sections.items():
        for key, value in values.items():
            if value is None:
                result.setdefault(name, {}).pop(key, None)
            else:
                result.setdefault(name, {})[key] = copy.deepcopy(value)
    return result


def read(mapping: dict[str, Any]) -> tuple[Spec, list[SpecWarning]]:
    warnings: list[SpecWarning] = []
    return spec_from_mapping(mapping, warnings), warnings


# (modes, the key and its value, the mode that reads it): the key given while another mode is chosen.
IGNORED: list[tuple[tuple[str, str], str, Any, str]] = [
    (("selfsigned", "eip"), "dns.zone_id", "Z0123456789ABCDEFGHIJ", "dns.mode = 'route53'"),
    (("selfsigned", "none"), "dns.zone_id", "Z0123456789ABCDEFGHIJ", "dns.mode = 'route53'"),
    (("letsencrypt", "namecheap"), "dns.zone_id", "Z0123456789ABCDEFGHIJ", "dns.mode = 'route53'"),
    (("selfsigned", "route53"), "dns.password", "env:NAMECHEAP_DDNS_PASSWORD", "dns.mode = 'namecheap'"),
    (("none", "eip"), "dns.password", "ssm:/ddns/password", "dns.mode = 'namecheap'"),
    (("selfsigned", "route53"), "dns.domain", "example.com", "dns.mode = 'namecheap'"),
    (("selfsigned", "eip"), "dns.domain", "example.org", "dns.mode = 'namecheap'"),  # would break its rule
    (("selfsigned", "route53"), "tls.email", "ops@example.com", "tls.mode = 'letsencrypt'"),
    (("none", "none"), "tls.email", "ops@example.com", "tls.mode = 'letsencrypt'"),
    (("selfsigned", "eip"), "tls.proxy_image", "docker.io/library/caddy:2.9.0", "tls.mode = 'letsencrypt'"),
    (("letsencrypt", "route53"), "registry.port", 5000, "tls.mode = 'selfsigned' or 'none'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("modes", "path", "value", "reader"), IGNORED, ids=[f"{p}-{'-'.join(m)}" for m, p, *_ in IGNORED]
)
def test_a_key_of_a_mode_not_chosen_is_a_warning_and_not_in_the_spec(
    modes: tuple[str, str], path: str, value: Any, reader: str
) -> None:
    section, key = path.split(".")
    base = merged(mode_matrix()[modes], **{section: {key: None}})
    spec, warnings = read(merged(base, **{section: {key: value}}))
    (warning,) = warnings
    assert warning.field == path and "ignored" in warning.rule and reader in warning.rule
    assert str(warning).startswith(f"warning: {path} = ")
    assert spec == spec_from_mapping(base)  # nothing downstream can read it
    if key == "password":
        assert warning.value == REDACTED and str(value) not in str(warning)
    else:
        assert warning.value == value


@pytest.mark.parametrize("modes", sorted(mode_matrix()), ids="-".join)
def test_the_keys_a_mode_reads_are_kept_without_a_warning(modes: tuple[str, str]) -> None:
    mapping = mode_matrix()[modes]
    spec, warnings = read(mapping)
    assert warnings == []
    for section, values in mapping.items():
        if section in ("dns", "tls"):
            for key, value in values.items():
                assert getattr(getattr(spec, section), key) == value


def test_a_key_given_at_its_default_changes_nothing_and_is_no_warning() -> None:
    """The example lists tls.proxy_image at its default with tls.mode = "selfsigned"."""
    _, warnings = read(example_mapping(tls={"proxy_image": "docker.io/library/caddy:2.8.4"}, registry={"port": 443}))
    assert warnings == []


@FAST
@given(valid_spec_mappings(), st.sampled_from(IGNORED))
def test_adding_a_key_no_chosen_mode_reads_changes_nothing_but_a_warning(
    mapping: dict[str, Any], ignored: tuple[tuple[str, str], str, Any, str]
) -> None:
    _, path, value, _ = ignored
    spec, warnings = read(mapping)
    assert warnings == []  # the strategies draw no ignored key: the Spec holds every value drawn
    section, key = path.split(".")
    reads = {"dns": spec.dns.mode, "tls": spec.tls.mode, "registry": spec.tls.mode}[section]
    if f"'{reads}'" in ignored[3]:  # this mapping's mode reads the key: not the case under test
        return
    with_key, warned = read(merged(mapping, **{section: {key: value}}))
    assert with_key == spec and [w.field for w in warned] == [path]


def test_the_example_switched_to_eip_from_the_environment_warns_about_its_zone() -> None:
    """Seen by users: dns.zone_id left in while dns.mode = "eip" passed validate and plan, and failed late.
    An override cannot remove a key, only replace it: the zone is ignored, said so, and not in the Spec."""
    warnings: list[SpecWarning] = []
    spec = load_spec(EXAMPLE_TOML, environ={"SPOTREG_DNS__MODE": "eip"}, warnings=warnings)
    assert [w.field for w in warnings] == ["dns.zone_id"]
    assert "only dns.mode = 'route53' reads it, and it is 'eip'" in str(warnings[0])
    assert spec.dns.zone_id is None and spec.dns.hostname == "registry.example.com"


def test_validate_prints_the_warnings_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from spotreg.cli import main

    config = tmp_path / "spotreg.toml"
    config.write_text(EXAMPLE_TOML.read_text(encoding="utf-8").replace('mode = "route53"', 'mode = "eip"'))
    assert main(["validate", "--config", str(config)]) == 0
    printed = capsys.readouterr()
    assert "warning: dns.zone_id = 'Z0123456789ABCDEFGHIJ': ignored" in printed.err
    assert "valid" in printed.out and "warning" not in printed.out


def test_an_ignored_key_must_still_be_well_formed() -> None:
    with pytest.raises(SpecError) as caught:
        spec_from_mapping(example_mapping(dns={"mode": "eip", "zone_id": "not-a-zone"}))
    assert fields_named(caught.value) == ["dns.zone_id"]


# --- rules judge effects: networks that together cover the internet are open to the world -------------

WORLD_UNIONS = [
    ["0.0.0.0/1", "128.0.0.0/1"],
    ["203.0.113.7/32", "0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/1"],
    ["::/1", "8000::/1"],
    ["2001:db8::/32", "::/2", "4000::/2", "8000::/1"],
]
ALMOST_WORLD = [["0.0.0.0/1", "128.0.0.0/2"], ["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/2", "2001:db8::/32"], ["::/1"]]


@pytest.mark.parametrize("cidrs", WORLD_UNIONS, ids=str)
def test_operator_networks_covering_the_world_together_need_tls(cidrs: list[str]) -> None:
    with pytest.raises(SpecError) as caught:
        spec_from_mapping(example_mapping(network={"operator_cidrs": cidrs}, tls={"mode": "none"}))
    assert fields_named(caught.value) == ["tls.mode"]
    assert "the whole internet" in str(caught.value)
    assert spec_from_mapping(example_mapping(network={"operator_cidrs": cidrs})).open_to_world


@pytest.mark.parametrize("cidrs", ALMOST_WORLD, ids=str)
def test_operator_networks_short_of_the_world_are_named_networks(cidrs: list[str]) -> None:
    spec = spec_from_mapping(example_mapping(network={"operator_cidrs": cidrs}, tls={"mode": "none"}))
    assert not spec.open_to_world


@pytest.mark.parametrize("cidrs", WORLD_UNIONS, ids=str)
def test_ssh_networks_covering_the_world_together_are_refused(cidrs: list[str]) -> None:
    with pytest.raises(SpecError) as caught:
        spec_from_mapping(example_mapping(network={"ssh": True, "ssh_cidrs": cidrs}))
    assert fields_named(caught.value) == ["network.ssh_cidrs"]
    assert "SSH is never opened to the whole internet" in str(caught.value)
    spec_from_mapping(example_mapping(network={"ssh": True, "ssh_cidrs": cidrs[:-1] or ["10.0.0.0/8"]}))


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(["0.0.0.0/0", "::/0"]), st.integers(1, 5), st.randoms(use_true_random=False))
def test_any_split_of_the_world_covers_it_and_any_piece_missing_does_not(
    world: str, prefix_bits: int, random: Any
) -> None:
    whole = ipaddress.ip_network(world)
    pieces = [str(n) for n in whole.subnets(prefixlen_diff=prefix_bits)]
    random.shuffle(pieces)
    assert rules.world_covered(pieces) == (world,)
    assert rules.world_covered(pieces[1:]) == ()
    assert rules.world_covered([*pieces[1:], "0.0.0.0/0" if ":" in world else "::/0"]) != (world,)


# --- registry.major agrees with the image's tag ---------------------------------------------------------


def test_a_major_that_contradicts_the_tag_is_refused() -> None:
    with pytest.raises(SpecError) as caught:
        spec_from_mapping(example_mapping(registry={"image": "docker.io/library/registry:2.8.3", "major": 3}))
    assert fields_named(caught.value) == ["registry.major"]
    assert "contradicts" in str(caught.value) and "2.8.3" in str(caught.value)
    assert spec_from_mapping(example_mapping(registry={"major": 2})).registry.version_major == 2
    assert spec_from_mapping(example_mapping(registry={"image": "registry:latest", "major": 3})).registry.major == 3
