"""Where to launch: the instance type and zone whose spot price is low and stays low.

A pure function of price rows (in real use, from `describe_spot_price_history`): each (type, zone) is
scored by its mean price plus `k` standard deviations, so a zone that is cheap on average but jumps
about loses to one that is nearly as cheap and steady (the original recipe picked, by eye, the zone
that "stays nearest to the baseline"). Ties go to the type listed first in the spec, then to the
zone whose name sorts first, so the answer is deterministic.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

VOLATILITY_PENALTY = Decimal(1)  # k in mean + k * stddev
_CONTEXT = decimal.Context(prec=60)


@dataclass(frozen=True)
class PriceRow:
    """One spot price observation: USD per hour for `instance_type` in `zone` from `timestamp` on."""

    instance_type: str
    zone: str
    price: Decimal
    timestamp: datetime | None = None


@dataclass(frozen=True)
class Choice:
    """A place to launch, and why it was chosen."""

    instance_type: str
    zone: str
    reason: str
    score: Decimal | None = None

    @property
    def type(self) -> str:
        return self.instance_type


@dataclass(frozen=True)
class _Stats:
    mean: Decimal
    stddev: Decimal
    count: int

    def score(self, k: Decimal) -> Decimal:
        return _CONTEXT.add(self.mean, _CONTEXT.multiply(k, self.stddev))


def _stats(prices: Sequence[Decimal]) -> _Stats:
    ctx = _CONTEXT
    n = Decimal(len(prices))
    total = sum(prices, Decimal(0))
    squares = sum((ctx.multiply(p, p) for p in prices), Decimal(0))
    mean = ctx.divide(total, n)
    # population variance from exact sums, so equal samples give exactly equal statistics
    variance = ctx.subtract(ctx.divide(squares, n), ctx.multiply(mean, mean))
    variance = max(variance, Decimal(0))
    return _Stats(mean, ctx.sqrt(variance), len(prices))


def _fmt(value: Decimal) -> str:
    return f"{value:.6f}"


def rank_placements(
    price_rows: Iterable[PriceRow], types_in_order: Sequence[str], *, k: Decimal = VOLATILITY_PENALTY
) -> list[Choice]:
    """Every (type, zone) with prices, best first. Rows for unlisted types are ignored."""
    order = {name: index for index, name in enumerate(types_in_order)}
    grouped: dict[tuple[str, str], list[Decimal]] = {}
    for row in price_rows:
        if row.instance_type in order:
            grouped.setdefault((row.instance_type, row.zone), []).append(Decimal(row.price))
    scored = [(key, _stats(prices)) for key, prices in grouped.items()]
    scored.sort(key=lambda item: (item[1].score(k), order[item[0][0]], item[0][1]))
    total = len(scored)
    choices = []
    for rank, ((instance_type, zone), stats) in enumerate(scored, start=1):
        score = stats.score(k)
        reason = (
            f"rank {rank} of {total}: mean {_fmt(stats.mean)} + {k} x stddev {_fmt(stats.stddev)} "
            f"= {_fmt(score)} USD/h over {stats.count} price points"
        )
        choices.append(Choice(instance_type, zone, reason, score))
    return choices


def choose_placement(
    price_rows: Iterable[PriceRow], types_in_order: Sequence[str], *, k: Decimal = VOLATILITY_PENALTY
) -> Choice:
    """The best (type, zone): lowest mean + k * stddev, ties to the spec's order, then the zone name."""
    ranked = rank_placements(price_rows, types_in_order, k=k)
    if not ranked:
        raise ValueError(f"no spot price for any of {list(types_in_order)}")
    return ranked[0]


def launch_order(ranked: Sequence[Choice], *, limit: int | None = None) -> list[Choice]:
    """The order to try launches in: every type's best zone first (best type first), then every
    type's second-best zone, and so on. A capacity failure thus moves on to the next type before it
    tries the same type in a worse zone."""
    by_type: dict[str, list[Choice]] = {}
    for choice in ranked:
        by_type.setdefault(choice.instance_type, []).append(choice)
    order: list[Choice] = []
    depth = max((len(zones) for zones in by_type.values()), default=0)
    for level in range(depth):
        order.extend(zones[level] for zones in by_type.values() if level < len(zones))
    return order if limit is None else order[:limit]


def unpriced_order(types_in_order: Sequence[str], zones: Sequence[str]) -> list[Choice]:
    """When there is no price history at all: the spec's order, zones by name."""
    ranked = [
        Choice(t, z, f"no spot price history: spec order ({i + 1} of {len(types_in_order)}), zone {z}")
        for i, t in enumerate(types_in_order)
        for z in sorted(zones)
    ]
    return launch_order(ranked)
