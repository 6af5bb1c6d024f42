"""The estimate as `spotreg cost` prints it: a table of line items and a table of comparisons."""

from __future__ import annotations

from provisioning.cost.capacity import capacity_of
from provisioning.cost.line_items import MILLION
from provisioning.cost.model import CostEstimate, LineItem
from provisioning.cost.money import THOUSAND, dollars, plain
from provisioning.spec import Spec


def _unit_price(item: LineItem) -> str:
    if item.unit == "requests":
        return f"${plain(item.unit_price * THOUSAND)}/1000"
    if item.unit == "queries":
        return f"${plain(item.unit_price * MILLION)}/million"
    return f"${plain(item.unit_price)}"


def _break_even(estimate: CostEstimate) -> str:
    if estimate.ecr_break_even_gib is None:
        return "ECR storage is not dearer than S3 here: ECR is cheaper at any volume"
    return (
        f"ECR is cheaper below {estimate.ecr_break_even_gib:,} GiB stored, this deployment above it "
        "(same pushes, pulls and egress)"
    )


def print_table(spec: Spec, estimate: CostEstimate) -> None:
    """Print `estimate` to stdout (160 columns when not a terminal)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:  # piped or in CI: room for the notes rather than 80 columns
        console = Console(highlight=False, soft_wrap=False, width=160)
    usage = estimate.usage
    table = Table(
        title=f"spotreg cost: {spec.deployment.name!r} in {estimate.region}, {estimate.instance_type}",
        caption=(
            f"usage: {usage['stored_gib']} GiB stored, {usage['pushes_per_month']} pushes, "
            f"{usage['pulls_per_month']} pulls, {usage['egress_gib']} GiB out a month; "
            f"prices as of {estimate.prices_as_of} ({estimate.prices_origin})"
        ),
        title_justify="left",
        caption_justify="left",
    )
    table.add_column("item", no_wrap=True)
    table.add_column("quantity", justify="right")
    table.add_column("unit price", justify="right")
    table.add_column("USD/month", justify="right")
    table.add_column("note", style="dim")
    for item in estimate.items:
        table.add_row(item.label, f"{item.quantity:,} {item.unit}", _unit_price(item), dollars(item.amount), item.note)
    table.add_section()
    table.add_row("[bold]total[/bold]", "", "", f"[bold]{dollars(estimate.total)}[/bold]", "every egress GB charged")
    table.add_row(
        "total with the account-wide free 100 GB",
        "",
        "",
        dollars(estimate.total_with_free_egress),
        "if nothing else in the account uses the free data transfer",
    )
    console.print(table)
    compare = Table(title="compared with", title_justify="left")
    compare.add_column("", no_wrap=True)
    compare.add_column("USD/month", justify="right")
    compare.add_column("note", style="dim")
    compare.add_column("prices of", style="dim")
    compare.add_column("source", style="dim", overflow="fold")
    compare.add_row("this deployment", dollars(estimate.total), estimate.rate_basis, estimate.prices_as_of, "above")
    for comparison in estimate.comparisons:
        compare.add_row(
            comparison.label, dollars(comparison.monthly), comparison.note, comparison.as_of, comparison.source
        )
    console.print(compare)
    console.print(_break_even(estimate))
    capacity = capacity_of(estimate.instance_type)
    console.print(capacity.sentence() if capacity else f"capacity: not measured for {estimate.instance_type}")
