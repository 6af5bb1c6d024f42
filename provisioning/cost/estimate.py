"""`estimate_monthly_cost`: a pure function of the Spec, a `PriceTable`, the usage and one spot price."""

from __future__ import annotations

from decimal import Decimal

from provisioning.cost.comparisons import comparisons, ecr_break_even_gib
from provisioning.cost.line_items import free_egress_saving, line_items, typical_spot_range
from provisioning.cost.model import CostEstimate, InstanceRate, Usage
from provisioning.cost.prices import PriceTable
from provisioning.spec import Spec

DEFAULT_STORED_GIB = Decimal(5)
DEFAULT_PUSHES = 100
DEFAULT_PULLS = 1000
DEFAULT_EGRESS_GIB = Decimal(10)


def _cheapest_rate(
    spot: Decimal | None, spot_zone: str | None, on_demand: Decimal, max_price: Decimal | None
) -> tuple[Decimal, str]:
    """The USD/hour charged and the assumption behind it: the least of the spot price (given, or the
    7-day mean in `spot_zone`), the on-demand ceiling and the instance.max_price cap."""
    if spot is None:
        candidates = [(on_demand, "on-demand ceiling (no spot price given)")]
    else:
        spot_label = f"spot mean of 7 days in {spot_zone}" if spot_zone else f"spot at ${spot}/h (given)"
        candidates = [(spot, spot_label), (on_demand, f"on-demand ceiling (below the {spot_label})")]
    if max_price is not None:
        candidates.append((max_price, f"instance.max_price cap ${max_price}/h"))
    return min(candidates, key=lambda c: c[0])  # ties keep the first: spot, then on-demand


def estimate_monthly_cost(
    spec: Spec,
    prices: PriceTable,
    *,
    stored_gib: Decimal | float | int,
    pushes_per_month: int,
    pulls_per_month: int,
    egress_gib: Decimal | float | int,
    spot_price_per_hour: Decimal | None,
    instance_type: str | None = None,
    spot_zone: str | None = None,
) -> CostEstimate:
    """The monthly cost of `spec`'s deployment with this usage, as line items, a total and comparisons.

    `instance_type` defaults to the spec's first choice; `spot_price_per_hour` (the 7-day mean in
    `spot_zone` when that is given) is capped by the on-demand price and by `instance.max_price`.
    Raises PriceError for a region or type without prices.
    """
    usage = Usage.checked(stored_gib, pushes_per_month, pulls_per_month, egress_gib)
    region_name = spec.deployment.region
    chosen = instance_type or spec.instance.types[0]
    field_name = "--instance-type" if instance_type else "instance.types"
    on_demand = prices.on_demand(region_name, chosen, field_name)
    hourly, basis = _cheapest_rate(spot_price_per_hour, spot_zone, on_demand, spec.instance.max_price)
    rate = InstanceRate(chosen, hourly, basis, on_demand)
    items = line_items(spec, prices, usage, rate)
    total = sum((i.amount for i in items), Decimal(0))
    return CostEstimate(
        region=region_name,
        instance_type=chosen,
        hourly_rate=hourly,
        rate_basis=basis,
        items=items,
        total=total,
        comparisons=comparisons(spec, prices, region_name, usage, rate, items, total),
        usage=usage.as_dict(),
        prices_as_of=prices.as_of,
        prices_origin=prices.origin,
        total_with_free_egress=total - free_egress_saving(spec, prices, usage),
        ecr_break_even_gib=ecr_break_even_gib(prices, region_name, usage, items, total),
        typical_spot_per_hour=typical_spot_range(prices, chosen, on_demand),
        currency=prices.currency,
        sources=dict(prices.source),
    )
