"""`clinicflow automations|run|outbox` as a person types them, on the embedded default (SQLite)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clinicflow.cli.engine import standalone
from clinicflow.engine import (
    Automation,
    Manual,
    RunContext,
    TaskQueue,
    Unit,
    get_run,
    message_key,
)
from clinicflow.engine.queue import DEFAULT_QUEUE_NAME
from clinicflow.store import Database
from clinicflow.store.schema import create_schema


def _remind(ctx: RunContext) -> None:
    ctx.effects.send_message(
        key=message_key("cli-remind", "Appointment/9", "48h"),
        channel="sms",
        to="+15555550123",
        body="Reminder: Tuesday 10:30",
        for_ref="Patient/1",
    )
    ctx.count("reminder_sent")


REMIND = Automation(
    name="cli-remind",
    summary="Remind one patient",
    trigger=Manual(),
    run=_remind,
    owner="front-desk",
    units=(Unit("reminder_sent", minutes_saved=3.0),),
)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A CliRunner over a fresh embedded install that also loads this module's automation."""
    url = f"sqlite:///{tmp_path / 'clinicflow.db'}"
    monkeypatch.setenv("CLINICFLOW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CLINICFLOW_DATABASE_URL", url)
    monkeypatch.delenv("CLINICFLOW_REDIS_URL", raising=False)
    monkeypatch.setenv(
        "CLINICFLOW_EXTRA_AUTOMATIONS", "test_engine_cli:REMIND,no_such_plugin:AUTOMATION"
    )
    db = Database.from_url(url)
    create_schema(db.engine)
    db.dispose()
    return CliRunner()


def _json(runner: CliRunner, *args: str) -> object:
    result = runner.invoke(standalone, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_automations_list_shows_loaded_ones_and_broken_plugins(cli: CliRunner) -> None:
    rows = _json(cli, "automations", "list")
    assert isinstance(rows, list)
    by_name = {row["name"]: row for row in rows}
    assert by_name["cli-remind"]["status"] == "loaded"
    assert by_name["cli-remind"]["trigger"] == "manual"
    assert by_name["no_such_plugin:AUTOMATION"]["status"].startswith(
        "failed to load: ModuleNotFoundError"
    )


def test_run_prints_the_outcome_and_the_outbox_shows_the_message(cli: CliRunner) -> None:
    outcome = _json(cli, "run", "cli-remind", "--now", "2026-11-23T09:00:00-05:00")
    assert outcome == {
        "run_id": 1,
        "automation": "cli-remind",
        "state": "succeeded",
        "dry_run": False,
        "units": {"reminder_sent": 1},
        "minutes_saved": 3.0,
        "effects": {"done": 1},
        "error": None,
    }
    [message] = _json(cli, "outbox", "list")  # type: ignore[misc]
    assert message["to"] == "+15555550123"
    assert message["body"] == "Reminder: Tuesday 10:30"
    assert message["sent_at"] == "2026-11-23T14:00:00+00:00"


def test_run_without_json_prints_a_summary(cli: CliRunner) -> None:
    result = cli.invoke(standalone, ["run", "cli-remind", "--dry-run"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "succeeded (dry run)" in result.output
    assert "effects: dry_run 1" in result.output


def test_an_automation_switched_to_dry_run_sends_nothing(cli: CliRunner) -> None:
    result = cli.invoke(standalone, ["automations", "dry-run", "cli-remind", "on"])
    assert "cli-remind is now dry-run" in result.output
    outcome = _json(cli, "run", "cli-remind")
    assert outcome["effects"] == {"dry_run": 1}  # type: ignore[index]
    assert _json(cli, "outbox", "list") == []


def test_a_turned_off_automation_refuses_to_run_and_says_how_to_turn_it_on(
    cli: CliRunner,
) -> None:
    cli.invoke(standalone, ["automations", "disable", "cli-remind"], catch_exceptions=False)
    result = cli.invoke(standalone, ["run", "cli-remind"])
    assert result.exception is not None
    assert "clinicflow automations enable cli-remind" in str(result.exception)


def test_run_with_queue_hands_the_run_to_the_workers(cli: CliRunner, tmp_path: Path) -> None:
    queued = _json(cli, "run", "cli-remind", "--queue")
    assert queued == {"run_id": 1, "state": "queued"}
    queue = TaskQueue.sqlite(tmp_path / "queue.db", name=DEFAULT_QUEUE_NAME)
    assert queue.pending_count() == 1
    db = Database.from_url(f"sqlite:///{tmp_path / 'clinicflow.db'}")
    with db.transaction() as session:
        assert get_run(session, 1).requested_by == "cli"  # type: ignore[arg-type]
    db.dispose()


def test_the_team_can_give_an_automation_to_another_pool(cli: CliRunner) -> None:
    result = cli.invoke(standalone, ["automations", "owner", "cli-remind", "nurse"])
    assert "owned by nurse" in result.output
    rows = _json(cli, "automations", "list")
    assert {r["name"]: r["owner"] for r in rows}["cli-remind"] == "nurse"  # type: ignore[union-attr]
    cli.invoke(standalone, ["automations", "owner", "cli-remind", "-"], catch_exceptions=False)
    rows = _json(cli, "automations", "list")
    assert {r["name"]: r["owner"] for r in rows}["cli-remind"] == "front-desk"  # type: ignore[union-attr]
