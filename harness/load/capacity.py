"""Pull capacity, side by side: every configuration at every CPU limit, interleaved, in one run.

The machine is shared and noisy, so figures are compared as ratios within a run (pulls/s over a
reference configuration's, at the same CPU limit and round), never across runs. Issue 13's check:
``front-10`` at 0.2 core serves at least 3 times ``direct-5`` (today's cost-5 figure), p95 under 1 s.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from harness.load.auth_check import auth_checks
from harness.load.generator import LoadPlan, run_load
from harness.load.image import push_image
from harness.load.pull import Credentials
from harness.load.stand import CONFIGURATIONS, USER, Stand
from harness.load.stats import summarize
from harness.registry_api import RegistryApi

BASELINE = "direct-5"  # issue 13's reference: the registry checking a cost-5 hash itself, as shipped before
#: Each ratio reported: (numerator, denominator) configurations.
RATIOS = (("front-10", BASELINE), ("front-10", "direct-10"))
REPOSITORY, TAG = "load/image", "v1"


def _where_time_goes(probe: dict[str, Any]) -> dict[str, float]:
    """From an uncontended probe's p50s: HTTP alone, the password check, S3 behind manifest and blob."""
    steps = probe["steps"]
    if not {"challenge", "auth", "manifest", "layer"} <= steps.keys():
        return {}
    p50 = {step: figures["p50"] for step, figures in steps.items()}
    return {
        "http_anonymous_s": p50["challenge"],
        "password_check_s": round(p50["auth"] - p50["challenge"], 4),
        "manifest_beyond_auth_s": round(p50["manifest"] - p50["auth"], 4),
        "blob_beyond_auth_s": round(p50["layer"] - p50["auth"], 4),
    }


def measure_capacity(
    docker: Any,
    cpus: Sequence[float],
    configurations: Sequence[str] = tuple(CONFIGURATIONS),
    plan: LoadPlan | None = None,
    *,
    rounds: int = 1,
    probe_pulls: int = 3,
    layers: int = 5,
    image: str | None = None,
    say: Any = print,
) -> dict[str, Any]:
    """Run the load on each configuration at each CPU limit; the JSON-ready result (see README, Capacity)."""
    plan = plan or LoadPlan()
    stand = Stand(docker) if image is None else Stand(docker, image=image)
    started = time.time()
    runs: list[dict[str, Any]] = []
    checks: dict[str, dict[str, bool]] = {}
    with stand:
        targets = {}
        for name in configurations:
            served = stand.serve(CONFIGURATIONS[name])
            with RegistryApi(served.url, auth=(USER, served.password)) as api:
                pulled = push_image(api, f"{REPOSITORY}-{name}", TAG, layers=layers)  # one bucket: a repository each
            checks[name] = auth_checks(served, pulled)
            targets[name] = (served, pulled)
        for round_ in range(1, rounds + 1):
            for limit in cpus:
                for name in configurations:
                    served, pulled = targets[name]
                    served.limit_cpus(limit)
                    credentials = Credentials(USER, served.password)
                    record: dict[str, Any] = {"round": round_, "cpus": limit, "configuration": name}
                    if probe_pulls:
                        probe = LoadPlan(clients=1, pulls=probe_pulls, deadline=plan.deadline, timeout=plan.timeout)
                        record["probe"] = summarize(run_load(served.url, pulled, credentials, probe))
                        record["where_time_goes"] = _where_time_goes(record["probe"])
                    record |= summarize(run_load(served.url, pulled, credentials, plan))
                    say(_line(record))
                    runs.append(record)
    return {
        "started": started,
        "seconds": round(time.time() - started, 1),
        "machine": {"nproc": _nproc(), "platform": platform.platform()},
        "plan": asdict(plan),
        "layers": layers,
        "configurations": {name: asdict(CONFIGURATIONS[name]) for name in configurations},
        "auth_checks": checks,
        "runs": runs,
        "ratios": ratios(runs),
    }


def ratios(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each of ``RATIOS`` whose two configurations ran: pulls/s over pulls/s, same round and CPU limit."""
    rate = {(r["round"], r["cpus"], r["configuration"]): r["pulls_per_s"] for r in runs}
    out = []
    for round_, cpus in dict.fromkeys((r["round"], r["cpus"]) for r in runs):
        for numerator, denominator in RATIOS:
            over, under = rate.get((round_, cpus, numerator)), rate.get((round_, cpus, denominator))
            if over is not None and under is not None:
                ratio = round(over / under, 2) if under else None
                out.append({"round": round_, "cpus": cpus, "ratio": f"{numerator}/{denominator}", "value": ratio})
    return out


def _line(record: dict[str, Any]) -> str:
    pull = record["pull_s"]
    return (
        f"round {record['round']} cpus {record['cpus']:<4} {record['configuration']:<12} "
        f"{record['pulls_per_s']:7.2f} pulls/s  p50 {pull['p50']:.3f} s  p95 {pull['p95']:.3f} s  "
        f"p99 {pull['p99']:.3f} s  ok {record['pulls_ok']}/{record['pulls_planned']} "
        f"failed {record['pulls_failed']} unstarted {record['pulls_unstarted']}"
    )


def _nproc() -> int:
    import os

    return len(os.sched_getaffinity(0))
