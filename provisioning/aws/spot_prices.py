"""Spot price history as rows for the placement chooser (read-only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from provisioning.placement import PriceRow

PRODUCT = "Linux/UNIX"
HISTORY = timedelta(days=7)


def price_rows(
    ec2: Any, instance_types: Sequence[str], zones: Sequence[str], *, now: datetime, history: timedelta = HISTORY
) -> list[PriceRow]:
    """Spot prices of `instance_types` in `zones` over the last `history`."""
    rows: list[PriceRow] = []
    wanted = set(zones)
    paginator = ec2.get_paginator("describe_spot_price_history")
    pages = paginator.paginate(
        InstanceTypes=list(instance_types),
        ProductDescriptions=[PRODUCT],
        StartTime=now - history,
        EndTime=now,
        PaginationConfig={"MaxItems": 5000},
    )
    for page in pages:
        for item in page.get("SpotPriceHistory", []):
            if item["AvailabilityZone"] in wanted and item.get("ProductDescription", PRODUCT).startswith(PRODUCT):
                rows.append(
                    PriceRow(
                        item["InstanceType"],
                        item["AvailabilityZone"],
                        Decimal(item["SpotPrice"]),
                        item.get("Timestamp"),
                    )
                )
    return rows
