"""What about an hour of a live run costs, from the price table (provisioning.cost), shown before
anything is made."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from provisioning.cost import SECONDS_PER_HOUR, PriceError, PriceTable, estimate_monthly_cost
from provisioning.errors import InputProblem
from provisioning.spec import Spec

RUN_HOURS = Decimal(1)
_MONEY = Decimal("0.0001")


@dataclass(frozen=True)
class RunCostItem:
    label: str
    amount: Decimal
    note: str


@dataclass(frozen=True)
class RunCost:
    """What about `hours` of a live run cost: the instance at its on-demand ceiling, the public IPv4
    address, the volume and the S3 requests of one push, one pull and the registry's health checks."""

    hours: Decimal
    instance_type: str
    items: tuple[RunCostItem, ...]
    total: Decimal
    prices_as_of: str
    prices_origin: str
    currency: str = "USD"

    def lines(self) -> list[str]:
        head = (
            f"estimated cost of this live run: ${self.total} {self.currency} for about {self.hours} h "
            f"(prices as of {self.prices_as_of}, {self.prices_origin})"
        )
        return [head, *(f"  ${item.amount}  {item.label}: {item.note}" for item in self.items)]


def _money(amount: Decimal) -> Decimal:
    return amount.quantize(_MONEY, rounding=ROUND_HALF_UP)


def estimate_run_cost(
    spec: Spec, prices: PriceTable, *, hours: Decimal = RUN_HOURS, pushes: int = 1, pulls: int = 1
) -> RunCost:
    """The cost of a live run of `spec` lasting `hours`, from the same prices and model as
    ``spotreg cost``. The instance is priced at the on-demand ceiling (capped by instance.max_price) of
    the dearest listed type it may land on; types without a price are left out (PriceError if none has one)."""
    rates: list[tuple[Decimal, str, str]] = []
    problems: list[InputProblem] = []
    estimate = None
    for instance_type in spec.instance.types:
        try:
            one = estimate_monthly_cost(
                spec,
                prices,
                stored_gib=0,
                pushes_per_month=pushes,
                pulls_per_month=pulls,
                egress_gib=0,
                spot_price_per_hour=None,
                instance_type=instance_type,
            )
        except PriceError as error:
            if any(p.field == "deployment.region" for p in error.problems):
                raise
            problems.extend(error.problems)
            continue
        if estimate is None:
            estimate = one
        rates.append((one.hourly_rate, instance_type, one.rate_basis))
    if estimate is None:
        raise PriceError(problems)
    rate, instance_type, basis = max(rates, key=lambda r: r[0])
    region = prices.region(spec.deployment.region)
    checks = (hours * SECONDS_PER_HOUR / spec.registry.health_interval_seconds).to_integral_value(ROUND_DOWN)
    health_requests = checks * prices.registry_requests.per_health_check
    write, read = estimate.item("s3_requests_write"), estimate.item("s3_requests_read")
    items = (
        RunCostItem(f"EC2 instance {instance_type}", _money(rate * hours), f"{hours} h at ${rate}/h ({basis})"),
        RunCostItem(
            "public IPv4 address",
            _money(prices.public_ipv4_per_hour * hours),
            f"{hours} h at ${prices.public_ipv4_per_hour}/h",
        ),
        RunCostItem(
            "EBS gp3 root volume",
            _money(spec.instance.volume_gb * region.ebs_gp3_per_gb_month * hours / prices.hours_per_month),
            f"{spec.instance.volume_gb} GB for {hours} h",
        ),
        RunCostItem(
            "S3 requests",
            _money(
                write.quantity * write.unit_price
                + read.quantity * read.unit_price
                + health_requests * region.s3_class_a_per_1000 / 1000
            ),
            f"{pushes} push, {pulls} pull, {health_requests} health-check LISTs",
        ),
    )
    return RunCost(
        hours=hours,
        instance_type=instance_type,
        items=items,
        total=sum((item.amount for item in items), Decimal(0)),
        prices_as_of=prices.as_of,
        prices_origin=prices.origin,
        currency=prices.currency,
    )
