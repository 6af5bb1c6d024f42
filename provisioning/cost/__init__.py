"""What a deployment costs a month, item by item, next to ECR and the original recipe's claim.

`estimate_monthly_cost` is a pure function of the Spec, a `PriceTable` and the usage it is told
(stored GiB, pushes, pulls, egress) plus one spot price. In real use that spot price is the mean of the
spot price history for the chosen zone and type (`spotreg cost --spot-history`); the on-demand price is
its ceiling and `instance.max_price`, when set, its cap. Money is `Decimal` throughout; each line item is
rounded to the cent and the total is the sum of the rounded items, so the table adds up.

Prices live in `provisioning/data/prices.json` with their date and sources; `load_prices(path)` lays a
user's file of the same shape (holding only the keys to change) over them.

- `prices`: the price table and loading it;
- `model`: usage, instance rate, line items, comparisons, the estimate;
- `line_items`, `comparisons`, `estimate`: computing them; `money`: rounding and printing amounts;
- `spot_history`: the spot price from EC2's history; `table`: the printed tables;
- `command`: `spotreg cost` (its options and the command).
"""

from provisioning.cost.command import print_estimate
from provisioning.cost.estimate import (
    DEFAULT_EGRESS_GIB,
    DEFAULT_PULLS,
    DEFAULT_PUSHES,
    DEFAULT_STORED_GIB,
    estimate_monthly_cost,
)
from provisioning.cost.line_items import SECONDS_PER_HOUR, health_checks_per_month
from provisioning.cost.model import Comparison, CostEstimate, LineItem
from provisioning.cost.money import CENT, THOUSAND
from provisioning.cost.prices import (
    BUILT_IN,
    Price,
    PriceError,
    PriceTable,
    RegionPrices,
    RegistryRequests,
    RequestCounts,
    built_in_prices_text,
    load_prices,
)
from provisioning.cost.spot_history import spot_mean_from_history

__all__ = [
    "BUILT_IN",
    "CENT",
    "DEFAULT_EGRESS_GIB",
    "DEFAULT_PULLS",
    "DEFAULT_PUSHES",
    "DEFAULT_STORED_GIB",
    "SECONDS_PER_HOUR",
    "THOUSAND",
    "Comparison",
    "CostEstimate",
    "LineItem",
    "Price",
    "PriceError",
    "PriceTable",
    "RegionPrices",
    "RegistryRequests",
    "RequestCounts",
    "built_in_prices_text",
    "estimate_monthly_cost",
    "health_checks_per_month",
    "load_prices",
    "print_estimate",
    "spot_mean_from_history",
]
