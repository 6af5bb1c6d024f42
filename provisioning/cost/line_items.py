"""The line items of a month: the instance, its disk and address, S3 storage and requests, Route 53, egress."""

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


MILLION = Decimal(1_000_000)


def billable_egress(prices: PriceTable, usage: Usage) -> Decimal:
    """The GB out to the internet a month past the account's free allowance (if nothing else uses it)."""
    return max(usage.egress_gib - prices.free_egress_gb_per_month, Decimal(0))


def typical_spot_range(prices: PriceTable, instance_type: str, on_demand: Decimal) -> tuple[Decimal, Decimal] | None:
    """The typical spot USD/hour (low, high) of `instance_type`'s family from the stored savings range."""
    saving = prices.spot_typical.savings_vs_on_demand.get(instance_type.split(".")[0])
    if saving is None:
        return None
    return on_demand * (1 - saving.high), on_demand * (1 - saving.low)


def _item(key: str, label: str, quantity: Decimal, unit: str, unit_price: Decimal, note: str = "") -> LineItem:
    return LineItem(key, label, plain(quantity), unit, unit_price, cents(quantity * unit_price), note)


def line_items(spec: Spec, prices: PriceTable, usage: Usage, rate: InstanceRate) -> tuple[LineItem, ...]:
    """What AWS bills a month for `spec`'s deployment with this usage, each item rounded to the cent."""
    return (
        *_instance_items(spec, prices, rate),
        *_s3_items(spec, prices, usage),
        *_route53_items(spec, prices, usage),
        _egress_item(spec, prices, usage),
    )


def _typical_note(prices: PriceTable, rate: InstanceRate) -> str:
    typical = typical_spot_range(prices, rate.instance_type, rate.on_demand)
    family = rate.instance_type.split(".")[0]
    if typical is None:
        return f"no typical spot range stored for {family}"
    saving = prices.spot_typical.savings_vs_on_demand[family]
    low, high = (plain(t.quantize(Decimal("0.0001"))) for t in typical)
    return (
        f"typical spot ${low}-${high}/h ({plain(saving.low * 100)}-{plain(saving.high * 100)}% below on-demand "
        f"${plain(rate.on_demand)}/h; Spot Instance Advisor, {prices.spot_typical.as_of})"
    )


def _instance_items(spec: Spec, prices: PriceTable, rate: InstanceRate) -> tuple[LineItem, ...]:
    hours = prices.hours_per_month
    return (
        _item(
            "instance",
            f"EC2 {rate.instance_type}: {rate.basis}",
            hours,
            "hours",
            rate.hourly,
            _typical_note(prices, rate),
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


def _route53_items(spec: Spec, prices: PriceTable, usage: Usage) -> tuple[LineItem, ...]:
    """The hosted zone and its queries, when the spec's DNS is Route 53 (one query per push or pull)."""
    if spec.dns.mode != "route53":
        return ()
    route53 = prices.route53
    return (
        _item(
            "route53_zone",
            "Route 53 hosted zone",
            Decimal(1),
            "zones",
            route53.hosted_zone_per_month,
            f"dns.zone_id {spec.dns.zone_id}: the whole zone's charge, shared with its other names",
        ),
        _item(
            "route53_queries",
            "Route 53 standard queries",
            Decimal(usage.pushes_per_month + usage.pulls_per_month),
            "queries",
            route53.standard_queries_per_million / MILLION,
            "about one per push or pull (resolvers cache)",
        ),
    )


def _egress_item(spec: Spec, prices: PriceTable, usage: Usage) -> LineItem:
    return _item(
        "egress",
        "data transfer out to the internet",
        usage.egress_gib,
        "GB",
        prices.region(spec.deployment.region).egress_per_gb,
        f"every GB charged: the free {plain(prices.free_egress_gb_per_month)} GB a month is account-wide",
    )


def free_egress_saving(spec: Spec, prices: PriceTable, usage: Usage) -> Decimal:
    """What the account-wide free egress allowance takes off the egress item, if nothing else uses it."""
    price = prices.region(spec.deployment.region).egress_per_gb
    return cents(usage.egress_gib * price) - cents(billable_egress(prices, usage) * price)
