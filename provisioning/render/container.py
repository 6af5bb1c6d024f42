"""The registry and proxy containers, as data: the boot script and the test stack start the same run."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from provisioning import names
from provisioning.render import paths
from provisioning.render.caddyfile import ACME_DIRECTORY_ENV
from provisioning.spec import Spec

HTTP_SECRET_ENV: Final = "REGISTRY_HTTP_SECRET"  # noqa: S105 - a variable name, not a secret
# Legacy mode only: the IAM user's access key for the S3 driver, set by the boot script when up stored
# one (otherwise unset, and the driver uses the instance profile).
S3_ACCESS_KEY_ENV: Final = "REGISTRY_STORAGE_S3_ACCESSKEY"
S3_SECRET_KEY_ENV: Final = "REGISTRY_STORAGE_S3_SECRETKEY"  # noqa: S105 - a variable name, not a secret
# Unset on EC2 (the registry talks to AWS S3); an instance box sets it in the registry unit's environment
# to point the registry at its local S3. ``docker run -e NAME`` with NAME unset sets nothing.
S3_ENDPOINT_ENV: Final = "REGISTRY_STORAGE_S3_REGIONENDPOINT"
#: Go's trusted roots (Caddy's, for its ACME server): unset on EC2, the system's; the instance box sets it.
SSL_CERT_FILE_ENV: Final = "SSL_CERT_FILE"
DEFAULT_LOG_OPTIONS: Final = (("max-size", "10m"), ("max-file", "3"))


@dataclass(frozen=True)
class ContainerRun:
    """One ``docker run``: host paths are mounted as (host, container, mode), mode "ro" or "rw".

    ``env`` holds plain values; ``inherited_env`` names variables (secrets) whose values the caller's
    environment supplies, so that they never appear in an argument list or a rendered file;
    ``optional_env`` likewise, but the caller may leave them unset (``docker run -e NAME`` then sets
    nothing in the container).
    """

    name: str
    image: str
    network: str = "host"
    volumes: tuple[tuple[str, str, str], ...] = ()
    tmpfs: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    args: tuple[str, ...] = ()
    inherited_env: tuple[str, ...] = ()
    optional_env: tuple[str, ...] = ()
    log_options: tuple[tuple[str, str], ...] = DEFAULT_LOG_OPTIONS

    def docker_run_argv(self) -> tuple[str, ...]:
        """``docker run --rm`` in the foreground: its supervisor (systemd, a test fixture) restarts it."""
        argv = ["docker", "run", "--rm", "--name", self.name, "--network", self.network]
        if self.log_options:
            argv += ["--log-driver", "json-file"]
            for key, value in self.log_options:
                argv += ["--log-opt", f"{key}={value}"]
        for host, container, mode in self.volumes:
            argv += ["-v", f"{host}:{container}:{mode}"]
        for path in self.tmpfs:
            argv += ["--tmpfs", path]
        for key, value in self.env:
            argv += ["-e", f"{key}={value}"]
        for key in (*self.inherited_env, *self.optional_env):
            argv += ["-e", key]
        return (*argv, self.image, *self.args)

    def environment(self, caller_env: Mapping[str, str]) -> dict[str, str]:
        """The container's full environment, inherited values taken from ``caller_env`` (for docker SDKs)."""
        missing = [key for key in self.inherited_env if key not in caller_env]
        if missing:
            raise KeyError(f"the caller's environment lacks {', '.join(missing)}")
        optional = {key: caller_env[key] for key in self.optional_env if key in caller_env}
        return {**dict(self.env), **{key: caller_env[key] for key in self.inherited_env}, **optional}


def render_registry_run(spec: Spec) -> ContainerRun:
    """The registry container: its rendered config mounted read-only (the front checks passwords)."""
    major = spec.registry.version_major
    config_in_container = paths.CONFIG_PATH_IN_CONTAINER[major]
    volumes = [(paths.REGISTRY_CONFIG_DIR, posixpath.dirname(config_in_container), "ro")]
    # distribution 3.x exports OpenTelemetry traces to an OTLP collector unless told otherwise.
    env = (("OTEL_TRACES_EXPORTER", "none"),) if major == 3 else ()
    return ContainerRun(
        name=names.CONTAINER_NAME,
        image=spec.registry.image,
        volumes=tuple(volumes),
        env=env,
        args=("serve", config_in_container),
        inherited_env=(HTTP_SECRET_ENV,),
        optional_env=(S3_ACCESS_KEY_ENV, S3_SECRET_KEY_ENV, S3_ENDPOINT_ENV),
    )


def render_front_run(spec: Spec) -> ContainerRun:
    """The front (nginx): its config, the htpasswd and (self-signed) TLS read-only, its caches on a tmpfs."""
    volumes = [
        (paths.FRONT_CONFIG_DIR, paths.FRONT_CONFIG_DIR_IN_CONTAINER, "ro"),
        (paths.AUTH_DIR, paths.AUTH_DIR_IN_CONTAINER, "ro"),
    ]
    if spec.tls.mode == "selfsigned":
        volumes.append((names.TLS_DIR, paths.CERTS_DIR_IN_CONTAINER, "ro"))
    return ContainerRun(
        name=names.FRONT_CONTAINER_NAME,
        image=spec.registry.front_image,
        volumes=tuple(volumes),
        tmpfs=(paths.FRONT_CACHE_DIR_IN_CONTAINER,),
        args=("nginx", "-c", paths.FRONT_CONFIG_IN_CONTAINER),
    )


def render_proxy_run(spec: Spec) -> ContainerRun | None:
    """The Caddy container that terminates Let's Encrypt TLS in front of the registry, if any."""
    if spec.tls.mode != "letsencrypt":
        return None
    return ContainerRun(
        name=names.PROXY_CONTAINER_NAME,
        image=spec.tls.proxy_image,
        volumes=(
            (paths.CADDY_CONFIG_DIR, paths.CADDY_CONFIG_DIR_IN_CONTAINER, "ro"),
            (f"{paths.CADDY_STATE_DIR}/data", "/data", "rw"),
            (f"{paths.CADDY_STATE_DIR}/config", "/config", "rw"),
        ),
        args=("caddy", "run", "--config", paths.CADDYFILE_IN_CONTAINER, "--adapter", "caddyfile"),
        optional_env=(ACME_DIRECTORY_ENV, SSL_CERT_FILE_ENV),
    )
