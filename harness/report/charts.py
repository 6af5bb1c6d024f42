"""The page's inline SVG: a trend chart per metric across runs, and the latest run's phase timeline."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from harness.report.metrics import (
    FAIL_COLOUR,
    OTHER_COLOUR,
    PHASE_COLOURS,
    PHASE_RANK,
    Metric,
    fmt,
    nice_scale,
    number,
    passed,
    short_date,
    value_attr,
)

CHART_W, CHART_H = 560, 250
LEFT, RIGHT, TOP, BOTTOM = 58, 24, 18, 58
LABEL_GAP = 44  # the least room between two x-axis labels


def trend_chart(metric: Metric, runs: Sequence[Mapping[str, Any]]) -> str:
    """One trend chart: a polyline through one point per run that has the metric (or a note if none)."""
    values = [(index, metric.value(run)) for index, run in enumerate(runs)]
    points = [(index, value) for index, value in values if value is not None]
    heading = (
        f'<h3>{escape(metric.title)} <span class="unit">{escape(metric.unit)}, {metric.better} is better</span></h3>'
    )
    if not points:
        why = (
            "no run recorded a cost estimate (summary.json has no cost.monthly_total)"
            if metric.chart_id == "chart-cost"
            else f"no run recorded this measurement ({metric.unit})"
        )
        note = f'<p class="note" id="{metric.chart_id}-none">{escape(why)}</p>'
        return f'<section class="card chart">{heading}{note}</section>'

    plot_w = CHART_W - LEFT - RIGHT
    plot_h = CHART_H - TOP - BOTTOM
    top, step_size, decimals = nice_scale(max(value for _, value in points) * 1.05)
    count = len(runs)

    def x_of(index: int) -> float:
        return LEFT + (plot_w / 2 if count == 1 else index * plot_w / (count - 1))

    def y_of(value: float) -> float:
        return TOP + plot_h - (max(value, 0.0) / top) * plot_h

    parts = [
        f'<svg id="{metric.chart_id}" class="trend" viewBox="0 0 {CHART_W} {CHART_H}" '
        f'role="img" aria-label="{escape(metric.title)} per run">'
    ]
    for step in range(round(top / step_size) + 1):  # horizontal grid lines and y tick labels
        tick = step * step_size
        y = y_of(tick)
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{CHART_W - RIGHT}" y2="{y:.1f}"/>')
        label = f"{tick:,.{decimals}f}"
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    parts.append(
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{CHART_W - RIGHT}" y2="{TOP + plot_h}"/>'
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}"/>'
    )
    spacing = plot_w / max(count - 1, 1)
    label_every = max(1, math.ceil(LABEL_GAP / spacing))
    for index, run in enumerate(runs):
        if index % label_every == 0 or (index == count - 1 and (count - 1) % label_every * spacing >= LABEL_GAP):
            day, time = short_date(run) or (f"#{index + 1}", "")
            x = x_of(index)
            parts.append(
                f'<text class="tick" x="{x:.1f}" y="{TOP + plot_h + 15}" text-anchor="middle">{escape(day)}'
                f'<tspan x="{x:.1f}" dy="12">{escape(time)}</tspan></text>'
            )
    parts.append(
        f'<text class="axis-title" x="{LEFT + plot_w / 2:.1f}" y="{CHART_H - 8}" text-anchor="middle">'
        "run (oldest to newest, UTC)</text>"
        f'<text class="axis-title" transform="translate(14 {TOP + plot_h / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{escape(metric.unit)}</text>'
    )
    line = " ".join(f"{x_of(index):.1f},{y_of(value):.1f}" for index, value in points)
    parts.append(f'<polyline class="line" points="{line}" stroke="{metric.colour}"/>')
    for index, value in points:
        run = runs[index]
        ok = passed(run)
        fill = metric.colour if ok else "#ffffff"
        stroke = metric.colour if ok else FAIL_COLOUR
        tip = f"{run.get('started', f'run {index + 1}')}: {fmt(value, metric.digits)} {metric.unit}" + (
            "" if ok else " (run failed)"
        )
        parts.append(
            f'<circle class="point{"" if ok else " failed"}" cx="{x_of(index):.1f}" cy="{y_of(value):.1f}" r="4.5" '
            f'fill="{fill}" stroke="{stroke}" data-value="{value_attr(value)}" data-run="{index}">'
            f"<title>{escape(tip)}</title></circle>"
        )
    last_index, last_value = points[-1]
    anchor = "end" if last_index > count / 2 else "start"
    dx = -8 if anchor == "end" else 8
    parts.append(
        f'<text class="value-label" x="{x_of(last_index) + dx:.1f}" y="{y_of(last_value) - 9:.1f}" '
        f'text-anchor="{anchor}">{fmt(last_value, metric.digits)}</text>'
    )
    parts.append("</svg>")
    latest = f"latest {fmt(last_value, metric.digits)} {metric.unit}"
    if len(points) > 1:
        first = points[0][1]
        best = min(v for _, v in points) if metric.better == "lower" else max(v for _, v in points)
        latest += f" · first {fmt(first, metric.digits)} · best {fmt(best, metric.digits)}"
    return f'<section class="card chart">{heading}{"".join(parts)}<p class="caption">{escape(latest)}</p></section>'


def phase_seconds(entry: Mapping[str, Any]) -> float | None:
    total = number(entry.get("total_seconds"))
    if total is None:
        mean, count = number(entry.get("mean_seconds")), number(entry.get("count"))
        total = mean * count if mean is not None and count is not None else number(entry.get("seconds"))
    return total


def timeline(run: Mapping[str, Any]) -> str:
    """The run's phases in order as a Gantt-like timeline: one bar each, width proportional to seconds."""
    phases = run.get("phases")
    rows: list[tuple[str, float, Mapping[str, Any]]] = []
    if isinstance(phases, Mapping):
        teardown = PHASE_RANK["teardown"]
        ordered = sorted(phases, key=lambda name: PHASE_RANK.get(str(name), teardown - 0.5))
        for name in ordered:
            entry = phases[name]
            seconds = phase_seconds(entry) if isinstance(entry, Mapping) else None
            if seconds is not None:
                rows.append((str(name), max(seconds, 0.0), entry))
    heading = "<h2>Phases of the latest run</h2>"
    if not rows:
        note = '<p class="note" id="timeline-none">this run recorded no phases</p>'
        return f'<section class="card">{heading}{note}</section>'

    width, label_w, right_w, row_h, top = 1040, 110, 210, 34, 10
    area = width - label_w - right_w
    total = sum(seconds for _, seconds, _ in rows) or 1.0
    scale_max, scale_step, scale_decimals = nice_scale(total, 5)
    height = top + row_h * len(rows) + 40
    parts = [
        f'<svg id="timeline" class="timeline" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="phases of the latest run, in order, width proportional to seconds">'
    ]
    for step in range(round(scale_max / scale_step) + 1):
        tick = step * scale_step
        x = label_w + tick / scale_max * area
        parts.append(f'<line class="grid" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + row_h * len(rows)}"/>')
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{top + row_h * len(rows) + 16}" text-anchor="middle">'
            f"{tick:,.{scale_decimals}f} s</text>"
        )
    parts.append(
        f'<text class="axis-title" x="{label_w + area / 2:.1f}" y="{height - 4}" text-anchor="middle">'
        "seconds since the run started (phases back to back)</text>"
    )
    start = 0.0
    for row, (name, seconds, entry) in enumerate(rows):
        y = top + row * row_h
        x = label_w + start / scale_max * area
        bar = max(seconds / scale_max * area, 2.0)
        colour = PHASE_COLOURS.get(name, OTHER_COLOUR)
        count = number(entry.get("count"))
        rate = number(entry.get("mib_per_s"))
        detail = f"{fmt(seconds)} s"
        if count is not None and count > 1:
            detail += f" · {count:.0f}\u00d7"
        if rate:
            detail += f" · {fmt(rate)} MiB/s"
        share = seconds / total * 100
        detail += f" · {share:.0f}%"
        parts.append(
            f'<text class="phase-name" x="{label_w - 10}" y="{y + row_h / 2 + 5:.1f}" text-anchor="end">'
            f"{escape(name)}</text>"
            f'<rect class="bar" x="{x:.1f}" y="{y + 6}" width="{bar:.1f}" height="{row_h - 12}" rx="3" '
            f'fill="{colour}" data-phase="{escape(name)}" data-value="{value_attr(seconds)}">'
            f"<title>{escape(name)}: {escape(detail)}</title></rect>"
            f'<text class="bar-label" x="{x + bar + 8:.1f}" y="{y + row_h / 2 + 5:.1f}">{escape(detail)}</text>'
        )
        start += seconds
    parts.append("</svg>")
    return f'<section class="card">{heading}{"".join(parts)}</section>'


# --- the page --------------------------------------------------------------------------------------------
