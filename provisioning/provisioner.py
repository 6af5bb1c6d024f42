"""Orchestration: `plan`, `up`, `status` and `down` of one deployment, and `sweep` of test runs.

The Provisioner runs the steps (provisioning/step.py) in order for `plan` and `up`, and in reverse for
`down`. It keeps no state of its own between calls: every call looks at AWS (tags and deterministic
names) first.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, NamedTuple

import requests
from botocore.exceptions import BotoCoreError, ClientError

from provisioning import names
from provisioning.aws.addresses import public_addresses
from provisioning.aws.bucket import BucketStep
from provisioning.aws.elastic_ip import AddressStep, deployment_addresses
from provisioning.aws.image import ImageStep
from provisioning.aws.instance import InstanceStep, live_instances
from provisioning.aws.legacy_user import LegacyUserStep
from provisioning.aws.parameters import ParametersStep
from provisioning.aws.role import RoleStep
from provisioning.aws.security_group import SecurityGroupStep
from provisioning.changes import Change
from provisioning.clients import AwsClients, make_clients
from provisioning.dns.route53 import records_at
from provisioning.dns.step import DnsStep
from provisioning.errors import (
    Interrupted,
    LockHeld,
    PermissionDenied,
    SpotregError,
    StepFailed,
    credentials_or_connection,
    up_hint,
)
from provisioning.health import Healthy, api_url
from provisioning.health.deployment import wait_for_deployment
from provisioning.inventory import Inventory, take_inventory
from provisioning.lock import DeploymentLock, whoami
from provisioning.records import InstanceFacts
from provisioning.results import IncompleteDown, Plan, Removed, Status, UpReport
from provisioning.secrets import resolve_secrets
from provisioning.spec import Spec
from provisioning.step import Context, Run, Step
from provisioning.sweeper import Found, sweep
from provisioning.tags import is_denied
from provisioning.waits import Progress, Waits

__all__ = [
    "STEPS",
    "AwsClients",
    "Found",
    "Plan",
    "Provisioner",
    "Removed",
    "Status",
    "UpReport",
    "make_clients",
    "sweep",
]

# The steps of `up`, in order; `down` runs them in reverse.
STEPS: tuple[Step, ...] = (
    BucketStep(),
    AddressStep(),
    ParametersStep(),
    RoleStep(),
    LegacyUserStep(),
    SecurityGroupStep(),
    ImageStep(),
    InstanceStep(),
    DnsStep(),
)


# AWS operations that only read; any other that succeeds changed something.
READ_OPERATIONS = ("Describe", "Get", "List", "Head")


def expiry_tag(expires: datetime | str | None) -> str | None:
    if expires is None or isinstance(expires, str):
        return expires
    return expires.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class DnsFacts(NamedTuple):
    text: str | None
    values: tuple[str, ...] | None
    elsewhere: str | None


class Provisioner:
    """One deployment's lifecycle against the AWS behind `clients` (real, moto, or moto's server).

    `run_id` and `expires` tag everything for test runs (what `sweep` finds); `progress(line)` hears
    about every step and every wait ("<step>: <message>"); `environ` resolves `env:` secret references
    (default os.environ); `waits` bounds every wait; `steps` are the steps in order (a test may wrap
    one to inject a fault); `now` is the clock.
    """

    def __init__(
        self,
        spec: Spec,
        clients: AwsClients,
        run_id: str | None = None,
        expires: datetime | str | None = None,
        progress: Progress | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        waits: Waits | None = None,
        http: requests.Session | None = None,
        now: Callable[[], datetime] | None = None,
        steps: Sequence[Step] = STEPS,
    ) -> None:
        if clients.region != spec.deployment.region:
            raise ValueError(
                f"clients are for {clients.region}, the spec's deployment.region is {spec.deployment.region}"
            )
        self.spec = spec
        self.clients = clients
        self.environ = os.environ if environ is None else environ
        self.http = http
        self.steps = tuple(steps)
        self.ctx = Context(
            spec=spec,
            clients=clients,
            tags=names.deployment_tags(spec, run_id, expiry_tag(expires)),
            waits=waits or Waits(),
            progress=self._heard,
            now=now or (lambda: datetime.now(UTC)),
        )
        self._progress = progress
        self._last_heard: str | None = None  # what was in flight, for an interruption's message
        self.last_up: UpReport | None = None

    def _heard(self, line: str) -> None:
        self._last_heard = line
        if self._progress is not None:
            self._progress(line)

    @property
    def deployment(self) -> str:
        return self.spec.deployment.name

    def _resource_of(self, phase: str) -> str:
        """What a step (or another phase) works on, in words, for a denial's message."""
        for step in self.steps:
            if step.name == phase:
                return step.resource(self.spec)
        deployment = f"deployment {self.deployment}"
        return {
            "preflight": deployment,
            "inventory": f"resources of {deployment}",
            "status": f"instance, address and DNS of {deployment}",
            "health": f"SSM parameters {names.parameter_prefix(self.spec)}/*",
            "lock": f"SSM parameter {names.lock_parameter(self.spec)}",
        }.get(phase, phase)

    @contextmanager
    def _phase(self, phase: str) -> Iterator[None]:
        """Run one step (or phase): SpotregErrors get its name; credentials missing or rejected become
        CredentialsError, an unreachable endpoint AwsUnreachable, denials PermissionDenied; any other
        failure becomes StepFailed naming it."""
        try:
            yield
        except KeyboardInterrupt:  # SIGINT, or SIGTERM turned into one by the CLI
            interrupted = Interrupted(phase, self._last_heard)
            interrupted.step = phase
            raise interrupted from None
        except SpotregError as error:
            if error.step is None:
                error.step = phase
            raise
        except (ClientError, BotoCoreError) as error:
            known = credentials_or_connection(error)
            if known is not None:
                known.step = phase
                raise known from error
            if isinstance(error, BotoCoreError):  # a waiter's end, say: still the step's
                raise StepFailed(phase, error) from error
            if is_denied(error):
                message = str(error.response.get("Error", {}).get("Message", ""))
                denied = PermissionDenied(error.operation_name, self._resource_of(phase), message)
                denied.step = phase
                raise denied from error
            raise StepFailed(phase, error) from error

    @contextmanager
    def _changing_calls(self) -> Iterator[list[str]]:
        """The list of AWS calls that changed something (not a read, and answered 2xx) while the block
        ran: how a failed `up` knows whether it made anything, even within the step that failed."""
        made: list[str] = []

        def heard(model: Any, http_response: Any = None, **_: Any) -> None:
            if not str(model.name).startswith(READ_OPERATIONS) and getattr(http_response, "status_code", 500) < 300:
                made.append(str(model.name))

        unique = f"spotreg-changing-calls-{id(made)}"
        for client in self.clients.all():
            client.meta.events.register("after-call.*.*", heard, unique_id=unique)
        try:
            yield made
        finally:
            for client in self.clients.all():
                client.meta.events.unregister("after-call.*.*", unique_id=unique)

    @contextmanager
    def _lock(self, command: str) -> Iterator[None]:
        """Hold the deployment's lock (one `up`/`down` at a time, across machines) for the block."""
        with self._phase("lock"):
            lock = DeploymentLock(
                self.clients.ssm,
                names.lock_parameter(self.spec),
                whoami(command),
                tags=self.ctx.tags,
                now=self.ctx.now,
                say=self.ctx.progress or (lambda line: None),
            ).__enter__()
        try:
            yield
        finally:
            with self._phase("lock"):
                try:
                    lock.__exit__(None, None, None)
                except KeyboardInterrupt:  # a second signal while releasing: release, then stop
                    lock.__exit__(None, None, None)
                    raise

    def _new_run(self, *, legacy: bool, switch_storage: bool = False) -> Run:
        """Every secret resolved (`env:` ones before any AWS call at all), then the read-only checks of
        every step, before anything is made."""
        with self._phase("preflight"):
            secrets = resolve_secrets(self.spec, self.environ, self.clients.ssm)
        run = Run(self.ctx, secrets, legacy, switch_storage)
        with self._phase("preflight"):
            self.clients.account_id()
            for step in self.steps:
                step.check(run)
        return run

    # -- public API ----------------------------------------------------------------------------

    def inventory(self) -> Inventory:
        """Everything of this deployment that exists now."""
        with self._phase("inventory"):
            return take_inventory(
                self.clients,
                self.deployment,
                bucket_names=[self.spec.storage.bucket],
                route53_optional=self.spec.dns.mode != "route53",
                own_zone=self.spec.dns.zone_id,
            )

    def plan(self, *, legacy_access_key: bool = False) -> Plan:
        """What `up` would create, change or keep. Only reads (Describe/Get/List calls)."""
        run = self._new_run(legacy=legacy_access_key)
        changes = []
        for step in self.steps:
            with self._phase(step.name):
                changes += step.plan(run)
        return Plan(self.deployment, tuple(changes))

    def up(
        self, *, legacy_access_key: bool = False, wait_healthy: float | None = None, switch_storage: bool = False
    ) -> Inventory:
        """Make the deployment exist as the spec says; a second `up` changes nothing. Bad input is
        refused before anything is made; a failing step raises, and `down` removes what it left.
        With `wait_healthy` (seconds), wait for the registry endpoint to answer; `switch_storage`
        accepts a change of the registry's storage (see aws/storage_moves.py). A failure without a
        hint of its own gets one that says whether this run made anything (`up_hint`)."""
        changes: list[Change] = []
        made: list[str] = []  # the changing AWS calls of the steps
        try:
            run = self._new_run(legacy=legacy_access_key, switch_storage=switch_storage)
            with self._lock("up"), self._changing_calls() as made:
                for step in self.steps:
                    self.ctx.say(step.name, "checking")
                    with self._phase(step.name):
                        changes += step.apply(run)
        except SpotregError as error:
            if error.hint is None and not isinstance(error, Interrupted | LockHeld):
                error.hint = up_hint(bool(made) or any(c.changes_anything for c in changes))
            raise
        inventory = self.inventory()
        self.last_up = UpReport(tuple(changes), run.launched, inventory)
        for change in changes:
            self.ctx.say("up", str(change))
        if wait_healthy is not None:
            self.wait_until_healthy(wait_healthy)
        return inventory

    def down(self, delete_data: bool = False) -> Removed:
        """Remove everything `up` made, whatever state a partial `up` left, step by step in reverse;
        keep the bucket and its images unless `delete_data`. A step that fails does not stop the ones
        after it: every step's outcome is reported, and IncompleteDown (with what was removed) says
        what is left. Removing twice removes nothing the second time."""
        changes: list[Change] = []
        failures: list[SpotregError] = []
        try:
            with self._lock("down"):
                for step in reversed(self.steps):
                    try:
                        with self._phase(step.name):
                            changes += step.remove(self.ctx, delete_data=delete_data)
                    except Interrupted:
                        raise
                    except SpotregError as error:
                        failures.append(error)
                        self.ctx.say(step.name, f"failed, going on with the next step: {error.message}")
        except SpotregError as error:  # the lock's, or an interruption
            if error.hint is None:
                error.hint = "run 'spotreg down' again once the cause is fixed"
            raise
        removed = Removed(
            tuple(c for c in changes if c.action != "keep"),
            tuple(c for c in changes if c.action == "keep"),
            tuple(failures),
        )
        for change in removed.changes:
            self.ctx.say("down", str(change))
        if failures:
            raise IncompleteDown(removed)
        return removed

    def endpoint(self, address: str | None = None) -> str | None:
        """The registry's /v2/ URL: by host name when there is one, else by address."""
        return api_url(self.spec, address)

    def _where(self) -> tuple[InstanceFacts | None, str | None]:
        """The instance and the address the registry answers at."""
        with self._phase("status"):
            live = live_instances(self.clients.ec2, self.deployment)
            addresses = public_addresses(self.clients.ec2, self.deployment)
        return (live[0] if live else None), (addresses[0] if addresses else None)

    def wait_until_healthy(self, timeout: float) -> Healthy:
        """Wait (bounded) for the registry endpoint; the self-signed CA is trusted for the check."""
        facts, address = self._where()
        with self._phase("health"):
            return wait_for_deployment(
                self.spec,
                self.clients,
                address,
                None if facts is None else facts.instance_id,
                timeout,
                progress=lambda message: self.ctx.say("health", message),
                session=self.http,
            )

    def _dns_status(self, facts: InstanceFacts | None, address: str | None) -> DnsFacts:
        """The DNS line of `status`, the A record's values (route53), and why DNS leads elsewhere, if it does."""
        spec = self.spec
        if spec.dns.mode == "route53" and spec.dns.zone_id and spec.dns.hostname:
            with self._phase("status"):
                a = records_at(self.clients.route53, spec.dns.zone_id, spec.dns.hostname).get("A")
            values = tuple(a.values) if a else ()
            elsewhere = None
            if not values:
                elsewhere = f"{spec.dns.hostname} has no A record"
            elif address is None or set(values) != {address}:
                elsewhere = f"{spec.dns.hostname} -> {', '.join(values)}, not {address or 'an address of ours'}"
            return DnsFacts(f"{spec.dns.hostname} -> {', '.join(values) or 'no A record'}", values, elsewhere)
        text = f"{spec.dns.hostname} ({spec.dns.mode})" if spec.dns.hostname is not None else None
        if spec.dns.mode == "eip" and facts is not None:
            with self._phase("status"):
                eips = deployment_addresses(self.clients.ec2, self.deployment)
            if not eips:
                return DnsFacts(text, None, "no Elastic IP")
            if eips[0].instance_id != facts.instance_id:
                where = eips[0].instance_id or "nothing"
                return DnsFacts(text, None, f"Elastic IP {eips[0].public_ip} is associated with {where}")
        return DnsFacts(text, None, None)

    def status(self, *, health_timeout: float | None = None) -> Status:
        """Instance state, address, DNS, endpoint and (only with `health_timeout`, and only of a running
        instance) endpoint health, by `wait_until_healthy`: the check `up --wait-healthy` makes."""
        facts, address = self._where()
        health, health_error = None, None
        # 0 or None: not asked for; an instance that is not running cannot answer (status says so)
        if health_timeout and facts is not None and facts.state == "running":
            try:
                health = self.wait_until_healthy(health_timeout)
            except PermissionDenied:
                raise  # the caller's credentials, not the registry's health
            except SpotregError as error:
                health_error = str(error)
        dns = self._dns_status(facts, address)
        return Status(
            deployment=self.deployment,
            region=self.spec.deployment.region,
            instance=facts,
            address=address,
            dns=dns.text,
            endpoint=self.endpoint(address),
            health=health,
            health_error=health_error,
            inventory=self.inventory(),
            dns_mode=self.spec.dns.mode,
            dns_hostname=self.spec.dns.hostname,
            dns_values=dns.values,
            dns_elsewhere=dns.elsewhere,
        )
