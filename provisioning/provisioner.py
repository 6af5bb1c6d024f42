"""Orchestration: `plan`, `up`, `status` and `down` of one deployment, and `sweep` of test runs.

The Provisioner runs the steps of provisioning/aws/ in order, with the clients it was given. It keeps
no state of its own between calls: every call looks at AWS (tags and deterministic names) first.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests
from botocore.exceptions import BotoCoreError, ClientError

from provisioning import names
from provisioning.aws import bucket as bucket_step
from provisioning.aws import elastic_ip, image, instance, legacy_user, parameters, role, route53
from provisioning.aws import security_group as sg_step
from provisioning.aws.changes import Change
from provisioning.aws.clients import AwsClients, make_clients
from provisioning.aws.namecheap import update_namecheap
from provisioning.aws.sweeper import Found, sweep
from provisioning.aws.tags import is_code, is_denied
from provisioning.aws.waits import Progress, Waits, poll_until, retry_on
from provisioning.errors import PermissionDenied, SpotregError, StepFailed, WaitTimeout
from provisioning.health import Healthy, api_url, wait_until_healthy
from provisioning.health import server_name as server_name_for
from provisioning.inventory import Inventory, take_inventory
from provisioning.render.tls import render_selfsigned, still_fits
from provisioning.render.user_data import render_user_data
from provisioning.rules import architecture_of
from provisioning.secrets import Secrets, htpasswd_matches, make_htpasswd, resolve_secrets
from provisioning.spec import Spec

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

log = logging.getLogger("spotreg.provisioner")

# The steps of `up`, in order. Each is a method `_step_<name with _ for ->`.
STEPS: tuple[str, ...] = (
    "bucket",
    "address",
    "parameters",
    "role",
    "legacy-user",
    "security-group",
    "image",
    "instance",
    "dns",
)


def expiry_tag(expires: datetime | str | None) -> str | None:
    if expires is None or isinstance(expires, str):
        return expires
    return expires.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Plan:
    """What `up` would do, resource by resource; nothing was changed to find out."""

    deployment: str
    changes: tuple[Change, ...]

    @property
    def is_noop(self) -> bool:
        return not any(c.changes_anything for c in self.changes)

    def pending(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.changes_anything)

    def __str__(self) -> str:
        return f"plan for {self.deployment}:\n" + "\n".join(f"  {c}" for c in self.changes)


@dataclass(frozen=True)
class UpReport:
    """What the last `up` did, and where it settled the instance and why."""

    changes: tuple[Change, ...]
    launch: instance.Launched | None
    inventory: Inventory

    @property
    def placement(self) -> str:
        return self.launch.reason if self.launch is not None else "no instance step ran"


@dataclass(frozen=True)
class Status:
    deployment: str
    region: str
    instance: instance.InstanceFacts | None
    address: str | None
    dns: str | None
    endpoint: str | None
    health: Healthy | None
    health_error: str | None
    inventory: Inventory

    def __str__(self) -> str:
        lines = [f"deployment {self.deployment} in {self.region}"]
        if self.instance is None:
            lines.append("  instance: none")
        else:
            i = self.instance
            lines.append(f"  instance: {i.instance_id} {i.state} ({i.instance_type} in {i.zone})")
        lines.append(f"  address: {self.address or '-'}")
        lines.append(f"  dns: {self.dns or '-'}")
        lines.append(f"  endpoint: {self.endpoint or '-'}")
        if self.health is not None:
            lines.append(f"  health: HTTP {self.health.status} after {self.health.attempts} attempts")
        else:
            lines.append(f"  health: {self.health_error or 'not checked'}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Removed:
    """What `down` removed, what it kept on purpose, and what it could not remove and why."""

    changes: tuple[Change, ...]
    kept: tuple[Change, ...] = ()
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        lines = [f"  {c}" for c in (*self.changes, *self.kept)] + [f"  note: {n}" for n in self.notes]
        return "down:\n" + ("\n".join(lines) if lines else "  nothing to remove")


@dataclass
class _Run:
    """What the steps of one `up` (or `plan`) found or made, handed from step to step."""

    secrets: Secrets
    tags: dict[str, str]
    apply: bool
    legacy: bool
    changes: list[Change] = field(default_factory=list)
    address: elastic_ip.Address | None = None
    existing_parameters: dict[str, parameters.StoredParameter] = field(default_factory=dict)
    server_cert_pem: bytes | None = None
    profile_arn: str | None = None
    security_group_id: str | None = None
    image_ids: dict[str, str] = field(default_factory=dict)
    subnets: dict[str, str] = field(default_factory=dict)
    facts: instance.InstanceFacts | None = None
    launched: instance.Launched | None = None


class Provisioner:
    """One deployment's lifecycle against the AWS behind `clients` (real, moto, or moto's server).

    `run_id` and `expires` tag everything for test runs (what `sweep` finds); `progress(line)` hears
    about every step and every wait ("<step>: <message>"); `environ` resolves `env:` secret references (default
    os.environ); `waits` bounds every wait; `namecheap_url`, when given, lets `up` update Namecheap
    dynamic DNS right away (otherwise the instance does it on every boot); `now` is the clock.
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
        namecheap_url: str | None = None,
        http: requests.Session | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        if clients.region != spec.deployment.region:
            raise ValueError(
                f"clients are for {clients.region}, the spec's deployment.region is {spec.deployment.region}"
            )
        self.spec = spec
        self.clients = clients
        self.run_id = run_id
        self.expires = expiry_tag(expires)
        self.progress = progress
        self.environ = os.environ if environ is None else environ
        self.waits = waits or Waits()
        self.namecheap_url = namecheap_url
        self.http = http
        self.now = now or (lambda: datetime.now(UTC))
        self.last_up: UpReport | None = None

    # -- small helpers -------------------------------------------------------------------------

    @property
    def deployment(self) -> str:
        return self.spec.deployment.name

    @property
    def tags(self) -> dict[str, str]:
        return names.deployment_tags(self.spec, self.run_id, self.expires)

    def _say(self, step: str, message: str) -> None:
        log.info("%s: %s", step, message)
        if self.progress is not None:
            self.progress(f"{step}: {message}")

    def _resource_of(self, step: str) -> str:
        spec, name = self.spec, names.resource_name(self.spec)
        return {
            "preflight": f"deployment {spec.deployment.name}",
            "bucket": f"bucket {spec.storage.bucket}",
            "address": f"Elastic IP of {name}",
            "parameters": f"SSM parameters {names.parameter_prefix(spec)}/*",
            "role": f"IAM role and instance profile {name}",
            "legacy-user": f"IAM user {legacy_user.user_name(spec)}",
            "security-group": f"security group {name}",
            "image": "AL2023 image parameters",
            "instance": f"spot instance of {name}",
            "dns": f"DNS of {spec.dns.hostname or name}",
            "inventory": f"resources of deployment {spec.deployment.name}",
            "status": f"instance, address and DNS of deployment {spec.deployment.name}",
            "health": f"SSM parameters {names.parameter_prefix(spec)}/*",
        }.get(step, step)

    @contextmanager
    def _step(self, step: str) -> Iterator[None]:
        """Run one step: SpotregErrors get the step's name, denials become PermissionDenied, any other
        failure becomes StepFailed naming the step."""
        try:
            yield
        except SpotregError as error:
            if error.step is None:
                error.step = step
            raise
        except ClientError as error:
            if is_denied(error):
                denied = PermissionDenied(
                    error.operation_name,
                    self._resource_of(step),
                    str(error.response.get("Error", {}).get("Message", "")),
                )
                denied.step = step
                raise denied from error
            raise StepFailed(step, error) from error
        except BotoCoreError as error:  # no credentials, no connection, a waiter's end: still the step's
            raise StepFailed(step, error) from error

    def _new_run(self, *, apply: bool, legacy: bool) -> _Run:
        return _Run(secrets=self._resolve_secrets(), tags=self.tags, apply=apply, legacy=legacy)

    def _resolve_secrets(self) -> Secrets:
        """Every secret reference, resolved; `env:` ones before any AWS call at all."""
        with self._step("preflight"):
            return resolve_secrets(self.spec, self.environ, self.clients.ssm)

    def _preflight(self, run: _Run) -> None:
        """Read-only checks of the input against AWS, before anything is made."""
        with self._step("preflight"):
            self.clients.account_id()
            vpc_id = sg_step.vpc_of(self.clients, self.spec)
            run.subnets = instance.subnets_by_zone(self.clients, self.spec)
            spec, name = self.spec, names.resource_name(self.spec)
            if spec.dns.mode == "route53":
                assert spec.dns.zone_id is not None and spec.dns.hostname is not None
                route53.check_zone(self.clients.route53, spec.dns.zone_id, spec.dns.hostname)
                route53.check_owner(
                    self.clients.route53,
                    spec.dns.zone_id,
                    spec.dns.hostname,
                    self.deployment,
                    own_addresses=self._own_addresses(),
                )
            # names spotreg would take that someone else holds: refused before anything is made (the
            # bucket step, first of all, checks its own before it creates anything)
            role.check_owner(self.clients.iam, name, self.deployment)
            sg_step.find_security_group(self.clients.ec2, spec, vpc_id)

    def _own_addresses(self) -> set[str]:
        """The public addresses this deployment's instances and Elastic IPs hold now."""
        ec2 = self.clients.ec2
        found = {f.public_ip for f in instance.live_instances(ec2, self.deployment) if f.public_ip}
        return found | {a.public_ip for a in elastic_ip.deployment_addresses(ec2, self.deployment)}

    def _steps(self) -> list[tuple[str, Callable[[_Run], None]]]:
        return [(name, getattr(self, f"_step_{name.replace('-', '_')}")) for name in STEPS]

    # -- the steps -----------------------------------------------------------------------------

    def _step_bucket(self, run: _Run) -> None:
        if run.apply:
            run.changes.append(bucket_step.ensure_bucket(self.clients, self.spec, run.tags))
        else:
            run.changes.extend(bucket_step.inspect_bucket(self.clients, self.spec, run.tags))

    def _step_address(self, run: _Run) -> None:
        if self.spec.dns.mode != "eip":
            return
        change, run.address = elastic_ip.address_changes(self.clients.ec2, self.deployment, run.tags, apply=run.apply)
        run.changes.append(change)

    def _tls_names(self, run: _Run) -> list[str]:
        """The names the self-signed certificate is for: the host name, else the Elastic IP, else the
        deployment's resource name (for an /etc/hosts entry: a plain public IP changes on every start)."""
        if self.spec.dns.hostname is not None:
            return [self.spec.dns.hostname]
        if run.address is not None:
            return [run.address.public_ip]
        return [names.resource_name(self.spec)]

    def _reusable_tls(self, run: _Run, wanted_names: list[str]) -> tuple[str, str, str] | None:
        """The stored (key, cert, ca) when they still fit the names and the clock."""
        stored = run.existing_parameters
        key = stored.get(names.tls_key_parameter(self.spec))
        cert = stored.get(names.tls_cert_parameter(self.spec))
        ca = stored.get(names.tls_ca_parameter(self.spec))
        if key is None or cert is None or ca is None:
            return None
        if not still_fits(key.value, cert.value, wanted_names, now=self.now()):
            return None
        return key.value, cert.value, ca.value

    def _wanted_parameters(self, run: _Run) -> list[parameters.WantedParameter]:
        spec, stored = self.spec, run.existing_parameters
        wanted = []
        current = stored.get(names.htpasswd_parameter(spec))
        if current is not None and htpasswd_matches(current.value, run.secrets.users):
            htpasswd = current.value
        else:
            htpasswd = make_htpasswd(run.secrets.users)
        wanted.append(parameters.WantedParameter(names.htpasswd_parameter(spec), htpasswd, True, "registry htpasswd"))
        if spec.tls.mode == "selfsigned":
            tls_names = self._tls_names(run)
            reuse = self._reusable_tls(run, tls_names)
            if reuse is None:
                material = render_selfsigned(tls_names, now=self.now())
                reuse = (
                    material.server_key_pem.decode("ascii"),
                    material.server_cert_pem.decode("ascii"),
                    material.ca_cert_pem.decode("ascii"),
                )
            key, cert, ca = reuse
            run.server_cert_pem = cert.encode("ascii")
            wanted += [
                parameters.WantedParameter(names.tls_key_parameter(spec), key, True, "self-signed TLS server key"),
                parameters.WantedParameter(
                    names.tls_cert_parameter(spec), cert, False, "self-signed TLS server certificate"
                ),
                parameters.WantedParameter(names.tls_ca_parameter(spec), ca, False, "self-signed TLS CA certificate"),
            ]
        if spec.dns.mode == "namecheap":
            assert run.secrets.dns_password is not None  # the Spec's rules and resolve_secrets
            wanted.append(
                parameters.WantedParameter(
                    names.dns_password_parameter(spec), run.secrets.dns_password, True, "Namecheap dynamic DNS password"
                )
            )
        return wanted

    def _step_parameters(self, run: _Run) -> None:
        run.existing_parameters = parameters.read_deployment_parameters(self.clients.ssm, self.spec)
        keep = [legacy_user.key_parameter(self.spec)] if run.legacy else []
        run.changes.extend(
            parameters.parameter_changes(
                self.clients.ssm,
                self.spec,
                self._wanted_parameters(run),
                run.tags,
                existing=run.existing_parameters,
                keep=keep,
                apply=run.apply,
            )
        )

    def _step_role(self, run: _Run) -> None:
        if run.apply:
            result = role.ensure_role(self.clients, self.spec, run.tags)
            run.changes.extend(result.changes)
            run.profile_arn = result.profile_arn
        else:
            run.changes.extend(role.inspect_role(self.clients, self.spec, run.tags))
            profile = role.read_profile(self.clients.iam, names.resource_name(self.spec))
            run.profile_arn = None if profile is None else str(profile["Arn"])

    def _step_legacy_user(self, run: _Run) -> None:
        if run.legacy and run.apply:
            log.warning(legacy_user.WARNING)
            self._say("legacy-user", legacy_user.WARNING)
        run.changes.extend(
            legacy_user.legacy_changes(
                self.clients, self.spec, run.tags, run.existing_parameters, enabled=run.legacy, apply=run.apply
            )
        )

    def _step_security_group(self, run: _Run) -> None:
        if run.apply:
            change, run.security_group_id = sg_step.ensure_security_group(self.clients, self.spec, run.tags)
        else:
            change = sg_step.inspect_security_group(self.clients, self.spec, run.tags)
            group = sg_step.find_security_group(self.clients.ec2, self.spec, sg_step.vpc_of(self.clients, self.spec))
            run.security_group_id = None if group is None else str(group["GroupId"])
        run.changes.append(change)

    def _step_image(self, run: _Run) -> None:
        run.image_ids = image.image_ids_for(self.clients.ssm, self.spec.instance.types)
        listed = ", ".join(f"{arch} {ami}" for arch, ami in sorted(run.image_ids.items()))
        run.changes.append(Change("image", "AL2023", "read", listed))

    def _launch_inputs(self, run: _Run) -> instance.LaunchInputs | None:
        if run.security_group_id is None or run.profile_arn is None:
            return None
        return instance.LaunchInputs(
            image_ids=run.image_ids,
            security_group_id=run.security_group_id,
            profile_arn=run.profile_arn,
            user_data=render_user_data(self.spec, run.server_cert_pem),
            tags=run.tags,
        )

    def _step_instance(self, run: _Run) -> None:
        ec2, spec = self.clients.ec2, self.spec
        inputs = self._launch_inputs(run)
        if not run.subnets:
            run.subnets = instance.subnets_by_zone(self.clients, spec)
        keep: instance.InstanceFacts | None = None
        retire: list[tuple[instance.InstanceFacts, list[str]]] = []
        for facts in instance.live_instances(ec2, self.deployment):
            user_data = instance.user_data_of(ec2, facts.instance_id) if inputs is not None else None
            drift = instance.instance_drift(facts, spec, inputs, user_data)
            if not drift and keep is None:
                keep = facts
            else:
                retire.append((facts, drift or ["a second instance of the deployment"]))
        for facts, drift in retire:
            run.changes.append(
                Change(instance.KIND, facts.instance_id, "replace" if keep is None else "delete", ", ".join(drift))
            )
        if run.apply and retire:
            self._say("instance", f"replacing {', '.join(f.instance_id for f, _ in retire)}: {retire[0][1][0]}")
            requests_ = [f.spot_request_id for f, _ in retire if f.spot_request_id]
            if requests_:
                ec2.cancel_spot_instance_requests(SpotInstanceRequestIds=requests_)
            instance.terminate(ec2, [f.instance_id for f, _ in retire], waits=self.waits, progress=self.progress)
        if keep is not None:
            run.facts = keep
            run.changes.append(Change(instance.KIND, keep.instance_id, "keep", f"{keep.instance_type} {keep.state}"))
            return
        candidates = instance.launch_candidates(self.clients, spec, list(run.subnets), now=self.now())
        if not run.apply:
            first = candidates[0] if candidates else None
            detail = (
                "no candidate" if first is None else f"would try {first.instance_type} in {first.zone} ({first.reason})"
            )
            run.changes.append(Change(instance.KIND, "(new spot instance)", "create", detail))
            return
        assert inputs is not None
        run.launched = instance.launch(
            self.clients,
            spec,
            candidates,
            run.subnets,
            inputs,
            architecture_of=architecture_of,
            waits=self.waits,
            progress=self.progress,
        )
        run.facts = run.launched.instance
        run.changes.append(run.launched.change)
        self._say("instance", f"settled on {run.launched.reason}")

    def _public_ip(self, run: _Run) -> str | None:
        """The instance's public address, waiting (bounded) for AWS to assign it."""
        if run.facts is None:
            return None
        if run.facts.public_ip is not None or not run.apply:
            return run.facts.public_ip
        ec2, instance_id = self.clients.ec2, run.facts.instance_id

        def check() -> tuple[bool, str]:
            found = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
            run.facts = instance.InstanceFacts.of(found)
            return run.facts.public_ip is not None, run.facts.state

        poll_until(
            f"a public address for {instance_id}",
            check,
            timeout=self.waits.instance_terminated,
            interval=self.waits.poll_interval,
            max_interval=self.waits.max_interval,
            progress=self.progress,
            step="dns",
        )
        return run.facts.public_ip

    def _step_dns(self, run: _Run) -> None:
        spec, mode = self.spec, self.spec.dns.mode
        if mode == "eip":
            instance_id = None if run.facts is None else run.facts.instance_id
            run.changes.append(
                elastic_ip.association_changes(
                    self.clients.ec2,
                    run.address,
                    instance_id,
                    apply=run.apply,
                    waits=self.waits,
                    progress=self.progress,
                )
            )
        elif mode == "route53":
            assert spec.dns.zone_id is not None and spec.dns.hostname is not None
            ip = self._public_ip(run)
            run.changes.append(
                route53.record_changes(
                    self.clients.route53, spec.dns.zone_id, spec.dns.hostname, ip, run.tags, apply=run.apply
                )
            )
        elif mode == "namecheap":
            assert spec.dns.hostname is not None
            if self.namecheap_url is None:
                run.changes.append(
                    Change("dns-record", spec.dns.hostname, "keep", "Namecheap: the instance updates it on every boot")
                )
                return
            ip = self._public_ip(run)
            if run.apply and ip is not None:
                assert run.secrets.dns_password is not None
                update_namecheap(
                    spec.dns.hostname,
                    run.secrets.dns_password,
                    ip,
                    domain=spec.dns.domain,
                    base_url=self.namecheap_url,
                    session=self.http,
                )
            run.changes.append(
                Change("dns-record", spec.dns.hostname, "update", f"Namecheap -> {ip or 'the new address'}")
            )

    # -- public API ----------------------------------------------------------------------------

    def inventory(self) -> Inventory:
        """Everything of this deployment that exists now."""
        zones = [self.spec.dns.zone_id] if self.spec.dns.zone_id is not None else None
        with self._step("inventory"):
            return take_inventory(
                self.clients, self.deployment, bucket_names=[self.spec.storage.bucket], zone_ids=zones
            )

    def plan(self, *, legacy_access_key: bool = False) -> Plan:
        """What `up` would create, change or keep. Only reads (Describe/Get/List calls)."""
        run = self._new_run(apply=False, legacy=legacy_access_key)
        self._preflight(run)
        for name, step in self._steps():
            with self._step(name):
                step(run)
        return Plan(self.deployment, tuple(run.changes))

    def up(self, *, legacy_access_key: bool = False, wait_healthy: float | None = None) -> Inventory:
        """Make the deployment exist as the spec says; a second `up` changes nothing. Bad input is
        refused before anything is made; a failing step raises, and `down` removes what it left.
        With `wait_healthy` (seconds), wait for the registry endpoint to answer."""
        run = self._new_run(apply=True, legacy=legacy_access_key)
        self._preflight(run)
        for name, step in self._steps():
            self._say(name, "checking")
            with self._step(name):
                step(run)
            for change in run.changes:
                if change.changes_anything:
                    log.debug("%s", change)
        inventory = self.inventory()
        self.last_up = UpReport(tuple(run.changes), run.launched, inventory)
        for change in run.changes:
            self._say("up", str(change))
        if wait_healthy is not None:
            self.wait_until_healthy(wait_healthy)
        return inventory

    def endpoint(self, address: str | None = None) -> str | None:
        """The registry's /v2/ URL: by host name when there is one, else by address."""
        return api_url(self.spec, address)

    def _address(self) -> tuple[instance.InstanceFacts | None, str | None]:
        with self._step("status"):
            live = instance.live_instances(self.clients.ec2, self.deployment)
            facts = live[0] if live else None
            addresses = elastic_ip.deployment_addresses(self.clients.ec2, self.deployment)
        address = addresses[0].public_ip if addresses else (facts.public_ip if facts else None)
        return facts, address

    def wait_until_healthy(self, timeout: float) -> Healthy:
        """Wait (bounded) for the registry endpoint; the self-signed CA is trusted for the check."""
        facts, address = self._address()
        url = self.endpoint(address)
        if url is None:
            raise SpotregError("the deployment has no address to check yet", hint="run 'spotreg up' first")
        with self._step("health"):
            stored = parameters.read_deployment_parameters(self.clients.ssm, self.spec)
        ca = stored.get(names.tls_ca_parameter(self.spec))
        cert = stored.get(names.tls_cert_parameter(self.spec))

        def console() -> str | None:
            if facts is None:
                return None
            try:
                return str(
                    self.clients.ec2.get_console_output(InstanceId=facts.instance_id, Latest=True).get("Output") or ""
                )
            except ClientError:
                return None

        with tempfile.TemporaryDirectory() as scratch:
            verify: bool | str = True
            server_name = None
            if self.spec.tls.mode == "selfsigned" and ca is not None:
                bundle = Path(scratch) / "ca.pem"
                bundle.write_text(ca.value)
                verify = str(bundle)
                server_name = server_name_for(url, None if cert is None else cert.value)
            return wait_until_healthy(
                url,
                timeout,
                verify=verify,
                progress=(lambda message: self._say("health", message)),
                console_output=console,
                session=self.http,
                server_name=server_name,
            )

    def status(self, *, health_timeout: float | None = None) -> Status:
        """Instance state, address, DNS, endpoint and (only with `health_timeout`) endpoint health."""
        facts, address = self._address()
        dns = None
        spec = self.spec
        if spec.dns.mode == "route53" and spec.dns.zone_id and spec.dns.hostname:
            with self._step("status"):
                records = route53.records_at(self.clients.route53, spec.dns.zone_id, spec.dns.hostname)
            a = records.get("A")
            dns = f"{spec.dns.hostname} -> {', '.join(a.values) if a else 'no A record'}"
        elif spec.dns.hostname is not None:
            dns = f"{spec.dns.hostname} ({spec.dns.mode})"
        health, health_error = None, None
        if health_timeout and facts is not None:  # 0 or None: not asked for
            try:
                health = self.wait_until_healthy(health_timeout)
            except PermissionDenied:
                raise  # the caller's credentials, not the registry's health
            except SpotregError as error:
                health_error = str(error)
        return Status(
            deployment=self.deployment,
            region=spec.deployment.region,
            instance=facts,
            address=address,
            dns=dns,
            endpoint=self.endpoint(address),
            health=health,
            health_error=health_error,
            inventory=self.inventory(),
        )

    def down(self, delete_data: bool = False) -> Removed:
        """Remove everything `up` made, whatever state a partial `up` left; keep the bucket and its
        images unless `delete_data`. Removing twice removes nothing the second time."""
        spec, ec2 = self.spec, self.clients.ec2
        changes: list[Change] = []
        notes: list[str] = []
        with self._step("dns"):
            # every record marked as this deployment's: in the spec's zone, or (the spec may have
            # changed since up) in any hosted zone
            zones = [spec.dns.zone_id] if spec.dns.zone_id is not None else None
            for record, marker in route53.marked_records(self.clients.route53, zones):
                if marker.get(names.TAG_DEPLOYMENT) == self.deployment:
                    changes += route53.remove_records(
                        self.clients.route53, record.zone_id, record.name, self.deployment
                    )
            if spec.dns.mode == "namecheap":
                notes.append(
                    f"Namecheap keeps {spec.dns.hostname} pointing at the old address: dynamic DNS cannot delete it"
                )
        with self._step("instance"):
            changes += instance.remove_instances(ec2, self.deployment, waits=self.waits, progress=self.progress)
        with self._step("address"):
            changes += elastic_ip.remove_addresses(ec2, self.deployment)
        with self._step("security-group"):
            for group in sg_step.deployment_security_groups(ec2, self.deployment):
                self._delete_security_group(str(group["GroupId"]))
                changes.append(Change(sg_step.KIND, f"{group['GroupName']} ({group['GroupId']})", "delete"))
        with self._step("role"):
            changes += role.remove_role(self.clients, spec)
        with self._step("legacy-user"):
            changes += legacy_user.remove_legacy_user(self.clients, spec)
        with self._step("parameters"):
            changes += parameters.remove_parameters(self.clients.ssm, spec)
        with self._step("bucket"):
            bucket_change = bucket_step.remove_bucket(self.clients, spec, delete_data=delete_data)
        if delete_data and bucket_change.action != "delete" and bucket_change.detail == bucket_step.NOT_CREATED:
            notes.append(f"bucket {spec.storage.bucket}: {bucket_step.NOT_CREATED}")
        for change in changes:
            self._say("down", str(change))
        if bucket_change.action == "delete":
            return Removed((*changes, bucket_change), (), tuple(notes))
        return Removed(tuple(changes), (bucket_change,), tuple(notes))

    def _delete_security_group(self, group_id: str) -> None:
        """Delete a group, retrying (bounded) while a terminated instance's interface still holds it."""

        def delete() -> None:
            try:
                self.clients.ec2.delete_security_group(GroupId=group_id)
            except ClientError as error:
                if is_code(error, "InvalidGroup.NotFound"):
                    return
                raise

        started = time.monotonic()
        try:
            retry_on(
                f"deleting security group {group_id}",
                delete,
                lambda error: is_code(error, "DependencyViolation"),
                timeout=self.waits.security_group_release,
                interval=self.waits.poll_interval,
                max_interval=self.waits.max_interval,
                progress=self.progress,
                step="security-group",
            )
        except ClientError as error:
            if not is_code(error, "DependencyViolation"):
                raise
            raise WaitTimeout(
                f"security group {group_id} to be released by its network interfaces",
                time.monotonic() - started,
                str(error),
                hint="an interface of a terminated instance may linger for minutes: run 'spotreg down' again",
            ) from error
