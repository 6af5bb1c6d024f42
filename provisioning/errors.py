"""What can go wrong when spotreg talks to AWS or to the registry, with what the CLI needs to say it.

Every error is a `SpotregError`; each subclass carries the facts an operator needs (which field, which
resource, which AWS action, what was last seen) and the process exit code the CLI ends with
(`exit_code`); `from_aws_error` turns an AWS error that reached the top into the matching SpotregError.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
)


class SpotregError(Exception):
    """Base of every error spotreg raises on purpose."""

    exit_code: int = 1
    step: str | None = None  # the step of `up` or `down` it came from, when it came from one

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint  # may be set later (by `up`, say, which knows whether it made anything)
        super().__init__(message)

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message}\n  hint: {self.hint}"


@dataclass(frozen=True)
class InputProblem:
    """One piece of bad input: which field, what was given, and the rule it broke."""

    field: str
    value: object
    rule: str

    def __str__(self) -> str:
        return f"{self.field} = {self.value!r}: {self.rule}"


class InputError(SpotregError):
    """Bad input found before any AWS call that changes anything."""

    exit_code = 2

    def __init__(self, problems: Sequence[InputProblem], *, hint: str | None = None) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid input:\n" + "\n".join(f"  - {p}" for p in self.problems), hint=hint)


class SecretError(InputError):
    """A secret reference (`env:VAR`, `ssm:/path`) that does not resolve."""


class PermissionDenied(SpotregError):
    """AWS refused an action: names the action and the resource it was refused on."""

    exit_code = 3

    def __init__(self, action: str, resource: str, detail: str = "", *, hint: str | None = None) -> None:
        self.action = action
        self.resource = resource
        self.detail = detail
        message = f"AWS denied {action} on {resource}"
        super().__init__(f"{message}: {detail}" if detail else message, hint=hint)


# The name the first design used; PermissionDenied does not shadow the builtin PermissionError.
PermissionError_ = PermissionDenied


@dataclass(frozen=True)
class LaunchAttempt:
    """One try to launch the spot instance, and why it failed (or `None` if it succeeded)."""

    instance_type: str
    zone: str
    error_code: str | None
    message: str = ""

    def __str__(self) -> str:
        outcome = "launched" if self.error_code is None else f"{self.error_code}: {self.message}"
        return f"{self.instance_type} in {self.zone}: {outcome}"


class CapacityError(SpotregError):
    """No listed instance type in any usable zone could be launched."""

    exit_code = 4

    def __init__(self, attempts: Sequence[LaunchAttempt], *, hint: str | None = None) -> None:
        self.attempts = tuple(attempts)
        lines = "\n".join(f"  - {a}" for a in self.attempts) or "  (no candidate type and zone)"
        super().__init__(
            "no spot capacity for any listed instance type and zone:\n" + lines,
            hint=hint or "add instance types to instance.types, raise instance.max_price, or try later",
        )


class WaitTimeout(SpotregError):
    """A bounded wait for AWS ran out: what was awaited, for how long, and what was last seen."""

    exit_code = 5

    def __init__(self, what: str, waited: float, last_seen: str = "", *, hint: str | None = None) -> None:
        self.what = what
        self.waited = waited
        self.last_seen = last_seen
        message = f"gave up waiting for {what} after {waited:.0f} s"
        super().__init__(f"{message} (last seen: {last_seen})" if last_seen else message, hint=hint)


class HealthTimeout(WaitTimeout):
    """The registry endpoint did not answer healthy in time; carries what it last answered."""

    def __init__(
        self,
        url: str,
        waited: float,
        *,
        attempts: int,
        last_status: int | None,
        last_body: str,
        last_error: str | None,
        console_output: str | None = None,
    ) -> None:
        self.url = url
        self.attempts = attempts
        self.last_status = last_status
        self.last_body = last_body
        self.last_error = last_error
        self.console_output = console_output
        seen = f"HTTP {last_status}: {last_body[:200]!r}" if last_status is not None else last_error or "no answer"
        super().__init__(f"{url} to answer healthy ({attempts} attempts)", waited, seen)


class DnsError(SpotregError):
    """A DNS provider refused the update; carries the provider's own error messages."""

    exit_code = 6

    def __init__(self, provider: str, hostname: str, errors: Sequence[str]) -> None:
        self.provider = provider
        self.hostname = hostname
        self.errors = tuple(errors)
        super().__init__(f"{provider} did not update {hostname}: " + "; ".join(self.errors))


class StepFailed(SpotregError):
    """A step failed with an error spotreg has no better name for (an AWS error, say). Carries the step
    and the original error; no hint of its own: `up` adds one that fits what it made (`up_hint`).
    (Errors that are SpotregErrors already are raised as they are, with their `step` set.)"""

    def __init__(self, step: str, cause: BaseException, *, hint: str | None = None) -> None:
        self.step = step
        self.cause = cause
        super().__init__(f"step {step!r} failed: {cause}", hint=hint)


def up_hint(made_something: bool) -> str:
    """The hint for a failed `up`: `down` only when the run changed something."""
    if made_something:
        return "run 'spotreg down' to remove what was made, or fix the cause and run 'spotreg up' again"
    return "nothing was made; fix the cause and run 'spotreg up' again"


class OwnershipError(SpotregError):
    """A resource by spotreg's name exists but is not tagged as this deployment's: spotreg leaves it be."""

    exit_code = 7

    def __init__(self, kind: str, name: str, detail: str) -> None:
        self.kind = kind
        self.name = name
        super().__init__(f"{kind} {name!r} {detail}")


class LockHeld(SpotregError):
    """Another `up` or `down` of the deployment holds its lock: one writer at a time."""

    exit_code = 8

    def __init__(self, parameter: str, holder: str, since: str, expires: str) -> None:
        self.holder = holder
        super().__init__(
            f"deployment locked by {holder} since {since} (until {expires} at the latest)",
            hint=f"wait for it to finish; if that run is gone, the lock lapses at {expires}, or remove it: "
            f"aws ssm delete-parameter --name {parameter}",
        )


class Interrupted(SpotregError):
    """SIGINT or SIGTERM during `up` or `down`: what was in flight; the next run converges."""

    exit_code = 130

    def __init__(self, phase: str, in_flight: str | None) -> None:
        self.phase = phase
        doing = f" ({in_flight})" if in_flight else ""
        super().__init__(
            f"interrupted during {phase}{doing}",
            hint="run the same command again: 'up' and 'down' both converge from wherever this one stopped",
        )


class AwsDenied(PermissionDenied):
    """AWS refused a call as not allowed (AccessDenied, UnauthorizedOperation, ...), or there were no
    credentials to make it with: what the CLI says, exit code 3."""

    def __init__(self, message: str, *, action: str = "", hint: str | None = None) -> None:
        self.action = action
        self.resource = ""
        self.detail = message
        SpotregError.__init__(self, message, hint=hint)


class CredentialsError(AwsDenied):
    """No AWS credentials, or credentials AWS rejected (exit code 3); the message is the credential
    chain's (botocore's) or AWS's own explanation."""


class AwsFailed(SpotregError):
    """AWS answered a call with an error spotreg has no better name for, or could not be reached."""


class AwsUnreachable(AwsFailed):
    """The AWS endpoint could not be reached: one line naming it."""

    def __init__(self, endpoint: str, reason: str) -> None:
        self.endpoint = endpoint
        super().__init__(f"could not reach AWS at {endpoint}: {reason}")


# The codes AWS answers a call with when the credentials themselves are refused.
CREDENTIAL_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
        "AuthFailure",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidAccessKeyId",
        "InvalidToken",
        "RequestExpired",
    }
)


# The codes AWS services deny a call with (provisioning.tags.is_denied uses them too).
DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Forbidden", "403", "AllAccessDisabled"}
)


def aws_error_code(error: ClientError) -> str:
    """The error code AWS answered with (``AccessDenied``), or ``""``."""
    return str(error.response.get("Error", {}).get("Code", ""))


def is_denied_code(code: str) -> bool:
    """Whether `code` denies the call: one of DENIED_CODES, or any code naming AccessDenied or
    Unauthorized (services spell them variously)."""
    return code in DENIED_CODES or "AccessDenied" in code or "Unauthorized" in code


_CREDENTIALS_HINT = "check the credential chain: AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws"


def credentials_or_connection(error: BaseException) -> SpotregError | None:
    """The CredentialsError or AwsUnreachable `error` amounts to, or None when it is neither."""
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return CredentialsError(f"AWS credentials missing: {error}", hint=_CREDENTIALS_HINT)
    if isinstance(error, ClientError) and aws_error_code(error) in CREDENTIAL_CODES:
        detail = str(error.response.get("Error", {}).get("Message", "")) or str(error)
        message = f"AWS rejected the credentials ({aws_error_code(error)}): {detail}"
        return CredentialsError(message, action=error.operation_name, hint=_CREDENTIALS_HINT)
    if isinstance(error, EndpointConnectionError | ConnectTimeoutError):
        endpoint = str(error.kwargs.get("endpoint_url", "")) or "its endpoint"
        reason = "the connection timed out" if isinstance(error, ConnectTimeoutError) else "could not connect"
        return AwsUnreachable(endpoint, reason)
    return None


def from_aws_error(error: ClientError | BotoCoreError) -> SpotregError:
    """The SpotregError an AWS error that reached the top amounts to (its `exit_code` is the CLI's):

    - credentials missing or rejected (``credentials_or_connection``): CredentialsError (3);
    - an error code that denies the call (``is_denied_code``): AwsDenied (3);
    - AWS not reached: AwsUnreachable (1), one line naming the endpoint;
    - any other error answered: AwsFailed (1).
    """
    known = credentials_or_connection(error)
    if known is not None:
        return known
    if isinstance(error, ClientError):
        message = f"AWS refused {error.operation_name}: {error}"
        denied = is_denied_code(aws_error_code(error))
        return AwsDenied(message, action=error.operation_name) if denied else AwsFailed(message)
    return AwsFailed(f"could not talk to AWS: {error}")
