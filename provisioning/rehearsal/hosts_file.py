"""Lines of ``/etc/hosts`` that a rehearsal adds for a host name and removes again, found by a marker.

The Docker engine resolves a registry's name with this machine's resolver; a rehearsal's host name
exists only in (moto) Route 53, so a marked line makes it resolve here while the rehearsal runs.
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final

HOSTS: Final = Path("/etc/hosts")


def _edit(edit: Callable[[list[str]], list[str]], hosts: Path) -> None:
    """Rewrite ``hosts`` in place under an exclusive lock (other runs may edit it too)."""
    with hosts.open("r+", encoding="utf-8") as stream:
        fcntl.flock(stream, fcntl.LOCK_EX)
        lines = edit(stream.read().splitlines(keepends=True))
        stream.seek(0)
        stream.truncate()
        stream.write("".join(lines))


def _marked(marker: str) -> Callable[[str], bool]:
    return lambda line: line.rstrip().endswith(f"# {marker}")


def point(hostname: str, addresses: Iterable[str], marker: str, hosts: Path = HOSTS) -> None:
    """``hostname`` resolves to ``addresses`` (replacing this marker's lines)."""
    is_ours = _marked(marker)

    def replace(lines: list[str]) -> list[str]:
        kept = [line for line in lines if not is_ours(line)]
        if kept and not kept[-1].endswith("\n"):
            kept[-1] += "\n"
        return kept + [f"{address} {hostname} # {marker}\n" for address in sorted(addresses)]

    _edit(replace, hosts)


def remove(marker: str, hosts: Path = HOSTS) -> None:
    """Remove every line with ``marker``."""
    is_ours = _marked(marker)
    _edit(lambda lines: [line for line in lines if not is_ours(line)], hosts)


def remove_prefixed(prefix: str, hosts: Path = HOSTS) -> int:
    """Remove every line whose marker starts with ``prefix``; how many."""
    removed: list[str] = []

    def keep(lines: list[str]) -> list[str]:
        kept: list[str] = []
        for line in lines:
            _, hash_, comment = line.rpartition("# ")
            (removed if hash_ and comment.strip().startswith(prefix) else kept).append(line)
        return kept

    _edit(keep, hosts)
    return len(removed)
