"""Run history and the HTML report: history survives torn writes; the page draws its charts from
history.jsonl, is self-contained, and opens in headless Chromium with one point per run."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import warnings
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from harness.history import append_history, read_history
from harness.report import render_report_html, write_reports

CHROMIUM = shutil.which("chromium")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium not installed (Debian package 'chromium'; scripts/ensure-debian-packages.sh installs it)",
)

# Known values of the synthetic runs: what each chart must show, run by run.
BOOT = [912.4, 845.0, 1030.2, 760.5, 702.9, 688.0]
PUSH = [18.2, 21.5, 19.9, 25.1, 24.3, 27.8]
PULL = [55.0, 61.2, 48.7, 66.1, 70.4, 72.9]
COST = ["9.12", "9.12", "8.47", "6.79", "6.81", "6.79"]
PHASE_ORDER = ["provision", "boot", "push", "pull", "teardown"]


def phase_seconds(index: int) -> list[float]:
    """The timeline's bars of run `index`, in order."""
    return [48.2, BOOT[index], 12.0, 6.0, 95.3]


def phase(seconds: float, *, count: int = 1, mib_per_s: float = 0.0) -> dict[str, Any]:
    moved = int(mib_per_s * seconds * 1024 * 1024)
    return {
        "count": count,
        "total_seconds": seconds,
        "mean_seconds": round(seconds / count, 3),
        "bytes": moved,
        "mib_per_s": mib_per_s,
    }


def synthetic_run(index: int, *, cost: bool = True) -> dict[str, Any]:
    """A summary.json as spotreg verify writes it, with this test's known values."""
    failed = index == 2
    summary: dict[str, Any] = {
        "target": "live",
        "started": f"2025-11-{20 + index:02d}T03:1{index}:07+00:00",
        "wall_seconds": 1400.5 - index * 50,
        "exit_code": 1 if failed else 0,
        "passed": not failed,
        "tests": {"tests": 14, "failures": int(failed), "errors": 0, "skipped": 2, "passed": 12 - int(failed)},
        "phases": {
            # in the order a recorder might write them, not the order of the timeline
            "teardown": phase(95.3),
            "pull": phase(6.0, count=3, mib_per_s=PULL[index]),
            "push": phase(12.0, count=3, mib_per_s=PUSH[index]),
            "boot": phase(BOOT[index]),
            "provision": phase(48.2),
        },
        "bytes_moved": 123456789,
    }
    if cost:
        summary["cost"] = {"monthly_total": COST[index], "currency": "USD"}
    return summary


def write_history(path: Path, runs: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(run) + "\n" for run in runs), encoding="utf-8")


# --- history ---------------------------------------------------------------------------------------------


def test_history_appends_one_line_per_run_and_reads_them_back(tmp_path: Path) -> None:
    path = tmp_path / "reports" / "history.jsonl"
    assert read_history(path) == []
    runs = [synthetic_run(i) for i in range(3)]
    for run in runs:
        append_history(run, path)
    assert len(path.read_text().splitlines()) == 3
    assert read_history(path) == runs


def test_a_torn_last_line_is_skipped_and_the_next_run_starts_a_fresh_line(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    append_history(synthetic_run(0), path)
    with path.open("a") as stream:
        stream.write('{"target": "live", "started": "2025-11-')  # killed mid-write
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_history(path) == [synthetic_run(0)]
    append_history(synthetic_run(1), path)
    with pytest.warns(UserWarning, match=r"history.jsonl:2: not a JSON object"):
        assert read_history(path) == [synthetic_run(0), synthetic_run(1)]


# --- the page without a browser --------------------------------------------------------------------------


class Dom(HTMLParser):
    """Element ids, and each chart's data points (circles, or timeline bars) with their attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.svgs: list[str] = []
        self.points: dict[str, list[dict[str, str]]] = {}
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.tags.append((tag, attributes))
        if "id" in attributes:
            self.ids.add(attributes["id"])
        if tag == "svg":
            self.svgs.append(attributes.get("id", ""))
        elif "data-value" in attributes and self.svgs:
            self.points.setdefault(self.svgs[-1], []).append(attributes)

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg" and self.svgs:
            self.svgs.pop()


def parse(page: str) -> Dom:
    dom = Dom()
    dom.feed(page)
    return dom


def values(dom: Dom, chart: str) -> list[float]:
    return [float(p["data-value"]) for p in dom.points.get(chart, [])]


def assert_charts(dom: Dom, runs: int) -> None:
    assert {"timeline", "chart-boot", "chart-push", "chart-pull", "chart-cost"} <= dom.ids
    assert values(dom, "chart-boot") == BOOT[:runs]
    assert values(dom, "chart-push") == PUSH[:runs]
    assert values(dom, "chart-pull") == PULL[:runs]
    assert values(dom, "chart-cost") == [float(c) for c in COST[:runs]]
    bars = dom.points["timeline"]
    assert [b["data-phase"] for b in bars] == PHASE_ORDER
    assert [float(b["data-value"]) for b in bars] == phase_seconds(runs - 1)  # the latest run's phases


def test_the_page_draws_every_chart_from_history_with_one_point_per_run() -> None:
    history = [synthetic_run(i) for i in range(6)]
    dom = parse(render_report_html(history[-1], history))
    assert_charts(dom, 6)
    verdict = next(a for t, a in dom.tags if a.get("id") == "verdict")
    assert verdict["data-passed"] == "true"
    failed_points = [p for p in dom.points["chart-boot"] if "failed" in p.get("class", "")]
    assert [float(p["data-value"]) for p in failed_points] == [BOOT[2]]


def test_timeline_bars_are_in_phase_order_with_widths_proportional_to_seconds() -> None:
    run = synthetic_run(5)
    bars = parse(render_report_html(run, [run])).points["timeline"]
    widths = [float(b["width"]) for b in bars]
    starts = [float(b["x"]) for b in bars]
    seconds = phase_seconds(5)
    for width, second in zip(widths, seconds, strict=True):
        if second / seconds[1] * widths[1] > 2:  # bars have a 2 px minimum so a short phase stays visible
            assert width == pytest.approx(second / seconds[1] * widths[1], rel=0.01)
    assert starts == sorted(starts)  # back to back, left to right


def test_without_cost_the_cost_chart_is_skipped_with_a_note() -> None:
    history = [synthetic_run(i, cost=False) for i in range(3)]
    dom = parse(render_report_html(history[-1], history))
    assert "chart-cost" not in dom.ids
    assert "chart-cost-none" in dom.ids
    assert values(dom, "chart-boot") == BOOT[:3]


def test_a_failed_latest_run_says_so() -> None:
    run = synthetic_run(2)
    page = render_report_html(run, [run])
    assert 'data-passed="false"' in page and ">FAILED<" in page


def test_the_page_is_self_contained() -> None:
    history = [synthetic_run(i) for i in range(6)]
    page = render_report_html(history[-1], history)
    assert "<script" not in page.lower()
    assert "@import" not in page and "@font-face" not in page
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page, re.IGNORECASE)
    assert not re.search(r"url\(\s*['\"]?(?:https?:)?//", page, re.IGNORECASE)
    assert "<link" not in page.lower()


def test_text_from_summaries_is_escaped() -> None:
    run = synthetic_run(0)
    run["target"] = "<img src=x onerror=alert(1)>"
    page = render_report_html(run, [run])
    assert "<img" not in page and "&lt;img" in page


def test_write_reports_appends_history_and_writes_index_html(tmp_path: Path) -> None:
    for index in range(4):
        page = write_reports(synthetic_run(index), tmp_path)
    assert page == tmp_path / "index.html"
    assert len(read_history(tmp_path / "history.jsonl")) == 4
    assert_charts(parse(page.read_text(encoding="utf-8")), 4)


# --- the page in headless Chromium -----------------------------------------------------------------------


def png_rows(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the filtered scanlines of a non-interlaced 8-bit PNG (zlib and struct only)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, idat, header = 8, b"", b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and interlace == 0, (depth, interlace)
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    stride = 1 + width * channels
    raw = zlib.decompress(idat)
    assert len(raw) == stride * height
    return width, height, [raw[i : i + stride] for i in range(0, len(raw), stride)]


@pytest.fixture(scope="module")
def chromium_outputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, bytes]:
    """The report of six synthetic runs, rendered by Chromium: (its DOM, a 1200x1600 screenshot PNG)."""
    if CHROMIUM is None:
        pytest.skip("headless Chromium not installed (Debian package 'chromium')")
    work = tmp_path_factory.mktemp("report")
    reports = work / "reports"
    reports.mkdir()
    write_history(reports / "history.jsonl", [synthetic_run(i) for i in range(5)])
    page = write_reports(synthetic_run(5), reports)  # the sixth run, as verify would add it
    url = page.as_uri()
    shot = work / "shot.png"
    dom_run = subprocess.Popen(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={work / 'profile-dom'}", "--dump-dom", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    shot_run = subprocess.Popen(
        [
            CHROMIUM,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={work / 'profile-shot'}",
            f"--screenshot={shot}",
            "--window-size=1200,1600",
            "--hide-scrollbars",
            url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    dom_out, dom_err = dom_run.communicate(timeout=60)
    _, shot_err = shot_run.communicate(timeout=60)
    assert dom_run.returncode == 0, dom_err.decode(errors="replace")[-2000:]
    assert shot_run.returncode == 0 and shot.exists(), shot_err.decode(errors="replace")[-2000:]
    return dom_out.decode("utf-8"), shot.read_bytes()


@needs_chromium
def test_chromium_renders_the_charts_with_one_point_per_run(chromium_outputs: tuple[str, bytes]) -> None:
    dom_text, _ = chromium_outputs
    dom = parse(dom_text)
    assert_charts(dom, 6)
    assert dom.svgs == []  # every svg closed: Chromium parsed the inline SVG as such
    polylines = [a for t, a in dom.tags if t == "polyline"]
    assert len(polylines) == 4 and all(len(p["points"].split()) == 6 for p in polylines)


@needs_chromium
def test_chromium_screenshot_is_not_blank(chromium_outputs: tuple[str, bytes]) -> None:
    _, png = chromium_outputs
    width, height, rows = png_rows(png)
    assert (width, height) == (1200, 1600)
    # A single-colour image filters to at most ten distinct scanlines (five filters, first row or not);
    # a page of text and charts gives hundreds.
    assert len(set(rows)) > 200, f"only {len(set(rows))} distinct scanlines: the screenshot looks blank"


def test_the_instance_box_boot_is_split_into_its_phases() -> None:
    run = synthetic_run(1) | {
        "boot_phases": {
            "systemd_up": {"count": 3, "median_seconds": 1.6, "max_seconds": 2.4},
            "cloud_init_done": {"count": 3, "median_seconds": 4.7, "max_seconds": 6.9},
            "registry_healthy": {"count": 3, "median_seconds": 6.4, "max_seconds": 9.9},
        }
    }
    page = render_report_html(run, [run])
    section = page[page.index('id="boot-phases"') :].split("</section>")[0]
    rows = re.findall(r"<tr><td>([^<]+)</td><td class=\"num\">([^<]+)</td><td class=\"num\">([^<]+)</td>", section)
    assert rows == [
        ("systemd up", "1.6", "2.4"),
        ("cloud-init done", "4.7", "6.9"),
        ("registry healthy", "6.4", "9.9"),
    ]
    assert 'id="boot-phases"' not in render_report_html(synthetic_run(1), [synthetic_run(1)])  # none recorded


# --- refusals --------------------------------------------------------------------------------------------

REFUSAL = "live run stopped before anything was created: no AWS credentials in the default chain"


def refused_run(index: int) -> dict[str, Any]:
    """A summary.json of a run that refused before any test ran (it still has a cost estimate)."""
    return {
        "target": "live",
        "started": f"2025-11-{20 + index:02d}T04:00:00+00:00",
        "wall_seconds": 3.2,
        "exit_code": 4,
        "passed": False,
        "outcome": "refused",
        "refusal": REFUSAL,
        "tests": {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "passed": 0},
        "phases": {},
        "bytes_moved": 0,
        "cost": {"monthly_total": "99.99", "currency": "USD"},
    }


def test_trend_charts_leave_refused_runs_out() -> None:
    history = [synthetic_run(0), refused_run(1), synthetic_run(1), synthetic_run(2), refused_run(3), synthetic_run(3)]
    dom = parse(render_report_html(history[-1], history))
    assert_charts(dom, 4)  # the refusal's cost estimate (99.99) is no point of the cost chart
    assert "2 refused run(s) left out" in render_report_html(history[-1], history)
    cells = [a for t, a in dom.tags if t == "td" and "data-outcome" in a]
    assert [c["data-outcome"] for c in cells] == ["passed", "refused", "failed", "passed", "refused", "passed"]
    assert all(c["class"] == "refused" and c["title"] == REFUSAL for c in cells if c["data-outcome"] == "refused")


def test_a_refused_latest_run_says_so_and_why() -> None:
    history = [synthetic_run(0), refused_run(1)]
    page = render_report_html(history[-1], history)
    dom = parse(page)
    verdict = next(a for t, a in dom.tags if a.get("id") == "verdict")
    assert verdict["data-outcome"] == "refused" and verdict["class"] == "verdict refused"
    assert verdict["data-passed"] == "false"
    assert ">REFUSED<" in page and ">FAILED<" not in page
    assert "refusal" in dom.ids and REFUSAL in page
    assert values(dom, "chart-boot") == BOOT[:1]


def test_runs_recorded_before_outcomes_are_passed_or_failed_by_their_verdict() -> None:
    from harness.report.metrics import outcome

    assert outcome(synthetic_run(0)) == "passed" and outcome(synthetic_run(2)) == "failed"
    assert outcome({"exit_code": 0}) == "passed" and outcome({"exit_code": 4}) == "failed"
    assert outcome(refused_run(0)) == "refused"
