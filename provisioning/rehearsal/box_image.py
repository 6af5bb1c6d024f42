"""The instance box's image: Debian 12 with systemd, cloud-init, the AWS CLI and a Docker engine.

Built here from Debian's packages with ``mmdebstrap`` (nothing is pulled from an image registry) and
imported into the local engine as ``spotreg/instance:<recipe hash>``. The hash covers everything the
image is made of (packages, the AWS CLI's version, the customize hooks, the files under
``box_image/rootfs``), so the image is rebuilt only when its recipe changes.

Debian 12's ``awscli`` (2.9) predates ``AWS_ENDPOINT_URL``; the image takes the AWS CLI v1 from PyPI
into ``/opt/awscli`` instead (the instance's CLI only has to honour the endpoint and IMDSv2).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

SUITE: Final = "bookworm"
MIRROR: Final = "http://deb.debian.org/debian"
PACKAGES: Final = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "cloud-init",
    "docker.io",
    "curl",
    "python3",
    "python3-venv",
    "iproute2",
    "iptables",
    "locales",
    "ca-certificates",
    "procps",
    "netbase",
    "openssh-server",
)
AWSCLI: Final = "awscli==1.46.3"
IMAGE_REPOSITORY: Final = "spotreg/instance"
STEP_TIMEOUT_SECONDS: Final = 900.0  # one build step (mmdebstrap: about a minute here)
RECIPE_LABEL: Final = "io.spotreg.instance-recipe"
ROOTFS_OVERLAY: Final = Path(__file__).with_name("box_image") / "rootfs"
BOX_APT_REPOSITORY: Final = "/var/lib/spotreg-box/apt"
HOST_TOOLS: Final = {"mmdebstrap": "mmdebstrap", "dpkg-deb": "dpkg"}

_IMPORT_CHANGES: Final = ('CMD ["/sbin/init"]', "ENV container=docker")
_EXCLUDED_PATHS: Final = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*")
_DOCKER_CONTROL: Final = """\
Package: docker
Version: 1.0-spotreg1
Architecture: all
Maintainer: spotreg <spotreg@localhost>
Depends: docker.io
Description: Amazon Linux's name for the Docker engine, here Debian's docker.io
 The user data installs "docker" (Amazon Linux 2023); in the instance box it is this package.
"""


class BoxImageError(RuntimeError):
    """The instance image could not be built; the message says why and how to fix it."""


def recipe_hash() -> str:
    """A digest of everything the image is made of."""
    digest = hashlib.sha256()
    hooks = customize_hooks(Path("/repository"), Path("/wheels"), Path("/overlay"))  # paths of no consequence
    for part in (SUITE, MIRROR, AWSCLI, _DOCKER_CONTROL, *PACKAGES, *_EXCLUDED_PATHS, *hooks, *_IMPORT_CHANGES):
        digest.update(part.encode() + b"\0")
    for path in sorted(ROOTFS_OVERLAY.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(ROOTFS_OVERLAY)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def image_name() -> str:
    """``spotreg/instance:<recipe hash>``: a new recipe is a new name."""
    return f"{IMAGE_REPOSITORY}:{recipe_hash()}"


def missing_host_tools() -> list[str]:
    """Debian packages whose commands the build needs and this host lacks."""
    return sorted({package for command, package in HOST_TOOLS.items() if shutil.which(command) is None})


def _run(argv: list[str], log: Path, progress: Callable[[str], None] | None = None) -> None:
    """Run ``argv`` (killed after STEP_TIMEOUT_SECONDS), its output appended to ``log``; ``progress``
    hears mmdebstrap's ``I:`` lines."""
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(argv)}\n")
        out.flush()
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        watchdog = threading.Timer(STEP_TIMEOUT_SECONDS, process.kill)  # a hung mirror must not hang the build
        watchdog.start()
        try:
            assert process.stdout is not None
            for line in process.stdout:
                out.write(line)
                if progress is not None and line.startswith("I: ") and "customize-hook" not in line:
                    progress(f"  {line[3:].strip()}")
            returncode = process.wait()
        finally:
            timed_out = not watchdog.is_alive()
            watchdog.cancel()
    if returncode != 0 and timed_out:
        raise BoxImageError(f"{argv[0]} did not finish in {STEP_TIMEOUT_SECONDS:.0f} s (killed); its log: {log}")
    if returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise BoxImageError(f"{argv[0]} failed (exit {returncode}); the end of {log}:\n{tail}")


def _docker_package(workdir: Path, log: Path) -> Path:
    """The local apt repository with the ``docker`` package (a name only, depending on docker.io)."""
    package = workdir / "docker-package"
    (package / "DEBIAN").mkdir(parents=True)
    (package / "DEBIAN" / "control").write_text(_DOCKER_CONTROL)
    repository = workdir / "apt"
    repository.mkdir()
    deb = repository / "docker_1.0-spotreg1_all.deb"
    _run(["dpkg-deb", "--root-owner-group", "--build", str(package), str(deb)], log)
    data = deb.read_bytes()
    stanza = _DOCKER_CONTROL.split("Description:")[0] + (
        f"Filename: ./{deb.name}\nSize: {len(data)}\n"
        f"MD5sum: {hashlib.md5(data).hexdigest()}\n"  # noqa: S324 - apt's index format, not security
        f"SHA256: {hashlib.sha256(data).hexdigest()}\n"
        "Description:" + _DOCKER_CONTROL.split("Description:")[1]
    )
    (repository / "Packages").write_text(stanza)
    return repository


def _awscli_wheels(workdir: Path, log: Path) -> Path:
    wheels = workdir / "wheels"
    _run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "-d", str(wheels), AWSCLI], log)
    return wheels


def customize_hooks(repository: Path, wheels: Path, overlay: Path = ROOTFS_OVERLAY) -> list[str]:
    """mmdebstrap's ``--customize-hook`` commands (``$1`` the root): what the image adds to the packages."""
    return [
        f'cp -a {overlay}/. "$1/"',
        f'mkdir -p "$1{BOX_APT_REPOSITORY}" && cp -a {repository}/. "$1{BOX_APT_REPOSITORY}/"',
        'rm -f "$1/etc/apt/sources.list"',
        f'mkdir -p "$1/tmp/wheels" && cp {wheels}/* "$1/tmp/wheels/"',
        'chroot "$1" python3 -m venv /opt/awscli',
        'chroot "$1" env PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= /opt/awscli/bin/pip install --quiet '
        f"--no-index --find-links /tmp/wheels {AWSCLI}",
        'ln -sf /opt/awscli/bin/aws "$1/usr/local/bin/aws" && rm -rf "$1/tmp/wheels"',
        'chroot "$1" systemctl enable spotreg-box-preload.service',
        # as a cloud image ships: the locale cloud-init sets, generated
        'echo "en_US.UTF-8 UTF-8" > "$1/etc/locale.gen" && chroot "$1" locale-gen',
        ': > "$1/etc/machine-id"',  # each box makes its own, as each instance does
    ]


def build_rootfs(workdir: Path, log: Path, progress: Callable[[str], None] | None = None) -> Path:
    """``mmdebstrap`` the image's root filesystem into a tarball; returns its path."""
    repository = _docker_package(workdir, log)
    wheels = _awscli_wheels(workdir, log)
    tarball = workdir / "rootfs.tar"
    hooks = customize_hooks(repository, wheels)
    argv = ["mmdebstrap", "--variant=minbase", "--mode=root", f"--include={','.join(PACKAGES)}"]
    argv += [f"--dpkgopt=path-exclude={path}" for path in _EXCLUDED_PATHS]
    argv += [f"--customize-hook={hook}" for hook in hooks]
    argv += [SUITE, str(tarball), MIRROR]
    _run(argv, log, progress)
    return tarball


def ensure_box_image(
    docker_client: Any, *, force: bool = False, say: Callable[[str], None] = print, log_dir: Path | None = None
) -> str:
    """The instance image's name, building it first when the engine lacks this recipe's image."""
    name = image_name()
    with _build_lock():  # several test processes may want it at once: one builds, the others wait
        if force or not _exists(docker_client, name):
            _build(docker_client, name, say, log_dir)
    return name


def _exists(docker_client: Any, name: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        docker_client.images.get(name)
    except ImageNotFound:
        return False
    return True


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """Held while the image is checked and built; another process's build is waited for, boundedly."""
    path = Path(tempfile.gettempdir()) / "spotreg-box-image.lock"
    deadline = time.monotonic() + 2 * STEP_TIMEOUT_SECONDS
    with open(path, "w") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BoxImageError(f"another build held {path} for {2 * STEP_TIMEOUT_SECONDS:.0f} s") from None
                time.sleep(1)
        yield


def _build(docker_client: Any, name: str, say: Callable[[str], None], log_dir: Path | None) -> None:
    missing = missing_host_tools()
    if missing:
        raise BoxImageError(
            f"building the instance image needs {', '.join(missing)}: apt-get install -y {' '.join(missing)}"
        )
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="spotreg-box-image-") as temporary:
        workdir = Path(temporary)
        log = (log_dir or workdir) / "box-image-build.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        say(f"building the instance image {name} from Debian packages (a few minutes; log: {log})")
        tarball = build_rootfs(workdir, log, say)
        say(f"  root filesystem ready ({tarball.stat().st_size // 2**20} MiB); importing into the engine")
        changes = [*_IMPORT_CHANGES, f"LABEL {RECIPE_LABEL}={recipe_hash()}"]
        argv = ["docker", "import", *(f"--change={change}" for change in changes), str(tarball), name]
        _run(argv, log)
    say(f"  {name} built in {time.monotonic() - started:.0f} s")
    for image in docker_client.images.list(name=IMAGE_REPOSITORY):  # earlier recipes' images: 700 MB each
        for tag in image.tags:
            if tag != name:
                with contextlib.suppress(Exception):
                    docker_client.images.remove(tag)
