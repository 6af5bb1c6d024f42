"""The cost model: line items that add up, the charges people forget, caps, price overrides, clear errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioning.cost import (
    PriceError,
    estimate_monthly_cost,
    health_checks_per_month,
    load_prices,
    spot_mean_from_history,
)
from provisioning.spec import Spec
from provisioning.spec_loading import spec_from_mapping
from spotreg.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "spotreg.toml"
REQUIRED_REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1")
DEFAULT_TYPES = ("t4g.micro", "t3.micro", "t4g.small", "t3.small", "t4g.nano", "t3.nano", "t3a.micro")
PRICES = load_prices(None)


def spec(**sections: dict[str, Any]) -> Spec:
    mapping: dict[str, Any] = {
        "deployment": {"name": "costs", "region": "us-east-1"},
        "storage": {"bucket": "spotreg-cost-images"},
        "network": {"operator_cidrs": ["203.0.113.7/32"]},
        "dns": {"mode": "none"},
        "registry": {"users": [{"name": "ci", "password": "env:SPOTREG_PASSWORD_CI"}]},
    }
    for name, values in sections.items():
        mapping[name] = {**mapping.get(name, {}), **values}
    return spec_from_mapping(mapping)


def estimate(the_spec: Spec | None = None, prices: Any = PRICES, **usage: Any) -> Any:
    arguments: dict[str, Any] = {
        "stored_gib": 5,
        "pushes_per_month": 100,
        "pulls_per_month": 1000,
        "egress_gib": 10,
        "spot_price_per_hour": Decimal("0.0031"),
    }
    arguments.update(usage)
    return estimate_monthly_cost(the_spec or spec(), prices, **arguments)


def test_the_price_file_has_its_date_sources_regions_and_the_default_types() -> None:
    assert datetime.strptime(PRICES.as_of, "%Y-%m-%d")
    assert PRICES.source and all(url.startswith("https://") for url in PRICES.source.values())
    for region in REQUIRED_REGIONS:
        for instance_type in DEFAULT_TYPES:
            assert PRICES.on_demand(region, instance_type) > 0
    assert PRICES.public_ipv4_per_hour == Decimal("0.005")


def test_line_items_add_up_to_the_total_to_the_cent() -> None:
    result = estimate()
    assert result.total == sum(item.amount for item in result.items)
    assert all(item.amount == item.amount.quantize(Decimal("0.01")) for item in result.items)
    expected = {"instance", "ebs", "public_ipv4", "s3_storage", "s3_health_checks", "egress"}
    assert {i.key for i in result.items} >= expected
    assert json.loads(json.dumps(result.to_dict()))["monthly_total"] == str(result.total)


def test_the_public_ipv4_address_is_charged_and_is_the_largest_item_on_spot() -> None:
    result = estimate()
    ipv4 = result.item("public_ipv4")
    assert ipv4.amount == Decimal("3.65")  # 730 h x $0.005
    assert ipv4.amount == max(item.amount for item in result.items)


def test_ebs_is_priced_by_the_spec_volume_size_and_region() -> None:
    small = estimate(spec(instance={"volume_gb": 8})).item("ebs")
    large = estimate(spec(instance={"volume_gb": 30})).item("ebs")
    assert (small.quantity, small.amount) == (Decimal(8), Decimal("0.64"))
    assert large.amount == Decimal("2.40")
    frankfurt = estimate(spec(deployment={"region": "eu-central-1"})).item("ebs")
    assert frankfurt.unit_price == Decimal("0.0952")


@pytest.mark.parametrize("interval", [60, 120, 300, 600, 3600, 43200])
def test_health_check_requests_scale_inversely_with_the_interval(interval: int) -> None:
    result = estimate(spec(registry={"health_interval_seconds": interval}))
    checks = result.item("s3_health_checks")
    assert checks.quantity == 730 * 3600 // interval  # one LIST per whole interval in a 730-hour month
    doubled = estimate(spec(registry={"health_interval_seconds": interval * 2})).item("s3_health_checks")
    assert doubled.quantity in (checks.quantity // 2, (checks.quantity + 1) // 2)
    the_spec = spec(registry={"health_interval_seconds": interval})
    assert checks.quantity == health_checks_per_month(the_spec, Decimal(730))


def test_the_registry_default_interval_of_10_s_would_cost_real_money() -> None:
    # spotreg's 300 s default against distribution's 10 s one: 30 times fewer LIST requests
    every_300 = estimate(spec(registry={"health_interval_seconds": 300})).item("s3_health_checks")
    every_60 = estimate(spec(registry={"health_interval_seconds": 60})).item("s3_health_checks")
    assert every_300.quantity == 8760 and every_300.amount == Decimal("0.04")
    assert every_60.quantity == 43800 and every_60.amount == Decimal("0.22")


def test_max_price_caps_the_instance_item() -> None:
    capped = estimate(spec(instance={"max_price": "0.002"}), spot_price_per_hour=Decimal("0.0031"))
    instance = capped.item("instance")
    assert instance.unit_price == Decimal("0.002")
    assert instance.amount == Decimal("1.46")
    assert "max_price" in capped.rate_basis


def test_the_on_demand_price_is_the_ceiling_and_the_default_without_a_spot_price() -> None:
    above = estimate(spot_price_per_hour=Decimal("0.05")).item("instance")
    assert above.unit_price == Decimal("0.0084")
    unknown = estimate(spot_price_per_hour=None)
    assert unknown.item("instance").unit_price == Decimal("0.0084")
    assert "no spot price" in unknown.rate_basis


def test_spot_is_compared_with_on_demand_ecr_and_the_recipe_claim() -> None:
    result = estimate(stored_gib=5, egress_gib=10)
    assert result.comparison("recipe_claim").monthly == Decimal("3.00")
    assert result.comparison("ecr").monthly == Decimal("1.40")  # 5 GB x $0.10 + 10 GB x $0.09, every GB charged
    assert result.comparison("on_demand").monthly > result.total


def test_every_egress_gb_is_charged_and_the_account_wide_allowance_is_shown_apart() -> None:
    within = estimate(egress_gib=100)
    beyond = estimate(egress_gib=150)
    assert (within.item("egress").quantity, within.item("egress").amount) == (Decimal(100), Decimal("9.00"))
    assert "account-wide" in within.item("egress").note
    assert within.total_with_free_egress == within.total - Decimal("9.00")
    assert beyond.item("egress").amount == Decimal("13.50")
    assert beyond.total_with_free_egress == beyond.total - Decimal("9.00")  # only 100 GB of it is free
    assert estimate(egress_gib=0).total_with_free_egress == estimate(egress_gib=0).total


@pytest.mark.parametrize(
    ("arguments", "label"),
    [
        ({"spot_price_per_hour": None}, "EC2 t4g.micro: on-demand ceiling (no spot price given)"),
        ({"spot_price_per_hour": Decimal("0.0031")}, "EC2 t4g.micro: spot at $0.0031/h (given)"),
        (
            {"spot_price_per_hour": Decimal("0.0032"), "spot_zone": "us-east-1a"},
            "EC2 t4g.micro: spot mean of 7 days in us-east-1a",
        ),
        (
            {"spot_price_per_hour": Decimal("0.05")},
            "EC2 t4g.micro: on-demand ceiling (below the spot at $0.05/h (given))",
        ),
    ],
)
def test_the_instance_line_says_what_price_it_assumes(arguments: dict[str, Any], label: str) -> None:
    result = estimate(**arguments)
    instance = result.item("instance")
    assert instance.label == label
    assert result.rate_basis in label
    assert "typical spot $0.0021-$0.0038/h (55-75% below on-demand $0.0084/h" in instance.note
    assert PRICES.spot_typical.as_of in instance.note
    assert result.typical_spot_per_hour == (Decimal("0.0084") * Decimal("0.25"), Decimal("0.0084") * Decimal("0.45"))


def test_a_family_without_a_typical_spot_range_says_so(tmp_path: Path) -> None:
    override = tmp_path / "prices.json"
    override.write_text(json.dumps({"regions": {"us-east-1": {"on_demand_per_hour": {"m7g.medium": 0.0408}}}}))
    result = estimate(spec(instance={"types": ["m7g.medium"]}), prices=load_prices(override))
    assert result.typical_spot_per_hour is None
    assert "no typical spot range stored for m7g" in result.item("instance").note


def test_route53_adds_the_hosted_zone_and_its_queries_only_when_the_spec_uses_it() -> None:
    route53 = spec(dns={"mode": "route53", "hostname": "registry.example.com", "zone_id": "Z0123456789ABCDEFGHIJ"})
    result = estimate(route53, pushes_per_month=100, pulls_per_month=1000)
    zone, queries = result.item("route53_zone"), result.item("route53_queries")
    assert (zone.quantity, zone.amount) == (Decimal(1), Decimal("0.50"))
    assert queries.quantity == 1100 and queries.unit_price == Decimal("0.40") / 1_000_000
    assert estimate(route53, pulls_per_month=10_000_000).item("route53_queries").amount == Decimal("4.00")
    assert not {"route53_zone", "route53_queries"} & {i.key for i in estimate().items}


def test_ghcr_and_docker_hub_rows_carry_their_date_and_source() -> None:
    result = estimate(stored_gib=10, egress_gib=20)
    for key in ("ecr", "ghcr", "ghcr_packages_rates", "docker_hub_personal", "docker_hub_pro", "docker_hub_team"):
        row = result.comparison(key)
        assert datetime.strptime(row.as_of, "%Y-%m-%d") and row.source.startswith("https://")
    assert result.comparison("ghcr").monthly == 0
    assert result.comparison("ghcr_packages_rates").monthly == Decimal("12.50")  # 10 x $0.25 + 20 x $0.50
    assert result.comparison("docker_hub_pro").monthly == Decimal("9.00")
    three_users = [{"name": n, "password": f"env:SPOTREG_PASSWORD_{n.upper()}"} for n in ("ci", "dev", "ops")]
    team = estimate(spec(registry={"users": three_users})).comparison("docker_hub_team")
    assert team.monthly == Decimal("45.00")


def test_an_override_file_can_change_a_docker_hub_plan(tmp_path: Path) -> None:
    override = tmp_path / "prices.json"
    override.write_text(json.dumps({"docker_hub": {"as_of": "2030-01-01", "plans": {"pro": {"per_month": 20}}}}))
    row = estimate(prices=load_prices(override)).comparison("docker_hub_pro")
    assert (row.monthly, row.as_of) == (Decimal("20.00"), "2030-01-01")


@settings(max_examples=60, deadline=None)
@given(
    egress=st.decimals(min_value=0, max_value=5000, places=1, allow_nan=False, allow_infinity=False),
    pulls=st.integers(min_value=0, max_value=1_000_000),
    spot=st.one_of(st.none(), st.decimals(min_value="0.001", max_value="0.02", places=4)),
    route53=st.booleans(),
)
def test_at_the_break_even_volume_ecr_and_this_deployment_cost_the_same(
    egress: Decimal, pulls: int, spot: Decimal | None, route53: bool
) -> None:
    dns = {"mode": "route53", "hostname": "r.example.com", "zone_id": "Z0123456789ABCDEFGHIJ"} if route53 else {}
    the_spec = spec(dns=dns) if route53 else spec()
    first = estimate(the_spec, egress_gib=egress, pulls_per_month=pulls, spot_price_per_hour=spot)
    volume = first.ecr_break_even_gib
    assert volume is not None and volume > 0
    there = estimate(the_spec, stored_gib=volume, egress_gib=egress, pulls_per_month=pulls, spot_price_per_hour=spot)
    assert there.ecr_break_even_gib == volume  # it does not depend on the volume stored
    assert abs(there.total - there.comparison("ecr").monthly) <= Decimal("0.02")  # cents and 0.1 GiB rounding
    usage = {"egress_gib": egress, "pulls_per_month": pulls, "spot_price_per_hour": spot}
    below = estimate(the_spec, stored_gib=max(volume - 1, 0), **usage)
    above = estimate(the_spec, stored_gib=volume + 1, **usage)
    assert below.comparison("ecr").monthly < below.total
    assert above.comparison("ecr").monthly > above.total


def test_an_override_file_changes_a_price_and_keeps_the_others(tmp_path: Path) -> None:
    override = tmp_path / "prices.json"
    override.write_text(
        json.dumps({"as_of": "2030-01-01", "regions": {"us-east-1": {"on_demand_per_hour": {"t4g.micro": 0.02}}}})
    )
    prices = load_prices(override)
    assert prices.as_of == "2030-01-01"
    assert prices.on_demand("us-east-1", "t4g.micro") == Decimal("0.02")
    assert prices.on_demand("us-east-1", "t3.micro") == Decimal("0.0104")
    result = estimate(prices=prices, spot_price_per_hour=None)
    assert result.item("instance").amount == Decimal("14.60")
    assert str(override) in result.prices_origin


def test_an_override_file_can_add_a_region(tmp_path: Path) -> None:
    region = json.loads(json.dumps(PRICES.regions["us-east-1"].model_dump(), default=str))
    override = tmp_path / "prices.json"
    override.write_text(json.dumps({"regions": {"ap-south-1": region}}))
    result = estimate(spec(deployment={"region": "ap-south-1"}), prices=load_prices(override))
    assert result.region == "ap-south-1"


def test_an_unknown_instance_type_is_a_clear_error() -> None:
    with pytest.raises(PriceError) as caught:
        estimate(spec(instance={"types": ["m7g.medium"]}))
    message = str(caught.value)
    assert "instance.types = 'm7g.medium'" in message
    assert "no on-demand price" in message and "--prices" in message


def test_an_unknown_region_is_a_clear_error() -> None:
    with pytest.raises(PriceError) as caught:
        estimate(spec(deployment={"region": "ap-south-1"}))
    assert "deployment.region = 'ap-south-1'" in str(caught.value)
    assert "us-east-1" in str(caught.value)


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ({"public_ipv4_per_hour": "a lot"}, "public_ipv4_per_hour"),
        ({"regions": {"us-east-1": {"egress_per_gb": -1}}}, "regions.us-east-1.egress_per_gb"),
        ({"public_ipv4_per_hr": 0.004}, "public_ipv4_per_hr"),
    ],
)
def test_a_bad_override_names_the_field(tmp_path: Path, content: dict[str, Any], field: str) -> None:
    override = tmp_path / "prices.json"
    override.write_text(json.dumps(content))
    with pytest.raises(PriceError) as caught:
        load_prices(override)
    assert f"{field} = " in str(caught.value)
    assert str(override) in str(caught.value)


def test_a_missing_or_broken_override_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PriceError, match=r"--prices = .*does not exist"):
        load_prices(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(PriceError, match="not valid JSON"):
        load_prices(broken)


MONEY = st.decimals(min_value=0, max_value=100_000, places=2, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(stored=st.tuples(MONEY, MONEY), egress=st.tuples(MONEY, MONEY))
def test_the_total_is_monotonic_in_stored_gib_and_egress(
    stored: tuple[Decimal, Decimal], egress: tuple[Decimal, Decimal]
) -> None:
    the_spec = spec()
    low = estimate(the_spec, stored_gib=min(stored), egress_gib=min(egress))
    high = estimate(the_spec, stored_gib=max(stored), egress_gib=max(egress))
    mixed = estimate(the_spec, stored_gib=max(stored), egress_gib=min(egress))
    assert low.total <= mixed.total <= high.total
    assert low.total == sum(item.amount for item in low.items)


def test_cost_prints_json_with_the_defaults(capsys: pytest.CaptureFixture[str], monkeypatch: Any) -> None:
    for variable in ("SPOTREG_INSTANCE__TYPES", "SPOTREG_DEPLOYMENT__REGION"):
        monkeypatch.delenv(variable, raising=False)
    assert main(["cost", "--config", str(EXAMPLE), "--json", "--spot-price", "0.0031"]) == 0
    printed = json.loads(capsys.readouterr().out)
    usage = {"stored_gib": "5", "pushes_per_month": "100", "pulls_per_month": "1000", "egress_gib": "10"}
    assert printed["usage"] == usage
    assert Decimal(printed["monthly_total"]) == sum(Decimal(i["amount"]) for i in printed["items"])
    assert printed["prices"]["as_of"] == PRICES.as_of
    keys = [i["key"] for i in printed["items"]]
    assert keys == [
        "instance", "ebs", "public_ipv4", "s3_storage", "s3_health_checks", "s3_requests_write", "s3_requests_read",
        "route53_zone", "route53_queries", "egress",
    ]  # fmt: skip
    assert printed["items"][0]["label"] == "EC2 t4g.micro: spot at $0.0031/h (given)"
    assert Decimal(printed["monthly_total"]) - Decimal(printed["monthly_total_with_free_egress"]) == Decimal("0.90")
    assert Decimal(printed["ecr_break_even_gib"]) > 0
    assert set(printed["typical_spot_per_hour"]) == {"low", "high"}
    rows = {c["key"]: c for c in printed["comparisons"]}
    assert set(rows) >= {"ecr", "ghcr", "ghcr_packages_rates", "docker_hub_personal", "docker_hub_pro"}
    assert all(row["as_of"] and row["source"] for row in rows.values())


def test_cost_prints_every_line_of_the_example(capsys: pytest.CaptureFixture[str], monkeypatch: Any) -> None:
    for variable in ("SPOTREG_INSTANCE__TYPES", "SPOTREG_DEPLOYMENT__REGION", "SPOTREG_DNS__MODE"):
        monkeypatch.delenv(variable, raising=False)
    assert main(["cost", "--config", str(EXAMPLE), "--stored-gib", "20"]) == 0
    out = capsys.readouterr().out
    expected = (
        "EC2 t4g.micro: on-demand ceiling",
        "typical spot $0.0021-$0.0038/h",
        "EBS gp3 root volume",
        "public IPv4 address",
        "S3 Standard storage",
        "health check",
        "Route 53 hosted zone",
        "Route 53 standard queries",
        "data transfer out to the internet",
        "account-wide",
        "total with the account-wide free 100 GB",
        "Amazon ECR",
        "GitHub Container Registry",
        "GHCR private, at GitHub Packages rates",
        "Docker Hub Personal",
        "Docker Hub Pro",
        "Docker Hub Team",
        "2014 recipe",
        "2024-12-10",
        "$3.65",
        "ECR is cheaper below",
    )
    for text in expected:
        assert text in out


@pytest.mark.parametrize("flag", ["--egress-gib", "--stored-gib", "--pulls-per-month", "--pushes-per-month"])
def test_cost_refuses_negative_usage_as_bad_usage(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["cost", "--config", "x.toml", flag, "-1"])
    assert exit_.value.code == 2 and flag in capsys.readouterr().err


class _FakeEc2:
    """describe_availability_zones and a describe_spot_price_history paginator, from fixed rows."""

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        self.rows = rows

    def describe_availability_zones(self) -> dict[str, Any]:
        return {"AvailabilityZones": [{"ZoneName": z} for z in ("us-east-1a", "us-east-1b")]}

    def get_paginator(self, name: str) -> Any:
        assert name == "describe_spot_price_history"
        rows = self.rows

        class Paginator:
            def paginate(self, **_: Any) -> list[dict[str, Any]]:
                items = [
                    {"InstanceType": t, "AvailabilityZone": z, "SpotPrice": p, "ProductDescription": "Linux/UNIX"}
                    for t, z, p in rows
                ]
                return [{"SpotPriceHistory": items}]

        return Paginator()


def test_the_spot_price_is_the_mean_of_the_best_zone_history() -> None:
    ec2 = _FakeEc2(
        [
            ("t4g.micro", "us-east-1a", "0.0030"),
            ("t4g.micro", "us-east-1a", "0.0034"),
            ("t4g.micro", "us-east-1b", "0.0020"),
            ("t4g.micro", "us-east-1b", "0.0060"),  # cheaper at times, but jumps about
        ]
    )
    instance_type, zone, mean = spot_mean_from_history(spec(), ec2, now=datetime.now(UTC))
    assert (instance_type, zone, mean) == ("t4g.micro", "us-east-1a", Decimal("0.0032"))
