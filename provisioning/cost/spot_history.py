"""The spot price to assume, from EC2's spot price history of the last week (`spotreg cost --spot-history`)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from provisioning.cost.prices import PriceError
from provisioning.errors import InputProblem
from provisioning.spec import Spec


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
