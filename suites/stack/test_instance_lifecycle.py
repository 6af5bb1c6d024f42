"""An instance's life in the box: reboot, spot stop/start, a dying registry, a slow SSM, a role without
SSM access. Each is what systemd, cloud-init and the shipped boot script do on their own."""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Iterator

import pytest

from fixtures.booted_registry import (
    USER,
    BootedRegistry,
    Deployment,
    StackVariant,
    boot,
    create_hosted_zone,
    provision,
    stack_spec,
)
from fixtures.round_trip import forget_locally, pull, push
from fixtures.tcp_proxy import TcpProxy
from fixtures.test_images import MiB
from provisioning import names
from provisioning.dns.route53 import records_at
from provisioning.rehearsal.world import Endpoint, answers
from provisioning.render import paths
from provisioning.render.container import S3_ENDPOINT_ENV, render_registry_run
from provisioning.secrets import make_htpasswd

pytestmark = pytest.mark.stack

STALE_ADDRESS = "192.0.2.44"  # TEST-NET-1: where a replaced instance left the name (never contacted)


def _stale_a_record(deployment: Deployment) -> None:
    spec = deployment.spec
    assert spec.dns.zone_id is not None and spec.dns.hostname is not None
    deployment.clients.route53.change_resource_record_sets(
        HostedZoneId=spec.dns.zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": f"{spec.dns.hostname}.",
                        "Type": "A",
                        "TTL": 300,
                        "ResourceRecords": [{"Value": STALE_ADDRESS}],
                    },
                }
            ]
        },
    )


def _a_record(deployment: Deployment) -> tuple[str, ...]:
    spec = deployment.spec
    assert spec.dns.zone_id is not None and spec.dns.hostname is not None
    return records_at(deployment.clients.route53, spec.dns.zone_id, spec.dns.hostname)["A"].values


@pytest.fixture(scope="module")
def route53_registry(
    stack_world, s3_backend, registry_image, stack_run_id, tmp_path_factory
) -> Iterator[BootedRegistry]:
    """A deployment with dns.mode = "route53" (its zone in the world's moto) booted in a box of its own."""
    route53 = stack_world.moto.client("route53")
    domain = f"life-{stack_run_id}.test"
    zone_id = create_hosted_zone(route53, domain)
    spec = stack_spec(
        StackVariant("life", redirect=True),
        registry_image,
        stack_run_id,
        dns={"mode": "route53", "hostname": f"registry.{domain}", "zone_id": zone_id},
    )
    deployment = provision(spec, stack_world.moto, stack_run_id)
    registry = boot(deployment, stack_world, s3_backend, tmp_path_factory.mktemp("life"))
    try:
        yield registry
    finally:
        registry.remove()
        deployment.provisioner.down()
        route53.delete_hosted_zone(Id=zone_id)


@pytest.fixture(scope="module")
def engine_way(route53_registry) -> Iterator[TcpProxy]:
    """How the host's engine reaches the box: a proxy on 127.0.0.1 (``127.0.0.1:<proxy.port>``). The
    certificate names the host name, which only (moto) Route 53 resolves; the engine does not check TLS
    on loopback (the CA check is test_auth_and_tls's, on an address the certificate names). The
    stop/start test points it at the box's new address."""
    proxy = TcpProxy(443, target_host=route53_registry.box.address).restore()
    try:
        yield proxy
    finally:
        proxy.cut()


def _way(proxy: TcpProxy) -> str:
    return f"127.0.0.1:{proxy.port}"


@pytest.fixture
def pushed(route53_registry, engine_way, docker_client, make_test_image):
    """An image pushed before the instance's trouble, gone from the engine: (repository, digest)."""
    registry = route53_registry
    repository = f"stack/life-{secrets.token_hex(4)}"
    image = make_test_image(f"{_way(engine_way)}/{repository}:v1", layer_sizes=(MiB,))
    digest = push(docker_client, f"{_way(engine_way)}/{repository}", "v1", registry.auth)
    forget_locally(docker_client, image.id)
    return repository, digest


def _pull_digest(
    proxy: TcpProxy, registry: BootedRegistry, docker_client, repository: str, password: str | None = None
) -> str:
    auth = {"username": USER, "password": password or registry.deployment.passwords[USER]}
    reference = f"{_way(proxy)}/{repository}"
    image = pull(docker_client, reference, "v1", auth)
    forget_locally(docker_client, image.id)
    digests = {digest.rsplit("@", 1)[-1] for digest in image.attrs.get("RepoDigests", [])}
    assert len(digests) == 1, image.attrs.get("RepoDigests")
    return digests.pop()


def test_boot_points_the_route53_name_at_the_address_the_metadata_service_serves(route53_registry):
    deployment = route53_registry.deployment
    assert _a_record(deployment) == (route53_registry.box.address,)  # the box's own address: it leads there
    assert f"{deployment.spec.dns.hostname} -> {route53_registry.box.address} (Route 53)" in route53_registry.journal()


def test_reboot_fetches_secrets_and_updates_dns_again_and_serves_the_same_images(
    route53_registry, pushed, engine_way, docker_client
):
    registry, deployment = route53_registry, route53_registry.deployment
    repository, digest = pushed
    _stale_a_record(deployment)  # someone (a replaced instance) moved the name away
    rotated = secrets.token_urlsafe(18)  # and the password was rotated in SSM
    parameter = names.htpasswd_parameter(deployment.spec)
    deployment.clients.ssm.put_parameter(
        Name=parameter, Value=make_htpasswd({USER: rotated}), Type="SecureString", Overwrite=True
    )
    started = registry.unit_starts()

    registry.box.reboot()
    registry.box.wait_boot(lambda: answers(registry.url))

    assert registry.unit_starts() == started + 1  # the unit ran the boot script again
    assert _a_record(deployment) == (registry.box.address,)  # and it repointed the name
    assert "status: done" in registry.in_box("cloud-init", "status")
    assert registry.api(auth=(USER, rotated)).request("GET", "/v2/").status_code == 200  # new secret fetched
    assert registry.api(auth=(USER, deployment.passwords[USER])).request("GET", "/v2/").status_code == 401
    assert _pull_digest(engine_way, registry, docker_client, repository, rotated) == digest
    deployment.passwords = {USER: rotated}  # for the tests after this one


def test_spot_stop_and_start_keeps_the_disk_and_serves_the_same_images(
    route53_registry, pushed, engine_way, docker_client
):
    """Interruption behaviour "stop": EC2 stops the instance, keeps its disk, and starts it again."""
    registry, deployment = route53_registry, route53_registry.deployment
    assert deployment.spec.instance.interruption == "stop"
    repository, digest = pushed
    secret_before = registry.in_box("cat", paths.HTTP_SECRET_PATH)
    ec2 = deployment.clients.ec2
    registry.box.metadata.schedule_interruption("stop", after_seconds=120)
    token = registry.in_box(
        "curl",
        "-fsS",
        "-X",
        "PUT",
        "-H",
        "X-aws-ec2-metadata-token-ttl-seconds: 60",
        "http://169.254.169.254/latest/api/token",
    )
    notice = registry.in_box(
        "curl",
        "-fsS",
        "-H",
        f"X-aws-ec2-metadata-token: {token}",
        "http://169.254.169.254/latest/meta-data/spot/instance-action",
    )
    assert '"action": "stop"' in notice.replace('" : "', '": "'), notice  # the two-minute warning, as on EC2

    ec2.stop_instances(InstanceIds=[deployment.instance_id])
    registry.box.stop()
    assert not answers(registry.url)
    registry.box.metadata.clear_interruption()
    before = registry.box.address
    ec2.start_instances(InstanceIds=[deployment.instance_id])
    after = deployment.public_ipv4()
    assert after is not None and after != before  # no Elastic IP: a new public address, as on EC2
    registry.box.move_to(after)
    engine_way.target = (after, 443)
    registry.box.boot()
    registry.box.wait_boot(lambda: answers(registry.url))

    assert registry.in_box("cat", paths.HTTP_SECRET_PATH) == secret_before  # the same disk
    assert _a_record(deployment) == (registry.box.address,)
    assert _pull_digest(engine_way, registry, docker_client, repository) == digest


def test_a_killed_registry_is_started_again_by_systemd(route53_registry, pushed, engine_way, docker_client):
    registry = route53_registry
    repository, digest = pushed
    started = registry.unit_starts()

    registry.kill_registry()
    deadline = time.monotonic() + 60
    while registry.unit_starts() == started:
        assert time.monotonic() < deadline, f"systemd did not restart the registry:\n{registry.journal()[-3000:]}"
        time.sleep(0.5)
    registry.wait_healthy()

    assert "Scheduled restart job" in registry.journal()  # Restart=always, not a reboot
    assert _pull_digest(engine_way, registry, docker_client, repository) == digest


def test_ssm_unreachable_at_boot_the_retry_loop_recovers_without_a_reboot(
    own_deployment, boot_registry, tcp_proxy_factory, stack_world
):
    """The AWS CLI's way to SSM is down for the first seconds of the boot; the boot script's retry loop
    waits it out, within the same run of the unit."""
    proxy = tcp_proxy_factory(stack_world.moto.port)
    proxy.cut()
    deployment = own_deployment("slow-ssm", redirect=False)
    registry = boot_registry(deployment, aws_endpoint=Endpoint(proxy.endpoint_url), wait=False)
    deadline = time.monotonic() + 90
    while "attempt 1 of 6 failed: ssm_value" not in registry.journal():
        assert time.monotonic() < deadline, f"no failed SSM attempt in the journal:\n{registry.journal()[-3000:]}"
        time.sleep(0.5)
    proxy.restore()
    registry.wait_healthy(timeout=90)

    journal = registry.journal()
    assert f"ssm_value {names.htpasswd_parameter(deployment.spec)}" in journal  # the log names the parameter
    assert registry.unit_starts() == 1  # recovered within one run: no restart
    assert "giving up" not in journal


def test_the_registry_run_passes_the_endpoint_through_only_when_it_is_set(docker_client, registry_image):
    """The box's hook (``-e REGISTRY_STORAGE_S3_REGIONENDPOINT`` without a value) is inert on EC2, where
    the unit's environment does not set it: ``docker run -e NAME`` then sets nothing."""
    run = render_registry_run(stack_spec(StackVariant("hook", redirect=True), registry_image, "hook"))
    argv = list(run.docker_run_argv())
    assert argv[argv.index(S3_ENDPOINT_ENV) - 1 : argv.index(S3_ENDPOINT_ENV) + 1] == ["-e", S3_ENDPOINT_ENV]
    create = ["docker", "create", *argv[2:]]
    create[create.index("--name") + 1] = f"spotreg-hook-{secrets.token_hex(3)}"
    environments = {}
    for label, environment in (("EC2", {}), ("box", {S3_ENDPOINT_ENV: "http://127.0.0.1:9"})):
        created = subprocess.run(
            create,
            env={"PATH": "/usr/bin:/bin", "REGISTRY_HTTP_SECRET": "x", **environment},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        try:
            environments[label] = docker_client.api.inspect_container(created)["Config"]["Env"]
        finally:
            docker_client.api.remove_container(created)
    assert not [item for item in environments["EC2"] if item.startswith(f"{S3_ENDPOINT_ENV}=")]
    assert f"{S3_ENDPOINT_ENV}=http://127.0.0.1:9" in environments["box"]
