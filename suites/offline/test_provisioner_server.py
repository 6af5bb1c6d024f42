"""The same code path against moto's server over HTTP on 127.0.0.1 (what the CLI's --endpoint-url does)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from provisioning.clients import AwsClients, make_clients
from provisioning.provisioner import Provisioner, sweep
from suites.offline.conftest import FAST_WAITS, REGION, ZONE_ID, build_spec, create_zone, watch


@pytest.fixture
def server_clients(aws_credentials: None) -> Iterator[AwsClients]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    requests.post(f"{endpoint}/moto-api/reset", timeout=10)
    try:
        session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
        yield make_clients(REGION, endpoint_url=endpoint, session=session)
    finally:
        requests.post(f"{endpoint}/moto-api/reset", timeout=10)
        server.stop()


def test_up_twice_status_down_against_moto_server(server_clients, environ):
    clients = server_clients
    assert clients.endpoint_url is not None and clients.endpoint_url.startswith("http://127.0.0.1:")
    create_zone(clients.route53)
    spec = build_spec(dns={"mode": "route53", "hostname": "registry.example.com", "zone_id": ZONE_ID})
    provisioner = Provisioner(
        spec, clients, run_id="server-run", expires="2099-01-01T00:00:00Z", environ=environ, waits=FAST_WAITS
    )

    first = provisioner.up()
    assert {
        "bucket",
        "role",
        "instance-profile",
        "parameter",
        "security-group",
        "instance",
        "dns-record",
    } <= first.kinds()
    with watch(clients) as log:
        second = provisioner.up()
    assert first.diff(second) == [] and log.mutating() == []
    assert provisioner.plan().is_noop

    status = provisioner.status()
    assert status.instance is not None and status.instance.state in ("pending", "running")
    assert status.endpoint == "https://registry.example.com/v2/"
    assert status.dns == f"registry.example.com -> {status.address}"
    assert status.health is None and "not checked" in str(status)

    assert [f.kind for f in sweep(clients, run_id="server-run")]
    removed = provisioner.down()
    assert removed.kept and removed.kept[0].kind == "bucket"
    left = provisioner.inventory()
    assert [r.kind for r in left.resources] == ["bucket"], str(left)
    assert first.without("bucket").diff(left.without("bucket")) == [
        f"removed {r}" for r in first.without("bucket").resources
    ]
