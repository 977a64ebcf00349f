"""The Impact page's portfolio: who may file, who may decide, and what the page shows."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.web.staff_support import add_person, csrf_of, sign_in, staff_settings

from clinicflow.clock import FakeClock
from clinicflow.engine import all_switches
from clinicflow.security.permissions import Role
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.store.audit import audit_log
from clinicflow.store.proposals import Proposal
from clinicflow.web import create_app

FORM = {
    "process": "Appointment reminder calls",
    "department": "Front desk",
    "owner": "Dana",
    "role": "front-desk",
    "volume_per_week": "200",
    "minutes_per_task": "3",
    "share_automated": "0.75",
    "build_cost": "5000",
    "running_cost_per_year": "1200",
    "risks": "Texts to a shared phone",
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return staff_settings(tmp_path)


@pytest.fixture
def web(sqlite_db: Database, clock: FakeClock, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, db=sqlite_db, clock=clock)) as client:
        yield client


def test_leadership_files_and_approves_and_every_decision_is_audited(
    web: TestClient, sqlite_db: Database, clock: FakeClock, settings: Settings
) -> None:
    sign_in(web, add_person(sqlite_db, settings, clock, "lead", Role.LEADERSHIP), clock)
    page = web.get("/impact")
    filed = web.post("/impact/proposals", data={**FORM, "csrf_token": csrf_of(page.text)})
    assert filed.status_code == 200
    assert "Appointment reminder calls" in filed.text
    assert "390.0 h, $9,360" in filed.text  # the hand-worked estimate, on the page
    assert "7.4 months" in filed.text
    with sqlite_db.transaction() as session:
        proposal_id = session.scalars(select(Proposal.id)).one()
    token = csrf_of(filed.text)
    no_reason = web.post(
        f"/impact/proposals/{proposal_id}/decide",
        data={"csrf_token": token, "decision": "reject"},
    )
    assert no_reason.status_code == 422
    assert "say why" in no_reason.text
    approved = web.post(
        f"/impact/proposals/{proposal_id}/decide",
        data={"csrf_token": token, "decision": "approve", "automation": "appointment-reminders"},
    )
    assert "state-approved" in approved.text
    exported = web.get("/impact/portfolio.csv")
    (row,) = csv.DictReader(io.StringIO(exported.text))
    assert (row["state"], row["automation"], row["payback_months"]) == (
        "approved",
        "appointment-reminders",
        "7.4",
    )
    with sqlite_db.transaction() as session:
        rows = session.execute(
            select(audit_log.c.action, audit_log.c.resources).order_by(audit_log.c.seq)
        ).all()
    touched = [action for action, refs in rows if f"Proposal/{proposal_id}" in refs]
    assert touched == ["create", "write"]


def test_an_engineer_files_and_trials_but_does_not_decide_and_the_desk_sees_nothing(
    web: TestClient, sqlite_db: Database, clock: FakeClock, settings: Settings
) -> None:
    sign_in(web, add_person(sqlite_db, settings, clock, "eng", Role.AUTOMATION_ENGINEER), clock)
    page = web.get("/impact")
    assert 'id="file-proposal"' in page.text
    filed = web.post("/impact/proposals", data={**FORM, "csrf_token": csrf_of(page.text)})
    with sqlite_db.transaction() as session:
        proposal_id = session.scalars(select(Proposal.id)).one()
    token = csrf_of(filed.text)
    refused = web.post(
        f"/impact/proposals/{proposal_id}/decide",
        data={"csrf_token": token, "decision": "approve", "automation": "daily-digest"},
    )
    assert refused.status_code == 403
    trial = web.post(
        f"/impact/proposals/{proposal_id}/trial",
        data={"csrf_token": token, "automation": "daily-digest", "weeks": "2"},
    )
    assert trial.status_code == 200
    with sqlite_db.transaction() as session:
        assert all_switches(session)["daily-digest"].dry_run
        assert session.get_one(Proposal, proposal_id).trial_until is not None
    web.post("/sign-out", data={"csrf_token": csrf_of(trial.text)})
    desk = add_person(sqlite_db, settings, clock, "desk", Role.FRONT_DESK)
    sign_in(web, desk, clock)
    assert web.get("/impact").status_code == 403
