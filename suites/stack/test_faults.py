"""Faults a spot registry lives with: the instance replaced, S3 gone mid-push, the registry killed
mid-pull. Each must end with the same bytes served as were pushed — or with a clear refusal.

The replacement and the outage provision a deployment of their own (their own instance and Elastic IP):
a second box for a session deployment's instance would take the address its session box holds, and a
terminated instance must not reach other tests. The killed registry is the shared redirect-off box's:
systemd brings it back, and the test waits until it answers before and after.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from collections.abc import Iterator
from datetime import datetime

import pytest

from fixtures.booted_registry import Deployment
from fixtures.moto_server import MOTO_ACCESS_KEY, MOTO_SECRET_KEY
from fixtures.round_trip import RoundTrip, assert_identical, check_layers, forget_locally, pull, push, round_trip
from fixtures.s3_backend import S3Backend
from fixtures.test_images import MiB
from harness.registry_api import RegistryApiError, sha256_digest
from provisioning.render.paths import HTTP_SECRET_PATH, REGISTRY_UNIT

pytestmark = pytest.mark.stack


def _repository(purpose: str) -> str:
    return f"stack/{purpose}-{secrets.token_hex(4)}"


def _instance_state(deployment: Deployment, instance_id: str) -> str:
    answer = deployment.clients.ec2.describe_instances(InstanceIds=[instance_id])
    return str(answer["Reservations"][0]["Instances"][0]["State"]["Name"])


# -- the instance is replaced (a spot interruption) -----------------------------------------------


def test_replacement_instance_serves_what_the_old_one_pushed(
    own_deployment, boot_registry, docker_client, make_test_image
):
    deployment = own_deployment("replace", redirect=True)
    old = boot_registry(deployment)
    repository = _repository("replaced")
    image = make_test_image(f"{old.address}/{repository}:v1", layer_sizes=(3 * MiB, MiB))
    pushed = push(docker_client, f"{old.address}/{repository}", "v1", old.auth)
    before = old.api().manifest(repository, "v1")
    old_id, old_address = deployment.instance_id, old.box.address
    old_secret = old.in_box("cat", HTTP_SECRET_PATH).strip()
    assert old_secret, f"{HTTP_SECRET_PATH} on the old instance is empty"

    # the spot interruption: EC2 terminates the instance, and its disk goes with it
    deployment.clients.ec2.terminate_instances(InstanceIds=[old_id])
    old.remove()
    deployment.relaunch()  # up again: a new instance from the user data up renders now, the same bucket
    assert deployment.instance_id != old_id, "up launched no new instance"
    assert _instance_state(deployment, old_id) == "terminated"
    assert deployment.public_ipv4() == old_address, "the Elastic IP did not follow to the new instance"

    new = boot_registry(deployment)

    assert new.box.instance_id == deployment.instance_id and new.box.address == old_address
    assert new.in_box("cloud-init", "query", "v1.instance_id").strip() == deployment.instance_id
    new_secret = new.in_box("cat", HTTP_SECRET_PATH).strip()
    assert new_secret and new_secret != old_secret, "the new instance kept the old HTTP secret: not a fresh disk"
    after = new.api().manifest(repository, "v1")
    assert (after.digest, after.raw) == (before.digest, before.raw) and after.digest == pushed
    check_layers(new.api(), repository, after, image)
    forget_locally(docker_client, image.id)
    pulled = pull(docker_client, f"{new.address}/{repository}", "v1", new.auth)
    assert_identical(RoundTrip.of(f"{new.address}/{repository}:v1", pushed, after, pulled), image)


# -- S3 goes away in the middle of a push ----------------------------------------------------------


def test_s3_outage_mid_push_fails_clearly_serves_nothing_half_written_and_recovers(
    own_deployment, boot_registry, stack_world, tcp_proxy_factory, docker_client, make_test_image, phases
):
    """The box's registry reaches the world's moto through a proxy the test can cut (moto keeps its
    state in memory: the outage is the proxy going down, not moto). The registry signs with static
    keys here (moto accepts any): a backend that is not the world's moto gets them as unit environment,
    and SSM, EC2 and the metadata service stay on moto's own port, outside the outage."""
    deployment = own_deployment("outage", redirect=True)
    proxy = tcp_proxy_factory(stack_world.moto.port)
    backend = S3Backend("proxy", proxy.endpoint_url, MOTO_ACCESS_KEY, MOTO_SECRET_KEY, stack_world.moto.region)
    registry = boot_registry(deployment, backend=backend)
    assert registry.s3_endpoint == proxy.endpoint_url
    api = registry.api()
    repository = _repository("outage")
    chunk = 11 * MiB  # above the driver's 10 MiB part size: the first chunk reaches S3 as a part
    # The registry refuses the next chunk before reading it (it cannot even look the upload up in S3)
    # and closes the connection once it has answered unless the rest of the body is small (Go reads up
    # to 256 KiB of it): a larger chunk would meet a reset while still being sent, not the answer.
    tail = 64 * 1024
    layer = os.urandom(chunk + tail)
    digest = sha256_digest(layer)
    upstream_before = proxy.bytes_upstream

    def chunks_with_an_outage() -> Iterator[bytes]:
        yield layer[:chunk]
        assert proxy.bytes_upstream - upstream_before >= 10 * MiB, "the first chunk did not reach S3"
        proxy.cut()  # S3 is gone after the first chunk was stored in it
        yield layer[chunk:]

    with pytest.raises(RegistryApiError) as refused:
        api.upload_blob(repository, chunks_with_an_outage())

    # the chunk after the cut is refused by the registry, naming its storage driver
    assert refused.value.status == 500 and "s3aws" in refused.value.body, refused.value
    log = registry.journal()[-20000:]
    # the registry says why, in the unit's journal: its S3 driver lost the endpoint behind the proxy
    # (inside the box a forwarder still accepts at 127.0.0.1:<port>, so it is a reset or an EOF there,
    # not a refused connection)
    s3_errors = [line for line in log.splitlines() if "s3aws" in line and proxy.endpoint_url in line]
    assert s3_errors and "send request failed" in s3_errors[-1], log[-4000:]

    proxy.restore()
    # nothing half-written is served: neither the blob nor any manifest of the repository
    assert api.blob_status(repository, digest) == 404
    assert api.manifest_status(repository, "v1") == 404

    # with S3 back, the same push succeeds and reads back identical
    assert api.upload_blob(repository, [layer[:chunk], layer[chunk:]]) == digest
    assert hashlib.sha256(api.blob(repository, digest)).hexdigest() == digest.removeprefix("sha256:")
    image = make_test_image(f"{registry.address}/{repository}:build", layer_sizes=(4 * MiB,))
    round_trip(docker_client, api, image, registry.address, repository, "v1", registry.auth, phases)


# -- the registry dies in the middle of a pull -----------------------------------------------------


def _at(line: str) -> float:
    """The time of a journal line (``journalctl -o short-iso``: whole seconds)."""
    return datetime.fromisoformat(line.split(" ", 1)[0]).timestamp()


@pytest.mark.box_variant("redirect-off")
def test_registry_killed_mid_pull_the_clients_retry_gets_identical_content(
    booted_registries, tcp_proxy_factory, docker_client, make_test_image
):
    """The engine pulls through a proxy that holds the download after 4 MiB of the large layer; the
    registry container is killed there in the instance's engine, and the instance's systemd starts
    the unit again (Restart=always, RestartSec=5: the boot script runs again, same disk, same port).
    The engine's own retry finishes the pull; the result is the pushed image.

    The proxy listens on 127.0.0.1, which the host's engine treats as an insecure registry: it speaks
    TLS to the box without checking the certificate (which names the Elastic IP, not 127.0.0.1)."""
    registry = booted_registries("redirect-off")  # blobs stream through the registry, not from S3
    assert not registry.spec.storage.redirect
    registry.wait_healthy()  # a test before may have killed it too (a shared box)
    proxy = tcp_proxy_factory(registry.spec.registry.port, target_host=registry.box.address)
    through = f"127.0.0.1:{proxy.port}"
    repository = _repository("killed")
    size = 24 * MiB  # more than 4 MiB plus what the sockets on the way buffer: the kill lands mid-layer
    image = make_test_image(f"{through}/{repository}:v1", layer_sizes=(size,))
    pushed = push(docker_client, f"{through}/{repository}", "v1", registry.auth)
    manifest = registry.api().manifest(repository, "v1")
    forget_locally(docker_client, image.id)
    container_before = registry.container()["Id"]
    starts_before = registry.unit_starts()

    pulled: dict[str, object] = {}
    progress: list[dict[str, object]] = []

    def pull_in_background() -> None:
        try:
            pulled["image"] = pull(docker_client, f"{through}/{repository}", "v1", registry.auth, progress)
        except Exception as error:
            pulled["error"] = error

    started = proxy.bytes_downstream
    proxy.hold_downstream_after(4 * MiB)  # the pull stops there, however fast the network is
    puller = threading.Thread(target=pull_in_background, daemon=True)
    puller.start()
    assert proxy.held.wait(60), "the pull did not get 4 MiB through the registry in 60 s (redirect off?)"
    killed_at = proxy.bytes_downstream - started
    registry.kill_registry()
    proxy.release()
    puller.join(timeout=180)

    assert not puller.is_alive(), "the pull did not finish in 180 s after the kill"
    assert "error" not in pulled, f"the engine's retry failed: {pulled.get('error')}\n{registry.journal()[-3000:]}"
    assert killed_at < size, "the registry was killed after the layer had come through"
    retries = [line["status"] for line in progress if "Retrying" in str(line.get("status", ""))]
    assert retries, "the pull never had to retry: the kill did not interrupt it"
    assert_identical(RoundTrip.of(f"{through}/{repository}:v1", pushed, manifest, pulled["image"]), image)

    # it was the instance's systemd that brought the registry back: the unit's main process (the boot
    # script's foreground `docker run`) died with the container (137: SIGKILL), systemd scheduled a
    # restart and started the unit again RestartSec=5 later, and that run started a new container
    journal = registry.journal()
    systemd = [line for line in journal.splitlines() if " systemd[1]: " in line]
    died = [line for line in systemd if "Main process exited, code=exited, status=137" in line][-1]
    restarted = [line for line in systemd if "Scheduled restart job, restart counter is at" in line][-1]
    assert registry.unit_starts() == starts_before + 1, "\n".join(systemd)
    again = [line for line in systemd if "Started " in line][-1]
    assert _at(died) <= _at(restarted) <= _at(again) and _at(again) - _at(died) >= 5, "\n".join(systemd)
    assert registry.container()["Id"] != container_before
    assert REGISTRY_UNIT in registry.in_box("systemctl", "list-units", "--state=active", REGISTRY_UNIT)
