"""Registry passwords have a minimum strength, checked when the references resolve: before any AWS call
that changes anything, naming the field and the rule, never the value."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from provisioning.errors import SecretError
from provisioning.secrets import MIN_PASSWORD_LENGTH, PASSWORD_RULE, password_weakness, resolve_secrets
from suites.offline.conftest import PASSWORD, build_spec, watch

WEAK = {
    "": "too short",
    "Short-pw1": "too short",
    "Abcdefgh12!": "too short",  # 11 characters of every kind
    "abcdefghijklmnop": "one kind",
    "ABCDEFGHIJKLMNOP": "one kind",
    "123456789012345": "one kind",
    "!!!!!!!!!!!!!!!!": "one kind",
    "ééééééééééééé": "one kind",
}
STRONG = ["abcdefghijk1", "ABCDEFGHIJK-", "correct horse battery staple", "123456789012a", PASSWORD]


@pytest.mark.parametrize(("password", "why"), WEAK.items())
def test_a_weak_password_is_named_weak_with_the_rule(password: str, why: str) -> None:
    weakness = password_weakness(password)
    assert weakness is not None and weakness.startswith(why) and PASSWORD_RULE in weakness
    assert not password or password not in weakness


@pytest.mark.parametrize("password", STRONG)
def test_a_strong_enough_password_passes(password: str) -> None:
    assert len(password) >= MIN_PASSWORD_LENGTH
    assert password_weakness(password) is None


def test_the_harness_generated_passwords_pass() -> None:
    """The stack and live runs make theirs with token_urlsafe(18): 24 characters of four kinds."""
    assert all(password_weakness(secrets.token_urlsafe(18)) is None for _ in range(200))


class _Ssm:
    """An SSM client holding ``values``; counts its reads."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.reads: list[str] = []

    def get_parameter(self, *, Name: str, WithDecryption: bool) -> dict[str, Any]:
        self.reads.append(Name)
        return {"Parameter": {"Value": self.values[Name]}}


def test_weak_env_passwords_are_refused_together_without_asking_ssm() -> None:
    spec = build_spec(
        registry={
            "users": [
                {"name": "ci", "password": "env:PW_CI"},
                {"name": "ops", "password": "env:PW_OPS"},
                {"name": "bot", "password": "ssm:/team/bot"},
            ]
        }
    )
    ssm = _Ssm({"/team/bot": "from-ssm-Strong-1"})
    with pytest.raises(SecretError) as refused:
        resolve_secrets(spec, {"PW_CI": "hunter2", "PW_OPS": PASSWORD}, ssm)
    assert [(p.field, p.value) for p in refused.value.problems] == [("registry.users[0].password", "env:PW_CI")]
    assert PASSWORD_RULE in str(refused.value) and "hunter2" not in str(refused.value)
    assert "stronger password" in str(refused.value) and refused.value.exit_code == 2
    assert ssm.reads == []


def test_a_weak_ssm_password_is_refused_after_reading_only() -> None:
    spec = build_spec(registry={"users": [{"name": "ci", "password": "ssm:/team/ci"}]})
    with pytest.raises(SecretError) as refused:
        resolve_secrets(spec, {}, _Ssm({"/team/ci": "aaaaaaaaaaaaaaaaaaaa"}))
    (problem,) = refused.value.problems
    assert problem.field == "registry.users[0].password" and problem.rule.startswith("one kind of character")
    assert "aaaa" not in str(refused.value)
    assert resolve_secrets(spec, {}, _Ssm({"/team/ci": "aaaaaaaaaaaaaaaaaaa1"})).users == {"ci": "aaaaaaaaaaaaaaaaaaa1"}


def test_the_namecheap_password_is_namecheaps_and_not_held_to_the_rule() -> None:
    spec = build_spec(dns={"mode": "namecheap", "hostname": "registry.example.com", "password": "env:DDNS"})
    assert resolve_secrets(spec, {"SPOTREG_PASSWORD_CI": PASSWORD, "DDNS": "abc"}).dns_password == "abc"


def test_an_ignored_dns_password_is_not_resolved() -> None:
    """dns.password with dns.mode = "eip" is a warning: the Spec does not hold it, nothing reads it."""
    spec = build_spec(dns={"mode": "eip", "password": "env:UNSET_DDNS"})
    assert spec.dns.password is None
    assert resolve_secrets(spec, {"SPOTREG_PASSWORD_CI": PASSWORD}).dns_password is None


def test_up_with_a_weak_password_calls_no_aws(make_provisioner, clients) -> None:
    provisioner = make_provisioner(environ={"SPOTREG_PASSWORD_CI": "password"})
    with watch(clients) as log, pytest.raises(SecretError) as refused:
        provisioner.up()
    assert log.calls == [], f"AWS was called before the input was checked: {log.names()}"
    assert "registry.users[0].password = 'env:SPOTREG_PASSWORD_CI': too short" in str(refused.value)
