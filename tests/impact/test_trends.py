"""Weekly no-show rates from the replica, counted by hand beside them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from clinicflow.clock import FakeClock
from clinicflow.ehr import sync_folder
from clinicflow.impact.ledger import week_of
from clinicflow.impact.trends import WeekRate, noshow_rates, noshows_avoided
from clinicflow.security.phi import PhiCipher
from clinicflow.store import Database
from clinicflow.store.replica import Appointment
from clinicflow.synth import write_practice

ZONE = ZoneInfo("America/New_York")


def test_the_noshow_rate_of_each_week_is_its_noshows_over_its_visits_with_an_outcome(
    sqlite_db: Database, cipher: PhiCipher, clock: FakeClock, tmp_path: Path
) -> None:
    write_practice(
        tmp_path, seed=4, patients=150, anchor_on=date(2026, 11, 23), timezone="America/New_York"
    )
    sync_folder(sqlite_db, cipher, clock, tmp_path)
    now = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    with sqlite_db.transaction() as session:
        rates = noshow_rates(session, zone=ZONE, now=now, weeks=6)
        rows = session.execute(select(Appointment.start_at, Appointment.status)).all()
    assert [r.week_of for r in rates] == sorted(r.week_of for r in rates)
    assert len(rates) == 6
    for rate in rates:
        mine = [
            status
            for start, status in rows
            if start is not None
            and start <= now
            and week_of(start, ZONE) == rate.week_of
            and status in ("fulfilled", "arrived", "checked-in", "noshow")
        ]
        assert (rate.count, rate.of) == (mine.count("noshow"), len(mine))
    assert sum(r.of for r in rates) > 0
    assert any(r.count for r in rates)  # the synthetic practice misses some visits


def test_noshows_avoided_are_the_baseline_share_less_the_noshows_at_a_visits_value() -> None:
    weeks = [
        WeekRate(date(2026, 11, 2), count=10, of=100),  # 18 expected at 18%: 8 avoided
        WeekRate(date(2026, 11, 9), count=25, of=100),  # worse than the baseline: none
        WeekRate(date(2026, 11, 16), count=0, of=0),
    ]
    found = noshows_avoided(weeks, baseline=0.18, value_cents=lambda _type: 15000)
    assert [round(a.avoided, 6) for a in found] == [8.0, 0.0, 0.0]
    assert [a.revenue_cents for a in found] == [120000, 0, 0]


def test_an_avoided_noshow_is_worth_the_weeks_visits_on_average_by_type() -> None:
    values = {"ROUTINE": 15000, "WALKIN": 9000, "FOLLOWUP": 12000}
    weeks = [  # 100 visits, 18 expected at 18%, 10 missed: 8 avoided
        WeekRate(date(2026, 11, 2), 10, 100, {"ROUTINE": 50, "WALKIN": 25, "FOLLOWUP": 25}),
        WeekRate(date(2026, 11, 9), 0, 50, {None: 50}),  # no type recorded: ROUTINE's price
    ]
    found = noshows_avoided(weeks, baseline=0.18, value_cents=lambda t: values.get(t or "ROUTINE"))
    # (50 x 150 + 25 x 90 + 25 x 120) / 100 = $127.50 a visit; 8 x $127.50 = $1,020
    assert found[0].revenue_cents == 102000
    assert found[1].revenue_cents == (9 * 15000)
