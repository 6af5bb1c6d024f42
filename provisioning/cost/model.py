"""What an estimate is made of: the usage and instance rate it assumes, its line items, its comparisons."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from provisioning.cost.prices import PriceError
from provisioning.errors import InputProblem


@dataclass(frozen=True)
class Usage:
    """A month of use: GiB stored in S3, image pushes and pulls, GiB pulled out to the internet."""

    stored_gib: Decimal
    pushes_per_month: int
    pulls_per_month: int
    egress_gib: Decimal

    @classmethod
    def checked(
        cls,
        stored_gib: Decimal | float | int,
        pushes_per_month: int,
        pulls_per_month: int,
        egress_gib: Decimal | float | int,
    ) -> Usage:
        """The usage, or a PriceError naming the first amount below zero."""
        stored = Decimal(str(stored_gib))
        egress = Decimal(str(egress_gib))
        for name, value in (("stored_gib", stored), ("egress_gib", egress)):
            if value < 0:
                raise PriceError([InputProblem(name, str(value), "must be zero or more")])
        for name, count in (("pushes_per_month", pushes_per_month), ("pulls_per_month", pulls_per_month)):
            if count < 0:
                raise PriceError([InputProblem(name, str(count), "must be zero or more")])
        return cls(stored, pushes_per_month, pulls_per_month, egress)

    def as_dict(self) -> dict[str, Decimal | int]:
        return {
            "stored_gib": self.stored_gib,
            "pushes_per_month": self.pushes_per_month,
            "pulls_per_month": self.pulls_per_month,
            "egress_gib": self.egress_gib,
        }


@dataclass(frozen=True)
class InstanceRate:
    """The USD/hour charged for `instance_type`, why that one (`basis`), and its on-demand price."""

    instance_type: str
    hourly: Decimal
    basis: str
    on_demand: Decimal


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
    as_of: str = ""
    source: str = ""


@dataclass(frozen=True)
class CostEstimate:
    """A monthly estimate: line items that add up to `total`, and comparisons beside it.

    `total` charges every GB of egress; `total_with_free_egress` counts the account-wide free allowance as
    this deployment's. `ecr_break_even_gib`: below this many GiB stored ECR is cheaper (None: never).
    `typical_spot_per_hour`: the stored typical spot range of the instance family (None: not stored)."""

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
    total_with_free_egress: Decimal = Decimal(0)
    ecr_break_even_gib: Decimal | None = None
    typical_spot_per_hour: tuple[Decimal, Decimal] | None = None
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
            "monthly_total_with_free_egress": str(self.total_with_free_egress),
            "ecr_break_even_gib": None if self.ecr_break_even_gib is None else str(self.ecr_break_even_gib),
            "typical_spot_per_hour": None
            if self.typical_spot_per_hour is None
            else {"low": str(self.typical_spot_per_hour[0]), "high": str(self.typical_spot_per_hour[1])},
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
                {
                    "key": c.key,
                    "label": c.label,
                    "monthly": str(c.monthly),
                    "note": c.note,
                    "as_of": c.as_of,
                    "source": c.source,
                }
                for c in self.comparisons
            ],
            "usage": {k: str(v) for k, v in self.usage.items()},
            "prices": {"as_of": self.prices_as_of, "origin": self.prices_origin, "source": dict(self.sources)},
        }
