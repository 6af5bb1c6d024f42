"""`spotreg cost`: its options and the command that prints the estimate as a table or as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from provisioning.cost.estimate import (
    DEFAULT_EGRESS_GIB,
    DEFAULT_PULLS,
    DEFAULT_PUSHES,
    DEFAULT_STORED_GIB,
    estimate_monthly_cost,
)
from provisioning.cost.prices import load_prices
from provisioning.cost.spot_history import spot_mean_from_history
from provisioning.cost.table import print_table
from provisioning.spec_loading import load_spec


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
        print_table(spec, estimate, where)
    return 0
