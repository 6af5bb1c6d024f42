"""The DNS step: the provider the spec's dns.mode names, and on the way down every provider's leftovers."""

from __future__ import annotations

from provisioning.changes import Change
from provisioning.dns.elastic_ip import ElasticIpDns
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
        return [] if provider is None else provider.plan(run)

    def apply(self, run: Run) -> list[Change]:
        provider = self._provider(run.spec)
        return [] if provider is None else provider.apply(run)

    def remove(self, ctx: Context, *, delete_data: bool) -> list[Change]:
        """Route 53 records marked as this deployment's go whatever the mode is now (it may have
        changed since `up`); the mode's own provider says what it leaves."""
        removed = PROVIDERS["route53"].remove(ctx, delete_data=delete_data)
        if ctx.spec.dns.mode == "namecheap":
            removed += PROVIDERS["namecheap"].remove(ctx, delete_data=delete_data)
        return removed
