"""What every part of the benchmark shares: its label, its copy chunk, its error, digests of streams."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from fixtures.registry_container import RUN_ID
from fixtures.test_images import MiB

BENCH_LABEL_VALUE = f"bench-{RUN_ID}"
COPY_CHUNK = 8 * MiB


class BenchmarkError(RuntimeError):
    """The benchmark could not measure what it claims to measure."""


def write_stream(body: Any, target: Path) -> str:
    """Write a streaming body to ``target``; its sha256 digest."""
    hasher = hashlib.sha256()
    with target.open("wb") as handle:
        for chunk in iter(lambda: body.read(COPY_CHUNK), b""):
            hasher.update(chunk)
            handle.write(chunk)
    return f"sha256:{hasher.hexdigest()}"


def file_digest(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(COPY_CHUNK), b""):
            hasher.update(chunk)
    return f"sha256:{hasher.hexdigest()}"
