"""The pre-deploy smoke checks against the stack's registry: the self-signed variant, booted from the
user data that ships, with its local CA and the configured user — every check passes, called as a
library (``run_smoke``) and as the smoke suite a pre-deploy job runs (``pytest suites/smoke``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.booted_registry import USER, BootedRegistry
from provisioning.smoke import CHECK_NAMES, PASSWORD_ENV, USER_ENV, SmokeTarget, format_verdicts, run_smoke

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def selfsigned(booted_registries) -> BootedRegistry:
    registry = booted_registries("selfsigned")
    assert registry.tls is not None
    return registry


def test_every_smoke_check_passes_against_the_stack(selfsigned):
    assert selfsigned.tls is not None
    target = SmokeTarget(
        endpoint=selfsigned.address,
        username=USER,
        password=selfsigned.deployment.passwords[USER],
        ca_file=selfsigned.tls.ca_path,
    )

    results = run_smoke(target)

    assert [result.name for result in results] == list(CHECK_NAMES)
    assert all(result.passed is True for result in results), format_verdicts(results)


def test_smoke_suite_passes_against_the_stack(selfsigned):
    assert selfsigned.tls is not None
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "SPOTREG_"))},
        USER_ENV: USER,
        PASSWORD_ENV: selfsigned.deployment.passwords[USER],
    }
    command = [
        sys.executable,
        "-m",
        "pytest",
        "suites/smoke",
        "--endpoint",
        selfsigned.address,
        "--smoke-ca",
        str(selfsigned.tls.ca_path),
        "-p",
        "no:cacheprovider",
        "-q",
    ]

    done = subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=120, check=False)

    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "4 passed" in output, output
    for name in CHECK_NAMES:
        assert f"PASS {name}:" in output, output
