"""One writer at a time, and interruptions: a lock across machines, SIGINT and SIGTERM at any changing
call of `up` or `down` end with exit 130 and what was in flight, and the next run converges."""

from __future__ import annotations

import json
import signal

import pytest

from provisioning import names
from provisioning.errors import Interrupted, LockHeld
from provisioning.lock import LOCK_TTL
from spotreg.cli import sigterm_as_interrupt
from suites.offline.conftest import is_read, watch


def _lock_value(clients, spec) -> dict[str, str] | None:
    try:
        return json.loads(clients.ssm.get_parameter(Name=names.lock_parameter(spec))["Parameter"]["Value"])
    except clients.ssm.exceptions.ParameterNotFound:
        return None


def test_a_second_writer_is_refused_naming_the_holder_and_the_lock_is_released_after(
    make_provisioner, make_spec, clients
):
    spec = make_spec()
    first = make_provisioner(spec)
    seen: list[dict[str, str] | None] = []

    def second_writer(service, name, params):
        if name == "CreateSecurityGroup" and not seen:
            seen.append(_lock_value(clients, spec))
            with pytest.raises(LockHeld) as held:
                make_provisioner(spec).down()
            assert held.value.exit_code == 8 and "spotreg up" in str(held.value) and "pid" in str(held.value)

    with watch(clients, second_writer):
        first.up()
    assert seen and seen[0] is not None and "spotreg up" in seen[0]["holder"]
    assert _lock_value(clients, spec) is None  # released
    assert len(first.inventory().of("instance")) == 1  # the refused down removed nothing


def test_a_lapsed_lock_is_taken_over_and_a_failed_run_releases_its_lock(make_provisioner, make_spec, clients):
    spec = make_spec()
    clients.ssm.put_parameter(
        Name=names.lock_parameter(spec),
        Type="String",
        Value=json.dumps({"holder": "ci@gone (pid 1, spotreg up)", "since": "2020-01-01T00:00:00Z",
                          "expires": "2020-01-01T01:00:00Z", "token": "dead"}),
    )  # fmt: skip
    heard: list[str] = []
    make_provisioner(spec, progress=heard.append).up()
    assert any("taking over the lapsed lock of ci@gone" in line for line in heard)
    with watch(clients, lambda service, name, params: _boom(name)), pytest.raises(RuntimeError):
        make_provisioner(spec).down()
    assert _lock_value(clients, spec) is None
    assert LOCK_TTL.total_seconds() >= 3600


def _boom(name: str) -> None:
    if name == "TerminateInstances":
        raise RuntimeError("boom")


def _changing_calls(provisioner, clients, action) -> list[str]:
    with watch(clients) as log:
        action(provisioner)
    return [name for name in log.names() if not is_read(name)]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_at_any_changing_call_of_up_or_down_exits_130_and_the_next_run_converges(
    make_provisioner, make_spec, clients, signum
):
    spec = make_spec(dns={"mode": "eip"})
    provisioner = make_provisioner(spec)
    up_calls = _changing_calls(provisioner, clients, lambda p: p.up())
    down_calls = _changing_calls(provisioner, clients, lambda p: p.down(delete_data=True))
    assert len(up_calls) >= 10 and len(down_calls) >= 5, (up_calls, down_calls)
    for command, count in (("up", len(up_calls)), ("down", len(down_calls))):
        for k in range(1, count + 1):
            if command == "down":
                provisioner.up()
            seen = [0]

            def hook(service, name, params, k=k, seen=seen):
                if not is_read(name):
                    seen[0] += 1
                    if seen[0] == k:
                        signal.raise_signal(signum)

            with sigterm_as_interrupt(), watch(clients, hook), pytest.raises(Interrupted) as stopped:
                provisioner.up() if command == "up" else provisioner.down(delete_data=True)
            assert seen[0] >= k, f"{command}: call {k} of {count} was never made"
            assert stopped.value.exit_code == 130 and stopped.value.phase in str(stopped.value)
            assert _lock_value(clients, spec) is None, f"{command}, call {k}: the lock was not released"
            if k % 2:  # the next up converges ...
                assert len(provisioner.up().of("instance")) == 1, f"{command}, call {k}"
            provisioner.down(delete_data=True)  # ... and so does the next down
            left = provisioner.inventory()
            assert left.is_empty, f"{signum.name} at {command} call {k}: left {[str(r) for r in left.resources]}"
