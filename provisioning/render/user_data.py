"""The instance's user data: cloud-config for Amazon Linux 2023 that installs Docker, writes every
rendered artifact and starts the registry unit (which re-runs the boot script on every boot) and the
timer that re-reads the registry's users from SSM while it runs."""

from __future__ import annotations

import gzip
from typing import Any, Final

import yaml

from provisioning import names
from provisioning.render import paths
from provisioning.render.boot_script import render_boot_script
from provisioning.render.caddyfile import render_caddyfile
from provisioning.render.front_config import AUTH_CACHE_SECONDS, render_front_config
from provisioning.render.registry_config import render_registry_config
from provisioning.spec import Spec

HEADER: Final = "#cloud-config\n"
MAX_USER_DATA_BYTES: Final = 16 * 1024  # EC2's limit, before base64: of the packed (gzip) bytes
_GZIP_MAGIC: Final = b"\x1f\x8b"

#: How often the running instance re-reads its users from SSM (``spotreg-refresh.timer``), plus at most
#: this much jitter. The registry re-reads its htpasswd file when the file changes: no restart.
REFRESH_INTERVAL_SECONDS: Final = 60
REFRESH_JITTER_SECONDS: Final = 5
#: What the README promises: a user changed or removed by ``up`` takes effect on the running registry
#: within this many seconds: one interval, its jitter, the timer's 1 s accuracy, the refresh's own
#: SSM call, and the front's cache of verified passwords (the stack test measures it in the instance box).
USERS_TAKE_EFFECT_WITHIN_SECONDS: Final = 75 + AUTH_CACHE_SECONDS

_UNIT = """\
[Unit]
Description={description}
Requires=docker.service
Wants=network-online.target{wants}
After=docker.service network-online.target{after}
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

_REFRESH_SERVICE = """\
[Unit]
Description=spotreg: the registry's users from SSM

[Service]
Type=oneshot
ExecStart={exec_start}
TimeoutStartSec=300
"""

_REFRESH_TIMER = """\
[Unit]
Description=spotreg: re-read the users every {interval} s

[Timer]
OnActiveSec={interval}
OnUnitActiveSec={interval}
RandomizedDelaySec={jitter}
AccuracySec=1

[Install]
WantedBy=timers.target
"""


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes multi-line strings as literal blocks (readable on the instance)."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def render_unit(description: str, exec_start: str, after: tuple[str, ...] = ()) -> str:
    """A systemd service that runs ``exec_start`` once Docker and the network are up, restarting it always
    (``StartLimitIntervalSec=0``: systemd never gives up on it)."""
    extra = "".join(f" {unit}" for unit in after)
    return _UNIT.format(description=description, exec_start=exec_start, wants=extra, after=extra)


def render_refresh_units() -> tuple[str, str]:
    """The refresh service (the boot script with argument ``refresh``, once) and the timer that starts it."""
    service = _REFRESH_SERVICE.format(exec_start=f"{names.BOOT_SCRIPT_PATH} refresh")
    return service, _REFRESH_TIMER.format(interval=REFRESH_INTERVAL_SECONDS, jitter=REFRESH_JITTER_SECONDS)


def render_write_files(spec: Spec, server_cert_pem: bytes | None = None) -> list[dict[str, str]]:
    """cloud-config ``write_files`` entries: path, permissions, content (text); every file is owned by
    root:root, cloud-init's default owner (not written out: the user data's limit is 16 KiB)."""
    if (spec.tls.mode == "selfsigned") != (server_cert_pem is not None):
        raise ValueError("server_cert_pem is needed exactly when tls.mode = 'selfsigned'")

    def entry(path: str, content: str, permissions: str = "0644") -> dict[str, str]:
        return {"path": path, "permissions": permissions, "content": content}

    files = [
        entry(names.REGISTRY_CONFIG_PATH, render_registry_config(spec)),
        entry(paths.FRONT_CONFIG_PATH, render_front_config(spec)),
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
    files.append(
        entry(
            f"{paths.SYSTEMD_DIR}/{paths.FRONT_UNIT}",
            render_unit(
                "spotreg front: nginx before the registry", f"{names.BOOT_SCRIPT_PATH} front", (paths.REGISTRY_UNIT,)
            ),
        )
    )
    refresh_service, refresh_timer = render_refresh_units()
    files.append(entry(f"{paths.SYSTEMD_DIR}/{paths.REFRESH_UNIT}", refresh_service))
    files.append(entry(f"{paths.SYSTEMD_DIR}/{paths.REFRESH_TIMER}", refresh_timer))
    if spec.tls.mode == "letsencrypt":
        files.append(
            entry(
                f"{paths.SYSTEMD_DIR}/{paths.PROXY_UNIT}",
                render_unit(
                    "spotreg TLS proxy (Let's Encrypt)", f"{names.BOOT_SCRIPT_PATH} proxy", (paths.FRONT_UNIT,)
                ),
            )
        )
    return files


def render_user_data(spec: Spec, server_cert_pem: bytes | None = None) -> str:
    """``#cloud-config`` user data; ``server_cert_pem`` is the self-signed certificate (selfsigned only).

    It holds no secret: the instance profile gives AWS access, SSM holds htpasswd and the TLS key.
    """
    units = [paths.REGISTRY_UNIT, paths.FRONT_UNIT, paths.REFRESH_TIMER] + (
        [paths.PROXY_UNIT] if spec.tls.mode == "letsencrypt" else []
    )
    document: dict[str, Any] = {
        "packages": ["docker"],
        "write_files": render_write_files(spec, server_cert_pem),
        "runcmd": [
            ["systemctl", "daemon-reload"],
            ["systemctl", "enable", "--now", "docker"],
            ["systemctl", "enable", "--now", *units],
        ],
    }
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000)
    return HEADER + body


def pack_user_data(text: str) -> bytes:
    """What EC2 is sent: the user data gzip-compressed (cloud-init unpacks it), so that it fits EC2's
    16 KiB; deterministic (no timestamp), so the same spec always sends the same bytes."""
    return gzip.compress(text.encode("utf-8"), mtime=0)


def unpack_user_data(raw: bytes) -> str:
    """The user data as text, whether packed (gzip) or sent plain (instances launched before packing)."""
    return (gzip.decompress(raw) if raw.startswith(_GZIP_MAGIC) else raw).decode("utf-8")
