"""Namecheap dynamic DNS (dns.mode = "namecheap"): the instance points the name at itself on every boot
(the boot script's `namecheap_update`, with the password from SSM); `up` and `down` only report it."""

from __future__ import annotations

from provisioning.changes import Change
from provisioning.spec import Spec
from provisioning.step import Context, Run

KIND = "dns-record"


class NamecheapDns:
    """Nothing to make from here: the name follows the instance's address from its boot."""

    name = "dns"

    def resource(self, spec: Spec) -> str:
        return f"Namecheap DNS of {spec.dns.hostname}"

    def check(self, run: Run) -> None:
        """Nothing to check from here: the password was resolved with the other secrets."""

    def plan(self, run: Run) -> list[Change]:
        return [Change(KIND, str(run.spec.dns.hostname), "keep", "Namecheap: the instance updates it on every boot")]

    def apply(self, run: Run) -> list[Change]:
        return self.plan(run)

    def remove(self, ctx: Context, *, delete_data: bool) -> list[Change]:
        hostname = str(ctx.spec.dns.hostname)
        detail = "Namecheap keeps it pointing at the old address: dynamic DNS cannot delete it"
        return [Change(KIND, hostname, "keep", detail, note=True)]
