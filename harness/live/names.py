"""A live run's identity and its own names: what keeps it away from the user's real deployment.

- ``RunIdentity``: a unique run id (``live-<utc yyyymmddHHMM>-<6 hex>``, the ``spotreg:run`` tag) and an
  expiry (``spotreg:expires``, three hours on) for every resource the run makes; what the sweeper of a
  later run finds if this one is killed.
- ``live_spec``: the user's spec with names of the run's own: deployment, bucket and host name come from
  the run id, users get throwaway passwords. A live run can therefore never touch the user's real
  deployment, bucket or DNS name, and deleting its bucket (``down(delete_data=True)``) is safe.
- ``down_command`` / ``sweep_command``: the exact commands that remove what a run made.
"""

from __future__ import annotations

import re
import secrets
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from provisioning.errors import SpotregError
from provisioning.spec import Spec
from provisioning.spec_loading import spec_from_mapping

RUN_PREFIX = "live"
RUN_ID_PATTERN = re.compile(r"^live-[0-9]{12}-[0-9a-f]{6}$")
LIFETIME = timedelta(hours=3)
PASSWORD_ENV_PREFIX = "SPOTREG_LIVE_PASSWORD_"  # noqa: S105 - a variable name's prefix, not a password


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
