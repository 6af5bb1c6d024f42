"""Spot launches: fallback to the next type or zone on capacity and price errors, retry of a fresh
instance profile, and the error that lists every attempt when nothing launches."""

from __future__ import annotations

import pytest

from provisioning.errors import CapacityError, StepFailed
from suites.offline.conftest import injected_error, watch


def _fail_types(types: set[str], code: str, times: int = 100):
    left = [times]

    def hook(service, name, params):
        if name == "RunInstances" and params["InstanceType"] in types and left[0] > 0:
            left[0] -= 1
            raise injected_error(name, code, f"There is no {code} for {params['InstanceType']}")

    return hook


def test_insufficient_capacity_falls_back_to_the_next_type(make_provisioner, clients):
    provisioner = make_provisioner()
    with watch(clients, _fail_types({"t4g.micro"}, "InsufficientInstanceCapacity")) as log:
        inventory = provisioner.up()
    (instance,) = inventory.of("instance")
    assert instance.detail("type") == "t3.micro"
    tried = [p["InstanceType"] for p in log.params("RunInstances")]
    assert tried[0] == "t4g.micro" and tried[-1] == "t3.micro"
    assert tried[1] == "t3.micro", "a capacity failure should try the next type before the same type elsewhere"
    launch = provisioner.last_up.launch
    assert launch is not None
    assert [(a.instance_type, a.error_code) for a in launch.attempts] == [
        ("t4g.micro", "InsufficientInstanceCapacity"),
        ("t3.micro", None),
    ]
    assert (
        "t3.micro" in provisioner.last_up.placement and "InsufficientInstanceCapacity" in provisioner.last_up.placement
    )
    # the x86_64 type got the x86_64 image
    x86 = clients.ssm.get_parameter(Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")
    assert log.params("RunInstances")[-1]["ImageId"] == x86["Parameter"]["Value"]


@pytest.mark.parametrize("code", ["SpotMaxPriceTooLow", "Unsupported", "InsufficientInstanceCapacity"])
def test_every_fallback_code_moves_on(make_provisioner, make_spec, clients, code):
    spec = make_spec(instance={"types": ["t4g.micro", "t3.micro"], "max_price": "0.002"})
    with watch(clients, _fail_types({"t4g.micro"}, code, times=1)) as log:
        inventory = make_provisioner(spec).up()
    assert log.params("RunInstances")[0]["InstanceMarketOptions"]["SpotOptions"]["MaxPrice"] == "0.002"
    assert [r.detail("type") for r in inventory.of("instance")] == ["t3.micro"]


def test_same_type_in_the_next_zone_when_every_type_failed_in_the_first(make_provisioner, make_spec, clients):
    spec = make_spec(instance={"types": ["t3.micro"]})
    with watch(clients, _fail_types({"t3.micro"}, "InsufficientInstanceCapacity", times=1)) as log:
        inventory = make_provisioner(spec).up()
    subnets = [p["NetworkInterfaces"][0]["SubnetId"] for p in log.params("RunInstances")]
    assert len(subnets) == 2 and subnets[0] != subnets[1]
    assert inventory.of("instance")[0].detail("zone") == "us-east-1b"


def test_no_capacity_anywhere_lists_every_attempt_and_launches_nothing(make_provisioner, clients):
    provisioner = make_provisioner()
    with (
        watch(clients, _fail_types({"t4g.micro", "t3.micro"}, "InsufficientInstanceCapacity")),
        pytest.raises(CapacityError) as failure,
    ):
        provisioner.up()
    attempts = failure.value.attempts
    assert {a.instance_type for a in attempts} == {"t4g.micro", "t3.micro"}
    assert len(attempts) == 12  # two types in six zones
    assert failure.value.step == "instance" and failure.value.exit_code == 4
    assert "t4g.micro in us-east-1a: InsufficientInstanceCapacity" in str(failure.value)
    assert not provisioner.inventory().of("instance")


def test_other_launch_errors_are_not_retried_elsewhere(make_provisioner, clients):
    with watch(clients, _fail_types({"t4g.micro"}, "InvalidParameterCombination")) as log, pytest.raises(StepFailed):
        make_provisioner().up()
    assert len(log.params("RunInstances")) == 1


def test_fresh_instance_profile_is_waited_for(make_provisioner, clients):
    left = [2]

    def hook(service, name, params):
        if name == "RunInstances" and left[0] > 0:
            left[0] -= 1
            raise injected_error(
                name,
                "InvalidParameterValue",
                "Value (spotreg-offline) for parameter iamInstanceProfile.name is invalid. "
                "Invalid IAM Instance Profile name",
            )

    with watch(clients, hook) as log:
        inventory = make_provisioner().up()
    assert len(log.params("RunInstances")) == 3
    assert inventory.of("instance")[0].detail("type") == "t4g.micro"


def test_one_time_terminate_when_asked(make_provisioner, make_spec, clients):
    spec = make_spec(instance={"interruption": "terminate", "types": ["m7g.medium"]})
    with watch(clients) as log:
        make_provisioner(spec).up()
    (request,) = log.params("RunInstances")
    assert request["InstanceMarketOptions"]["SpotOptions"] == {
        "SpotInstanceType": "one-time",
        "InstanceInterruptionBehavior": "terminate",
    }
    assert "CreditSpecification" not in request


def test_price_history_steers_the_zone(make_provisioner, make_spec, clients, monkeypatch):
    """moto returns one constant price everywhere: feed rows of our own through the same function."""
    from decimal import Decimal

    from provisioning.aws import launch
    from provisioning.placement import PriceRow

    rows = [
        PriceRow("t4g.micro", "us-east-1a", Decimal("0.0040")),
        PriceRow("t4g.micro", "us-east-1a", Decimal("0.0090")),  # cheap on average? no: jumpy
        PriceRow("t4g.micro", "us-east-1c", Decimal("0.0030")),
        PriceRow("t4g.micro", "us-east-1c", Decimal("0.0031")),
        PriceRow("t3.micro", "us-east-1b", Decimal("0.0035")),
    ]
    monkeypatch.setattr(launch, "price_rows", lambda *args, **kwargs: rows)
    with watch(clients) as log:
        inventory = make_provisioner(make_spec()).up()
    assert inventory.of("instance")[0].detail("zone") == "us-east-1c"
    assert log.params("RunInstances")[0]["InstanceType"] == "t4g.micro"
