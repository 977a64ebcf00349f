"""Reconciling the scheduling window with a live EHR, and the worker's scheduled EHR jobs.

Deletions and entered-in-error never show up in an incremental sync; the reconciliation finds
them, takes them out of what automations see, and voids the reminders that have not gone out.
Against our FHIR peer on loopback, as an EHR that hides entered-in-error from every search.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.ehr.builders import appointment
from tests.fhir_peer import Fault, FhirPeer, PeerConfig, running_peer

from clinicflow.channels import deliveries_of
from clinicflow.clock import FakeClock
from clinicflow.ehr.changes import APPOINTMENT_REMOVED
from clinicflow.ehr.fhir_client import FhirClient, client_from_settings
from clinicflow.ehr.fhir_sync import SyncMode, sync_fhir
from clinicflow.ehr.scheduled import EHR_RECONCILE_JOB, EHR_SYNC_JOB, ehr_jobs
from clinicflow.ehr.signing import SigningAlg, public_jwks, write_new_key
from clinicflow.ehr.window_reconcile import Window, missing_from, reconcile_window
from clinicflow.engine import (
    Automation,
    EngineRuntime,
    Manual,
    Registry,
    RunContext,
    execute_run,
    request_run,
)
from clinicflow.engine.execution import execute_effect
from clinicflow.engine.periodic import job_states, run_due
from clinicflow.engine.states import EffectState
from clinicflow.security.audit_verify import verify_chain
from clinicflow.security.phi import Keyring, PhiCipher
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.store.audit import AuditLog
from clinicflow.store.engine import Effect, Event
from clinicflow.store.replica import Appointment, FhirResource, Patient
from clinicflow.web import create_app

CLIENT_ID = "clinicflow-test"
SCOPES = "system/*.rs"


def _appointment(n: int, clock: FakeClock, status: str = "booked", days: int = 2) -> dict:
    return appointment(n, clock.now() + timedelta(days=days), status=status)


@dataclass
class Live:
    """A peer, settings that connect to it, and the replica's parts."""

    peer: FhirPeer
    settings: Settings
    db: Database
    cipher: PhiCipher
    clock: FakeClock

    def client(self) -> FhirClient:
        return client_from_settings(self.settings)

    def sync(self) -> None:
        with self.client() as client:
            sync_fhir(self.db, self.cipher, self.clock, client, mode=SyncMode.SEARCH)

    def reconcile(self):  # type: ignore[no-untyped-def]
        with self.client() as client:
            return reconcile_window(self.db, self.cipher, self.clock, client)


@pytest.fixture
def live(tmp_path: Path, sqlite_db: Database, clock: FakeClock) -> Iterator[Live]:
    keys_dir = tmp_path / "keys"
    write_new_key(keys_dir, SigningAlg.ES384)
    peer = FhirPeer(
        PeerConfig(clients={CLIENT_ID: public_jwks(keys_dir)}, hide_entered_in_error=True)
    )
    for n in range(1, 7):
        peer.put({"resourceType": "Patient", "id": f"p{n}", "name": [{"family": f"F{n}"}]})
        peer.put(_appointment(n, clock))
    peer.put(_appointment(7, clock, days=60))  # outside the window: never looked at
    with running_peer(peer) as base_url:
        settings = Settings(
            data_dir=tmp_path,
            fhir_base_url=base_url,
            fhir_client_id=CLIENT_ID,
            fhir_key_path=keys_dir / "ehr-signing-key.pem",
            fhir_scopes=SCOPES,
            fhir_retry_attempts=1,  # a 503 fails at once: the job's own retry is what is tested
        )
        yield Live(peer, settings, sqlite_db, PhiCipher(Keyring.generate()), clock)


def _reminders(live: Live) -> EngineRuntime:
    """An engine with an automation that queues an SMS reminder for each of a1..a4."""

    def run(ctx: RunContext) -> None:
        for n in range(1, 5):
            ctx.effects.send_message(
                key=f"reminder:a{n}",
                channel="sms",
                to=f"+1555010{n:04d}",
                body="See you soon",
                for_ref=f"Patient/p{n}",
                focus=f"Appointment/a{n}",
            )

    automation = Automation(
        name="reminders", summary="test reminders", trigger=Manual(), run=run, owner="front-desk"
    )
    return EngineRuntime.build(
        db=live.db,
        settings=live.settings,
        clock=live.clock,
        cipher=live.cipher,
        registry=Registry([automation]),
    )


def _effect_states(db: Database) -> dict[str, str]:
    with db.transaction() as s:
        return {row.key: row.state for row in s.execute(select(Effect.key, Effect.state))}


def _appointment_ids(db: Database) -> list[str]:
    with db.transaction() as s:
        return sorted(s.scalars(select(Appointment.fhir_id)))


def test_missing_from_is_what_we_hold_and_they_did_not_list():
    assert missing_from(["a3", "a1", "a2"], ["a2", "a9"]) == ["a1", "a3"]
    assert missing_from([], ["a1"]) == []


def test_the_window_searches_from_yesterday_to_the_days_ahead(clock: FakeClock):
    params = Window.around(clock.now(), ahead=timedelta(days=14)).search_params()
    assert params["date"] == ["ge2026-11-22T14:00:00+00:00", "lt2026-12-07T14:00:00+00:00"]
    assert params["_include"] == "Appointment:patient"


def test_a_visit_booked_for_a_patient_new_since_the_last_sync_brings_the_patient(live: Live):
    live.sync()
    live.peer.put({"resourceType": "Patient", "id": "p9", "name": [{"family": "New"}]})
    visit = _appointment(9, live.clock)
    live.peer.put(visit)
    report = live.reconcile()
    assert report.listed == 7  # the appointments only: the included patients are not counted
    assert report.ingest.by_type["Patient"] >= 1
    with live.db.transaction() as s:
        assert s.get(Patient, "p9") is not None
    searches = [r for r in live.peer.requests if r.path.endswith("/Appointment")]
    assert searches[-1].query["_include"] == ["Appointment:patient"]


def test_a_deleted_and_a_hidden_appointment_are_settled_and_their_reminders_voided(live: Live):
    live.sync()
    rt = _reminders(live)
    queued = execute_run(rt, request_run(rt, "reminders", dry_run=False, requested_by="test"))
    assert len(queued) == 4
    live.peer.delete("Appointment", "a3")
    live.peer.put(_appointment(4, live.clock, status="entered-in-error"))
    live.sync()  # an incremental sync sees neither: the peer hides entered-in-error
    assert "a3" in _appointment_ids(live.db)
    assert "a4" in _appointment_ids(live.db)

    report = live.reconcile()

    assert report.listed == 4  # a1, a2, a5, a6 (a7 is outside the window)
    assert report.missing == 2
    assert report.removed == ["a3"]
    assert report.refreshed == 1  # a4, read by id: entered-in-error
    assert report.unsettled == []
    assert "a3" not in _appointment_ids(live.db)
    with live.db.transaction() as s:
        removed = s.execute(
            select(FhirResource.removed_at).where(FhirResource.fhir_id == "a3")
        ).scalar_one()
        assert removed == live.clock.now()  # the body stays, marked
        status = s.execute(select(Appointment.status).where(Appointment.fhir_id == "a4"))
        assert status.scalar_one() == "entered-in-error"
        events = s.execute(
            select(Event.resource_id, Event.payload).where(Event.type == APPOINTMENT_REMOVED)
        )
        by_id = {row.resource_id: row.payload for row in events}
    assert sorted(by_id) == ["a3", "a4"]
    assert by_id["a3"]["reason"] == "deleted"
    assert by_id["a3"]["patient_id"] == "p3"  # the waitlist can see whose slot came free
    states = _effect_states(live.db)
    assert states == {
        "reminder:a1": EffectState.PENDING,
        "reminder:a2": EffectState.PENDING,
        "reminder:a3": EffectState.VOIDED,
        "reminder:a4": EffectState.VOIDED,
    }
    for effect_id in queued:  # the worker gets to them: only the two live visits are reminded
        execute_effect(rt, effect_id)
    with live.db.transaction() as s:
        sent = {key: deliveries_of(s, key) for key in states}
    assert sent == {"reminder:a1": 1, "reminder:a2": 1, "reminder:a3": 0, "reminder:a4": 0}
    with live.db.transaction() as s:
        removal = s.scalars(select(AuditLog).where(AuditLog.action == "remove")).one()
        assert removal.resources == ["Appointment/a3"]
        assert verify_chain(s).problem is None


def test_a_second_reconciliation_finds_nothing_new_and_reads_nothing_again(live: Live):
    live.sync()
    live.peer.delete("Appointment", "a3")
    live.peer.put(_appointment(4, live.clock, status="entered-in-error"))
    live.reconcile()
    reads_before = len([r for r in live.peer.requests if r.path.endswith(("/a3", "/a4"))])
    again = live.reconcile()
    reads_after = len([r for r in live.peer.requests if r.path.endswith(("/a3", "/a4"))])
    assert (again.missing, again.removed, again.refreshed) == (0, [], 0)
    assert reads_after == reads_before
    with live.db.transaction() as s:
        assert s.query(Event).filter(Event.type == APPOINTMENT_REMOVED).count() == 2


def test_an_appointment_moved_out_of_the_window_is_updated_not_removed(live: Live):
    live.sync()
    live.peer.put(_appointment(2, live.clock, days=90))
    report = live.reconcile()
    assert report.removed == []
    assert report.refreshed == 1
    assert "a2" in _appointment_ids(live.db)


def test_a_failed_read_leaves_the_appointment_for_next_time(live: Live):
    live.sync()
    live.peer.delete("Appointment", "a3")
    live.peer.faults.add(Fault(method="GET", path_contains="/Appointment/a3", status=500, times=9))
    report = live.reconcile()
    assert report.removed == []
    assert len(report.unsettled) == 1
    assert report.unsettled[0].startswith("Appointment/a3: ")
    assert "a3" in _appointment_ids(live.db)  # nothing removed on a guess


def test_a_deleted_appointment_that_comes_back_is_seen_again(live: Live):
    live.sync()
    body = live.peer.get("Appointment", "a5")
    live.peer.delete("Appointment", "a5")
    live.reconcile()
    assert "a5" not in _appointment_ids(live.db)
    restored = {k: v for k, v in body.items() if k != "meta"}
    live.peer.put(restored)
    live.sync()
    assert "a5" in _appointment_ids(live.db)


def test_the_worker_jobs_sync_and_reconcile_and_record_how_it_went(live: Live):
    jobs = ehr_jobs(live.settings, live.db, live.cipher, live.clock)
    assert [j.name for j in jobs] == [EHR_SYNC_JOB, EHR_RECONCILE_JOB]
    assert run_due(live.db, live.clock, jobs, owner="w1") == [EHR_SYNC_JOB, EHR_RECONCILE_JOB]
    assert len(_appointment_ids(live.db)) == 7
    with live.db.transaction() as s:
        states = job_states(s)
    assert states[EHR_SYNC_JOB]["last_error"] is None
    assert states[EHR_SYNC_JOB]["last_summary"]["created"] == 13  # type: ignore[index]
    assert states[EHR_RECONCILE_JOB]["last_summary"]["listed"] == 6  # type: ignore[index]

    live.peer.faults.add(Fault(method="GET", path_contains="$export", status=503, times=99))
    live.clock.advance(timedelta(minutes=live.settings.fhir_sync_interval_minutes))
    assert run_due(live.db, live.clock, jobs, owner="w2") == [EHR_SYNC_JOB]
    with live.db.transaction() as s:
        failed = job_states(s)[EHR_SYNC_JOB]
    assert "503" in str(failed["last_error"])
    assert failed["last_success_at"] is not None  # the last good sync is still shown
    web = TestClient(create_app(live.settings, db=live.db, clock=live.clock))
    readiness = web.get("/readyz").json()["checks"]["ehr_sync"]
    assert ": current as of " in readiness  # the last good sync, with how far behind it is
    assert "last attempt failed: " in readiness
    assert "503" in readiness


def test_no_ehr_means_no_ehr_jobs(tmp_path: Path, sqlite_db: Database, clock: FakeClock):
    settings = Settings(data_dir=tmp_path)
    assert ehr_jobs(settings, sqlite_db, PhiCipher(Keyring.generate()), clock) == []
