"""One benchmark run's set-up (the booted registries) and the three sides of a round: A the registry
with docker, B raw boto3, C the registry's HTTP API without docker (context)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from benchmarks.registry_vs_s3.common import BENCH_LABEL_VALUE, COPY_CHUNK, BenchmarkError, file_digest, write_stream
from benchmarks.registry_vs_s3.registry_log import registry_log_since, registry_time_by_request
from benchmarks.registry_vs_s3.results import RoundResult
from fixtures.booted_registry import VARIANTS, BootedRegistry, boot, provision, stack_spec
from fixtures.moto_server import MotoServer
from fixtures.round_trip import forget_locally, pull, push
from fixtures.s3_backend import S3Backend
from fixtures.test_images import TEST_IMAGE_LABEL, build_generated_image, remove_image_everywhere
from provisioning.rehearsal.world import World


@dataclass
class Bench:
    """One run: the engine, the moto server, the booted registries and their repositories."""

    size: int
    client: Any
    base_image: str
    world: World
    backend: S3Backend
    workdir: Path
    raw_bucket: str
    registries: dict[str, BootedRegistry] = field(default_factory=dict)
    repositories: dict[str, str] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    log: Callable[[str], None] = print

    @property
    def labels(self) -> dict[str, str]:
        return {TEST_IMAGE_LABEL: BENCH_LABEL_VALUE}

    @property
    def moto(self) -> MotoServer:
        return self.world.moto

    def s3(self) -> Any:
        """The plain boto3 client of the raw side: the moto server's credentials, default config."""
        return self.moto.client("s3")

    # -- set-up ---------------------------------------------------------------------------------

    def boot(self, variant: str) -> BootedRegistry:
        from fixtures.images.build import registry_image

        spec = stack_spec(VARIANTS[variant], registry_image(), BENCH_LABEL_VALUE)
        deployment = provision(spec, self.moto, BENCH_LABEL_VALUE)
        registry = boot(deployment, self.world, self.backend, self.workdir)
        self.registries[variant] = registry
        repository = f"bench/{variant}-{secrets.token_hex(3)}"
        self.repositories[variant] = repository
        # the base layer once, untimed: every measured push then uploads exactly one new layer
        remote = f"{registry.address}/{repository}"
        assert self.client.images.get(self.base_image).tag(remote, tag="base")
        push(self.client, remote, "base", registry.auth)
        self.client.images.remove(f"{remote}:base")  # the tag only: the base image stays
        self.log(
            f"booted {variant}: {registry.url} (storage.redirect={spec.storage.redirect}, tls={spec.tls.mode}), "
            f"bucket {spec.storage.bucket}, repository {repository}"
        )
        return registry

    # -- A: the registry ------------------------------------------------------------------------

    def _blob_key(self, registry: BootedRegistry, digest: str) -> str:
        root = registry.spec.storage.rootdirectory.strip("/")
        hex_digest = digest.removeprefix("sha256:")
        prefix = f"{root}/" if root else ""
        return f"{prefix}docker/registry/v2/blobs/sha256/{hex_digest[:2]}/{hex_digest}/data"

    def _stored_blobs(self, registry: BootedRegistry) -> set[str]:
        root = registry.spec.storage.rootdirectory.strip("/")
        prefix = f"{root}/docker/registry/v2/blobs/" if root else "docker/registry/v2/blobs/"
        pages = self.backend.client().get_paginator("list_objects_v2")
        return {
            item["Key"]
            for page in pages.paginate(Bucket=registry.spec.storage.bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        }

    def registry_round(
        self, variant: str, index: int
    ) -> tuple[float, float, str, int, dict[str, float], Callable[[Path], None]]:
        """Build, push (timed), forget, pull (timed); the times, the layer blob's digest and size, the
        registry's own times, and a function that copies the stored blob to a file."""
        registry = self.registries[variant]
        repository = self.repositories[variant]
        remote = f"{registry.address}/{repository}"
        tag = f"round-{index}"
        image = build_generated_image(self.client, self.base_image, f"{remote}:{tag}", [self.size], self.labels)
        try:
            before = self._stored_blobs(registry)
            since = datetime.now(UTC)
            started = time.perf_counter()
            pushed_digest = push(self.client, remote, tag, registry.auth)
            push_seconds = time.perf_counter() - started
            push_log = registry_log_since(registry, since)

            manifest = registry.api().manifest(repository, tag)
            if manifest.digest != pushed_digest:
                raise BenchmarkError(f"pushed {pushed_digest}, the registry serves {manifest.digest}")
            layer = manifest.layers[-1]  # the generated one, on top of the base's
            digest, size = str(layer["digest"]), int(layer["size"])
            key = self._blob_key(registry, digest)
            if key in before:
                raise BenchmarkError(f"{digest} was in the bucket before the push: the push uploaded nothing")
            stored = self.backend.client().head_object(Bucket=registry.spec.storage.bucket, Key=key)
            if stored["ContentLength"] != size or size < self.size:
                raise BenchmarkError(f"{key}: {stored['ContentLength']} bytes in S3, manifest says {size}")

            forget_locally(self.client, image.id)
            progress: list[Any] = []
            since = datetime.now(UTC)
            started = time.perf_counter()
            pulled = pull(self.client, remote, tag, registry.auth, progress)
            pull_seconds = time.perf_counter() - started
            pull_log = registry_log_since(registry, since)
            if pulled.id != image.id:
                raise BenchmarkError(f"pulled {pulled.id}, pushed {image.id}")
            short = digest.removeprefix("sha256:")[:12]
            statuses = {line.get("status") for line in progress if line.get("id") == short}
            if "Already exists" in statuses or "Pull complete" not in statuses:
                raise BenchmarkError(f"the pull did not download layer {short}: {sorted(map(str, statuses))}")
        finally:
            remove_image_everywhere(self.client, image.id)

        spent = {f"push: {k}": v for k, v in registry_time_by_request(push_log).items()}
        spent |= {f"pull: {k}": v for k, v in registry_time_by_request(pull_log).items()}
        if index == 1:
            self.commands += [
                f"docker push {remote}:{tag}   (docker SDK client.api.push, auth_config: the registry's user)",
                f"docker image rm (every tag of {image.id[:19]}) ; docker pull {remote}:{tag}   (client.api.pull)",
            ]

        def copy_blob(target: Path) -> None:
            body = self.backend.client().get_object(Bucket=registry.spec.storage.bucket, Key=key)["Body"]
            if write_stream(body, target) != digest:
                raise BenchmarkError(f"{key} does not hash to {digest}")

        return push_seconds, pull_seconds, digest, size, spent, copy_blob

    # -- B: raw boto3 ---------------------------------------------------------------------------

    def raw_round(self, source: Path, digest: str, size: int) -> tuple[float, float, float]:
        """``upload_file`` then ``download_file`` of ``source`` (timed, default TransferConfig), then
        (context only) one plain streamed ``get_object`` of it."""
        s3 = self.s3()
        key = f"raw/{digest.removeprefix('sha256:')}"
        target = source.with_suffix(".downloaded")
        # the registry's config has storage.s3.encrypt: true, so its writes ask for SSE too
        extra = {"ServerSideEncryption": "AES256"}
        try:
            started = time.perf_counter()
            s3.upload_file(str(source), self.raw_bucket, key, ExtraArgs=extra)
            put_seconds = time.perf_counter() - started
            stored = s3.head_object(Bucket=self.raw_bucket, Key=key)["ContentLength"]
            if stored != size:
                raise BenchmarkError(f"raw put stored {stored} bytes, expected {size}")

            started = time.perf_counter()
            s3.download_file(self.raw_bucket, key, str(target))
            get_seconds = time.perf_counter() - started
            if file_digest(target) != digest:
                raise BenchmarkError(f"raw get of {key} does not hash to {digest}")
            target.unlink()

            started = time.perf_counter()
            with target.open("wb") as handle:
                body = s3.get_object(Bucket=self.raw_bucket, Key=key)["Body"]
                for chunk in iter(lambda: body.read(COPY_CHUNK), b""):
                    handle.write(chunk)
            single_get_seconds = time.perf_counter() - started
            if file_digest(target) != digest:
                raise BenchmarkError(f"raw single GET of {key} does not hash to {digest}")
        finally:
            with contextlib.suppress(Exception):
                s3.delete_object(Bucket=self.raw_bucket, Key=key)
            target.unlink(missing_ok=True)
        if not any("upload_file" in command for command in self.commands):
            self.commands += [
                f"boto3 s3.upload_file(<blob>, {self.raw_bucket!r}, 'raw/<digest>', ExtraArgs={extra}) "
                f"[endpoint {self.moto.endpoint_url}, default TransferConfig]",
                f"boto3 s3.download_file({self.raw_bucket!r}, 'raw/<digest>', <file>)",
                f"(context) boto3 s3.get_object({self.raw_bucket!r}, 'raw/<digest>')['Body'] read into <file>",
            ]
        return put_seconds, get_seconds, single_get_seconds

    # -- C: the registry's HTTP API, no docker (context) ------------------------------------------

    def api_round(self, variant: str, index: int, size: int) -> tuple[float, float]:
        """A fresh blob of ``size`` random bytes through the registry's API: one streamed PATCH up,
        one GET down (timed); both checked against the digest, and the upload against S3."""
        registry = self.registries[variant]
        repository = self.repositories[variant]
        source = self.workdir / f"api-{variant}-{index}.bin"
        target = source.with_suffix(".downloaded")
        hasher = hashlib.sha256()
        with source.open("wb") as handle:
            for offset in range(0, size, COPY_CHUNK):
                chunk = os.urandom(min(COPY_CHUNK, size - offset))
                hasher.update(chunk)
                handle.write(chunk)
        digest = f"sha256:{hasher.hexdigest()}"
        api = registry.api()
        api.timeout = 600
        try:
            started = time.perf_counter()
            location = api.start_upload(repository)
            with source.open("rb") as handle:
                headers = {"Content-Type": "application/octet-stream"}
                response = api.request("PATCH", location, data=handle, headers=headers)
            if response.status_code != 202:
                raise BenchmarkError(f"API upload: PATCH answered {response.status_code}: {response.text[:300]}")
            api.finish_upload(urljoin(registry.url + "/", response.headers["Location"]), digest)
            push_seconds = time.perf_counter() - started
            stored = self.backend.client().head_object(
                Bucket=registry.spec.storage.bucket, Key=self._blob_key(registry, digest)
            )
            if stored["ContentLength"] != size:
                raise BenchmarkError(f"API upload stored {stored['ContentLength']} bytes, expected {size}")

            started = time.perf_counter()
            with api.request("GET", f"/v2/{repository}/blobs/{digest}", stream=True) as response:
                if response.status_code != 200:
                    raise BenchmarkError(f"API GET of {digest}: {response.status_code} {response.text[:300]}")
                with target.open("wb") as handle:
                    for chunk in response.iter_content(COPY_CHUNK):
                        handle.write(chunk)
            pull_seconds = time.perf_counter() - started
            if file_digest(target) != digest:
                raise BenchmarkError(f"API GET of {digest} gave other bytes")
        finally:
            api.close()
            source.unlink(missing_ok=True)
            target.unlink(missing_ok=True)
        if not any("HTTP API" in command for command in self.commands):
            self.commands += [
                f"(context) registry HTTP API: POST {registry.url}/v2/<repository>/blobs/uploads/, one PATCH "
                "streaming the file, PUT ?digest= ; GET /v2/<repository>/blobs/<digest> (requests, test user)",
            ]
        return push_seconds, pull_seconds

    def round(self, variant: str, index: int) -> RoundResult:
        load = os.getloadavg()
        push_s, pull_s, digest, size, spent, copy_blob = self.registry_round(variant, index)
        source = self.workdir / f"blob-{variant}-{index}.gz"
        try:
            copy_blob(source)  # untimed: the raw side's input is the registry's stored blob
            put_s, get_s, get1_s = self.raw_round(source, digest, size)
        finally:
            source.unlink(missing_ok=True)
        api_push_s, api_pull_s = self.api_round(variant, index, size)
        return RoundResult(
            variant, index, size, digest, push_s, pull_s, put_s, get_s, get1_s, api_push_s, api_pull_s, load, spent
        )
