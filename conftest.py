"""Harness entry point: command-line options, tier markers and the fixture plugins."""

from __future__ import annotations

import pytest

pytest_plugins: list[str] = [
    # fixture plugins (fixtures/*.py) are listed here, one per concept
    "fixtures.phases",
    "fixtures.container_logs",
    "fixtures.docker_engine",
    "fixtures.moto_server",
    "fixtures.s3_backend",
    "fixtures.tcp_proxy",
    "fixtures.test_images",
    "fixtures.registry_container",
    "fixtures.booted_registry",
    "fixtures.live_aws.plugin",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("spotreg")
    group.addoption("--live", action="store_true", help="run the live tier against real AWS (costs money)")
    group.addoption("--config", default=None, help="spotreg.toml for the live tier")
    group.addoption("--endpoint", default=None, help="HOST[:PORT] of a deployed registry for the smoke tier")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    live = config.getoption("--live")
    endpoint = config.getoption("--endpoint")
    skip_live = pytest.mark.skip(reason="live tier talks to real AWS and costs money: opt in with --live")
    skip_smoke = pytest.mark.skip(reason="smoke tier needs a deployed registry: pass --endpoint HOST[:PORT]")
    # the stack's tests first: they wait on boots and retries, and the offline tests fill the gaps
    items.sort(key=lambda item: 0 if "stack" in item.keywords else 1)
    for item in items:
        if "live" in item.keywords and not live:
            item.add_marker(skip_live)
        if "smoke" in item.keywords and not endpoint:
            item.add_marker(skip_smoke)
