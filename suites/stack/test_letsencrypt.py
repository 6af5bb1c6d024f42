"""Let's Encrypt mode, proven offline: a letsencrypt deployment boots in an instance box from its own
user data (the shipped Caddyfile and proxy container, the registry behind it), and Caddy obtains its
certificate from pebble, the run's ACME authority (``fixtures.acme_authority``), by the HTTP-01
challenge on port 80. The only differences from EC2 are the ACME directory and the CA Caddy trusts for
it (``provisioning.rehearsal.overrides``). Every client here trusts pebble's root and nothing else.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from cryptography import x509

from fixtures.acme_authority import AcmeAuthority, AcmeAuthorityMissing
from fixtures.booted_registry import BootedRegistry, boot, create_hosted_zone, provision
from fixtures.stack_deployment import PASSWORD_ENV, USER, Deployment
from harness.registry_api import MANIFEST_V2, RegistryApi, sha256_digest
from harness.smoke import CHECK_NAMES, TLS_CHAIN, SmokeTarget, check_tls_chain, format_verdicts, run_smoke
from harness.smoke import PASSWORD_ENV as SMOKE_PASSWORD_ENV
from harness.smoke import USER_ENV as SMOKE_USER_ENV
from harness.smoke.image import make_smoke_image
from provisioning import names
from provisioning.dns.route53 import records_at
from provisioning.rehearsal.overrides import PROXY_DROP_IN, render_proxy_drop_in
from provisioning.render import paths
from provisioning.render.caddyfile import ACME_DIRECTORY_ENV
from provisioning.render.container import SSL_CERT_FILE_ENV, render_proxy_run
from provisioning.render.front_config import REALM
from provisioning.spec import Spec
from provisioning.spec_loading import spec_from_mapping
from provisioning.waits import poll_until

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]
EMAIL = "registry-admin@example.org"
LAYER_BYTES = 64 * 1024 * 1024 + 4096  # at least 64 MiB once gzipped (random bytes do not shrink)
CHUNK_BYTES = 8 * 1024 * 1024
#: Caddy retries a failed certificate order after 30 s, then 60 s, ...: two rounds and the boot.
RECOVERY_SECONDS = 240


def letsencrypt_spec(
    name: str, registry_image: str, proxy_image: str, run_id: str, zone: tuple[str, str], *, redirect: bool
) -> Spec:
    """A letsencrypt deployment named for the run: Route 53 (moto) keeps ``<name>.<domain>`` current."""
    domain, zone_id = zone
    suffix = f"{name}-{run_id}"
    return spec_from_mapping(
        {
            "deployment": {"name": f"le-{suffix}"[:32], "region": "us-east-1"},
            "storage": {"bucket": f"spotreg-le-{suffix}", "redirect": redirect},
            "network": {"operator_cidrs": ["10.213.0.0/16"]},
            "dns": {"mode": "route53", "hostname": f"{name}.{domain}", "zone_id": zone_id},
            "tls": {"mode": "letsencrypt", "email": EMAIL, "proxy_image": proxy_image},
            "registry": {"image": registry_image, "users": [{"name": USER, "password": f"env:{PASSWORD_ENV}"}]},
            "tags": {"purpose": "stack-test"},
        }
    )  # fmt: skip


@pytest.fixture(scope="module")
def acme(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AcmeAuthority]:
    try:
        authority = AcmeAuthority.open(tmp_path_factory.mktemp("acme"))
    except AcmeAuthorityMissing as error:
        pytest.skip(str(error))
    with authority:
        yield authority


@pytest.fixture(scope="module")
def zone(stack_world, stack_run_id) -> tuple[str, str]:
    domain = f"le-{stack_run_id}.test"
    return domain, create_hosted_zone(stack_world.moto.client("route53"), domain)


@pytest.fixture(scope="module")
def letsencrypt_deployments(
    stack_world, registry_image, proxy_image, stack_run_id, zone
) -> Iterator[Callable[..., Deployment]]:
    """``make(name, redirect=...)``: a letsencrypt deployment provisioned into moto, ``down`` at the end."""
    made: list[Deployment] = []

    def make(name: str, *, redirect: bool = True) -> Deployment:
        spec = letsencrypt_spec(name, registry_image, proxy_image, stack_run_id, zone, redirect=redirect)
        made.append(provision(spec, stack_world.moto, stack_run_id))
        return made[-1]

    yield make
    for deployment in made:
        deployment.provisioner.down()


@pytest.fixture(scope="module")
def letsencrypt_registries(
    letsencrypt_deployments, stack_world, s3_backend, acme, tmp_path_factory
) -> Iterator[Callable[[str], BootedRegistry]]:
    """``get("redirect-on" | "redirect-off")``: that deployment booted in a box, once per module."""
    booted: dict[str, BootedRegistry] = {}

    def get(variant: str) -> BootedRegistry:
        if variant not in booted:
            deployment = letsencrypt_deployments(variant.replace("redirect-", "r"), redirect=variant == "redirect-on")
            booted[variant] = boot(deployment, stack_world, s3_backend, tmp_path_factory.mktemp("le"), acme=acme)
        return booted[variant]

    yield get
    for registry in booted.values():
        registry.remove()


@pytest.fixture
def registry(letsencrypt_registries) -> BootedRegistry:
    return letsencrypt_registries("redirect-on")


# -- helpers -------------------------------------------------------------------------------------


def served_certificate(registry: BootedRegistry, cafile: str | None) -> x509.Certificate:
    """The certificate port 443 serves for the host name, after a handshake verifying it with ``cafile``
    alone (``None``: this machine's CAs)."""
    context = ssl.create_default_context(cafile=cafile)  # with cafile: that file alone, no system CAs
    with (
        socket.create_connection((registry.box.address, 443), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=registry.hostname) as tls,
    ):
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True) or b"")


def proxy_journal(registry: BootedRegistry) -> str:
    return registry.box.journal(paths.PROXY_UNIT)


def route53_address(registry: BootedRegistry) -> str:
    """The A record the boot script wrote for the host name in (moto) Route 53."""
    assert registry.spec.dns.zone_id is not None
    found = records_at(registry.deployment.clients.route53, registry.spec.dns.zone_id, registry.hostname)
    assert "A" in found and len(found["A"].values) == 1, f"{registry.hostname}: A records {found}"
    return found["A"].values[0]


def push_large_image(api: RegistryApi) -> tuple[str, str, bytes]:
    """Push an image with one layer of at least 64 MiB, chunk by chunk; (repository, layer digest, layer)."""
    image = make_smoke_image(payload_bytes=LAYER_BYTES)
    assert len(image.layer) >= 64 * 1024 * 1024
    layer = image.layer
    chunks = (layer[at : at + CHUNK_BYTES] for at in range(0, len(layer), CHUNK_BYTES))
    assert api.upload_blob(image.repository, chunks) == image.layer_digest
    assert api.upload_blob(image.repository, [image.config]) == image.config_digest
    answer = api.request(
        "PUT",
        f"/v2/{image.repository}/manifests/{image.tag}",
        data=image.manifest,
        headers={"Content-Type": MANIFEST_V2},
    )
    assert answer.status_code == 201, answer.text
    assert api.manifest(image.repository, image.tag).digest == image.manifest_digest
    return image.repository, image.layer_digest, layer


# -- the certificate -------------------------------------------------------------------------------


def test_the_certificate_names_the_host_and_chains_to_pebbles_root(registry, acme):
    certificate = served_certificate(registry, str(registry.ca_path))  # verified: pebble's root alone

    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [registry.hostname]
    assert certificate.issuer.rfc4514_string().startswith("CN=Pebble Intermediate CA")
    # the name the certificate was issued for is the box's: Route 53's record, pebble's DNS answer
    assert route53_address(registry) == registry.box.address == registry.deployment.public_ipv4()


def test_a_client_without_pebbles_root_is_refused(registry, acme):
    with pytest.raises(ssl.SSLCertVerificationError):
        served_certificate(registry, None)  # this machine's CAs
    with pytest.raises(ssl.SSLCertVerificationError):
        served_certificate(registry, str(acme.api_ca_path))  # another CA of the run: not the issuer
    with registry.session() as session, pytest.raises(requests.exceptions.SSLError):
        session.get(f"{registry.url}/v2/", verify=True, timeout=10)


def test_caddy_proved_the_name_by_http01_on_port_80_for_the_configured_email(registry):
    journal = proxy_journal(registry)

    assert '"challenge_type":"http-01"' in journal, journal[-3000:]
    assert "certificate obtained successfully" in journal, journal[-3000:]
    assert '"challenge_type":"tls-alpn-01"' not in journal
    # the ACME account Caddy registered (one, on the instance's disk) has the spec's tls.email as contact
    users = f"{paths.CADDY_STATE_DIR}/data/caddy/acme/*/users"
    (account,) = registry.in_box("sh", "-c", f"ls {users}/*/*.json").split()
    assert json.loads(registry.in_box("cat", account))["contact"] == [f"mailto:{EMAIL}"]


def test_the_box_runs_the_shipped_caddyfile_and_proxy_unit_with_only_the_listed_overrides(registry):
    for shipped in (paths.CADDYFILE_PATH, f"{paths.SYSTEMD_DIR}/{paths.PROXY_UNIT}"):
        assert registry.in_box("cat", shipped) == registry.shipped_file(shipped).decode(), shipped
    drop_ins = registry.in_box("systemctl", "show", "-p", "DropInPaths", "--value", paths.PROXY_UNIT).split()
    assert drop_ins == [PROXY_DROP_IN]
    assert registry.box.acme is not None
    assert registry.in_box("cat", PROXY_DROP_IN) == render_proxy_drop_in(registry.box.acme)
    # the proxy container: the shipped run, its environment the image's plus the two listed variables
    run = render_proxy_run(registry.spec)
    assert run is not None
    inspected = json.loads(registry.in_box("docker", "inspect", names.PROXY_CONTAINER_NAME))[0]
    assert inspected["Config"]["Image"] == registry.spec.tls.proxy_image
    assert inspected["Config"]["Cmd"] == list(run.args)
    image_env = json.loads(registry.in_box("docker", "image", "inspect", run.image))[0]["Config"]["Env"]
    added = {item.split("=", 1)[0] for item in inspected["Config"]["Env"] if item not in image_env}
    assert added == set(run.optional_env) == {ACME_DIRECTORY_ENV, SSL_CERT_FILE_ENV}


# -- the round trip through Caddy -----------------------------------------------------------------


@pytest.mark.parametrize("variant", ["redirect-on", "redirect-off"])
def test_the_round_trip_through_caddy(letsencrypt_registries, variant):
    registry = letsencrypt_registries(variant)

    with registry.api(auth=None) as anonymous:
        challenge = anonymous.request("GET", "/v2/")
    assert challenge.status_code == 401
    assert challenge.headers["Server"].startswith("Caddy")  # through the proxy ...
    assert challenge.headers["WWW-Authenticate"] == f'Basic realm="{REALM}"'  # ... the front's challenge
    with registry.api(auth=(USER, "not-the-password")) as wrong:
        assert wrong.request("GET", "/v2/").status_code == 401

    with registry.api() as api:
        repository, digest, layer = push_large_image(api)
        answer = api.request("GET", f"/v2/{repository}/blobs/{digest}", allow_redirects=False)
        if variant == "redirect-on":
            assert answer.status_code == 307, answer.text
            location = answer.headers["Location"]
            # the presigned URL reaches the client as the registry made it: S3's address, signed
            assert location.startswith(f"{registry.s3_endpoint}/{registry.spec.storage.bucket}/"), location
            assert "X-Amz-Signature=" in location
            pulled = requests.get(location, timeout=120).content  # signed: no credentials
        else:
            assert answer.status_code == 200
            pulled = answer.content
    assert len(pulled) == len(layer) and sha256_digest(pulled) == digest


def test_port_80_serves_only_the_challenge_and_redirects_everything_else(registry):
    with registry.session() as session:
        for path in ("/v2/", "/v2/_catalog", "/.well-known/acme-challenge/no-such-token"):
            answer = session.get(f"http://{registry.hostname}{path}", allow_redirects=False, timeout=10)
            assert answer.status_code in (301, 308), (path, answer.status_code, answer.text[:200])
            assert answer.headers["Location"] == f"https://{registry.hostname}{path}"
            assert "Docker-Distribution-Api-Version" not in answer.headers
    # the registry itself listens on the instance's loopback only
    with pytest.raises(OSError):
        socket.create_connection((registry.box.address, 5000), timeout=3).close()


# -- the smoke suite -------------------------------------------------------------------------------


def test_the_smoke_checks_pass_with_pebbles_root_and_name_tls_chain_without(registry):
    target = SmokeTarget(
        endpoint=registry.hostname,
        username=USER,
        password=registry.deployment.passwords[USER],
        ca_file=registry.ca_path,
        resolve=registry.box.address,
    )
    results = run_smoke(target)
    assert [result.name for result in results] == list(CHECK_NAMES)
    assert all(result.passed is True for result in results), format_verdicts(results)

    without = check_tls_chain(
        SmokeTarget(endpoint=registry.hostname, username=USER, password="", resolve=registry.box.address)
    )
    assert without.name == TLS_CHAIN and without.passed is False, without.line()


def test_the_smoke_suite_passes_with_smoke_ca_and_fails_naming_tls_chain_without(registry):
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "SPOTREG_"))},
        SMOKE_USER_ENV: USER,
        SMOKE_PASSWORD_ENV: registry.deployment.passwords[USER],
    }
    command = [sys.executable, "-m", "pytest", "suites/smoke", "--endpoint", registry.hostname]
    command += ["--smoke-resolve", registry.box.address, "-p", "no:cacheprovider", "-q"]

    def run(*extra: str) -> tuple[int, str]:
        done = subprocess.run(
            [*command, *extra], cwd=REPO, env=environment, capture_output=True, text=True, timeout=180, check=False
        )
        return done.returncode, done.stdout + done.stderr

    code, output = run("--smoke-ca", str(registry.ca_path))
    assert code == 0 and f"{len(CHECK_NAMES)} passed" in output, output
    code, output = run()
    assert code != 0, output
    assert f"FAIL {TLS_CHAIN}:" in output, output


# -- the certificate's life: reboot, replacement, an ACME server away ------------------------------


def test_a_reboot_keeps_the_certificate_and_a_replacement_instance_gets_a_new_one(
    letsencrypt_deployments, stack_world, s3_backend, acme, tmp_path
):
    deployment = letsencrypt_deployments("life")
    registry = boot(deployment, stack_world, s3_backend, tmp_path, acme=acme)
    try:
        first = served_certificate(registry, str(registry.ca_path))
        issued = acme.issued()

        registry.box.reboot()
        registry.wait_healthy(timeout=120)

        assert served_certificate(registry, str(registry.ca_path)).serial_number == first.serial_number
        assert acme.issued() == issued, "the reboot asked the ACME server again: Let's Encrypt would rate-limit"
        journal = proxy_journal(registry)  # both boots'
        assert journal.count(f"Started {paths.PROXY_UNIT}") >= 2 and journal.count("certificate obtained") == 1
    finally:
        registry.remove()

    deployment.clients.ec2.terminate_instances(InstanceIds=[deployment.instance_id])
    deployment.relaunch()  # a new instance: a new disk, no certificate on it
    replacement = boot(deployment, stack_world, s3_backend, tmp_path, acme=acme)
    try:
        second = served_certificate(replacement, str(replacement.ca_path))
        assert second.serial_number != first.serial_number
        assert acme.issued() == issued + 1
    finally:
        replacement.remove()


#: Caddy's journal line for any failed order; then, by fault, what says why: pebble away, or refusing.
FAILED_ORDER = "could not get certificate from issuer"
FAULTS = {
    "unreachable": FAILED_ORDER,
    "refusing": '"msg":"challenge failed"',
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_without_a_certificate_nothing_serves_the_registry_and_it_recovers(
    letsencrypt_deployments, stack_world, s3_backend, tmp_path, fault
):
    with AcmeAuthority.open(tmp_path / "acme") as authority:
        if fault == "unreachable":
            authority.stop()  # its port refuses connections
        deployment = letsencrypt_deployments(f"f{fault[:3]}")
        registry = boot(deployment, stack_world, s3_backend, tmp_path, acme=authority, wait=False)
        if fault == "refusing":  # the name's address is not the instance's: pebble's validation fails
            authority.point(registry.hostname, str(stack_world.network.subnet.network_address + 250))
        try:
            poll_until(
                "the proxy to log its failed order",
                lambda: (FAILED_ORDER in (journal := proxy_journal(registry)), journal[-500:]),
                timeout=120,
                interval=1,
            )
            # the boot's log says why: which server it could not reach, or the ACME server's refusal
            said = [line for line in proxy_journal(registry).splitlines() if FAULTS[fault] in line]
            why = authority.directory_url if fault == "unreachable" else "urn:ietf:params:acme:error:"
            assert said and why in said[0], proxy_journal(registry)[-3000:]
            # nothing serves the registry: no certificate on 443, only redirects on 80, loopback-only 5000
            with pytest.raises(ssl.SSLError):
                served_certificate(registry, None)
            with registry.session() as session:
                answer = session.get(f"http://{registry.hostname}/v2/", allow_redirects=False, timeout=10)
            assert answer.status_code in (301, 308) and "Docker-Distribution-Api-Version" not in answer.headers
            with pytest.raises(OSError):
                socket.create_connection((registry.box.address, 5000), timeout=3).close()

            if fault == "unreachable":
                authority.start()  # back, with a new root
            else:
                authority.point(registry.hostname, registry.box.address)
            registry.refresh_root()
            started = time.monotonic()
            registry.wait_healthy(timeout=RECOVERY_SECONDS)
            print(f"{fault}: recovered {time.monotonic() - started:.0f} s after the ACME server could issue again")
            recovered = served_certificate(registry, str(registry.ca_path))  # verified: pebble's new root
            san = recovered.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            assert san.get_values_for_type(x509.DNSName) == [registry.hostname]
            assert registry.api().request("GET", "/v2/").status_code == 200
        finally:
            registry.remove()
