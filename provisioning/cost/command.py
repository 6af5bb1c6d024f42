"""`spotreg cost`: the estimate of a configuration, printed as a table or as JSON."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from provisioning.cost.capacity import capacity_of
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


def print_estimate(
    config: Path,
    *,
    prices: Path | None = None,
    stored_gib: Decimal = DEFAULT_STORED_GIB,
    pushes_per_month: int = DEFAULT_PUSHES,
    pulls_per_month: int = DEFAULT_PULLS,
    egress_gib: Decimal = DEFAULT_EGRESS_GIB,
    instance_type: str | None = None,
    spot_price: Decimal | None = None,
    spot_history: bool = False,
    endpoint_url: str | None = None,
    as_json: bool = False,
) -> int:
    """`spotreg cost`: print the monthly estimate of `config` as a table, or as JSON. With `spot_history`,
    the spot price is the best zone's mean of the last 7 days (EC2 at `endpoint_url`, default AWS)."""
    spec = load_spec(config)
    zone: str | None = None
    if spot_history:
        import boto3

        ec2 = boto3.session.Session().client("ec2", region_name=spec.deployment.region, endpoint_url=endpoint_url)
        instance_type, zone, spot_price = spot_mean_from_history(spec, ec2, now=datetime.now(UTC))
    estimate = estimate_monthly_cost(
        spec,
        load_prices(prices),
        stored_gib=stored_gib,
        pushes_per_month=pushes_per_month,
        pulls_per_month=pulls_per_month,
        egress_gib=egress_gib,
        spot_price_per_hour=spot_price,
        instance_type=instance_type,
        spot_zone=zone,
    )
    if as_json:
        capacity = capacity_of(estimate.instance_type)
        document = estimate.to_dict() | {"capacity": capacity.to_dict() if capacity else None}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        print_table(spec, estimate)
    return 0
