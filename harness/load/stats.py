"""A load run's figures: pulls/s, pull latency percentiles, and where a pull's time goes, step by step."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from harness.load.generator import LoadRun
from harness.load.pull import STEPS


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _seconds(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 50), 4),
        "p95": round(percentile(values, 95), 4),
        "p99": round(percentile(values, 99), 4),
    }


def summarize(run: LoadRun) -> dict[str, Any]:
    """The run as JSON-ready figures; ``steps`` gives each step's latency and its share of all pull time."""
    ok = [pull for pull in run.pulls if pull.ok]
    durations = [pull.seconds for pull in ok]
    per_step: dict[str, list[float]] = {step: [] for step in STEPS}
    for pull in ok:
        for step, values in pull.steps.items():
            per_step[step].extend(values)
    total = sum(sum(values) for values in per_step.values()) or 1.0
    errors = Counter(pull.error[:90] for pull in run.pulls if not pull.ok)
    return {
        "clients": run.plan.clients,
        "pulls_planned": run.plan.pulls,
        "pulls_ok": len(ok),
        "pulls_failed": len(run.pulls) - len(ok),
        "pulls_unstarted": run.unstarted,
        "wall_s": round(run.wall, 3),
        "pulls_per_s": round(len(ok) / run.wall, 3) if run.wall else 0.0,
        "pull_s": _seconds(durations) | {"mean": round(statistics.fmean(durations), 4) if durations else 0.0},
        "steps": {
            step: _seconds(values) | {"count": len(values), "share": round(sum(values) / total, 3)}
            for step, values in per_step.items()
            if values
        },
        "errors": dict(errors.most_common(5)),
    } | (_pushes(run) if run.plan.pushers else {})


def _pushes(run: LoadRun) -> dict[str, Any]:
    """The push mix: how many pushes went through beside the pulls, and how long each took."""
    ok = [push.seconds for push in run.pushes if push.ok]
    errors = Counter(push.error[:90] for push in run.pushes if not push.ok)
    return {
        "pushers": run.plan.pushers,
        "pushes_ok": len(ok),
        "pushes_failed": len(run.pushes) - len(ok),
        "push_s": _seconds(ok),
        "push_errors": dict(errors.most_common(5)),
    }
