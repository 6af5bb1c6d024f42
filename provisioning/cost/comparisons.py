"""What the same thing would cost some other way: on Amazon ECR, GitHub's and Docker Hub's registries,
by the 2014 recipe's claim, on demand; and the stored volume below which ECR is cheaper."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from provisioning.cost.model import Comparison, InstanceRate, LineItem, Usage
from provisioning.cost.money import cents, dollars, plain
from provisioning.cost.prices import PriceTable
from provisioning.spec import Spec

TENTH = Decimal("0.1")


def _ecr_egress(prices: PriceTable, region_name: str, usage: Usage) -> Decimal:
    """ECR's data transfer out: the same GB at the same rate, every GB charged (as this deployment's)."""
    return cents(usage.egress_gib * prices.region(region_name).egress_per_gb)


def ecr_monthly(prices: PriceTable, region_name: str, usage: Usage) -> Decimal:
    """The same images and egress on ECR: storage plus data transfer out (ECR charges no requests)."""
    region = prices.region(region_name)
    return cents(usage.stored_gib * region.ecr_storage_per_gb_month) + _ecr_egress(prices, region_name, usage)


def ecr_break_even_gib(
    prices: PriceTable, region_name: str, usage: Usage, items: tuple[LineItem, ...], total: Decimal
) -> Decimal | None:
    """The GiB stored at which ECR costs what this deployment does, to 0.1 GiB; ECR is cheaper below it.

    Everything but S3 storage is fixed in the stored volume, so the two totals meet where
    fixed + s x S3 = s x ECR + egress. None when ECR storage is not dearer than S3 (ECR never loses)."""
    region = prices.region(region_name)
    per_gib = region.ecr_storage_per_gb_month - region.s3_standard_per_gb_month
    if per_gib <= 0:
        return None
    storage = next(item.amount for item in items if item.key == "s3_storage")
    fixed = total - storage - _ecr_egress(prices, region_name, usage)
    return max(fixed / per_gib, Decimal(0)).quantize(TENTH, rounding=ROUND_HALF_UP)


def _registries(spec: Spec, prices: PriceTable, region_name: str, usage: Usage) -> list[Comparison]:
    region = prices.region(region_name)
    ghcr, hub = prices.ghcr, prices.docker_hub
    found = [
        Comparison(
            "ecr",
            "Amazon ECR, same images",
            ecr_monthly(prices, region_name, usage),
            f"storage at ${plain(region.ecr_storage_per_gb_month)}/GB-month + the same data transfer",
            prices.as_of,
            prices.source.get("ecr", ""),
        ),
        Comparison(
            "ghcr",
            "GitHub Container Registry",
            Decimal("0.00"),
            "public images free; private ones free for now too, as GitHub states"
            if ghcr.container_registry_currently_free
            else "public images free",
            ghcr.as_of,
            ghcr.source,
        ),
        Comparison(
            "ghcr_packages_rates",
            "GHCR private, at GitHub Packages rates",
            cents(usage.stored_gib * ghcr.packages_storage_per_gb_month)
            + cents(usage.egress_gib * ghcr.packages_transfer_out_per_gb),
            f"if billed: ${plain(ghcr.packages_storage_per_gb_month)}/GB-month + "
            f"${plain(ghcr.packages_transfer_out_per_gb)}/GB out, before a plan's allowance",
            ghcr.as_of,
            ghcr.source,
        ),
    ]
    users = len(spec.registry.users)
    for name, plan in hub.plans.items():
        seats = users if plan.per_user else 1
        note = f"{plan.note}; {seats} user(s) from registry.users" if plan.per_user else plan.note
        found.append(
            Comparison(
                f"docker_hub_{name}",
                f"Docker Hub {name.capitalize()}",
                cents(plan.per_month * seats),
                note,
                hub.as_of,
                hub.source,
            )
        )
    return found


def comparisons(
    spec: Spec,
    prices: PriceTable,
    region_name: str,
    usage: Usage,
    rate: InstanceRate,
    items: tuple[LineItem, ...],
    total: Decimal,
) -> tuple[Comparison, ...]:
    """The deployment's month (`items`, `total`) next to ECR, GHCR, Docker Hub's plans, the recipe's claim
    and, when the instance is not charged at its on-demand price, the same on an on-demand instance."""
    hours = prices.hours_per_month
    found = _registries(spec, prices, region_name, usage)
    found.append(
        Comparison(
            "recipe_claim",
            "the 2014 recipe's claim",
            cents(prices.recipe_claim_per_month),
            "t1.micro spot at $0.0031/h + EBS + transfer, before the IPv4 charge "
            f"({dollars(cents(hours * prices.public_ipv4_per_hour))} alone now)",
            "2014-08-21",
            prices.recipe_claim_note,
        )
    )
    if rate.hourly != rate.on_demand:
        instance = next(item for item in items if item.key == "instance")
        on_demand_total = total - instance.amount + cents(hours * rate.on_demand)
        found.append(
            Comparison(
                "on_demand",
                f"the same on an on-demand {rate.instance_type}",
                on_demand_total,
                "not interrupted",
                prices.as_of,
                prices.source.get("ec2_on_demand", ""),
            )
        )
    return tuple(found)
