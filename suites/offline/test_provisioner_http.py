"""The HTTP clients of a deployment against local servers on 127.0.0.1: the instance's Namecheap
dynamic DNS update (the boot script's ``namecheap_update`` and ``update_dns``, run by bash with the real
curl, its answer checked for ``<ErrCount>0</ErrCount>``) and the provisioner's bounded health wait.

The fake Namecheap answers over TLS with a certificate for Namecheap's host name from a CA of the test's
own; curl reaches it through a ``.curlrc`` (``connect-to``, ``resolve``, ``cacert``) in its own ``CURL_HOME``, so
the script's text runs as shipped and nothing leaves 127.0.0.1. Only where the password file lives
moves: the values block's ``DNS_PASSWORD_FILE`` points into the test's directory instead of /etc.
"""

from __future__ import annotations

import shlex
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from provisioning import names
from provisioning.errors import HealthTimeout
from provisioning.health import wait_until_healthy
from provisioning.render import paths
from provisioning.render.boot_script import boot_script_values, namecheap_host_and_domain, render_boot_script
from provisioning.render.tls import render_selfsigned
from provisioning.spec import Spec

BASH = shutil.which("bash")
CURL = shutil.which("curl")
NAMECHEAP_HOST = "dynamicdns.park-your-domain.com"  # where the boot script sends its updates (port 443)
CLOSED_PORT = 9  # discard: nothing listens on 127.0.0.1:9

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
    hosts: list[str | None] = field(default_factory=list)

    def next(self) -> tuple[int, str]:
        index = min(len(self.requests) - 1, len(self.answers) - 1)
        return self.answers[index]


def serve(script: Script, tls: ssl.SSLContext | None = None) -> ThreadingHTTPServer:
    """A server on 127.0.0.1 (an ephemeral port) answering every GET from ``script``, over TLS if given."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            script.requests.append(self.path)
            script.hosts.append(self.headers.get("Host"))
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
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


@pytest.fixture
def local_server() -> Iterator[tuple[str, Script]]:
    script = Script()
    server = serve(script)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", script
    finally:
        server.shutdown()
        server.server_close()


# --- Namecheap: the boot script's functions, run by bash with the real curl ----------------------


def namecheap_dns(hostname: str = "registry.example.com") -> dict[str, str]:
    return {"mode": "namecheap", "hostname": hostname, "password": "env:SPOTREG_PASSWORD_CI"}


@dataclass
class FakeNamecheap:
    """The fake Namecheap's script of answers, and the CURL_HOME whose .curlrc sends curl there."""

    script: Script
    curl_home: Path
    directory: Path


@pytest.fixture(scope="module")
def namecheap_tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    """A server context with a certificate for Namecheap's host name, and the CA file that trusts it."""
    material = render_selfsigned([NAMECHEAP_HOST], now=datetime.now(UTC))
    directory = tmp_path_factory.mktemp("namecheap-tls")
    for name, pem in (("server.crt", material.server_cert_pem), ("server.key", material.server_key_pem)):
        (directory / name).write_bytes(pem)
    (directory / "ca.crt").write_bytes(material.ca_cert_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "server.crt", directory / "server.key")
    return context, directory / "ca.crt"


def curl_home(directory: Path, ca: Path, port: int) -> Path:
    """A CURL_HOME whose .curlrc connects Namecheap's host name to 127.0.0.1:port (never elsewhere) and
    trusts only ca."""
    home = directory / f"curl-home-{port}"
    home.mkdir()
    rc = f'connect-to = "{NAMECHEAP_HOST}:443:127.0.0.1:{port}"\nresolve = "{NAMECHEAP_HOST}:443:127.0.0.1"\n'
    (home / ".curlrc").write_text(f'{rc}cacert = "{ca}"\n')
    return home


@pytest.fixture
def namecheap(namecheap_tls: tuple[ssl.SSLContext, Path], tmp_path: Path) -> Iterator[FakeNamecheap]:
    if BASH is None or CURL is None:
        pytest.skip("bash and curl run the boot script's functions (Debian: apt-get install curl)")
    context, ca = namecheap_tls
    script = Script(answers=[(200, NAMECHEAP_OK.format(ip="198.51.100.4"))])
    server = serve(script, context)
    try:
        yield FakeNamecheap(script, curl_home(tmp_path, ca, server.server_address[1]), tmp_path)
    finally:
        server.shutdown()
        server.server_close()


def run_boot_functions(
    spec: Spec, calls: str, fake: FakeNamecheap, password: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """Source the rendered boot script without ``main`` and run ``calls`` in bash; ``password``, if
    given, is written where ``update_dns`` would leave it (no newline)."""
    script = render_boot_script(spec)
    shipped = f"readonly DNS_PASSWORD_FILE={shlex.quote(paths.DNS_PASSWORD_PATH)}\n"
    assert shipped in script and script.endswith('\nmain "$@"\n')
    password_file = fake.directory / "dns" / "password"
    script = script.replace(shipped, f"readonly DNS_PASSWORD_FILE={shlex.quote(str(password_file))}\n")
    if password is not None:
        password_file.parent.mkdir(mode=0o700)
        password_file.write_text(password)
    environment = {"PATH": f"{Path(CURL or 'curl').parent}:/usr/bin:/bin", "CURL_HOME": str(fake.curl_home), **env}
    return subprocess.run(
        [BASH or "bash", "-c", script.removesuffix('main "$@"\n') + calls],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
        timeout=120,
    )


def query_of(request: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(request).query, keep_blank_values=True)


@pytest.mark.parametrize(
    ("hostname", "host", "domain"),
    [("registry.example.com", "registry", "example.com"), ("example.com", "@", "example.com"),
     ("a.b.example.com", "a.b", "example.com")],
)  # fmt: skip
def test_instance_sends_host_domain_password_and_ip(namecheap, make_spec, hostname, host, domain):
    spec = make_spec(dns=namecheap_dns(hostname))
    result = run_boot_functions(spec, "namecheap_update 198.51.100.4", namecheap, password="s3cret&= +%")
    assert result.returncode == 0, result.stderr
    [request] = namecheap.script.requests
    assert urlsplit(request).path == "/update" and namecheap.script.hosts == [NAMECHEAP_HOST]
    wanted = {"host": [host], "domain": [domain], "password": ["s3cret&= +%"], "ip": ["198.51.100.4"]}
    assert query_of(request) == wanted


def test_namecheap_refusal_fails_the_update_with_its_messages(namecheap, make_spec):
    namecheap.script.answers = [(200, NAMECHEAP_BAD_PASSWORD)]
    spec = make_spec(dns=namecheap_dns())
    result = run_boot_functions(spec, "namecheap_update 198.51.100.4", namecheap, password="wrong-password")
    assert result.returncode != 0
    assert "Namecheap refused the update" in result.stderr and "Passwords do not match" in result.stderr
    assert "wrong-password" not in result.stderr


def test_namecheap_http_error_and_garbage_fail_the_update(namecheap, make_spec):
    namecheap.script.answers = [(500, "oops"), (200, "<html>not xml")]
    spec = make_spec(dns=namecheap_dns())
    failed = run_boot_functions(spec, "namecheap_update 198.51.100.4", namecheap, password="pw")
    assert failed.returncode != 0 and "500" in failed.stderr
    garbage = run_boot_functions(spec, "namecheap_update 198.51.100.4", namecheap)
    assert garbage.returncode != 0 and "Namecheap refused the update: <html>not xml" in garbage.stderr
    assert len(namecheap.script.requests) == 2


def test_namecheap_answer_without_errcount_fails_the_update(namecheap, make_spec):
    namecheap.script.answers = [(200, "<interface-response><Done>true</Done></interface-response>")]
    result = run_boot_functions(make_spec(dns=namecheap_dns()), "namecheap_update 198.51.100.4", namecheap, "pw")
    assert result.returncode != 0 and "Namecheap refused the update" in result.stderr


def test_namecheap_unreachable_fails_and_hides_the_password(namecheap, namecheap_tls, make_spec):
    closed = replace(namecheap, curl_home=curl_home(namecheap.directory, namecheap_tls[1], CLOSED_PORT))
    spec = make_spec(dns=namecheap_dns())
    result = run_boot_functions(spec, "namecheap_update 198.51.100.4", closed, password="hunter2hunter2")
    assert result.returncode != 0 and "hunter2hunter2" not in result.stderr
    assert "curl: (7)" in result.stderr  # could not connect (to 127.0.0.1:9)
    assert namecheap.script.requests == []


def test_namecheap_split_matches_the_boot_script(make_spec):
    for hostname, expected in [
        ("registry.example.com", ("registry", "example.com")),
        ("example.com", ("@", "example.com")),
        ("a.b.example.com", ("a.b", "example.com")),
    ]:
        assert namecheap_host_and_domain(hostname) == expected
        values = boot_script_values(make_spec(dns=namecheap_dns(hostname)))
        assert (values["DDNS_HOST"], values["DDNS_DOMAIN"]) == expected


def test_the_instance_updates_namecheap_with_what_up_stored(namecheap, make_provisioner, make_spec, clients):
    spec = make_spec(dns=namecheap_dns())
    provisioner = make_provisioner(spec)
    inventory = provisioner.up()
    (instance,) = inventory.of("instance")
    ip = clients.ec2.describe_instances(InstanceIds=[instance.id])["Reservations"][0]["Instances"][0]["PublicIpAddress"]
    values = boot_script_values(spec)
    assert values["DNS_PASSWORD_PARAMETER"] == names.dns_password_parameter(spec)
    stored = clients.ssm.get_parameter(Name=values["DNS_PASSWORD_PARAMETER"], WithDecryption=True)["Parameter"]
    assert stored["Type"] == "SecureString" and stored["Value"] == "correct horse battery staple"
    # The instance's side: `aws` answers the decrypted read of that parameter from moto's record (and
    # nothing else), the metadata service's public address is the instance's, retries do not pause.
    aws = 'aws() { [[ " $* " == *" --name $DNS_PASSWORD_PARAMETER --with-decryption "* ]] && echo "$STORED"; }'
    stubs = f'{aws}; public_ipv4() {{ echo "$INSTANCE_IP"; }}; sleep() {{ :; }}'
    result = run_boot_functions(spec, f"{stubs}; update_dns", namecheap, STORED=stored["Value"], INSTANCE_IP=ip)
    assert result.returncode == 0, result.stderr
    [request] = namecheap.script.requests
    assert query_of(request) == {
        "host": ["registry"], "domain": ["example.com"], "password": ["correct horse battery staple"], "ip": [ip]
    }  # fmt: skip
    assert f"registry.example.com -> {ip} (Namecheap)" in result.stderr
    password_file = namecheap.directory / "dns" / "password"
    assert password_file.read_text() == "correct horse battery staple" and password_file.stat().st_mode & 0o077 == 0
    removed = provisioner.down()
    assert any("Namecheap" in note for note in removed.notes)


def test_up_leaves_namecheap_to_the_instance(make_provisioner, make_spec):
    provisioner = make_provisioner(make_spec(dns=namecheap_dns()))
    provisioner.up()
    (change,) = [c for c in provisioner.last_up.changes if c.kind == "dns-record"]
    assert "every boot" in change.detail


# --- the provisioner's health wait --------------------------------------------------------------


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
