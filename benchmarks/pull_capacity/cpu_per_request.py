"""CPU time per pull, by the process that spends it: what a pull costs the registry and the front (nginx).

    python -m benchmarks.pull_capacity.cpu_per_request [--clients 16] [--pulls 400] [--config front-10 ...]

Each configuration of ``harness.load.stand`` runs without a CPU limit while the load generator's clients
pull (docker's sequence, ``harness.load.pull``: two ``/v2/`` requests, the manifest, the config blob, 5
layer blobs); the CPU time (user + system, from ``/proc/<pid>/stat``) each process in the container
spent meanwhile is divided by the pulls. The ceiling is what a CPU limit would allow if CPU were all a
pull needed: ``limit / CPU per pull``. It shows the registry's own cost, which no auth scheme changes,
and what the front's caches take off it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from harness.load.generator import LoadPlan, run_load
from harness.load.image import push_image
from harness.load.pull import Credentials
from harness.load.stand import CONFIGURATIONS, USER, Served, Stand
from harness.load.stats import summarize
from harness.registry_api import RegistryApi

LAYERS = 5
CEILING_CPUS = (0.2, 0.4)


def cpu_seconds(container: Any) -> dict[str, float]:
    """CPU seconds (user + system) so far of each command running in ``container``, by command name."""
    ticks_per_second = os.sysconf("SC_CLK_TCK")
    spent: dict[str, float] = {}
    for pid, command in container.top(ps_args="-eo pid,comm")["Processes"]:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        spent[command] = spent.get(command, 0.0) + (int(fields[11]) + int(fields[12])) / ticks_per_second
    return spent


def measure(served: Served, plan: LoadPlan) -> tuple[dict[str, float], dict[str, Any]]:
    """CPU ms per pull by process while ``plan``'s clients pull (after a warm-up), and the load's summary."""
    with RegistryApi(served.url, auth=(USER, served.password)) as api:
        image = push_image(api, f"cpu/{served.configuration.name}", "v1", layers=LAYERS)
    credentials = Credentials(USER, served.password)
    run_load(served.url, image, credentials, LoadPlan(clients=4, pulls=20))  # connections; the front's caches
    before = cpu_seconds(served.container)
    summary = summarize(run_load(served.url, image, credentials, plan))
    after = cpu_seconds(served.container)
    pulls = max(1, int(summary["pulls_ok"]))
    return {name: round((after[name] - before.get(name, 0.0)) / pulls * 1000, 2) for name in after}, summary


def main(argv: Sequence[str] | None = None) -> int:
    import docker

    parser = argparse.ArgumentParser(prog="python -m benchmarks.pull_capacity.cpu_per_request", description=__doc__)
    parser.add_argument("--clients", type=int, default=16, help="clients pulling at once (default 16)")
    parser.add_argument("--pulls", type=int, default=400, help="pulls in all (default 400)")
    parser.add_argument("--config", action="append", choices=sorted(CONFIGURATIONS), help="default: all")
    args = parser.parse_args(argv)
    plan = LoadPlan(clients=args.clients, pulls=args.pulls, deadline=300)
    with Stand(docker.from_env()) as stand:
        for name in args.config or list(CONFIGURATIONS):
            pull, summary = measure(stand.serve(CONFIGURATIONS[name]), plan)
            total = sum(pull.values())
            ceilings = ", ".join(f"{cpus} core {cpus / total * 1000:.1f}" for cpus in CEILING_CPUS)
            print(
                f"{name:12} CPU per pull {total:6.1f} ms {pull}  ({summary['pulls_ok']} pulls, "
                f"{summary['pulls_per_s']} pulls/s unlimited)  ceiling pulls/s: {ceilings}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
