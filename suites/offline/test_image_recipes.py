"""The front image's build context, laid out without an engine: nginx, the libraries it loads, the
directories of its compiled-in paths and the users it may run as."""

from __future__ import annotations

import re
import subprocess

import pytest

from fixtures.images import recipes
from fixtures.images.errors import HostPrerequisiteMissing


def test_the_front_context_holds_nginx_what_it_loads_and_the_parents_of_its_compiled_in_paths(tmp_path):
    try:
        labels = recipes.front_context(tmp_path)
    except HostPrerequisiteMissing as missing:
        pytest.skip(str(missing))
    rootfs = tmp_path / "rootfs"
    assert (rootfs / "usr/sbin/nginx").stat().st_mode & 0o111
    assert list(rootfs.rglob("libcrypt.so.1")), "auth_basic's bcrypt comes from libcrypt (libxcrypt)"
    assert (rootfs / "etc/nginx/mime.types").is_file()
    configure = subprocess.run([recipes.NGINX_BINARY, "-V"], capture_output=True, text=True, check=True).stderr
    assert "--error-log-path=stderr" in configure
    paths = re.findall(r"--(?:pid|lock|http-log|http-[a-z-]+-temp)-path=(\S+)", configure)
    assert len(paths) == 8
    assert [path for path in paths if not (rootfs / path.lstrip("/")).parent.is_dir()] == []
    assert {"root", "nobody"} <= {line.split(":")[0] for line in (rootfs / "etc/passwd").read_text().splitlines()}
    assert {"root", "nogroup"} <= {line.split(":")[0] for line in (rootfs / "etc/group").read_text().splitlines()}
    assert labels["io.spotreg.source-package"] == "nginx"
