"""A deployment's health: its endpoint, waited for with the self-signed CA trusted, and the instance's
console output when it never answers."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import requests
from botocore.exceptions import ClientError

from provisioning.aws.parameters import read_deployment_parameters
from provisioning.clients import AwsClients
from provisioning.errors import SpotregError
from provisioning.health.endpoint import api_url, server_name
from provisioning.health.probe import Healthy, wait_until_healthy
from provisioning.names import tls_ca_parameter, tls_cert_parameter
from provisioning.spec import Spec


def console_reader(clients: AwsClients, instance_id: str | None) -> Callable[[], str | None]:
    """Reads the instance's console output (None when there is no instance or it cannot be read)."""

    def read() -> str | None:
        if instance_id is None:
            return None
        try:
            answer = clients.ec2.get_console_output(InstanceId=instance_id, Latest=True)
        except ClientError:
            return None
        return str(answer.get("Output") or "")

    return read


def wait_for_deployment(
    spec: Spec,
    clients: AwsClients,
    address: str | None,
    instance_id: str | None,
    timeout: float,
    *,
    progress: Callable[[str], None] | None = None,
    session: requests.Session | None = None,
) -> Healthy:
    """Wait (bounded) for the registry's /v2/ at its name or `address`; with self-signed TLS the CA
    stored in SSM is trusted and the certificate checked against its own name."""
    url = api_url(spec, address)
    if url is None:
        raise SpotregError("the deployment has no address to check yet", hint="run 'spotreg up' first")
    stored = read_deployment_parameters(clients.ssm, spec)
    ca, cert = stored.get(tls_ca_parameter(spec)), stored.get(tls_cert_parameter(spec))
    with tempfile.TemporaryDirectory() as scratch:
        verify: bool | str = True
        name = None
        if spec.tls.mode == "selfsigned" and ca is not None:
            bundle = Path(scratch) / "ca.pem"
            bundle.write_text(ca.value)
            verify = str(bundle)
            name = server_name(url, None if cert is None else cert.value)
        return wait_until_healthy(
            url,
            timeout,
            verify=verify,
            progress=progress,
            console_output=console_reader(clients, instance_id),
            session=session,
            server_name=name,
        )
