"""The benchmark's command line: its flags, the run (set-up, interleaved rounds) and the clean-up, which
happens however the run ends (harness.teardown): normal end, error, Ctrl-C, SIGTERM or SIGHUP."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.registry_vs_s3.bench import Bench
from benchmarks.registry_vs_s3.common import BENCH_LABEL_VALUE, BenchmarkError
from benchmarks.registry_vs_s3.machine import default_transfer_config, machine_facts
from benchmarks.registry_vs_s3.report import (
    CONTEXT_COLUMNS,
    CONTEXT_LEGEND,
    MAIN_COLUMNS,
    MAIN_LEGEND,
    registry_breakdown,
    table,
)
from benchmarks.registry_vs_s3.results import RoundResult, medians
from fixtures.moto_server import MOTO_ACCESS_KEY, MOTO_SECRET_KEY
from fixtures.registry_container import RUN_ID, STACK_LABEL
from fixtures.s3_backend import S3Backend
from fixtures.test_images import TEST_IMAGE_LABEL, MiB, remove_image_everywhere
from harness.teardown import TeardownRegistry, not_ignored
from provisioning.rehearsal.world import World

EXIT_INTERRUPTED = 130
REDIRECT_CHOICES = {"on": ("redirect-on",), "off": ("redirect-off",), "both": ("redirect-on", "redirect-off")}
_BUILD_IMAGES = ".venv/bin/python -m fixtures.images.build"


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
        choices=sorted(REDIRECT_CHOICES),
        default="on",
        help="storage.redirect of the booted registry: on (the shipped default), off, or both (default on)",
    )
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.size_mib < 1 or args.rounds < 1:
        parser.error("--size-mib and --rounds must be at least 1")
    return args


def run(args: argparse.Namespace, teardown: TeardownRegistry) -> dict[str, Any]:
    """Boot the registries, run the interleaved rounds, and return the report; everything started is
    registered with `teardown` before it exists or right after."""
    import docker
    from docker.errors import DockerException

    from fixtures.docker_engine import disable_ryuk_unless_asked, image_present
    from fixtures.images.build import base_image, front_image, registry_image

    disable_ryuk_unless_asked()
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except DockerException as error:
        raise BenchmarkError(
            f"no Docker engine answers ({error}): start one (scripts/with-docker-engine.sh)"
        ) from error
    teardown.register("the Docker client", client.close)
    for name in (registry_image(), front_image(), base_image()):
        if not image_present(client, name):
            raise BenchmarkError(f"the image {name!r} is not in the engine: build it with `{_BUILD_IMAGES}`")
    teardown.register("the images built or pulled", lambda: _sweep_images(client))
    teardown.register("the registry containers", lambda: _sweep_containers(client))

    facts = machine_facts(client, registry_image())
    print("machine: " + ", ".join(f"{key}={value}" for key, value in facts.items()), flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="spotreg-bench-"))
    teardown.register(f"{workdir}", lambda: shutil.rmtree(workdir, ignore_errors=True))
    world = World.open(
        client,
        BENCH_LABEL_VALUE,
        registry_image(),
        say=lambda line: print(line, flush=True),
        front_source=front_image(),
    )
    teardown.register("the world (moto server, box network)", world.close)
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
    variants = REDIRECT_CHOICES[args.redirect]
    for variant in variants:
        registry = bench.boot(variant)
        teardown.register(f"the {variant} registry", registry.remove)

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


def _print_report(args: argparse.Namespace, report: dict[str, Any]) -> None:
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


def _clean_up(teardown: TeardownRegistry) -> None:
    """Everything started, last first, to the end: a further signal is ignored (harness.teardown)."""
    try:
        for result in teardown.run():
            if result.error is not None:
                print(f"clean-up: {result}", file=sys.stderr, flush=True)
    finally:
        teardown.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its tables; 130 when a signal ended it, 1 when it could not measure."""
    args = _parse(argv)
    # Ctrl-C, SIGTERM and SIGHUP end the run through the clean-up, and are remembered: a Ctrl-C in a
    # terminal also reaches the moto server (same process group), and what fails first may then be a
    # boto3 call to the server that just died rather than the interruption itself.
    signals = not_ignored((signal.SIGTERM, signal.SIGHUP, signal.SIGINT))
    teardown = TeardownRegistry(None, signals, what="the benchmark", after_kill="kill -9 leaves containers behind")
    teardown.install_signal_handlers()
    try:
        report = run(args, teardown)
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except BenchmarkError as error:
        print(f"benchmark: {error}", file=sys.stderr, flush=True)
        return 1
    except Exception as error:
        if teardown.interrupted is None:
            raise
        print(f"\ninterrupted ({type(error).__name__} after the signal): cleaning up", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    finally:
        _clean_up(teardown)
    _print_report(args, report)
    return 0
