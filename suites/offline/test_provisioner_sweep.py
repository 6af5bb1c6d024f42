"""The sweeper removes only what test runs left (by their tags), and only what it listed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from provisioning.errors import InputError
from provisioning.provisioner import sweep
from provisioning.sweeper import remove_listed
from suites.offline.conftest import FAST_WAITS, ZONE_ID


def _up(make_provisioner, make_spec, name: str, run_id: str | None, expires: str | None, **overrides):
    spec = make_spec(deployment={"name": name}, storage={"bucket": f"spotreg-{name}-images"}, **overrides)
    provisioner = make_provisioner(spec, run_id=run_id, expires=expires)
    provisioner.up(legacy_access_key=True)
    return provisioner


def _look_alike(clients) -> None:
    """Resources named like spotreg's but without its tags: somebody's own."""
    clients.s3.create_bucket(Bucket="spotreg-lookalike-images")
    clients.iam.create_role(RoleName="spotreg-lookalike", AssumeRolePolicyDocument="{}")
    clients.ssm.put_parameter(Name="/spotreg/lookalike/htpasswd", Value="x", Type="SecureString")
    vpc = clients.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    clients.ec2.create_security_group(
        GroupName="spotreg-lookalike",
        Description="x",
        VpcId=vpc,
        TagSpecifications=[{"ResourceType": "security-group", "Tags": [{"Key": "Name", "Value": "spotreg-lookalike"}]}],
    )


def test_sweep_by_run_removes_that_run_only(make_provisioner, make_spec, clients, zone_id):
    dns = {"dns": {"mode": "route53", "hostname": "a.example.com", "zone_id": ZONE_ID}}
    mine = _up(make_provisioner, make_spec, "run-a", "run-a", "2099-01-01T00:00:00Z", **dns)
    other = _up(make_provisioner, make_spec, "run-b", "run-b", "2099-01-01T00:00:00Z")
    real = _up(make_provisioner, make_spec, "prod", None, None)
    _look_alike(clients)
    before_other, before_real = other.inventory(), real.inventory()

    listed = sweep(clients, run_id="run-a")
    assert listed and {f.run for f in listed} == {"run-a"} and {f.outcome for f in listed} == {"listed"}
    kinds = {f.kind for f in listed}
    assert kinds >= {
        "bucket",
        "role",
        "instance-profile",
        "iam-user",
        "parameter",
        "security-group",
        "instance",
        "dns-record",
    }
    assert not mine.inventory().is_empty, "a dry run deleted something"

    done = sweep(clients, run_id="run-a", dry_run=False, waits=FAST_WAITS)
    assert [(f.kind, f.id) for f in done] == [(f.kind, f.id) for f in listed]
    assert {f.outcome for f in done} == {"deleted"}, [str(f) for f in done]
    assert mine.inventory().is_empty, str(mine.inventory())
    assert other.inventory() == before_other
    assert real.inventory() == before_real
    assert "spotreg-lookalike-images" in [b["Name"] for b in clients.s3.list_buckets()["Buckets"]]
    assert clients.iam.get_role(RoleName="spotreg-lookalike")
    assert clients.ssm.get_parameter(Name="/spotreg/lookalike/htpasswd")
    groups = clients.ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["spotreg-lookalike"]}])
    assert len(groups["SecurityGroups"]) == 1


def test_sweep_by_expiry_leaves_unexpired_and_untagged_alone(make_provisioner, make_spec, clients):
    expired = _up(make_provisioner, make_spec, "old-run", "old", "2020-01-01T00:00:00Z")
    fresh = _up(make_provisioner, make_spec, "new-run", "new", "2099-01-01T00:00:00Z")
    real = _up(make_provisioner, make_spec, "prod", None, None)
    _look_alike(clients)
    before_fresh, before_real = fresh.inventory(), real.inventory()

    now = datetime(2025, 6, 1, tzinfo=UTC)
    listed = sweep(clients, now=lambda: now)
    assert listed and {f.run for f in listed} == {"old"}
    done = sweep(clients, expired_before=now, dry_run=False, waits=FAST_WAITS)
    assert {f.outcome for f in done} == {"deleted"}
    assert expired.inventory().is_empty
    assert fresh.inventory() == before_fresh
    assert real.inventory() == before_real
    assert sweep(clients, expired_before=now) == []
    assert sweep(clients, expired_before="2025-06-01T00:00:00Z") == []
    with pytest.raises(InputError, match="expired-before"):
        sweep(clients, expired_before="last tuesday")


def test_sweep_deletes_only_what_it_listed_and_refuses_a_resource_whose_tags_changed(
    make_provisioner, make_spec, clients
):
    run = _up(make_provisioner, make_spec, "run-c", "run-c", "2020-01-01T00:00:00Z")
    listed = sweep(clients, run_id="run-c")
    (group,) = [f for f in listed if f.kind == "security-group"]
    # somebody adopts the group between listing and deleting: its run tag goes
    clients.ec2.delete_tags(Resources=[group.id], Tags=[{"Key": "spotreg:run"}])
    # and a new resource of the same run appears after the listing
    clients.ssm.put_parameter(
        Name="/spotreg/run-c/late",
        Value="x",
        Type="String",
        Tags=[{"Key": "spotreg:deployment", "Value": "run-c"}, {"Key": "spotreg:run", "Value": "run-c"}],
    )
    done = {(f.kind, f.id): f.outcome for f in remove_listed(clients, listed, waits=FAST_WAITS)}
    assert done[("security-group", group.id)].startswith("refused"), done
    assert {o for key, o in done.items() if key[0] != "security-group"} == {"deleted"}
    assert clients.ssm.get_parameter(Name="/spotreg/run-c/late"), "deleted something it had not listed"
    assert [r.id for r in run.inventory().of("security-group")] == [group.id]


def test_sweep_refuses_to_guess_without_a_run_tag(make_provisioner, make_spec, clients):
    """A deployment without a run tag (a real one) is never listed, however expired anything is."""
    _up(make_provisioner, make_spec, "prod", None, "2000-01-01T00:00:00Z")
    assert sweep(clients, expired_before=datetime(2030, 1, 1, tzinfo=UTC)) == []
