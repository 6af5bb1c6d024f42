"""One live run, phase by phase: spot request, boot, DNS, push and pull, teardown.

Each test is one phase of the session's ``live_run`` (fixtures/live_aws/) and takes it as its first
argument: the offline dress rehearsal (suites/stack/test_dress_rehearsal.py) calls these same functions,
in this order, with a run against moto's server whose instance is an instance box booting the shipped user data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fixtures.live_aws import LiveRun
from harness.live import RUN_ID_PATTERN, throwaway_bucket
from provisioning.sweeper import sweep

pytestmark = pytest.mark.live


def test_run_is_announced_tagged_and_armed(live_run: LiveRun) -> None:
    """Before anything exists: the run's own names, its cost, credentials checked, teardown armed."""
    assert RUN_ID_PATTERN.fullmatch(live_run.run_id)
    spec, original = live_run.spec, live_run.live.original
    assert spec.storage.bucket == throwaway_bucket(live_run.run_id) != original.storage.bucket
    assert spec.deployment.name == live_run.run_id != original.deployment.name
    said = live_run.said
    cost = next(i for i, line in enumerate(said) if line.startswith(("estimated cost", "cost preview unavailable")))
    credentials = next(i for i, line in enumerate(said) if line.startswith("credentials: account"))
    armed = next(i for i, line in enumerate(said) if line.startswith("teardown registered"))
    swept = next(i for i, line in enumerate(said) if line.startswith("sweep of expired test resources"))
    assert cost < credentials < armed < swept, said
    assert not any(line.startswith("spot-request: started") for line in said[:swept]), said
    assert said[cost].startswith(("estimated cost of this live run: $", "cost preview unavailable")), said[cost]
    assert live_run.teardown_registry.pending, "the teardown is registered before up"
    assert live_run.teardown_registry.handlers_installed, "SIGTERM and SIGINT tear the run down"


def test_spot_request_runs_and_everything_carries_the_run_tags(live_run: LiveRun) -> None:
    facts = live_run.spot_request()
    assert facts.state == "running"
    inventory = live_run.inventory()
    assert {"bucket", "role", "instance-profile", "parameter", "security-group", "instance"} <= inventory.kinds()
    assert live_run.untagged(inventory) == []
    assert "spot-request" in live_run.timings


def test_registry_boots_healthy(live_run: LiveRun) -> None:
    endpoint = live_run.boot()
    assert endpoint.url.startswith(("https://", "http://"))
    assert "boot" in live_run.timings


def test_dns_answers_with_the_instance_address(live_run: LiveRun) -> None:
    reason = live_run.dns_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    assert live_run.dns() == live_run.public_address()
    assert "dns" in live_run.timings


def test_push_pull_round_trip(live_run: LiveRun, docker_client: Any, make_test_image: Callable[..., Any]) -> None:
    result = live_run.round_trip(docker_client, make_test_image)
    assert result.pulled_id and result.pushed_digest.startswith("sha256:")
    assert {"push", "pull"} <= set(live_run.timings)


def test_teardown_leaves_nothing(live_run: LiveRun, request: pytest.FixtureRequest) -> None:
    if live_run.settings.keep_on_failure and request.session.testsfailed:
        pytest.skip(f"--keep-on-failure after a failed test: kept; remove with {live_run.down_command()}")
    left = live_run.teardown()
    assert left.is_empty, str(left)
    assert sweep(live_run.clients, run_id=live_run.run_id) == []
    assert "teardown" in live_run.timings
