"""The front (nginx, ``provisioning.render.front_config``) inside the registry's container, as the stand runs it.

On the instance the front has a container of its own; here nginx runs in the registry's (``docker exec``),
so both are in one cgroup and share its CPU limit. The host's ``/usr/sbin/nginx`` (Debian's package) and
the shared libraries it needs beyond the image's C library and loader are mounted read-only; nothing is
pulled. Debian's nginx opens compiled-in paths before it reads the config: those get tmpfs mounts.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Final

from provisioning.render import paths

NGINX_BINARY: Final = "/usr/sbin/nginx"
#: What the registry image ships of a dynamically linked binary's needs (distribution is one too).
IMAGE_LIBRARIES: Final = ("libc.so.6", "ld-linux-x86-64.so.2", "linux-vdso.so.1")
#: The front's caches (as on the instance), and Debian's compiled-in temp dirs (fastcgi, uwsgi, scgi are
#: not set by the rendered config, but nginx creates them at startup) and log dir.
TMPFS: Final = {paths.FRONT_CACHE_DIR_IN_CONTAINER: "", "/var/lib/nginx": "", "/var/log/nginx": ""}
COMMAND: Final = (NGINX_BINARY, "-c", paths.FRONT_CONFIG_IN_CONTAINER)


def shared_libraries(binary: str = NGINX_BINARY) -> list[str]:
    """The libraries ``binary`` loads (``ldd``) that the registry image lacks, by their path on this host."""
    if not Path(binary).exists():
        raise RuntimeError(f"{binary} not found: the load stand runs the host's nginx (Debian package nginx)")
    listing = subprocess.run(["ldd", binary], check=True, capture_output=True, text=True).stdout
    found = re.findall(r"^\s*(\S+) => (/\S+)", listing, flags=re.MULTILINE)
    return [path for name, path in found if name not in IMAGE_LIBRARIES]


def front_mounts(config_dir: Path) -> dict[str, dict[str, str]]:
    """docker SDK ``volumes``: nginx, its libraries (at their own paths) and the rendered config's directory."""
    mounts = {NGINX_BINARY: {"bind": NGINX_BINARY, "mode": "ro"}}
    for library in shared_libraries():
        mounts[str(Path(library).resolve())] = {"bind": library, "mode": "ro"}
    mounts[str(config_dir)] = {"bind": paths.FRONT_CONFIG_DIR_IN_CONTAINER, "mode": "ro"}
    return mounts
