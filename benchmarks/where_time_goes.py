"""Where a push's and a pull's time goes: the pieces of ``registry_vs_s3``, timed one by one.

    .venv/bin/python -m benchmarks.where_time_goes [--size-mib 256] [--repeat 2] [--skip-docker]

Not the benchmark: a probe to explain its ratio. On a fresh moto server (127.0.0.1) it times, for one
object of ``--size-mib`` random bytes, the S3 requests each side makes:

- the raw side: ``upload_file`` and ``download_file`` with boto3's default TransferConfig, and one
  plain GET of the same object;
- the registry's S3 driver (distribution 2.8): the blob streamed up as sequential 10 MiB parts (the
  shipped ``storage.s3.chunksize``), the ``CompleteMultipartUpload`` of those parts, and the move of
  the finished upload to its blob path — a multipart copy in 32 MiB parts, all at once (the driver's
  defaults ``multipartcopychunksize`` / ``multipartcopythresholdsize`` 32 MiB), against a single
  ``CopyObject`` (what a threshold above the blob size gives);

then, unless ``--skip-docker``, docker's own ceiling: push and pull of one fresh random layer to the
same registry image with *filesystem* storage on the local disk — no S3, no auth — which leaves
docker's gzip, digests and layer extraction; and zlib level 6 on random bytes (Python's zlib,
indicative: docker compresses with Go's compress/gzip, single-threaded).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fixtures.moto_server import MotoServer
from fixtures.test_images import MiB

_PART = 10 * MiB  # provisioning.render.registry_config.S3_CHUNK_SIZE
_COPY_PART = 32 * MiB  # distribution's default multipart copy chunk and threshold
_BUCKET = "spotreg-where-time-goes"


def _timed(label: str, size: int, repeat: int, action: Callable[[], object]) -> dict[str, Any]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    seconds = statistics.median(times)
    print(f"  {label:<64} {seconds:6.2f} s {size / MiB / seconds:8.1f} MiB/s", flush=True)
    return {"what": label, "seconds": seconds, "mibs": size / MiB / seconds, "all": times}


def s3_pieces(size: int, repeat: int, workdir: Path) -> list[dict[str, Any]]:
    source = workdir / "object.bin"
    with source.open("wb") as handle:
        for offset in range(0, size, 8 * MiB):
            handle.write(os.urandom(min(8 * MiB, size - offset)))
    target = workdir / "downloaded.bin"
    moto = MotoServer().start()
    try:
        s3 = moto.client("s3")
        s3.create_bucket(Bucket=_BUCKET)
        print(f"moto server {moto.endpoint_url}, object {size / MiB:.0f} MiB, median of {repeat}:")
        rows = [
            _timed(
                "raw put: upload_file, default TransferConfig",
                size,
                repeat,
                lambda: s3.upload_file(str(source), _BUCKET, "object"),
            )
        ]

        def single_get() -> None:
            body = s3.get_object(Bucket=_BUCKET, Key="object")["Body"]
            with target.open("wb") as handle:
                for chunk in iter(lambda: body.read(8 * MiB), b""):
                    handle.write(chunk)

        rows += [
            _timed(
                "raw get: download_file, default (8 MiB ranges, 10 threads)",
                size,
                repeat,
                lambda: s3.download_file(_BUCKET, "object", str(target)),
            ),
            _timed("one plain GET (what docker does with redirect on)", size, repeat, single_get),
        ]

        def registry_like_upload() -> list[dict[str, Any]]:
            upload = s3.create_multipart_upload(Bucket=_BUCKET, Key="upload", ServerSideEncryption="AES256")
            parts = []
            with source.open("rb") as handle:
                for number, chunk in enumerate(iter(lambda: handle.read(_PART), b""), start=1):
                    answer = s3.upload_part(
                        Bucket=_BUCKET, Key="upload", UploadId=upload["UploadId"], PartNumber=number, Body=chunk
                    )
                    parts.append({"PartNumber": number, "ETag": answer["ETag"]})
            completing.append((upload["UploadId"], parts))
            return parts

        completing: list[tuple[str, list[dict[str, Any]]]] = []
        rows.append(_timed("registry: 10 MiB parts uploaded one after another", size, repeat, registry_like_upload))

        def complete() -> None:
            upload_id, parts = completing.pop()
            s3.complete_multipart_upload(
                Bucket=_BUCKET, Key="upload", UploadId=upload_id, MultipartUpload={"Parts": parts}
            )

        rows.append(
            _timed("registry: CompleteMultipartUpload of those parts", size, min(repeat, len(completing)), complete)
        )

        def multipart_copy() -> None:
            upload = s3.create_multipart_upload(Bucket=_BUCKET, Key="moved", ServerSideEncryption="AES256")
            ranges = [
                (n, start, min(start + _COPY_PART, size) - 1) for n, start in enumerate(range(0, size, _COPY_PART), 1)
            ]

            def copy_part(part: tuple[int, int, int]) -> dict[str, Any]:
                number, first, last = part
                answer = s3.upload_part_copy(
                    Bucket=_BUCKET,
                    Key="moved",
                    UploadId=upload["UploadId"],
                    PartNumber=number,
                    CopySource={"Bucket": _BUCKET, "Key": "upload"},
                    CopySourceRange=f"bytes={first}-{last}",
                )
                return {"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]}

            with ThreadPoolExecutor(max_workers=len(ranges)) as pool:
                parts = list(pool.map(copy_part, ranges))
            s3.complete_multipart_upload(
                Bucket=_BUCKET, Key="moved", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
            )

        rows += [
            _timed("registry move: multipart copy, 32 MiB parts at once (default)", size, repeat, multipart_copy),
            _timed(
                "registry move: one CopyObject (threshold above the blob size)",
                size,
                repeat,
                lambda: s3.copy_object(
                    Bucket=_BUCKET,
                    Key="copied",
                    ServerSideEncryption="AES256",
                    CopySource={"Bucket": _BUCKET, "Key": "upload"},
                ),
            ),
        ]
        return rows
    finally:
        moto.stop()


def docker_ceiling(size: int, repeat: int, workdir: Path) -> list[dict[str, Any]]:
    """Push and pull of a fresh random layer to the registry image on local-disk storage."""
    import docker

    from benchmarks.registry_vs_s3 import BENCH_LABEL_VALUE
    from fixtures.docker_engine import disable_ryuk_unless_asked
    from fixtures.images.build import base_image, registry_image
    from fixtures.registry_container import Mount, RegistryContainer
    from fixtures.round_trip import forget_locally, pull, push
    from fixtures.test_images import TEST_IMAGE_LABEL, build_generated_image, remove_image_everywhere
    from harness.loopback import free_port

    disable_ryuk_unless_asked()
    client = docker.from_env(timeout=600)
    config, data = workdir / "config", workdir / "data"
    config.mkdir()
    data.mkdir()
    (config / "config.yml").write_text(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\nhttp:\n  addr: :5000\n"
    )
    port = free_port()
    registry = RegistryContainer(
        image=registry_image(),
        command=["serve", "/etc/docker/registry/config.yml"],
        environment={"REGISTRY_HTTP_ADDR": f"127.0.0.1:{port}"},
        mounts=[Mount(str(config), "/etc/docker/registry", "ro"), Mount(str(data), "/var/lib/registry", "rw")],
        port=port,
    ).start()
    rows: list[dict[str, Any]] = []
    try:
        remote = f"{registry.address}/ceiling/layer"
        assert client.images.get(base_image()).tag(remote, tag="base")
        push(client, remote, "base", None)
        client.images.remove(f"{remote}:base")
        print(f"docker's ceiling: registry {registry.url}, filesystem storage on the local disk, no auth:")
        pushes, pulls = [], []
        for index in range(repeat):
            tag = f"r{index}"
            labels = {TEST_IMAGE_LABEL: BENCH_LABEL_VALUE}
            image = build_generated_image(client, base_image(), f"{remote}:{tag}", [size], labels)
            try:
                started = time.perf_counter()
                push(client, remote, tag, None)
                pushes.append(time.perf_counter() - started)
                forget_locally(client, image.id)
                started = time.perf_counter()
                pull(client, remote, tag, None)
                pulls.append(time.perf_counter() - started)
            finally:
                remove_image_everywhere(client, image.id)
        for what, times in (("docker push, no S3 (gzip + digest + HTTP)", pushes), ("docker pull, no S3", pulls)):
            seconds = statistics.median(times)
            print(f"  {what:<64} {seconds:6.2f} s {size / MiB / seconds:8.1f} MiB/s", flush=True)
            rows.append({"what": what, "seconds": seconds, "mibs": size / MiB / seconds, "all": times})
    finally:
        registry.remove()
        client.close()
    return rows


def gzip_cost(size: int) -> dict[str, Any]:
    data = os.urandom(size)
    started = time.perf_counter()
    zlib.compress(data, 6)
    seconds = time.perf_counter() - started
    what = "zlib level 6 of random bytes, one core (Python; indicative)"
    print(f"  {what:<64} {seconds:6.2f} s {size / MiB / seconds:8.1f} MiB/s", flush=True)
    return {"what": what, "seconds": seconds, "mibs": size / MiB / seconds}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.where_time_goes", description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--skip-docker", action="store_true", help="only the S3 requests and gzip")
    args = parser.parse_args(argv)
    size = args.size_mib * MiB
    print(f"nproc {len(os.sched_getaffinity(0))}, load average {os.getloadavg()}")
    workdir = Path(tempfile.mkdtemp(prefix="spotreg-where-"))
    try:
        s3_pieces(size, args.repeat, workdir)
        if not args.skip_docker:
            docker_ceiling(size, args.repeat, workdir)
        gzip_cost(size)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        with contextlib.suppress(Exception):
            shutil.rmtree(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
