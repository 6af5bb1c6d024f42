"""The part-2 candidate: Caddy's ``basicauth`` (bcrypt, with its hash cache) in front of a registry with auth off.

Caddy runs inside the registry's container (``docker exec``), so both are in one cgroup and share its
CPU limit. The host's ``/usr/bin/caddy`` (Debian's 2.6.2) and the one library the registry image lacks
are mounted read-only; nothing is pulled.
"""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from typing import Final

CADDY_BINARY: Final = "/usr/bin/caddy"
CADDY_IN_CONTAINER: Final = "/usr/local/bin/caddy"
CADDYFILE_DIR_IN_CONTAINER: Final = "/etc/caddy"
#: Shared libraries of Debian's caddy that the registry image does not ship (it has libc and the loader).
EXTRA_LIBRARIES: Final = ("/lib/x86_64-linux-gnu/libzstd.so.1",)
REALM: Final = "spotreg"


def caddy_available() -> str | None:
    """Why Caddy cannot run here, or None when it can."""
    missing = [path for path in (CADDY_BINARY, *EXTRA_LIBRARIES) if not Path(path).exists()]
    if missing:
        return f"missing {', '.join(missing)} (Debian's caddy package)"
    return None


def render_caddyfile(port: int, upstream_port: int, user: str, bcrypt_hash: str) -> str:
    """A Caddyfile: plain HTTP on 127.0.0.1:``port``, basic auth against ``bcrypt_hash``, proxy to the registry.

    Caddy 2.6 wants the hash base64-encoded; its Caddyfile ``basicauth`` keeps a cache of verified
    credentials, which is the point: bcrypt runs once per (user, password), not once per request.
    """
    encoded = base64.b64encode(bcrypt_hash.encode("ascii")).decode("ascii")
    return f"""{{
\tadmin off
\tauto_https off
\tstorage file_system /tmp/caddy
}}

http://127.0.0.1:{port} {{
\tbind 127.0.0.1
\theader Docker-Distribution-Api-Version registry/2.0
\tbasicauth bcrypt {REALM} {{
\t\t{user} {encoded}
\t}}
\treverse_proxy 127.0.0.1:{upstream_port}
}}
"""


def write_caddyfile(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "Caddyfile"
    path.write_text(text, encoding="utf-8")
    return path


def caddy_mounts(caddyfile_dir: Path) -> dict[str, dict[str, str]]:
    """docker SDK ``volumes``: the binary, its extra libraries and the Caddyfile's directory, read-only."""
    binary = shutil.which(CADDY_BINARY) or CADDY_BINARY
    mounts = {binary: {"bind": CADDY_IN_CONTAINER, "mode": "ro"}}
    for library in EXTRA_LIBRARIES:
        mounts[str(Path(library).resolve())] = {"bind": library, "mode": "ro"}
    mounts[str(caddyfile_dir)] = {"bind": CADDYFILE_DIR_IN_CONTAINER, "mode": "ro"}
    return mounts


CADDY_COMMAND: Final = (
    CADDY_IN_CONTAINER,
    "run",
    "--adapter",
    "caddyfile",
    "--config",
    f"{CADDYFILE_DIR_IN_CONTAINER}/Caddyfile",
)
CADDY_ENVIRONMENT: Final = {"HOME": "/tmp", "XDG_DATA_HOME": "/tmp", "XDG_CONFIG_HOME": "/tmp"}
