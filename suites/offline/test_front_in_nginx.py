"""The rendered front config, run by this host's nginx (Debian's 1.22, the one the test image is built
from; EC2 runs the upstream image, 1.28) before a stand-in registry on loopback: what it answers, what it
caches, what reaches the registry.

Only the container's paths and the two addresses are moved (to a temporary directory and free ports);
the instance box runs the config unedited in the stack tier.
"""

from __future__ import annotations

import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from harness.loopback import free_port
from provisioning.render import paths
from provisioning.render.front_config import render_front_config
from provisioning.secrets import make_htpasswd
from suites.offline.render_samples import matrix_spec

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
USER, PASSWORD = "ci", "Front-password-1"
DIGEST = "sha256:" + "ab" * 32
pytestmark = pytest.mark.skipif(not Path(NGINX).exists(), reason="no nginx here (Debian's nginx package)")


@dataclass
class StandIn:
    """A registry stand-in: answers every GET with 200 (a blob with 307) and records what it was asked."""

    seen: list[tuple[str, str | None]] = field(default_factory=list)

    def handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        seen = self.seen

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                seen.append((self.path, self.headers.get("Authorization")))
                blob = "/blobs/" in self.path
                self.send_response(307 if blob else 200)
                if blob:
                    self.send_header("Location", "https://s3.example/presigned")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@dataclass
class Front:
    url: str
    registry: StandIn
    server: http.server.ThreadingHTTPServer
    htpasswd: Path

    def get(self, path: str, auth: tuple[str, str] | None = (USER, PASSWORD)) -> requests.Response:
        return requests.get(f"{self.url}{path}", auth=auth, allow_redirects=False, timeout=10)


@pytest.fixture
def front(tmp_path: Path) -> Iterator[Front]:
    registry = StandIn()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), registry.handler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = free_port()
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(make_htpasswd({USER: PASSWORD}, rounds=10), encoding="utf-8")
    config = render_front_config(matrix_spec(("none", "route53")))
    for container_path, here in (
        (paths.FRONT_CACHE_DIR_IN_CONTAINER, str(tmp_path / "cache")),
        (paths.HTPASSWD_IN_CONTAINER, str(htpasswd)),
        (f"server {paths.REGISTRY_ADDR};", f"server 127.0.0.1:{server.server_port};"),
        ("listen 443;", f"listen 127.0.0.1:{port};"),
        ("listen [::]:443;", ""),
        ("daemon off;", "daemon on;"),
    ):
        assert container_path in config
        config = config.replace(container_path, here)
    (tmp_path / "cache").mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(config, encoding="utf-8")
    with (tmp_path / "nginx.log").open("wb") as log:  # the daemon keeps it open: no pipe to wait on
        subprocess.run([NGINX, "-c", str(conf)], check=True, stdout=log, stderr=log)
    try:
        yield Front(f"http://127.0.0.1:{port}", registry, server, htpasswd)
    finally:
        subprocess.run([NGINX, "-c", str(conf), "-s", "stop"], check=False, stderr=subprocess.DEVNULL)
        server.shutdown()
        server.server_close()


def test_the_challenge_and_refusals_look_like_the_registrys(front: Front) -> None:
    for auth in (None, (USER, "wrong-password-1"), ("nobody", PASSWORD)):
        refused = front.get("/v2/", auth=auth)
        assert refused.status_code == 401, auth
        assert refused.headers["WWW-Authenticate"] == 'Basic realm="spotreg"'
        assert refused.json()["errors"][0]["code"] == "UNAUTHORIZED"
        assert refused.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    assert all(path == "/v2/" for path, _ in front.registry.seen)  # only the liveness check got through


def test_the_registry_never_sees_a_password_and_answers_once_per_content_addressed_request(front: Front) -> None:
    for _ in range(3):
        assert front.get(f"/v2/team/app/manifests/{DIGEST}").status_code == 200
        assert front.get(f"/v2/team/app/blobs/{DIGEST}").headers["Location"] == "https://s3.example/presigned"
        assert front.get("/v2/team/app/manifests/latest").status_code == 200
    asked = [path for path, _ in front.registry.seen]
    assert asked.count(f"/v2/team/app/manifests/{DIGEST}") == 1
    assert asked.count(f"/v2/team/app/blobs/{DIGEST}") == 1
    assert asked.count("/v2/team/app/manifests/latest") == 3  # a tag is never cached
    assert {authorization for _, authorization in front.registry.seen} == {None}


def test_a_registry_that_does_not_answer_gets_no_challenge(front: Front) -> None:
    front.server.shutdown()
    front.server.server_close()
    down = front.get("/v2/", auth=None)
    assert down.status_code == 500  # a health check expecting 401 sees it
    assert "WWW-Authenticate" not in down.headers
