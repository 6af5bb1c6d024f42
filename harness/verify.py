"""`spotreg verify`: run a tier's suites with pytest and write reports/ (JUnit XML and summary.json)."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from harness.report import write_reports
from harness.smoke import DEFAULT_MIN_CERT_DAYS
from harness.teardown import run_to_the_end

PYTEST_NO_TESTS = 5
MIB = 1024 * 1024

Tier = Literal["offline", "live", "smoke"]


@dataclass(frozen=True)
class SmokeOptions:
    """How the smoke tier checks its endpoint: the CA to trust, the certificate's margin, plain http."""

    ca: Path | None = None
    min_cert_days: int = DEFAULT_MIN_CERT_DAYS
    insecure_http: bool = False


def _target(tier: Tier, config: Path | None, endpoint: str | None, smoke: SmokeOptions) -> tuple[str, list[str]]:
    """The target's name and the pytest arguments that select it."""
    if tier == "live":
        if config is None:
            raise SystemExit("spotreg verify --live needs --config FILE")
        return "live", ["suites/live", "--live", "--config", str(config)]
    if tier == "smoke":
        if not endpoint:
            raise SystemExit("spotreg verify of a deployed registry needs --endpoint HOST[:PORT]")
        selection = ["suites/smoke", "--endpoint", endpoint, f"--smoke-min-cert-days={smoke.min_cert_days}"]
        selection += [f"--smoke-ca={smoke.ca}"] if smoke.ca else []
        selection += ["--smoke-insecure-http"] if smoke.insecure_http else []
        return "smoke", selection
    # one worker more than cores: the stack's tests mostly wait (boots, retries, restarts)
    workers = str(min(3, (os.cpu_count() or 1) + 1))
    return "offline", ["suites/offline", "suites/stack", "-n", workers, "--dist", "loadgroup"]


def _junit_counts(path: Path) -> dict[str, int]:
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    if not path.exists():
        return counts
    root = ET.parse(path).getroot()  # noqa: S314 - our own pytest's output
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for suite in suites:
        for key in counts:
            counts[key] += int(suite.get(key, "0"))
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return counts


BOX_PHASE_PREFIX = "box:"  # the instance box's boot, split (fixtures.booted_registry.record_boot)


def summarize_boot_phases(records: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Seconds from an instance box's start to systemd up, cloud-init done and registry healthy:
    how many boots, their median and slowest."""
    grouped: dict[str, list[float]] = defaultdict(list)
    for record in records:
        if record["phase"].startswith(BOX_PHASE_PREFIX):
            grouped[record["phase"].removeprefix(BOX_PHASE_PREFIX)].append(float(record["seconds"]))
    return {
        phase: {
            "count": len(seconds),
            "median_seconds": round(statistics.median(seconds), 2),
            "max_seconds": round(max(seconds), 2),
        }
        for phase, seconds in grouped.items()
    }


def summarize_phases(records: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per phase: how many times it ran, total and mean seconds, bytes and MiB/s."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        grouped[record["phase"]].append(record)
    summary = {}
    for phase, rows in grouped.items():
        seconds = sum(r["seconds"] for r in rows)
        moved = sum(r["bytes"] for r in rows)
        summary[phase] = {
            "count": len(rows),
            "total_seconds": round(seconds, 3),
            "mean_seconds": round(seconds / len(rows), 3),
            "bytes": moved,
            "mib_per_s": round(moved / MIB / seconds, 2) if moved and seconds > 0 else 0.0,
        }
    return summary


def _say(line: str) -> None:
    print(f"spotreg verify: {line}", file=sys.stderr, flush=True)


EXAMPLE_CONFIG = Path("examples/spotreg.toml")


def _monthly_cost(config: Path | None) -> dict[str, Any] | None:
    """The spec's monthly estimate at the default usage and the on-demand ceiling, for the cost trend."""
    from provisioning.cost import (
        DEFAULT_EGRESS_GIB,
        DEFAULT_PULLS,
        DEFAULT_PUSHES,
        DEFAULT_STORED_GIB,
        estimate_monthly_cost,
        load_prices,
    )
    from provisioning.errors import SpotregError
    from provisioning.spec_loading import load_spec

    path = config or EXAMPLE_CONFIG
    if not path.exists():
        return None
    try:
        estimate = estimate_monthly_cost(
            load_spec(path),
            load_prices(None),
            stored_gib=DEFAULT_STORED_GIB,
            pushes_per_month=DEFAULT_PUSHES,
            pulls_per_month=DEFAULT_PULLS,
            egress_gib=DEFAULT_EGRESS_GIB,
            spot_price_per_hour=None,
        )
    except SpotregError as error:
        print(f"spotreg verify: no cost estimate for {path}: {error}", file=sys.stderr)
        return None
    return {"config": str(path), **estimate.to_dict()}


def run_verify(
    tier: Tier,
    *,
    reports: Path,
    config: Path | None = None,
    endpoint: str | None = None,
    smoke: SmokeOptions | None = None,
    pytest_args: Sequence[str] = (),
) -> int:
    """Run pytest for `tier` (its suites, waited for to the end of their teardown even when
    interrupted), then write summary.json next to junit.xml, the history and the HTML report."""
    target, selection = _target(tier, config, endpoint, smoke or SmokeOptions())
    phases_dir = reports / "phases"
    shutil.rmtree(phases_dir, ignore_errors=True)
    phases_dir.mkdir(parents=True, exist_ok=True)
    junit = reports / "junit.xml"
    command = [sys.executable, "-m", "pytest", *selection, f"--junitxml={junit}", *pytest_args]
    env = {**os.environ, "SPOTREG_PHASES_DIR": str(phases_dir), "TESTCONTAINERS_RYUK_DISABLED": "true"}
    started = datetime.now(UTC)
    clock = time.perf_counter()
    code = run_to_the_end(command, env, _say, what="the run")
    wall = time.perf_counter() - clock
    records = []
    for path in sorted(phases_dir.glob("*.jsonl")):
        records += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    tests = _junit_counts(junit)
    if code == PYTEST_NO_TESTS:
        print("spotreg verify: pytest collected no tests: that is a failure, not a pass", file=sys.stderr)
        code = 1
    summary = {
        "target": target,
        "started": started.isoformat(timespec="seconds"),
        "wall_seconds": round(wall, 2),
        "exit_code": code,
        "passed": code == 0,
        "tests": tests,
        "phases": summarize_phases([r for r in records if not r["phase"].startswith(BOX_PHASE_PREFIX)]),
        "boot_phases": summarize_boot_phases(records),
        "bytes_moved": sum(r["bytes"] for r in records),
        "cost": _monthly_cost(config),
        "command": command,
    }
    (reports / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    page = write_reports(summary, reports)
    verdict = "passed" if code == 0 else "FAILED"
    print(f"spotreg verify --{target}: {verdict} in {wall:.1f} s; wrote {junit}, summary.json and {page}")
    return code
