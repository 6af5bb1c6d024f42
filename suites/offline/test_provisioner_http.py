"""The two HTTP clients of the provisioner against local servers on 127.0.0.1: Namecheap dynamic DNS
(its XML answer with ErrCount) and the bounded health wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from provisioning.aws.namecheap import parse_answer, split_hostname, update_namecheap
from provisioning.errors import DnsError, HealthTimeout
from provisioning.health import wait_until_healthy

# What Namecheap answers (note the utf-16 declaration on a UTF-8 body).
NAMECHEAP_OK = (
    '<?xml version="1.0" encoding="utf-16"?>\r\n<interface-response><Command>SETDNSHOST</Command>'
    "<Language>eng</Language><IP>{ip}</IP><ErrCount>0</ErrCount><errors /><ResponseCount>0</ResponseCount>"
    "<Done>true</Done><debug><![CDATA[]]></debug></interface-response>"
)
NAMECHEAP_BAD_PASSWORD = (
    '<?xml version="1.0" encoding="utf-16"?>\r\n<interface-response><Command>SETDNSHOST</Command>'
    "<Language>eng</Language><ErrCount>1</ErrCount><errors><Err1>Passwords do not match</Err1></errors>"
    "<ResponseCount>1</ResponseCount><responses><response><ResponseNumber>304156</ResponseNumber>"
    "<ResponseString>Validation error; invalid ; password</ResponseString></response></responses>"
    "<Done>true</Done><debug><![CDATA[]]></debug></interface-response>"
)


@dataclass
class Script:
    """What the local server answers: a list of (status, body), the last repeated."""

    answers: list[tuple[int, str]] = field(default_factory=lambda: [(200, "ok")])
    requests: list[str] = field(default_factory=list)

    def next(self) -> tuple[int, str]:
        index = min(len(self.requests) - 1, len(self.answers) - 1)
        return self.answers[index]


@pytest.fixture
def local_server() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            script.requests.append(self.path)
            status, body = script.next()
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", script
    finally:
        server.shutdown()
        server.server_close()


def test_namecheap_success_parses_errcount_zero(local_server):
    url, script = local_server
    script.answers = [(200, NAMECHEAP_OK.format(ip="198.51.100.4"))]
    answer = update_namecheap("registry.example.com", "s3cret&=", "198.51.100.4", base_url=f"{url}/update")
    assert answer.ok and answer.ip == "198.51.100.4" and answer.done
    query = parse_qs(urlsplit(script.requests[0]).query)
    assert query == {"host": ["registry"], "domain": ["example.com"], "password": ["s3cret&="], "ip": ["198.51.100.4"]}


def test_namecheap_failure_carries_its_messages(local_server):
    url, script = local_server
    script.answers = [(200, NAMECHEAP_BAD_PASSWORD)]
    with pytest.raises(DnsError, match="Passwords do not match") as failure:
        update_namecheap("registry.example.com", "wrong", "198.51.100.4", base_url=f"{url}/update")
    assert failure.value.errors == ("Passwords do not match",) and failure.value.hostname == "registry.example.com"
    assert "wrong" not in str(failure.value)


def test_namecheap_http_error_and_garbage(local_server):
    url, script = local_server
    script.answers = [(500, "oops"), (200, "<html>not xml")]
    with pytest.raises(DnsError, match="HTTP 500"):
        update_namecheap("registry.example.com", "pw", "198.51.100.4", base_url=f"{url}/update")
    with pytest.raises(DnsError, match="unreadable answer"):
        update_namecheap("registry.example.com", "pw", "198.51.100.4", base_url=f"{url}/update")


def test_namecheap_unreachable_hides_the_password():
    with pytest.raises(DnsError) as failure:
        update_namecheap(
            "registry.example.com", "hunter2hunter2", "198.51.100.4", base_url="http://127.0.0.1:9/update", timeout=2
        )
    assert "hunter2hunter2" not in str(failure.value)


def test_namecheap_split_matches_the_boot_script():
    assert split_hostname("registry.example.com") == ("registry", "example.com")
    assert split_hostname("example.com") == ("@", "example.com")
    assert split_hostname("a.b.example.com") == ("a.b", "example.com")


def test_namecheap_parse_without_errcount_is_an_error():
    with pytest.raises(DnsError, match="ErrCount"):
        parse_answer("<interface-response><Done>true</Done></interface-response>")


def test_provisioner_updates_namecheap_through_the_injected_url(local_server, make_provisioner, make_spec, clients):
    url, script = local_server
    script.answers = [(200, NAMECHEAP_OK.format(ip="x"))]
    spec = make_spec(
        dns={"mode": "namecheap", "hostname": "registry.example.com", "password": "env:SPOTREG_PASSWORD_CI"}
    )
    provisioner = make_provisioner(spec, namecheap_url=f"{url}/update")
    inventory = provisioner.up()
    (instance,) = inventory.of("instance")
    ip = clients.ec2.describe_instances(InstanceIds=[instance.id])["Reservations"][0]["Instances"][0]["PublicIpAddress"]
    query = parse_qs(urlsplit(script.requests[-1]).query)
    assert query["ip"] == [ip] and query["host"] == ["registry"]
    stored = clients.ssm.get_parameter(Name="/spotreg/offline/dns-password", WithDecryption=True)["Parameter"]
    assert stored["Type"] == "SecureString" and stored["Value"] == "correct horse battery staple"
    removed = provisioner.down()
    assert any("Namecheap" in note for note in removed.notes)


def test_namecheap_is_left_to_the_instance_without_a_url(make_provisioner, make_spec):
    spec = make_spec(
        dns={"mode": "namecheap", "hostname": "registry.example.com", "password": "env:SPOTREG_PASSWORD_CI"}
    )
    provisioner = make_provisioner(spec)
    provisioner.up()
    (change,) = [c for c in provisioner.last_up.changes if c.kind == "dns-record"]
    assert "every boot" in change.detail


def test_health_succeeds_on_401_after_errors(local_server):
    url, script = local_server
    script.answers = [(502, "bad gateway"), (503, "starting"), (401, '{"errors":[{"code":"UNAUTHORIZED"}]}')]
    seen: list[str] = []
    healthy = wait_until_healthy(f"{url}/v2/", 10, initial_interval=0.01, max_interval=0.05, progress=seen.append)
    assert healthy.status == 401 and healthy.attempts == 3
    assert any("HTTP 503" in line for line in seen) and "healthy" in seen[-1]


def test_health_times_out_with_the_last_status_and_body(local_server):
    url, script = local_server
    script.answers = [(503, "registry: storage driver not ready")]
    started = time.monotonic()
    with pytest.raises(HealthTimeout) as failure:
        wait_until_healthy(
            f"{url}/v2/", 0.5, initial_interval=0.05, max_interval=0.1, console_output=lambda: "cloud-init: done"
        )
    elapsed = time.monotonic() - started
    error = failure.value
    assert error.last_status == 503 and "storage driver not ready" in error.last_body
    assert error.attempts >= 2 and error.console_output == "cloud-init: done"
    assert "HTTP 503" in str(error) and "storage driver not ready" in str(error)
    assert elapsed < 3, f"the wait overran its deadline: {elapsed:.1f}s"


def test_health_times_out_on_a_closed_port_with_the_error():
    with pytest.raises(HealthTimeout) as failure:
        wait_until_healthy("http://127.0.0.1:9/v2/", 0.3, initial_interval=0.05, request_timeout=0.2)
    assert failure.value.last_status is None and "ConnectionError" in (failure.value.last_error or "")
