"""run_instances parameters: spot options, IMDSv2, credits for T only, tags, network interface."""

from __future__ import annotations

from functools import cache
from typing import Any

import botocore.session
import pytest
from botocore.handlers import base64_encode_user_data
from botocore.model import Shape
from botocore.validate import validate_parameters
from hypothesis import given, settings

from provisioning import names
from provisioning.render.launch import AL2023_AMI_PARAMETER, is_burstable, render_launch_parameters
from provisioning.spec import Spec
from provisioning.spec_loading import spec_from_mapping
from suites.offline.spec_strategies import example_mapping, valid_spec_mappings

PROFILE = "arn:aws:iam::123456789012:instance-profile/spotreg-example"


@cache
def run_instances_shape() -> Shape:
    model = botocore.session.get_session().get_service_model("ec2")
    shape = model.operation_model("RunInstances").input_shape
    assert shape is not None
    return shape


def launch(spec: Spec, instance_type: str | None = None, subnet_id: str | None = "subnet-0123456789abcdef0",
           **extra: Any) -> dict[str, Any]:  # fmt: skip
    return render_launch_parameters(
        spec,
        instance_type=instance_type or spec.instance.types[0],
        image_id="ami-0123456789abcdef0",
        subnet_id=subnet_id,
        security_group_id="sg-0123456789abcdef0",
        instance_profile_arn=PROFILE,
        user_data=b"#cloud-config\n",
        **extra,
    )


@settings(max_examples=40, deadline=None)
@given(valid_spec_mappings())
def test_parameters_are_what_ec2_accepts(mapping: dict[str, Any]) -> None:
    spec = spec_from_mapping(mapping)
    for instance_type in spec.instance.types:
        parameters = launch(spec, instance_type)
        sent = dict(parameters)
        base64_encode_user_data(sent)  # boto3's own step before it validates: packed bytes become base64
        validate_parameters(sent, run_instances_shape())
        assert parameters["MetadataOptions"] == {
            "HttpTokens": "required",
            "HttpPutResponseHopLimit": 2,
            "HttpEndpoint": "enabled",
        }
        assert ("CreditSpecification" in parameters) == instance_type.startswith("t")
        assert "SubnetId" not in parameters and "SecurityGroupIds" not in parameters
        assert "SecurityGroups" not in parameters
        [interface] = parameters["NetworkInterfaces"]
        assert interface["AssociatePublicIpAddress"] is True  # the first boot needs it; an EIP replaces it
        assert interface["Groups"] == ["sg-0123456789abcdef0"]
        assert parameters["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == spec.instance.volume_gb
        for tag_spec in parameters["TagSpecifications"]:
            tags = {t["Key"]: t["Value"] for t in tag_spec["Tags"]}
            assert tags == names.deployment_tags(spec)
        assert parameters == launch(spec, instance_type)


def test_stop_means_a_persistent_request() -> None:
    spec = spec_from_mapping(example_mapping(instance={"interruption": "stop"}))
    assert launch(spec)["InstanceMarketOptions"] == {
        "MarketType": "spot",
        "SpotOptions": {"SpotInstanceType": "persistent", "InstanceInterruptionBehavior": "stop"},
    }


def test_terminate_means_a_one_time_request() -> None:
    spec = spec_from_mapping(example_mapping(instance={"interruption": "terminate"}))
    assert launch(spec)["InstanceMarketOptions"]["SpotOptions"] == {
        "SpotInstanceType": "one-time",
        "InstanceInterruptionBehavior": "terminate",
    }


@pytest.mark.parametrize(
    ("price", "text"), [(0.0042, "0.0042"), ("1E+1", "10"), (100, "100"), ("0.000001", "0.000001")]
)
def test_max_price_is_a_plain_decimal_string(price: Any, text: str) -> None:
    spec = spec_from_mapping(example_mapping(instance={"max_price": price}))
    assert launch(spec)["InstanceMarketOptions"]["SpotOptions"]["MaxPrice"] == text


def test_full_example_parameters() -> None:
    spec = spec_from_mapping(example_mapping())
    parameters = launch(spec, "t4g.micro", run_id="r-1", expires="2025-01-01T00:00:00Z")
    tags = [
        {"Key": "team", "Value": "platform"},
        {"Key": "Name", "Value": "spotreg-example"},
        {"Key": "spotreg:deployment", "Value": "example"},
        {"Key": "spotreg:run", "Value": "r-1"},
        {"Key": "spotreg:expires", "Value": "2025-01-01T00:00:00Z"},
    ]
    assert parameters == {
        "MinCount": 1,
        "MaxCount": 1,
        "ImageId": "ami-0123456789abcdef0",
        "InstanceType": "t4g.micro",
        "InstanceMarketOptions": {
            "MarketType": "spot",
            "SpotOptions": {"SpotInstanceType": "persistent", "InstanceInterruptionBehavior": "stop"},
        },
        "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 2, "HttpEndpoint": "enabled"},
        "IamInstanceProfile": {"Arn": PROFILE},
        "UserData": b"#cloud-config\n",
        "BlockDeviceMappings": [
            {
                "DeviceName": "/dev/xvda",
                "Ebs": {"VolumeSize": 8, "VolumeType": "gp3", "Encrypted": True, "DeleteOnTermination": True},
            }
        ],
        "TagSpecifications": [
            {"ResourceType": kind, "Tags": tags}
            for kind in ("instance", "volume", "network-interface", "spot-instances-request")
        ],
        "NetworkInterfaces": [
            {
                "DeviceIndex": 0,
                "AssociatePublicIpAddress": True,
                "Groups": ["sg-0123456789abcdef0"],
                "DeleteOnTermination": True,
                "SubnetId": "subnet-0123456789abcdef0",
            }
        ],
        "CreditSpecification": {"CpuCredits": "standard"},
    }


def test_eip_mode_launches_with_a_public_address_and_default_subnet_is_omitted() -> None:
    """The first boot installs Docker (needs the internet from a default VPC) before the Elastic IP
    is associated: the temporary public address is what it has until then."""
    spec = spec_from_mapping(example_mapping(dns={"mode": "eip", "zone_id": None}))
    [interface] = launch(spec, subnet_id=None)["NetworkInterfaces"]
    assert interface["AssociatePublicIpAddress"] is True
    assert "SubnetId" not in interface


@pytest.mark.parametrize(
    ("instance_type", "burstable"),
    [("t4g.micro", True), ("t3a.small", True), ("t2.nano", True), ("m7g.medium", False), ("c6a.2xlarge", False),
     ("trn1.2xlarge", False), ("m5.large", False)],
)  # fmt: skip
def test_credit_specification_only_for_t_family(instance_type: str, burstable: bool) -> None:
    assert is_burstable(instance_type) is burstable
    spec = spec_from_mapping(example_mapping(instance={"types": [instance_type]}))
    assert ("CreditSpecification" in launch(spec)) is burstable


def test_instance_type_must_come_from_the_spec() -> None:
    with pytest.raises(ValueError, match=r"instance\.types"):
        launch(spec_from_mapping(example_mapping()), "m5.large")


def test_al2023_ami_parameters() -> None:
    assert AL2023_AMI_PARAMETER == {
        "arm64": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
        "x86_64": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
    }
