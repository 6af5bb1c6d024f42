"""The recipe's test: tag, push, remove every local copy, pull, compare — with redirect on and off."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

import pytest

from fixtures.round_trip import push, round_trip
from fixtures.test_images import MiB

pytestmark = pytest.mark.stack


def _repository(purpose: str) -> str:
    return f"stack/{purpose}-{secrets.token_hex(4)}"


@pytest.mark.parametrize("variant", ["redirect-on", "redirect-off"])
def test_multi_layer_image_round_trip(variant, booted_registries, docker_client, make_test_image, phases):
    registry = booted_registries(variant)
    repository = _repository("layers")
    image = make_test_image(f"{registry.address}/{repository}:build", layer_sizes=(MiB, 2 * MiB, MiB // 2))
    api = registry.api()

    result = round_trip(docker_client, api, image, registry.address, repository, "v1", registry.auth, phases)

    generated = result.manifest.layers[-3:]  # on top of the base image's layers
    assert [layer["size"] > size for layer, size in zip(generated, image.layer_sizes, strict=True)] == [True] * 3
    # the blobs came from S3 by presigned URL exactly when storage.redirect is on
    response = api.request("GET", f"/v2/{repository}/blobs/{generated[0]['digest']}", allow_redirects=False)
    s3 = urlsplit(registry.s3_endpoint)
    if registry.spec.storage.redirect:
        assert response.status_code == 307, response.text
        location = urlsplit(response.headers["Location"])
        assert (location.hostname, location.port) == (s3.hostname, s3.port)
        assert "X-Amz-Signature=" in location.query  # presigned: the client needs no S3 credentials
    else:
        assert response.status_code == 200, response.text


@pytest.mark.box_variant("redirect-off")
def test_large_layer_round_trip_goes_through_s3_multipart(
    booted_registries, docker_client, make_test_image, s3_backend, phases
):
    registry = booted_registries("redirect-off")
    repository = _repository("large")
    image = make_test_image(f"{registry.address}/{repository}:build", layer_sizes=(65 * MiB,))
    api = registry.api()

    result = round_trip(docker_client, api, image, registry.address, repository, "v1", registry.auth, phases)

    big = max(result.manifest.layers, key=lambda layer: layer["size"])
    assert big["size"] >= 64 * MiB  # random bytes do not compress
    spec = registry.spec
    digest_hex = big["digest"].removeprefix("sha256:")
    key = f"{spec.storage.rootdirectory.strip('/')}/docker/registry/v2/blobs/sha256/{digest_hex[:2]}/{digest_hex}/data"
    stored = s3_backend.client().head_object(Bucket=spec.storage.bucket, Key=key)
    assert stored["ContentLength"] == big["size"]
    assert stored.get("ServerSideEncryption") == "AES256"  # storage.s3.encrypt: true reached S3
    # "<md5>-<parts>": the blob was assembled from parts (the driver's multipart copy above 32 MiB,
    # after its multipart upload of 10 MiB chunks)
    parts = stored["ETag"].strip('"').partition("-")[2]
    assert parts.isdigit() and int(parts) >= 2, f"{key} was not assembled from parts: ETag {stored['ETag']}"
    unfinished = s3_backend.client().list_multipart_uploads(Bucket=spec.storage.bucket).get("Uploads", [])
    assert unfinished == [], f"multipart uploads left open: {unfinished}"


def test_catalog_and_tags_list_show_what_was_pushed(booted_registries, docker_client, make_test_image):
    registry = booted_registries("redirect-on")
    first, second = _repository("catalog-a"), _repository("catalog-b")
    image = make_test_image(f"{registry.address}/{first}:one", layer_sizes=(4096,))
    docker_client.images.get(image.id).tag(f"{registry.address}/{first}", tag="two")
    docker_client.images.get(image.id).tag(f"{registry.address}/{second}", tag="only")
    for repository, tag in ((first, "one"), (first, "two"), (second, "only")):
        push(docker_client, f"{registry.address}/{repository}", tag, registry.auth)
    api = registry.api()

    catalog = api.catalog()
    assert {first, second} <= set(catalog)
    assert sorted(api.tags(first)) == ["one", "two"]
    assert api.tags(second) == ["only"]
    assert api.manifest(first, "one").digest == api.manifest(first, "two").digest == api.manifest(second, "only").digest
