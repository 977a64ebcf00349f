"""A reminders run plans in a read snapshot and writes at its end: what happens meanwhile.

On SQLite the run's transaction holds the database's one write lock from its first statement
to its commit, so the run reads, plans and renders through `ctx.reads` first. These tests step
in while it plans (when it loads its templates, after its reads) and write what an inbound STOP,
a person at the switches or a second worker would.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.automations.reminder_practice import Practice, build_practice, patient, visit

import clinicflow.automations.reminders as reminders
from clinicflow.channels.consent import ConsentSource, record_consent
from clinicflow.clock import FakeClock
from clinicflow.engine import EffectState, MessageChannel
from clinicflow.engine.switches import set_switch
from clinicflow.store import Database
from clinicflow.store.engine import Effect

NOW = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)  # 14:00 in New York
MOBILE = "+15551230001"


def _with_a_visit(db: Database, clock: FakeClock, tmp_path: Path) -> Practice:
    built = build_practice(db, clock, tmp_path, now=NOW)
    built.sync(
        patient("p1", "Maria", mobile=MOBILE),
        visit("a1", "p1", NOW + timedelta(days=2), booked=NOW - timedelta(days=20)),
    )
    return built


@pytest.fixture
def practice(db: Database, clock: FakeClock, tmp_path: Path) -> Practice:
    return _with_a_visit(db, clock, tmp_path)


@pytest.fixture
def sqlite_practice(sqlite_db: Database, clock: FakeClock, tmp_path: Path) -> Practice:
    return _with_a_visit(sqlite_db, clock, tmp_path)


def _while_planning(monkeypatch: pytest.MonkeyPatch, step_in: Callable[[], None]) -> list[int]:
    """Call `step_in` once, in the first run, when it loads its templates (all read by then)."""
    calls: list[int] = []
    load = reminders.load_templates

    def loading(settings: Any) -> Any:
        if not calls:
            calls.append(1)
            step_in()
        return load(settings)

    monkeypatch.setattr(reminders, "load_templates", loading)
    return calls


def _sends(practice: Practice, state: EffectState) -> int:
    with practice.rt.db.transaction() as session:
        query = select(func.count()).select_from(Effect).where(Effect.kind == "message.send")
        return int(session.scalar(query.where(Effect.state == state)) or 0)


def test_a_stop_stored_while_a_run_plans_takes_no_wait_and_the_planned_text_is_not_sent(
    sqlite_practice: Practice, monkeypatch: pytest.MonkeyPatch
) -> None:
    practice = sqlite_practice
    database = practice.rt.db.engine.url.database
    assert database

    def stop_arrives() -> None:
        # The webhook stores the STOP at once: the run that is planning holds no write lock.
        probe = sqlite3.connect(database, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")  # "database is locked" if the run held it
            probe.execute("ROLLBACK")
        finally:
            probe.close()
        with practice.rt.db.transaction() as session:
            record_consent(
                session,
                channel=MessageChannel.SMS,
                contact_digest=practice.cipher.blind_index("phone", MOBILE),
                opted_out=True,
                keyword="STOP",
                source=ConsentSource.SMS,
                now=NOW,
            )

    stepped = _while_planning(monkeypatch, stop_arrives)
    outcome = practice.remind()
    assert stepped == [1]
    assert outcome.state.value == "succeeded"
    # Planned on the snapshot from before the STOP; the send-time check keeps it from going.
    assert practice.outbox() == []
    assert _sends(practice, EffectState.VOIDED) == 1


def test_a_second_run_that_sends_while_the_first_plans_leaves_the_first_nothing_to_send(
    practice: Practice, monkeypatch: pytest.MonkeyPatch
) -> None:
    seconds: list[Any] = []
    _while_planning(monkeypatch, lambda: seconds.append(practice.remind()))
    first = practice.remind()
    (second,) = seconds
    assert second.units["reminder_sent"] == 1
    # The first run planned the same text, but its claim on the visit was taken: none from it.
    assert first.units["reminder_sent"] == 0
    (sms,) = practice.outbox()
    assert sms.to == MOBILE
    assert _sends(practice, EffectState.DONE) == 1


def test_a_run_whose_automation_is_turned_off_while_it_plans_keeps_nothing(
    practice: Practice, monkeypatch: pytest.MonkeyPatch
) -> None:
    def turned_off() -> None:
        with practice.rt.db.transaction() as session:
            set_switch(session, reminders.NAME, actor="user:ana", now=NOW, enabled=False)

    _while_planning(monkeypatch, turned_off)
    outcome = practice.remind()
    assert outcome.state.value == "failed"
    assert outcome.error_message is not None
    assert "turned off" in outcome.error_message
    assert practice.outbox() == []
    assert _sends(practice, EffectState.PENDING) + _sends(practice, EffectState.DONE) == 0
