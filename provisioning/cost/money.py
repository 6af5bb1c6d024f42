"""Money as the estimate writes it: `Decimal` rounded to the cent, quantities without trailing zeros."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
THOUSAND = Decimal(1000)


def cents(amount: Decimal) -> Decimal:
    """`amount` rounded to the cent (half up)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def plain(value: Decimal) -> Decimal:
    """Drop trailing zeros without switching to exponent notation."""
    normal = value.normalize()
    return normal.quantize(Decimal(1)) if normal == normal.to_integral() else normal


def dollars(value: Decimal) -> str:
    """`$1,234.50`: an amount as the table and the notes print it."""
    return f"${value:,.2f}"
