"""`clinicflow synth` as a person runs it: files on disk, a summary on stderr, nothing on stdout."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import typer
from typer.testing import CliRunner

from clinicflow.cli.synth import synth
from clinicflow.clock import SystemClock


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    app.command("synth")(synth)
    app.command("version")(lambda: None)  # a second command keeps `synth` a named subcommand
    return app


@pytest.fixture(autouse=True)
def no_local_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("CLINICFLOW_CONFIG", "CLINICFLOW_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)


def test_synth_writes_the_files_and_summarises_them_on_stderr(
    app: typer.Typer, tmp_path: Path
) -> None:
    out = tmp_path / "demo"
    args = ["synth", "--out", str(out), "--patients", "30", "--anchor-date", "2026-11-23"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "Patient.ndjson" in result.stderr
    assert "today is 2026-11-23 in America/New_York" in result.stderr
    assert "note:" not in result.stderr
    assert len((out / "Patient.ndjson").read_text(encoding="utf-8").splitlines()) == 30


def test_synth_warns_that_a_weekend_anchor_has_no_schedule(
    app: typer.Typer, tmp_path: Path
) -> None:
    args = ["synth", "--out", str(tmp_path), "--patients", "30", "--anchor-date", "2026-11-28"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "today and tomorrow will have no appointments" in " ".join(result.stderr.split())


def test_synth_takes_today_in_the_configured_practice_zone_by_default(
    app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLINICFLOW_TIMEZONE", "Pacific/Honolulu")
    zone = ZoneInfo("Pacific/Honolulu")
    before = SystemClock().now().astimezone(zone).date()
    result = CliRunner().invoke(app, ["synth", "--out", str(tmp_path), "--patients", "20"])
    after = SystemClock().now().astimezone(zone).date()
    assert result.exit_code == 0, result.output
    summary = " ".join(result.stderr.split())
    assert any(
        f"today is {day.isoformat()} in Pacific/Honolulu" in summary for day in (before, after)
    )


def test_synth_refuses_an_unknown_time_zone_and_writes_nothing(
    app: typer.Typer, tmp_path: Path
) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["synth", "--out", str(out), "--timezone", "Mars/Olympus"])
    assert result.exit_code == 2
    assert "not an IANA time zone" in result.output
    assert not out.exists()
