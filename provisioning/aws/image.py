"""The machine image: Amazon Linux 2023, looked up from AWS's public SSM parameter per architecture."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from provisioning.changes import Change
from provisioning.errors import SpotregError
from provisioning.render.launch import AL2023_AMI_PARAMETER
from provisioning.rules import architecture_of
from provisioning.spec import Spec
from provisioning.step import Context, Run
from provisioning.tags import is_code


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


class ImageStep:
    """The machine image: read, never made (AWS's public AL2023 parameter per architecture)."""

    name = "image"

    def resource(self, spec: Spec) -> str:
        return "AL2023 image parameters"

    def check(self, run: Run) -> None:
        """Nothing to check before the lookup itself."""

    def plan(self, run: Run) -> list[Change]:
        run.image_ids = image_ids_for(run.clients.ssm, run.spec.instance.types)
        listed = ", ".join(f"{arch} {ami}" for arch, ami in sorted(run.image_ids.items()))
        return [Change("image", "AL2023", "read", listed)]

    def apply(self, run: Run) -> list[Change]:
        return self.plan(run)

    def remove(self, ctx: Context, *, delete_data: bool) -> list[Change]:
        return []
