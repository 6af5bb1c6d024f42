"""Check 4: push a tiny unique image with the target's credentials through the Registry HTTP API v2,
pull it back comparing digests, and delete it again where the registry allows deletes."""

from __future__ import annotations

import time
from urllib.parse import urljoin, urlsplit

import requests

from harness.registry_api import MANIFEST_V2, RegistryApi, answer, sha256_digest
from harness.smoke.image import SmokeImage, make_smoke_image
from harness.smoke.result import ROUND_TRIP, CheckResult
from harness.smoke.target import DEFAULT_PORTS, PASSWORD_ENV, USER_ENV, SmokeTarget, system_ca_location
from harness.smoke.transport import describe_error, open_api

_REDIRECTS = (301, 302, 303, 307, 308)


class _StepFailed(Exception):
    """One step of the round trip went wrong; the message is the verdict's detail."""


def _same_origin(target: SmokeTarget, url: str) -> bool:
    parts = urlsplit(url)
    origin = (parts.scheme, (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS.get(parts.scheme))
    return origin == (target.scheme, target.host.lower(), target.port)


def _login(api: RegistryApi, target: SmokeTarget) -> None:
    """``GET /v2/`` with the credentials answers 200 (Basic auth; a token registry is said, not spoken)."""
    login = api.request("GET", "/v2/", allow_redirects=False)
    if login.status_code == 401:
        challenge = login.headers.get("WWW-Authenticate", "")
        if challenge.lower().startswith("bearer"):
            raise _StepFailed(f"the registry wants a token ({challenge}); this round trip speaks Basic auth only")
        raise _StepFailed(
            f"the registry refused user {target.username!r}: GET /v2/ with credentials answered "
            f"{answer(login)} (check {USER_ENV} / {PASSWORD_ENV})"
        )
    if login.status_code != 200:
        raise _StepFailed(f"GET /v2/ with credentials answered {answer(login)}, expected 200")


def _upload_location(api: RegistryApi, target: SmokeTarget, repository: str, kind: str) -> str:
    """POST starts an upload session: its location, checked to be on the target (credentials go there)."""
    start = api.request("POST", f"/v2/{repository}/blobs/uploads/", allow_redirects=False)
    if start.status_code == 401:
        raise _StepFailed(f"starting the {kind} upload answered {answer(start)}: user {target.username!r} may not push")
    if start.status_code != 202 or not start.headers.get("Location"):
        raise _StepFailed(f"POST /v2/{repository}/blobs/uploads/ answered {answer(start)}, expected 202 and a Location")
    location = api.location(start)
    if not _same_origin(target, location):
        raise _StepFailed(
            f"the {kind} upload's Location {location.split('?', 1)[0]} is not on {target.base_url}: not sending "
            "credentials there (behind a TLS proxy, pass X-Forwarded-Proto/Host or set http.relativeurls)"
        )
    return location


def _push_blob(api: RegistryApi, target: SmokeTarget, repository: str, kind: str, data: bytes) -> None:
    """Monolithic upload: POST starts an upload session, one PUT with ``?digest=`` sends every byte."""
    digest = sha256_digest(data)
    put = api.request(
        "PUT",
        _upload_location(api, target, repository, kind),
        params={"digest": digest},
        data=data,
        headers={"Content-Type": "application/octet-stream"},
        allow_redirects=False,
    )
    if put.status_code != 201:
        raise _StepFailed(f"uploading the {kind} blob ({len(data)} bytes) answered {answer(put)}, expected 201")
    answered = put.headers.get("Docker-Content-Digest")
    if answered and answered != digest:
        raise _StepFailed(f"the registry stored the {kind} blob as {answered}, but its bytes are {digest}")


def _push_manifest(api: RegistryApi, image: SmokeImage, pushed: dict[str, bool]) -> None:
    """PUT the manifest by tag (``pushed["manifest"]`` once stored) and check the digest it was stored as."""
    put = api.request(
        "PUT",
        f"/v2/{image.repository}/manifests/{image.tag}",
        data=image.manifest,
        headers={"Content-Type": MANIFEST_V2},
        allow_redirects=False,
    )
    if put.status_code != 201:
        raise _StepFailed(f"PUT manifest {image.reference} answered {answer(put)}, expected 201")
    pushed["manifest"] = True
    if put.headers.get("Docker-Content-Digest", image.manifest_digest) != image.manifest_digest:
        raise _StepFailed(
            f"the registry stored the manifest as {put.headers['Docker-Content-Digest']}, "
            f"but the bytes sent are {image.manifest_digest}"
        )


def _pull_manifest(api: RegistryApi, image: SmokeImage) -> None:
    pulled = api.request("GET", f"/v2/{image.repository}/manifests/{image.tag}", headers={"Accept": MANIFEST_V2})
    if pulled.status_code != 200:
        raise _StepFailed(f"GET manifest {image.reference} answered {answer(pulled)}, expected 200")
    header = pulled.headers.get("Docker-Content-Digest")
    if header != image.manifest_digest:
        raise _StepFailed(
            f"GET manifest {image.reference}: Docker-Content-Digest {header} is not the {image.manifest_digest} pushed"
        )
    if sha256_digest(pulled.content) != image.manifest_digest:
        raise _StepFailed(f"GET manifest {image.reference}: the bytes differ from those pushed")


def _pull_blob(api: RegistryApi, target: SmokeTarget, repository: str, kind: str, digest: str) -> str:
    """GET a blob and compare the digest of its bytes; follows a redirect to storage (S3) itself:
    without our credentials there, and with the system CAs where the storage is not our host."""
    url = api.url(f"/v2/{repository}/blobs/{digest}")
    response = api.request("GET", url, allow_redirects=False)
    via = ""
    if response.status_code in _REDIRECTS and response.headers.get("Location"):
        location = urljoin(url, response.headers["Location"])
        if _same_origin(target, location):
            response = api.request("GET", location)
        else:
            with requests.Session() as storage:
                storage.trust_env = False
                storage.verify = system_ca_location() or True
                response = storage.get(location, timeout=target.timeout)
            via = f" via redirect to {urlsplit(location).hostname}"
    if response.status_code != 200:
        raise _StepFailed(f"GET of the {kind} blob {digest[:19]}{via} answered {answer(response)}, expected 200")
    got = sha256_digest(response.content)
    if got != digest:
        raise _StepFailed(f"the {kind} blob came back{via} as {got[:19]}..., not the {digest[:19]}... pushed")
    return via


def _delete_manifest(api: RegistryApi, target: SmokeTarget, image: SmokeImage) -> tuple[bool, str] | None:
    """Delete the pushed manifest by digest: None when it went (202), else the cleanup's verdict.

    Distribution deletes a manifest (202) only with ``storage.delete.enabled``; otherwise it answers
    405 UNSUPPORTED, which is the operator's choice and not a failure of the round trip."""
    try:
        deleted = api.request(
            "DELETE", f"/v2/{image.repository}/manifests/{image.manifest_digest}", allow_redirects=False
        )
    except requests.RequestException as error:
        return False, f"cleanup failed: {describe_error(target, error)}; {image.reference} left behind"
    if deleted.status_code in (405, 403):
        why = "the registry" if deleted.status_code == 405 else f"user {target.username!r}"
        return True, (
            f"cleanup not allowed by {why} (DELETE manifest answered {answer(deleted)}); {image.reference} left behind"
        )
    if deleted.status_code != 202:
        return False, f"cleanup failed: DELETE manifest answered {answer(deleted)}; {image.reference} left behind"
    return None


def _cleanup(api: RegistryApi, target: SmokeTarget, image: SmokeImage, manifest_pushed: bool) -> tuple[bool, str]:
    """Delete what the round trip pushed: (whether that went acceptably, what happened). Deleting the
    manifest also removes the tags that point at it; the blobs' links go the same way."""
    if manifest_pushed and (refused := _delete_manifest(api, target, image)) is not None:
        return refused
    unlinked = 0
    for _kind, data in image.blobs():
        try:
            gone_blob = api.request("DELETE", f"/v2/{image.repository}/blobs/{sha256_digest(data)}")
        except requests.RequestException:
            continue
        unlinked += gone_blob.status_code == 202
    blobs = f"{unlinked} of {len(image.blobs())} blobs deleted"
    if not manifest_pushed:
        return True, f"cleanup: {blobs}"
    try:
        gone = api.request("GET", f"/v2/{image.repository}/manifests/{image.tag}", headers={"Accept": MANIFEST_V2})
    except requests.RequestException as error:
        return True, f"cleanup: manifest deleted (202), but re-reading the tag failed: {describe_error(target, error)}"
    tag_state = "tag gone (404)" if gone.status_code == 404 else f"tag still answers {answer(gone)}"
    return True, f"cleanup: manifest deleted (202), {tag_state}, {blobs}"


def check_round_trip(target: SmokeTarget, *, image: SmokeImage | None = None) -> CheckResult:
    """Push a tiny unique image with the target's credentials, pull it back comparing digests, and
    delete it again (where the registry allows deletes)."""
    if not target.username:
        return CheckResult(ROUND_TRIP, False, f"no credentials: set {USER_ENV} and {PASSWORD_ENV}")
    image = image or make_smoke_image()
    started = time.perf_counter()
    pushed = {"blobs": False, "manifest": False}
    failure = via = ""
    with open_api(target, authenticated=True) as api:
        try:
            _login(api, target)
            for kind, data in image.blobs():
                _push_blob(api, target, image.repository, kind, data)
                pushed["blobs"] = True
            _push_manifest(api, image, pushed)
            _pull_manifest(api, image)
            for kind, data in image.blobs():
                via = _pull_blob(api, target, image.repository, kind, sha256_digest(data)) or via
        except _StepFailed as step:
            failure = str(step)
        except requests.RequestException as error:
            failure = describe_error(target, error)
        elapsed = time.perf_counter() - started
        cleanup_ok, cleanup = _cleanup(api, target, image, pushed["manifest"]) if any(pushed.values()) else (True, "")
    if failure:
        return CheckResult(ROUND_TRIP, False, failure + (f"; {cleanup}" if cleanup else ""))
    size = sum(len(data) for _, data in image.blobs()) + len(image.manifest)
    summary = (
        f"pushed and pulled {image.reference} ({size} bytes) as {target.username!r} in {elapsed:.2f} s, "
        f"digests match{via}; {cleanup}"
    )
    return CheckResult(ROUND_TRIP, cleanup_ok, summary)
