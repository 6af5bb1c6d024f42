"""The instance's user data: cloud-config for Amazon Linux 2023 that installs Docker, writes every
rendered artifact and starts the registry unit (which re-runs the boot script on every boot)."""

from __future__ import annotations

from typing import Any, Final

import yaml

from provisioning import names
from provisioning.render import paths
from provisioning.render.boot_script import render_boot_script
from provisioning.render.caddyfile import render_caddyfile
from provisioning.render.registry_config import render_registry_config
from provisioning.spec import Spec

HEADER: Final = "#cloud-config\n"
MAX_USER_DATA_BYTES: Final = 16 * 1024  # EC2's limit, before base64

_UNIT = """\
[Unit]
Description={description}
Requires=docker.service
Wants=network-online.target{wants}
After=docker.service network-online.target{after}
# Restart forever: never give up on the registry.
StartLimitIntervalSec=0

[Service]
Type=simple
ExecStart={exec_start}
Restart=always
RestartSec=5
TimeoutStopSec=30

[Install]
WantedBy=multi-user.target
"""


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes multi-line strings as literal blocks (readable on the instance)."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def render_unit(description: str, exec_start: str, after: tuple[str, ...] = ()) -> str:
    """A systemd service that runs ``exec_start`` once Docker and the network are up, restarting it always."""
    extra = "".join(f" {unit}" for unit in after)
    return _UNIT.format(description=description, exec_start=exec_start, wants=extra, after=extra)


def render_write_files(spec: Spec, server_cert_pem: bytes | None = None) -> list[dict[str, str]]:
    """cloud-config ``write_files`` entries: path, permissions, owner, content (text)."""
    if (spec.tls.mode == "selfsigned") != (server_cert_pem is not None):
        raise ValueError("server_cert_pem is needed exactly when tls.mode = 'selfsigned'")

    def entry(path: str, content: str, permissions: str = "0644") -> dict[str, str]:
        return {"path": path, "permissions": permissions, "owner": "root:root", "content": content}

    files = [
        entry(names.REGISTRY_CONFIG_PATH, render_registry_config(spec)),
        entry(names.BOOT_SCRIPT_PATH, render_boot_script(spec), "0755"),
    ]
    if server_cert_pem is not None:  # the public part only: the key comes from SSM at boot
        files.append(entry(paths.TLS_CERT_PATH, server_cert_pem.decode("ascii")))
    if spec.tls.mode == "letsencrypt":
        files.append(entry(paths.CADDYFILE_PATH, render_caddyfile(spec)))
    files.append(
        entry(
            f"{paths.SYSTEMD_DIR}/{paths.REGISTRY_UNIT}",
            render_unit("spotreg registry: secrets, DNS, registry container", names.BOOT_SCRIPT_PATH),
        )
    )
    if spec.tls.mode == "letsencrypt":
        files.append(
            entry(
                f"{paths.SYSTEMD_DIR}/{paths.PROXY_UNIT}",
                render_unit(
                    "spotreg TLS proxy (Let's Encrypt)", f"{names.BOOT_SCRIPT_PATH} proxy", (paths.REGISTRY_UNIT,)
                ),
            )
        )
    return files


def render_user_data(spec: Spec, server_cert_pem: bytes | None = None) -> str:
    """``#cloud-config`` user data; ``server_cert_pem`` is the self-signed certificate (selfsigned only).

    It holds no secret: the instance profile gives AWS access, SSM holds htpasswd and the TLS key.
    """
    units = [paths.REGISTRY_UNIT] + ([paths.PROXY_UNIT] if spec.tls.mode == "letsencrypt" else [])
    document: dict[str, Any] = {
        "packages": ["docker"],
        "write_files": render_write_files(spec, server_cert_pem),
        "runcmd": [
            ["systemctl", "daemon-reload"],
            ["systemctl", "enable", "--now", "docker"],
            *(["systemctl", "enable", "--now", unit] for unit in units),
        ],
    }
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000)
    return HEADER + body
