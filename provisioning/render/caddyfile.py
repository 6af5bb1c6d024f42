"""The Caddyfile of the Let's Encrypt proxy in front of the registry."""

from __future__ import annotations

import re
from typing import Final

from provisioning import rules
from provisioning.render import paths
from provisioning.spec import Spec

#: Caddy's ACME directory is Let's Encrypt's unless this variable names another: Caddy reads it from its
#: environment, which on EC2 sets nothing (the instance box sets it to its test ACME server).
ACME_DIRECTORY_ENV: Final = "SPOTREG_ACME_DIRECTORY"
LETS_ENCRYPT_DIRECTORY: Final = "https://acme-v02.api.letsencrypt.org/directory"

_BARE_TOKEN = re.compile(r"[A-Za-z0-9._:/@%+-]+")


def caddy_token(value: str) -> str:
    """One Caddyfile token: bare when plainly safe, else double-quoted so it stays one token."""
    if _BARE_TOKEN.fullmatch(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_caddyfile(spec: Spec) -> str:
    """Caddy obtains and renews the certificate for ``dns.hostname`` from Let's Encrypt (by HTTP-01 on
    port 80) and proxies to the front (nginx, then the registry) on loopback. Only ``operator_cidrs``
    reach it (ACME challenges are answered before any route, so Let's Encrypt still gets through); the
    front and the registry see ``X-Forwarded-Proto``. ``$SPOTREG_ACME_DIRECTORY``, when set, names
    another ACME directory.
    """
    if spec.tls.mode != "letsencrypt" or spec.dns.hostname is None:
        raise ValueError("a Caddyfile is rendered for tls.mode = 'letsencrypt' with a dns.hostname")
    options = ["    admin off", f"    acme_ca {{${ACME_DIRECTORY_ENV}:{LETS_ENCRYPT_DIRECTORY}}}"]  # no admin API
    if spec.tls.email is not None:
        options.append(f"    email {caddy_token(spec.tls.email)}")
    # HTTP-01 on port 80 only: one way to prove the name, the one the stack tier proves with pebble
    options += ["    cert_issuer acme {", "        disable_tlsalpn_challenge", "    }"]
    site = [f"{caddy_token(spec.dns.hostname)} {{"]
    cidrs = spec.network.operator_cidrs
    if not set(cidrs) >= rules.WORLD_CIDRS:
        site += [
            f"    @outsiders not remote_ip {' '.join(caddy_token(cidr) for cidr in cidrs)}",
            "    abort @outsiders",
        ]
    site += [
        f"    reverse_proxy {paths.FRONT_BEHIND_PROXY_ADDR} {{",
        "        header_up X-Forwarded-Proto {scheme}",
        "    }",
        "}",
    ]
    return "\n".join(["{", *options, "}", "", *site]) + "\n"
