"""Does a configuration keep auth? Anonymous and wrong credentials refused with a Basic challenge, the right
ones pull; behind the front, a user removed from the htpasswd file is refused once its cached check expires.
"""

from __future__ import annotations

import os

import requests

from harness.load.image import PulledImage
from harness.load.pull import Credentials, pull_once
from harness.load.stand import LEAVER, USER, Served
from provisioning.errors import WaitTimeout
from provisioning.render.front_config import AUTH_CACHE_SECONDS
from provisioning.waits import poll_until

#: The README's promise: a removed user is refused at most ``AUTH_CACHE_SECONDS`` after the file changes.
REVOKED_WITHIN_SECONDS = AUTH_CACHE_SECONDS + 2


def auth_checks(served: Served, image: PulledImage) -> dict[str, bool]:
    """Each check's outcome (True: as docker and a careful operator need it)."""
    base_url = served.url
    manifest = f"{base_url}/v2/{image.repository}/manifests/{image.tag}"
    blob = f"{base_url}/v2/{image.repository}/blobs/{image.layer_digests[0]}"
    with requests.Session() as session:
        session.trust_env = False
        anonymous = session.get(f"{base_url}/v2/", timeout=30)
        challenge = anonymous.headers.get("WWW-Authenticate", "")
        wrong = (USER, served.password + "x")
        checks = {
            "anonymous_v2_401_basic_challenge": anonymous.status_code == 401 and challenge.lower().startswith("basic "),
            "anonymous_manifest_401": session.get(manifest, timeout=30).status_code == 401,
            "wrong_password_v2_401": session.get(f"{base_url}/v2/", auth=wrong, timeout=30).status_code == 401,
            "wrong_password_blob_401": session.get(blob, auth=wrong, timeout=30, allow_redirects=False).status_code
            == 401,
            "unknown_user_401": session.get(f"{base_url}/v2/", auth=("nobody", served.password), timeout=30).status_code
            == 401,
            "right_password_pulls": pull_once(session, base_url, image, Credentials(USER, served.password), 30).ok,
        }
        if served.configuration.front:
            checks[f"removed_user_401_within_{REVOKED_WITHIN_SECONDS}s"] = _removed_user_refused(session, served)
    return checks


def _removed_user_refused(session: requests.Session, served: Served) -> bool:
    """``LEAVER``'s check cached, then their line removed from the file (atomically): refused in time?"""
    url, leaver = f"{served.url}/v2/", (LEAVER, served.passwords[LEAVER])
    if session.get(url, auth=leaver, timeout=30).status_code != 200:
        return False
    lines = served.htpasswd.read_text(encoding="utf-8").splitlines(keepends=True)
    staged = served.htpasswd.with_name(f".{served.htpasswd.name}.new")
    staged.write_text("".join(line for line in lines if not line.startswith(f"{LEAVER}:")), encoding="utf-8")
    os.replace(staged, served.htpasswd)

    def refused() -> tuple[bool, str]:
        status = session.get(url, auth=leaver, timeout=30).status_code
        return status == 401, f"HTTP {status}"

    try:
        poll_until(f"{LEAVER} refused", refused, timeout=REVOKED_WITHIN_SECONDS, interval=0.2, max_interval=0.5)
    except WaitTimeout:
        return False
    return True
