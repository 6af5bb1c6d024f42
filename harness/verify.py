"""`spotreg verify`: run a tier's suites with pytest and write reports/ (JUnit XML and summary.json)."""

from __future__ import annotations

import dataclasses
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

from harness.refusal import REFUSAL_ENV, read_refusal
from harness.report import write_reports
from harness.smoke import DEFAULT_MIN_CERT_DAYS
from harness.teardown import run_to_the_end
from provisioning.errors import SpotregError

PYTEST_NO_TESTS = 5
MIB = 1024 * 1024

Tier = Literal["offline", "live", "smoke", "load"]


@dataclass(frozen=True)
class SmokeOptions:
    """How the smoke tier checks its endpoint: the CA to trust, the certificate's margin, plain http,
    the address to connect to instead of looking the host up."""

    ca: Path | None = None
    min_cert_days: int = DEFAULT_MIN_CERT_DAYS
    insecure_http: bool = False
    resolve: str | None = None


SUITES: dict[Tier, tuple[str, ...]] = {
    "offline": ("suites/offline", "suites/stack"),
    "live": ("suites/live",),
    "smoke": ("suites/smoke",),
    "load": ("suites/load",),
}
CHECKOUT_FILES = ("conftest.py", "pyproject.toml")  # the harness's pytest entry point and its settings


class SuitesMissing(SpotregError):
    """The installed spotreg has no checkout with the tier's suites next to it (a wheel has none)."""

    exit_code = 2


def package_checkout() -> Path:
    """The directory the installed `harness` package sits in: the checkout, for an editable install."""
    import harness

    return Path(harness.__file__).resolve().parents[1]


def find_checkout(tier: Tier, root: Path | None = None) -> Path:
    """The checkout whose suites `tier` runs (`root`, else the installed package's), whatever the
    current directory; SuitesMissing naming every missing piece when it lacks any."""
    root = package_checkout() if root is None else root
    missing = [name for name in (*CHECKOUT_FILES, *SUITES[tier]) if not (root / name).exists()]
    if missing:
        raise SuitesMissing(
            f"spotreg verify --{tier} runs the test suites of a checkout of the repository, and {root} "
            f"has no {', '.join(missing)} (an installed wheel ships no tests)",
            hint="clone the repository and run `make verify` there, or `pip install -e .` from the "
            "checkout so that `spotreg verify` finds its suites from any directory",
        )
    return root


def _target(tier: Tier, config: Path | None, endpoint: str | None, smoke: SmokeOptions) -> tuple[str, list[str]]:
    """The target's name and the pytest arguments that select it (suite paths relative to the checkout)."""
    if tier == "live":
        if config is None:
            raise SystemExit("spotreg verify --live needs --config FILE")
        return "live", [*SUITES["live"], "--live", "--config", str(config)]
    if tier == "smoke":
        if not endpoint:
            raise SystemExit("spotreg verify of a deployed registry needs --endpoint HOST[:PORT]")
        selection = [*SUITES["smoke"], "--endpoint", endpoint, f"--smoke-min-cert-days={smoke.min_cert_days}"]
        selection += [f"--smoke-ca={smoke.ca}"] if smoke.ca else []
        selection += ["--smoke-insecure-http"] if smoke.insecure_http else []
        selection += [f"--smoke-resolve={smoke.resolve}"] if smoke.resolve else []
        return "smoke", selection
    if tier == "load":
        return "load", [*SUITES["load"], "-m", "load"]
    # one worker more than cores: the stack's tests mostly wait (boots, retries, restarts)
    workers = str(min(3, (os.cpu_count() or 1) + 1))
    return "offline", [*SUITES["offline"], "-n", workers, "--dist", "loadgroup"]


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


def _monthly_cost(config: Path | None, checkout: Path) -> dict[str, Any] | None:
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

    path = config or checkout / EXAMPLE_CONFIG
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


LOAD_FIGURES = "load.json"  # written by suites/load into the phases directory


def _load_figures(phases_dir: Path) -> dict[str, Any]:
    """The load tier's figures, per CPU limit and configuration: pulls/s and pull-time percentiles."""
    result = json.loads((phases_dir / LOAD_FIGURES).read_text(encoding="utf-8"))
    keys = ("cpus", "configuration", "clients", "pulls_ok", "pulls_failed", "pulls_per_s", "pull_s")
    runs = [{key: run[key] for key in keys} for run in result["runs"]]
    return {"runs": runs, "auth_checks": result["auth_checks"], "ratios": result["ratios"]}


def _absolute(path: Path | None) -> Path | None:
    return None if path is None else path.expanduser().resolve()


def run_verify(
    tier: Tier,
    *,
    reports: Path,
    config: Path | None = None,
    endpoint: str | None = None,
    smoke: SmokeOptions | None = None,
    pytest_args: Sequence[str] = (),
    checkout: Path | None = None,
) -> int:
    """Run pytest for `tier` in the checkout's root, whatever the current directory (its suites, waited
    for to the end of their teardown even when interrupted), then write summary.json next to junit.xml,
    the history and the HTML report. Paths given (`reports`, `config`, the smoke CA) are the caller's,
    relative to the current directory; `pytest_args` are pytest's, relative to the checkout.

    A run whose pytest side refused before any test ran (harness.refusal) is recorded with outcome
    "refused" and the reason, not as a failed run."""
    reports = reports.expanduser().resolve()
    config = _absolute(config)
    smoke = smoke or SmokeOptions()
    smoke = dataclasses.replace(smoke, ca=_absolute(smoke.ca))
    target, selection = _target(tier, config, endpoint, smoke)
    root = find_checkout(tier, checkout)
    phases_dir = reports / "phases"
    shutil.rmtree(phases_dir, ignore_errors=True)
    phases_dir.mkdir(parents=True, exist_ok=True)
    refusal_file = phases_dir / "refusal.txt"
    junit = reports / "junit.xml"
    command = [sys.executable, "-m", "pytest", *selection, f"--junitxml={junit}", *pytest_args]
    env = {
        **os.environ,
        "SPOTREG_PHASES_DIR": str(phases_dir),
        REFUSAL_ENV: str(refusal_file),
        "TESTCONTAINERS_RYUK_DISABLED": "true",
    }
    started = datetime.now(UTC)
    clock = time.perf_counter()
    code = run_to_the_end(command, env, _say, what="the run", cwd=root)
    wall = time.perf_counter() - clock
    records = []
    for path in sorted(phases_dir.glob("*.jsonl")):
        records += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    tests = _junit_counts(junit)
    refusal = read_refusal(refusal_file) if code != 0 else None
    if code == PYTEST_NO_TESTS:
        print("spotreg verify: pytest collected no tests: that is a failure, not a pass", file=sys.stderr)
        code = 1
    outcome = "refused" if refusal is not None else "passed" if code == 0 else "failed"
    summary = {
        "target": target,
        "started": started.isoformat(timespec="seconds"),
        "wall_seconds": round(wall, 2),
        "exit_code": code,
        "passed": code == 0,
        "outcome": outcome,
        **({"refusal": refusal} if refusal is not None else {}),
        "tests": tests,
        "phases": summarize_phases([r for r in records if not r["phase"].startswith(BOX_PHASE_PREFIX)]),
        "boot_phases": summarize_boot_phases(records),
        "bytes_moved": sum(r["bytes"] for r in records),
        "cost": _monthly_cost(config, root),
        **({"load": _load_figures(phases_dir)} if (phases_dir / LOAD_FIGURES).exists() else {}),
        "command": command,
        "cwd": str(root),
    }
    (reports / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    page = write_reports(summary, reports)
    verdict = {"passed": "passed", "failed": "FAILED", "refused": f"REFUSED ({refusal})"}[outcome]
    print(f"spotreg verify --{target}: {verdict} in {wall:.1f} s; wrote {junit}, summary.json and {page}")
    return code
