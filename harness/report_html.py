"""reports/index.html: the latest run and the trends across runs, as one self-contained page.

Everything is drawn here in Python: inline CSS and inline SVG, no scripts, fonts or anything else
fetched, so the page opens from a CI artifact or a laptop's disk alike. Each chart has an id
(`timeline`, `chart-boot`, `chart-push`, `chart-pull`, `chart-cost`) and each data point carries its
value in `data-value`, so a test can read the page back from a browser's DOM.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from harness.history import HISTORY_FILE, append_history, read_history

PHASE_ORDER = ("provision", "boot", "push", "pull", "teardown")
# where other phase names a run may record go between those (unknown names go before teardown)
_PHASE_RANK = {
    name: rank
    for rank, name in enumerate(
        ("provision", "spot_request", "running", "boot", "healthy", "dns", "push", "pull", "smoke", "teardown")
    )
}
MAX_RUNS = 60  # trend charts show the most recent runs; older ones stay in history.jsonl
PHASE_COLOURS = {
    "provision": "#8250df",
    "boot": "#bf8700",
    "push": "#0969da",
    "pull": "#1a7f37",
    "teardown": "#6e7781",
}
OTHER_COLOUR = "#57606a"
FAIL_COLOUR = "#cf222e"
DASH = "\u2013"  # en dash: no value


def _number(value: Any) -> float | None:
    """A finite float from a JSON number or a decimal string; None for anything else."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _phase(run: Mapping[str, Any], phase: str, key: str) -> float | None:
    phases = run.get("phases")
    if not isinstance(phases, Mapping):
        return None
    entry = phases.get(phase)
    return _number(entry.get(key)) if isinstance(entry, Mapping) else None


def boot_seconds(run: Mapping[str, Any]) -> float | None:
    """Boot to registry healthy, seconds (the mean of the run's boot phases)."""
    return _phase(run, "boot", "mean_seconds")


def push_mib_per_s(run: Mapping[str, Any]) -> float | None:
    return _phase(run, "push", "mib_per_s")


def pull_mib_per_s(run: Mapping[str, Any]) -> float | None:
    return _phase(run, "pull", "mib_per_s")


def monthly_cost(run: Mapping[str, Any]) -> float | None:
    cost = run.get("cost")
    return _number(cost.get("monthly_total")) if isinstance(cost, Mapping) else None


def _value_attr(value: float) -> str:
    """The canonical text of a data-value: Python's shortest round-tripping float repr."""
    return repr(float(value))


def _fmt(value: float, digits: int = 1) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def nice_scale(maximum: float, target_ticks: int = 5) -> tuple[float, float, int]:
    """(top, step, decimals) of an axis from 0 that holds `maximum`: a step of 1, 2, 2.5 or 5 times a
    power of ten, about `target_ticks` steps, and the decimals a tick label needs."""
    if not maximum > 0:
        return 1.0, 0.25, 2
    rough = maximum / target_ticks
    power = 10.0 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= rough * (1 - 1e-9))
    top = step * math.ceil(maximum / step - 1e-9)
    decimals = next(d for d in range(10) if abs(round(step, d) - step) < step * 1e-6)
    return top, step, decimals


def _short_date(run: Mapping[str, Any]) -> tuple[str, str] | None:
    """('11-28', '06:10') from a `started` of 2025-11-28T06:10:17+00:00, else None."""
    started = str(run.get("started", ""))
    if len(started) >= 16 and started[4] == "-" and started[10] == "T":
        return started[5:10], started[11:16]
    return None


def _passed(run: Mapping[str, Any]) -> bool:
    return bool(run.get("passed", run.get("exit_code") == 0))


# --- charts ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    chart_id: str
    title: str
    unit: str
    colour: str
    value: Callable[[Mapping[str, Any]], float | None]
    better: str  # "lower" or "higher", said under the title
    digits: int = 1


METRICS = (
    Metric("chart-boot", "Boot to healthy", "seconds", "#bf8700", boot_seconds, "lower", 1),
    Metric("chart-push", "Push throughput", "MiB/s", "#0969da", push_mib_per_s, "higher"),
    Metric("chart-pull", "Pull throughput", "MiB/s", "#1a7f37", pull_mib_per_s, "higher"),
    Metric("chart-cost", "Monthly cost estimate", "USD/month", "#8250df", monthly_cost, "lower", 2),
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
            day, time = _short_date(run) or (f"#{index + 1}", "")
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
        ok = _passed(run)
        fill = metric.colour if ok else "#ffffff"
        stroke = metric.colour if ok else FAIL_COLOUR
        tip = f"{run.get('started', f'run {index + 1}')}: {_fmt(value, metric.digits)} {metric.unit}" + (
            "" if ok else " (run failed)"
        )
        parts.append(
            f'<circle class="point{"" if ok else " failed"}" cx="{x_of(index):.1f}" cy="{y_of(value):.1f}" r="4.5" '
            f'fill="{fill}" stroke="{stroke}" data-value="{_value_attr(value)}" data-run="{index}">'
            f"<title>{escape(tip)}</title></circle>"
        )
    last_index, last_value = points[-1]
    anchor = "end" if last_index > count / 2 else "start"
    dx = -8 if anchor == "end" else 8
    parts.append(
        f'<text class="value-label" x="{x_of(last_index) + dx:.1f}" y="{y_of(last_value) - 9:.1f}" '
        f'text-anchor="{anchor}">{_fmt(last_value, metric.digits)}</text>'
    )
    parts.append("</svg>")
    latest = f"latest {_fmt(last_value, metric.digits)} {metric.unit}"
    if len(points) > 1:
        first = points[0][1]
        best = min(v for _, v in points) if metric.better == "lower" else max(v for _, v in points)
        latest += f" · first {_fmt(first, metric.digits)} · best {_fmt(best, metric.digits)}"
    return f'<section class="card chart">{heading}{"".join(parts)}<p class="caption">{escape(latest)}</p></section>'


def _phase_seconds(entry: Mapping[str, Any]) -> float | None:
    total = _number(entry.get("total_seconds"))
    if total is None:
        mean, count = _number(entry.get("mean_seconds")), _number(entry.get("count"))
        total = mean * count if mean is not None and count is not None else _number(entry.get("seconds"))
    return total


def timeline(run: Mapping[str, Any]) -> str:
    """The run's phases in order as a Gantt-like timeline: one bar each, width proportional to seconds."""
    phases = run.get("phases")
    rows: list[tuple[str, float, Mapping[str, Any]]] = []
    if isinstance(phases, Mapping):
        teardown = _PHASE_RANK["teardown"]
        ordered = sorted(phases, key=lambda name: _PHASE_RANK.get(str(name), teardown - 0.5))
        for name in ordered:
            entry = phases[name]
            seconds = _phase_seconds(entry) if isinstance(entry, Mapping) else None
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
        count = _number(entry.get("count"))
        rate = _number(entry.get("mib_per_s"))
        detail = f"{_fmt(seconds)} s"
        if count is not None and count > 1:
            detail += f" · {count:.0f}\u00d7"
        if rate:
            detail += f" · {_fmt(rate)} MiB/s"
        share = seconds / total * 100
        detail += f" · {share:.0f}%"
        parts.append(
            f'<text class="phase-name" x="{label_w - 10}" y="{y + row_h / 2 + 5:.1f}" text-anchor="end">'
            f"{escape(name)}</text>"
            f'<rect class="bar" x="{x:.1f}" y="{y + 6}" width="{bar:.1f}" height="{row_h - 12}" rx="3" '
            f'fill="{colour}" data-phase="{escape(name)}" data-value="{_value_attr(seconds)}">'
            f"<title>{escape(name)}: {escape(detail)}</title></rect>"
            f'<text class="bar-label" x="{x + bar + 8:.1f}" y="{y + row_h / 2 + 5:.1f}">{escape(detail)}</text>'
        )
        start += seconds
    parts.append("</svg>")
    return f'<section class="card">{heading}{"".join(parts)}</section>'


# --- the page --------------------------------------------------------------------------------------------

CSS = """
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 15px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", "Liberation Sans", sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 40px; }
header { display: flex; align-items: center; gap: 18px; flex-wrap: wrap; margin-bottom: 18px; }
h1 { font-size: 22px; margin: 0; font-weight: 650; }
h2 { font-size: 17px; margin: 0 0 10px; font-weight: 650; }
h3 { font-size: 15px; margin: 0 0 4px; font-weight: 650; }
.unit { color: var(--muted); font-weight: 400; font-size: 13px; }
.verdict { font-size: 18px; font-weight: 700; color: #fff; padding: 6px 16px; border-radius: 999px;
           letter-spacing: .04em; }
.verdict.passed { background: #1a7f37; } .verdict.failed { background: #cf222e; }
.meta { color: var(--muted); }
.card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 16px 18px; margin-bottom: 16px; }
.counts { display: flex; gap: 12px; flex-wrap: wrap; margin: 0; padding: 0; list-style: none; }
.counts li { border: 1px solid var(--line); border-radius: 8px; padding: 8px 14px; min-width: 92px; }
.counts b { display: block; font-size: 22px; line-height: 1.1; }
.counts .bad b { color: #cf222e; } .counts .good b { color: #1a7f37; }
.grid2 { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 16px; }
.grid2 .card { margin-bottom: 0; }
svg { width: 100%; height: auto; display: block; font-family: inherit; }
svg .grid { stroke: #eaeef2; stroke-width: 1; }
svg .axis { stroke: #8c959f; stroke-width: 1; }
svg .tick { fill: var(--muted); font-size: 11px; }
svg .axis-title { fill: var(--muted); font-size: 11px; }
svg .line { fill: none; stroke-width: 2.2; stroke-linejoin: round; stroke-linecap: round; }
svg .point { stroke-width: 2; }
svg .value-label { font-size: 12px; font-weight: 650; fill: var(--ink); }
svg .phase-name { font-size: 14px; font-weight: 600; fill: var(--ink); }
svg .bar-label { font-size: 12.5px; fill: var(--ink); }
.caption, .note { color: var(--muted); font-size: 13px; margin: 6px 0 0; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; }
th, td { text-align: left; padding: 5px 10px; border-bottom: 1px solid #eaeef2; vertical-align: top; }
th { color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: 700; border-top: 2px solid var(--line); }
.ok { color: #1a7f37; font-weight: 600; } .fail { color: #cf222e; font-weight: 600; }
footer { color: var(--muted); font-size: 12px; margin-top: 18px; }
@media (max-width: 820px) { .grid2 { grid-template-columns: 1fr; } }
"""


def _counts(run: Mapping[str, Any]) -> str:
    found = run.get("tests")
    tests: Mapping[str, Any] = found if isinstance(found, Mapping) else {}

    def count(key: str) -> int:
        value = _number(tests.get(key))
        return int(value) if value is not None else 0

    items = [
        ("tests", count("tests"), ""),
        ("passed", count("passed"), "good"),
        ("failed", count("failures"), "bad" if count("failures") else ""),
        ("errors", count("errors"), "bad" if count("errors") else ""),
        ("skipped", count("skipped"), ""),
    ]
    cells = "".join(f'<li class="{css}" data-count="{name}"><b>{value}</b>{name}</li>' for name, value, css in items)
    return f'<ul class="counts">{cells}</ul>'


def _cost_table(run: Mapping[str, Any]) -> str:
    cost = run.get("cost")
    if not isinstance(cost, Mapping) or monthly_cost(run) is None:
        return ""
    rows = []
    for item in cost.get("items", []) if isinstance(cost.get("items"), list) else []:
        if isinstance(item, Mapping):
            amount = _number(item.get("amount"))
            rows.append(
                f"<tr><td>{escape(str(item.get('label', item.get('key', ''))))}</td>"
                f'<td class="num">{"" if amount is None else f"${amount:,.2f}"}</td>'
                f"<td>{escape(str(item.get('note', '')))}</td></tr>"
            )
    total = monthly_cost(run) or 0.0
    rows.append(f'<tr class="total"><td>total</td><td class="num">${total:,.2f}</td><td></td></tr>')
    for comparison in cost.get("comparisons", []) if isinstance(cost.get("comparisons"), list) else []:
        if isinstance(comparison, Mapping):
            monthly = _number(comparison.get("monthly"))
            rows.append(
                f"<tr><td>vs {escape(str(comparison.get('label', '')))}</td>"
                f'<td class="num">{"" if monthly is None else f"${monthly:,.2f}"}</td>'
                f"<td>{escape(str(comparison.get('note', '')))}</td></tr>"
            )
    prices = cost.get("prices")
    as_of = f" (prices as of {escape(str(prices.get('as_of')))})" if isinstance(prices, Mapping) else ""
    return (
        f'<section class="card"><h2>Monthly cost estimate{as_of}</h2>'
        '<table><tr><th>item</th><th class="num">USD/month</th><th>note</th></tr>'
        f"{''.join(rows)}</table></section>"
    )


def _boot_phases(run: Mapping[str, Any]) -> str:
    """The instance box's boot of the latest run: systemd up, cloud-init done, registry healthy."""
    phases = run.get("boot_phases")
    if not isinstance(phases, Mapping) or not phases:
        return ""
    names = {"systemd_up": "systemd up", "cloud_init_done": "cloud-init done", "registry_healthy": "registry healthy"}
    rows = []
    for key, label in names.items():
        entry = phases.get(key)
        if isinstance(entry, Mapping):
            rows.append(
                f'<tr><td>{label}</td><td class="num">{_number(entry.get("median_seconds"))}</td>'
                f'<td class="num">{_number(entry.get("max_seconds"))}</td>'
                f'<td class="num">{entry.get("count")}</td></tr>'
            )
    return (
        '<section class="card" id="boot-phases"><h2>Instance box boot (seconds from start)</h2>'
        '<table><tr><th>phase</th><th class="num">median</th><th class="num">slowest</th>'
        '<th class="num">boots</th></tr>'
        f"{''.join(rows)}</table></section>"
    )


def _runs_table(runs: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for run in reversed(runs[-15:]):
        found = run.get("tests")
        tests: Mapping[str, Any] = found if isinstance(found, Mapping) else {}

        def cell(value: float | None, digits: int = 1) -> str:
            return DASH if value is None else _fmt(value, digits)

        ok = _passed(run)
        rows.append(
            f"<tr><td>{escape(str(run.get('started', '')))}</td><td>{escape(str(run.get('target', '')))}</td>"
            f'<td class="{"ok" if ok else "fail"}">{"passed" if ok else "FAILED"}</td>'
            f'<td class="num">{escape(str(tests.get("passed", DASH)))}/{escape(str(tests.get("tests", DASH)))}</td>'
            f'<td class="num">{cell(_number(run.get("wall_seconds")))}</td>'
            f'<td class="num">{cell(boot_seconds(run), 0)}</td>'
            f'<td class="num">{cell(push_mib_per_s(run))}</td><td class="num">{cell(pull_mib_per_s(run))}</td>'
            f'<td class="num">{DASH if monthly_cost(run) is None else f"${monthly_cost(run):,.2f}"}</td></tr>'
        )
    return (
        '<section class="card"><h2>Recent runs</h2><table><tr><th>started (UTC)</th><th>target</th><th>verdict</th>'
        '<th class="num">passed/tests</th><th class="num">wall s</th><th class="num">boot s</th>'
        '<th class="num">push MiB/s</th><th class="num">pull MiB/s</th><th class="num">cost/month</th></tr>'
        f"{''.join(rows)}</table></section>"
    )


def render_report_html(latest: dict[str, Any], history: list[dict[str, Any]]) -> str:
    """The report page: `latest`'s verdict, counts and phase timeline, and trends across `history`."""
    runs = history[-MAX_RUNS:]
    ok = _passed(latest)
    verdict = "PASSED" if ok else "FAILED"
    target = escape(str(latest.get("target", "?")))
    wall = _number(latest.get("wall_seconds"))
    moved = _number(latest.get("bytes_moved"))
    meta = [f"target <b>{target}</b>", f"started {escape(str(latest.get('started', '?')))}"]
    if wall is not None:
        meta.append(f"took {_fmt(wall)} s")
    if moved:
        meta.append(f"moved {moved / 1024 / 1024:,.1f} MiB")
    if "exit_code" in latest:
        meta.append(f"exit code {escape(str(latest['exit_code']))}")
    shown = f"the last {len(runs)} of {len(history)} runs" if len(history) > len(runs) else f"{len(runs)} run(s)"
    charts = "".join(trend_chart(metric, runs) for metric in METRICS)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>spotreg {target}: {verdict}</title>
<style>{CSS}</style>
</head>
<body>
<main>
<header>
<h1>spotreg verification</h1>
<span id="verdict" class="verdict {"passed" if ok else "failed"}" data-passed="{str(ok).lower()}">{verdict}</span>
<span class="meta">{" · ".join(meta)}</span>
</header>
<section class="card" id="tests"><h2>Tests</h2>{_counts(latest)}</section>
{timeline(latest)}
{_boot_phases(latest)}
<h2>Trends across {shown}</h2>
<div class="grid2">{charts}</div>
<p class="note">Hollow red points are runs that failed. Hover a point for its run and value.</p>
{_cost_table(latest)}
{_runs_table(runs)}
<footer>written by spotreg verify from reports/summary.json and reports/{HISTORY_FILE}; self-contained:
no scripts, fonts or other files are loaded.</footer>
</main>
</body>
</html>
"""


def write_reports(summary: dict[str, Any], reports_dir: Path) -> Path:
    """Append `summary` to reports_dir/history.jsonl and write reports_dir/index.html; return its path."""
    history_path = reports_dir / HISTORY_FILE
    append_history(summary, history_path)
    page = reports_dir / "index.html"
    page.write_text(render_report_html(summary, read_history(history_path)), encoding="utf-8")
    return page
