"""The dress rehearsal: the live tier's own code, offline, on every commit.

``test_the_live_suite_runs_offline`` opens a live run with ``fixtures.live_aws.open_live_run`` — the
function the live suite's ``live_run`` fixture opens — and calls the live suite's test functions
(suites/live/test_live_run.py) in their order. Two things differ from a live run, and nothing else:

- the AWS endpoint: ``LiveSettings.endpoint_url`` is the session's moto server on 127.0.0.1 (the stack
  world's, which hands out public addresses from the box network);
- the instance: ``up`` launches it into moto, and an instance box boots it (``fixtures.live_aws.stack_boot``):
  systemd and cloud-init run the user data as moto's EC2 holds it, the shipped boot script fetches its
  secrets from moto's SSM, upserts the run's host name in moto's Route 53 and runs the registry in the
  box's own Docker engine, at the address moto gave the instance. A host name resolves through (moto)
  Route 53 instead of the system resolver: for the Docker engine's push, ``stack_boot`` puts what
  Route 53 answers in ``/etc/hosts`` for the run's lifetime.

The main rehearsal uses ``dns.mode = "route53"`` (the run's host name is ``<run id>.<hostname>`` in the
zone) with self-signed TLS for that name, so the DNS phase runs and the push goes to the host name.
``up`` writes the host name's A record first, so the DNS phase alone cannot tell whether the boot
wrote it too: the test watches what the box sends to moto's server (its forwarder, relaying the box's
connections, is tapped) and checks that the boot itself sent the boot script's UPSERT, to the box's
address, and that the record leads to the box.

So the run id and expiry tags, the throwaway names, the cost preview, the credentials check, the
teardown registration with its signal handlers, the sweep at the start, every phase and its timing, the
docker round trip and the teardown all run here. ``test_sigterm_tears_the_run_down`` proves the signal
path: a small rehearsal (``python -m fixtures.live_aws``) is interrupted with SIGTERM while it waits for
its boot (one that never answers: no box), and nothing of its run is left in the moto server afterwards.
"""

from __future__ import annotations

import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.booted_registry import create_hosted_zone
from fixtures.live_aws import (
    REHEARSAL_WAITS,
    LiveRun,
    LiveSettings,
    open_live_run,
    resolve_in_route53,
    stack_boot,
    unanswered_boot,
)
from fixtures.moto_server import MOTO_ACCESS_KEY, MOTO_SECRET_KEY, MotoServer
from harness.live import throwaway_bucket
from provisioning.clients import AwsClients, make_clients
from provisioning.inventory import take_inventory
from provisioning.names import TAG_DEPLOYMENT, TAG_EXPIRES, TAG_RUN
from provisioning.rehearsal.world import World
from provisioning.render.paths import REGISTRY_UNIT
from provisioning.sweeper import sweep
from spotreg.cli import main as spotreg
from suites.live import test_live_run as live_suite
from suites.stack.request_watchers import BoxRequests, Route53Changes

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"


def rehearsal_config(path: Path, *, image: str, dns: str, bucket: str = "rehearsal-real-bucket") -> Path:
    """A spotreg.toml as a user would write it; the live run replaces its names with the run's own."""
    path.write_text(
        f"""
[deployment]
name = "rehearsal"
region = "{REGION}"

[storage]
bucket = "{bucket}"

[network]
operator_cidrs = ["127.0.0.1/32"]

[dns]
{dns}

[tls]
mode = "selfsigned"

[registry]
image = "{image}"

[[registry.users]]
name = "ci"
password = "env:SPOTREG_PASSWORD_CI"
""",
        encoding="utf-8",
    )
    return path


_SESSIONS: dict[str, Any] = {}


def moto_session(moto: MotoServer) -> Any:
    """One boto3 session per moto server: a new one loads every service model again (~0.1 s a client)."""
    return _SESSIONS.setdefault(moto.endpoint_url, moto.session())


def moto_clients(moto: MotoServer) -> AwsClients:
    return make_clients(REGION, endpoint_url=moto.endpoint_url, session=moto_session(moto))


@pytest.fixture
def rehearsal_zone(moto_server: MotoServer, stack_run_id: str) -> Iterator[tuple[str, str]]:
    """(zone id, domain) of a hosted zone in the session's moto server, deleted afterwards."""
    route53 = moto_clients(moto_server).route53
    domain = f"rehearsal-{stack_run_id}.test"
    zone_id = create_hosted_zone(route53, domain)
    yield zone_id, domain
    route53.delete_hosted_zone(Id=zone_id)


def _seed_parameter(ssm: Any, name: str, run: str, expires: str) -> None:
    """A test run's leftover, as a killed run leaves it: an SSM parameter with spotreg's run tags."""
    ssm.put_parameter(
        Name=name,
        Value="leftover",
        Type="String",
        Tags=[
            {"Key": TAG_DEPLOYMENT, "Value": run},
            {"Key": TAG_RUN, "Value": run},
            {"Key": TAG_EXPIRES, "Value": expires},
        ],
    )


def _parameter_exists(ssm: Any, name: str) -> bool:
    return bool(ssm.get_parameters(Names=[name])["Parameters"])


def _hosts_lines(hostname: str) -> list[str]:
    return [line for line in Path("/etc/hosts").read_text().splitlines() if hostname in line.split("#")[0].split()]


def test_the_live_suite_runs_offline(
    stack_world: World,
    moto_server,
    rehearsal_zone,
    s3_backend,
    registry_image,
    docker_client,
    make_test_image,
    phases,
    tmp_path,
    request,
    stack_run_id,
    monkeypatch,
):
    assert moto_server is stack_world.moto  # suites/stack/conftest.py: the world's server plays AWS
    zone_id, domain = rehearsal_zone
    config = rehearsal_config(
        tmp_path / "spotreg.toml",
        image=registry_image,
        dns=f'mode = "route53"\nhostname = "registry.{domain}"\nzone_id = "{zone_id}"',
    )
    ssm = moto_clients(moto_server).ssm
    expired, fresh = f"/spotreg/old-{stack_run_id}/htpasswd", f"/spotreg/new-{stack_run_id}/htpasswd"
    _seed_parameter(ssm, expired, f"old-{stack_run_id}", "2000-01-01T00:00:00Z")
    _seed_parameter(ssm, fresh, f"new-{stack_run_id}", "2999-01-01T00:00:00Z")
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    settings = LiveSettings(
        config=config,
        endpoint_url=moto_server.endpoint_url,  # the one thing besides the instance that live mode does differently
        session=moto_session(moto_server),
        boot_timeout=180,  # a box boots in 10-20 s; this machine may be busy
        running_timeout=30,
        dns_timeout=10,
        waits=REHEARSAL_WAITS,
        environ={},
    )
    box_requests = BoxRequests(moto_server.port)  # watched, not changed: what the box sends to moto
    box_requests.install(monkeypatch)

    run: LiveRun
    with open_live_run(
        settings,
        say=print,
        phases=phases,
        boot=stack_boot(stack_world, s3_backend, tmp_path),
        resolve=resolve_in_route53,
    ) as run:
        changes = Route53Changes()  # watched, not changed: what up (this process) sends to Route 53
        event = "provide-client-params.route53.ChangeResourceRecordSets"
        run.clients.route53.meta.events.register(event, changes, unique_id="spotreg-rehearsal-route53")
        try:
            # the live suite's own tests, in its order
            live_suite.test_run_is_announced_tagged_and_armed(run)
            live_suite.test_spot_request_runs_and_everything_carries_the_run_tags(run)
            live_suite.test_registry_boots_healthy(run)
            box = next(box for box in stack_world.boxes if box.instance_id == run.instance_id)
            endpoint, hostname = run.boot(), run.spec.dns.hostname
            record = resolve_in_route53(run, hostname or "")
            hosts_lines = _hosts_lines(hostname or "")
            journal = box.journal(REGISTRY_UNIT)
            live_suite.test_dns_answers_with_the_instance_address(run)
            live_suite.test_push_pull_round_trip(run, docker_client, make_test_image)
            address = run.public_address()
            live_suite.test_teardown_leaves_nothing(run, request)
        finally:
            run.clients.route53.meta.events.unregister(event, unique_id="spotreg-rehearsal-route53")

    # the run's own host name in the configured zone; the registry was pushed to by that name, which
    # led to the box: the instance's public address
    assert hostname == f"{run.run_id}.registry.{domain}" and run.spec.dns.zone_id == zone_id
    assert endpoint.address == hostname and endpoint.url == f"https://{hostname}" and endpoint.ca_pem, endpoint
    assert address == box.address, (address, box.address)
    assert f"dns: {hostname} -> {address}" in run.said
    assert record == {box.address}, record
    assert [line.split()[0] for line in hosts_lines] == [box.address], hosts_lines
    assert _hosts_lines(hostname) == [], "the teardown removes the /etc/hosts line"
    assert box not in stack_world.boxes, "the teardown removes the box"
    # up wrote the A record (from this process); the boot (the box's boot script's update_dns, its AWS CLI
    # through the box's forwarder to moto's server) upserted it once more to the box's address, TTL 60
    assert len(changes.commented("spotreg up")) == 1, changes.batches
    assert changes.commented("spotreg boot") == [], changes.batches
    assert box_requests.commented("spotreg boot") == [
        {
            "HostedZoneId": zone_id,
            "Comment": "spotreg boot",
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": hostname,
                        "Type": "A",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": box.address}],
                    },
                }
            ],
        }
    ], box_requests.route53_changes()
    assert f"spotreg-boot: {hostname} -> {box.address} (Route 53)" in journal, journal[-3000:]

    # the sweep at the start removed the expired leftover of an earlier run, and only that
    swept = {found.id: found.outcome for found in run.swept}
    assert swept.get(expired) == "deleted", run.swept
    assert fresh not in swept and _parameter_exists(ssm, fresh) and not _parameter_exists(ssm, expired)
    ssm.delete_parameter(Name=fresh)
    assert any(line.startswith("sweep of expired test resources") and "1 removed" in line for line in run.said)
    # the run used names of its own and left nothing: not even the bucket it pushed to
    assert run.spec.deployment.name == run.run_id and run.spec.storage.bucket == throwaway_bucket(run.run_id)
    assert run.settings.config.read_text().count("rehearsal-real-bucket") == 1
    clients = moto_clients(moto_server)
    buckets = {b["Name"] for b in clients.s3.list_buckets()["Buckets"]}
    assert "rehearsal-real-bucket" not in buckets and run.spec.storage.bucket not in buckets
    left = take_inventory(clients, run.spec.deployment.name, bucket_names=[run.spec.storage.bucket])
    assert left.is_empty, str(left)
    # every phase was timed, in order; the handlers that were there before are back
    assert list(run.timings) == ["spot-request", "boot", "dns", "push", "pull", "teardown"]
    assert {signum: signal.getsignal(signum) for signum in handlers} == handlers
    assert not run.teardown_registry.pending


def _clean_environment(moto: MotoServer) -> dict[str, str]:
    """No AWS or spotreg settings of this machine; moto's keys as the default chain's credentials."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SPOTREG_", "PYTEST_"))}
    return {
        **keep,
        "AWS_ACCESS_KEY_ID": MOTO_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": MOTO_SECRET_KEY,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_PROXY": "127.0.0.1",
        "no_proxy": "127.0.0.1",
    }


def _read_lines(stream: Any, lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


def test_sigterm_tears_the_run_down(moto_server, rehearsal_zone, tmp_path):
    zone_id, domain = rehearsal_zone
    config = rehearsal_config(
        tmp_path / "spotreg.toml",
        image="docker.io/library/registry:2.8.3",
        dns=f'mode = "route53"\nhostname = "registry.{domain}"\nzone_id = "{zone_id}"',
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fixtures.live_aws",
            "--config",
            str(config),
            "--endpoint-url",
            moto_server.endpoint_url,
        ],
        cwd=REPO,
        env=_clean_environment(moto_server),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True).start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while not any("health:" in line for line in seen):  # the boot wait: the run has made everything
            assert process.poll() is None, "".join(seen)
            assert time.monotonic() < deadline, "no boot wait within 60 s:\n" + "".join(seen)
            try:
                seen.append(lines.get(timeout=1))
            except queue.Empty:
                continue
        match = re.search(r"live run (live-\d{12}-[0-9a-f]{6}):", "".join(seen))
        assert match, "".join(seen)
        run_id = match.group(1)
        clients = moto_clients(moto_server)
        made = take_inventory(clients, run_id, bucket_names=[throwaway_bucket(run_id)])
        assert {"bucket", "instance", "security-group", "role", "dns-record"} <= made.kinds(), str(made)
        assert re.search(rf"dns: {run_id}\.registry\.{re.escape(domain)} -> [0-9.]+", "".join(seen))

        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    time.sleep(0.1)  # the reader thread drains what is left
    while not lines.empty():
        seen.append(lines.get_nowait())
    output = "".join(seen)

    assert code == 128 + signal.SIGTERM, output
    assert "SIGTERM: interrupting the live run" in output
    assert f"teardown: down --delete-data of {run_id}" in output
    left = take_inventory(clients, run_id, bucket_names=[throwaway_bucket(run_id)])
    assert left.is_empty, f"{left}\n{output}"
    assert sweep(clients, run_id=run_id) == [], output


def test_keep_on_failure_keeps_the_run_and_its_printed_command_removes_it(moto_server, tmp_path, phases, monkeypatch):
    config = rehearsal_config(tmp_path / "spotreg.toml", image="docker.io/library/registry:2.8.3", dns='mode = "eip"')
    settings = LiveSettings(
        config=config,
        endpoint_url=moto_server.endpoint_url,
        session=moto_session(moto_server),
        keep_on_failure=True,
        waits=REHEARSAL_WAITS,
        environ={},
    )

    run: LiveRun
    with (
        pytest.raises(RuntimeError, match="a phase failed"),
        open_live_run(settings, say=print, phases=phases, boot=unanswered_boot, resolve=resolve_in_route53) as run,
    ):
        run.spot_request()
        raise RuntimeError("a phase failed")

    kept = run.inventory()
    assert {"bucket", "instance", "elastic-ip", "security-group"} <= kept.kinds(), str(kept)
    assert "teardown" not in run.timings and not run.teardown_registry.handlers_installed
    command = next(line.strip() for line in run.said if " spotreg down --config " in line)
    assert any(run.sweep_command() in line for line in run.said)
    # the printed command, as an operator pastes it (against moto's server here: --endpoint-url)
    words = shlex.split(command)
    overrides = dict(word.split("=", 1) for word in words if re.match(r"^SPOTREG_[A-Z_]+=", word))
    assert overrides["SPOTREG_STORAGE__BUCKET"] == throwaway_bucket(run.run_id)
    for key, value in {**_clean_environment(moto_server), **overrides}.items():
        monkeypatch.setenv(key, value)
    assert words[len(overrides)] == "spotreg"

    assert spotreg([*words[len(overrides) + 1 :], "--endpoint-url", moto_server.endpoint_url]) == 0

    assert run.inventory().is_empty, str(run.inventory())
    assert sweep(moto_clients(moto_server), run_id=run.run_id) == []
