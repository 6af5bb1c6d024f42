"""Everything the instance box does differently from an EC2 instance, in one place.

The box boots the user data that ``RunInstances`` was sent, unedited, with the programs that run it on
EC2. What differs lives in the box's environment: its image, a systemd drop-in, its metadata service,
its network. ``BOX_OVERRIDES`` lists each difference and why; the README's table is this list, and a
stack test holds a running box to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from provisioning.render import paths
from provisioning.render.caddyfile import ACME_DIRECTORY_ENV
from provisioning.render.container import SSL_CERT_FILE_ENV

UNIT_DROP_IN: Final = f"{paths.SYSTEMD_DIR}/{paths.REGISTRY_UNIT}.d/spotreg-box.conf"
REFRESH_DROP_IN: Final = f"{paths.SYSTEMD_DIR}/{paths.REFRESH_UNIT}.d/spotreg-box.conf"
PROXY_DROP_IN: Final = f"{paths.SYSTEMD_DIR}/{paths.PROXY_UNIT}.d/spotreg-box.conf"
#: The test ACME server's CA, where the proxy container sees it (the Caddy config directory's mount).
ACME_CA_FILE: Final = f"{paths.CADDY_CONFIG_DIR}/spotreg-box-acme-ca.pem"
ACME_CA_FILE_IN_CONTAINER: Final = f"{paths.CADDY_CONFIG_DIR_IN_CONTAINER}/spotreg-box-acme-ca.pem"
#: The one variable of UNIT_ENVIRONMENT the refresh unit gets: it runs the AWS CLI, not the registry.
REFRESH_ENVIRONMENT: Final = ("AWS_ENDPOINT_URL",)
PRELOAD_LIST: Final = "/etc/spotreg-box/preload"
#: The box's /etc/resolv.conf: nothing answers on its network, so a lookup fails at once.
RESOLV_CONF: Final = (
    "# spotreg instance box: no resolver (see provisioning/rehearsal/overrides.py)\n"
    "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"
)

#: The environment variables the drop-in may give the registry unit (and, through its ``docker run
#: -e NAME``, the registry container): the keys of this mapping and nothing else.
UNIT_ENVIRONMENT: Final[Mapping[str, str]] = MappingProxyType(
    {
        "AWS_ENDPOINT_URL": "the boot script's AWS CLI calls (SSM, Route 53) go to moto's server",
        "REGISTRY_STORAGE_S3_REGIONENDPOINT": "the registry stores on the local S3 (moto's server or "
        "--s3-endpoint) instead of AWS S3; the 2.x driver then addresses the bucket path-style",
        "REGISTRY_STORAGE_S3_ACCESSKEY": "only for an S3 endpoint other than moto's: its static key "
        "(with moto the registry signs with the instance profile's credentials, as on EC2)",
        "REGISTRY_STORAGE_S3_SECRETKEY": "only for an S3 endpoint other than moto's, as above",
    }
)

BOX_OVERRIDES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "image": "Debian 12 built with mmdebstrap instead of Amazon Linux 2023: systemd, cloud-init 22.4, "
        "Debian's Docker engine (docker.io) baked in, the AWS CLI v1 from PyPI (Debian's 2.9 predates "
        "AWS_ENDPOINT_URL)",
        "package docker": "the user data installs Amazon Linux's package 'docker'; the box's only apt source "
        "is a local repository whose 'docker' depends on docker.io, so cloud-init's package step runs for real",
        "cloud-init datasource": "Ec2Box: cloud-init's Ec2 datasource told the platform is AWS (a container "
        "has no DMI data to tell it), so it uses IMDSv2 tokens as on EC2",
        "cloud-init network, growpart, resize_rootfs": "off: Docker sets the box's interface, and a container "
        "cannot resize its root",
        "metadata service": "169.254.169.254 on the box's loopback, served by spotreg from moto's record of the "
        "instance (tokens, public-ipv4, instance-profile credentials from moto's STS, user data, spot notices); "
        "port 80 of it is a DNAT rule to the service's own port, so the box's port 80 stays free",
        "network": "an internal Docker network the run created; the instance's public address is the box's "
        "address on it (moto's server draws public and Elastic IPs from that network)",
        "/etc/resolv.conf": "no resolver: the box's network reaches no DNS server, and lookups fail at once "
        "(the instance's own names are addresses: the metadata service, moto's server on 127.0.0.1)",
        "moto's server": "reachable in the box at the same 127.0.0.1:<port> as on the host (a forwarder in "
        "the box's network namespace)",
        "registry image": "loaded into the instance's engine under its configured name before the registry "
        "unit starts (spotreg-box-preload.service); the box reaches no image registry",
        "front image": "loaded like the registry image (the locally built nginx plays registry.front_image)",
        UNIT_DROP_IN: "Environment= lines for the registry unit, from UNIT_ENVIRONMENT only, and ordering "
        "after spotreg-box-preload.service",
        REFRESH_DROP_IN: "Environment=AWS_ENDPOINT_URL for the refresh unit: its AWS CLI call (SSM) goes to "
        "moto's server, as the registry unit's does",
        "proxy image": "letsencrypt only: loaded like the registry image, before the proxy unit starts",
        PROXY_DROP_IN: f"letsencrypt only: Environment={ACME_DIRECTORY_ENV}=<the test ACME server's directory> "
        f"(the shipped Caddyfile's acme_ca reads it; unset on EC2: Let's Encrypt) and {SSL_CERT_FILE_ENV}="
        f"{ACME_CA_FILE_IN_CONTAINER} (the one root Caddy trusts for it), passed by the shipped docker run's -e",
        ACME_CA_FILE: "letsencrypt only: the test ACME server's CA, for SSL_CERT_FILE",
        "ACME server": "letsencrypt only: pebble, reachable in the box at 127.0.0.1:<port> as moto's server is; "
        "it validates the HTTP-01 challenge on port 80 of the address its DNS server (pebble-challtestsrv) "
        "gives for dns.hostname: the box's",
    }
)


@dataclass(frozen=True)
class AcmeServer:
    """The ACME server a letsencrypt box's Caddy uses instead of Let's Encrypt: its directory and the CA
    of its HTTPS certificate (PEM)."""

    directory_url: str
    ca_pem: bytes


def render_unit_drop_in(environment: Mapping[str, str]) -> str:
    """The registry unit's drop-in: ``environment`` (keys of ``UNIT_ENVIRONMENT`` only) and ordering."""
    unknown = sorted(set(environment) - set(UNIT_ENVIRONMENT))
    if unknown:
        raise ValueError(f"not a listed box override: {', '.join(unknown)} (see UNIT_ENVIRONMENT)")
    lines = [
        "# spotreg instance box: see provisioning/rehearsal/overrides.py",
        "[Unit]",
        "Wants=spotreg-box-preload.service",
        "After=spotreg-box-preload.service",
        "",
        "[Service]",
        *(f"Environment={key}={value}" for key, value in sorted(environment.items())),
    ]
    return "\n".join(lines) + "\n"


def render_refresh_drop_in(environment: Mapping[str, str]) -> str:
    """The refresh unit's drop-in: the variables of ``REFRESH_ENVIRONMENT`` that ``environment`` sets."""
    lines = [
        "# spotreg instance box: see provisioning/rehearsal/overrides.py",
        "[Service]",
        *(f"Environment={key}={environment[key]}" for key in REFRESH_ENVIRONMENT if key in environment),
    ]
    return "\n".join(lines) + "\n"


def render_proxy_drop_in(acme: AcmeServer) -> str:
    """The proxy unit's drop-in: the ACME server's directory and the CA Caddy trusts for it."""
    lines = [
        "# spotreg instance box: see provisioning/rehearsal/overrides.py",
        "[Service]",
        f"Environment={ACME_DIRECTORY_ENV}={acme.directory_url}",
        f"Environment={SSL_CERT_FILE_ENV}={ACME_CA_FILE_IN_CONTAINER}",
    ]
    return "\n".join(lines) + "\n"


def box_files(environment: Mapping[str, str], acme: AcmeServer | None = None) -> dict[str, str]:
    """Every file the box adds to the instance, by path: drop-ins to shipped units for the registry
    unit's ``environment``, and with ``acme`` the proxy unit's and the ACME server's CA."""
    files = {UNIT_DROP_IN: render_unit_drop_in(environment), REFRESH_DROP_IN: render_refresh_drop_in(environment)}
    if acme is not None:
        files |= {PROXY_DROP_IN: render_proxy_drop_in(acme), ACME_CA_FILE: acme.ca_pem.decode("ascii")}
    return files
