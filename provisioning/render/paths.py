"""Where the boot lays files out on the instance, and where the containers see them."""

from __future__ import annotations

from typing import Final

from provisioning import names

# Host side: everything below names.CONFIG_DIR, written by cloud-init or fetched at boot.
REGISTRY_CONFIG_DIR: Final = f"{names.CONFIG_DIR}/registry"  # holds names.REGISTRY_CONFIG_PATH
AUTH_DIR: Final = f"{names.CONFIG_DIR}/auth"  # holds names.HTPASSWD_PATH
TLS_CERT_PATH: Final = f"{names.TLS_DIR}/server.crt"
TLS_KEY_PATH: Final = f"{names.TLS_DIR}/server.key"
DNS_DIR: Final = f"{names.CONFIG_DIR}/dns"
DNS_PASSWORD_PATH: Final = f"{DNS_DIR}/password"
HTTP_SECRET_PATH: Final = f"{names.CONFIG_DIR}/http-secret"
FRONT_CONFIG_DIR: Final = f"{names.CONFIG_DIR}/front"
FRONT_CONFIG_PATH: Final = f"{FRONT_CONFIG_DIR}/nginx.conf"
CADDY_CONFIG_DIR: Final = f"{names.CONFIG_DIR}/caddy"
CADDYFILE_PATH: Final = f"{CADDY_CONFIG_DIR}/Caddyfile"
# Caddy's certificates and ACME account: kept across restarts so that a restart does not ask
# Let's Encrypt for a new certificate (its rate limits are per week).
CADDY_STATE_DIR: Final = "/var/lib/spotreg/caddy"

SYSTEMD_DIR: Final = "/etc/systemd/system"
REGISTRY_UNIT: Final = "spotreg-registry.service"
PROXY_UNIT: Final = "spotreg-proxy.service"
FRONT_UNIT: Final = "spotreg-front.service"
# Re-reads the registry's users from SSM on the running instance (the timer starts the service).
REFRESH_UNIT: Final = "spotreg-refresh.service"
REFRESH_TIMER: Final = "spotreg-refresh.timer"

# Container side.
CONFIG_PATH_IN_CONTAINER: Final[dict[int, str]] = {
    2: "/etc/docker/registry/config.yml",
    3: "/etc/distribution/config.yml",
}
AUTH_DIR_IN_CONTAINER: Final = "/auth"
HTPASSWD_IN_CONTAINER: Final = f"{AUTH_DIR_IN_CONTAINER}/htpasswd"
CERTS_DIR_IN_CONTAINER: Final = "/certs"
TLS_CERT_IN_CONTAINER: Final = f"{CERTS_DIR_IN_CONTAINER}/server.crt"
TLS_KEY_IN_CONTAINER: Final = f"{CERTS_DIR_IN_CONTAINER}/server.key"
FRONT_CONFIG_DIR_IN_CONTAINER: Final = "/etc/spotreg-front"
FRONT_CONFIG_IN_CONTAINER: Final = f"{FRONT_CONFIG_DIR_IN_CONTAINER}/nginx.conf"
# A tmpfs: the front's caches (verified credentials among them) and its auth socket live in memory only.
FRONT_CACHE_DIR_IN_CONTAINER: Final = "/var/cache/spotreg-front"
CADDY_CONFIG_DIR_IN_CONTAINER: Final = "/etc/caddy"
CADDYFILE_IN_CONTAINER: Final = f"{CADDY_CONFIG_DIR_IN_CONTAINER}/Caddyfile"

# The registry listens on loopback only, behind the front; the front listens on the registry port, or on
# loopback behind the Let's Encrypt proxy.
REGISTRY_ADDR: Final = "127.0.0.1:5001"
FRONT_BEHIND_PROXY_ADDR: Final = "127.0.0.1:5000"
