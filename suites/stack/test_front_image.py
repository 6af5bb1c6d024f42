"""The front image runs the nginx features the front's configuration uses: TLS, auth_basic against a
bcrypt htpasswd checked by an auth_request subrequest to a unix-socket server (its answer cached), and
a proxy_cache of the upstream's responses, as root, in the foreground, on the host's network."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from fixtures.container_logs import forget, watch
from fixtures.registry_container import RUN_ID, STACK_LABEL
from harness.loopback import LOOPBACK, free_port, wait_for_port
from provisioning.render.tls import render_selfsigned
from provisioning.secrets import make_htpasswd

pytestmark = pytest.mark.stack

USER, PASSWORD = "front-user", "a-front-password-1"
BLOB = b"content-addressed bytes"
CACHE = "/var/cache/spotreg-front"

NGINX_CONF = """daemon off;
user root;
error_log stderr notice;
pid {cache}/nginx.pid;
events {{}}
http {{
    access_log off;
    client_body_temp_path {cache}/body;
    proxy_temp_path {cache}/proxy;
    fastcgi_temp_path {cache}/fastcgi;
    uwsgi_temp_path {cache}/uwsgi;
    scgi_temp_path {cache}/scgi;
    proxy_cache_path {cache}/auth keys_zone=auth:1m;
    proxy_cache_path {cache}/content keys_zone=content:1m;
    upstream registry {{
        server {loopback}:{upstream};
        keepalive 4;
    }}
    server {{
        listen unix:{cache}/auth.sock;
        auth_basic "spotreg";
        auth_basic_user_file /auth/htpasswd;
        location / {{
            try_files /nothing =204;  # not `return 204`: return runs before auth_basic, which it skips
        }}
    }}
    server {{
        listen {loopback}:{port} ssl;
        ssl_certificate /certs/server.crt;
        ssl_certificate_key /certs/server.key;
        location = /auth {{
            internal;
            proxy_pass http://unix:{cache}/auth.sock:/;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_cache auth;
            proxy_cache_key $http_authorization;
            proxy_cache_valid 204 1m;
        }}
        location / {{
            auth_request /auth;
            proxy_pass http://registry;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache content;
            proxy_cache_valid 200 1m;
            proxy_cache_lock on;
        }}
    }}
}}
"""


class _Upstream(http.server.BaseHTTPRequestHandler):
    """Answers every GET with ``BLOB``, counting them."""

    served = 0

    def do_GET(self) -> None:
        type(self).served += 1
        self.send_response(200)
        self.send_header("Content-Length", str(len(BLOB)))
        self.end_headers()
        self.wfile.write(BLOB)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def upstream() -> Iterator[int]:
    """A loopback HTTP server (``_Upstream``) for the front to proxy to; its port."""
    _Upstream.served = 0
    server = http.server.ThreadingHTTPServer((LOOPBACK, 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_the_front_image_asks_for_the_password_checks_it_and_caches(docker_client, front_image, upstream, tmp_path):
    port = free_port()
    tls = render_selfsigned([LOOPBACK], now=datetime.now(UTC), days=1)
    files = {
        "front/nginx.conf": NGINX_CONF.format(cache=CACHE, loopback=LOOPBACK, upstream=upstream, port=port),
        "auth/htpasswd": make_htpasswd({USER: PASSWORD}, rounds=10),
        "tls/server.crt": tls.server_cert_pem.decode(),
        "tls/server.key": tls.server_key_pem.decode(),
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "ca.crt").write_bytes(tls.ca_cert_pem)
    mounts: dict[str, dict[str, str]] = {
        str(tmp_path / "front"): {"bind": "/etc/spotreg-front", "mode": "ro"},
        str(tmp_path / "auth"): {"bind": "/auth", "mode": "ro"},
        str(tmp_path / "tls"): {"bind": "/certs", "mode": "ro"},
    }
    container = docker_client.containers.run(
        front_image,
        ["nginx", "-c", "/etc/spotreg-front/nginx.conf"],
        detach=True,
        network_mode="host",
        volumes=mounts,
        tmpfs={CACHE: ""},
        labels={STACK_LABEL: RUN_ID},
    )
    watch("front", container)
    try:
        wait_for_port(port)
        url, verify = f"https://{LOOPBACK}:{port}/v2/blobs/sha256:0", str(tmp_path / "ca.crt")
        anonymous = requests.get(url, verify=verify, timeout=10)
        assert anonymous.status_code == 401
        assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
        assert requests.get(url, verify=verify, auth=(USER, "not-it"), timeout=10).status_code == 401
        for _ in range(2):
            answer = requests.get(url, verify=verify, auth=(USER, PASSWORD), timeout=10)
            assert (answer.status_code, answer.content) == (200, BLOB)
        assert _Upstream.served == 1  # the second answer came from the cache
    finally:
        forget(container)
        with contextlib.suppress(Exception):
            container.remove(force=True)
