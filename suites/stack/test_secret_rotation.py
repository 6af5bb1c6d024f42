"""Secrets reach the running registry: a password changed and a user removed by a second ``up`` take
effect on the running instance within the README's bound, without a reboot and without a registry
restart (the shipped ``spotreg-refresh.timer`` re-reads SSM; distribution re-reads its htpasswd file).

The deployment is the test's own (two users, its own instance and Elastic IP), provisioned by the real
provisioner into the world's moto server and booted in an instance box from the user data it shipped.
The timer runs at its shipped interval: nothing is sped up for the test.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from fixtures.booted_registry import PASSWORD_ENV, USER, BootedRegistry, Deployment, StackVariant, provision, stack_spec
from provisioning import names
from provisioning.provisioner import Provisioner
from provisioning.rehearsal.overrides import REFRESH_DROP_IN, render_refresh_drop_in
from provisioning.rehearsal.world import World
from provisioning.render import paths
from provisioning.render.user_data import USERS_TAKE_EFFECT_WITHIN_SECONDS
from provisioning.secrets import htpasswd_matches
from provisioning.spec import Spec
from provisioning.spec_loading import spec_from_mapping

pytestmark = pytest.mark.stack

LEAVER = "leaver"
LEAVER_ENV = "SPOTREG_STACK_PASSWORD_LEAVER"


def _with_users(spec: Spec, users: list[dict[str, str]]) -> Spec:
    mapping = spec.model_dump(mode="json")
    mapping["registry"]["users"] = users
    return spec_from_mapping(mapping)


@pytest.fixture
def two_users(stack_world: World, registry_image: str, stack_run_id: str, phases: Any) -> Iterator[Deployment]:
    """A deployment of this test's own with users ``ci`` and ``leaver``; ``down`` after the test."""
    one = stack_spec(StackVariant("rotate", redirect=False), registry_image, stack_run_id)
    spec = _with_users(
        one, [{"name": USER, "password": f"env:{PASSWORD_ENV}"}, {"name": LEAVER, "password": f"env:{LEAVER_ENV}"}]
    )
    with phases.measure("provision"):
        deployment = provision(spec, stack_world.moto, stack_run_id)
    try:
        yield deployment
    finally:
        with phases.measure("teardown"):
            deployment.provisioner.down()


def _status(registry: BootedRegistry, user: str, password: str) -> int:
    """``GET /v2/`` as ``user``: 200 or 401. Anything else (no answer, a 5xx) is downtime and fails."""
    try:
        answer = registry.api(auth=(user, password)).request("GET", "/v2/")
    except requests.RequestException as error:
        raise AssertionError(f"the registry did not answer: {error}") from error
    assert answer.status_code in (200, 401), (answer.status_code, answer.text[:500])
    return int(answer.status_code)


def _registry_container(registry: BootedRegistry) -> tuple[str, str]:
    state = registry.container()
    return str(state["Id"]), str(state["State"]["StartedAt"])


def test_a_changed_password_and_a_removed_user_reach_the_running_registry_without_a_reboot(
    two_users: Deployment, boot_registry: Any, stack_run_id: str, phases: Any
) -> None:
    deployment = two_users
    registry = boot_registry(deployment)
    old, leaver = deployment.passwords[USER], deployment.passwords[LEAVER]
    assert _status(registry, USER, old) == 200 and _status(registry, LEAVER, leaver) == 200
    # the shipped timer runs in the box, and the box adds nothing to its service but the listed drop-in
    assert registry.in_box("systemctl", "is-active", paths.REFRESH_TIMER).strip() == "active"
    assert registry.in_box("cat", REFRESH_DROP_IN) == render_refresh_drop_in(registry.box.unit_environment)
    drop_ins = registry.in_box("systemctl", "show", "-p", "DropInPaths", "--value", paths.REFRESH_UNIT).split()
    assert drop_ins == [REFRESH_DROP_IN]
    container, unit_starts, instance = _registry_container(registry), registry.unit_starts(), deployment.instance_id

    # the operator changes ci's password, removes leaver from the spec, and runs up again
    new = secrets.token_urlsafe(18)
    changed = _with_users(deployment.spec, [{"name": USER, "password": f"env:{PASSWORD_ENV}"}])
    provisioner = Provisioner(changed, deployment.clients, run_id=stack_run_id, environ={PASSWORD_ENV: new})
    with phases.measure("up"):
        provisioner.up()
    up_done = time.monotonic()

    # up rewrote the htpasswd parameter and nothing else; it kept the running instance
    report = provisioner.last_up
    assert report is not None and report.launch is not None
    assert report.placement == "kept the running instance"
    assert report.launch.instance.instance_id == instance
    htpasswd = names.htpasswd_parameter(changed)
    assert [(c.kind, c.name, c.action) for c in report.changes if c.action not in ("keep", "read")] == [
        ("parameter", htpasswd, "update")
    ]
    stored = deployment.parameter(htpasswd)
    assert htpasswd_matches(stored, {USER: new}) and f"{LEAVER}:" not in stored

    # within the README's bound the new password works and the old one and the removed user are refused;
    # the registry answers every request meanwhile (no downtime)
    def in_effect() -> bool:
        answers = (_status(registry, USER, new), _status(registry, USER, old), _status(registry, LEAVER, leaver))
        return answers == (200, 401, 401)

    deadline = up_done + USERS_TAKE_EFFECT_WITHIN_SECONDS
    with phases.measure("users take effect"):
        while not in_effect():
            assert time.monotonic() < deadline, (
                f"not in effect {USERS_TAKE_EFFECT_WITHIN_SECONDS} s after up:\n"
                f"{registry.box.journal(paths.REFRESH_UNIT)[-3000:]}"
            )
            time.sleep(0.5)
    took = time.monotonic() - up_done
    print(f"\nusers took effect {took:.1f} s after up returned (bound {USERS_TAKE_EFFECT_WITHIN_SECONDS} s)")

    # no reboot, no restart: the same unit run, the same registry container
    assert registry.unit_starts() == unit_starts
    assert _registry_container(registry) == container
    # the refresh unit replaced the file the registry reads, with what up stored
    served = registry.container_file(paths.HTPASSWD_IN_CONTAINER, names.FRONT_CONTAINER_NAME)  # the front checks
    assert served.decode() == stored.rstrip("\n") + "\n"
    assert f"{htpasswd} -> {names.HTPASSWD_PATH}" in registry.box.journal(paths.REFRESH_UNIT)
    assert registry.in_box("stat", "-c", "%a", names.HTPASSWD_PATH).strip() == "600"
