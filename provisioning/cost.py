"""What a deployment costs a month, item by item, next to ECR and the original recipe's claim.

`estimate_monthly_cost` is a pure function of the Spec, a `PriceTable` and the usage it is told
(stored GiB, pushes, pulls, egress) plus one spot price. In real use that spot price is the mean of the
spot price history for the chosen zone and type (`spotreg cost --spot-history`); the on-demand price is
its ceiling and `instance.max_price`, when set, its cap. Money is `Decimal` throughout; each line item is
rounded to the cent and the total is the sum of the rounded items, so the table adds up.

Prices live in `provisioning/data/prices.json` with their date and sources; `load_prices(path)` lays a
user's file of the same shape (holding only the keys to change) over them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from provisioning.errors import InputError, InputProblem
from provisioning.spec import Spec, load_spec

CENT = Decimal("0.01")
THOUSAND = Decimal(1000)
SECONDS_PER_HOUR = 3600
BUILT_IN = "built-in prices (provisioning/data/prices.json)"

DEFAULT_STORED_GIB = Decimal(5)
DEFAULT_PUSHES = 100
DEFAULT_PULLS = 1000
DEFAULT_EGRESS_GIB = Decimal(10)


class PriceError(InputError):
    """A price the estimate needs is missing or malformed: names the field, the value and the rule."""


# --- the price table -------------------------------------------------------------------------------------

Price = Decimal  # USD; pydantic checks each is >= 0


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RequestCounts(_Model):
    """S3 requests of one operation: class A (PUT, COPY, POST, LIST) and class B (GET, HEAD)."""

    class_a: Decimal = Field(ge=0)
    class_b: Decimal = Field(ge=0)


class RegistryRequests(_Model):
    note: str = ""
    per_push: RequestCounts
    per_pull: RequestCounts
    per_health_check: Decimal = Field(ge=0, description="LIST (class A) requests per storage health check")


class RegionPrices(_Model):
    """The prices that differ by region."""

    on_demand_per_hour: dict[str, Price] = Field(min_length=1)
    ebs_gp3_per_gb_month: Price = Field(ge=0)
    s3_standard_per_gb_month: Price = Field(ge=0)
    s3_class_a_per_1000: Price = Field(ge=0)
    s3_class_b_per_1000: Price = Field(ge=0)
    egress_per_gb: Price = Field(ge=0)
    ecr_storage_per_gb_month: Price = Field(ge=0)


class PriceTable(_Model):
    """Every price the estimate uses, with the date they were taken and where from."""

    as_of: str
    currency: str = "USD"
    note: str = ""
    source: dict[str, str]
    hours_per_month: Decimal = Field(gt=0)
    public_ipv4_per_hour: Price = Field(ge=0)
    free_egress_gb_per_month: Decimal = Field(ge=0)
    recipe_claim_per_month: Price = Field(ge=0)
    recipe_claim_note: str = ""
    registry_requests: RegistryRequests
    regions: dict[str, RegionPrices] = Field(min_length=1)
    origin: str = BUILT_IN

    def region(self, name: str) -> RegionPrices:
        """The prices of region `name`, or a PriceError naming deployment.region."""
        try:
            return self.regions[name]
        except KeyError:
            raise PriceError(
                [
                    InputProblem(
                        "deployment.region",
                        name,
                        f"no prices for this region in {self.origin} (known: {', '.join(sorted(self.regions))}); "
                        f"add regions.{name} in a file passed with --prices",
                    )
                ]
            ) from None

    def on_demand(self, region: str, instance_type: str, field_name: str = "instance.types") -> Decimal:
        """The on-demand USD/hour of `instance_type` in `region`, or a PriceError naming the field."""
        prices = self.region(region).on_demand_per_hour
        try:
            return prices[instance_type]
        except KeyError:
            raise PriceError(
                [
                    InputProblem(
                        field_name,
                        instance_type,
                        f"no on-demand price for this instance type in {region} in {self.origin} "
                        f"(known: {', '.join(sorted(prices))}); "
                        f"add regions.{region}.on_demand_per_hour.{instance_type} in a file passed with --prices",
                    )
                ]
            ) from None


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` laid over `base`: nested objects merge, anything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _field_of(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _read_json(text: str, origin: str) -> dict[str, Any]:
    try:
        data = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as error:
        raise PriceError([InputProblem("--prices", origin, f"not valid JSON: {error}")]) from None
    if not isinstance(data, dict):
        raise PriceError([InputProblem("--prices", origin, "must hold a JSON object like prices.json")])
    return data


def built_in_prices_text() -> str:
    """The text of the prices file shipped with spotreg."""
    return resources.files("provisioning").joinpath("data/prices.json").read_text(encoding="utf-8")


def load_prices(path: Path | None = None) -> PriceTable:
    """The built-in price table, with the keys of the JSON file at `path` (if any) laid over it."""
    data = _read_json(built_in_prices_text(), BUILT_IN)
    origin = BUILT_IN
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PriceError([InputProblem("--prices", str(path), "the file does not exist")]) from None
        data = _merge(data, _read_json(text, str(path)))
        origin = f"{path} over the built-in prices"
    data["origin"] = origin
    try:
        return PriceTable.model_validate(data)
    except ValidationError as error:
        problems = [
            InputProblem(_field_of(item["loc"]), repr(item.get("input")), f"{item['msg']} (in {origin})")
            for item in error.errors(include_url=False)
        ]
        raise PriceError(problems) from None


# --- the estimate ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineItem:
    """One thing AWS bills each month: how much of it, at what unit price, for how many dollars."""

    key: str
    label: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal
    note: str = ""


@dataclass(frozen=True)
class Comparison:
    """What the same thing would cost some other way, per month."""

    key: str
    label: str
    monthly: Decimal
    note: str = ""


@dataclass(frozen=True)
class CostEstimate:
    """A monthly estimate: line items that add up to `total`, and comparisons beside it."""

    region: str
    instance_type: str
    hourly_rate: Decimal
    rate_basis: str
    items: tuple[LineItem, ...]
    total: Decimal
    comparisons: tuple[Comparison, ...]
    usage: Mapping[str, Decimal | int]
    prices_as_of: str
    prices_origin: str
    currency: str = "USD"
    sources: Mapping[str, str] = field(default_factory=dict)

    def item(self, key: str) -> LineItem:
        return next(item for item in self.items if item.key == key)

    def comparison(self, key: str) -> Comparison:
        return next(c for c in self.comparisons if c.key == key)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: money and quantities as decimal strings (exact), the total as `monthly_total`."""
        return {
            "currency": self.currency,
            "region": self.region,
            "instance_type": self.instance_type,
            "hourly_rate": str(self.hourly_rate),
            "rate_basis": self.rate_basis,
            "monthly_total": str(self.total),
            "items": [
                {
                    "key": i.key,
                    "label": i.label,
                    "quantity": str(i.quantity),
                    "unit": i.unit,
                    "unit_price": str(i.unit_price),
                    "amount": str(i.amount),
                    "note": i.note,
                }
                for i in self.items
            ],
            "comparisons": [
                {"key": c.key, "label": c.label, "monthly": str(c.monthly), "note": c.note} for c in self.comparisons
            ],
            "usage": {k: str(v) for k, v in self.usage.items()},
            "prices": {"as_of": self.prices_as_of, "origin": self.prices_origin, "source": dict(self.sources)},
        }


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def _plain(value: Decimal) -> Decimal:
    """Drop trailing zeros without switching to exponent notation."""
    normal = value.normalize()
    return normal.quantize(Decimal(1)) if normal == normal.to_integral() else normal


def _instance_rate(
    spot: Decimal | None, on_demand: Decimal, max_price: Decimal | None
) -> tuple[Decimal, str]:
    candidates: list[tuple[Decimal, str]] = [(on_demand, "on-demand ceiling")]
    if spot is not None:
        candidates.insert(0, (spot, "spot price"))
    else:
        candidates[0] = (on_demand, "on-demand ceiling: no spot price given")
    if max_price is not None:
        candidates.append((max_price, "instance.max_price cap"))
    return min(candidates, key=lambda c: c[0])  # ties keep the first: spot, then on-demand


def health_checks_per_month(spec: Spec, hours_per_month: Decimal) -> Decimal:
    """How many storage health checks the registry makes a month (one every health_interval_seconds)."""
    seconds = hours_per_month * SECONDS_PER_HOUR
    return (seconds / spec.registry.health_interval_seconds).to_integral_value(rounding=ROUND_DOWN)


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
) -> CostEstimate:
    """The monthly cost of `spec`'s deployment with this usage, as line items, a total and comparisons.

    `instance_type` defaults to the spec's first choice; `spot_price_per_hour` is capped by the
    on-demand price and by `instance.max_price`. Raises PriceError for a region or type without prices.
    """
    stored = Decimal(str(stored_gib))
    egress = Decimal(str(egress_gib))
    for name, value in (("stored_gib", stored), ("egress_gib", egress)):
        if value < 0:
            raise PriceError([InputProblem(name, str(value), "must be zero or more")])
    for name, count in (("pushes_per_month", pushes_per_month), ("pulls_per_month", pulls_per_month)):
        if count < 0:
            raise PriceError([InputProblem(name, str(count), "must be zero or more")])

    region_name = spec.deployment.region
    region = prices.region(region_name)
    chosen = instance_type or spec.instance.types[0]
    field_name = "--instance-type" if instance_type else "instance.types"
    on_demand = prices.on_demand(region_name, chosen, field_name)
    hours = prices.hours_per_month
    rate, basis = _instance_rate(spot_price_per_hour, on_demand, spec.instance.max_price)

    requests = prices.registry_requests
    checks = health_checks_per_month(spec, hours)
    class_a_price = region.s3_class_a_per_1000 / THOUSAND
    class_b_price = region.s3_class_b_per_1000 / THOUSAND
    ops_a = requests.per_push.class_a * pushes_per_month + requests.per_pull.class_a * pulls_per_month
    ops_b = requests.per_push.class_b * pushes_per_month + requests.per_pull.class_b * pulls_per_month
    health_requests = requests.per_health_check * checks
    billable_egress = max(egress - prices.free_egress_gb_per_month, Decimal(0))

    def item(key: str, label: str, quantity: Decimal, unit: str, unit_price: Decimal, note: str = "") -> LineItem:
        return LineItem(key, label, _plain(quantity), unit, unit_price, _cents(quantity * unit_price), note)

    items = (
        item(
            "instance",
            f"EC2 spot instance {chosen}",
            hours,
            "hours",
            rate,
            basis if rate == on_demand else f"{basis}; on-demand {on_demand}/h",
        ),
        item(
            "ebs",
            "EBS gp3 root volume",
            Decimal(spec.instance.volume_gb),
            "GB-months",
            region.ebs_gp3_per_gb_month,
            "instance.volume_gb",
        ),
        item(
            "public_ipv4",
            "public IPv4 address",
            hours,
            "hours",
            prices.public_ipv4_per_hour,
            "charged since February 2024",
        ),
        item("s3_storage", "S3 Standard storage (images)", stored, "GB-months", region.s3_standard_per_gb_month),
        item(
            "s3_health_checks",
            "S3 requests: registry storage health check",
            health_requests,
            "requests",
            class_a_price,
            f"{requests.per_health_check} LIST every {spec.registry.health_interval_seconds} s",
        ),
        item(
            "s3_requests_write",
            "S3 requests: push/pull PUT, COPY, LIST",
            ops_a,
            "requests",
            class_a_price,
            f"{requests.per_push.class_a}/push, {requests.per_pull.class_a}/pull",
        ),
        item(
            "s3_requests_read",
            "S3 requests: push/pull GET, HEAD",
            ops_b,
            "requests",
            class_b_price,
            f"{requests.per_push.class_b}/push, {requests.per_pull.class_b}/pull",
        ),
        item(
            "egress",
            "data transfer out to the internet",
            billable_egress,
            "GB",
            region.egress_per_gb,
            f"{_plain(egress)} GB out; {_plain(prices.free_egress_gb_per_month)} GB a month free per account",
        ),
    )
    total = sum((i.amount for i in items), Decimal(0))

    ecr = _cents(stored * region.ecr_storage_per_gb_month) + _cents(billable_egress * region.egress_per_gb)
    comparisons = [
        Comparison(
            "ecr",
            "the same images on Amazon ECR",
            ecr,
            f"storage at {region.ecr_storage_per_gb_month}/GB-month + the same data transfer",
        ),
        Comparison(
            "recipe_claim",
            "the 2014 recipe's claim",
            _cents(prices.recipe_claim_per_month),
            "t1.micro spot at $0.0031/h + EBS + transfer, before the IPv4 charge "
            f"({_money(_cents(hours * prices.public_ipv4_per_hour))} alone now)",
        ),
    ]
    if rate != on_demand:
        on_demand_total = total - items[0].amount + _cents(hours * on_demand)
        comparisons.append(
            Comparison("on_demand", f"the same on an on-demand {chosen}", on_demand_total, "not interrupted")
        )
    return CostEstimate(
        region=region_name,
        instance_type=chosen,
        hourly_rate=rate,
        rate_basis=basis,
        items=items,
        total=total,
        comparisons=tuple(comparisons),
        usage={
            "stored_gib": stored,
            "pushes_per_month": pushes_per_month,
            "pulls_per_month": pulls_per_month,
            "egress_gib": egress,
        },
        prices_as_of=prices.as_of,
        prices_origin=prices.origin,
        currency=prices.currency,
        sources=dict(prices.source),
    )


# --- the command-line shell ------------------------------------------------------------------------------


def _non_negative_decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number, zero or more")
    return value


def _positive_decimal(text: str) -> Decimal:
    value = _non_negative_decimal(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than zero")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be zero or more")
    return value


def add_cost_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `spotreg cost` (adds --config too, unless the parser has it already)."""
    if "--config" not in parser._option_string_actions:
        parser.add_argument("--config", type=Path, required=True, help="spotreg.toml")
    parser.add_argument("--prices", type=Path, default=None, help="a JSON file of prices laid over the built-in ones")
    parser.add_argument(
        "--stored-gib", type=_non_negative_decimal, default=DEFAULT_STORED_GIB, help="GiB of images in S3 (default 5)"
    )
    parser.add_argument(
        "--pushes-per-month", type=_non_negative_int, default=DEFAULT_PUSHES, help="image pushes a month (default 100)"
    )
    parser.add_argument(
        "--pulls-per-month", type=_non_negative_int, default=DEFAULT_PULLS, help="image pulls a month (default 1000)"
    )
    parser.add_argument(
        "--egress-gib",
        type=_non_negative_decimal,
        default=DEFAULT_EGRESS_GIB,
        help="GiB pulled out to the internet a month (default 10)",
    )
    parser.add_argument("--instance-type", default=None, help="price this type (default: the first of instance.types)")
    spot = parser.add_mutually_exclusive_group()
    spot.add_argument("--spot-price", type=_positive_decimal, default=None, help="spot USD/hour to assume")
    spot.add_argument(
        "--spot-history",
        action="store_true",
        help="ask EC2 for the last 7 days' spot prices (needs AWS credentials) and use the best zone's mean",
    )
    if "--endpoint-url" not in parser._option_string_actions:
        parser.add_argument("--endpoint-url", default=None, help="send the EC2 call here (moto's server)")
    parser.add_argument("--json", action="store_true", help="print the estimate as JSON")


def spot_mean_from_history(spec: Spec, ec2: Any, *, now: datetime) -> tuple[str, str, Decimal]:
    """(type, zone, mean USD/h) of the best placement by the last week's spot price history."""
    from provisioning.aws.spot_prices import price_rows
    from provisioning.placement import choose_placement

    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]
    rows = price_rows(ec2, spec.instance.types, zones, now=now)
    try:
        choice = choose_placement(rows, spec.instance.types)
    except ValueError as error:
        raise PriceError([InputProblem("--spot-history", spec.deployment.region, str(error))]) from None
    prices = [r.price for r in rows if r.instance_type == choice.instance_type and r.zone == choice.zone]
    return choice.instance_type, choice.zone, sum(prices, Decimal(0)) / len(prices)


def _money(value: Decimal) -> str:
    return f"${value:,.2f}"


def _unit_price(item: LineItem) -> str:
    if item.unit == "requests":
        return f"${_plain(item.unit_price * THOUSAND)}/1000"
    return f"${_plain(item.unit_price)}"


def _print_table(spec: Spec, estimate: CostEstimate, where: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:  # piped or in CI: room for the notes rather than 80 columns
        console = Console(highlight=False, soft_wrap=False, width=120)
    usage = estimate.usage
    table = Table(
        title=f"spotreg cost: {spec.deployment.name!r} in {estimate.region}, {estimate.instance_type}{where}",
        caption=(
            f"usage: {usage['stored_gib']} GiB stored, {usage['pushes_per_month']} pushes, "
            f"{usage['pulls_per_month']} pulls, {usage['egress_gib']} GiB out a month; "
            f"prices as of {estimate.prices_as_of} ({estimate.prices_origin})"
        ),
        title_justify="left",
        caption_justify="left",
    )
    table.add_column("item")
    table.add_column("quantity", justify="right")
    table.add_column("unit price", justify="right")
    table.add_column("USD/month", justify="right")
    table.add_column("note", style="dim")
    for item in estimate.items:
        table.add_row(item.label, f"{item.quantity:,} {item.unit}", _unit_price(item), _money(item.amount), item.note)
    table.add_section()
    table.add_row("[bold]total[/bold]", "", "", f"[bold]{_money(estimate.total)}[/bold]", "")
    console.print(table)
    compare = Table(title="compared with", title_justify="left")
    compare.add_column("")
    compare.add_column("USD/month", justify="right")
    compare.add_column("note", style="dim")
    compare.add_row("this deployment", _money(estimate.total), estimate.rate_basis)
    for comparison in estimate.comparisons:
        compare.add_row(comparison.label, _money(comparison.monthly), comparison.note)
    console.print(compare)


def cmd_cost(args: argparse.Namespace) -> int:
    """`spotreg cost`: print the monthly estimate of args.config as a table, or as JSON with --json."""
    spec = load_spec(args.config)
    prices = load_prices(args.prices)
    spot: Decimal | None = args.spot_price
    instance_type: str | None = args.instance_type
    where = ""
    if args.spot_history:
        import boto3

        ec2 = boto3.session.Session().client(
            "ec2", region_name=spec.deployment.region, endpoint_url=getattr(args, "endpoint_url", None)
        )
        instance_type, zone, spot = spot_mean_from_history(spec, ec2, now=datetime.now(UTC))
        where = f" in {zone} (spot mean of 7 days)"
    estimate = estimate_monthly_cost(
        spec,
        prices,
        stored_gib=args.stored_gib,
        pushes_per_month=args.pushes_per_month,
        pulls_per_month=args.pulls_per_month,
        egress_gib=args.egress_gib,
        spot_price_per_hour=spot,
        instance_type=instance_type,
    )
    if args.json:
        sys.stdout.write(json.dumps(estimate.to_dict(), indent=2) + "\n")
    else:
        _print_table(spec, estimate, where)
    return 0
