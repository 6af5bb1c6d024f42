"""The registry's health: where it answers, and bounded waiting for it to answer."""

from provisioning.health.endpoint import api_url, registry_url, server_name
from provisioning.health.probe import (
    HEALTHY_STATUSES,
    Healthy,
    Probe,
    ResolvedAdapter,
    ServerNameAdapter,
    probe,
    resolving_session,
    wait_until_healthy,
)

__all__ = [
    "HEALTHY_STATUSES",
    "Healthy",
    "Probe",
    "ResolvedAdapter",
    "ServerNameAdapter",
    "api_url",
    "probe",
    "registry_url",
    "resolving_session",
    "server_name",
    "wait_until_healthy",
]
