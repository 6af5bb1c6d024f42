"""The live tier's guards, without AWS and without Docker: it does not start without the opt-in, a
config and credentials, and what it would make is named, priced, tagged and torn down.

The subprocess runs here have no AWS settings of this machine (no AWS_* variables, empty config and
credentials files, instance metadata disabled, every proxy variable pointing at a closed port of
127.0.0.1): nothing they do can reach anything but 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import NoCredentialsError

from harness.history import read_history
from harness.live import (
    PASSWORD_ENV_PREFIX,
    RUN_ID_PATTERN,
    LiveRefused,
    NoCredentials,
    RunIdentity,
    assert_throwaway,
    check_credentials,
    down_command,
    estimate_run_cost,
    live_spec,
    new_run_id,
    sweep_command,
    throwaway_bucket,
    wait_until_resolves,
)
from provisioning.clients import make_clients
from provisioning.cost import load_prices
from provisioning.errors import WaitTimeout
from provisioning.spec_loading import apply_env_overrides, load_spec
from suites.offline.conftest import build_spec, watch

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "spotreg.toml"
CLOSED_PORT = "http://127.0.0.1:9"  # discard: nothing listens; a request that got this far fails here
NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
RUN = "live-203001020304-abc123"


def no_aws_environment(tmp_path: Path) -> dict[str, str]:
    """This machine's environment without anything that could lead AWS calls anywhere."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "SPOTREG_", "PYTEST_"))
        and key.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    }
    empty_config, empty_credentials = tmp_path / "aws-config", tmp_path / "aws-credentials"
    empty_config.write_text("")
    empty_credentials.write_text("")
    environment.update(
        AWS_CONFIG_FILE=str(empty_config),
        AWS_SHARED_CREDENTIALS_FILE=str(empty_credentials),
        AWS_EC2_METADATA_DISABLED="true",  # botocore never asks 169.254.169.254
        HTTP_PROXY=CLOSED_PORT,
        HTTPS_PROXY=CLOSED_PORT,
        http_proxy=CLOSED_PORT,
        https_proxy=CLOSED_PORT,
        TESTCONTAINERS_RYUK_DISABLED="true",
    )
    return environment


def run(command: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`command` in the repository, without AWS settings; stderr folded into stdout, in order."""
    return subprocess.run(
        command,
        cwd=REPO,
        env=no_aws_environment(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        check=False,
    )


# --- the guards, as a user meets them --------------------------------------------------------------------


def test_live_run_without_credentials_stops_before_anything_is_created(tmp_path):
    done = run(
        [sys.executable, "-m", "pytest", "suites/live", "--live", "--config", str(EXAMPLE), "-p", "no:cacheprovider"],
        tmp_path,
    )

    output = done.stdout
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, output
    assert "live run stopped before anything was created: no AWS credentials in the default chain" in output
    assert "Unable to locate credentials" in output
    # the cost came first; nothing was armed, swept or made
    assert output.index("estimated cost of this live run: $") < output.index("no AWS credentials in the default chain")
    for later in ("teardown registered", "sweep of expired", "spot-request: started", "credentials: account"):
        assert later not in output, output


def test_live_tests_are_skipped_without_the_opt_in(tmp_path):
    done = run(
        [sys.executable, "-m", "pytest", "suites/live", "--config", str(EXAMPLE), "-p", "no:cacheprovider", "-rs"],
        tmp_path,
    )

    output = done.stdout
    assert done.returncode == 0, output
    assert "6 skipped" in output, output
    assert "live tier talks to real AWS and costs money: opt in with --live" in output
    assert "estimated cost" not in output and "[live" not in output


def test_verify_live_without_config_says_so(tmp_path):
    done = run([sys.executable, "-m", "spotreg", "verify", "--live", "--reports", str(tmp_path)], tmp_path)

    assert done.returncode != 0
    assert "spotreg verify --live needs --config FILE" in done.stdout
    assert not (tmp_path / "junit.xml").exists()


def test_verify_live_without_credentials_is_recorded_as_a_refusal(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "spotreg", "verify", "--live", "--config", str(EXAMPLE), "--reports", "out"],
        cwd=elsewhere,  # from outside the checkout: the suites are found from the installed package
        env={**no_aws_environment(tmp_path), "PYTHONPATH": str(REPO)},  # this checkout's spotreg
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout
    assert "REFUSED (live run stopped before anything was created: no AWS credentials" in done.stdout
    reports = elsewhere / "out"
    summary = json.loads((reports / "summary.json").read_text())
    assert summary["outcome"] == "refused" and summary["passed"] is False
    assert summary["refusal"].startswith("live run stopped before anything was created: no AWS credentials")
    assert [run["outcome"] for run in read_history(reports / "history.jsonl")] == ["refused"]
    assert 'data-outcome="refused"' in (reports / "index.html").read_text()


# --- the run's identity and names -----------------------------------------------------------------------


def test_run_id_and_expiry():
    identity = RunIdentity.new(NOW)
    assert RUN_ID_PATTERN.fullmatch(identity.run_id)
    assert identity.run_id.startswith("live-203001020304-")
    assert identity.expires == NOW + timedelta(hours=3)
    assert identity.expires_tag == "2030-01-02T06:04:05Z"
    assert new_run_id(NOW, "abc123") == RUN
    assert len({new_run_id(NOW) for _ in range(20)}) == 20
    with pytest.raises(ValueError, match="6 lowercase hex"):
        new_run_id(NOW, "XYZ")


def test_live_spec_gives_the_run_names_of_its_own():
    original = load_spec(EXAMPLE, {})

    live = live_spec(original, RUN)

    spec = live.spec
    assert spec.deployment.name == RUN
    assert spec.storage.bucket == throwaway_bucket(RUN) == f"spotreg-{RUN}" != original.storage.bucket
    assert spec.dns.mode == "route53" and spec.dns.zone_id == original.dns.zone_id
    assert spec.dns.hostname == f"{RUN}.registry.example.com"
    # throwaway passwords: no real secret needed or stored
    assert [u.name for u in spec.registry.users] == ["ci"]
    assert spec.registry.users[0].password == f"env:{PASSWORD_ENV_PREFIX}0"
    assert live.environ[f"{PASSWORD_ENV_PREFIX}0"] == live.passwords["ci"] and len(live.passwords["ci"]) >= 20
    # everything else as configured
    assert spec.instance == original.instance and spec.tls == original.tls and spec.network == original.network
    assert spec.tags == original.tags and spec.registry.image == original.registry.image


@pytest.mark.parametrize(
    ("dns", "tls", "mode"),
    [
        ({"mode": "none"}, "selfsigned", "eip"),
        ({"mode": "eip", "hostname": "registry.example.com"}, "selfsigned", "eip"),
        ({"mode": "namecheap", "hostname": "registry.example.com", "password": "env:DDNS"}, "selfsigned", "eip"),
        ({"mode": "none"}, "none", "none"),
    ],
)
def test_live_spec_never_repoints_a_real_name(dns, tls, mode):
    live = live_spec(build_spec(dns=dns, tls={"mode": tls}), RUN)
    assert live.spec.dns.mode == mode and live.spec.dns.hostname is None
    assert live.notes or dns == {"mode": mode}


def test_live_spec_refuses_letsencrypt_without_route53():
    spec = build_spec(
        dns={"mode": "namecheap", "hostname": "registry.example.com", "password": "env:DDNS"},
        tls={"mode": "letsencrypt", "email": "ops@example.com"},
    )
    with pytest.raises(LiveRefused, match=re.escape("needs dns.mode = 'route53'")):
        live_spec(spec, RUN)


def test_throwaway_guard_refuses_a_real_bucket():
    original = load_spec(EXAMPLE, {})
    with pytest.raises(ValueError, match="is not the run's"):
        assert_throwaway(original, RUN, original)
    assert_throwaway(live_spec(original, RUN).spec, RUN, original)


def test_down_command_names_what_the_run_made():
    original = load_spec(EXAMPLE, {})
    spec = live_spec(original, RUN).spec

    command = down_command(EXAMPLE, spec)

    words = shlex.split(command)
    overrides = dict(word.split("=", 1) for word in words if "=" in word and word.startswith("SPOTREG_"))
    assert words[len(overrides) :] == ["spotreg", "down", "--config", str(EXAMPLE), "--delete-data"]
    assert overrides["SPOTREG_STORAGE__BUCKET"] == throwaway_bucket(RUN)
    # the command, run, reads the run's deployment and bucket from the user's file
    import tomllib

    again = apply_env_overrides(tomllib.loads(EXAMPLE.read_text()), overrides)
    assert again["deployment"]["name"] == RUN and again["storage"]["bucket"] == throwaway_bucket(RUN)
    assert sweep_command("us-east-1", RUN) == f"spotreg sweep --region us-east-1 --run-id {RUN} --delete"


# --- the cost preview ------------------------------------------------------------------------------------


def test_run_cost_is_an_hour_at_the_on_demand_ceiling():
    spec = live_spec(load_spec(EXAMPLE, {}), RUN).spec
    prices = load_prices()

    cost = estimate_run_cost(spec, prices)

    on_demand = prices.regions["us-east-1"].on_demand_per_hour
    ceiling = max(on_demand["t4g.micro"], on_demand["t3.micro"])
    amounts = {item.label: item.amount for item in cost.items}
    assert cost.instance_type == "t3.micro" and amounts["EC2 instance t3.micro"] == ceiling
    assert amounts["public IPv4 address"] == prices.public_ipv4_per_hour
    assert Decimal(0) < amounts["S3 requests"] < Decimal("0.01")
    assert cost.total == sum(amounts.values())
    assert Decimal("0.01") < cost.total < Decimal("0.10")
    assert cost.lines()[0].startswith(f"estimated cost of this live run: ${cost.total} USD for about 1 h")


# --- credentials -----------------------------------------------------------------------------------------


def test_no_credentials_is_refused_before_any_request(tmp_path, monkeypatch):
    for key, value in no_aws_environment(tmp_path).items():
        monkeypatch.setenv(key, value)
    for key in [k for k in os.environ if k.startswith("AWS_") and k not in no_aws_environment(tmp_path)]:
        monkeypatch.delenv(key)
    clients = make_clients("us-east-1", session=boto3.session.Session())
    sent: list[str] = []
    clients.sts.meta.events.register("before-send", lambda request, **_: sent.append(request.url))

    with pytest.raises(NoCredentials, match="no AWS credentials in the default chain: Unable to locate") as caught:
        check_credentials(clients)

    assert isinstance(caught.value.__cause__, NoCredentialsError)
    assert sent == [], "the check sent a request without credentials"
    assert "nothing was created" in str(caught.value)


def test_the_credentials_check_creates_nothing(clients):
    with watch(clients) as log:
        identity = check_credentials(clients)
    assert identity.account == "123456789012"
    assert log.names() == ["GetCallerIdentity"]


# --- DNS -------------------------------------------------------------------------------------------------


def test_wait_until_resolves_polls_until_the_address_answers():
    answers = iter([set(), {"192.0.2.1"}, {"192.0.2.7"}])
    progress: list[str] = []

    seen = wait_until_resolves(
        "r.example.com", "192.0.2.7", lambda _: next(answers), timeout=5, interval=0.01, progress=progress.append
    )

    assert seen == "192.0.2.7"
    assert any("waiting for r.example.com to resolve to 192.0.2.7" in line for line in progress)


def test_wait_until_resolves_is_bounded():
    with pytest.raises(WaitTimeout, match=r"r\.example\.com to resolve to 192\.0\.2\.7 .*last seen: 192\.0\.2\.1"):
        wait_until_resolves("r.example.com", "192.0.2.7", lambda _: {"192.0.2.1"}, timeout=0.2, interval=0.01)
