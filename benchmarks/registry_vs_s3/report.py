"""The benchmark's tables: per round and the median per variant, and the registry's own time."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.registry_vs_s3.results import RATE_COLUMNS, RATIO_SETS, TIME_COLUMNS, RoundResult, medians


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
