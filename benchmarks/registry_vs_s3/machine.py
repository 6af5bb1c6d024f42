"""Facts about this machine and the software measured, printed and written with the figures."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fixtures.test_images import MiB


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
