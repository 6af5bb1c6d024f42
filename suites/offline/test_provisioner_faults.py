"""A failure anywhere in `up` leaves nothing that `down` cannot find and remove (the bucket is kept:
`down` never deletes data unasked)."""

from __future__ import annotations

import pytest

from provisioning.changes import Change
from provisioning.errors import SpotregError, StepFailed
from provisioning.inventory import RESOURCE_KINDS
from provisioning.provisioner import STEPS, Provisioner
from provisioning.step import Context, Run, Step
from suites.offline.conftest import ZONE_ID, injected_error, is_read, watch

# Every mode that makes something extra: Elastic IP, Route 53 records, a legacy user and its key.
FULL = {"dns": {"mode": "route53", "hostname": "registry.example.com", "zone_id": ZONE_ID}}
EIP = {"dns": {"mode": "eip"}}


class Boom(RuntimeError):
    pass


class FailingApply:
    """A step whose `apply` fails before it does anything; the rest is the wrapped step's."""

    def __init__(self, step: Step) -> None:
        self.step = step
        self.name = step.name

    def resource(self, spec):
        return self.step.resource(spec)

    def check(self, run: Run) -> None:
        self.step.check(run)

    def plan(self, run: Run) -> list[Change]:
        return self.step.plan(run)

    def apply(self, run: Run) -> list[Change]:
        raise Boom(f"injected at {self.name}")

    def remove(self, ctx: Context, *, delete_data: bool) -> list[Change]:
        return self.step.remove(ctx, delete_data=delete_data)


def failing_at(name: str) -> tuple[Step, ...]:
    """The steps of `up`, with the one called `name` failing."""
    return tuple(FailingApply(step) if step.name == name else step for step in STEPS)


def _assert_only_bucket_left(provisioner: Provisioner, context: str) -> None:
    left = provisioner.inventory().without("bucket")
    assert left.is_empty, f"{context}: down left {[str(r) for r in left.resources]}"


@pytest.mark.parametrize("step", [step.name for step in STEPS])
def test_failure_at_the_start_of_every_step_then_up_resumes_and_down_leaves_only_the_bucket(
    make_provisioner, make_spec, zone_id, step
):
    provisioner = make_provisioner(make_spec(**FULL))
    with pytest.raises(Boom, match=f"injected at {step}"):
        make_provisioner(make_spec(**FULL), steps=failing_at(step)).up(legacy_access_key=True)
    resumed = make_provisioner(make_spec(**FULL)).up(legacy_access_key=True)
    assert {
        "bucket",
        "role",
        "instance-profile",
        "iam-user",
        "security-group",
        "instance",
        "dns-record",
    } <= resumed.kinds()
    assert len(resumed.of("instance")) == 1, f"up after a failure at {step} made a second instance"
    provisioner.down()
    _assert_only_bucket_left(provisioner, f"failure at step {step}")
    assert set(provisioner.inventory().kinds()) <= {"bucket"}


def _count_mutating_calls(provisioner: Provisioner, clients, legacy: bool) -> list[str]:
    with watch(clients) as log:
        provisioner.up(legacy_access_key=legacy)
    return log.mutating()


@pytest.mark.parametrize(
    ("overrides", "only"),
    [(FULL, None), (EIP, {"AllocateAddress", "AssociateAddress"})],
    ids=["route53-legacy-every-call", "eip-address-calls"],
)
def test_failure_at_every_changing_call_then_down_leaves_only_the_bucket(
    make_provisioner, make_spec, clients, zone_id, overrides, only
):
    """For k = 1..N (N: changing calls of a clean up), fail the k-th changing call, run down, and
    check a full inventory; then remove the bucket too for the next round. (The Elastic IP mode
    differs from the Route 53 one only in its address calls: those are the ones failed there.)"""
    spec = make_spec(**overrides)
    provisioner = make_provisioner(spec)
    calls = _count_mutating_calls(provisioner, clients, legacy=True)
    provisioner.down(delete_data=True)
    assert provisioner.inventory().is_empty
    assert len(calls) >= 15, calls
    rounds = [(k, op) for k, op in enumerate(calls, start=1) if only is None or op in only]
    assert rounds, calls
    for k, operation in rounds:
        seen = [0]

        def hook(service, name, params, k=k, seen=seen):
            if not is_read(name):
                seen[0] += 1
                if seen[0] == k:
                    raise injected_error(name)

        with watch(clients, hook), pytest.raises((StepFailed, SpotregError)) as failure:
            provisioner.up(legacy_access_key=True)
        assert "InjectedFault" in str(failure.value), f"call {k} ({operation}): {failure.value}"
        removed = provisioner.down()
        _assert_only_bucket_left(provisioner, f"failure at changing call {k} ({operation}); down did {removed}")
        provisioner.down(delete_data=True)
        assert provisioner.inventory().is_empty, f"call {k} ({operation})"


def test_step_failure_names_the_step(make_provisioner, clients):
    provisioner = make_provisioner()

    def hook(service, name, params):
        if name == "CreateSecurityGroup":
            raise injected_error(name)

    with watch(clients, hook), pytest.raises(StepFailed) as failure:
        provisioner.up()
    assert failure.value.step == "security-group"
    assert "security-group" in str(failure.value) and "InjectedFault" in str(failure.value)


def test_down_twice_and_down_of_nothing_are_quiet(make_provisioner):
    provisioner = make_provisioner()
    assert provisioner.down().changes == ()
    provisioner.up()
    assert provisioner.down().changes
    assert provisioner.down().changes == ()
    _assert_only_bucket_left(provisioner, "down twice")


def test_every_resource_kind_is_inventoried(make_provisioner, make_spec, zone_id, clients):
    """The full inventory sees each kind spotreg makes (so 'empty' above means empty)."""
    provisioner = make_provisioner(make_spec(**FULL))
    kinds = provisioner.up(legacy_access_key=True).kinds()
    eip = make_provisioner(make_spec(deployment={"name": "other"}, storage={"bucket": "spotreg-other"}, **EIP))
    kinds |= eip.up().kinds()
    # moto makes no spot request for run_instances: make one the way a persistent launch would
    request = clients.ec2.request_spot_instances(
        LaunchSpecification={"ImageId": "ami-12345678", "InstanceType": "t3.micro"},
        TagSpecifications=[
            {"ResourceType": "spot-instances-request", "Tags": [{"Key": "spotreg:deployment", "Value": "offline"}]}
        ],
    )["SpotInstanceRequests"][0]
    kinds |= provisioner.inventory().kinds()
    assert kinds == set(RESOURCE_KINDS)
    provisioner.down()
    assert not any(r.id == request["SpotInstanceRequestId"] for r in provisioner.inventory().of("spot-request"))
