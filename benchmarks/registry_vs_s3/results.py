"""One round's figures (registry, raw boto3, the registry's API) and their medians over rounds."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from fixtures.test_images import MiB


def _rate(size: int, seconds: float) -> float:
    return size / MiB / seconds if seconds > 0 else float("nan")


@dataclass
class RoundResult:
    """One round of one variant: A (registry push, pull) and B (raw put, get) of the same blob."""

    variant: str
    round: int
    blob_bytes: int
    layer_digest: str
    push_s: float
    pull_s: float
    put_s: float
    get_s: float
    get1_s: float  # context, not in the ratio: the same object with one plain GET instead of download_file
    api_push_s: float  # context (C): the registry's HTTP API, no docker
    api_pull_s: float
    load_before: tuple[float, float, float]
    registry_log: dict[str, float] = field(default_factory=dict)  # seconds the registry spent, by request

    @property
    def push_mibs(self) -> float:
        return _rate(self.blob_bytes, self.push_s)

    @property
    def pull_mibs(self) -> float:
        return _rate(self.blob_bytes, self.pull_s)

    @property
    def push_pull_mibs(self) -> float:
        return _rate(2 * self.blob_bytes, self.push_s + self.pull_s)

    @property
    def put_mibs(self) -> float:
        return _rate(self.blob_bytes, self.put_s)

    @property
    def get_mibs(self) -> float:
        return _rate(self.blob_bytes, self.get_s)

    @property
    def put_get_mibs(self) -> float:
        return _rate(2 * self.blob_bytes, self.put_s + self.get_s)

    @property
    def get1_mibs(self) -> float:
        return _rate(self.blob_bytes, self.get1_s)

    @property
    def put_get1_mibs(self) -> float:
        return _rate(2 * self.blob_bytes, self.put_s + self.get1_s)

    @property
    def api_push_mibs(self) -> float:
        return _rate(self.blob_bytes, self.api_push_s)

    @property
    def api_pull_mibs(self) -> float:
        return _rate(self.blob_bytes, self.api_pull_s)

    @property
    def api_push_pull_mibs(self) -> float:
        return _rate(2 * self.blob_bytes, self.api_push_s + self.api_pull_s)

    @property
    def ratios(self) -> dict[str, float]:
        """Registry / raw boto3 (default TransferConfig): the benchmark's figures."""
        return {
            "push": self.push_mibs / self.put_mibs,
            "pull": self.pull_mibs / self.get_mibs,
            "push_pull": self.push_pull_mibs / self.put_get_mibs,
        }

    @property
    def ratios_vs_single_get(self) -> dict[str, float]:
        """Context: the same ratios when the raw get is one plain GET (moto serves ranges slowly)."""
        return {"pull": self.pull_mibs / self.get1_mibs, "push_pull": self.push_pull_mibs / self.put_get1_mibs}

    @property
    def api_ratios(self) -> dict[str, float]:
        """Context (C): the registry's HTTP API without docker / raw boto3."""
        return {
            "push": self.api_push_mibs / self.put_mibs,
            "pull": self.api_pull_mibs / self.get_mibs,
            "push_pull": self.api_push_pull_mibs / self.put_get_mibs,
        }

    def as_dict(self) -> dict[str, Any]:
        rates = {
            "registry_push_mibs": self.push_mibs,
            "registry_pull_mibs": self.pull_mibs,
            "registry_push_pull_mibs": self.push_pull_mibs,
            "raw_put_mibs": self.put_mibs,
            "raw_get_mibs": self.get_mibs,
            "raw_put_get_mibs": self.put_get_mibs,
            "raw_single_get_mibs": self.get1_mibs,
            "raw_put_single_get_mibs": self.put_get1_mibs,
            "api_push_mibs": self.api_push_mibs,
            "api_pull_mibs": self.api_pull_mibs,
            "api_push_pull_mibs": self.api_push_pull_mibs,
        }
        return {
            **asdict(self),
            **rates,
            "ratio": self.ratios,
            "ratio_vs_single_get": self.ratios_vs_single_get,
            "api_ratio": self.api_ratios,
        }


RATE_COLUMNS = (
    "push_mibs",
    "pull_mibs",
    "push_pull_mibs",
    "put_mibs",
    "get_mibs",
    "put_get_mibs",
    "get1_mibs",
    "put_get1_mibs",
    "api_push_mibs",
    "api_pull_mibs",
    "api_push_pull_mibs",
)
TIME_COLUMNS = ("push_s", "pull_s", "put_s", "get_s", "get1_s", "api_push_s", "api_pull_s")
RATIO_SETS = ("ratios", "ratios_vs_single_get", "api_ratios")


def medians(rounds: Sequence[RoundResult]) -> dict[str, Any]:
    """Median over rounds of every rate and time, and of the paired per-round ratios."""
    out: dict[str, Any] = {"rounds": len(rounds)}
    for column in (*RATE_COLUMNS, *TIME_COLUMNS):
        out[column] = statistics.median(getattr(result, column) for result in rounds)
    for name in RATIO_SETS:
        per_round = [getattr(result, name) for result in rounds]
        out[name.replace("ratios", "ratio")] = {
            key: statistics.median(r[key] for r in per_round) for key in per_round[0]
        }
    return out
