"""What a live run asks AWS before and around its phases: who the credentials are (creating nothing),
the sweep of expired test resources of killed runs, and the bounded wait for a host name to resolve."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from botocore.exceptions import BotoCoreError, ClientError

from harness.live.names import iso_utc
from provisioning.clients import AwsClients
from provisioning.errors import SpotregError
from provisioning.sweeper import Found, failed, sweep
from provisioning.waits import Progress, Waits, poll_until

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
