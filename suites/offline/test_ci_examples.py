"""The GitHub Actions examples in examples/ci: they parse, have jobs with steps, and every `make` and
`spotreg` command they run exists: Makefile targets by name, spotreg subcommands and flags by the
CLI's own argparse parser."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioning.spec_loading import load_spec
from spotreg.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / "examples" / "ci"
WORKFLOWS = ("gate.yml", "nightly.yml", "predeploy.yml")
EXPRESSION = re.compile(r"\$\{\{.*?\}\}")
PLACEHOLDER = "PLACEHOLDER"
CONTROL = {"&&", "||", ";", "|", "&", "(", ")"}
REDIRECT = {">", ">>", "<", "2>", "&>"}
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)\s*:(?!=)", text, re.MULTILINE))


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((CI / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{name}: not a mapping"
    return data


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 (PyYAML) reads the key `on` as the boolean True
    found = workflow.get("on", workflow.get(True))
    if isinstance(found, str):
        return {found: None}
    if isinstance(found, list):
        return dict.fromkeys(found)
    assert isinstance(found, dict), f"no triggers: {found!r}"
    return found


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def commands(script: str) -> list[list[str]]:
    """The simple commands of a `run:` script, each as its words, with ${{ }} expressions as placeholders,
    leading VAR=value assignments and `sudo` (with its options) dropped, redirections removed."""
    script = EXPRESSION.sub(PLACEHOLDER, script).replace("\\\n", " ")
    found: list[list[str]] = []
    for line in script.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        current: list[str] = []
        tokens = iter(list(lexer))
        for token in tokens:
            if token in CONTROL:
                found.append(current)
                current = []
            elif token in REDIRECT:
                next(tokens, None)
            else:
                current.append(token)
        found.append(current)
    cleaned = []
    for words in found:
        while words and ASSIGNMENT.match(words[0]):
            words = words[1:]
        if words and words[0] == "sudo":
            words = words[1:]
            while words and words[0].startswith("-"):
                words = words[1:]
        if words:
            cleaned.append(words)
    return cleaned


def invocations(workflow: dict[str, Any], program: str) -> list[tuple[dict[str, Any], list[str]]]:
    """(step, arguments) of every call of `program` (by name or by path, e.g. .venv/bin/spotreg)."""
    return [
        (step, words[1:])
        for step in steps(workflow)
        if "run" in step
        for words in commands(step["run"])
        if Path(words[0]).name == program
    ]


def spotreg_args(arguments: list[str]) -> argparse.Namespace:
    try:
        return build_parser().parse_args(arguments)
    except SystemExit as error:
        raise AssertionError(f"spotreg {shlex.join(arguments)}: the CLI rejects it (exit {error.code})") from None


@pytest.mark.parametrize("name", WORKFLOWS)
def test_the_workflow_parses_and_every_job_has_steps(name: str) -> None:
    workflow = load(name)
    assert workflow.get("name")
    assert triggers(workflow)
    assert isinstance(workflow.get("jobs"), dict) and workflow["jobs"]
    for job_name, job in workflow["jobs"].items():
        assert job.get("runs-on"), f"{name}: job {job_name} has no runs-on"
        assert job.get("timeout-minutes"), f"{name}: job {job_name} has no timeout: a hung job runs for 6 hours"
        assert isinstance(job.get("steps"), list) and job["steps"], f"{name}: job {job_name} has no steps"
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), f"{name}: a step needs exactly one of uses/run: {step}"
            if "uses" in step:
                assert re.search(r"@(v\d+(\.\d+)*|[0-9a-f]{40})$", step["uses"]), f"unpinned action {step['uses']}"


@pytest.mark.parametrize("name", WORKFLOWS)
def test_every_make_target_exists(name: str) -> None:
    targets = makefile_targets()
    assert {"test", "deps", "venv"} <= targets
    for step, arguments in invocations(load(name), "make"):
        named = [a for a in arguments if not a.startswith("-") and "=" not in a]
        assert named, f"{name}: bare 'make' in {step['run']!r}: name the target"
        for target in named:
            assert target in targets, f"{name}: make {target}: no such target in the Makefile ({sorted(targets)})"


@pytest.mark.parametrize("name", WORKFLOWS)
def test_every_spotreg_call_is_accepted_by_the_cli(name: str) -> None:
    for _, arguments in invocations(load(name), "spotreg"):
        parsed = spotreg_args(arguments)
        config = getattr(parsed, "config", None)
        if config is not None:
            assert (ROOT / config).is_file(), f"{name}: --config {config} does not exist"


def test_the_splitter_sees_through_shell_syntax() -> None:
    script = 'make venv && echo "$PWD/.venv/bin" >> "$GITHUB_PATH"\nsudo -E FOO=1 make deps # why\n'
    script += 'X=1 .venv/bin/spotreg verify --endpoint "${{ inputs.endpoint || vars.REGISTRY_ENDPOINT }}"'
    assert commands(script) == [
        ["make", "venv"],
        ["echo", "$PWD/.venv/bin"],
        ["FOO=1", "make", "deps"],
        [".venv/bin/spotreg", "verify", "--endpoint", PLACEHOLDER],
    ]
    with pytest.raises(AssertionError, match="the CLI rejects it"):
        spotreg_args(["verify", "--no-such-flag"])


def test_the_gate_runs_make_test_on_every_push_and_pull_request() -> None:
    workflow = load("gate.yml")
    assert {"push", "pull_request"} <= set(triggers(workflow))
    assert [a for _, a in invocations(workflow, "make") if a == ["test"]] == [["test"]]
    assert any(s.get("uses", "").startswith("actions/checkout@") for s in steps(workflow))


def test_the_nightly_runs_live_with_an_oidc_role_then_always_sweeps() -> None:
    workflow = load("nightly.yml")
    schedule = triggers(workflow)["schedule"]
    assert schedule and all(len(entry["cron"].split()) == 5 for entry in schedule)
    assert workflow["permissions"]["id-token"] == "write"
    credentials = [s for s in steps(workflow) if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")]
    assert len(credentials) == 1 and "role-to-assume" in credentials[0]["with"]
    assert not any(k in credentials[0]["with"] for k in ("aws-access-key-id", "aws-secret-access-key"))

    calls = [(step, spotreg_args(arguments)) for step, arguments in invocations(workflow, "spotreg")]
    live = [(s, a) for s, a in calls if a.command == "verify" and a.live]
    sweeps = [(s, a) for s, a in calls if a.command == "sweep"]
    assert len(live) == 1 and live[0][1].config == Path("examples/spotreg.toml")
    assert len(sweeps) == 1 and sweeps[0][1].delete
    order = steps(workflow)
    assert order.index(sweeps[0][0]) > order.index(live[0][0])
    assert "always()" in str(sweeps[0][0].get("if", "")), "the sweep must run after a failed or cancelled live run"

    # the literal SPOTREG_* overrides the live step sets still make a valid spec of the example
    step = live[0][0]
    literal = {k: str(v) for k, v in step.get("env", {}).items() if k.startswith("SPOTREG_") and "${{" not in str(v)}
    load_spec(ROOT / "examples" / "spotreg.toml", environ=literal)


def test_the_predeploy_job_smoke_tests_an_endpoint_without_aws() -> None:
    workflow = load("predeploy.yml")
    assert "workflow_dispatch" in triggers(workflow)
    calls = [spotreg_args(arguments) for _, arguments in invocations(workflow, "spotreg")]
    assert [(a.command, a.endpoint) for a in calls] == [("verify", PLACEHOLDER)]
    assert not any("aws-actions" in s.get("uses", "") for s in steps(workflow))
    smoke = next(s for s in steps(workflow) if "spotreg verify" in s.get("run", ""))
    assert all("secrets." in str(v) for k, v in smoke.get("env", {}).items() if "PASSWORD" in k)
