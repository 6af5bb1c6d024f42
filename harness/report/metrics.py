"""What a run's summary says, read as numbers: the phases, the metrics the trend charts plot."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PHASE_ORDER = ("provision", "boot", "push", "pull", "teardown")
# where other phase names a run may record go between those (unknown names go before teardown)
PHASE_RANK = {
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


def number(value: Any) -> float | None:
    """A finite float from a JSON number or a decimal string; None for anything else."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def phase_value(run: Mapping[str, Any], phase: str, key: str) -> float | None:
    phases = run.get("phases")
    if not isinstance(phases, Mapping):
        return None
    entry = phases.get(phase)
    return number(entry.get(key)) if isinstance(entry, Mapping) else None


def boot_seconds(run: Mapping[str, Any]) -> float | None:
    """Boot to registry healthy, seconds (the mean of the run's boot phases)."""
    return phase_value(run, "boot", "mean_seconds")


def push_mib_per_s(run: Mapping[str, Any]) -> float | None:
    return phase_value(run, "push", "mib_per_s")


def pull_mib_per_s(run: Mapping[str, Any]) -> float | None:
    return phase_value(run, "pull", "mib_per_s")


def load_pulls_per_s(run: Mapping[str, Any], configuration: str = "front-10") -> float | None:
    """Pulls/s of the load tier (``spotreg verify --load``) for one configuration, at its first CPU limit."""
    load = run.get("load")
    if not isinstance(load, Mapping):
        return None
    for entry in load.get("runs", []):
        if isinstance(entry, Mapping) and entry.get("configuration") == configuration:
            return number(entry.get("pulls_per_s"))
    return None


def monthly_cost(run: Mapping[str, Any]) -> float | None:
    cost = run.get("cost")
    return number(cost.get("monthly_total")) if isinstance(cost, Mapping) else None


def value_attr(value: float) -> str:
    """The canonical text of a data-value: Python's shortest round-tripping float repr."""
    return repr(float(value))


def fmt(value: float, digits: int = 1) -> str:
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


def short_date(run: Mapping[str, Any]) -> tuple[str, str] | None:
    """('11-28', '06:10') from a `started` of 2025-11-28T06:10:17+00:00, else None."""
    started = str(run.get("started", ""))
    if len(started) >= 16 and started[4] == "-" and started[10] == "T":
        return started[5:10], started[11:16]
    return None


def passed(run: Mapping[str, Any]) -> bool:
    return outcome(run) == "passed"


OUTCOMES = ("passed", "failed", "refused")


def outcome(run: Mapping[str, Any]) -> str:
    """ "passed", "failed", or "refused" (stopped before any test ran: no measurement, no verdict on the
    deployment); runs recorded before outcomes existed are passed or failed by their `passed`."""
    recorded = run.get("outcome")
    if recorded in OUTCOMES:
        return str(recorded)
    return "passed" if run.get("passed", run.get("exit_code") == 0) else "failed"


def measured(runs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The runs that ran their tests: what trend charts plot (a refusal measured nothing)."""
    return [run for run in runs if outcome(run) != "refused"]


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
    Metric("chart-load", "Pulls under load (the front)", "pulls/s", "#cf222e", load_pulls_per_s, "higher"),
    Metric("chart-cost", "Monthly cost estimate", "USD/month", "#8250df", monthly_cost, "lower", 2),
)
