"""The registry's own account of its time: its ``response completed`` log lines, by request kind."""

from __future__ import annotations

import contextlib
import re
from datetime import datetime

from fixtures.booted_registry import BootedRegistry

_LOG_LINE = re.compile(
    r'msg="response completed".*?http\.request\.method=(?P<method>[A-Z]+).*?'
    r'http\.request\.uri="(?P<uri>[^"]*)".*?http\.response\.duration=(?P<duration>[0-9.a-zµ]+)'
)
_DURATION_PART = re.compile(r"([0-9.]+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration_seconds(text: str) -> float:
    """``1m2.5s``, ``350.2ms``... (Go's ``time.Duration`` text) in seconds."""
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in _DURATION_PART.findall(text))


def registry_time_by_request(log: str) -> dict[str, float]:
    """Seconds the registry spent on blob requests, by kind: what it took to answer the client."""
    spent: dict[str, float] = {}
    for match in _LOG_LINE.finditer(log):
        method, uri = match["method"], match["uri"]
        if "/blobs/uploads/" in uri:
            kind = {"POST": "upload start (POST)", "PATCH": "upload data (PATCH)", "PUT": "upload commit (PUT)"}
            name = kind.get(method, f"upload {method}")
        elif "/blobs/" in uri:
            name = f"blob {method}"
        elif "/manifests/" in uri:
            name = f"manifest {method}"
        else:
            continue
        spent[name] = spent.get(name, 0.0) + go_duration_seconds(match["duration"])
    return spent


def registry_log_since(registry: BootedRegistry, since: datetime) -> str:
    """The registry's log lines written at ``since`` or later (the engine's timestamps, to the µs)."""
    text = registry.in_box("docker", "logs", "--timestamps", "--since", str(int(since.timestamp())), "spotreg-registry")
    kept = []
    for line in text.splitlines():
        stamp, _, rest = line.partition(" ")
        # RFC 3339 with nanoseconds: keep the microseconds fromisoformat understands
        whole, _, fraction = stamp.rstrip("Z").partition(".")
        with contextlib.suppress(ValueError):
            when = datetime.fromisoformat(f"{whole}.{(fraction + '000000')[:6]}+00:00")
            if when >= since:
                kept.append(rest)
    return "\n".join(kept)
