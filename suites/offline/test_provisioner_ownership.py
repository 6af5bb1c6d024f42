"""What spotreg did not make stays untouched: parameters, DNS records and buckets of others; plus the
Elastic IP's association timing, the health probe's TLS name, and denials outside the steps."""

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
from moto.core.models import DEFAULT_ACCOUNT_ID as ACCOUNT_ID
from moto.ec2.models import ec2_backends

from provisioning import names
from provisioning.dns import route53
from provisioning.errors import DnsError, OwnershipError, PermissionDenied
from provisioning.names import TAG_CREATED, tls_cert_parameter
from provisioning.render.boot_script import boot_script_values
from provisioning.results import IncompleteDown
from provisioning.sweeper import sweep
from suites.offline.conftest import LOCK_ROOT, REGION, ZONE_ID, fail, injected_error, watch

BUCKET = "spotreg-offline-images"
HOST = "registry.example.com"
ROUTE53 = {"dns": {"mode": "route53", "hostname": HOST, "zone_id": ZONE_ID}}


def _bucket_tags(s3) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=BUCKET)["TagSet"]}


# --- 1. parameters below the prefix that are not spotreg's -------------------------------------------


def test_a_users_own_parameter_below_the_prefix_survives_up_and_down(make_provisioner, clients):
    ssm = clients.ssm
    ssm.put_parameter(Name="/spotreg/offline/users/ci", Value="their password", Type="SecureString")
    provisioner = make_provisioner()
    provisioner.up()
    assert all(c.name != "/spotreg/offline/users/ci" for c in provisioner.last_up.changes if c.action == "delete")
    provisioner.down()
    assert ssm.get_parameter(Name="/spotreg/offline/users/ci", WithDecryption=True)["Parameter"]["Value"] == (
        "their password"
    )
    assert "/spotreg/offline/htpasswd" not in {
        p["Name"] for p in ssm.get_parameters_by_path(Path="/spotreg/offline", Recursive=True)["Parameters"]
    }


# --- 2. a DNS record at the host name without spotreg's marker -----------------------------------------


@pytest.mark.parametrize(("kind", "value"), [("A", "198.51.100.20"), ("CNAME", "elsewhere.example.net")])
def test_an_unmarked_record_at_the_host_name_is_refused_before_anything_is_made(
    make_provisioner, make_spec, clients, zone_id, kind, value
):
    clients.route53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": HOST,
                        "Type": kind,
                        "TTL": 300,
                        "ResourceRecords": [{"Value": value}],
                    },
                }
            ]
        },
    )
    provisioner = make_provisioner(make_spec(**ROUTE53))
    with watch(clients) as log, pytest.raises(OwnershipError) as raised:
        provisioner.up()
    assert HOST in str(raised.value) and kind in str(raised.value) and "marker" in str(raised.value)
    assert raised.value.step == "preflight"
    assert log.mutating() == [], f"made something before refusing: {log.mutating()}"
    provisioner.down()
    records = route53.records_at(clients.route53, zone_id, HOST)
    assert records[kind].values[0].rstrip(".") == value


def test_a_record_the_deployments_own_instance_wrote_is_taken_over(make_provisioner, make_spec, clients, zone_id):
    """The boot writes the A record without the TXT marker; an up that stopped before its DNS step
    must still be resumable."""
    provisioner = make_provisioner(make_spec(**ROUTE53))
    with watch(clients, fail("ChangeResourceRecordSets", times=1)), pytest.raises(Exception, match="dns"):
        provisioner.up()
    (instance,) = provisioner.inventory().of("instance")
    ip = clients.ec2.describe_instances(InstanceIds=[instance.id])["Reservations"][0]["Instances"][0]["PublicIpAddress"]
    clients.route53.change_resource_record_sets(  # what the boot script does
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {"Name": HOST, "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": ip}]},
                }
            ]
        },
    )
    provisioner.up()
    assert route53.owner_of(route53.records_at(clients.route53, zone_id, HOST))["spotreg:deployment"] == "offline"


# --- 3. a bucket spotreg did not create ----------------------------------------------------------------


def test_a_created_bucket_is_tagged_created_and_an_adopted_one_is_not(make_provisioner, clients):
    make_provisioner().up()
    assert _bucket_tags(clients.s3)[TAG_CREATED] == "offline"


def test_an_adopted_bucket_keeps_its_versioning_and_its_data(make_provisioner, clients):
    s3 = clients.s3
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=BUCKET, Key="their/backup.tar", Body=b"precious")
    provisioner = make_provisioner()  # storage.versioning = false
    provisioner.up()
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    assert TAG_CREATED not in _bucket_tags(s3)
    assert provisioner.plan().is_noop or all(c.kind != "bucket" for c in provisioner.plan().pending())
    with pytest.raises(IncompleteDown) as incomplete:
        provisioner.down(delete_data=True)
    assert s3.get_object(Bucket=BUCKET, Key="their/backup.tar")["Body"].read() == b"precious"
    assert incomplete.value.exit_code == 7 and "not created by spotreg" in str(incomplete.value)
    assert provisioner.inventory().without("bucket").is_empty  # everything else went


def test_sweep_keeps_an_adopted_bucket(make_provisioner, clients):
    s3 = clients.s3
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="their/backup.tar", Body=b"precious")
    make_provisioner().up()
    results = sweep(clients, run_id="test-run", dry_run=False)
    (bucket,) = [f for f in results if f.kind == "bucket"]
    assert bucket.outcome.startswith("not created by spotreg")
    assert s3.get_object(Bucket=BUCKET, Key="their/backup.tar")["Body"].read() == b"precious"


# --- 4. the Elastic IP is associated once the instance runs ---------------------------------------------


def test_elastic_ip_is_associated_only_once_the_instance_runs(make_provisioner, make_spec, clients):
    backend = ec2_backends[ACCOUNT_ID][REGION]
    launched, describes = [False], [0]
    pending: list[Any] = []  # moto's instance, held in "pending" until described twice

    def instance_pending_until_described_twice(service: str, name: str, params: dict[str, Any]) -> None:
        if name == "RunInstances":
            launched[0] = True
            return
        if launched[0] and not pending:
            (fresh,) = [i for i in backend.all_instances() if i.state == "running"]
            fresh._state.name, fresh._state.code = "pending", 0
            pending.append(fresh)
        if not pending:
            return
        instance = pending[0]
        if name == "DescribeInstances" and params.get("InstanceIds") == [instance.id]:
            describes[0] += 1
            if describes[0] >= 2:
                instance._state.name, instance._state.code = "running", 16
        if name == "AssociateAddress" and instance.state != "running":
            raise injected_error(name, "IncorrectInstanceState", f"The instance '{instance.id}' is not running")

    lines: list[str] = []
    provisioner = make_provisioner(make_spec(dns={"mode": "eip"}), progress=lines.append)
    with watch(clients, instance_pending_until_described_twice) as log:
        inventory = provisioner.up()
    assert log.names().count("AssociateAddress") == 1
    assert any("to run" in line and "pending" in line for line in lines), lines
    assert len(inventory.of("elastic-ip")) == 1
    (launch,) = log.params("RunInstances")
    assert launch["NetworkInterfaces"][0]["AssociatePublicIpAddress"] is True


# --- 5. the health probe checks the self-signed certificate by its name ----------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def https_registry(tmp_path: Path) -> Iterator[tuple[int, list[str], Callable[[str, str], None]]]:
    """(port, paths, start): a /v2/ answering 401 over TLS on 127.0.0.1 once `start(key, cert)`."""
    port, paths = _free_port(), []
    holder: dict[str, ThreadingHTTPServer] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    def start(key_pem: str, cert_pem: str) -> None:
        (tmp_path / "key.pem").write_text(key_pem)
        (tmp_path / "cert.pem").write_text(cert_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        holder["server"] = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    yield port, paths, start
    if "server" in holder:
        holder["server"].shutdown()
        holder["server"].server_close()


def test_health_probe_checks_the_certificate_by_the_name_it_was_issued_to(
    make_provisioner, make_spec, clients, https_registry
):
    port, paths, start = https_registry
    spec = make_spec(registry={"port": port})  # dns none, tls selfsigned: the certificate names spotreg-offline
    provisioner = make_provisioner(spec)
    provisioner.up()
    ssm = clients.ssm
    key = ssm.get_parameter(Name=names.tls_key_parameter(spec), WithDecryption=True)["Parameter"]["Value"]
    cert = ssm.get_parameter(Name=tls_cert_parameter(spec))["Parameter"]["Value"]
    start(key, cert)
    facts, _ = provisioner._where()
    provisioner._where = lambda: (facts, "127.0.0.1")  # the instance's public IP, here
    healthy = provisioner.wait_until_healthy(3.0)
    assert healthy.status == 401 and paths == ["/v2/"]


def test_status_with_health_timeout_zero_does_not_probe(make_provisioner, clients):
    provisioner = make_provisioner()
    provisioner.up()

    def no_probe(timeout: float) -> Any:
        pytest.fail("probed with health_timeout=0")

    provisioner.wait_until_healthy = no_probe
    status = provisioner.status(health_timeout=0)
    assert status.health is None and status.health_error is None


# --- 6. sweep removes only spotreg's TXT value ------------------------------------------------------------


def test_sweep_keeps_other_txt_values_at_the_name(make_provisioner, make_spec, clients, zone_id):
    make_provisioner(make_spec(**ROUTE53)).up()
    txt = route53.records_at(clients.route53, zone_id, HOST)["TXT"]
    clients.route53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": route53.RecordSet(
                        zone_id, HOST, "TXT", 60, ('"google-site-verification=abc"', *txt.values)
                    ).resource_record_set(),
                }
            ]
        },
    )
    results = sweep(clients, run_id="test-run", dry_run=False)
    assert [f.outcome for f in results if f.kind == "dns-record"] == ["deleted"]
    left = route53.records_at(clients.route53, zone_id, HOST)
    assert left["TXT"].values == ('"google-site-verification=abc"',)
    assert "A" not in left


# --- 7. denials outside the steps ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "operation"),
    [
        pytest.param(lambda p: p.inventory(), "DescribeSecurityGroups", id="inventory"),
        pytest.param(lambda p: p.status(), "DescribeInstances", id="status"),
        pytest.param(lambda p: p.wait_until_healthy(1.0), "GetParametersByPath", id="health"),
    ],
)
def test_denials_outside_the_steps_are_permission_denied(make_provisioner, clients, call, operation):
    provisioner = make_provisioner()
    provisioner.up()
    with (
        watch(clients, fail(operation, code="AccessDenied", message="not allowed")),
        pytest.raises(PermissionDenied) as raised,
    ):
        call(provisioner)
    assert raised.value.exit_code == 3
    assert operation in str(raised.value) and "offline" in str(raised.value)


def test_up_turns_a_denial_in_its_final_inventory_into_permission_denied(make_provisioner, clients):
    after_steps = [False]

    def progress(line: str) -> None:
        if line.startswith("dns: checking"):  # dns.mode none: the last step sends nothing
            after_steps[0] = True

    def deny_after_the_steps(service: str, name: str, params: dict[str, Any]) -> None:
        # not the lock's release, nor the leftover search in Route 53 (dns.mode none tolerates a denial there)
        on_the_lock = str(params.get("Name", "")).startswith(LOCK_ROOT)
        if after_steps[0] and not on_the_lock and service != "route53":
            raise injected_error(name, "UnauthorizedOperation", "not allowed")

    with watch(clients, deny_after_the_steps), pytest.raises(PermissionDenied) as raised:
        make_provisioner(progress=progress).up()
    assert raised.value.step == "inventory" and raised.value.exit_code == 3
    assert "deployment offline" in str(raised.value)


# --- 8. legacy mode: the key the boot script reads -----------------------------------------------------


def test_legacy_key_is_stored_where_the_boot_script_reads_it(make_provisioner, make_spec, clients):
    spec = make_spec()
    make_provisioner(spec).up(legacy_access_key=True)
    name = boot_script_values(spec)["LEGACY_KEY_PARAMETER"]
    value = json.loads(clients.ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"])
    assert set(value) == {"access_key_id", "secret_access_key"}
    keys = clients.iam.list_access_keys(UserName="spotreg-offline-legacy")["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in keys] == [value["access_key_id"]]


def test_a_refused_route53_change_is_a_dns_error_with_its_exit_code(make_provisioner, make_spec, clients, zone_id):
    """Route 53 read the change and refused it: the operator sees Route 53's words and exit code 6, and
    `down` still finds everything `up` made before it."""

    def refuse(service, name, params):
        if name == "ChangeResourceRecordSets":
            raise injected_error(name, "InvalidChangeBatch", "RRSet of type A with DNS name x is not permitted")

    provisioner = make_provisioner(make_spec(**ROUTE53))
    with watch(clients, refuse), pytest.raises(DnsError) as refused:
        provisioner.up()
    assert refused.value.exit_code == 6 and refused.value.step == "dns"
    assert "route53 did not update registry.example.com" in str(refused.value) and "not permitted" in str(refused.value)
    provisioner.down()
    assert provisioner.inventory().without("bucket").is_empty
