"""Small pure pieces of the provisioner: inventory diffs, htpasswd, secret resolution, error texts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from provisioning import names
from provisioning.errors import CapacityError, HealthTimeout, InputProblem, LaunchAttempt, SecretError
from provisioning.inventory import Inventory, Resource
from provisioning.provisioner import expiry_tag
from provisioning.secrets import htpasswd_matches, make_htpasswd, resolve_secrets
from suites.offline.conftest import build_spec


def test_inventory_diff_names_what_changed():
    a = Inventory("d", (Resource("parameter", "/p", (("version", "1"),)), Resource("instance", "i-1")))
    b = Inventory("d", (Resource("parameter", "/p", (("version", "2"),)), Resource("instance", "i-2")))
    assert a.diff(b) == [
        "removed instance i-1",
        "added instance i-2",
        "changed parameter /p: version: '1' -> '2'",
    ]
    assert a.diff(a) == [] and a == Inventory("d", tuple(reversed(a.resources)))
    assert a.without("instance").kinds() == {"parameter"}


def test_names_by_deployment_name_match_names_from_the_spec():
    spec = build_spec(deployment={"name": "team-a"})
    assert names.deployment_resource_name("team-a") == names.resource_name(spec) == "spotreg-team-a"
    assert names.deployment_parameter_prefix("team-a") == names.parameter_prefix(spec) == "/spotreg/team-a"
    assert names.deployment_legacy_user_name("team-a") == names.legacy_user_name(spec) == "spotreg-team-a-legacy"
    assert names.legacy_key_parameter(spec) == "/spotreg/team-a/legacy-access-key"
    assert names.deployment_tags(spec, "r-1")[names.TAG_DEPLOYMENT] == "team-a"


def test_htpasswd_is_bcrypt_per_user_and_checks_exactly():
    text = make_htpasswd({"b": "pw-b", "a": "pw-a"}, rounds=4)
    lines = text.splitlines()
    assert [line.split(":")[0] for line in lines] == ["a", "b"]
    assert all(line.split(":", 1)[1].startswith("$2y$04$") for line in lines)
    assert htpasswd_matches(text, {"a": "pw-a", "b": "pw-b"})
    assert not htpasswd_matches(text, {"a": "pw-a"})
    assert not htpasswd_matches(text, {"a": "pw-a", "b": "nope"})
    assert not htpasswd_matches("a:garbage\n", {"a": "pw-a"})


def test_env_secrets_fail_before_ssm_is_asked():
    spec = build_spec(
        registry={"users": [{"name": "ci", "password": "env:MISSING"}, {"name": "ops", "password": "ssm:/x/y"}]}
    )

    class Exploding:
        def get_parameter(self, **_: object) -> None:
            raise AssertionError("SSM asked before the env: references were checked")

    with pytest.raises(SecretError) as refused:
        resolve_secrets(spec, {}, Exploding())
    assert [p.field for p in refused.value.problems] == ["registry.users[0].password"]
    assert "secret" not in repr(resolve_secrets(build_spec(), {"SPOTREG_PASSWORD_CI": "secret-Value-1"}))


def test_expiry_tag_is_utc_iso():
    from datetime import timedelta, timezone

    local = datetime(2030, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert expiry_tag(local) == "2030-01-01T10:00:00Z"
    assert expiry_tag(None) is None and expiry_tag("x") == "x"
    assert expiry_tag(datetime(2030, 1, 1, tzinfo=UTC)) == "2030-01-01T00:00:00Z"


def test_error_texts_carry_what_the_cli_prints():
    capacity = CapacityError([LaunchAttempt("t3.micro", "us-east-1a", "InsufficientInstanceCapacity", "none left")])
    assert "t3.micro in us-east-1a: InsufficientInstanceCapacity: none left" in str(capacity)
    assert "instance.types" in str(capacity)
    timeout = HealthTimeout("https://r/v2/", 30, attempts=4, last_status=502, last_body="bad gateway", last_error=None)
    assert "HTTP 502" in str(timeout) and "bad gateway" in str(timeout) and timeout.exit_code == 5
    secret = SecretError([InputProblem("dns.password", "env:X", "the environment variable X is not set")])
    assert "dns.password = 'env:X'" in str(secret)


def test_poll_until_is_bounded_and_reports_what_it_saw():
    import time

    from provisioning.errors import WaitTimeout
    from provisioning.waits import poll_until

    lines: list[str] = []
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as failure:
        poll_until(
            "the instance to stop",
            lambda: (False, "i-1 stopping"),
            timeout=0.3,
            interval=0.02,
            progress=lines.append,
            step="instance",
        )
    assert time.monotonic() - started < 2
    assert failure.value.last_seen == "i-1 stopping" and "the instance to stop" in str(failure.value)
    assert lines and lines[0].startswith("instance: waiting for the instance to stop: i-1 stopping")
    assert poll_until("x", lambda: (True, "done"), timeout=1, interval=0.01) == "done"


def test_retry_on_retries_only_what_it_is_told():
    from provisioning.waits import retry_on

    calls = [0]

    def flaky() -> str:
        calls[0] += 1
        if calls[0] < 3:
            raise KeyError("not yet")
        return "ok"

    assert retry_on("flaky", flaky, lambda e: isinstance(e, KeyError), timeout=2, interval=0.01) == "ok"
    with pytest.raises(ValueError):
        retry_on(
            "other",
            lambda: (_ for _ in ()).throw(ValueError("no")),
            lambda e: isinstance(e, KeyError),
            timeout=2,
            interval=0.01,
        )
