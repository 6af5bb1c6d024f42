"""Names and tags of the AWS resources a deployment owns: derived from the spec, never stored."""

from __future__ import annotations

from provisioning.spec import Spec

TAG_DEPLOYMENT = "spotreg:deployment"
TAG_RUN = "spotreg:run"
TAG_EXPIRES = "spotreg:expires"

CONTAINER_NAME = "spotreg-registry"
PROXY_CONTAINER_NAME = "spotreg-proxy"
CONFIG_DIR = "/etc/spotreg"
REGISTRY_CONFIG_PATH = f"{CONFIG_DIR}/registry/config.yml"
HTPASSWD_PATH = f"{CONFIG_DIR}/auth/htpasswd"
TLS_DIR = f"{CONFIG_DIR}/tls"
BOOT_SCRIPT_PATH = "/usr/local/sbin/spotreg-boot"


def resource_name(spec: Spec) -> str:
    """The Name of every IAM/EC2 resource of this deployment."""
    return f"spotreg-{spec.deployment.name}"


def parameter_prefix(spec: Spec) -> str:
    """SSM parameters of this deployment live below this path."""
    return f"/spotreg/{spec.deployment.name}"


def htpasswd_parameter(spec: Spec) -> str:
    return f"{parameter_prefix(spec)}/htpasswd"


def tls_key_parameter(spec: Spec) -> str:
    return f"{parameter_prefix(spec)}/tls-key"


def tls_cert_parameter(spec: Spec) -> str:
    """The self-signed server certificate (public), kept so that a second `up` re-uses it."""
    return f"{parameter_prefix(spec)}/tls-cert"


def tls_ca_parameter(spec: Spec) -> str:
    """The self-signed CA certificate (public): what clients put in certs.d/<host>/ca.crt."""
    return f"{parameter_prefix(spec)}/tls-ca"


def dns_password_parameter(spec: Spec) -> str:
    return f"{parameter_prefix(spec)}/dns-password"


def deployment_tags(spec: Spec, run_id: str | None = None, expires: str | None = None) -> dict[str, str]:
    """Tags every resource carries: the user's, then spotreg's own (which win)."""
    tags = dict(spec.tags)
    tags["Name"] = resource_name(spec)
    tags[TAG_DEPLOYMENT] = spec.deployment.name
    if run_id is not None:
        tags[TAG_RUN] = run_id
    if expires is not None:
        tags[TAG_EXPIRES] = expires
    return tags
