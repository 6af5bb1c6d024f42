"""Checks 2 and 3: without credentials, ``GET /v2/`` answers a Basic or Bearer challenge, and both the
catalog and a blob upload are refused."""

from __future__ import annotations

import secrets

import requests

from harness.registry_api import RegistryApi, answer
from harness.smoke.result import ANONYMOUS_REFUSED, AUTH_CHALLENGE, CheckResult
from harness.smoke.target import SMOKE_NAMESPACE, SmokeTarget
from harness.smoke.transport import describe_error, open_api

REFUSED_STATUSES = frozenset({401, 403})


def check_auth_challenge(target: SmokeTarget) -> CheckResult:
    """``GET /v2/`` without credentials answers 401 with ``WWW-Authenticate: Basic|Bearer realm=...``."""
    with open_api(target, authenticated=False) as api:
        try:
            response = api.request("GET", "/v2/", allow_redirects=False)
        except requests.RequestException as error:
            return CheckResult(AUTH_CHALLENGE, False, describe_error(target, error))
    challenge = response.headers.get("WWW-Authenticate", "")
    scheme = challenge.split(" ", 1)[0].lower()
    if response.status_code != 401:
        hint = ": registry auth is off" if response.status_code == 200 else ""
        return CheckResult(
            AUTH_CHALLENGE, False, f"GET /v2/ without credentials answered {answer(response)}, not 401{hint}"
        )
    if scheme not in ("basic", "bearer") or "realm=" not in challenge.lower():
        shown = repr(challenge) if challenge else "no WWW-Authenticate header"
        return CheckResult(
            AUTH_CHALLENGE, False, f"GET /v2/ answered 401 but with {shown}: expected a Basic or Bearer realm"
        )
    version = response.headers.get("Docker-Distribution-API-Version", "")
    note = "" if version else " (no Docker-Distribution-API-Version header: is this a registry?)"
    return CheckResult(AUTH_CHALLENGE, True, f"GET /v2/ answered 401 with WWW-Authenticate: {challenge}{note}")


def _cancel_upload(api: RegistryApi, target: SmokeTarget, response: requests.Response) -> str:
    """DELETE an upload session a registry wrongly started for us; say how that went."""
    if not response.headers.get("Location"):
        return "no Location to cancel it"
    try:
        cancelled = api.request("DELETE", api.location(response))
    except requests.RequestException as error:
        return f"cancelling it failed: {describe_error(target, error)}"
    return "cancelled it" if cancelled.status_code in (202, 204) else f"cancelling it answered {answer(cancelled)}"


def _catalog_failure(catalog: requests.Response) -> str:
    """What an anonymous catalog request that was not refused answered (and how much it listed)."""
    listed = ""
    if catalog.status_code == 200:
        try:
            repositories = catalog.json().get("repositories") or []
            listed = f" listing {len(repositories)} repositories"
        except (ValueError, AttributeError):
            listed = ""
    return f"GET /v2/_catalog answered {answer(catalog)}{listed}"


def check_anonymous_refused(target: SmokeTarget) -> CheckResult:
    """Anonymous ``GET /v2/_catalog`` and an anonymous blob upload start are refused (401/403)."""
    repository = f"{SMOKE_NAMESPACE}/{secrets.token_hex(6)}"
    uploads = f"/v2/{repository}/blobs/uploads/"
    failures: list[str] = []
    seen: list[str] = []
    with open_api(target, authenticated=False) as api:
        try:
            catalog = api.request("GET", "/v2/_catalog", allow_redirects=False)
            upload = api.request("POST", uploads, allow_redirects=False)
        except requests.RequestException as error:
            return CheckResult(ANONYMOUS_REFUSED, False, describe_error(target, error))
        if catalog.status_code in REFUSED_STATUSES:
            seen.append(f"GET /v2/_catalog {catalog.status_code}")
        else:
            failures.append(_catalog_failure(catalog))
        if upload.status_code in REFUSED_STATUSES:
            seen.append(f"POST {uploads} {upload.status_code}")
        else:
            cancelled = f" ({_cancel_upload(api, target, upload)})" if upload.status_code == 202 else ""
            failures.append(f"POST {uploads} answered {answer(upload)}{cancelled}")
    if failures:
        return CheckResult(ANONYMOUS_REFUSED, False, "; ".join(failures) + " without credentials")
    return CheckResult(ANONYMOUS_REFUSED, True, "anonymous " + ", ".join(seen))
