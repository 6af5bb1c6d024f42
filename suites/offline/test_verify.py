"""`spotreg verify`: it runs pytest, and writes junit.xml, summary.json, history.jsonl and index.html."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spotreg.cli import main

ROOT = Path(__file__).resolve().parents[2]


def verify(reports: Path, *selection: str) -> int:
    return main(["verify", "--offline", "--reports", str(reports), "--", "-n", "0", "-q", "-p", "no:cacheprovider",
                 *selection])  # fmt: skip


def test_verify_writes_every_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    reports = tmp_path / "reports"
    assert verify(reports, "-k", "test_spec_serialises_to_json_with_its_tags") == 0
    summary = json.loads((reports / "summary.json").read_text())
    assert summary["target"] == "offline" and summary["passed"] is True
    assert summary["tests"]["passed"] == 1 and summary["tests"]["failures"] == 0
    assert float(summary["cost"]["monthly_total"]) > 0
    history = (reports / "history.jsonl").read_text().splitlines()
    assert len(history) == 1 and json.loads(history[0])["started"] == summary["started"]
    assert "<svg" in (reports / "index.html").read_text()
    assert (reports / "junit.xml").exists()


def test_verify_that_collects_no_test_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    reports = tmp_path / "reports"
    assert verify(reports, "-k", "no_test_is_called_like_this") == 1
    summary = json.loads((reports / "summary.json").read_text())
    assert summary["passed"] is False and summary["tests"]["tests"] == 0
    assert summary["outcome"] == "failed" and "refusal" not in summary


def test_verify_runs_from_any_directory_and_writes_reports_where_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert verify(Path("out/reports"), "-k", "test_spec_serialises_to_json_with_its_tags") == 0
    reports = elsewhere / "out" / "reports"  # relative to where verify was started, not the checkout
    summary = json.loads((reports / "summary.json").read_text())
    assert summary["outcome"] == "passed" and summary["tests"]["passed"] == 1
    assert summary["cwd"] == str(ROOT)
    assert float(summary["cost"]["monthly_total"]) > 0  # the example config found in the checkout
    assert (reports / "junit.xml").exists() and (reports / "index.html").exists()
    assert sorted(p.name for p in elsewhere.iterdir()) == ["out"]


def test_missing_suites_are_named_with_how_to_get_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import harness.verify
    from harness.verify import SuitesMissing, find_checkout

    with pytest.raises(SuitesMissing) as raised:
        find_checkout("offline", tmp_path)
    message = str(raised.value)
    for missing in ("conftest.py", "pyproject.toml", "suites/offline", "suites/stack"):
        assert missing in message
    assert str(tmp_path) in message and "make verify" in message and raised.value.exit_code == 2
    (tmp_path / "suites" / "smoke").mkdir(parents=True)
    (tmp_path / "conftest.py").touch()
    (tmp_path / "pyproject.toml").touch()
    assert find_checkout("smoke", tmp_path) == tmp_path
    with pytest.raises(SuitesMissing, match=r"has no suites/live \("):
        find_checkout("live", tmp_path)

    empty = tmp_path / "wheel-install"
    empty.mkdir()
    monkeypatch.setattr(harness.verify, "package_checkout", lambda: empty)
    monkeypatch.chdir(tmp_path)
    assert verify(tmp_path / "reports") == 2
    said = " ".join(capsys.readouterr().err.split())
    assert f"{empty} has no conftest.py, pyproject.toml, suites/offline, suites/stack" in said
    assert "make verify" in said
    assert not (tmp_path / "reports").exists()  # nothing ran, nothing recorded


def test_box_phases_are_summarised_apart_from_the_run_phases() -> None:
    from harness.verify import summarize_boot_phases

    records = [{"phase": "box:registry_healthy", "seconds": s, "bytes": 0, "test": "t"} for s in (6.0, 9.5, 7.0)] + [
        {"phase": "push", "seconds": 1.0, "bytes": 10, "test": "t"}
    ]
    assert summarize_boot_phases(records) == {
        "registry_healthy": {"count": 3, "median_seconds": 7.0, "max_seconds": 9.5}
    }
