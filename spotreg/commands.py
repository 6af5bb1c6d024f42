"""Each `spotreg` command as a typed function of its options; what it prints goes to stdout, progress
and notes to stderr. Errors are raised (SpotregError and its kinds): the CLI turns them into exit codes."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rich.console import Console

from provisioning.spec import Spec
from provisioning.spec_loading import SpecWarning, load_spec

if TYPE_CHECKING:
    from harness.verify import SmokeOptions, Tier
    from provisioning.provisioner import Provisioner

Artifact = Literal["userdata", "policy", "registry-config", "security-group", "operator-policy"]
ARTIFACTS: tuple[Artifact, ...] = ("userdata", "policy", "registry-config", "security-group", "operator-policy")

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


def say(line: str) -> None:
    """Progress and notes: on stderr, dimmed, never read as markup."""
    err.print(line, style="dim", markup=False)


def tell(line: str) -> None:
    """A result line on stdout, never read as markup."""
    out.print(line, markup=False)


def _account_id() -> str:
    """The account id a rendered policy names (SPOTREG_ACCOUNT_ID; a placeholder without it)."""
    return os.environ.get("SPOTREG_ACCOUNT_ID", "123456789012")


def _rendered(spec: Spec, artifact: Artifact, *, legacy_access_key: bool = False) -> str:
    if artifact == "userdata":
        from provisioning.render.tls import render_selfsigned
        from provisioning.render.user_data import render_user_data

        if spec.tls.mode != "selfsigned":
            return render_user_data(spec)
        # `up` makes the certificate once and keeps its key in SSM; here a fresh one stands in for it.
        say("note: a fresh self-signed certificate stands in for the one 'up' makes")
        names = [spec.dns.hostname] if spec.dns.hostname else ["localhost"]
        material = render_selfsigned(names, now=datetime.now(UTC))
        return render_user_data(spec, server_cert_pem=material.server_cert_pem)
    if artifact == "policy":
        from provisioning.render.policy import render_registry_policy

        return json.dumps(render_registry_policy(spec, _account_id()), indent=2) + "\n"
    if artifact == "operator-policy":
        from provisioning.render.operator_policy import render_operator_policy

        policy = render_operator_policy(spec, _account_id(), legacy_access_key=legacy_access_key)
        return json.dumps(policy, indent=2) + "\n"
    if artifact == "registry-config":
        from provisioning.render.registry_config import render_registry_config

        return render_registry_config(spec)
    from provisioning.render.security_group import render_ingress_rules, to_ip_permissions

    return json.dumps(to_ip_permissions(render_ingress_rules(spec)), indent=2) + "\n"


def render(config: Path, artifact: Artifact, *, legacy_access_key: bool = False) -> int:
    """`spotreg render ARTIFACT`: the artifact exactly as it is shipped, on stdout (`legacy_access_key`:
    the operator policy also allows `up --legacy-access-key`)."""
    sys.stdout.write(_rendered(load_spec(config), artifact, legacy_access_key=legacy_access_key))
    return 0


def _load_warning(config: Path) -> Spec:
    """The spec of ``config``; each key it gives that its modes ignore is a warning on stderr."""
    warnings: list[SpecWarning] = []
    spec = load_spec(config, warnings=warnings)
    for warning in warnings:
        err.print(str(warning), markup=False)
    return spec


def validate(config: Path) -> int:
    """`spotreg validate`: the configuration is valid (InputError lists every problem otherwise)."""
    spec = _load_warning(config)
    out.print(f"{config}: valid (deployment {spec.deployment.name!r} in {spec.deployment.region})")
    return 0


def _provisioner(config: Path, endpoint_url: str | None) -> Provisioner:
    from provisioning.clients import make_clients
    from provisioning.provisioner import Provisioner

    spec = _load_warning(config)
    clients = make_clients(spec.deployment.region, endpoint_url=endpoint_url)
    return Provisioner(spec, clients, progress=lambda message: say(f"· {message}"))


def plan(config: Path, endpoint_url: str | None) -> int:
    """`spotreg plan`: what `up` would create or change; changes nothing."""
    out.print(str(_provisioner(config, endpoint_url).plan()))
    return 0


def inventory(config: Path, endpoint_url: str | None) -> int:
    """`spotreg inventory`: every resource of the deployment, found by its tags."""
    out.print(str(_provisioner(config, endpoint_url).inventory()))
    return 0


def up(
    config: Path,
    endpoint_url: str | None,
    *,
    legacy_access_key: bool,
    wait_healthy: float | None,
    switch_storage: bool = False,
) -> int:
    """`spotreg up`: create or correct every resource, then say where the instance was placed and why."""
    if endpoint_url and wait_healthy:
        # moto's instances have made-up public addresses: probing them would send traffic off this machine.
        err.print("note: no health wait with --endpoint-url (the instance's address is not real)", style="dim")
        wait_healthy = None
    provisioner = _provisioner(config, endpoint_url)
    inventory = provisioner.up(
        legacy_access_key=legacy_access_key, wait_healthy=wait_healthy, switch_storage=switch_storage
    )
    out.print(str(inventory))
    if provisioner.last_up is not None:
        out.print(f"placement: {provisioner.last_up.placement}")
    return 0


def status(config: Path, endpoint_url: str | None, *, health_timeout: float | None, as_json: bool = False) -> int:
    """`spotreg status`: the deployment, its instance, address, DNS and (unless on moto) its health; exits
    with its verdict's code (provisioning/status_verdict.py): 0 only when probed healthy."""
    if endpoint_url and health_timeout:
        # moto's instances have made-up public addresses: probing them would send traffic off this machine.
        say("note: no health probe with --endpoint-url (the instance's address is not real)")
        health_timeout = None
    from provisioning.status_verdict import as_json as status_json
    from provisioning.status_verdict import judge

    found = _provisioner(config, endpoint_url).status(health_timeout=health_timeout)
    verdict = judge(found)
    if as_json:
        sys.stdout.write(json.dumps(status_json(found), indent=2) + "\n")
    else:
        out.print(f"{found}\n  verdict: {verdict} (exit {verdict.exit_code})")
    return verdict.exit_code


def down(config: Path, endpoint_url: str | None, *, delete_data: bool) -> int:
    """`spotreg down`: remove the deployment; the bucket and its images too only with `delete_data`."""
    out.print(str(_provisioner(config, endpoint_url).down(delete_data=delete_data)))
    return 0


def sweep(
    region: str, endpoint_url: str | None, *, run_id: str | None, expired_before: str | None, delete: bool
) -> int:
    """`spotreg sweep`: resources left by test runs, by their tags; removed only with `delete`."""
    from provisioning import rules
    from provisioning.clients import make_clients
    from provisioning.errors import InputError, InputProblem
    from provisioning.provisioner import sweep as sweep_test_runs

    try:
        rules.region(region)
    except ValueError as error:
        raise InputError([InputProblem("--region", region, str(error))]) from None
    clients = make_clients(region, endpoint_url=endpoint_url)
    found = sweep_test_runs(clients, run_id=run_id, expired_before=expired_before, dry_run=not delete)
    for item in found:
        out.print(str(item))
    verb = "removed" if delete else "would remove (dry run; add --delete)"
    out.print(f"{len(found)} resource(s) {verb}")
    return 0


def cost(
    config: Path,
    *,
    prices: Path | None,
    stored_gib: Decimal,
    pushes_per_month: int,
    pulls_per_month: int,
    egress_gib: Decimal,
    instance_type: str | None,
    spot_price: Decimal | None,
    spot_history: bool,
    endpoint_url: str | None,
    as_json: bool,
) -> int:
    """`spotreg cost`: the monthly estimate with its line items, as a table or JSON."""
    from provisioning.cost import print_estimate

    return print_estimate(
        config,
        prices=prices,
        stored_gib=stored_gib,
        pushes_per_month=pushes_per_month,
        pulls_per_month=pulls_per_month,
        egress_gib=egress_gib,
        instance_type=instance_type,
        spot_price=spot_price,
        spot_history=spot_history,
        endpoint_url=endpoint_url,
        as_json=as_json,
    )


def rehearse(
    config: Path | None,
    *,
    down: bool,
    registry_image: str | None,
    front_image: str | None,
    etc_hosts: bool,
    timeout: float,
) -> int:
    """`spotreg rehearse`: deploy `config` on this machine until Ctrl-C (or remove every rehearsal: `down`)."""
    from provisioning.rehearsal.rehearse import rehearse as rehearse_here

    return rehearse_here(
        config,
        down=down,
        registry_image=registry_image,
        front_image=front_image,
        etc_hosts=etc_hosts,
        timeout=timeout,
        say=say,
        tell=tell,
    )


def verify(
    tier: Tier,
    *,
    config: Path | None,
    endpoint: str | None,
    reports: Path,
    smoke: SmokeOptions,
    pytest_args: Sequence[str],
) -> int:
    """`spotreg verify`: a tier's suites, then reports/ (the exit code is pytest's, 1 when nothing ran)."""
    from harness.verify import run_verify

    return run_verify(tier, reports=reports, config=config, endpoint=endpoint, smoke=smoke, pytest_args=pytest_args)


def login(config: Path, endpoint_url: str | None, *, print_only: bool) -> int:
    """`spotreg login`: trust the registry's CA (self-signed) and `docker login` its first user, the
    password on stdin; `print_only` prints those commands (the CA written to a file) instead."""
    from provisioning import login as registry_login
    from provisioning.clients import make_clients

    spec = _load_warning(config)
    clients = make_clients(spec.deployment.region, endpoint_url=endpoint_url)
    rootless = registry_login.engine_is_rootless() if not print_only else _rootless_guess()
    certs_dir = registry_login.certs_d(rootless=rootless, environ=os.environ)
    plan = registry_login.plan_login(spec, clients, certs_dir=certs_dir)
    if print_only:
        ca_file = None
        if plan.ca_pem is not None:
            ca_file = Path.cwd() / f"{spec.deployment.name}-ca.crt"
            ca_file.write_text(plan.ca_pem, encoding="utf-8")
            say(f"the registry's CA: written to {ca_file}")
        sudo = not rootless and os.geteuid() != 0
        for line in registry_login.printed_commands(plan, region=spec.deployment.region, ca_file=ca_file, sudo=sudo):
            tell(line)
        return 0
    installed = registry_login.login(plan, spec, clients, os.environ)
    if installed is not None:
        say(f"the engine trusts the registry's CA: {installed}")
    tell(f"logged in to {plan.registry} as {plan.username}")
    return 0


def _rootless_guess() -> bool:
    """For --print without asking the engine: rootless when DOCKER_HOST is the user's own socket."""
    return f"/run/user/{os.getuid()}/" in os.environ.get("DOCKER_HOST", "")
