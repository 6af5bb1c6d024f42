"""Route 53: the host name's A record, with a TXT record beside it that says which deployment owns it
(records carry no tags, so the TXT record is the tag: `down` deletes only records it marks as ours)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from provisioning.aws.addresses import public_addresses, wait_for_public_ip
from provisioning.changes import Action, Change
from provisioning.errors import DnsError, InputError, InputProblem, OwnershipError
from provisioning.names import TAG_DEPLOYMENT, TAG_EXPIRES, TAG_RUN
from provisioning.spec import Spec
from provisioning.step import Context, Run
from provisioning.tags import error_code, is_code

TTL = 60
REFUSED_CODES = ("InvalidChangeBatch", "InvalidInput")  # Route 53 read the change and refused it
MARKER_KEYS = (TAG_DEPLOYMENT, TAG_RUN, TAG_EXPIRES)


@dataclass(frozen=True)
class RecordSet:
    zone_id: str
    name: str  # without the trailing dot
    type: str
    ttl: int | None
    values: tuple[str, ...]

    def resource_record_set(self) -> dict[str, Any]:
        return {
            "Name": f"{self.name}.",
            "Type": self.type,
            "TTL": self.ttl if self.ttl is not None else TTL,
            "ResourceRecords": [{"Value": v} for v in self.values],
        }


def marker_value(tags: Mapping[str, str]) -> str:
    """The TXT value that marks a record as a deployment's: spotreg's tags, quoted."""
    return '"' + " ".join(f"{key}={tags[key]}" for key in MARKER_KEYS if key in tags) + '"'


def parse_marker(value: str) -> dict[str, str]:
    text = value.strip().strip('"')
    found = {}
    for part in text.split():
        key, sep, val = part.partition("=")
        if sep and key in MARKER_KEYS:
            found[key] = val
    return found


def _bare(name: str) -> str:
    return name.rstrip(".").lower()


def zone_name(route53: Any, zone_id: str) -> str:
    return _bare(route53.get_hosted_zone(Id=zone_id)["HostedZone"]["Name"])


def check_zone(route53: Any, zone_id: str, hostname: str) -> None:
    """The host name must lie in the hosted zone (InputError naming dns.hostname otherwise)."""
    try:
        name = zone_name(route53, zone_id)
    except Exception as error:
        if getattr(error, "response", {}).get("Error", {}).get("Code") == "NoSuchHostedZone":
            raise InputError([InputProblem("dns.zone_id", zone_id, "no such hosted zone")]) from error
        raise
    if hostname != name and not hostname.endswith(f".{name}"):
        raise InputError([InputProblem("dns.hostname", hostname, f"is not in the hosted zone {name} ({zone_id})")])


def records_at(route53: Any, zone_id: str, hostname: str) -> dict[str, RecordSet]:
    """The record sets (by type) at exactly `hostname` in the zone."""
    found: dict[str, RecordSet] = {}
    answer = route53.list_resource_record_sets(HostedZoneId=zone_id, StartRecordName=hostname, MaxItems="20")
    for item in answer.get("ResourceRecordSets", []):
        if _bare(item["Name"]) != _bare(hostname):
            continue
        if "AliasTarget" in item or "SetIdentifier" in item:
            continue  # alias and routing-policy records: never spotreg's
        values = tuple(r["Value"] for r in item.get("ResourceRecords", []))
        found[item["Type"]] = RecordSet(zone_id, _bare(hostname), item["Type"], item.get("TTL"), values)
    return found


def owner_of(records: Mapping[str, RecordSet]) -> dict[str, str]:
    txt = records.get("TXT")
    if txt is None:
        return {}
    for value in txt.values:
        marker = parse_marker(value)
        if TAG_DEPLOYMENT in marker:
            return marker
    return {}


def _check_owner(
    records: Mapping[str, RecordSet], hostname: str, deployment: str, own_addresses: Collection[str] = ()
) -> None:
    """OwnershipError when the name is another deployment's, or holds an A or CNAME record without
    spotreg's marker (someone's own record: `up` would overwrite it and `down` delete it). An
    unmarked A record pointing only at `own_addresses` (this deployment's instance or Elastic IP,
    written by its boot after an `up` that stopped before the DNS step) is this deployment's."""
    owner = owner_of(records).get(TAG_DEPLOYMENT)
    if owner is not None and owner != deployment:
        raise OwnershipError("DNS record", hostname, f"is marked as the spotreg deployment {owner!r}'s")
    if owner is not None:
        return
    if "CNAME" in records:
        values = ", ".join(records["CNAME"].values)
        raise OwnershipError(
            "DNS record",
            hostname,
            f"has a CNAME record ({values}) without spotreg's TXT marker: spotreg will not overwrite or delete "
            "a record it did not make; choose another dns.hostname or remove the record yourself",
        )
    a = records.get("A")
    if a is not None and not (a.values and set(a.values) <= set(own_addresses)):
        raise OwnershipError(
            "DNS record",
            hostname,
            f"has an A record ({', '.join(a.values)}) without spotreg's TXT marker: spotreg will not overwrite or "
            "delete a record it did not make; choose another dns.hostname or remove the record yourself",
        )


def check_owner(
    route53: Any, zone_id: str, hostname: str, deployment: str, own_addresses: Collection[str] = ()
) -> None:
    """OwnershipError when the name's owner marker names another deployment, or an unmarked A or
    CNAME record is there (see _check_owner)."""
    _check_owner(records_at(route53, zone_id, hostname), hostname, deployment, own_addresses)


def record_changes(
    route53: Any, zone_id: str, hostname: str, ip: str | None, tags: Mapping[str, str], *, apply: bool
) -> Change:
    """UPSERT the A record (to `ip`) and the owner TXT record when either differs."""
    records = records_at(route53, zone_id, hostname)
    _check_owner(records, hostname, tags[TAG_DEPLOYMENT], () if ip is None else (ip,))
    want_txt = marker_value(tags)
    current_a = records.get("A")
    drift = []
    if ip is None:
        drift.append("A record once the instance has an address")
    elif current_a is None or current_a.values != (ip,):
        drift.append(f"A -> {ip}" + ("" if current_a is None else f" (was {', '.join(current_a.values)})"))
    current_txt = records.get("TXT")
    txt_values = () if current_txt is None else current_txt.values
    if want_txt not in txt_values:
        drift.append("owner TXT record")
    action: Action = "keep" if not drift else ("create" if current_a is None else "update")
    if apply and drift and ip is not None:
        others = tuple(v for v in txt_values if TAG_DEPLOYMENT not in parse_marker(v))
        changes = [
            {
                "Action": "UPSERT",
                "ResourceRecordSet": RecordSet(zone_id, hostname, "A", TTL, (ip,)).resource_record_set(),
            },
            {
                "Action": "UPSERT",
                "ResourceRecordSet": RecordSet(
                    zone_id, hostname, "TXT", TTL, (*others, want_txt)
                ).resource_record_set(),
            },
        ]
        route53.change_resource_record_sets(
            HostedZoneId=zone_id, ChangeBatch={"Comment": "spotreg up", "Changes": changes}
        )
    return Change("dns-record", f"{hostname} in {zone_id}", action, ", ".join(drift))


def remove_records(route53: Any, zone_id: str, hostname: str, deployment: str) -> list[Change]:
    """Delete the A record and the owner marker, only when the marker names this deployment."""
    records = records_at(route53, zone_id, hostname)
    if owner_of(records).get(TAG_DEPLOYMENT) != deployment:
        return []
    batch = []
    if "A" in records:
        batch.append({"Action": "DELETE", "ResourceRecordSet": records["A"].resource_record_set()})
    txt = records["TXT"]
    others = tuple(v for v in txt.values if TAG_DEPLOYMENT not in parse_marker(v))
    if others:
        batch.append(
            {
                "Action": "UPSERT",
                "ResourceRecordSet": RecordSet(zone_id, hostname, "TXT", txt.ttl, others).resource_record_set(),
            }
        )
    else:
        batch.append({"Action": "DELETE", "ResourceRecordSet": txt.resource_record_set()})
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Comment": "spotreg down", "Changes": batch})
    return [Change("dns-record", f"{hostname} in {zone_id}", "delete")]


def marked_records(route53: Any, zone_ids: list[str] | None = None) -> list[tuple[RecordSet, dict[str, str]]]:
    """Every TXT record carrying a spotreg marker, in the given zones (default: every hosted zone). A
    zone that does not exist (deleted since `up`, or named by a spec whose dns.mode does not use it)
    holds no records."""
    if zone_ids is None:
        zone_ids = []
        for page in route53.get_paginator("list_hosted_zones").paginate():
            zone_ids.extend(z["Id"].rsplit("/", 1)[-1] for z in page.get("HostedZones", []))
    found = []
    for zone_id in zone_ids:
        try:
            items = [
                item
                for page in route53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id)
                for item in page.get("ResourceRecordSets", [])
            ]
        except ClientError as error:
            if is_code(error, "NoSuchHostedZone"):
                continue
            raise
        for item in items:
            if item["Type"] != "TXT":
                continue
            for record in item.get("ResourceRecords", []):
                marker = parse_marker(record["Value"])
                if TAG_DEPLOYMENT in marker:
                    values = tuple(r["Value"] for r in item["ResourceRecords"])
                    found.append((RecordSet(zone_id, _bare(item["Name"]), "TXT", item.get("TTL"), values), marker))
                    break
    return found


class Route53Dns:
    """The host name's A record in the spec's hosted zone, pointing at the instance's public address."""

    name = "dns"

    def resource(self, spec: Spec) -> str:
        return f"DNS of {spec.dns.hostname}"

    def check(self, run: Run) -> None:
        zone_id, hostname = _zone_and_name(run.spec)
        check_zone(run.clients.route53, zone_id, hostname)
        owned = public_addresses(run.clients.ec2, run.ctx.deployment)
        check_owner(run.clients.route53, zone_id, hostname, run.ctx.deployment, own_addresses=owned)

    def _changes(self, run: Run, ip: str | None, *, apply: bool) -> list[Change]:
        zone_id, hostname = _zone_and_name(run.spec)
        return [record_changes(run.clients.route53, zone_id, hostname, ip, run.ctx.tags, apply=apply)]

    def plan(self, run: Run) -> list[Change]:
        return self._changes(run, None if run.facts is None else run.facts.public_ip, apply=False)

    def apply(self, run: Run) -> list[Change]:
        ip = wait_for_public_ip(run, self.name)
        try:
            return self._changes(run, ip, apply=True)
        except ClientError as error:
            if not is_code(error, *REFUSED_CODES):
                raise
            message = str(error.response.get("Error", {}).get("Message", ""))
            raise DnsError("route53", str(run.spec.dns.hostname), [message or error_code(error)]) from error

    def remove(self, ctx: Context, *, delete_data: bool) -> list[Change]:
        return []  # the DNS step removes every record of the deployment (dns/leftovers.py)


def _zone_and_name(spec: Spec) -> tuple[str, str]:
    assert spec.dns.zone_id is not None and spec.dns.hostname is not None  # the Spec's rules
    return spec.dns.zone_id, spec.dns.hostname
