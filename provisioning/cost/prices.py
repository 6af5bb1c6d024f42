"""The price table: every price the estimate uses, from `provisioning/data/prices.json` and a user's file.

`load_prices(path)` lays a user's file of the same shape (holding only the keys to change) over the
built-in prices and validates the result; a missing or malformed price is a `PriceError` naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from provisioning.errors import InputError, InputProblem

BUILT_IN = "built-in prices (provisioning/data/prices.json)"


class PriceError(InputError):
    """A price the estimate needs is missing or malformed: names the field, the value and the rule."""


Price = Decimal  # USD; pydantic checks each is >= 0


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RequestCounts(_Model):
    """S3 requests of one operation: class A (PUT, COPY, POST, LIST) and class B (GET, HEAD)."""

    class_a: Decimal = Field(ge=0)
    class_b: Decimal = Field(ge=0)


class RegistryRequests(_Model):
    note: str = ""
    per_push: RequestCounts
    per_pull: RequestCounts
    per_health_check: Decimal = Field(ge=0, description="LIST (class A) requests per storage health check")


class RegionPrices(_Model):
    """The prices that differ by region."""

    on_demand_per_hour: dict[str, Price] = Field(min_length=1)
    ebs_gp3_per_gb_month: Price = Field(ge=0)
    s3_standard_per_gb_month: Price = Field(ge=0)
    s3_class_a_per_1000: Price = Field(ge=0)
    s3_class_b_per_1000: Price = Field(ge=0)
    egress_per_gb: Price = Field(ge=0)
    ecr_storage_per_gb_month: Price = Field(ge=0)


class SavingsRange(_Model):
    """A typical spot saving against on-demand, as fractions (0.6 = 60% below on-demand)."""

    low: Decimal = Field(ge=0, le=1)
    high: Decimal = Field(ge=0, le=1)


class _Dated(_Model):
    """A group of prices with its own date and source page."""

    as_of: str
    source: str
    note: str = ""


class SpotTypical(_Dated):
    savings_vs_on_demand: dict[str, SavingsRange] = Field(description="by instance family (the type before the dot)")


class Route53Prices(_Dated):
    hosted_zone_per_month: Price = Field(ge=0)
    standard_queries_per_million: Price = Field(ge=0)


class GhcrPrices(_Dated):
    container_registry_currently_free: bool
    packages_storage_per_gb_month: Price = Field(ge=0)
    packages_transfer_out_per_gb: Price = Field(ge=0)


class DockerHubPlan(_Model):
    per_month: Price = Field(ge=0)
    per_user: bool = False
    note: str = ""


class DockerHubPrices(_Dated):
    faq: str = ""
    plans: dict[str, DockerHubPlan] = Field(min_length=1)


class PriceTable(_Model):
    """Every price the estimate uses, with the date they were taken and where from."""

    as_of: str
    currency: str = "USD"
    note: str = ""
    source: dict[str, str]
    hours_per_month: Decimal = Field(gt=0)
    public_ipv4_per_hour: Price = Field(ge=0)
    free_egress_gb_per_month: Decimal = Field(ge=0)
    recipe_claim_per_month: Price = Field(ge=0)
    recipe_claim_note: str = ""
    registry_requests: RegistryRequests
    spot_typical: SpotTypical
    route53: Route53Prices
    ghcr: GhcrPrices
    docker_hub: DockerHubPrices
    regions: dict[str, RegionPrices] = Field(min_length=1)
    origin: str = BUILT_IN

    def region(self, name: str) -> RegionPrices:
        """The prices of region `name`, or a PriceError naming deployment.region."""
        try:
            return self.regions[name]
        except KeyError:
            raise PriceError(
                [
                    InputProblem(
                        "deployment.region",
                        name,
                        f"no prices for this region in {self.origin} (known: {', '.join(sorted(self.regions))}); "
                        f"add regions.{name} in a file passed with --prices",
                    )
                ]
            ) from None

    def on_demand(self, region: str, instance_type: str, field_name: str = "instance.types") -> Decimal:
        """The on-demand USD/hour of `instance_type` in `region`, or a PriceError naming the field."""
        prices = self.region(region).on_demand_per_hour
        try:
            return prices[instance_type]
        except KeyError:
            raise PriceError(
                [
                    InputProblem(
                        field_name,
                        instance_type,
                        f"no on-demand price for this instance type in {region} in {self.origin} "
                        f"(known: {', '.join(sorted(prices))}); "
                        f"add regions.{region}.on_demand_per_hour.{instance_type} in a file passed with --prices",
                    )
                ]
            ) from None


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` laid over `base`: nested objects merge, anything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _field_of(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _read_json(text: str, origin: str) -> dict[str, Any]:
    try:
        data = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as error:
        raise PriceError([InputProblem("--prices", origin, f"not valid JSON: {error}")]) from None
    if not isinstance(data, dict):
        raise PriceError([InputProblem("--prices", origin, "must hold a JSON object like prices.json")])
    return data


def built_in_prices_text() -> str:
    """The text of the prices file shipped with spotreg."""
    return resources.files("provisioning").joinpath("data/prices.json").read_text(encoding="utf-8")


def load_prices(path: Path | None = None) -> PriceTable:
    """The built-in price table, with the keys of the JSON file at `path` (if any) laid over it."""
    data = _read_json(built_in_prices_text(), BUILT_IN)
    origin = BUILT_IN
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PriceError([InputProblem("--prices", str(path), "the file does not exist")]) from None
        except (OSError, UnicodeDecodeError) as error:  # a directory, no permission, not UTF-8
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            raise PriceError([InputProblem("--prices", str(path), f"cannot be read: {reason}")]) from None
        data = _merge(data, _read_json(text, str(path)))
        origin = f"{path} over the built-in prices"
    data["origin"] = origin
    try:
        return PriceTable.model_validate(data)
    except ValidationError as error:
        problems = [
            InputProblem(_field_of(item["loc"]), repr(item.get("input")), f"{item['msg']} (in {origin})")
            for item in error.errors(include_url=False)
        ]
        raise PriceError(problems) from None
