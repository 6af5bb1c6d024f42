"""The machine image: Amazon Linux 2023, looked up from AWS's public SSM parameter per architecture."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from provisioning.aws.tags import is_code
from provisioning.errors import SpotregError
from provisioning.render.launch import AL2023_AMI_PARAMETER
from provisioning.rules import architecture_of


def image_id_for(ssm: Any, instance_type: str) -> str:
    """The current AL2023 AMI id for the architecture of `instance_type`."""
    arch = architecture_of(instance_type)
    parameter = AL2023_AMI_PARAMETER[arch]
    try:
        return str(ssm.get_parameter(Name=parameter)["Parameter"]["Value"])
    except ClientError as error:
        if is_code(error, "ParameterNotFound"):
            raise SpotregError(
                f"the public parameter {parameter} (AL2023 for {arch}) does not exist in this region"
            ) from error
        raise


def image_ids_for(ssm: Any, instance_types: list[str] | tuple[str, ...]) -> dict[str, str]:
    """AMI id per architecture, for every architecture among `instance_types` (one lookup each)."""
    found: dict[str, str] = {}
    for instance_type in instance_types:
        arch = architecture_of(instance_type)
        if arch not in found:
            found[arch] = image_id_for(ssm, instance_type)
    return found
