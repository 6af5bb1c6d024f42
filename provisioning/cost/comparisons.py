"""What the same thing would cost some other way: on Amazon ECR, by the 2014 recipe's claim, on demand."""

from __future__ import annotations

from decimal import Decimal

from provisioning.cost.line_items import billable_egress
from provisioning.cost.model import Comparison, InstanceRate, LineItem, Usage
from provisioning.cost.money import cents, dollars
from provisioning.cost.prices import PriceTable


def comparisons(
    prices: PriceTable, region_name: str, usage: Usage, rate: InstanceRate, items: tuple[LineItem, ...], total: Decimal
) -> tuple[Comparison, ...]:
    """The deployment's month (`items`, `total`) next to ECR, the recipe's claim and, when the instance
    is not charged at its on-demand price, the same on an on-demand instance."""
    region = prices.region(region_name)
    hours = prices.hours_per_month
    ecr = cents(usage.stored_gib * region.ecr_storage_per_gb_month) + cents(
        billable_egress(prices, usage) * region.egress_per_gb
    )
    found = [
        Comparison(
            "ecr",
            "the same images on Amazon ECR",
            ecr,
            f"storage at {region.ecr_storage_per_gb_month}/GB-month + the same data transfer",
        ),
        Comparison(
            "recipe_claim",
            "the 2014 recipe's claim",
            cents(prices.recipe_claim_per_month),
            "t1.micro spot at $0.0031/h + EBS + transfer, before the IPv4 charge "
            f"({dollars(cents(hours * prices.public_ipv4_per_hour))} alone now)",
        ),
    ]
    if rate.hourly != rate.on_demand:
        instance = next(item for item in items if item.key == "instance")
        on_demand_total = total - instance.amount + cents(hours * rate.on_demand)
        found.append(
            Comparison(
                "on_demand", f"the same on an on-demand {rate.instance_type}", on_demand_total, "not interrupted"
            )
        )
    return tuple(found)
