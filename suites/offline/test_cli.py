"""The `spotreg` command line: exit codes, every problem at once, and the rendered artifacts."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from provisioning.errors import AwsDenied, AwsFailed, PermissionDenied, from_aws_error
from provisioning.render.policy import REGISTRY_S3_ACTIONS
from spotreg.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "spotreg.toml"
BAD = """
[deployment]
name = "demo"
[storage]
bucket = "My_Bucket"
[network]
operator_cidrs = ["203.0.113.7/32"]
ssh = true
ssh_cidrs = ["0.0.0.0/0"]
[[registry.users]]
name = "ci"
password = "env:SPOTREG_PASSWORD_CI"
"""


def test_invalid_configuration_exits_2_naming_every_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(BAD)
    assert main(["validate", "--config", str(config)]) == 2
    message = capsys.readouterr().err
    assert "storage.bucket = 'My_Bucket'" in message
    assert "network.ssh_cidrs[0] = '0.0.0.0/0'" in message


def test_a_missing_file_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "policy", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "nope.toml" in capsys.readouterr().err


def test_plan_refuses_bad_input_before_any_aws_call(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(BAD)
    # No credentials and no endpoint exist here: reaching AWS would fail differently (and not with 2).
    assert main(["plan", "--config", str(config)]) == 2
    assert "storage.bucket" in capsys.readouterr().err


def test_render_policy_grants_exactly_the_registry_actions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "policy", "--config", str(EXAMPLE)]) == 0
    policy = json.loads(capsys.readouterr().out)
    s3 = {
        resource: set(statement["Action"])
        for statement in policy["Statement"]
        for resource in [statement["Resource"]]
        if any(action.startswith("s3:") for action in statement["Action"])
    }
    bucket = "arn:aws:s3:::example-spotreg-images"
    assert s3 == {bucket: set(REGISTRY_S3_ACTIONS["bucket"]), f"{bucket}/*": set(REGISTRY_S3_ACTIONS["object"])}


@pytest.mark.parametrize("artifact", ["userdata", "registry-config", "security-group"])
def test_render_prints_each_artifact(artifact: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", artifact, "--config", str(EXAMPLE)]) == 0
    text = capsys.readouterr().out
    if artifact == "security-group":
        assert json.loads(text)[0]["IpRanges"][0]["CidrIp"] == "203.0.113.7/32"
    else:
        assert yaml.safe_load(text)


NO_CLOUD_INIT = "cloud-init is not installed: apt-get install cloud-init"


@pytest.mark.skipif(shutil.which("cloud-init") is None, reason=NO_CLOUD_INIT)
def test_example_user_data_passes_cloud_init_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "userdata", "--config", str(EXAMPLE)]) == 0
    user_data = tmp_path / "user-data"
    user_data.write_text(capsys.readouterr().out)
    result = subprocess.run(
        ["cloud-init", "schema", "--config-file", str(user_data)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid cloud-config" in result.stdout


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "CreateBucket"), 3),
        (ClientError({"Error": {"Code": "Throttling", "Message": "slow down"}}, "RunInstances"), 1),
        (ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "no"}}, "RunInstances"), 3),
        (ClientError({"Error": {"Code": "Forbidden", "Message": ""}}, "HeadBucket"), 3),
        (NoCredentialsError(), 3),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), 1),
    ],
)
def test_aws_errors_become_exit_codes_not_tracebacks(
    error: Exception, code: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(config: object) -> int:
        raise error

    monkeypatch.setattr("spotreg.commands.validate", fail)
    assert main(["validate", "--config", str(EXAMPLE)]) == code
    assert "error:" in capsys.readouterr().err


def test_aws_errors_map_to_spotreg_errors_that_say_what_happened() -> None:
    denied = from_aws_error(ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "CreateBucket"))
    assert isinstance(denied, AwsDenied) and isinstance(denied, PermissionDenied) and denied.exit_code == 3
    assert denied.action == "CreateBucket" and str(denied).startswith("AWS refused CreateBucket: ")
    throttled = from_aws_error(ClientError({"Error": {"Code": "Throttling", "Message": "slow"}}, "RunInstances"))
    assert isinstance(throttled, AwsFailed) and throttled.exit_code == 1
    missing = from_aws_error(NoCredentialsError())
    assert missing.exit_code == 3 and str(missing).startswith("AWS credentials missing: Unable to locate credentials")
    unreachable = from_aws_error(EndpointConnectionError(endpoint_url="http://127.0.0.1:9"))
    assert isinstance(unreachable, AwsFailed) and str(unreachable).startswith(
        "could not reach AWS at http://127.0.0.1:9"
    )


def test_an_interrupted_command_exits_130(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(config: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr("spotreg.commands.validate", interrupted)
    assert main(["validate", "--config", str(EXAMPLE)]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_bad_usage_exits_2() -> None:
    with pytest.raises(SystemExit) as usage:
        main(["verify", "--offline", "--live"])
    assert usage.value.code == 2
