"""Registry push/pull throughput against raw boto3 put/get of the same bytes on the same S3 server.

    .venv/bin/python -m benchmarks.registry_vs_s3 [--size-mib 256] [--rounds 3]
        [--redirect on|off|both] [--json out.json]

What runs (all of it on 127.0.0.1):

- a world (``provisioning.rehearsal.world.World``: moto's server as a child process, a box network)
  plays AWS;
- the real provisioner provisions a deployment into it (``fixtures.booted_registry.provision``) and an
  instance box boots the user data the instance receives (self-signed TLS, storage redirect on or
  off, only ``BOX_OVERRIDES`` differ) — exactly what the stack tier runs;
- per round, interleaved A, B (C), A, B (C)... so that the drift of this shared machine hits both sides:

  A. registry: a fresh image (``spotreg/busybox`` + ONE new layer of ``--size-mib`` random bytes, built
     untimed with the docker SDK) is pushed with the test user's credentials (timed), every local
     reference to it removed, and pulled back (timed). The push is checked to have really uploaded:
     the layer's blob is new in the bucket after the push and holds the manifest's size; the pull is
     checked to have downloaded it (no "Already exists") and to give the pushed image id;
  B. raw boto3: the very blob the registry stored (the gzip-compressed layer, the bytes docker pushed,
     copied out of the bucket untimed and checked against its digest) is uploaded with
     ``upload_file`` and downloaded with ``download_file`` (boto3's default ``TransferConfig``:
     multipart above 8 MiB, 8 MiB parts, 10 threads), each timed. For context only (not in the
     ratio), the same object is also fetched with one plain ``get_object``: moto answers each of
     ``download_file``'s 8 MiB range requests by reading the whole object, which slows the raw get;
  C. context, not in the ratio: the registry's HTTP API without docker — a blob of the same size
     (fresh random bytes: the registry skips the copy of a blob it already has) uploaded with one
     POST, one streamed PATCH and the PUT, then fetched with one GET (following the redirect to S3
     when it is on). It separates docker's work (gzip, digests, layer extraction) from the
     registry's and S3's.

MiB/s are the compressed layer blob's bytes over the wall time, on both sides. Random bytes do not
compress, so the blob is the layer's size plus about 80 KiB (0.03 %) of tar and gzip framing. The
registry side also moves the image config and manifest (a few KiB) and checks the busybox base layer
exists (it was pushed once, untimed, before the rounds): neither is counted in the bytes. The ratio
is registry / raw, per round; the medians are over rounds (the ratio's median is the median of the
paired per-round ratios).

Everything started is removed at the end, also on Ctrl-C or SIGTERM: the registry containers, every
image built or pulled, the moto server (its state lives in memory) and the temporary files.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import re
import secrets
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urljoin

from fixtures.booted_registry import VARIANTS, BootedRegistry, boot, provision, stack_spec
from fixtures.moto_server import MOTO_ACCESS_KEY, MOTO_SECRET_KEY, MotoServer
from fixtures.registry_container import RUN_ID, STACK_LABEL
from fixtures.round_trip import forget_locally, pull, push
from fixtures.s3_backend import S3Backend
from fixtures.test_images import TEST_IMAGE_LABEL, MiB, build_generated_image, remove_image_everywhere
from provisioning.rehearsal.world import World

BENCH_LABEL_VALUE = f"bench-{RUN_ID}"
_COPY_CHUNK = 8 * MiB
_REDIRECT_CHOICES = {"on": ("redirect-on",), "off": ("redirect-off",), "both": ("redirect-on", "redirect-off")}
_BUILD_IMAGES = ".venv/bin/python -m fixtures.images.build"


class BenchmarkError(RuntimeError):
    """The benchmark could not measure what it claims to measure."""


# --------------------------------------------------------------------------------------------------
# results


def _rate(size: int, seconds: float) -> float:
    return size / MiB / seconds if seconds > 0 else float("nan")


@dataclass
class RoundResult:
    """One round of one variant: A (registry push, pull) and B (raw put, get) of the same blob."""

    variant: str
    round: int
    blob_bytes: int
    layer_digest: str
    push_s: float
    pull_s: float
    put_s: float
    get_s: float
    get1_s: float  # context, not in the ratio: the same object with one plain GET instead of download_file
    api_push_s: float  # context (C): the registry's HTTP API, no docker
    api_pull_s: float
    load_before: tuple[float, float, float]
    registry_log: dict[str, float] = field(default_factory=dict)  # seconds the registry spent, by request

    @property
    def push_mibs(self) -> float:
        return _rate(self.blob_bytes, self.push_s)

    @property
    def pull_mibs(self) -> float:
        return _rate(self.blob_bytes, self.pull_s)

    @property
    def push_pull_mibs(self) -> float:
        return _rate(2 * self.blob_bytes, self.push_s + self.pull_s)

    @property
    def put_mibs(self) -> float:
        return _rate(self.blob_bytes, self.put_s)

    @property
    def get_mibs(self) -> float:
        return _rate(self.blob_bytes, self.get_s)

    @property
    def put_get_mibs(self) -> float:
        return _rate(2 * self.blob_bytes, self.put_s + self.get_s)

    @property
    def get1_mibs(self) -> float:
        return _rate(self.blob_bytes, self.get1_s)

    @property
    def put_get1_mibs(self) -> float:
        return _rate(2 * self.blob_bytes, self.put_s + self.get1_s)

    @property
    def api_push_mibs(self) -> float:
        return _rate(self.blob_bytes, self.api_push_s)

    @property
    def api_pull_mibs(self) -> float:
        return _rate(self.blob_bytes, self.api_pull_s)

    @property
    def api_push_pull_mibs(self) -> float:
        return _rate(2 * self.blob_bytes, self.api_push_s + self.api_pull_s)

    @property
    def ratios(self) -> dict[str, float]:
        """Registry / raw boto3 (default TransferConfig): the benchmark's figures."""
        return {
            "push": self.push_mibs / self.put_mibs,
            "pull": self.pull_mibs / self.get_mibs,
            "push_pull": self.push_pull_mibs / self.put_get_mibs,
        }

    @property
    def ratios_vs_single_get(self) -> dict[str, float]:
        """Context: the same ratios when the raw get is one plain GET (moto serves ranges slowly)."""
        return {"pull": self.pull_mibs / self.get1_mibs, "push_pull": self.push_pull_mibs / self.put_get1_mibs}

    @property
    def api_ratios(self) -> dict[str, float]:
        """Context (C): the registry's HTTP API without docker / raw boto3."""
        return {
            "push": self.api_push_mibs / self.put_mibs,
            "pull": self.api_pull_mibs / self.get_mibs,
            "push_pull": self.api_push_pull_mibs / self.put_get_mibs,
        }

    def as_dict(self) -> dict[str, Any]:
        rates = {
            "registry_push_mibs": self.push_mibs,
            "registry_pull_mibs": self.pull_mibs,
            "registry_push_pull_mibs": self.push_pull_mibs,
            "raw_put_mibs": self.put_mibs,
            "raw_get_mibs": self.get_mibs,
            "raw_put_get_mibs": self.put_get_mibs,
            "raw_single_get_mibs": self.get1_mibs,
            "raw_put_single_get_mibs": self.put_get1_mibs,
            "api_push_mibs": self.api_push_mibs,
            "api_pull_mibs": self.api_pull_mibs,
            "api_push_pull_mibs": self.api_push_pull_mibs,
        }
        return {
            **asdict(self),
            **rates,
            "ratio": self.ratios,
            "ratio_vs_single_get": self.ratios_vs_single_get,
            "api_ratio": self.api_ratios,
        }


RATE_COLUMNS = (
    "push_mibs",
    "pull_mibs",
    "push_pull_mibs",
    "put_mibs",
    "get_mibs",
    "put_get_mibs",
    "get1_mibs",
    "put_get1_mibs",
    "api_push_mibs",
    "api_pull_mibs",
    "api_push_pull_mibs",
)
TIME_COLUMNS = ("push_s", "pull_s", "put_s", "get_s", "get1_s", "api_push_s", "api_pull_s")
RATIO_SETS = ("ratios", "ratios_vs_single_get", "api_ratios")


def medians(rounds: Sequence[RoundResult]) -> dict[str, Any]:
    """Median over rounds of every rate and time, and of the paired per-round ratios."""
    out: dict[str, Any] = {"rounds": len(rounds)}
    for column in (*RATE_COLUMNS, *TIME_COLUMNS):
        out[column] = statistics.median(getattr(result, column) for result in rounds)
    for name in RATIO_SETS:
        per_round = [getattr(result, name) for result in rounds]
        out[name.replace("ratios", "ratio")] = {
            key: statistics.median(r[key] for r in per_round) for key in per_round[0]
        }
    return out


# --------------------------------------------------------------------------------------------------
# machine facts and commands


def machine_facts(client: Any, registry_image: str) -> dict[str, Any]:
    import boto3
    import botocore
    import docker
    import moto

    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    memory_mib = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        memory_mib = int(meminfo[0].split()[1]) // 1024
    engine = client.version()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_mib": memory_mib,
        "load_average_at_start": os.getloadavg(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "docker_engine": engine.get("Version"),
        "docker_storage_driver": client.info().get("Driver"),
        "registry_image": registry_image,
        "moto": moto.__version__,
        "boto3": boto3.__version__,
        "botocore": botocore.__version__,
        "docker_sdk": docker.__version__,
        "pigz_on_path": shutil.which("unpigz") is not None,
    }


def default_transfer_config() -> dict[str, Any]:
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig()
    return {
        "multipart_threshold_mib": config.multipart_threshold / MiB,
        "multipart_chunksize_mib": config.multipart_chunksize / MiB,
        "max_concurrency": config.max_request_concurrency,
        "use_threads": config.use_threads,
    }


# --------------------------------------------------------------------------------------------------
# the registry's own account of its time (its "response completed" log lines)

_LOG_LINE = re.compile(
    r'msg="response completed".*?http\.request\.method=(?P<method>[A-Z]+).*?'
    r'http\.request\.uri="(?P<uri>[^"]*)".*?http\.response\.duration=(?P<duration>[0-9.a-zµ]+)'
)
_DURATION_PART = re.compile(r"([0-9.]+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration_seconds(text: str) -> float:
    """``1m2.5s``, ``350.2ms``... (Go's ``time.Duration`` text) in seconds."""
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in _DURATION_PART.findall(text))


def registry_time_by_request(log: str) -> dict[str, float]:
    """Seconds the registry spent on blob requests, by kind: what it took to answer the client."""
    spent: dict[str, float] = {}
    for match in _LOG_LINE.finditer(log):
        method, uri = match["method"], match["uri"]
        if "/blobs/uploads/" in uri:
            kind = {"POST": "upload start (POST)", "PATCH": "upload data (PATCH)", "PUT": "upload commit (PUT)"}
            name = kind.get(method, f"upload {method}")
        elif "/blobs/" in uri:
            name = f"blob {method}"
        elif "/manifests/" in uri:
            name = f"manifest {method}"
        else:
            continue
        spent[name] = spent.get(name, 0.0) + go_duration_seconds(match["duration"])
    return spent


def registry_log_since(registry: BootedRegistry, since: datetime) -> str:
    """The registry's log lines written at ``since`` or later (the engine's timestamps, to the µs)."""
    text = registry.in_box("docker", "logs", "--timestamps", "--since", str(int(since.timestamp())), "spotreg-registry")
    kept = []
    for line in text.splitlines():
        stamp, _, rest = line.partition(" ")
        # RFC 3339 with nanoseconds: keep the microseconds fromisoformat understands
        whole, _, fraction = stamp.rstrip("Z").partition(".")
        with contextlib.suppress(ValueError):
            when = datetime.fromisoformat(f"{whole}.{(fraction + '000000')[:6]}+00:00")
            if when >= since:
                kept.append(rest)
    return "\n".join(kept)


# --------------------------------------------------------------------------------------------------
# the benchmark


def _write_stream(body: Any, target: Path) -> str:
    """Write a streaming body to ``target``; its sha256 digest."""
    hasher = hashlib.sha256()
    with target.open("wb") as handle:
        for chunk in iter(lambda: body.read(_COPY_CHUNK), b""):
            hasher.update(chunk)
            handle.write(chunk)
    return f"sha256:{hasher.hexdigest()}"


def _file_digest(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_COPY_CHUNK), b""):
            hasher.update(chunk)
    return f"sha256:{hasher.hexdigest()}"


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
            if _write_stream(body, target) != digest:
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
            if _file_digest(target) != digest:
                raise BenchmarkError(f"raw get of {key} does not hash to {digest}")
            target.unlink()

            started = time.perf_counter()
            with target.open("wb") as handle:
                body = s3.get_object(Bucket=self.raw_bucket, Key=key)["Body"]
                for chunk in iter(lambda: body.read(_COPY_CHUNK), b""):
                    handle.write(chunk)
            single_get_seconds = time.perf_counter() - started
            if _file_digest(target) != digest:
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
            for offset in range(0, size, _COPY_CHUNK):
                chunk = os.urandom(min(_COPY_CHUNK, size - offset))
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
                    for chunk in response.iter_content(_COPY_CHUNK):
                        handle.write(chunk)
            pull_seconds = time.perf_counter() - started
            if _file_digest(target) != digest:
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


# --------------------------------------------------------------------------------------------------
# report


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(
        cell.rjust(width) if i else cell.ljust(width) for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
    )


def _values(result: RoundResult) -> dict[str, Any]:
    values: dict[str, Any] = {c: getattr(result, c) for c in (*RATE_COLUMNS, *TIME_COLUMNS)}
    for name in RATIO_SETS:
        values[name.replace("ratios", "ratio")] = getattr(result, name)
    return values


Column = tuple[str, int, Callable[[dict[str, Any]], str]]

MAIN_COLUMNS: tuple[Column, ...] = (
    ("push s", 6, lambda v: f"{v['push_s']:.2f}"),
    ("pull s", 6, lambda v: f"{v['pull_s']:.2f}"),
    ("push", 6, lambda v: f"{v['push_mibs']:.1f}"),
    ("pull", 6, lambda v: f"{v['pull_mibs']:.1f}"),
    ("push+pull", 9, lambda v: f"{v['push_pull_mibs']:.1f}"),
    ("put s", 6, lambda v: f"{v['put_s']:.2f}"),
    ("get s", 6, lambda v: f"{v['get_s']:.2f}"),
    ("put", 6, lambda v: f"{v['put_mibs']:.1f}"),
    ("get", 6, lambda v: f"{v['get_mibs']:.1f}"),
    ("put+get", 7, lambda v: f"{v['put_get_mibs']:.1f}"),
    ("R push", 6, lambda v: f"{v['ratio']['push']:.2f}"),
    ("R pull", 6, lambda v: f"{v['ratio']['pull']:.2f}"),
    ("R push+pull", 11, lambda v: f"{v['ratio']['push_pull']:.2f}"),
)
MAIN_LEGEND = (
    "push, pull, push+pull: registry MiB/s (A, docker push/pull); put, get, put+get: raw boto3 MiB/s (B, default",
    "TransferConfig); R: registry / raw, per round, and the median of the paired per-round ratios (target:",
    "R push+pull >= 0.8). MiB = 2^20 bytes of the compressed layer blob; push+pull = 2 x blob / (push s + pull s),",
    "put+get likewise; load1: the 1-minute load average before the round.",
)
CONTEXT_COLUMNS: tuple[Column, ...] = (
    ("get1", 6, lambda v: f"{v['get1_mibs']:.1f}"),
    ("put+get1", 8, lambda v: f"{v['put_get1_mibs']:.1f}"),
    ("R1 pull", 7, lambda v: f"{v['ratio_vs_single_get']['pull']:.2f}"),
    ("R1 push+pull", 12, lambda v: f"{v['ratio_vs_single_get']['push_pull']:.2f}"),
    ("api push", 8, lambda v: f"{v['api_push_mibs']:.1f}"),
    ("api pull", 8, lambda v: f"{v['api_pull_mibs']:.1f}"),
    ("api p+p", 7, lambda v: f"{v['api_push_pull_mibs']:.1f}"),
    ("Rapi push", 9, lambda v: f"{v['api_ratio']['push']:.2f}"),
    ("Rapi pull", 9, lambda v: f"{v['api_ratio']['pull']:.2f}"),
    ("Rapi p+p", 8, lambda v: f"{v['api_ratio']['push_pull']:.2f}"),
)
CONTEXT_LEGEND = (
    "get1: the raw get as ONE plain GET (moto reads the whole object for each of download_file's 8 MiB ranges);",
    "R1: registry / raw with that get. api: the registry's HTTP API without docker (C: one streamed PATCH up, one",
    "GET down, a fresh blob of the same size); Rapi: api / raw (B). MiB/s throughout.",
)


def table(
    results: Sequence[RoundResult], variants: Sequence[str], columns: Sequence[Column], legend: Sequence[str]
) -> str:
    """Per-round rows and a median row per variant (see the legend printed under it)."""
    widths = [20, *(width for _, width, _ in columns), 5]
    lines = [
        _row(["variant / round", *(name for name, _, _ in columns), "load1"], widths),
        _row(["-" * width for width in widths], widths),
    ]
    for variant in variants:
        mine = [result for result in results if result.variant == variant]
        if not mine:
            continue
        for result in mine:
            values = _values(result)
            load = f"{result.load_before[0]:.2f}"
            lines.append(_row([f"{variant} #{result.round}", *(f(values) for _, _, f in columns), load], widths))
        summary = medians(mine)
        lines.append(_row([f"{variant} median", *(f(summary) for _, _, f in columns), ""], widths))
    return "\n".join([*lines, "", *legend])


def registry_breakdown(results: Sequence[RoundResult]) -> str:
    """The registry's own time per request kind (median over rounds), next to the client's."""
    lines = ["registry's own time per request kind (median over rounds, from its log), s:"]
    for variant in dict.fromkeys(result.variant for result in results):
        mine = [result for result in results if result.variant == variant]
        kinds = sorted({kind for result in mine for kind in result.registry_log})
        parts = [f"{kind} {statistics.median(r.registry_log.get(kind, 0.0) for r in mine):.2f}" for kind in kinds]
        lines.append(f"  {variant}: " + "; ".join(parts))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# main


_signalled: list[int] = []  # the signals that ended the run


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    _signalled.append(signum)
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def _signals_become_interrupts() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP end the run through the clean-up, and are remembered: a Ctrl-C in a
    terminal also reaches the moto server (same process group), and what fails first may then be a
    boto3 call to the server that just died rather than the KeyboardInterrupt itself."""
    sigs = [signal.SIGTERM, signal.SIGHUP]
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # a background job keeps ignoring it
        sigs.append(signal.SIGINT)
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _uninterruptible() -> Iterator[None]:
    """Clean-up runs to its end: a second Ctrl-C must not leave containers behind."""
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _sweep_containers(client: Any) -> None:
    for leftover in client.containers.list(all=True, filters={"label": f"{STACK_LABEL}={RUN_ID}"}):
        with contextlib.suppress(Exception):
            leftover.remove(force=True, v=True)


def _sweep_images(client: Any) -> None:
    for image in client.images.list(filters={"label": f"{TEST_IMAGE_LABEL}={BENCH_LABEL_VALUE}"}):
        with contextlib.suppress(Exception):
            remove_image_everywhere(client, image.id)
    with contextlib.suppress(Exception):
        client.images.prune(filters={"dangling": True, "label": f"{TEST_IMAGE_LABEL}={BENCH_LABEL_VALUE}"})


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.registry_vs_s3",
        description="Registry push/pull MiB/s against raw boto3 put/get of the same bytes on the same moto S3.",
    )
    parser.add_argument("--size-mib", type=int, default=256, help="size of the random layer (default 256)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per variant (default 3)")
    parser.add_argument(
        "--redirect",
        choices=sorted(_REDIRECT_CHOICES),
        default="on",
        help="storage.redirect of the booted registry: on (the shipped default), off, or both (default on)",
    )
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.size_mib < 1 or args.rounds < 1:
        parser.error("--size-mib and --rounds must be at least 1")
    return args


def run(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict[str, Any]:
    import docker
    from docker.errors import DockerException, ImageNotFound

    from fixtures.docker_engine import disable_ryuk_unless_asked
    from fixtures.images.build import base_image, registry_image

    disable_ryuk_unless_asked()
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except DockerException as error:
        raise BenchmarkError(
            f"no Docker engine answers ({error}): start one (scripts/with-docker-engine.sh)"
        ) from error
    stack.callback(client.close)
    for name in (registry_image(), base_image()):
        try:
            client.images.get(name)
        except ImageNotFound:
            raise BenchmarkError(f"the image {name!r} is not in the engine: build it with `{_BUILD_IMAGES}`") from None
    stack.callback(_sweep_images, client)
    stack.callback(_sweep_containers, client)

    facts = machine_facts(client, registry_image())
    print("machine: " + ", ".join(f"{key}={value}" for key, value in facts.items()), flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="spotreg-bench-"))
    stack.callback(shutil.rmtree, workdir, ignore_errors=True)
    world = World.open(client, BENCH_LABEL_VALUE, registry_image(), say=lambda line: print(line, flush=True))
    stack.callback(world.close)
    moto = world.moto
    print(f"moto server: {moto.endpoint_url}", flush=True)
    backend = S3Backend("moto", moto.endpoint_url, MOTO_ACCESS_KEY, MOTO_SECRET_KEY, moto.region)
    bench = Bench(
        size=args.size_mib * MiB,
        client=client,
        base_image=base_image(),
        world=world,
        backend=backend,
        workdir=workdir,
        raw_bucket=f"spotreg-bench-raw-{BENCH_LABEL_VALUE}",
        log=lambda line: print(line, flush=True),
    )
    bench.s3().create_bucket(Bucket=bench.raw_bucket)
    variants = _REDIRECT_CHOICES[args.redirect]
    for variant in variants:
        registry = bench.boot(variant)
        stack.callback(registry.remove)

    results: list[RoundResult] = []
    for index in range(1, args.rounds + 1):
        for variant in variants:
            result = bench.round(variant, index)
            results.append(result)
            ratio = result.ratios
            print(
                f"{variant} round {index}: push {result.push_mibs:.1f} pull {result.pull_mibs:.1f} MiB/s | "
                f"raw put {result.put_mibs:.1f} get {result.get_mibs:.1f} MiB/s | ratio push {ratio['push']:.2f} "
                f"pull {ratio['pull']:.2f} push+pull {ratio['push_pull']:.2f} | context: 1 GET "
                f"{result.get1_mibs:.1f}, API push {result.api_push_mibs:.1f} pull {result.api_pull_mibs:.1f} MiB/s",
                flush=True,
            )

    command = shlex.join([Path(sys.executable).name, "-m", "benchmarks.registry_vs_s3", *sys.argv[1:]])
    compared = (
        f"the layer blob docker pushes: {args.size_mib} MiB of random bytes as a gzip-compressed tar "
        f"(~{statistics.median(r.blob_bytes for r in results) / MiB:.2f} MiB; random bytes do not compress), "
        "pushed/pulled through the registry (A) and put/got with boto3 (B) on the same moto server"
    )
    facts["load_average_at_end"] = os.getloadavg()
    return {
        "command": command,
        "compared": compared,
        "settings": {
            "size_mib": args.size_mib,
            "rounds": args.rounds,
            "variants": list(variants),
            "boto3_default_transfer_config": default_transfer_config(),
            "s3_endpoint": moto.endpoint_url,
        },
        "machine": facts,
        "commands": bench.commands,
        "rounds": [result.as_dict() for result in results],
        "medians": {variant: medians([r for r in results if r.variant == variant]) for variant in variants},
        "_results": results,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    stack = contextlib.ExitStack()
    report: dict[str, Any] | None = None
    try:
        with _signals_become_interrupts():
            report = run(args, stack)
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr, flush=True)
        return 130
    except BenchmarkError as error:
        print(f"benchmark: {error}", file=sys.stderr, flush=True)
        return 1
    except Exception as error:
        if not _signalled:
            raise
        print(f"\ninterrupted ({type(error).__name__} after the signal): cleaning up", file=sys.stderr, flush=True)
        return 130
    finally:
        with _uninterruptible():
            stack.close()

    results: list[RoundResult] = report.pop("_results")
    print()
    print(f"command: {report['command']}")
    print(f"compared: {report['compared']}")
    print("commands timed:")
    for line in report["commands"]:
        print(f"  {line}")
    print(f"boto3 TransferConfig (default): {report['settings']['boto3_default_transfer_config']}")
    machine = report["machine"]
    print(
        f"machine: nproc {machine['nproc']}, {machine['cpu_model']}, {machine['memory_mib']} MiB, "
        f"load average at start {machine['load_average_at_start']}, at end {machine['load_average_at_end']}"
    )
    print()
    variants = report["settings"]["variants"]
    print(table(results, variants, MAIN_COLUMNS, MAIN_LEGEND))
    print()
    print("context, not the target:")
    print(table(results, variants, CONTEXT_COLUMNS, CONTEXT_LEGEND))
    print()
    print(registry_breakdown(results))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
