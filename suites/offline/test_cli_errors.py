"""Errors tell the truth: hints that fit the command and what was made, credentials exit 3, an
unreachable endpoint in one line, no traceback for any argv or SPOTREG_* environment."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from provisioning.errors import (
    CREDENTIAL_CODES,
    AwsUnreachable,
    CredentialsError,
    LockHeld,
    SpotregError,
    StepFailed,
    from_aws_error,
)
from provisioning.provisioner import Provisioner
from provisioning.spec_loading import SpecWarning, apply_env_overrides, load_spec
from spotreg.cli import main
from suites.offline.conftest import PASSWORD, PASSWORD_ENV, injected_error, watch

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "spotreg.toml"
DOWN_HINT = "spotreg down"
EXIT_CODES = {0, 1, 2, 3, 4, 5, 6, 7, 8, 130}


def client_error(code: str, message: str = "the message AWS gave", operation: str = "DescribeVpcs") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


# --- credentials and connections ---------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(CREDENTIAL_CODES))
def test_rejected_credentials_exit_3_with_aws_s_explanation(code: str) -> None:
    error = from_aws_error(client_error(code))
    assert isinstance(error, CredentialsError) and error.exit_code == 3
    assert code in str(error) and "the message AWS gave" in str(error)


def test_missing_or_partial_credentials_exit_3_with_the_chain_s_explanation() -> None:
    missing = from_aws_error(NoCredentialsError())
    partial = from_aws_error(PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"))
    assert missing.exit_code == partial.exit_code == 3
    assert "Unable to locate credentials" in str(missing)
    assert "env" in str(partial) and "AWS_SECRET_ACCESS_KEY" in str(partial)


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url="http://127.0.0.1:9/"),
        ConnectTimeoutError(endpoint_url="http://127.0.0.1:9/"),
    ],
)
def test_an_unreachable_endpoint_is_one_line_naming_it(error: Exception) -> None:
    failure = from_aws_error(error)  # type: ignore[arg-type]
    assert isinstance(failure, AwsUnreachable) and failure.exit_code == 1
    assert "http://127.0.0.1:9/" in str(failure) and "\n" not in str(failure)


def test_a_step_s_credential_error_is_exit_3_and_names_the_step(
    make_provisioner: Callable[..., Provisioner], clients: Any
) -> None:
    def hook(service: str, name: str, params: dict[str, Any]) -> None:
        if name == "CreateBucket":
            raise injected_error(name, "SignatureDoesNotMatch", "the signature does not match")

    with watch(clients, hook), pytest.raises(CredentialsError) as failure:
        make_provisioner().up()
    assert failure.value.exit_code == 3 and failure.value.step == "bucket"
    assert "the signature does not match" in str(failure.value)


@pytest.mark.parametrize(
    "url", ["not a url", "http://", "ftp://example.com", "http://:80", "http://h:99999", "http://a b"]
)
def test_a_malformed_endpoint_url_is_usage_error_2(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as usage:
        main(["plan", "--config", str(EXAMPLE), "--endpoint-url", url])
    assert usage.value.code == 2
    assert "--endpoint-url" in capsys.readouterr().err


# --- hints: by command, and by what was made ------------------------------------------------------------


def failing(operation: str) -> Callable[[str, str, dict[str, Any]], None]:
    def hook(service: str, name: str, params: dict[str, Any]) -> None:
        if name == operation:
            raise injected_error(name)

    return hook


def test_up_failing_before_anything_is_made_does_not_suggest_down(
    make_provisioner: Callable[..., Provisioner], clients: Any
) -> None:
    with watch(clients, failing("CreateBucket")), pytest.raises(StepFailed) as failure:
        make_provisioner().up()
    assert failure.value.hint is not None and failure.value.hint.startswith("nothing was made")
    assert DOWN_HINT not in str(failure.value)


def test_up_failing_after_making_something_suggests_down(
    make_provisioner: Callable[..., Provisioner], clients: Any
) -> None:
    with watch(clients, failing("CreateSecurityGroup")), pytest.raises(StepFailed) as failure:
        make_provisioner().up()
    assert failure.value.hint is not None and DOWN_HINT in failure.value.hint


def test_up_failing_within_a_step_after_its_first_change_suggests_down(
    make_provisioner: Callable[..., Provisioner], clients: Any
) -> None:
    """The bucket step made the bucket, then failed: something was made, though no step finished."""
    with watch(clients, failing("PutBucketTagging")), pytest.raises(SpotregError) as failure:
        make_provisioner().up()
    assert failure.value.hint is not None and DOWN_HINT in failure.value.hint


def test_plan_failing_never_suggests_down(make_provisioner: Callable[..., Provisioner], clients: Any) -> None:
    with watch(clients, failing("DescribeSecurityGroups")), pytest.raises(SpotregError) as failure:
        make_provisioner().plan()
    assert DOWN_HINT not in str(failure.value)


def test_down_failing_outside_a_step_says_run_down_again(
    make_provisioner: Callable[..., Provisioner], clients: Any
) -> None:
    with watch(clients, failing("PutParameter")), pytest.raises(SpotregError) as failure:
        make_provisioner().down()
    assert not isinstance(failure.value, LockHeld)
    assert failure.value.hint == "run 'spotreg down' again once the cause is fixed"


# --- the environment --------------------------------------------------------------------------------------


def test_unrelated_spotreg_variables_are_not_overrides() -> None:
    warnings: list[SpecWarning] = []
    spec = load_spec(
        EXAMPLE,
        environ={"SPOTREG_FOO": "1", "SPOTREG_NOPE__KEY": "x", "SPOTREG_ACCOUNT_ID": "1", "SPOTREG_A__B__C": "x"},
        warnings=warnings,
    )
    assert spec.deployment.name
    assert sorted(w.field for w in warnings) == ["SPOTREG_A__B__C", "SPOTREG_NOPE__KEY"]


def test_a_tag_key_keeps_its_case() -> None:
    environ = {"SPOTREG_TAGS__CostCenter": "42", "SPOTREG_DNS__Mode": "eip"}
    merged = apply_env_overrides({"tags": {"team": "x"}}, environ)
    assert merged["tags"] == {"team": "x", "CostCenter": "42"}
    assert merged["dns"] == {"mode": "eip"}  # a section's key is not case-sensitive


# --- no traceback for any input --------------------------------------------------------------------------

COMMANDS = ["validate", "render", "plan", "inventory", "status", "up", "down", "cost", "sweep"]
WEIRD = st.one_of(
    st.sampled_from(["", "-1", "0", "1e999", "nan", "inf", "http://", "not a url", "/nonexistent", "/", "é", "-"]),
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12),
)
FLAGS: dict[str, list[str]] = {
    "validate": ["--config"],
    "render": ["--config", "--legacy-access-key"],
    "plan": ["--config", "--endpoint-url"],
    "inventory": ["--config", "--endpoint-url"],
    "status": ["--config", "--endpoint-url", "--health-timeout"],
    "up": ["--config", "--endpoint-url", "--wait-healthy", "--legacy-access-key", "--switch-storage"],
    "down": ["--config", "--endpoint-url", "--delete-data"],
    "cost": ["--config", "--prices", "--stored-gib", "--pushes-per-month", "--spot-price", "--instance-type", "--json"],
    "sweep": ["--region", "--endpoint-url", "--run-id", "--expired-before"],
}
SECONDS = {"--health-timeout", "--wait-healthy"}
BOOLEAN = {"--legacy-access-key", "--switch-storage", "--delete-data", "--json"}
ENV_NAMES = st.one_of(
    st.sampled_from(
        [
            "SPOTREG_FOO",
            "SPOTREG_DNS__MODE",
            "SPOTREG_STORAGE__BUCKET",
            "SPOTREG_TAGS__Team",
            "SPOTREG_NOPE__KEY",
            "SPOTREG_A__B__C",
            "SPOTREG_INSTANCE__TYPES",
            "SPOTREG___",
            "SPOTREG_TAGS__",
            "SPOTREG_DEPLOYMENT__REGION",
            PASSWORD_ENV,
        ]
    ),
    st.from_regex(r"SPOTREG_[A-Za-z_]{1,12}", fullmatch=True),
)
ENV_VALUES = st.one_of(st.sampled_from(["", "1", "bogus", "eip", "a,b", PASSWORD]), WEIRD)


@st.composite
def invocations(draw: st.DrawFn) -> list[str]:
    command = draw(st.sampled_from(COMMANDS))
    argv = [command]
    if command == "render":
        argv.append(draw(st.sampled_from(["policy", "userdata", "bogus"])))
    for flag in draw(st.lists(st.sampled_from(FLAGS[command]), max_size=4, unique=True)):
        if flag in BOOLEAN:
            argv.append(flag)
        elif flag == "--config":
            argv += [flag, draw(st.sampled_from([str(EXAMPLE), "/nonexistent.toml", "/", str(EXAMPLE.parent)]))]
        elif flag in SECONDS:  # a long wait is the operator's choice; only bad values are drawn
            argv += [flag, draw(st.sampled_from(["0", "-1", "nan", "inf", "x", ""]))]
        elif flag == "--endpoint-url":
            argv += [flag, draw(st.sampled_from(["http://127.0.0.1:1", "http://", "not a url"]))]
        else:
            argv += [flag, draw(WEIRD)]
    return argv


LOOPBACK = ("127.0.0.1", "::1", "localhost")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials, no config files, no instance metadata; moto answers every AWS call in process,
    and any name lookup or connection beyond loopback is refused."""
    lookup, connect = socket.getaddrinfo, socket.socket.connect

    def local_lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in LOOPBACK:
            raise socket.gaierror(f"the test refuses to look up {host!r}")
        return lookup(host, *args, **kwargs)

    def local_connect(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and address[0] not in LOOPBACK:
            raise ConnectionRefusedError(f"the test refuses to connect to {address!r}")
        connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", local_lookup)
    monkeypatch.setattr(socket.socket, "connect", local_connect)
    for variable in [v for v in os.environ if v.startswith(("SPOTREG_", "AWS_"))]:
        monkeypatch.delenv(variable)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    yield


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=invocations(), environ=st.dictionaries(ENV_NAMES, ENV_VALUES, max_size=4))
def test_no_traceback_for_any_argv_or_environment(
    argv: list[str], environ: dict[str, str], no_network: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the flags and SPOTREG_* variables, main returns a documented exit code (or argparse
    exits 2). `--endpoint-url` is loopback port 1 (nothing answers) or malformed."""
    with monkeypatch.context() as scoped, mock_aws():
        for name, value in environ.items():
            scoped.setenv(name, value)
        try:
            code = main(argv)
        except SystemExit as usage:
            assert usage.code in (0, 2), argv
            return
    assert isinstance(code, int) and code in EXIT_CODES, (argv, environ, code)


def test_plan_runs_with_unrelated_spotreg_variables(
    no_network: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    unrelated = {"SPOTREG_FOO": "1", "SPOTREG_NOPE__KEY": "x", "SPOTREG_ACCOUNT_ID": "1"}
    for name, value in {PASSWORD_ENV: PASSWORD, "SPOTREG_DNS__MODE": "none", **unrelated}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        assert main(["plan", "--config", str(EXAMPLE)]) == 0
    assert "warning: SPOTREG_NOPE__KEY" in capsys.readouterr().err


def test_plan_without_credentials_exits_3_in_one_message(
    no_network: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert main(["plan", "--config", str(EXAMPLE)]) == 3
    message = capsys.readouterr().err
    assert "Unable to locate credentials" in message and "Traceback" not in message and DOWN_HINT not in message
