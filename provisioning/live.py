"""Live runs: what makes a run against real AWS safe to start, cheap to predict and certain to end.

Library code, no pytest: the live suite (``fixtures/live_aws.py``, ``suites/live``) and its offline dress
rehearsal (``suites/stack/test_dress_rehearsal.py``) both run through it.

- ``RunIdentity``: a unique run id (``live-<utc yyyymmddHHMM>-<6 hex>``, the ``spotreg:run`` tag) and an
  expiry (``spotreg:expires``, three hours on) for every resource the run makes; what the sweeper of a
  later run finds if this one is killed.
- ``live_spec``: the user's spec with names of the run's own: deployment, bucket and host name come from
  the run id, users get throwaway passwords. A live run can therefore never touch the user's real
  deployment, bucket or DNS name, and deleting its bucket (``down(delete_data=True)``) is safe.
- ``estimate_run_cost``: what about an hour of the run costs, from the price table (provisioning.cost),
  shown before anything is made.
- ``check_credentials``: one ``sts:GetCallerIdentity`` (which creates nothing); no usable credentials in
  the default chain stop the run before any resource exists.
- ``TeardownRegistry``: teardown actions registered before what they undo exists, run once, last first;
  SIGTERM and SIGINT interrupt the run so that they run (and the previous handlers come back after).
- ``wait_until_resolves``: the bounded wait for a host name to answer with the instance's address.
"""

from __future__ import annotations

import atexit
import contextlib
import re
import secrets
import shlex
import signal
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from pathlib import Path
from types import FrameType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from provisioning.aws.clients import AwsClients
from provisioning.aws.sweeper import Found, failed, sweep
from provisioning.cost import SECONDS_PER_HOUR, PriceError, PriceTable, estimate_monthly_cost
from provisioning.errors import InputProblem, SpotregError
from provisioning.spec import Spec, spec_from_mapping
from provisioning.waits import Progress, Waits, poll_until

RUN_PREFIX = "live"
RUN_ID_PATTERN = re.compile(r"^live-[0-9]{12}-[0-9a-f]{6}$")
LIFETIME = timedelta(hours=3)
RUN_HOURS = Decimal(1)
PASSWORD_ENV_PREFIX = "SPOTREG_LIVE_PASSWORD_"  # noqa: S105 - a variable name's prefix, not a password
SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)
_MONEY = Decimal("0.0001")


# --- the run's identity ----------------------------------------------------------------------------------


def new_run_id(now: datetime | None = None, token: str | None = None) -> str:
    """``live-<utc yyyymmddHHMM>-<6 hex>``: sortable by start, unique by its random part."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    suffix = token if token is not None else secrets.token_hex(3)
    run_id = f"{RUN_PREFIX}-{moment:%Y%m%d%H%M}-{suffix}"
    if not RUN_ID_PATTERN.fullmatch(run_id):
        raise ValueError(f"not a live run id: {run_id!r} (token must be 6 lowercase hex digits)")
    return run_id


def iso_utc(moment: datetime) -> str:
    """The form of the ``spotreg:expires`` tag: ``2030-01-01T12:00:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class RunIdentity:
    """A live run's id (``spotreg:run``), when it started, and when its resources expire (``spotreg:expires``)."""

    run_id: str
    started: datetime
    expires: datetime

    @classmethod
    def new(cls, now: datetime | None = None, lifetime: timedelta = LIFETIME) -> RunIdentity:
        started = (now or datetime.now(UTC)).astimezone(UTC)
        return cls(new_run_id(started), started, started + lifetime)

    @property
    def expires_tag(self) -> str:
        return iso_utc(self.expires)


# --- the run's own names ---------------------------------------------------------------------------------


class LiveRefused(SpotregError):
    """A live run of this spec cannot be made safe: said before anything exists."""

    exit_code = 2


def throwaway_deployment(run_id: str) -> str:
    """The run's deployment name: the run id itself (a valid deployment name, unique per run)."""
    return run_id


def throwaway_bucket(run_id: str) -> str:
    """The run's bucket: ``spotreg-<run id>``, made and deleted by the run, never the user's."""
    return f"spotreg-{run_id}"


def throwaway_hostname(run_id: str, hostname: str) -> str:
    """The run's host name, below the configured one (so in the same hosted zone)."""
    return f"{run_id}.{hostname}"


@dataclass(frozen=True)
class LiveSpec:
    """The spec a live run provisions, the user's spec it came from, and the run's user passwords."""

    spec: Spec
    original: Spec
    passwords: Mapping[str, str] = field(repr=False)  # user name -> throwaway password
    environ: Mapping[str, str] = field(repr=False)  # what the spec's `env:` references resolve against
    notes: tuple[str, ...] = ()


def live_spec(spec: Spec, run_id: str, *, passwords: Mapping[str, str] | None = None) -> LiveSpec:
    """`spec` with the names of run `run_id`: what a live run provisions instead of the user's deployment.

    - deployment name and bucket come from the run id: the user's deployment (found by its name's tags)
      and the user's bucket (with their images) are out of the run's reach;
    - with Route 53 the host name is ``<run id>.<hostname>`` in the same zone; any other DNS mode would
      repoint the user's real name (Namecheap's dynamic DNS, an EIP the user's DNS points at), so the
      run gets an Elastic IP of its own instead, and the self-signed certificate names that address.
      Let's Encrypt needs a name the run owns: only with Route 53 (LiveRefused otherwise);
    - users keep their names and get fresh passwords, so no real secret is needed or stored.
    """
    if not RUN_ID_PATTERN.fullmatch(run_id):
        raise ValueError(f"not a live run id: {run_id!r}")
    data: dict[str, Any] = spec.model_dump()
    notes: list[str] = []
    data["deployment"]["name"] = throwaway_deployment(run_id)
    data["storage"]["bucket"] = throwaway_bucket(run_id)
    dns, tls = data["dns"], spec.tls.mode
    if spec.dns.mode == "route53":
        assert spec.dns.hostname is not None
        dns["hostname"] = throwaway_hostname(run_id, spec.dns.hostname)
    elif tls == "letsencrypt":
        raise LiveRefused(
            f"a live run with tls.mode = 'letsencrypt' needs dns.mode = 'route53' (it is {spec.dns.mode!r}): "
            "only there can the run have a host name of its own for the certificate",
            hint="run the live tier with a Route 53 zone, or with tls.mode = 'selfsigned'",
        )
    else:
        mode = "none" if (tls == "none" and spec.dns.mode == "none") else "eip"
        if spec.dns.mode != mode or spec.dns.hostname is not None:
            was = spec.dns.mode + (f" ({spec.dns.hostname})" if spec.dns.hostname else "")
            notes.append(
                f"dns.mode {was} -> {mode} without a host name: the run must not repoint a real name"
                + ("; the self-signed certificate names the run's Elastic IP" if mode == "eip" else "")
            )
        data["dns"] = {"mode": mode}
    chosen = dict(passwords or {})
    environ: dict[str, str] = {}
    users = []
    for index, user in enumerate(spec.registry.users):
        variable = f"{PASSWORD_ENV_PREFIX}{index}"
        environ[variable] = chosen.setdefault(user.name, secrets.token_urlsafe(18))
        users.append({"name": user.name, "password": f"env:{variable}"})
    data["registry"]["users"] = users
    result = LiveSpec(spec_from_mapping(data), spec, chosen, environ, tuple(notes))
    assert_throwaway(result.spec, run_id, spec)
    return result


def assert_throwaway(spec: Spec, run_id: str, original: Spec | None = None) -> None:
    """Refuse (ValueError) a spec whose bucket or deployment is not run `run_id`'s own: the guard in
    front of every ``down(delete_data=True)`` of a live run."""
    problems = []
    if spec.storage.bucket != throwaway_bucket(run_id):
        problems.append(f"bucket {spec.storage.bucket!r} is not the run's {throwaway_bucket(run_id)!r}")
    if spec.deployment.name != throwaway_deployment(run_id):
        problems.append(f"deployment {spec.deployment.name!r} is not the run's {throwaway_deployment(run_id)!r}")
    if original is not None and spec.storage.bucket == original.storage.bucket:
        problems.append(f"bucket {spec.storage.bucket!r} is the configured (real) bucket")
    if problems:
        raise ValueError("not a live run's throwaway spec: " + "; ".join(problems))


def down_command(config: Path | str, spec: Spec) -> str:
    """The exact command that removes what a live run of `spec` (from `config`) made: the run's names
    go in as SPOTREG_* overrides, since they differ from the file's."""
    overrides = {
        "SPOTREG_DEPLOYMENT__NAME": spec.deployment.name,
        "SPOTREG_STORAGE__BUCKET": spec.storage.bucket,
        "SPOTREG_DEPLOYMENT__REGION": spec.deployment.region,
    }
    prefix = " ".join(f"{key}={shlex.quote(value)}" for key, value in overrides.items())
    return f"{prefix} spotreg down --config {shlex.quote(str(config))} --delete-data"


def sweep_command(region: str, run_id: str) -> str:
    """The sweeper's command for everything of one run (by its ``spotreg:run`` tag)."""
    return f"spotreg sweep --region {shlex.quote(region)} --run-id {shlex.quote(run_id)} --delete"


# --- what the run costs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunCostItem:
    label: str
    amount: Decimal
    note: str


@dataclass(frozen=True)
class RunCost:
    """What about `hours` of a live run cost: the instance at its on-demand ceiling, the public IPv4
    address, the volume and the S3 requests of one push, one pull and the registry's health checks."""

    hours: Decimal
    instance_type: str
    items: tuple[RunCostItem, ...]
    total: Decimal
    prices_as_of: str
    prices_origin: str
    currency: str = "USD"

    def lines(self) -> list[str]:
        head = (
            f"estimated cost of this live run: ${self.total} {self.currency} for about {self.hours} h "
            f"(prices as of {self.prices_as_of}, {self.prices_origin})"
        )
        return [head, *(f"  ${item.amount}  {item.label}: {item.note}" for item in self.items)]


def _money(amount: Decimal) -> Decimal:
    return amount.quantize(_MONEY, rounding=ROUND_HALF_UP)


def estimate_run_cost(
    spec: Spec, prices: PriceTable, *, hours: Decimal = RUN_HOURS, pushes: int = 1, pulls: int = 1
) -> RunCost:
    """The cost of a live run of `spec` lasting `hours`, from the same prices and model as
    ``spotreg cost``. The instance is priced at the on-demand ceiling (capped by instance.max_price) of
    the dearest listed type it may land on; types without a price are left out (PriceError if none has one)."""
    rates: list[tuple[Decimal, str, str]] = []
    problems: list[InputProblem] = []
    estimate = None
    for instance_type in spec.instance.types:
        try:
            one = estimate_monthly_cost(
                spec,
                prices,
                stored_gib=0,
                pushes_per_month=pushes,
                pulls_per_month=pulls,
                egress_gib=0,
                spot_price_per_hour=None,
                instance_type=instance_type,
            )
        except PriceError as error:
            if any(p.field == "deployment.region" for p in error.problems):
                raise
            problems.extend(error.problems)
            continue
        if estimate is None:
            estimate = one
        rates.append((one.hourly_rate, instance_type, one.rate_basis))
    if estimate is None:
        raise PriceError(problems)
    rate, instance_type, basis = max(rates, key=lambda r: r[0])
    region = prices.region(spec.deployment.region)
    checks = (hours * SECONDS_PER_HOUR / spec.registry.health_interval_seconds).to_integral_value(ROUND_DOWN)
    health_requests = checks * prices.registry_requests.per_health_check
    write, read = estimate.item("s3_requests_write"), estimate.item("s3_requests_read")
    items = (
        RunCostItem(f"EC2 instance {instance_type}", _money(rate * hours), f"{hours} h at ${rate}/h ({basis})"),
        RunCostItem(
            "public IPv4 address",
            _money(prices.public_ipv4_per_hour * hours),
            f"{hours} h at ${prices.public_ipv4_per_hour}/h",
        ),
        RunCostItem(
            "EBS gp3 root volume",
            _money(spec.instance.volume_gb * region.ebs_gp3_per_gb_month * hours / prices.hours_per_month),
            f"{spec.instance.volume_gb} GB for {hours} h",
        ),
        RunCostItem(
            "S3 requests",
            _money(
                write.quantity * write.unit_price
                + read.quantity * read.unit_price
                + health_requests * region.s3_class_a_per_1000 / 1000
            ),
            f"{pushes} push, {pulls} pull, {health_requests} health-check LISTs",
        ),
    )
    return RunCost(
        hours=hours,
        instance_type=instance_type,
        items=items,
        total=sum((item.amount for item in items), Decimal(0)),
        prices_as_of=prices.as_of,
        prices_origin=prices.origin,
        currency=prices.currency,
    )


# --- credentials -----------------------------------------------------------------------------------------


class NoCredentials(SpotregError):
    """The default credential chain holds no usable AWS credentials: nothing was made."""

    exit_code = 2


@dataclass(frozen=True)
class CallerIdentity:
    account: str
    arn: str


def check_credentials(clients: AwsClients) -> CallerIdentity:
    """Who the credentials are, by ``sts:GetCallerIdentity`` (which needs no permission and creates
    nothing); NoCredentials when there are none or AWS refuses them. Without credentials botocore
    raises before it sends anything."""
    hint = (
        "the live tier uses the default credential chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
        "AWS_PROFILE with ~/.aws/config, SSO, a web identity (OIDC) or the instance role; nothing was created"
    )
    try:
        answer = clients.sts.get_caller_identity()
    except ClientError as error:
        detail = error.response.get("Error", {})
        raise NoCredentials(
            "no usable AWS credentials in the default chain: sts:GetCallerIdentity answered "
            f"{detail.get('Code', '?')}: {detail.get('Message', '')}",
            hint=hint,
        ) from error
    except BotoCoreError as error:
        raise NoCredentials(f"no AWS credentials in the default chain: {error}", hint=hint) from error
    return CallerIdentity(str(answer["Account"]), str(answer.get("Arn", "")))


# --- the sweep at the start ------------------------------------------------------------------------------


def sweep_expired(
    clients: AwsClients, now: datetime, *, waits: Waits | None = None, progress: Progress | None = None
) -> tuple[list[Found], list[str]]:
    """Delete this account's spotreg test resources that expired before `now` (earlier runs that were
    killed); returns what was found, with its outcome, and lines reporting it."""
    found = sweep(clients, expired_before=now, dry_run=False, waits=waits, progress=progress)
    deleted = [f for f in found if f.outcome == "deleted"]
    lines = [f"sweep of expired test resources (before {iso_utc(now)}): {len(deleted)} removed"]
    lines += [f"  {f}" for f in found]
    stuck = failed(found)
    if stuck:
        lines.append(f"  {len(stuck)} could not be removed: a later sweep tries again")
    return found, lines


# --- DNS -------------------------------------------------------------------------------------------------

Resolve = Callable[[str], set[str]]


def system_resolve(hostname: str) -> set[str]:
    """The IPv4 addresses this machine's resolver gives for `hostname` (empty when none)."""
    try:
        answers = socket.getaddrinfo(hostname, None, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror:
        return set()
    return {str(answer[4][0]) for answer in answers}


def wait_until_resolves(
    hostname: str,
    address: str,
    resolve: Resolve,
    *,
    timeout: float,
    interval: float = 5.0,
    max_interval: float = 30.0,
    progress: Progress | None = None,
) -> str:
    """Wait (bounded) until `resolve(hostname)` answers `address`; WaitTimeout with the last answer."""

    def check() -> tuple[bool, str]:
        seen = resolve(hostname)
        return address in seen, (", ".join(sorted(seen)) or "no answer")

    return poll_until(
        f"{hostname} to resolve to {address}",
        check,
        timeout=timeout,
        interval=interval,
        max_interval=max_interval,
        progress=progress,
        step="dns",
    )


# --- teardown --------------------------------------------------------------------------------------------


class RunInterrupted(KeyboardInterrupt):
    """SIGTERM or SIGINT arrived during a live run: raised where the run was, so that the teardown
    runs as it unwinds (a KeyboardInterrupt: pytest stops the session and runs its finalizers)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"{signal.Signals(signum).name}: the live run was interrupted; tearing it down")


@dataclass(frozen=True)
class TeardownResult:
    name: str
    error: str | None = None

    def __str__(self) -> str:
        return f"{self.name}: " + ("done" if self.error is None else f"FAILED: {self.error}")


class TeardownError(SpotregError):
    """Some teardown action failed (the others still ran); says which, and how to finish by hand."""

    def __init__(self, results: Sequence[TeardownResult], hint: str | None = None) -> None:
        self.results = tuple(results)
        failures = "; ".join(str(r) for r in self.results if r.error is not None)
        super().__init__(f"teardown incomplete: {failures}", hint=hint)


class TeardownRegistry:
    """Actions that undo a run, registered before what they undo exists.

    `run()` runs each action once, last registered first; a failing action does not stop the others.
    `install_signal_handlers()` makes SIGTERM and SIGINT interrupt the run (RunInterrupted, raised in the
    main thread wherever it is) so that the `run()` in the caller's ``finally`` / finalizer happens; the
    handlers never call AWS themselves (an interrupted call may hold a lock the teardown's calls would
    need). A second signal, or one during the teardown, is reported and ignored: the teardown finishes
    (kill -9 leaves the rest to the sweeper and the expiry tag). `restore_signal_handlers()` puts the
    previous handlers back. Actions still pending when the interpreter exits run then (atexit).
    """

    def __init__(self, say: Callable[[str], None] | None = None, signals: Sequence[int] = SIGNALS) -> None:
        self._say = say or (lambda line: None)
        self._signals = tuple(signals)
        self._actions: list[tuple[str, Callable[[], object]]] = []
        self._previous: dict[int, Any] = {}
        self._running = False
        self.interrupted: int | None = None
        self.results: list[TeardownResult] = []
        self._exit_hook = False

    @property
    def pending(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self._actions)

    @property
    def handlers_installed(self) -> bool:
        """Whether this registry's handler is the one in place for each of its signals."""
        return bool(self._previous) and all(signal.getsignal(s) == self._on_signal for s in self._signals)

    def register(self, name: str, action: Callable[[], object]) -> None:
        self._actions.append((name, action))
        if not self._exit_hook:
            atexit.register(self._at_exit)
            self._exit_hook = True

    def install_signal_handlers(self) -> None:
        """Handle SIGTERM/SIGINT until restore_signal_handlers (main thread only, as Python requires)."""
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("signal handlers can only be installed from the main thread")
        for signum in self._signals:
            if signum not in self._previous:
                self._previous[signum] = signal.signal(signum, self._on_signal)

    def restore_signal_handlers(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self._running or self.interrupted is not None:
            self._say(
                f"{name} again: the teardown is under way and will finish (kill -9 leaves the rest to the sweeper)"
            )
            return
        self.interrupted = signum
        self._say(f"{name}: interrupting the live run to tear it down")
        raise RunInterrupted(signum)

    def disarm(self) -> tuple[str, ...]:
        """Drop every pending action (the resources are kept on purpose); returns their names."""
        kept = self.pending
        self._actions.clear()
        return kept

    def run(self) -> list[TeardownResult]:
        """Run every pending action once, last registered first; returns what each did."""
        self._running = True
        results: list[TeardownResult] = []
        try:
            while self._actions:
                name, action = self._actions.pop()
                self._say(f"teardown: {name}")
                try:
                    action()
                except Exception as error:  # one failing action must not keep the others from running
                    results.append(TeardownResult(name, f"{type(error).__name__}: {error}"))
                    self._say(f"teardown: {name} FAILED: {error}")
                else:
                    results.append(TeardownResult(name))
        finally:
            self._running = False
        self.results.extend(results)
        return results

    def close(self) -> None:
        """Restore the signal handlers and forget the exit hook (after run() or disarm())."""
        self.restore_signal_handlers()
        if self._exit_hook:
            atexit.unregister(self._at_exit)
            self._exit_hook = False

    def _at_exit(self) -> None:
        if self._actions:
            self._say("exiting with teardown actions pending: running them now")
            self.run()

    @contextlib.contextmanager
    def armed(self) -> Iterator[TeardownRegistry]:
        """Signal handlers installed for the block; on leaving it (however), run and restore."""
        self.install_signal_handlers()
        try:
            yield self
        finally:
            try:
                self.run()
            finally:
                self.close()
