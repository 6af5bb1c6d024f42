"""`spotreg`: validate, render, provision, inspect, remove and verify a registry deployment.

Exit codes: 0 success; 1 failure; 2 invalid configuration or usage; 3 AWS denied an action;
4 no spot capacity; 5 a wait timed out; 6 DNS update refused; 7 a resource by spotreg's name is not ours;
8 another up or down of the deployment runs; 130 interrupted (SIGINT or SIGTERM). `status` alone: 0 up and
probed healthy; 10 not deployed; 11 instance missing or stopped; 12 unhealthy endpoint; 13 DNS points
elsewhere; 14 health not checked (--endpoint-url, --health-timeout 0).
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from harness.smoke.target import DEFAULT_MIN_CERT_DAYS
from harness.verify import SmokeOptions, Tier
from provisioning.cost import DEFAULT_EGRESS_GIB, DEFAULT_PULLS, DEFAULT_PUSHES, DEFAULT_STORED_GIB
from provisioning.errors import SpotregError, from_aws_error
from provisioning.rehearsal.rehearse import (
    DEFAULT_FRONT_IMAGE,
    DEFAULT_REGISTRY_IMAGE,
    FRONT_IMAGE_ENV,
    REGISTRY_IMAGE_ENV,
)
from spotreg import commands
from spotreg.commands import ARTIFACTS, err

EXIT_INTERRUPTED = 130

Handler = Callable[[argparse.Namespace], int]  # maps the parsed flags to one typed command


# --- what flags accept -----------------------------------------------------------------------------------


def _non_negative_decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number, zero or more")
    return value


def _positive_decimal(text: str) -> Decimal:
    value = _non_negative_decimal(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than zero")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number of seconds, zero or more")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be zero or more")
    return value


def _region(text: str) -> str:
    """A region name: a non-empty word (botocore says, at the first call, whether it knows it)."""
    if not text or not text.isprintable() or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a region name (for example us-east-1)")
    return text


def _endpoint_url(text: str) -> str:
    """An http(s) URL with a host (and a valid port, if any), no spaces: checked before any AWS call."""
    if not text.isprintable() or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a URL: it has spaces or control characters")
    try:
        parts = urlsplit(text)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        parts, port_ok = None, False
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http:// or https:// URL with a host")
    return text


# --- the commands' flags ---------------------------------------------------------------------------------


def _with_config(p: argparse.ArgumentParser, *, required: bool = True, help_: str = "spotreg.toml") -> None:
    p.add_argument("--config", type=Path, required=required, help=help_)


def _with_endpoint_url(p: argparse.ArgumentParser, help_: str = "send every AWS call here (moto's server)") -> None:
    p.add_argument("--endpoint-url", type=_endpoint_url, default=None, help=help_)


def _provisioning_commands(command: Callable[[str, Handler, str], argparse.ArgumentParser]) -> None:
    p = command("validate", lambda a: commands.validate(a.config), "check a configuration and list every problem")
    _with_config(p)
    p = command(
        "render",
        lambda a: commands.render(a.config, a.artifact, legacy_access_key=a.legacy_access_key),
        "print an artifact rendered from the configuration",
    )
    p.add_argument("artifact", choices=ARTIFACTS)
    _with_config(p)
    p.add_argument(
        "--legacy-access-key",
        action="store_true",
        help="operator-policy: also allow 'up --legacy-access-key' (the legacy IAM user and its key)",
    )
    p = command(
        "plan",
        lambda a: commands.plan(a.config, a.endpoint_url),
        "show what 'up' would create or change; changes nothing",
    )
    _with_config(p)
    _with_endpoint_url(p)
    p = command(
        "inventory",
        lambda a: commands.inventory(a.config, a.endpoint_url),
        "every resource of the deployment, found by its tags",
    )
    _with_config(p)
    _with_endpoint_url(p)
    p = command(
        "status",
        lambda a: commands.status(a.config, a.endpoint_url, health_timeout=a.health_timeout, as_json=a.json),
        "deployment, instance state, address, DNS and endpoint health; exit 0 only when probed healthy",
    )
    _with_config(p)
    _with_endpoint_url(p)
    p.add_argument("--health-timeout", type=_seconds, default=10.0, help="seconds to wait for /v2/ (0: no probe)")
    p.add_argument("--json", action="store_true", help="print one JSON object (verdict, exit code, facts)")
    p = command(
        "up",
        lambda a: commands.up(
            a.config,
            a.endpoint_url,
            legacy_access_key=a.legacy_access_key,
            wait_healthy=a.wait_healthy,
            switch_storage=a.switch_storage,
        ),
        "create or correct every resource; a second 'up' changes nothing",
    )
    _with_config(p)
    _with_endpoint_url(p)
    p.add_argument(
        "--legacy-access-key",
        action="store_true",
        help="2014 recipe: an IAM user's access key for the registry (worse: a long-lived key on the instance)",
    )
    p.add_argument(
        "--wait-healthy", type=_seconds, default=None, metavar="SECONDS", help="then wait this long for /v2/ to answer"
    )
    p.add_argument(
        "--switch-storage",
        action="store_true",
        help="accept that the registry's storage changes: a new storage.bucket (the registry starts empty; the old "
        "bucket is kept) or a bucket taken over from another deployment (a renamed deployment.name)",
    )
    p = command(
        "down",
        lambda a: commands.down(a.config, a.endpoint_url, delete_data=a.delete_data),
        "remove the deployment; keeps the bucket and its images",
    )
    _with_config(p)
    _with_endpoint_url(p)
    p.add_argument("--delete-data", action="store_true", help="also empty and delete the bucket (loses images)")
    p = command(
        "sweep",
        lambda a: commands.sweep(
            a.region, a.endpoint_url, run_id=a.run_id, expired_before=a.expired_before, delete=a.delete
        ),
        "find resources left by test runs (dry run unless --delete)",
    )
    p.add_argument("--region", required=True, type=_region)
    _with_endpoint_url(p)
    p.add_argument("--run-id", default=None, help="only this run's resources")
    p.add_argument("--expired-before", default=None, help="ISO time; default: now")
    p.add_argument("--delete", action="store_true", help="delete what is listed")


def _cost(a: argparse.Namespace) -> int:
    return commands.cost(
        a.config,
        prices=a.prices,
        stored_gib=a.stored_gib,
        pushes_per_month=a.pushes_per_month,
        pulls_per_month=a.pulls_per_month,
        egress_gib=a.egress_gib,
        instance_type=a.instance_type,
        spot_price=a.spot_price,
        spot_history=a.spot_history,
        endpoint_url=a.endpoint_url,
        as_json=a.json,
    )


def _cost_command(command: Callable[[str, Handler, str], argparse.ArgumentParser]) -> None:
    p = command("cost", _cost, "monthly cost estimate with line items, next to ECR and the 2014 recipe")
    _with_config(p)
    p.add_argument("--prices", type=Path, default=None, help="a JSON file of prices laid over the built-in ones")
    p.add_argument(
        "--stored-gib", type=_non_negative_decimal, default=DEFAULT_STORED_GIB, help="GiB of images in S3 (default 5)"
    )
    p.add_argument(
        "--pushes-per-month", type=_non_negative_int, default=DEFAULT_PUSHES, help="image pushes a month (default 100)"
    )
    p.add_argument(
        "--pulls-per-month", type=_non_negative_int, default=DEFAULT_PULLS, help="image pulls a month (default 1000)"
    )
    p.add_argument(
        "--egress-gib",
        type=_non_negative_decimal,
        default=DEFAULT_EGRESS_GIB,
        help="GiB pulled out to the internet a month (default 10)",
    )
    p.add_argument("--instance-type", default=None, help="price this type (default: the first of instance.types)")
    spot = p.add_mutually_exclusive_group()
    spot.add_argument("--spot-price", type=_positive_decimal, default=None, help="spot USD/hour to assume")
    spot.add_argument(
        "--spot-history",
        action="store_true",
        help="ask EC2 for the last 7 days' spot prices (needs AWS credentials) and use the best zone's mean",
    )
    _with_endpoint_url(p, "send the EC2 call here (moto's server)")
    p.add_argument("--json", action="store_true", help="print the estimate as JSON")


def _rehearse_command(command: Callable[[str, Handler, str], argparse.ArgumentParser]) -> None:
    p = command(
        "rehearse",
        lambda a: commands.rehearse(
            a.config,
            down=a.down,
            registry_image=a.registry_image,
            front_image=a.front_image,
            etc_hosts=a.etc_hosts,
            timeout=a.timeout,
        ),
        "deploy a configuration on this machine: moto AWS, an instance box, moto's S3",
    )
    _with_config(p, required=False, help_="spotreg.toml (needed unless --down)")
    p.add_argument("--down", action="store_true", help="remove every rehearsal's boxes, networks and hosts lines")
    p.add_argument(
        "--registry-image",
        default=None,
        help=f"local image that plays registry.image in the box (default: ${REGISTRY_IMAGE_ENV}, the configured "
        f"image if the engine has it, else {DEFAULT_REGISTRY_IMAGE})",
    )
    p.add_argument(
        "--front-image",
        default=None,
        help=f"local image that plays registry.front_image in the box (default: ${FRONT_IMAGE_ENV}, the "
        f"configured image if the engine has it, else {DEFAULT_FRONT_IMAGE})",
    )
    p.add_argument(
        "--etc-hosts",
        action="store_true",
        help="with dns.hostname: point it at the box in /etc/hosts while the rehearsal runs (root)",
    )
    p.add_argument("--timeout", type=float, default=300, help="seconds to wait for the registry (default 300)")


def _tier(a: argparse.Namespace) -> Tier:
    if a.live:
        return "live"
    if a.load:
        return "load"
    return "smoke" if a.endpoint else "offline"


def _verify(a: argparse.Namespace) -> int:
    smoke = SmokeOptions(a.smoke_ca, a.smoke_min_cert_days, a.smoke_insecure_http, a.smoke_resolve)
    return commands.verify(
        _tier(a), config=a.config, endpoint=a.endpoint, reports=a.reports, smoke=smoke, pytest_args=a.pytest_args
    )


def _login_command(command: Callable[[str, Handler, str], argparse.ArgumentParser]) -> None:
    p = command(
        "login",
        lambda a: commands.login(a.config, a.endpoint_url, print_only=a.print),
        "trust the registry's CA (self-signed) and 'docker login' its first user (password on stdin)",
    )
    _with_config(p)
    p.add_argument("--print", action="store_true", help="print the commands instead of running them")
    _with_endpoint_url(p)


def _verify_command(command: Callable[[str, Handler, str], argparse.ArgumentParser]) -> None:
    p = command("verify", _verify, "run the verification suites and write reports/")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--offline", action="store_true", help="moto AWS, instance boxes booting the user data, moto S3")
    mode.add_argument("--live", action="store_true", help="real AWS (costs money; needs --config)")
    mode.add_argument("--endpoint", default=None, help="smoke-test a deployed registry HOST[:PORT]")
    mode.add_argument("--load", action="store_true", help="a bounded pull load on a CPU-limited local registry")
    _with_config(p, required=False)
    p.add_argument("--reports", type=Path, default=Path("reports"), help="where reports are written")
    p.add_argument("--smoke-ca", type=Path, default=None, help="PEM CA bundle to verify the registry against")
    p.add_argument(
        "--smoke-min-cert-days",
        type=int,
        default=DEFAULT_MIN_CERT_DAYS,
        help=f"fail when the certificate has this many days left or fewer (default {DEFAULT_MIN_CERT_DAYS})",
    )
    p.add_argument(
        "--smoke-insecure-http",
        action="store_true",
        help="plain http instead of https; only for an endpoint in 127.0.0.0/8",
    )
    p.add_argument(
        "--smoke-resolve",
        default=None,
        metavar="ADDRESS",
        help="connect to ADDRESS instead of looking the endpoint's host up (before DNS points at a new "
        "instance); the certificate is still checked for the host name",
    )
    p.add_argument("pytest_args", nargs="*", help="extra arguments for pytest (after --)")


def build_parser() -> argparse.ArgumentParser:
    """The one parser of every command and flag; each command's `handler` maps its flags to a typed call."""
    parser = argparse.ArgumentParser(prog="spotreg", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler: Handler, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(handler=handler)
        return p

    _provisioning_commands(command)
    _cost_command(command)
    _rehearse_command(command)
    _verify_command(command)
    _login_command(command)
    return parser


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI job cancelled, `kill`) ends a command as Ctrl-C does: what was in flight, exit 130."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run the command, and end with the exit code its error's type says (130 when interrupted)."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        try:
            with sigterm_as_interrupt():
                return handler(args)
        except (ClientError, BotoCoreError) as error:
            raise from_aws_error(error) from error
    except SpotregError as error:
        err.print(f"error: {error}", style="bold red", markup=False)
        return error.exit_code
    except KeyboardInterrupt:
        err.print("interrupted")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
