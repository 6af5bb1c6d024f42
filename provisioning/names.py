"""Names, tags and SSM paths of the AWS resources a deployment owns: derived, never stored.

The one module that spells them. Each name has two forms: one from a Spec (what `up` makes) and one
from a deployment's name alone (what `status`, `down` and the sweeper look for without a spec).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Protocol


class _Deployment(Protocol):
    @property
    def name(self) -> str: ...


class NamedSpec(Protocol):
    """What names need of a spec (provisioning.spec.Spec): its deployment's name and its tags."""

    @property
    def deployment(self) -> _Deployment: ...

    @property
    def tags(self) -> Mapping[str, str]: ...


TAG_PREFIX: Final = "spotreg:"  # tag keys below it are spotreg's own; a spec may not set them
TAG_DEPLOYMENT: Final = f"{TAG_PREFIX}deployment"
TAG_RUN: Final = f"{TAG_PREFIX}run"
TAG_EXPIRES: Final = f"{TAG_PREFIX}expires"
TAG_LEGACY_KEY: Final = f"{TAG_PREFIX}legacy-access-key"  # on the instance: "true" when it booted in legacy mode
TAG_CREATED: Final = f"{TAG_PREFIX}created"  # on a bucket spotreg itself created: the deployment's name

NAME_PREFIX: Final = "spotreg-"  # every IAM/EC2 resource name starts with it
PARAMETER_ROOT: Final = "/spotreg"  # every deployment's SSM parameters live below it
LOCK_ROOT: Final = "/spotreg-locks"  # a deployment's lock parameter (taken by `up` and `down`) lives below it
REGISTRY_POLICY_NAME: Final = f"{NAME_PREFIX}registry"  # the instance role's inline policy
LEGACY_POLICY_NAME: Final = f"{REGISTRY_POLICY_NAME}-legacy"  # the legacy IAM user's inline policy

CONTAINER_NAME: Final = f"{NAME_PREFIX}registry"
PROXY_CONTAINER_NAME: Final = f"{NAME_PREFIX}proxy"
FRONT_CONTAINER_NAME: Final = f"{NAME_PREFIX}front"
CONFIG_DIR: Final = "/etc/spotreg"
REGISTRY_CONFIG_PATH: Final = f"{CONFIG_DIR}/registry/config.yml"
HTPASSWD_PATH: Final = f"{CONFIG_DIR}/auth/htpasswd"
TLS_DIR: Final = f"{CONFIG_DIR}/tls"
BOOT_SCRIPT_PATH: Final = "/usr/local/sbin/spotreg-boot"


# --- by deployment name ---------------------------------------------------------------------------


def deployment_resource_name(deployment: str) -> str:
    """The Name of every IAM/EC2 resource of the deployment called `deployment`."""
    return f"{NAME_PREFIX}{deployment}"


def deployment_parameter_prefix(deployment: str) -> str:
    """The SSM path the parameters of the deployment called `deployment` live below."""
    return f"{PARAMETER_ROOT}/{deployment}"


def deployment_legacy_user_name(deployment: str) -> str:
    """The legacy-mode IAM user of the deployment called `deployment`."""
    return f"{deployment_resource_name(deployment)}-legacy"


# --- from a spec ----------------------------------------------------------------------------------


def resource_name(spec: NamedSpec) -> str:
    """The Name of every IAM/EC2 resource of this deployment."""
    return deployment_resource_name(spec.deployment.name)


def parameter_prefix(spec: NamedSpec) -> str:
    """SSM parameters of this deployment live below this path."""
    return deployment_parameter_prefix(spec.deployment.name)


def htpasswd_parameter(spec: NamedSpec) -> str:
    """The registry's htpasswd file (SecureString)."""
    return f"{parameter_prefix(spec)}/htpasswd"


def tls_key_parameter(spec: NamedSpec) -> str:
    """The self-signed server key (SecureString): fetched by the instance at boot."""
    return f"{parameter_prefix(spec)}/tls-key"


def tls_cert_parameter(spec: NamedSpec) -> str:
    """The self-signed server certificate (public), kept so that a second `up` re-uses it."""
    return f"{parameter_prefix(spec)}/tls-cert"


def tls_ca_parameter(spec: NamedSpec) -> str:
    """The self-signed CA certificate (public): what clients put in certs.d/<host>/ca.crt."""
    return f"{parameter_prefix(spec)}/tls-ca"


def dns_password_parameter(spec: NamedSpec) -> str:
    """The Namecheap dynamic DNS password (SecureString): read by the instance at boot."""
    return f"{parameter_prefix(spec)}/dns-password"


def legacy_user_name(spec: NamedSpec) -> str:
    """The IAM user of legacy mode (`up(legacy_access_key=True)`)."""
    return deployment_legacy_user_name(spec.deployment.name)


def lock_parameter(spec: NamedSpec) -> str:
    """The SSM parameter that locks the deployment while `up` or `down` runs."""
    return f"{LOCK_ROOT}/{spec.deployment.name}"


def legacy_key_parameter(spec: NamedSpec) -> str:
    """Where legacy mode stores the IAM user's access key, as JSON: the boot script reads it there."""
    return f"{parameter_prefix(spec)}/legacy-access-key"


def deployment_tags(spec: NamedSpec, run_id: str | None = None, expires: str | None = None) -> dict[str, str]:
    """Tags every resource carries: the user's, then spotreg's own (which win)."""
    tags = dict(spec.tags)
    tags["Name"] = resource_name(spec)
    tags[TAG_DEPLOYMENT] = spec.deployment.name
    if run_id is not None:
        tags[TAG_RUN] = run_id
    if expires is not None:
        tags[TAG_EXPIRES] = expires
    return tags
