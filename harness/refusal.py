"""A run that refuses before any test runs (no credentials, a spec a live run cannot make safe, a usage
the tier does not allow): pytest's side writes the reason where `spotreg verify` asked, so the history
records a refusal rather than a failed run."""

from __future__ import annotations

import os
from pathlib import Path

REFUSAL_ENV = "SPOTREG_REFUSAL_FILE"  # set by `spotreg verify` for its pytest child


def record_refusal(reason: str) -> None:
    """Write `reason` to the file named by SPOTREG_REFUSAL_FILE (nothing when it is unset)."""
    target = os.environ.get(REFUSAL_ENV)
    if target:
        Path(target).write_text(reason, encoding="utf-8")


def read_refusal(path: Path) -> str | None:
    """The reason recorded in `path`, or None when the run did not refuse."""
    try:
        reason = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return reason or "refused before any test ran"
