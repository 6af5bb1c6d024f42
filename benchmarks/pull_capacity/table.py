"""The benchmark's printed table: one row per CPU limit and configuration, medians over rounds; then the ratios."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

HEADER = (
    f"{'cpus':>5}  {'configuration':<12} {'pulls/s':>8} {'p50 s':>7} {'p95 s':>7} {'p99 s':>7} "
    f"{'ok/planned':>11} {'pwd check s':>11} {'manifest+ s':>11} {'blob+ s':>8}"
)


def render_table(result: dict[str, Any]) -> str:
    """Median per (cpus, configuration) over rounds; each ratio is the median of its per-round values."""
    groups: dict[tuple[float, str], list[dict[str, Any]]] = defaultdict(list)
    for run in result["runs"]:
        groups[(run["cpus"], run["configuration"])].append(run)
    lines = [HEADER, "-" * len(HEADER)]
    nan = float("nan")
    for (cpus, name), runs in groups.items():
        where = runs[0].get("where_time_goes", {})
        pull = {q: statistics.median(run["pull_s"][q] for run in runs) for q in ("p50", "p95", "p99")}
        lines.append(
            f"{cpus:>5}  {name:<12} {statistics.median(run['pulls_per_s'] for run in runs):>8.2f} "
            f"{pull['p50']:>7.3f} {pull['p95']:>7.3f} {pull['p99']:>7.3f} "
            f"{sum(r['pulls_ok'] for r in runs):>5}/{sum(r['pulls_planned'] for r in runs):<5} "
            f"{where.get('password_check_s', nan):>11.4f} {where.get('manifest_beyond_auth_s', nan):>11.4f} "
            f"{where.get('blob_beyond_auth_s', nan):>8.4f}"
        )
    for (cpus, name), runs in groups.items():
        if "pushes_ok" in runs[0]:
            p95 = statistics.median(run["push_s"]["p95"] for run in runs)
            lines.append(
                f"{cpus:>5}  {name:<12} beside it, pushes: {sum(r['pushes_ok'] for r in runs)} ok, "
                f"{sum(r['pushes_failed'] for r in runs)} failed, p95 {p95:.3f} s"
            )
    ratio_groups: dict[tuple[float, str], list[float]] = defaultdict(list)
    for ratio in result["ratios"]:
        if ratio["value"] is not None:
            ratio_groups[(ratio["cpus"], ratio["ratio"])].append(ratio["value"])
    lines.append("")
    for (cpus, ratio_name), values in ratio_groups.items():
        lines.append(f"{ratio_name} at {cpus} core: {statistics.median(values):.2f} (pulls/s over pulls/s)")
    for name, outcome in result["auth_checks"].items():
        failed = [check for check, ok in outcome.items() if not ok]
        lines.append(f"auth kept by {name}: {'yes' if not failed else 'NO: ' + ', '.join(failed)}")
    return "\n".join(lines)
