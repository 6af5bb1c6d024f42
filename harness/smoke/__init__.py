"""Pre-deploy smoke checks of a deployed registry, over HTTP(S) with ``requests`` only (no AWS, no Docker).

Four checks, each a function of a ``SmokeTarget`` (``target``) returning a ``CheckResult`` (``result``)
with a short verdict:

- ``check_tls_chain`` (``tls``): the server's chain verifies and its leaf certificate has more than N
  days left;
- ``check_auth_challenge`` (``access``): ``GET /v2/`` without credentials answers 401 with a Basic or
  Bearer challenge;
- ``check_anonymous_refused`` (``access``): anonymous ``GET /v2/_catalog`` and an anonymous blob upload
  are refused;
- ``check_round_trip`` (``round_trip``): push a tiny unique image (``image``) through the Registry HTTP
  API v2 (``harness.registry_api``), pull it back, compare digests, and delete it again where the
  registry allows deletes.

``run_smoke`` (``run``) runs them all and ``format_verdicts`` prints one line per check. The pytest
suite (``suites/smoke``, which ``spotreg verify --endpoint`` runs) builds its target with
``target_from_environ``: credentials come from ``SPOTREG_SMOKE_USER`` / ``SPOTREG_SMOKE_PASSWORD``,
never from the command line.

Every request has a timeout; only failures to connect are retried (a few times, with a short backoff)
(``transport``).
"""

from harness.smoke.access import check_anonymous_refused, check_auth_challenge
from harness.smoke.image import SmokeImage, make_smoke_image
from harness.smoke.result import (
    ANONYMOUS_REFUSED,
    AUTH_CHALLENGE,
    CHECK_NAMES,
    ROUND_TRIP,
    TLS_CHAIN,
    CheckResult,
)
from harness.smoke.round_trip import check_round_trip
from harness.smoke.run import CHECKS, format_verdicts, run_smoke, smoke_passed
from harness.smoke.target import (
    DEFAULT_MIN_CERT_DAYS,
    PASSWORD_ENV,
    SMOKE_NAMESPACE,
    USER_ENV,
    SmokeConfigError,
    SmokeTarget,
    target_from_environ,
)
from harness.smoke.tls import check_tls_chain
from harness.smoke.transport import describe_error

__all__ = [
    "ANONYMOUS_REFUSED",
    "AUTH_CHALLENGE",
    "CHECKS",
    "CHECK_NAMES",
    "DEFAULT_MIN_CERT_DAYS",
    "PASSWORD_ENV",
    "ROUND_TRIP",
    "SMOKE_NAMESPACE",
    "TLS_CHAIN",
    "USER_ENV",
    "CheckResult",
    "SmokeConfigError",
    "SmokeImage",
    "SmokeTarget",
    "check_anonymous_refused",
    "check_auth_challenge",
    "check_round_trip",
    "check_tls_chain",
    "describe_error",
    "format_verdicts",
    "make_smoke_image",
    "run_smoke",
    "smoke_passed",
    "target_from_environ",
]
