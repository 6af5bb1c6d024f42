"""Parameters of ``ec2.run_instances`` for the deployment's spot instance."""

from __future__ import annotations

import re
from typing import Any, Final

from provisioning import names
from provisioning.spec import Spec

AL2023_AMI_PARAMETER: Final[dict[str, str]] = {
    "arm64": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
    "x86_64": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
}
ROOT_DEVICE: Final = "/dev/xvda"  # Amazon Linux 2023's root device name
TAGGED_RESOURCES: Final = ("instance", "volume", "network-interface", "spot-instances-request")
_BURSTABLE = re.compile(r"^t\d+[a-z-]*\.")


def is_burstable(instance_type: str) -> bool:
    """T family (t2, t3, t3a, t4g, ...): CPU credits apply."""
    return bool(_BURSTABLE.match(instance_type))


def render_spot_options(spec: Spec) -> dict[str, Any]:
    """Persistent request that stops on interruption (keeps the disk), or one-time that terminates."""
    if spec.instance.interruption == "stop":
        options: dict[str, Any] = {"SpotInstanceType": "persistent", "InstanceInterruptionBehavior": "stop"}
    else:
        options = {"SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"}
    if spec.instance.max_price is not None:
        options["MaxPrice"] = format(spec.instance.max_price, "f")  # never "1E+1"
    return options


def render_launch_parameters(
    spec: Spec,
    *,
    instance_type: str,
    image_id: str,
    subnet_id: str | None,
    security_group_id: str,
    instance_profile_arn: str,
    user_data: bytes,
    run_id: str | None = None,
    expires: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments of ``ec2.run_instances``; ``user_data`` packed (``pack_user_data``; boto3
    base64-encodes ``UserData`` itself).

    ``subnet_id`` None: the default subnet of the default VPC. Subnet and security group live in
    the network interface (EC2 refuses them at the top level as well). ``run_id``/``expires`` add
    the test-run tags (see names.deployment_tags).
    """
    if instance_type not in spec.instance.types:
        raise ValueError(f"{instance_type!r} is not one of instance.types {list(spec.instance.types)}")
    tags = names.deployment_tags(spec, run_id=run_id, expires=expires)
    interface: dict[str, Any] = {
        "DeviceIndex": 0,
        # Always: the first boot installs Docker and pulls images, which needs an address in a default
        # VPC. With dns.mode = "eip" the Elastic IP, associated once the instance runs, replaces it.
        "AssociatePublicIpAddress": True,
        "Groups": [security_group_id],
        "DeleteOnTermination": True,
    }
    if subnet_id is not None:
        interface["SubnetId"] = subnet_id
    parameters: dict[str, Any] = {
        "MinCount": 1,
        "MaxCount": 1,
        "ImageId": image_id,
        "InstanceType": instance_type,
        "InstanceMarketOptions": {"MarketType": "spot", "SpotOptions": render_spot_options(spec)},
        "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 2, "HttpEndpoint": "enabled"},
        "IamInstanceProfile": {"Arn": instance_profile_arn},
        "UserData": user_data,
        "BlockDeviceMappings": [
            {
                "DeviceName": ROOT_DEVICE,
                "Ebs": {
                    "VolumeSize": spec.instance.volume_gb,
                    "VolumeType": "gp3",
                    "Encrypted": True,
                    "DeleteOnTermination": True,
                },
            }
        ],
        "TagSpecifications": [
            {"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            for kind in TAGGED_RESOURCES
        ],
        "NetworkInterfaces": [interface],
    }
    if is_burstable(instance_type):
        parameters["CreditSpecification"] = {"CpuCredits": "standard"}
    return parameters
