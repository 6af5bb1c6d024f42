"""Command line of the pull-capacity benchmark."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.pull_capacity.table import render_table
from harness.load.capacity import measure_capacity
from harness.load.generator import LoadPlan
from harness.load.stand import CONFIGURATIONS, DEFAULT_IMAGE


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pull_capacity", description=__doc__)
    parser.add_argument("--cpus", type=float, action="append", help="CPU limit (repeatable; default 0.2 and 2)")
    parser.add_argument(
        "--config", action="append", choices=sorted(CONFIGURATIONS), help="configuration (repeatable; default all)"
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--pulls", type=int, default=120, help="pulls per configuration and CPU limit")
    parser.add_argument("--deadline", type=float, default=60.0, help="seconds per load run; later pulls not started")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument("--pushers", type=int, default=0, help="clients pushing fresh images beside the pullers")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--probe", type=int, default=3, help="uncontended pulls before each load (0: none)")
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--image", default=DEFAULT_IMAGE, help="registry image")
    parser.add_argument("--json", type=Path, help="write every figure here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    import docker

    args = parse(argv)
    plan = LoadPlan(
        clients=args.clients, pulls=args.pulls, deadline=args.deadline, timeout=args.timeout, pushers=args.pushers
    )
    result = measure_capacity(
        docker.from_env(),
        args.cpus or [0.2, 2.0],
        args.config or list(CONFIGURATIONS),
        plan,
        rounds=args.rounds,
        probe_pulls=args.probe,
        layers=args.layers,
        image=args.image,
        say=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(render_table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    kept = all(all(outcome.values()) for outcome in result["auth_checks"].values())
    return 0 if kept else 1
