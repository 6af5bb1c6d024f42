"""One client's pull, as docker does it: challenge, credentials, manifest, every blob (redirect not followed).

Each step is timed; a step that answers otherwise than docker needs fails the pull with the reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import requests

from harness.load.image import MANIFEST_TYPE, PulledImage

#: Steps of one pull, in order; ``layer`` repeats once per layer.
STEPS = ("challenge", "auth", "manifest", "config", "layer")
BLOB_ANSWERS = (200, 307)  # the blob itself (redirect off) or a redirect to S3 (redirect on)


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str


@dataclass
class PullResult:
    """One pull: whether it succeeded, why not, and the seconds each step took."""

    ok: bool = False
    error: str = ""
    seconds: float = 0.0
    steps: dict[str, list[float]] = field(default_factory=dict)


class PullFailed(RuntimeError):
    """A step got an answer a docker pull could not go on with."""


def _timed(
    result: PullResult, step: str, session: requests.Session, method: str, url: str, **kw: Any
) -> requests.Response:
    start = time.perf_counter()
    response = session.request(method, url, allow_redirects=False, **kw)
    result.steps.setdefault(step, []).append(time.perf_counter() - start)
    return response


def _expect(response: requests.Response, statuses: tuple[int, ...], what: str) -> None:
    if response.status_code not in statuses:
        raise PullFailed(f"{what}: HTTP {response.status_code}")


def pull_once(
    session: requests.Session, base_url: str, image: PulledImage, credentials: Credentials, timeout: float
) -> PullResult:
    """Pull ``image`` once through ``session`` (kept alive between pulls, as docker's client is)."""
    result = PullResult()
    start = time.perf_counter()
    auth = (credentials.user, credentials.password)
    try:
        anonymous = _timed(result, "challenge", session, "GET", f"{base_url}/v2/", timeout=timeout)
        _expect(anonymous, (401,), "GET /v2/ anonymous")
        if not anonymous.headers.get("WWW-Authenticate", "").lower().startswith("basic"):
            raise PullFailed("GET /v2/ anonymous: no Basic challenge")
        _expect(
            _timed(result, "auth", session, "GET", f"{base_url}/v2/", auth=auth, timeout=timeout), (200,), "GET /v2/"
        )
        repo = f"{base_url}/v2/{image.repository}"
        manifest = _timed(
            result,
            "manifest",
            session,
            "GET",
            f"{repo}/manifests/{image.tag}",
            auth=auth,
            timeout=timeout,
            headers={"Accept": MANIFEST_TYPE},
        )
        _expect(manifest, (200,), "GET manifest")
        if manifest.headers.get("Docker-Content-Digest") != image.manifest_digest:
            raise PullFailed(f"GET manifest: digest {manifest.headers.get('Docker-Content-Digest')}")
        for step, digest in [("config", image.config_digest), *(("layer", d) for d in image.layer_digests)]:
            blob = _timed(result, step, session, "GET", f"{repo}/blobs/{digest}", auth=auth, timeout=timeout)
            _expect(blob, BLOB_ANSWERS, f"GET blob {digest[:19]}")
        result.ok = True
    except (requests.RequestException, PullFailed) as error:
        result.error = f"{type(error).__name__}: {error}"[:300]
    result.seconds = time.perf_counter() - start
    return result
