"""Live runs: what makes a run against real AWS safe to start, cheap to predict and certain to end.

Library code, no pytest: the live suite (``fixtures/live_aws``, ``suites/live``) and its offline dress
rehearsal (``suites/stack/test_dress_rehearsal.py``) both run through it.

- ``names``: the run's identity (``RunIdentity``) and its own names (``live_spec``), never the user's;
- ``run_cost``: what about an hour of the run costs (``estimate_run_cost``), shown before anything exists;
- ``aws_checks``: the credentials check (``check_credentials``), the sweep of expired test resources
  (``sweep_expired``) and the bounded wait for a host name (``wait_until_resolves``);
- the teardown on signals is ``harness.teardown`` (``TeardownRegistry``), shared with verify and the
  benchmarks.
"""

from harness.live.aws_checks import (
    CallerIdentity,
    NoCredentials,
    Resolve,
    check_credentials,
    sweep_expired,
    system_resolve,
    wait_until_resolves,
)
from harness.live.names import (
    LIFETIME,
    PASSWORD_ENV_PREFIX,
    RUN_ID_PATTERN,
    RUN_PREFIX,
    LiveRefused,
    LiveSpec,
    RunIdentity,
    assert_throwaway,
    down_command,
    iso_utc,
    live_spec,
    new_run_id,
    sweep_command,
    throwaway_bucket,
    throwaway_deployment,
    throwaway_hostname,
)
from harness.live.run_cost import RUN_HOURS, RunCost, RunCostItem, estimate_run_cost

__all__ = [
    "LIFETIME",
    "PASSWORD_ENV_PREFIX",
    "RUN_HOURS",
    "RUN_ID_PATTERN",
    "RUN_PREFIX",
    "CallerIdentity",
    "LiveRefused",
    "LiveSpec",
    "NoCredentials",
    "Resolve",
    "RunCost",
    "RunCostItem",
    "RunIdentity",
    "assert_throwaway",
    "check_credentials",
    "down_command",
    "estimate_run_cost",
    "iso_utc",
    "live_spec",
    "new_run_id",
    "sweep_command",
    "sweep_expired",
    "system_resolve",
    "throwaway_bucket",
    "throwaway_deployment",
    "throwaway_hostname",
    "wait_until_resolves",
]
