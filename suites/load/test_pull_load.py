"""The load tier: a small, bounded pull load on a CPU-limited registry, every pull checked, figures kept.

Not a timed assertion: what must hold is that every pull of every client succeeded with the right
digests, that every push of the push mix beside them went through, and that ``direct-5`` (the registry
checking passwords) and ``front-10`` (the front, as shipped) refuse anonymous, wrong and (behind the
front, within its cache time) removed credentials. The figures go to ``$SPOTREG_PHASES_DIR/load.json``
(``spotreg verify --load`` puts them into summary.json).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.load.auth_check import REVOKED_WITHIN_SECONDS
from harness.load.capacity import measure_capacity
from harness.load.generator import LoadPlan

pytestmark = pytest.mark.load

CLIENTS, PULLS, CPUS = 8, 40, 1.0
CONFIGURATIONS = ("direct-5", "front-10")


def test_every_pull_succeeds_under_load(docker_client, registry_image) -> None:
    plan = LoadPlan(clients=CLIENTS, pulls=PULLS, deadline=120.0, timeout=30.0, pushers=1)
    result = measure_capacity(
        docker_client, [CPUS], CONFIGURATIONS, plan, probe_pulls=1, image=registry_image, say=lambda _line: None
    )
    phases = os.environ.get("SPOTREG_PHASES_DIR")
    if phases:
        Path(phases, "load.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    assert set(result["auth_checks"]) == set(CONFIGURATIONS)
    for name, checks in result["auth_checks"].items():
        assert all(checks.values()), f"{name} does not keep auth: {checks}"
    assert f"removed_user_401_within_{REVOKED_WITHIN_SECONDS}s" in result["auth_checks"]["front-10"]
    for run in result["runs"]:
        name = run["configuration"]
        assert run["pulls_ok"] == PULLS, (
            f"{name}: {run['pulls_failed']} failed, {run['pulls_unstarted']} not started: {run['errors']}"
        )
        assert run["pulls_per_s"] > 0 and run["pull_s"]["p50"] > 0
        assert run["steps"]["layer"]["count"] == PULLS * 5, "every layer of every pull was asked for"
        assert run["pushes_ok"] >= 1 and run["pushes_failed"] == 0, f"{name}: the push mix: {run['push_errors']}"
