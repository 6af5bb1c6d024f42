"""`spotreg cost` states the measured capacity of the instance type: pulls a minute, sustained and bursting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provisioning.cost.capacity import capacity_of
from provisioning.cost.command import print_estimate
from provisioning.cost.prices import load_prices

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "spotreg.toml"


def priced_types() -> set[str]:
    return {t for region in load_prices().regions.values() for t in region.on_demand_per_hour}


def test_every_priced_instance_type_has_a_capacity() -> None:
    for instance_type in priced_types():
        capacity = capacity_of(instance_type)
        assert capacity is not None, instance_type
        assert 0 < capacity.sustained_per_minute <= capacity.burst_per_minute, capacity


def test_sustained_capacity_follows_the_baseline_share_of_the_cpu() -> None:
    nano, micro = capacity_of("t4g.nano"), capacity_of("t4g.micro")
    assert nano is not None and micro is not None
    assert (nano.baseline_cores, micro.baseline_cores) == (0.1, 0.2)  # 2 vCPUs at 5 % and 10 %
    assert micro.sustained_per_minute == pytest.approx(2 * nano.sustained_per_minute, rel=0.02)
    assert micro.burst_per_minute == nano.burst_per_minute  # both burst to their 2 vCPUs
    assert capacity_of("m7g.large") is None


def test_the_table_and_the_json_state_it(capsys: pytest.CaptureFixture[str]) -> None:
    micro = capacity_of("t4g.micro")
    assert micro is not None
    print_estimate(EXAMPLE, instance_type="t4g.micro")
    table = " ".join(capsys.readouterr().out.split())
    assert f"a t4g.micro serves about {micro.sustained_per_minute:,} pulls a minute sustained" in table
    assert f"at least {micro.burst_per_minute:,} while it bursts" in table
    print_estimate(EXAMPLE, instance_type="t4g.micro", as_json=True)
    assert json.loads(capsys.readouterr().out)["capacity"] == micro.to_dict()


def test_the_readme_capacity_table_is_what_spotreg_cost_says() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Capacity\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:-1] for line in section.splitlines() if line.startswith("| t4g.")]
    assert len(rows) >= 3
    for instance, baseline, _direct10, _direct5, front10, burst in (map(str.strip, row) for row in rows):
        capacity = capacity_of(instance.split(",")[0])
        assert capacity is not None, instance
        assert float(baseline) == capacity.baseline_cores
        assert int(front10.strip("~").replace(",", "")) == capacity.sustained_per_minute, instance
        assert int(burst.split("/")[-1].strip().replace(",", "")) == capacity.burst_per_minute, instance
