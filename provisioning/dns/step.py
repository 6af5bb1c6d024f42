"""The DNS step: the provider the spec's dns.mode names, and on the way down every provider's leftovers."""

from __future__ import annotations

from provisioning.changes import Change
from provisioning.dns.elastic_ip import ElasticIpDns
from provisioning.dns.leftovers import leftover_records
from provisioning.dns.namecheap import NamecheapDns
from provisioning.dns.route53 import Route53Dns
from provisioning.spec import Spec
from provisioning.step import Context, Run, Step

PROVIDERS: dict[str, Step] = {"eip": ElasticIpDns(), "route53": Route53Dns(), "namecheap": NamecheapDns()}


class DnsStep:
    """Whatever dns.mode says; mode "none" manages nothing."""

    name = "dns"

    def _provider(self, spec: Spec) -> Step | None:
        return PROVIDERS.get(spec.dns.mode)

    def resource(self, spec: Spec) -> str:
        provider = self._provider(spec)
        return "DNS" if provider is None else provider.resource(spec)

    def check(self, run: Run) -> None:
        provider = self._provider(run.spec)
        if provider is not None:
            provider.check(run)

    def plan(self, run: Run) -> list[Change]:
        provider = self._provider(run.spec)
        changes = [] if provider is None else provider.plan(run)
        return changes + leftover_records(run.ctx, keep=_own_record(run.spec), apply=False)

    def apply(self, run: Run) -> list[Change]:
        provider = self._provider(run.spec)
        changes = [] if provider is None else provider.apply(run)
        return changes + leftover_records(run.ctx, keep=_own_record(run.spec), apply=True)

    def remove(self, ctx: Context, *, delete_data: bool) -> list[Change]:
        """Every Route 53 record marked as this deployment's goes, whatever the mode is now (it may have
        changed since `up`); the mode's own provider says what it leaves."""
        removed = leftover_records(ctx, keep=None, apply=True)
        provider = self._provider(ctx.spec)
        return removed + ([] if provider is None else provider.remove(ctx, delete_data=delete_data))


def _own_record(spec: Spec) -> tuple[str, str] | None:
    """Where the spec keeps its record: (zone id, host name) in route53 mode, else nowhere."""
    if spec.dns.mode == "route53" and spec.dns.zone_id is not None and spec.dns.hostname is not None:
        return spec.dns.zone_id, spec.dns.hostname
    return None
