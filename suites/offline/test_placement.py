"""The zone and type chooser: a pure function of price rows, property-tested."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioning.placement import PriceRow, choose_placement, launch_order, rank_placements, unpriced_order

TYPES = ("t4g.micro", "t3.micro", "t3a.micro", "m7g.medium")
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d")

prices = st.decimals(
    min_value=Decimal("0.0001"), max_value=Decimal("5"), places=6, allow_nan=False, allow_infinity=False
)
rows = st.lists(st.builds(PriceRow, st.sampled_from(TYPES), st.sampled_from(ZONES), prices), min_size=1, max_size=40)
orders = st.permutations(TYPES)
FAST = settings(max_examples=60, deadline=None)


@FAST
@given(rows, orders)
def test_result_is_always_among_the_inputs(price_rows, order):
    choice = choose_placement(price_rows, order)
    assert (choice.instance_type, choice.zone) in {(r.instance_type, r.zone) for r in price_rows}
    assert choice.instance_type in order


@FAST
@given(rows, orders)
def test_deterministic_whatever_the_row_order(price_rows, order):
    first = choose_placement(price_rows, order)
    assert choose_placement(list(reversed(price_rows)), order) == first
    assert choose_placement(sorted(price_rows, key=lambda r: (r.price, r.zone)), order) == first


@FAST
@given(rows, orders, st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000"), places=2))
def test_scale_invariant(price_rows, order, factor):
    scaled = [PriceRow(r.instance_type, r.zone, r.price * factor) for r in price_rows]
    a, b = choose_placement(price_rows, order), choose_placement(scaled, order)
    assert (a.instance_type, a.zone) == (b.instance_type, b.zone)


@FAST
@given(
    st.lists(prices, min_size=1, max_size=12),
    st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("1"), places=6),
    st.sampled_from(TYPES),
    st.permutations(ZONES),
)
def test_a_zone_strictly_cheaper_and_as_stable_wins(history, discount, instance_type, zones):
    """Zone B has zone A's price history shifted down (same volatility, lower mean): B beats A."""
    expensive, cheap = zones[0], zones[1]
    shifted = [p + discount for p in history]
    price_rows = [PriceRow(instance_type, expensive, p) for p in shifted] + [
        PriceRow(instance_type, cheap, p) for p in history
    ]
    choice = choose_placement(price_rows, TYPES)
    assert choice.zone == cheap


@FAST
@given(rows)
def test_ties_go_to_the_spec_order(price_rows):
    """The same rows for every type: the type listed first wins."""
    same = [PriceRow(t, r.zone, r.price) for r in price_rows for t in TYPES]
    for order in (TYPES, tuple(reversed(TYPES))):
        assert choose_placement(same, order).instance_type == order[0]


def test_volatility_is_penalised():
    steady = [PriceRow("t3.micro", "us-east-1a", Decimal(p)) for p in ("0.0040", "0.0041", "0.0040", "0.0041")]
    jumpy = [PriceRow("t3.micro", "us-east-1b", Decimal(p)) for p in ("0.0010", "0.0070", "0.0010", "0.0070")]
    choice = choose_placement(steady + jumpy, ["t3.micro"])
    assert choice.zone == "us-east-1a"
    assert "stddev" in choice.reason and "rank 1 of 2" in choice.reason


def test_unlisted_types_are_ignored_and_nothing_listed_is_an_error():
    rows_ = [PriceRow("m5.large", "us-east-1a", Decimal("0.01"))]
    with pytest.raises(ValueError, match="no spot price"):
        choose_placement(rows_, ["t3.micro"])
    assert rank_placements(rows_, ["t3.micro"]) == []


def test_launch_order_tries_every_types_best_zone_first():
    ranked = rank_placements(
        [
            PriceRow("t4g.micro", "us-east-1a", Decimal("0.001")),
            PriceRow("t4g.micro", "us-east-1b", Decimal("0.002")),
            PriceRow("t3.micro", "us-east-1c", Decimal("0.003")),
            PriceRow("t3.micro", "us-east-1a", Decimal("0.004")),
        ],
        ["t3.micro", "t4g.micro"],
    )
    order = [(c.instance_type, c.zone) for c in launch_order(ranked)]
    assert order == [
        ("t4g.micro", "us-east-1a"),
        ("t3.micro", "us-east-1c"),
        ("t4g.micro", "us-east-1b"),
        ("t3.micro", "us-east-1a"),
    ]


def test_unpriced_order_is_the_spec_order_zone_by_zone():
    order = [(c.instance_type, c.zone) for c in unpriced_order(["b.large", "a.large"], ["z2", "z1"])]
    assert order == [("b.large", "z1"), ("a.large", "z1"), ("b.large", "z2"), ("a.large", "z2")]
