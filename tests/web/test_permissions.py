"""Every route declares who may use it, roles see only what they need, PHI views are audited."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from tests.web.staff_support import Person, add_person, sign_in, staff_settings

from clinicflow.clock import FakeClock
from clinicflow.ehr import sync_folder
from clinicflow.engine import open_work_item
from clinicflow.security.permissions import PHI_PERMISSIONS, ROLE_PERMISSIONS, Permission, Role
from clinicflow.security.phi import PhiCipher, keyring_from_settings
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.store.audit import AuditLog
from clinicflow.synth import write_practice
from clinicflow.web import create_app
from clinicflow.web.auth import Guard

# Starlette's own routes, open by design: the schema and docs of the API (no data) and the files.
OPEN_NON_API_ROUTES = {"/openapi.json", "/api/docs", "/docs/oauth2-redirect", "/static"}


def _guards(dependant: Dependant) -> list[Guard]:
    found = [d.call for d in dependant.dependencies if isinstance(d.call, Guard)]
    for sub in dependant.dependencies:
        found += _guards(sub)
    return found


def _routes(app: FastAPI) -> list[tuple[str, Any]]:
    """(path, route) of every route, through included routers (FastAPI 0.165 keeps them nested;
    its route contexts carry each route's dependant with the router's dependencies added)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # an older FastAPI: app.routes is already flat
        return [(getattr(r, "path", ""), r) for r in app.routes]
    return [(str(ctx.path), ctx) for ctx in iter_route_contexts(app.routes)]


def _route_guards(app: FastAPI) -> dict[str, list[Guard]]:
    guards: dict[str, list[Guard]] = {}
    for path, route in _routes(app):
        original = getattr(route, "original_route", route)
        if isinstance(original, APIRoute):
            guards[f"{sorted(route.methods)[0]} {path}"] = _guards(route.dependant)
    return guards


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return staff_settings(tmp_path)


@pytest.fixture
def app(sqlite_db: Database, clock: FakeClock, settings: Settings) -> FastAPI:
    return create_app(settings, db=sqlite_db, clock=clock)


def test_every_route_of_the_app_declares_a_permission_or_why_it_is_public(app: FastAPI) -> None:
    undeclared = [name for name, guards in _route_guards(app).items() if not guards]
    assert undeclared == []
    public = {
        name: guards[0].public_reason
        for name, guards in _route_guards(app).items()
        if guards[0].permission is None
    }
    assert all(public.values())  # each open route says why
    assert "POST /sign-in" in public
    others = {
        path
        for path, route in _routes(app)
        if not isinstance(getattr(route, "original_route", route), APIRoute)
    }
    assert others <= OPEN_NON_API_ROUTES


def test_staff_pages_and_the_api_are_not_public(app: FastAPI) -> None:
    for name, guards in _route_guards(app).items():
        path = name.split(" ", 1)[1]
        if path.startswith(("/api/v1", "/today", "/review", "/patients", "/automations")):
            assert guards[0].permission is not None, name


def test_only_the_care_team_holds_phi_permissions() -> None:
    no_phi = {Role.AUTOMATION_ENGINEER, Role.LEADERSHIP, Role.COMPLIANCE, Role.ADMIN}
    for role in no_phi:
        assert not ROLE_PERMISSIONS[role] & PHI_PERMISSIONS, role
    assert Permission.AUTOMATIONS_VIEW not in ROLE_PERMISSIONS[Role.NURSE]


@pytest.fixture
def practice_db(
    sqlite_db: Database, settings: Settings, clock: FakeClock, tmp_path: Path
) -> Database:
    """A small synthetic practice synced, and a work item naming one of its patients."""
    folder = tmp_path / "practice"
    write_practice(
        folder, seed=3, patients=60, anchor_on=date(2026, 11, 23), timezone="America/New_York"
    )
    cipher = PhiCipher(keyring_from_settings(settings, create=False))
    sync_folder(sqlite_db, cipher, clock, folder)
    patient_id = (folder / "Patient.ndjson").read_text().split('"id":"')[1].split('"')[0]
    with sqlite_db.transaction() as session:
        open_work_item(
            session,
            cipher,
            key="test:call-back",
            pool="front-desk",
            description="Patient asked for a call back",
            actor="test",
            now=clock.now(),
            for_ref=f"Patient/{patient_id}",
        )
    return sqlite_db


def _audit_rows(db: Database, actor: str) -> list[Any]:
    with db.transaction() as session:
        return list(
            session.execute(
                sa.select(AuditLog).where(AuditLog.actor == actor).order_by(AuditLog.seq)
            ).scalars()
        )


def _phi_pages(page: str) -> Iterator[str]:
    yield from re.findall(r'href="(/patients/[^"]+)"', page)[:1]


@pytest.mark.parametrize("role", [Role.FRONT_DESK, Role.NURSE, Role.PHYSICIAN])
def test_every_phi_page_view_leaves_one_audit_row_naming_the_viewer_and_where_from(
    role: Role, practice_db: Database, settings: Settings, clock: FakeClock, app: FastAPI
) -> None:
    person: Person = add_person(practice_db, settings, clock, "viewer", role)
    with TestClient(app) as client:
        sign_in(client, person, clock)
        today = client.get("/today?day=2026-11-23")
        paths = ["/today?day=2026-11-23", "/review?pool=all", *(_phi_pages(today.text))]
        item = re.search(r'href="(/review/\d+)"', client.get("/review?pool=all").text)
        assert item
        paths.append(item.group(1))
        for path in paths:
            before = len(_audit_rows(practice_db, "viewer"))
            assert client.get(path).status_code == 200, path
            rows = _audit_rows(practice_db, "viewer")[before:]
            reads = [r for r in rows if r.action == "read"]
            assert len(reads) == 1, path  # one row per view, not one per patient
            assert reads[0].resources, path
            assert reads[0].detail["address"] == "testclient", path


def test_a_forbidden_page_is_403_and_the_denial_is_audited(
    sqlite_db: Database, settings: Settings, clock: FakeClock, app: FastAPI
) -> None:
    nurse = add_person(sqlite_db, settings, clock, "nora", Role.NURSE)
    with TestClient(app) as client:
        sign_in(client, nurse, clock)
        page = client.get("/automations", headers={"accept": "text/html"})
        assert page.status_code == 403
        assert "Not for your role" in page.text
        assert 'href="/automations"' not in client.get("/today").text
    denials = [r for r in _audit_rows(sqlite_db, "nora") if r.action == "denied"]
    assert [d.detail["path"] for d in denials] == ["/automations"]


def test_an_automation_engineer_sees_automations_but_no_patient(
    practice_db: Database, settings: Settings, clock: FakeClock, app: FastAPI
) -> None:
    engineer = add_person(practice_db, settings, clock, "eli", Role.AUTOMATION_ENGINEER)
    with TestClient(app) as client:
        sign_in(client, engineer, clock)
        assert client.get("/automations").status_code == 200
        for path in ("/today", "/review", "/api/v1/appointments", "/api/v1/outbox"):
            assert client.get(path).status_code == 403, path
