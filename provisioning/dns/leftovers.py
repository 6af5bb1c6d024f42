"""This deployment's Route 53 records anywhere they should no longer be: after a change of dns.mode, of
the host name or of the zone, and on the way down. Found by the owner marker spotreg writes beside them.

A deployment whose spec does not use Route 53 never needs Route 53 rights: when the search is denied
there, the step says so in a note and goes on. One that does needs rights on its own zone only: when
listing every zone is denied, the search stays in the spec's zone.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from provisioning.changes import Change
from provisioning.dns.route53 import marked_records, remove_records
from provisioning.names import TAG_DEPLOYMENT
from provisioning.step import Context
from provisioning.tags import is_denied

KIND = "dns-record"
NOT_SEARCHED = "Route 53 not searched: these credentials may not list it, and the spec does not use it"


def leftover_records(ctx: Context, *, keep: tuple[str, str] | None, apply: bool) -> list[Change]:
    """Delete (with `apply`; else only say) every record marked as this deployment's in any hosted zone,
    except the one at `keep` (zone id, host name)."""
    route53, zone_id = ctx.clients.route53, ctx.spec.dns.zone_id
    try:
        marked = marked_records(route53)
    except ClientError as error:
        if not is_denied(error):
            raise
        if ctx.spec.dns.mode != "route53" or zone_id is None:
            return [Change(KIND, "(every hosted zone)", "keep", NOT_SEARCHED, note=True)]
        marked = marked_records(route53, [zone_id])  # may not list every zone: the spec's own, then
    found = [
        record
        for record, marker in marked
        if marker.get(TAG_DEPLOYMENT) == ctx.deployment and (record.zone_id, record.name) != keep
    ]
    changes = []
    for record in found:
        if apply:
            changes += remove_records(route53, record.zone_id, record.name, ctx.deployment)
        else:
            changes.append(
                Change(KIND, f"{record.name} in {record.zone_id}", "delete", "no longer this deployment's name")
            )
    return changes
