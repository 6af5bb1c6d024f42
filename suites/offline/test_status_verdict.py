"""`spotreg status` through the CLI on moto: each state of a deployment gives its verdict and exit code,
and `--json` says the same. Health is probed only on 127.0.0.1 (`Provisioner._where` is patched)."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from provisioning import names
from provisioning.aws.elastic_ip import deployment_addresses
from provisioning.clients import AwsClients
from provisioning.dns import route53
from provisioning.provisioner import Provisioner
from provisioning.spec import Spec
from provisioning.status_verdict import EXIT_CODES, Verdict
from spotreg.cli import main
from suites.offline.conftest import BASE_MAPPING, PASSWORD, PASSWORD_ENV, ZONE_ID, merged

HOST = "registry.example.com"
ROUTE53 = {"dns": {"mode": "route53", "hostname": HOST, "zone_id": ZONE_ID}}
MOCK = ["--endpoint-url", "http://127.0.0.1:9"]  # make_clients is patched: nothing is ever sent here
JSON_KEYS = {"deployment", "region", "verdict", "exit_code", "instance", "address", "dns", "endpoint", "health",
             "resources"}  # fmt: skip


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value)


def _toml(mapping: dict[str, Any]) -> str:
    """The conftest's spec mapping as a spotreg.toml (sections of scalars, lists, and [[registry.users]])."""
    lines: list[str] = []
    for section, body in mapping.items():
        tables = {k: v for k, v in body.items() if isinstance(v, list) and v and isinstance(v[0], dict)}
        lines.append(f"[{section}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in body.items() if k not in tables]
        for key, items in tables.items():
            for item in items:
                lines.append(f"[[{section}.{key}]]")
                lines += [f"{k} = {_toml_value(v)}" for k, v in item.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def cli(
    clients: AwsClients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str]]:
    """cli(*flags, **spec overrides) -> (exit code, stdout) of `spotreg status` against this test's moto."""
    monkeypatch.setattr("provisioning.clients.make_clients", lambda *_, **__: clients)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)

    def run(*flags: str, **overrides: Any) -> tuple[int, str]:
        config = tmp_path / "spotreg.toml"
        config.write_text(_toml(merged(BASE_MAPPING, overrides)))
        capsys.readouterr()
        code = main(["status", "--config", str(config), *flags])
        return code, capsys.readouterr().out

    return run


def _json(cli: Callable[..., tuple[int, str]], *flags: str, **overrides: Any) -> tuple[int, dict[str, Any]]:
    code, out = cli("--json", *flags, **overrides)
    document = json.loads(out)
    assert set(document) == JSON_KEYS
    assert document["exit_code"] == code == EXIT_CODES[Verdict(document["verdict"])]
    return code, document


def _only_instance(clients: AwsClients) -> str:
    (reservation,) = clients.ec2.describe_instances(
        Filters=[{"Name": "instance-state-name", "Values": ["running", "pending"]}]
    )["Reservations"]
    return str(reservation["Instances"][0]["InstanceId"])


def test_nothing_deployed_exits_10(cli: Callable[..., tuple[int, str]]) -> None:
    code, document = _json(cli, *MOCK)
    assert (code, document["verdict"]) == (10, "not-deployed")
    assert document["instance"] is None and document["resources"] == []


def test_after_down_the_kept_bucket_alone_is_not_deployed(
    make_provisioner: Callable[..., Provisioner], make_spec: Callable[..., Spec], cli: Callable[..., tuple[int, str]]
) -> None:
    provisioner = make_provisioner(make_spec())
    provisioner.up()
    provisioner.down()
    code, document = _json(cli, *MOCK)
    assert code == 10
    assert [r["kind"] for r in document["resources"]] == ["bucket"]


def test_a_stopped_instance_exits_11(
    make_provisioner: Callable[..., Provisioner], clients: AwsClients, cli: Callable[..., tuple[int, str]]
) -> None:
    make_provisioner().up()
    instance_id = _only_instance(clients)
    clients.ec2.stop_instances(InstanceIds=[instance_id])
    code, document = _json(cli)  # no --endpoint-url: a stopped instance is not probed at all
    assert (code, document["verdict"]) == (11, "instance-down")
    assert document["instance"]["id"] == instance_id and document["instance"]["state"] == "stopped"
    assert document["health"]["checked"] is False


def test_a_terminated_instance_with_its_resources_left_exits_11(
    make_provisioner: Callable[..., Provisioner], clients: AwsClients, cli: Callable[..., tuple[int, str]]
) -> None:
    make_provisioner().up()
    clients.ec2.terminate_instances(InstanceIds=[_only_instance(clients)])
    code, out = cli(*MOCK)
    assert code == 11
    assert "instance: none" in out and "verdict: instance-down (exit 11)" in out


def test_an_a_record_pointing_elsewhere_exits_13(
    make_provisioner: Callable[..., Provisioner],
    make_spec: Callable[..., Spec],
    clients: AwsClients,
    zone_id: str,
    cli: Callable[..., tuple[int, str]],
) -> None:
    make_provisioner(make_spec(**ROUTE53)).up()
    code, document = _json(cli, *MOCK, **ROUTE53)
    assert (code, document["dns"]["elsewhere"]) == (14, None)  # the record leads here; health not probed
    assert document["dns"]["values"] == [document["address"]]
    record = route53.RecordSet(zone_id, HOST, "A", 60, ("198.51.100.9",))
    clients.route53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": record.resource_record_set()}]},
    )
    code, document = _json(cli, *MOCK, **ROUTE53)
    assert (code, document["verdict"]) == (13, "dns-elsewhere")
    assert document["dns"]["values"] == ["198.51.100.9"] and "198.51.100.9" in document["dns"]["elsewhere"]


def test_an_elastic_ip_not_on_the_instance_exits_13(
    make_provisioner: Callable[..., Provisioner],
    make_spec: Callable[..., Spec],
    clients: AwsClients,
    cli: Callable[..., tuple[int, str]],
) -> None:
    eip = {"dns": {"mode": "eip"}}
    provisioner = make_provisioner(make_spec(**eip))
    provisioner.up()
    assert cli(*MOCK, **eip)[0] == 14
    (address,) = deployment_addresses(clients.ec2, provisioner.deployment)
    assert address.association_id is not None
    clients.ec2.disassociate_address(AssociationId=address.association_id)
    code, out = cli(*MOCK, **eip)
    assert code == 13
    assert f"Elastic IP {address.public_ip} is associated with nothing" in out


def test_health_not_checked_is_14_never_0(
    make_provisioner: Callable[..., Provisioner], cli: Callable[..., tuple[int, str]]
) -> None:
    make_provisioner().up()
    code, document = _json(cli, *MOCK)  # moto: its addresses are not real, so never probed
    assert (code, document["verdict"]) == (14, "not-checked")
    assert document["health"] == {"checked": False, "status": None, "attempts": None, "waited": None, "error": None}
    assert cli("--health-timeout", "0")[0] == 14


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """The instance's public address is 127.0.0.1: the health probe never leaves this machine."""
    where = Provisioner._where
    monkeypatch.setattr(Provisioner, "_where", lambda self: (where(self)[0], "127.0.0.1"))


@pytest.fixture
def https_registry(tmp_path: Path, clients: AwsClients) -> Iterator[Callable[[Spec], None]]:
    """start(spec): a /v2/ answering 401 over TLS on 127.0.0.1 with the deployment's own certificate."""
    servers: list[ThreadingHTTPServer] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    def start(spec: Spec) -> None:
        ssm = clients.ssm
        key = ssm.get_parameter(Name=names.tls_key_parameter(spec), WithDecryption=True)["Parameter"]["Value"]
        cert = ssm.get_parameter(Name=names.tls_cert_parameter(spec))["Parameter"]["Value"]
        (tmp_path / "key.pem").write_text(key)
        (tmp_path / "cert.pem").write_text(cert)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
        server = ThreadingHTTPServer(("127.0.0.1", spec.registry.port), Handler)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_probed_healthy_exits_0(
    make_provisioner: Callable[..., Provisioner],
    make_spec: Callable[..., Spec],
    https_registry: Callable[[Spec], None],
    on_loopback: None,
    cli: Callable[..., tuple[int, str]],
) -> None:
    registry = {"registry": {"port": _free_port()}}
    spec = make_spec(**registry)  # dns none: the probe goes to the address, 127.0.0.1
    make_provisioner(spec).up()
    https_registry(spec)
    code, document = _json(cli, "--health-timeout", "5", **registry)
    assert (code, document["verdict"]) == (0, "healthy")
    assert document["health"]["checked"] is True and document["health"]["status"] == 401
    assert document["health"]["error"] is None and document["endpoint"].startswith("https://127.0.0.1:")


def test_an_endpoint_that_does_not_answer_exits_12(
    make_provisioner: Callable[..., Provisioner],
    make_spec: Callable[..., Spec],
    on_loopback: None,
    cli: Callable[..., tuple[int, str]],
) -> None:
    registry = {"registry": {"port": _free_port()}}  # nothing listens there
    make_provisioner(make_spec(**registry)).up()
    code, document = _json(cli, "--health-timeout", "0.5", **registry)
    assert (code, document["verdict"]) == (12, "unhealthy")
    assert document["health"]["checked"] is True and document["health"]["status"] is None
    assert document["health"]["error"]
