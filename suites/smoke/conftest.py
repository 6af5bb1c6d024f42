"""Options and the target of the smoke tier (``pytest suites/smoke --endpoint HOST[:PORT]``).

``--endpoint`` is the root conftest's; the options below are registered here, so pytest knows them
when ``suites/smoke`` is on its command line (as ``spotreg verify --endpoint`` puts it). Credentials
come from ``SPOTREG_SMOKE_USER`` / ``SPOTREG_SMOKE_PASSWORD`` only: never from the command line,
where they would end up in shell history and CI logs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from harness.smoke import (
    DEFAULT_MIN_CERT_DAYS,
    CheckResult,
    SmokeConfigError,
    SmokeTarget,
    target_from_environ,
)

_VERDICTS = pytest.StashKey[list[CheckResult]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("spotreg smoke")
    group.addoption("--smoke-ca", default=None, metavar="FILE", help="PEM CA bundle to verify the registry against")
    group.addoption(
        "--smoke-min-cert-days",
        type=int,
        default=DEFAULT_MIN_CERT_DAYS,
        metavar="N",
        help=f"fail when the certificate has N days left or fewer (default {DEFAULT_MIN_CERT_DAYS})",
    )
    group.addoption(
        "--smoke-resolve",
        default=None,
        metavar="ADDRESS",
        help="connect to ADDRESS instead of looking the endpoint's host up (the certificate is still checked for it)",
    )
    group.addoption(
        "--smoke-insecure-http",
        action="store_true",
        default=False,
        help="plain http instead of https: only for an endpoint in 127.0.0.0/8",
    )


@pytest.fixture(scope="session")
def smoke_target(pytestconfig: pytest.Config) -> SmokeTarget:
    """The deployed registry the smoke tests check, from --endpoint, the --smoke-* options and the env."""
    endpoint = pytestconfig.getoption("--endpoint")
    if not endpoint:
        pytest.skip("smoke tier needs a deployed registry: pass --endpoint HOST[:PORT]")
    ca = pytestconfig.getoption("--smoke-ca")
    try:
        return target_from_environ(
            endpoint,
            ca_file=Path(ca) if ca else None,
            min_cert_days=pytestconfig.getoption("--smoke-min-cert-days"),
            insecure_http=pytestconfig.getoption("--smoke-insecure-http"),
            resolve=pytestconfig.getoption("--smoke-resolve"),
        )
    except SmokeConfigError as error:
        pytest.fail(f"smoke options: {error}", pytrace=False)


@pytest.fixture
def record_verdict(pytestconfig: pytest.Config) -> Callable[[CheckResult], None]:
    """Keep a check's verdict for the "smoke verdicts" section at the end of the run."""
    return pytestconfig.stash.setdefault(_VERDICTS, []).append


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """One line per check that ran, passed or not: ``PASS tls-chain: 87 days left ...``."""
    verdicts = config.stash.get(_VERDICTS, [])
    if verdicts:
        terminalreporter.section("smoke verdicts")
        for result in verdicts:
            terminalreporter.line(result.line(), red=result.passed is False, green=result.passed is True)
