"""Does a configuration still keep auth? Anonymous and wrong credentials refused, with a Basic challenge."""

from __future__ import annotations

import requests

from harness.load.image import PulledImage


def refusals(base_url: str, image: PulledImage, user: str, password: str) -> dict[str, bool]:
    """Each check's outcome (True: as docker and a careful operator need it)."""
    manifest = f"{base_url}/v2/{image.repository}/manifests/{image.tag}"
    blob = f"{base_url}/v2/{image.repository}/blobs/{image.layer_digests[0]}"
    with requests.Session() as session:
        session.trust_env = False
        anonymous = session.get(f"{base_url}/v2/", timeout=30)
        challenge = anonymous.headers.get("WWW-Authenticate", "")
        wrong = (user, password + "x")
        return {
            "anonymous_v2_401_basic_challenge": anonymous.status_code == 401 and challenge.lower().startswith("basic "),
            "anonymous_manifest_401": session.get(manifest, timeout=30).status_code == 401,
            "wrong_password_v2_401": session.get(f"{base_url}/v2/", auth=wrong, timeout=30).status_code == 401,
            "wrong_password_blob_401": session.get(blob, auth=wrong, timeout=30, allow_redirects=False).status_code
            == 401,
            "unknown_user_401": session.get(f"{base_url}/v2/", auth=("nobody", password), timeout=30).status_code
            == 401,
            "right_password_v2_200": session.get(f"{base_url}/v2/", auth=(user, password), timeout=30).status_code
            == 200,
        }
