"""`plan` only reads: a botocore hook fails every call that is not Describe*, Get* or List*."""

from __future__ import annotations

import pytest

from suites.offline.conftest import ZONE_ID, watch

READ_ONLY = ("Describe", "Get", "List")
MODES = [
    pytest.param({}, id="default"),
    pytest.param({"dns": {"mode": "eip"}}, id="eip"),
    pytest.param({"dns": {"mode": "route53", "hostname": "registry.example.com", "zone_id": ZONE_ID}}, id="route53"),
    pytest.param(
        {"dns": {"mode": "namecheap", "hostname": "registry.example.com", "password": "env:SPOTREG_PASSWORD_CI"}},
        id="namecheap",
    ),
]


def _forbid_changes(service, name, params):
    if not name.startswith(READ_ONLY):
        raise AssertionError(f"plan called {service}:{name}")


@pytest.mark.parametrize("overrides", MODES)
def test_plan_only_reads_before_and_after_up(make_provisioner, make_spec, clients, zone_id, overrides):
    provisioner = make_provisioner(make_spec(**overrides))
    with watch(clients, _forbid_changes) as log:
        before = provisioner.plan(legacy_access_key=True)
    assert log.calls, "plan looked at nothing"
    assert provisioner.inventory().is_empty
    creates = {c.kind for c in before.changes if c.action == "create"}
    assert {"bucket", "role", "instance-profile", "parameter", "security-group", "instance", "iam-user"} <= creates

    provisioner.up(legacy_access_key=True)
    with watch(clients, _forbid_changes):
        after = provisioner.plan(legacy_access_key=True)
    assert after.is_noop, str(after)
    with watch(clients, _forbid_changes):
        without_legacy = provisioner.plan()
    # the registry reads the legacy key at boot: leaving legacy mode replaces the instance (and points the
    # address or the name at the new one)
    pending = {(c.kind, c.action) for c in without_legacy.pending()}
    assert {("iam-user", "delete"), ("parameter", "delete"), ("instance", "replace"), ("instance", "create")} <= pending
    assert {kind for kind, _ in pending} <= {"iam-user", "parameter", "instance", "address-association", "dns-record"}


def test_plan_names_the_instance_it_would_launch(make_provisioner):
    plan = make_provisioner().plan()
    (instance,) = [c for c in plan.changes if c.kind == "instance"]
    assert instance.action == "create" and "t4g.micro" in instance.detail
    assert "plan for offline" in str(plan)


def test_up_without_legacy_removes_the_legacy_user(make_provisioner, clients):
    provisioner = make_provisioner()
    provisioner.up(legacy_access_key=True)
    assert provisioner.inventory().of("iam-user")
    provisioner.up()
    inventory = provisioner.inventory()
    assert not inventory.of("iam-user") and not inventory.of("access-key")
    assert "/spotreg/offline/legacy-access-key" not in {r.id for r in inventory.of("parameter")}
