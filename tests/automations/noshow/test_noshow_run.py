"""noshow-risk end to end: trained on a synthetic practice's own year, scores the next two days,
asks the front desk to call the riskiest patients, and the Today board shows the scores (one
test: the year of history takes most of its time to sync and train on)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from clinicflow.automations.noshow import AUTOMATION
from clinicflow.automations.noshow.automation import CALL_AT
from clinicflow.boards import TodayFilters, today_board
from clinicflow.clock import FakeClock
from clinicflow.ehr import sync_folder
from clinicflow.engine import EngineRuntime, Registry, RunState, list_open, run_now
from clinicflow.security.phi import Keyring, PhiCipher
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.store.noshow import NoShowScore
from clinicflow.store.replica import Appointment
from clinicflow.synth import write_practice

ANCHOR = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)  # 17:00 in New York, when the schedule fires


_START = re.compile(r'"start":"([^"]+)"')


def _keep(path: Path, wanted: Callable[[str], bool]) -> None:
    lines = path.read_text().splitlines(keepends=True)
    kept = []
    for line in lines:
        found = _START.search(line)
        if wanted(found.group(1) if found else ""):
            kept.append(line)
    path.write_text("".join(kept))


@pytest.fixture
def runtime(sqlite_db: Database, tmp_path: Path) -> EngineRuntime:
    folder = tmp_path / "practice"
    write_practice(folder, seed=9, patients=200, anchor_on=ANCHOR, timezone="America/New_York")
    # Five weeks of history (enough to train on) and no past slots keep the sync short.
    _keep(folder / "Appointment.ndjson", lambda start: start >= "2026-10-19" or not start)
    _keep(folder / "Slot.ndjson", lambda start: start >= "2026-11-23")
    cipher = PhiCipher(Keyring.generate())
    clock = FakeClock(NOW)
    sync_folder(sqlite_db, cipher, clock, folder)
    return EngineRuntime.build(
        db=sqlite_db,
        settings=Settings(data_dir=tmp_path / "data", timezone="America/New_York"),
        clock=clock,
        cipher=cipher,
        registry=Registry([AUTOMATION]),
    )


def test_the_next_two_days_are_scored_with_reasons_and_high_risks_get_a_call(
    runtime: EngineRuntime,
) -> None:
    outcome = run_now(runtime, AUTOMATION.name, requested_by="test")
    assert outcome.state is RunState.SUCCEEDED, outcome.error_message
    assert outcome.units["model_trained"] == 1
    assert any((runtime.settings.data_dir / "models" / "noshow").iterdir())
    with runtime.db.transaction() as session:
        scores = list(session.scalars(sa.select(NoShowScore)))
        upcoming = session.scalar(
            sa.select(sa.func.count())
            .select_from(Appointment)
            .where(
                Appointment.start_at >= NOW,
                Appointment.start_at < datetime(2026, 11, 25, 22, 0, tzinfo=UTC),
                Appointment.status.in_(("booked", "pending", "arrived", "checked-in")),
            )
        )
        calls = list_open(session, runtime.cipher, reader="test", now=NOW, pool="front-desk")
    assert len(scores) == upcoming == outcome.units["visit_scored"]
    assert all(0.0 < s.probability < 1.0 for s in scores)
    assert all(s.reasons for s in scores if s.probability >= CALL_AT)
    risky = {s.appointment_id for s in scores if s.probability >= CALL_AT}
    assert {c.focus for c in calls} == {f"Appointment/{a}" for a in risky}
    assert all("no-show risk" in c.description for c in calls)
    again = run_now(runtime, AUTOMATION.name, requested_by="test")
    assert "model_trained" not in again.units  # a week-old model at most: kept
    with runtime.db.transaction() as session:
        assert len(
            list_open(session, runtime.cipher, reader="test", now=NOW, pool="front-desk")
        ) == len(calls)  # no call asked twice

    with runtime.db.transaction() as session:  # the Today board shows each visit's score
        rows = today_board(
            session,
            runtime.cipher,
            day=date(2026, 11, 24),
            zone=ZoneInfo("America/New_York"),
            filters=TodayFilters(),
        )
    assert rows
    assert all(r.noshow_risk is not None for r in rows if r.status == "booked")
