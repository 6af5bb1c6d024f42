"""The pre-deploy smoke checks against the stack's registry: an instance box booted from the user data
that ships, serving the shipped self-signed certificate on the box's address, checked with the
deployment's CA and the configured user — every check passes, called as a library (``run_smoke``) and
as the smoke suite a pre-deploy job runs (``pytest suites/smoke``); without the CA the TLS check fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.booted_registry import USER, BootedRegistry
from harness.smoke import (
    CHECK_NAMES,
    PASSWORD_ENV,
    TLS_CHAIN,
    USER_ENV,
    SmokeTarget,
    check_tls_chain,
    format_verdicts,
    run_smoke,
)

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def registry(booted_registries) -> BootedRegistry:
    registry = booted_registries("redirect-on")
    assert registry.url.startswith("https://") and registry.ca_path is not None
    return registry


def test_every_smoke_check_passes_against_the_stack(registry):
    target = SmokeTarget(
        endpoint=registry.address,
        username=USER,
        password=registry.deployment.passwords[USER],
        ca_file=registry.ca_path,
    )

    results = run_smoke(target)

    assert [result.name for result in results] == list(CHECK_NAMES)
    assert all(result.passed is True for result in results), format_verdicts(results)


def test_the_tls_check_fails_without_the_deployments_ca(registry):
    target = SmokeTarget(
        endpoint=registry.address, username=USER, password=registry.deployment.passwords[USER], ca_file=None
    )

    result = check_tls_chain(target)  # the system's CAs only

    assert result.name == TLS_CHAIN
    assert result.passed is False, result.line()
    assert "does not verify against the system CAs" in result.detail, result.detail


def test_smoke_suite_passes_against_the_stack(registry):
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "SPOTREG_"))},
        USER_ENV: USER,
        PASSWORD_ENV: registry.deployment.passwords[USER],
    }
    command = [
        sys.executable,
        "-m",
        "pytest",
        "suites/smoke",
        "--endpoint",
        registry.address,
        "--smoke-ca",
        str(registry.ca_path),
        "-p",
        "no:cacheprovider",
        "-q",
    ]

    done = subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=120, check=False)

    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert f"{len(CHECK_NAMES)} passed" in output, output
    for name in CHECK_NAMES:
        assert f"PASS {name}:" in output, output
