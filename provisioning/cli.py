"""`spotreg`: validate, render, provision, inspect, remove and verify a registry deployment.

Exit codes: 0 success; 1 failure; 2 invalid configuration or usage; 3 AWS denied an action;
4 no spot capacity; 5 a wait timed out; 6 DNS update refused; 7 a resource by spotreg's name is not ours;
130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from rich.console import Console

from provisioning.errors import SpotregError
from provisioning.spec import Spec, load_spec

EXIT_DENIED = 3
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


def _render(spec: Spec, artifact: str) -> str:
    if artifact == "userdata":
        from provisioning.render.tls import render_selfsigned
        from provisioning.render.user_data import render_user_data

        if spec.tls.mode != "selfsigned":
            return render_user_data(spec)
        # `up` makes the certificate once and keeps its key in SSM; here a fresh one stands in for it.
        err.print("note: a fresh self-signed certificate stands in for the one 'up' makes", style="dim")
        names = [spec.dns.hostname] if spec.dns.hostname else ["localhost"]
        material = render_selfsigned(names, now=datetime.now(UTC))
        return render_user_data(spec, server_cert_pem=material.server_cert_pem)
    if artifact == "policy":
        from provisioning.render.policy import render_registry_policy

        account = os.environ.get("SPOTREG_ACCOUNT_ID", "123456789012")
        return json.dumps(render_registry_policy(spec, account), indent=2) + "\n"
    if artifact == "registry-config":
        from provisioning.render.registry_config import render_registry_config

        return render_registry_config(spec)
    from provisioning.render.security_group import render_ingress_rules, to_ip_permissions

    return json.dumps(to_ip_permissions(render_ingress_rules(spec)), indent=2) + "\n"


def cmd_render(args: argparse.Namespace) -> int:
    sys.stdout.write(_render(load_spec(args.config), args.artifact))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    spec = load_spec(args.config)
    out.print(f"{args.config}: valid (deployment {spec.deployment.name!r} in {spec.deployment.region})")
    return 0


def _provisioner(args: argparse.Namespace) -> Any:
    from provisioning.aws.clients import make_clients
    from provisioning.provisioner import Provisioner

    spec = load_spec(args.config)
    clients = make_clients(spec.deployment.region, endpoint_url=args.endpoint_url)

    def progress(message: str) -> None:
        err.print(f"· {message}", style="dim", markup=False)

    return Provisioner(spec, clients, progress=progress)


def _print(result: Any) -> None:
    text = result.render() if hasattr(result, "render") else str(result)
    out.print(text)


def cmd_plan(args: argparse.Namespace) -> int:
    _print(_provisioner(args).plan())
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    provisioner = _provisioner(args)
    _print(provisioner.up(legacy_access_key=args.legacy_access_key, wait_healthy=args.wait_healthy))
    last = getattr(provisioner, "last_up", None)
    if last is not None and getattr(last, "placement", None) is not None:
        out.print(f"placement: {last.placement}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    if args.endpoint_url and args.health_timeout:
        # moto's instances have made-up public addresses: probing them would send traffic off this machine.
        err.print("note: no health probe with --endpoint-url (the instance's address is not real)", style="dim")
        args.health_timeout = None
    _print(_provisioner(args).status(health_timeout=args.health_timeout))
    return 0


def cmd_inventory(args: argparse.Namespace) -> int:
    _print(_provisioner(args).inventory())
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    _print(_provisioner(args).down(delete_data=args.delete_data))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from provisioning.aws.clients import make_clients
    from provisioning.provisioner import sweep

    clients = make_clients(args.region, endpoint_url=args.endpoint_url)
    found = sweep(clients, run_id=args.run_id, expired_before=args.expired_before, dry_run=not args.delete)
    for item in found:
        out.print(str(item))
    verb = "removed" if args.delete else "would remove (dry run; add --delete)"
    out.print(f"{len(found)} resource(s) {verb}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from provisioning.verify import run_verify

    return run_verify(args)


def cmd_rehearse(args: argparse.Namespace) -> int:
    from provisioning.rehearsal.rehearse import rehearse

    return rehearse(
        args,
        say=lambda line: err.print(line, style="dim", markup=False),
        tell=lambda line: out.print(line, markup=False),
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spotreg", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(handler=handler)
        return p

    def with_config(p: argparse.ArgumentParser, required: bool = True) -> None:
        p.add_argument("--config", type=Path, required=required, help="spotreg.toml")

    def with_endpoint(p: argparse.ArgumentParser) -> None:
        p.add_argument("--endpoint-url", default=None, help="send every AWS call here (moto's server)")

    p = command("validate", cmd_validate, "check a configuration and list every problem")
    with_config(p)
    p = command("render", cmd_render, "print an artifact rendered from the configuration")
    p.add_argument("artifact", choices=["userdata", "policy", "registry-config", "security-group"])
    with_config(p)
    for name, handler, help_ in (
        ("plan", cmd_plan, "show what 'up' would create or change; changes nothing"),
        ("inventory", cmd_inventory, "every resource of the deployment, found by its tags"),
    ):
        p = command(name, handler, help_)
        with_config(p)
        with_endpoint(p)
    p = command("status", cmd_status, "deployment, instance state, address, DNS and endpoint health")
    with_config(p)
    with_endpoint(p)
    p.add_argument("--health-timeout", type=float, default=10.0, help="seconds to wait for /v2/ (0: no probe)")
    p = command("up", cmd_up, "create or correct every resource; a second 'up' changes nothing")
    with_config(p)
    with_endpoint(p)
    p.add_argument(
        "--legacy-access-key",
        action="store_true",
        help="2014 recipe: an IAM user's access key for the registry (worse: a long-lived key on the instance)",
    )
    p.add_argument(
        "--wait-healthy", type=float, default=None, metavar="SECONDS", help="then wait this long for /v2/ to answer"
    )
    p = command("down", cmd_down, "remove the deployment; keeps the bucket and its images")
    with_config(p)
    with_endpoint(p)
    p.add_argument("--delete-data", action="store_true", help="also empty and delete the bucket (loses images)")
    p = command("sweep", cmd_sweep, "find resources left by test runs (dry run unless --delete)")
    p.add_argument("--region", required=True)
    with_endpoint(p)
    p.add_argument("--run-id", default=None, help="only this run's resources")
    p.add_argument("--expired-before", default=None, help="ISO time; default: now")
    p.add_argument("--delete", action="store_true", help="delete what is listed")
    from provisioning.cost import add_cost_arguments, cmd_cost
    from provisioning.smoke import add_smoke_arguments

    p = command("cost", cmd_cost, "monthly cost estimate with line items, next to ECR and the 2014 recipe")
    add_cost_arguments(p)
    from provisioning.rehearsal.rehearse import add_rehearse_arguments

    p = command(
        "rehearse", cmd_rehearse, "deploy a configuration on this machine: moto AWS, an instance box, moto's S3"
    )
    add_rehearse_arguments(p)
    p = command("verify", cmd_verify, "run the verification suites and write reports/")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--offline", action="store_true", help="moto AWS, instance boxes booting the user data, moto S3")
    mode.add_argument("--live", action="store_true", help="real AWS (costs money; needs --config)")
    mode.add_argument("--endpoint", default=None, help="smoke-test a deployed registry HOST[:PORT]")
    with_config(p, required=False)
    p.add_argument("--reports", type=Path, default=Path("reports"), help="where reports are written")
    add_smoke_arguments(p)
    p.add_argument("pytest_args", nargs="*", help="extra arguments for pytest (after --)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except SpotregError as error:
        err.print(f"error: {error}", style="bold red", markup=False)
        return error.exit_code
    except NoCredentialsError as error:
        err.print(f"error: no AWS credentials in the default chain ({error})", style="bold red", markup=False)
        return EXIT_DENIED
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        err.print(f"error: AWS refused {error.operation_name}: {error}", style="bold red", markup=False)
        return EXIT_DENIED if "AccessDenied" in code or "Unauthorized" in code else 1
    except BotoCoreError as error:
        err.print(f"error: could not talk to AWS: {error}", style="bold red", markup=False)
        return 1
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
