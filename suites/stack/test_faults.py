"""Faults a spot registry lives with: the instance replaced, S3 gone mid-push, the registry killed
mid-pull. Each must end with the same bytes served as were pushed — or with a clear refusal."""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from collections.abc import Iterator

import pytest

from fixtures.booted_registry import VARIANTS, StackVariant, provision, stack_spec
from fixtures.container_logs import log_tail
from fixtures.moto_server import MOTO_ACCESS_KEY, MOTO_SECRET_KEY
from fixtures.registry_api import RegistryApiError, sha256_digest
from fixtures.round_trip import RoundTrip, assert_identical, check_layers, forget_locally, pull, push, round_trip
from fixtures.s3_backend import S3Backend
from fixtures.test_images import MiB

pytestmark = pytest.mark.stack


def _repository(purpose: str) -> str:
    return f"stack/{purpose}-{secrets.token_hex(4)}"


# -- the instance is replaced (a spot interruption) -----------------------------------------------


def test_replacement_instance_serves_what_the_old_one_pushed(
    deployments, boot_registry, docker_client, make_test_image
):
    deployment = deployments("redirect-on")
    old = boot_registry(deployment)
    repository = _repository("replaced")
    image = make_test_image(f"{old.address}/{repository}:v1", layer_sizes=(3 * MiB, MiB))
    pushed = push(docker_client, f"{old.address}/{repository}", "v1", old.auth)
    before = old.api().manifest(repository, "v1")
    port, old_disk = old.container.port, old.root
    old.remove()  # the instance is gone, and its disk with it

    new = boot_registry(deployment, port=port)  # same user data, same bucket, same address, new disk

    assert new.root != old_disk and new.boot_env != old.boot_env  # a fresh disk: a new HTTP secret too
    after = new.api().manifest(repository, "v1")
    assert (after.digest, after.raw) == (before.digest, before.raw) and after.digest == pushed
    check_layers(new.api(), repository, after, image)
    forget_locally(docker_client, image.id)
    pulled = pull(docker_client, f"{new.address}/{repository}", "v1", new.auth)
    assert_identical(RoundTrip.of(f"{new.address}/{repository}:v1", pushed, after, pulled), image)


# -- S3 goes away in the middle of a push ----------------------------------------------------------


@pytest.fixture
def s3_behind_a_proxy(moto_server_factory, tcp_proxy_factory, registry_image, stack_run_id, boot_registry):
    """A deployment on a moto server of its own, and a registry that reaches it through a proxy the
    test can cut: moto keeps its state in memory, so the outage is the proxy going down, not moto."""
    moto = moto_server_factory()
    proxy = tcp_proxy_factory(moto.port)
    spec = stack_spec(StackVariant("outage", tls="none", redirect=True), registry_image, stack_run_id)
    deployment = provision(spec, moto, stack_run_id)
    registry = boot_registry(
        deployment, backend=S3Backend("moto", proxy.endpoint_url, MOTO_ACCESS_KEY, MOTO_SECRET_KEY, moto.region)
    )
    return registry, proxy


def test_s3_outage_mid_push_fails_clearly_serves_nothing_half_written_and_recovers(
    s3_behind_a_proxy, docker_client, make_test_image, phases
):
    registry, proxy = s3_behind_a_proxy
    api = registry.api()
    repository = _repository("outage")
    chunk = 11 * MiB  # above the driver's 10 MiB part size: the first chunk reaches S3 as a part
    layer = os.urandom(2 * chunk)
    digest = sha256_digest(layer)

    def chunks_with_an_outage() -> Iterator[bytes]:
        yield layer[:chunk]
        proxy.cut()  # S3 is gone after the first chunk was stored in it
        yield layer[chunk:]

    with pytest.raises(RegistryApiError) as refused:
        api.upload_blob(repository, chunks_with_an_outage())

    # the chunk after the cut is refused by the registry, naming its storage driver
    assert refused.value.status == 500 and "s3aws" in refused.value.body, refused.value
    log = log_tail(registry.container.container, 50)
    assert "s3aws" in log and "connection refused" in log, log  # the registry says why: S3 unreachable

    proxy.restore()
    # nothing half-written is served: neither the blob nor any manifest of the repository
    assert api.blob_status(repository, digest) == 404
    assert api.manifest_status(repository, "v1") == 404

    # with S3 back, the same push succeeds and reads back identical
    assert api.upload_blob(repository, [layer[i : i + chunk] for i in range(0, len(layer), chunk)]) == digest
    assert hashlib.sha256(api.blob(repository, digest)).hexdigest() == digest.removeprefix("sha256:")
    image = make_test_image(f"{registry.address}/{repository}:build", layer_sizes=(4 * MiB,))
    round_trip(docker_client, api, image, registry.address, repository, "v1", registry.auth, phases)


# -- the registry dies in the middle of a pull -----------------------------------------------------


def test_registry_killed_mid_pull_the_clients_retry_gets_identical_content(
    deployments, boot_registry, tcp_proxy_factory, docker_client, make_test_image
):
    """The engine pulls through a proxy that holds the download after 4 MiB of the large layer; the
    registry is killed there and started again as systemd would (same run, same disk, same port).
    The engine's own retry finishes the pull; the result is the pushed image."""
    assert not VARIANTS["redirect-off"].redirect  # blobs stream through the registry, not from S3
    registry = boot_registry(deployments("redirect-off"))
    proxy = tcp_proxy_factory(registry.container.port)
    through = f"127.0.0.1:{proxy.port}"
    repository = _repository("killed")
    size = 24 * MiB  # more than 4 MiB plus what loopback sockets buffer (< 10 MiB): the kill lands mid-layer
    image = make_test_image(f"{through}/{repository}:v1", layer_sizes=(size,))
    pushed = push(docker_client, f"{through}/{repository}", "v1", registry.auth)
    manifest = registry.api().manifest(repository, "v1")
    forget_locally(docker_client, image.id)

    pulled: dict[str, object] = {}
    progress: list[dict[str, object]] = []

    def pull_in_background() -> None:
        try:
            pulled["image"] = pull(docker_client, f"{through}/{repository}", "v1", registry.auth, progress)
        except Exception as error:
            pulled["error"] = error

    started = proxy.bytes_downstream
    proxy.hold_downstream_after(4 * MiB)  # the pull stops there, however fast loopback is
    puller = threading.Thread(target=pull_in_background, daemon=True)
    puller.start()
    assert proxy.held.wait(30), "the pull did not get 4 MiB through the registry in 30 s (redirect off?)"
    killed_at = proxy.bytes_downstream - started
    registry.kill_and_restart()
    proxy.release()
    puller.join(timeout=120)

    assert not puller.is_alive(), "the pull did not finish in 120 s after the restart"
    assert "error" not in pulled, f"the engine's retry failed: {pulled.get('error')}"
    assert killed_at < size, "the registry was killed after the layer had come through"
    retries = [line["status"] for line in progress if "Retrying" in str(line.get("status", ""))]
    assert retries, "the pull never had to retry: the kill did not interrupt it"
    assert_identical(RoundTrip.of(f"{through}/{repository}:v1", pushed, manifest, pulled["image"]), image)
