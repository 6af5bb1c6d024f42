"""Where the registry answers: its URL at a host, and the name its certificate is checked against."""

from __future__ import annotations

from urllib.parse import urlsplit

from provisioning.render.tls import certificate_names
from provisioning.spec import Spec


def registry_url(spec: Spec, host: str) -> str:
    """The registry's base URL at ``host`` (a name or an address): its scheme, and its port unless the
    scheme's default."""
    tls = spec.tls.mode != "none"
    port = 443 if spec.tls.mode == "letsencrypt" else spec.registry.port
    default = 443 if tls else 80
    return f"{'https' if tls else 'http'}://{host}{'' if port == default else f':{port}'}"


def api_url(spec: Spec, address: str | None) -> str | None:
    """The registry's /v2/ URL: by host name when there is one, else by address."""
    host = spec.dns.hostname or address
    return None if host is None else f"{registry_url(spec, host)}/v2/"


def server_name(url: str, cert_pem: str | None) -> str | None:
    """The name to check the self-signed certificate against when the URL's host is not one of its
    names (dns.mode = "none": the certificate is for spotreg-<name>, the probe goes to the public IP)."""
    if cert_pem is None:
        return None
    host = urlsplit(url).hostname
    covered = certificate_names(cert_pem)
    if not covered or host in covered:
        return None
    return covered[0]
