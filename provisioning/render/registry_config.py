"""The registry's ``config.yml`` (CNCF distribution 2.x or 3.x), storage on S3."""

from __future__ import annotations

from typing import Any, Final

import yaml

from provisioning.render import paths
from provisioning.spec import Spec

CONFIG_PATH_IN_CONTAINER: Final[dict[int, str]] = paths.CONFIG_PATH_IN_CONTAINER
S3_CHUNK_SIZE: Final = 10 * 1024 * 1024  # multipart part size; S3 needs at least 5 MiB


def render_registry_config(spec: Spec) -> str:
    """The registry configuration as YAML, for the spec's registry major version.

    The registry listens on loopback, plain HTTP, with no auth of its own: the front (nginx,
    ``front_config``) on the registry port checks every password and terminates self-signed TLS.
    Secrets are not in it: ``http.secret`` comes from ``REGISTRY_HTTP_SECRET`` (set by the boot
    script), the S3 credentials from the instance profile.
    """
    major = spec.registry.version_major
    if major not in CONFIG_PATH_IN_CONTAINER:
        raise ValueError(f"no configuration for registry major version {major}")
    s3: dict[str, Any] = {
        "region": spec.deployment.region,
        "bucket": spec.storage.bucket,
        "rootdirectory": spec.storage.rootdirectory,
        "encrypt": True,
        "secure": True,
        "chunksize": S3_CHUNK_SIZE,
        # The bucket is BucketOwnerEnforced (ACLs disabled): S3 then refuses any object ACL but this
        # one, and the driver's default ("private") would fail every push on real AWS.
        "objectacl": "bucket-owner-full-control",
    }
    if major == 2:
        s3["v4auth"] = True
    else:
        # 3.x dropped v4auth (always SigV4) and addresses buckets virtual-host style unless told.
        # Its OpenTelemetry tracing is configured from OTEL_* variables, not from this file: the
        # container sets OTEL_TRACES_EXPORTER=none (see container.py), as 3.x would otherwise try
        # to export to an OTLP collector on localhost.
        s3["forcepathstyle"] = False
    http: dict[str, Any] = {
        "addr": paths.REGISTRY_ADDR,
        "headers": {"X-Content-Type-Options": ["nosniff"]},
    }
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "info", "formatter": "text", "fields": {"service": "registry"}},
        "storage": {
            "s3": s3,
            "redirect": {"disable": not spec.storage.redirect},
            "delete": {"enabled": True},
            "cache": {"blobdescriptor": "inmemory"},
            "maintenance": {
                "uploadpurging": {"enabled": True, "age": "168h", "interval": "24h", "dryrun": False},
            },
        },
        "http": http,
        # Every storage health check is an S3 LIST request: the registry's default 10 s interval
        # costs about 260,000 requests a month (~$1.30 at $0.005 per 1,000); the spec's default of
        # 300 s about 8,600.
        "health": {
            "storagedriver": {
                "enabled": True,
                "interval": f"{spec.registry.health_interval_seconds}s",
                "threshold": 3,
            }
        },
    }
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False, width=1000)
