"""The estimate as `spotreg cost` prints it: a table of line items and a table of comparisons."""

from __future__ import annotations

from provisioning.cost.model import CostEstimate, LineItem
from provisioning.cost.money import THOUSAND, dollars, plain
from provisioning.spec import Spec


def _unit_price(item: LineItem) -> str:
    if item.unit == "requests":
        return f"${plain(item.unit_price * THOUSAND)}/1000"
    return f"${plain(item.unit_price)}"


def print_table(spec: Spec, estimate: CostEstimate, where: str) -> None:
    """Print `estimate` to stdout (120 columns when not a terminal); `where` follows the instance type."""
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
        table.add_row(item.label, f"{item.quantity:,} {item.unit}", _unit_price(item), dollars(item.amount), item.note)
    table.add_section()
    table.add_row("[bold]total[/bold]", "", "", f"[bold]{dollars(estimate.total)}[/bold]", "")
    console.print(table)
    compare = Table(title="compared with", title_justify="left")
    compare.add_column("")
    compare.add_column("USD/month", justify="right")
    compare.add_column("note", style="dim")
    compare.add_row("this deployment", dollars(estimate.total), estimate.rate_basis)
    for comparison in estimate.comparisons:
        compare.add_row(comparison.label, dollars(comparison.monthly), comparison.note)
    console.print(compare)
