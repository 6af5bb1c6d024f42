"""The front's ``nginx.conf``: nginx on the registry's port, in front of the registry on loopback.

Why it is there: a CI fleet pulls the same images at once, and distribution 2.8 spends about 2 ms of CPU
on every request (it rebuilds its URL router each time) plus a bcrypt check of the password. The front
answers most of a pull without the registry and checks a password once per ``AUTH_CACHE_SECONDS``:

- **passwords**: nginx's ``auth_basic`` against the htpasswd file (bcrypt), run in a subrequest whose
  answer (204, or 401) is cached for ``AUTH_CACHE_SECONDS`` per ``Authorization`` header: a client that
  retries a wrong password costs one bcrypt check per that time, not one per request (a check blocks its
  nginx worker for ~70 ms). A request without credentials bypasses the cache (it shares one empty key,
  and would queue on its lock). So a
  removed user or an old password is refused at most that long after the file changes.
- **the registry's liveness**: the challenge to a request without credentials (401) is given only while
  the registry answers ``/v2/`` (checked at most every ``LIVENESS_SECONDS``), else 500: so health checks
  that expect the challenge still see a registry that is down. An authenticated ``GET /v2/`` is cached
  as long.
- **content-addressed answers**: by digest, a manifest (200) and a blob's redirect to S3 (307) are
  cached for ``CONTENT_CACHE_SECONDS``. A blob's bytes (200, ``storage.redirect`` off)
  and anything by tag are never cached: a pushed tag is seen by the next pull.
- the registry behind it has no auth of its own and listens on ``paths.REGISTRY_ADDR`` only.

The caches live on a tmpfs (``paths.FRONT_CACHE_DIR_IN_CONTAINER``): the cached keys hold credentials.
"""

from __future__ import annotations

from typing import Final

from provisioning.render import paths
from provisioning.spec import Spec

AUTH_CACHE_SECONDS: Final = 10
#: How long an answer from the registry's ``/v2/`` stands for "the registry answers".
LIVENESS_SECONDS: Final = 2
CONTENT_CACHE_SECONDS: Final = 60
REALM: Final = "spotreg"
#: Long pushes: a layer's last PUT waits for S3 to assemble the upload.
BODY_TIMEOUT_SECONDS: Final = 600
_CACHE = paths.FRONT_CACHE_DIR_IN_CONTAINER
_AUTH_SOCKET = f"{_CACHE}/auth.sock"
_DIGEST = "sha256:[0-9a-f]{64}"
_LISTEN_JOIN = "\n        "
#: The registry's own answer to a request without the right credentials, which clients print.
_UNAUTHORIZED = '{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}'


def front_listen(spec: Spec) -> list[str]:
    """nginx's ``listen`` lines: loopback behind the Let's Encrypt proxy, else the registry port on IPv4
    and IPv6 (TLS if selfsigned), as the registry's own ``:port`` did."""
    if spec.tls.mode == "letsencrypt":
        return [f"listen {paths.FRONT_BEHIND_PROXY_ADDR};"]
    ssl = " ssl" if spec.tls.mode == "selfsigned" else ""
    return [f"listen {spec.registry.port}{ssl};", f"listen [::]:{spec.registry.port}{ssl};"]


def _forwarded_proto(spec: Spec) -> str:
    """What the registry builds its upload URLs with: Caddy's scheme behind it, else the front's own."""
    return "$http_x_forwarded_proto" if spec.tls.mode == "letsencrypt" else "$scheme"


def render_front_config(spec: Spec) -> str:
    """The whole ``nginx.conf`` (see the module's docstring)."""
    tls = ""
    if spec.tls.mode == "selfsigned":
        tls = f"""
        ssl_certificate {paths.TLS_CERT_IN_CONTAINER};
        ssl_certificate_key {paths.TLS_KEY_IN_CONTAINER};
        ssl_protocols TLSv1.2 TLSv1.3;"""
    cached = """proxy_pass http://registry;
            proxy_cache content;
            proxy_cache_key "$request_method $uri $http_accept";
            proxy_cache_lock on;"""
    return f"""daemon off;
user root;
worker_processes auto;
pid {_CACHE}/nginx.pid;
error_log stderr warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
    server_tokens off;
    default_type application/octet-stream;
    client_body_temp_path {_CACHE}/body;
    proxy_temp_path {_CACHE}/proxy;
    fastcgi_temp_path {_CACHE}/fastcgi;
    uwsgi_temp_path {_CACHE}/uwsgi;
    scgi_temp_path {_CACHE}/scgi;
    proxy_cache_path {_CACHE}/auth keys_zone=auth:1m max_size=8m inactive=1m;
    proxy_cache_path {_CACHE}/content keys_zone=content:4m max_size=32m inactive=10m;
    map $http_authorization $anonymous {{
        "" 1;
        default 0;
    }}
    upstream registry {{
        server {paths.REGISTRY_ADDR};
        keepalive 16;
    }}
    server {{
        listen unix:{_AUTH_SOCKET};
        location / {{
            if ($anonymous) {{
                rewrite ^ /anonymous last;
            }}
            auth_basic {REALM};
            auth_basic_user_file {paths.HTPASSWD_IN_CONTAINER};
            try_files /nonexistent =204;
        }}
        location = /anonymous {{
            auth_request /registry-answers;
            add_header WWW-Authenticate 'Basic realm="{REALM}"' always;
            try_files /nonexistent =401;
        }}
        location = /registry-answers {{
            internal;
            proxy_pass http://registry/v2/;
            proxy_cache content;
            proxy_cache_key "registry answers";
            proxy_cache_valid 200 {LIVENESS_SECONDS}s;
            proxy_cache_lock on;
        }}
    }}
    server {{
        {_LISTEN_JOIN.join(front_listen(spec))}{tls}
        client_max_body_size 0;
        client_body_timeout {BODY_TIMEOUT_SECONDS}s;
        proxy_read_timeout {BODY_TIMEOUT_SECONDS}s;
        proxy_send_timeout {BODY_TIMEOUT_SECONDS}s;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-Proto {_forwarded_proto(spec)};
        proxy_set_header Authorization "";
        proxy_ignore_headers Cache-Control Expires Set-Cookie;
        proxy_cache_convert_head off;
        proxy_hide_header Docker-Distribution-Api-Version;
        add_header Docker-Distribution-Api-Version registry/2.0 always;
        auth_request /.spotreg-auth;
        error_page 401 = @unauthorized;  # the challenge from auth_basic, the body the registry's
        location @unauthorized {{
            default_type application/json;
            add_header Docker-Distribution-Api-Version registry/2.0 always;
            return 401 '{_UNAUTHORIZED}\n';
        }}
        location = /.spotreg-auth {{
            internal;
            auth_request off;
            proxy_pass http://unix:{_AUTH_SOCKET}:/;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_cache auth;
            proxy_cache_key $http_authorization;
            proxy_cache_valid 204 401 {AUTH_CACHE_SECONDS}s;
            proxy_cache_lock on;
            proxy_cache_bypass $anonymous;  # one key, never cached: no queue behind the lock
            proxy_no_cache $anonymous;
        }}
        location = /v2/ {{
            {cached}
            proxy_cache_valid 200 {LIVENESS_SECONDS}s;
        }}
        location ~ "^/v2/.+/manifests/{_DIGEST}$" {{
            {cached}
            proxy_cache_valid 200 {CONTENT_CACHE_SECONDS}s;
        }}
        location ~ "^/v2/.+/blobs/{_DIGEST}$" {{
            {cached}
            proxy_cache_valid 307 {CONTENT_CACHE_SECONDS}s;
            proxy_max_temp_file_size 0;
        }}
        location / {{
            proxy_pass http://registry;
            proxy_request_buffering off;
            proxy_buffering off;
        }}
    }}
}}
"""
