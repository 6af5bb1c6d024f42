"""The line items of a month: the instance, its disk and address, S3 storage and requests, egress."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from provisioning.cost.model import InstanceRate, LineItem, Usage
from provisioning.cost.money import THOUSAND, cents, plain
from provisioning.cost.prices import PriceTable
from provisioning.spec import Spec

SECONDS_PER_HOUR = 3600


def health_checks_per_month(spec: Spec, hours_per_month: Decimal) -> Decimal:
    """How many storage health checks the registry makes a month (one every health_interval_seconds)."""
    seconds = hours_per_month * SECONDS_PER_HOUR
    return (seconds / spec.registry.health_interval_seconds).to_integral_value(rounding=ROUND_DOWN)


def billable_egress(prices: PriceTable, usage: Usage) -> Decimal:
    """The GB out to the internet a month past the account's free allowance."""
    return max(usage.egress_gib - prices.free_egress_gb_per_month, Decimal(0))


def _item(key: str, label: str, quantity: Decimal, unit: str, unit_price: Decimal, note: str = "") -> LineItem:
    return LineItem(key, label, plain(quantity), unit, unit_price, cents(quantity * unit_price), note)


def line_items(spec: Spec, prices: PriceTable, usage: Usage, rate: InstanceRate) -> tuple[LineItem, ...]:
    """What AWS bills a month for `spec`'s deployment with this usage, each item rounded to the cent."""
    return (*_instance_items(spec, prices, rate), *_s3_items(spec, prices, usage), _egress_item(spec, prices, usage))


def _instance_items(spec: Spec, prices: PriceTable, rate: InstanceRate) -> tuple[LineItem, ...]:
    hours = prices.hours_per_month
    on_demand_note = "" if rate.hourly == rate.on_demand else f"; on-demand {rate.on_demand}/h"
    return (
        _item(
            "instance",
            f"EC2 spot instance {rate.instance_type}",
            hours,
            "hours",
            rate.hourly,
            rate.basis + on_demand_note,
        ),
        _item(
            "ebs",
            "EBS gp3 root volume",
            Decimal(spec.instance.volume_gb),
            "GB-months",
            prices.region(spec.deployment.region).ebs_gp3_per_gb_month,
            "instance.volume_gb",
        ),
        _item(
            "public_ipv4",
            "public IPv4 address",
            hours,
            "hours",
            prices.public_ipv4_per_hour,
            "charged since February 2024",
        ),
    )


def _s3_items(spec: Spec, prices: PriceTable, usage: Usage) -> tuple[LineItem, ...]:
    region = prices.region(spec.deployment.region)
    requests = prices.registry_requests
    class_a_price = region.s3_class_a_per_1000 / THOUSAND
    class_b_price = region.s3_class_b_per_1000 / THOUSAND
    pushes, pulls = usage.pushes_per_month, usage.pulls_per_month
    return (
        _item(
            "s3_storage", "S3 Standard storage (images)", usage.stored_gib, "GB-months", region.s3_standard_per_gb_month
        ),
        _item(
            "s3_health_checks",
            "S3 requests: registry storage health check",
            requests.per_health_check * health_checks_per_month(spec, prices.hours_per_month),
            "requests",
            class_a_price,
            f"{requests.per_health_check} LIST every {spec.registry.health_interval_seconds} s",
        ),
        _item(
            "s3_requests_write",
            "S3 requests: push/pull PUT, COPY, LIST",
            requests.per_push.class_a * pushes + requests.per_pull.class_a * pulls,
            "requests",
            class_a_price,
            f"{requests.per_push.class_a}/push, {requests.per_pull.class_a}/pull",
        ),
        _item(
            "s3_requests_read",
            "S3 requests: push/pull GET, HEAD",
            requests.per_push.class_b * pushes + requests.per_pull.class_b * pulls,
            "requests",
            class_b_price,
            f"{requests.per_push.class_b}/push, {requests.per_pull.class_b}/pull",
        ),
    )


def _egress_item(spec: Spec, prices: PriceTable, usage: Usage) -> LineItem:
    return _item(
        "egress",
        "data transfer out to the internet",
        billable_egress(prices, usage),
        "GB",
        prices.region(spec.deployment.region).egress_per_gb,
        f"{plain(usage.egress_gib)} GB out; {plain(prices.free_egress_gb_per_month)} GB a month free per account",
    )
