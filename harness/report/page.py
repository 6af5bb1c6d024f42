"""reports/index.html: the latest run and the trends across runs, as one self-contained page.

Everything is drawn here in Python: inline CSS and inline SVG, no scripts, fonts or anything else
fetched, so the page opens from a CI artifact or a laptop's disk alike. Each chart has an id
(`timeline`, `chart-boot`, `chart-push`, `chart-pull`, `chart-cost`) and each data point carries its
value in `data-value`, so a test can read the page back from a browser's DOM.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from harness.history import HISTORY_FILE, append_history, read_history
from harness.report.charts import timeline, trend_chart
from harness.report.metrics import (
    DASH,
    MAX_RUNS,
    METRICS,
    boot_seconds,
    fmt,
    measured,
    monthly_cost,
    number,
    outcome,
    pull_mib_per_s,
    push_mib_per_s,
)

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
.verdict.refused { background: #9a6700; }
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
.refused { color: #9a6700; font-weight: 600; }
.refusal { border-left: 4px solid #9a6700; }
footer { color: var(--muted); font-size: 12px; margin-top: 18px; }
@media (max-width: 820px) { .grid2 { grid-template-columns: 1fr; } }
"""


VERDICT_TEXT = {"passed": "passed", "failed": "FAILED", "refused": "refused"}
VERDICT_CLASS = {"passed": "ok", "failed": "fail", "refused": "refused"}


def _refusal(run: Mapping[str, Any]) -> str:
    """Why the run refused, said where the tests would be."""
    if outcome(run) != "refused":
        return ""
    reason = escape(str(run.get("refusal") or "refused before any test ran"))
    return (
        '<section class="card refusal" id="refusal"><h2>Refused before any test ran</h2>'
        f'<p>{reason}</p><p class="note">Nothing was measured; trend charts leave this run out.</p></section>'
    )


def _counts(run: Mapping[str, Any]) -> str:
    found = run.get("tests")
    tests: Mapping[str, Any] = found if isinstance(found, Mapping) else {}

    def count(key: str) -> int:
        value = number(tests.get(key))
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
            amount = number(item.get("amount"))
            rows.append(
                f"<tr><td>{escape(str(item.get('label', item.get('key', ''))))}</td>"
                f'<td class="num">{"" if amount is None else f"${amount:,.2f}"}</td>'
                f"<td>{escape(str(item.get('note', '')))}</td></tr>"
            )
    total = monthly_cost(run) or 0.0
    rows.append(f'<tr class="total"><td>total</td><td class="num">${total:,.2f}</td><td></td></tr>')
    for comparison in cost.get("comparisons", []) if isinstance(cost.get("comparisons"), list) else []:
        if isinstance(comparison, Mapping):
            monthly = number(comparison.get("monthly"))
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
                f'<tr><td>{label}</td><td class="num">{number(entry.get("median_seconds"))}</td>'
                f'<td class="num">{number(entry.get("max_seconds"))}</td>'
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
            return DASH if value is None else fmt(value, digits)

        result = outcome(run)
        why = f' title="{escape(str(run.get("refusal", "")))}"' if result == "refused" else ""
        rows.append(
            f"<tr><td>{escape(str(run.get('started', '')))}</td><td>{escape(str(run.get('target', '')))}</td>"
            f'<td class="{VERDICT_CLASS[result]}" data-outcome="{result}"{why}>{VERDICT_TEXT[result]}</td>'
            f'<td class="num">{escape(str(tests.get("passed", DASH)))}/{escape(str(tests.get("tests", DASH)))}</td>'
            f'<td class="num">{cell(number(run.get("wall_seconds")))}</td>'
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
    result = outcome(latest)
    ok = result == "passed"
    verdict = result.upper()
    target = escape(str(latest.get("target", "?")))
    wall = number(latest.get("wall_seconds"))
    moved = number(latest.get("bytes_moved"))
    meta = [f"target <b>{target}</b>", f"started {escape(str(latest.get('started', '?')))}"]
    if wall is not None:
        meta.append(f"took {fmt(wall)} s")
    if moved:
        meta.append(f"moved {moved / 1024 / 1024:,.1f} MiB")
    if "exit_code" in latest:
        meta.append(f"exit code {escape(str(latest['exit_code']))}")
    shown = f"the last {len(runs)} of {len(history)} runs" if len(history) > len(runs) else f"{len(runs)} run(s)"
    plotted = measured(runs)
    refusals = len(runs) - len(plotted)
    charts = "".join(trend_chart(metric, plotted) for metric in METRICS)
    left_out = f" ({refusals} refused run(s) left out: they measured nothing)" if refusals else ""
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
<span id="verdict" class="verdict {result}" data-passed="{str(ok).lower()}" data-outcome="{result}">{verdict}</span>
<span class="meta">{" · ".join(meta)}</span>
</header>
{_refusal(latest)}
<section class="card" id="tests"><h2>Tests</h2>{_counts(latest)}</section>
{timeline(latest)}
{_boot_phases(latest)}
<h2 id="trends">Trends across {shown}{left_out}</h2>
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
