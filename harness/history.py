"""Run history: one JSON line per `spotreg verify` run in reports/history.jsonl, read back for trends.

Appends are single `write` calls on a file opened for appending, so runs never interleave inside a line.
A run killed mid-write can leave a torn line; the next append starts a fresh line after it, and
`read_history` skips it (warning, unless it is the last line, where a torn write is expected).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

HISTORY_FILE = "history.jsonl"


def append_history(summary: dict[str, Any], path: Path) -> None:
    """Append `summary` to `path` as one JSON line (making the file and its directory if needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(summary, separators=(",", ":"), sort_keys=True, default=str) + "\n"
    with path.open("ab") as stream:
        prefix = b""
        if stream.tell() > 0:
            with path.open("rb") as check:
                check.seek(-1, os.SEEK_END)
                if check.read(1) != b"\n":
                    prefix = b"\n"  # a torn line from a killed run: keep it on its own line
        stream.write(prefix + line.encode("utf-8"))


def read_history(path: Path) -> list[dict[str, Any]]:
    """Every run recorded in `path`, oldest first; [] when there is none.

    A line that is not a JSON object is skipped: silently when it is the last line (a torn write of a
    run that was killed), with a warning naming the line otherwise.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    lines = text.split("\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    runs: list[dict[str, Any]] = []
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict):
            runs.append(record)
        elif number != last:
            warnings.warn(f"{path}:{number + 1}: not a JSON object, skipped", stacklevel=2)
    return runs
