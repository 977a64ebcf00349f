"""Two simulated weeks of a small synthetic practice (300 patients), then the ledger three ways.

Reminders go out every morning on a moved clock; each day a patient confirms by text and, every
third day, one cancels, so waitlist offers go out and the first "Y" books the slot. The Impact
page, `clinicflow impact report` and the ledger's lines then show the same totals, which equal
the sum over the runs of units x minutes per unit kind.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.cli.cli_process import clinicflow
from tests.web.staff_support import add_person, sign_in, staff_settings

from clinicflow.automations.reminders import AUTOMATION as REMINDERS
from clinicflow.automations.replies import AUTOMATION as REPLIES
from clinicflow.automations.waitlist.automation import AUTOMATION as BACKFILL
from clinicflow.automations.waitlist.automation import WAVES
from clinicflow.automations.waitlist.freed import visit_value_cents
from clinicflow.channels import list_outbox
from clinicflow.channels.inbound import store_inbound
from clinicflow.clock import FakeClock
from clinicflow.ehr import sync_folder
from clinicflow.engine import (
    EngineRuntime,
    InlineEnqueuer,
    Registry,
    dispatch_events,
    run_now,
)
from clinicflow.impact.ledger import totals, week_of, weekly_lines
from clinicflow.security.audit import Actor
from clinicflow.security.permissions import Role
from clinicflow.security.phi import PhiCipher, keyring_from_settings
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.store.engine import AutomationRun
from clinicflow.store.replica import Appointment
from clinicflow.store.waitlist import FreedSlotRecord
from clinicflow.synth import write_practice
from clinicflow.web import create_app

START = datetime(2026, 11, 16, 15, 0, tzinfo=UTC)  # Monday 10:00 in New York
DAYS = 14  # Monday 16 to Sunday 29 November: two weeks of the ledger


def _settle(rt: EngineRuntime, clock: FakeClock) -> None:
    for _ in range(8):
        with rt.db.transaction() as session:
            runs = dispatch_events(session, registry=rt.registry, now=clock.now(), limit=2000)
        if not runs:
            return
        for run_id in runs:
            InlineEnqueuer(rt).enqueue_run(run_id)


def _text(rt: EngineRuntime, cipher: PhiCipher, clock: FakeClock, sender: str, body: str) -> None:
    with rt.db.transaction() as session:
        store_inbound(
            session,
            cipher,
            provider_id=f"SM-{sender}-{clock.now().timestamp()}-{body}",
            channel="sms",
            sender=sender,
            contact_digest=cipher.blind_index("phone", sender),
            body=body,
            received_at=clock.now(),
        )
    _settle(rt, clock)


def _sent_since(rt: EngineRuntime, cipher: PhiCipher, clock: FakeClock, seen: set[int]) -> list:
    with rt.db.transaction() as session:
        messages = list_outbox(session, cipher, reader=Actor.user("test"), now=clock.now())
    new = [m for m in reversed(messages) if m.id not in seen]
    seen.update(m.id for m in new)
    return new


def _visits_happen(db: Database, settings: Settings, end: datetime) -> int:
    """The two weeks' visits get their outcome, as the EHR's next sync would bring it: one in
    twenty booked visits missed (5%, under the 18% baseline). Returns, worked by hand, what the
    avoided no-shows earn: per week, (visits x baseline - no-shows) x the mean visit value."""
    zone = ZoneInfo(settings.timezone)
    weeks: dict[date, list[Appointment]] = {}
    with db.transaction() as session:
        past = session.scalars(
            select(Appointment)
            .where(Appointment.start_at >= START, Appointment.start_at <= end)
            .where(Appointment.status.in_(("booked", "arrived", "checked-in")))
            .order_by(Appointment.fhir_id)
        ).all()
        for n, visit in enumerate(past):
            visit.status = "noshow" if n % 20 == 0 else "fulfilled"
            assert visit.start_at is not None
            weeks.setdefault(week_of(visit.start_at, zone), []).append(visit)
    cents = 0
    for visits in weeks.values():
        missed = sum(v.status == "noshow" for v in visits)
        mean = sum(visit_value_cents(v.appointment_type, settings.visit_values) for v in visits)
        mean /= len(visits)
        cents += round(max(0.0, len(visits) * settings.noshow_baseline_rate - missed) * mean)
    return cents


def test_two_weeks_of_reminders_and_backfill_add_up_the_same_on_the_page_the_cli_and_the_ledger(
    sqlite_db: Database, tmp_path: Path
) -> None:
    clock = FakeClock(START)
    settings = staff_settings(tmp_path, practice_name="Sunrise Family Practice")
    cipher = PhiCipher(keyring_from_settings(settings, create=False))
    folder = tmp_path / "practice"
    write_practice(
        folder, seed=11, patients=300, anchor_on=date(2026, 11, 16), timezone="America/New_York"
    )
    sync_folder(sqlite_db, cipher, clock, folder)
    registry = Registry([REMINDERS, REPLIES, BACKFILL, WAVES])
    rt = EngineRuntime.build(
        db=sqlite_db, settings=settings, clock=clock, cipher=cipher, registry=registry
    )
    _settle(rt, clock)  # the sync's own events
    seen: set[int] = set()
    booked = 0
    for day in range(DAYS):
        clock.set(START + timedelta(days=day))
        run_now(rt, "appointment-reminders", requested_by="test")
        asking = [m for m in _sent_since(rt, cipher, clock, seen) if "Reply C" in m.body]
        if asking:
            _text(rt, cipher, clock, asking[0].to, "C")
        if day % 3 == 0 and len(asking) > 1:
            _text(rt, cipher, clock, asking[1].to, "X")
            offers = [
                m for m in _sent_since(rt, cipher, clock, seen) if "earlier appointment" in m.body
            ]
            if offers and offers[0].channel == "sms":
                clock.advance(timedelta(minutes=7))
                _text(rt, cipher, clock, offers[0].to, "Y")
                booked += 1
        clock.advance(timedelta(minutes=20))
        run_now(rt, "waitlist-waves", requested_by="test")
    end = clock.now()
    hand_avoided_cents = _visits_happen(sqlite_db, settings, end)

    with sqlite_db.transaction() as session:
        lines = weekly_lines(session, registry, settings, weeks=2, now=end)
        runs = list(
            session.scalars(
                select(AutomationRun).where(
                    AutomationRun.state == "succeeded",
                    AutomationRun.dry_run.is_(False),
                    AutomationRun.finished_at >= datetime(2026, 11, 16, 5, 0, tzinfo=UTC),
                )
            )
        )
    by_hand = sum(
        n * registry.get(run.automation).unit(unit).minutes_saved
        for run in runs
        for unit, n in run.units.items()
    )
    sums = totals(lines)
    assert sums.hours * 60 == by_hand
    assert sums.hours > 0
    assert {line.automation for line in lines} >= {"appointment-reminders", "reminder-replies"}
    assert sum(len(line.run_ids) for line in lines) == len(runs)
    with sqlite_db.transaction() as session:
        filled = list(
            session.scalars(select(FreedSlotRecord).where(FreedSlotRecord.state == "booked"))
        )
    assert len(filled) == booked >= 1
    values = settings.visit_values
    assert sums.revenue_cents == sum(visit_value_cents(r.visit_type, values) for r in filled)

    report = clinicflow(
        tmp_path, "impact", "report", "--weeks", "2", "--json", "--now", end.isoformat()
    )
    assert report.returncode == 0, report.stderr
    printed = json.loads(report.stdout)
    assert printed["hours_saved"] == round(sums.hours, 2)
    assert printed["money_saved"] == sums.money_cents / 100
    assert printed["revenue_recovered"] == sums.revenue_cents / 100
    assert printed["runs"] == len(runs)
    avoided = printed["trends"]["noshows_avoided_value"]
    assert avoided == hand_avoided_cents / 100 > 0

    leader = add_person(sqlite_db, settings, clock, "leader", Role.LEADERSHIP)
    with TestClient(create_app(settings, db=sqlite_db, clock=clock)) as web:
        sign_in(web, leader, clock)
        page = web.get("/impact?weeks=2")
        assert page.status_code == 200
        shown = re.search(r"<strong>([\d.]+) staff hours</strong>", page.text)
        assert shown is not None
        assert shown.group(1) == f"{sums.hours:.1f}"
        assert f"${sums.revenue_cents / 100:,.2f}" in page.text
        assert page.text.count('class="bar"') >= 2
        assert 'id="impact-trends"' in page.text
        confirmed = re.findall(r"(\d+)% <span class=\"sub\">(\d+) of (\d+)</span>", page.text)
        assert any(int(n) > 0 for _, n, _ in confirmed)  # patients confirmed by text
        shown_avoided = re.search(r'<strong id="noshows-avoided">\$([\d,.]+)</strong>', page.text)
        assert shown_avoided is not None
        assert float(shown_avoided.group(1).replace(",", "")) == avoided
        trends = web.get("/impact/trends.csv?weeks=2").text.splitlines()
        assert trends[0] == "week_of,rate,count,of,share"
        assert len(trends) == 1 + 2 * 2  # two rates, two weeks
        exported = web.get("/impact.csv?weeks=2")
        assert exported.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert len(rows) == len(lines)
        exported_minutes = sum(float(row["minutes_saved"]) for row in rows)
        assert abs(exported_minutes - by_hand) <= 0.05 * len(rows)  # each row to 0.1 min
        exported_runs = {int(i) for row in rows for i in row["run_ids"].split()}
        assert exported_runs == {run.id for run in runs}
