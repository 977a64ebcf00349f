"""message-triage end to end: from the EHR over FHIR, from a text, from the API, to the people.

A portal message synced from the FHIR peer becomes an urgent work item and an on-call text in
the sandbox outbox; the patient's only answer is the safety message in the portal thread. Five
minutes unacknowledged, the next person on the rota is texted; once a nurse takes the work item
the ladder stops. A free-text reply to a reminder ("X, can't come, chest pain") still reaches a
nurse, and a routine message gets its pool, its due time and an acknowledgement.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.automations.reminder_practice import (
    Practice,
    build_practice,
    patient,
    visit,
)
from tests.fhir_peer import FhirPeer, PeerConfig, running_peer

from clinicflow.automations.triage import AUTOMATION as TRIAGE
from clinicflow.automations.triage import ESCALATION_AUTOMATION as ESCALATION
from clinicflow.automations.triage.intake import post_message
from clinicflow.clock import FakeClock
from clinicflow.ehr.fhir_client import FhirClient
from clinicflow.ehr.fhir_sync import SyncMode, sync_fhir
from clinicflow.ehr.http import FhirHttp, RetryPolicy
from clinicflow.ehr.signing import SigningAlg, load_key, public_jwks, write_new_key
from clinicflow.ehr.smart import SmartAuth, SmartClient
from clinicflow.ehr.writeback import EHR_WRITE_BACK
from clinicflow.engine import claim_work_item, run_now
from clinicflow.oncall.rota import add_shift
from clinicflow.security.accounts import create_user, set_alert_phone
from clinicflow.security.audit import Actor
from clinicflow.security.passwords import hashing_for
from clinicflow.security.permissions import Role
from clinicflow.store import Database
from clinicflow.store.engine import Effect, WorkItem
from clinicflow.store.triage import TriageMessage

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)  # Wednesday 10:00 in New York
CLIENT_ID = "clinicflow-triage-test"
MOBILE = "+15551230001"
NURSES = {"nora": "+15557770001", "omar": "+15557770002", "pia": "+15557770003"}


@pytest.fixture
def practice(db: Database, clock: FakeClock, tmp_path: Path) -> Practice:
    found = build_practice(db, clock, tmp_path, now=NOW, extra=(TRIAGE, ESCALATION))
    with db.transaction() as session:
        for name in NURSES:
            create_user(
                session,
                hashing_for("test"),
                username=name,
                display_name=name.title(),
                role=Role.NURSE,
                password="a long test passphrase 1",
                now=NOW,
                created_by="test-admin",
            )
        for name, phone in NURSES.items():
            set_alert_phone(session, username=name, phone=phone, by="admin", now=NOW)
        # Nora is on call now; Omar's shift starts in an hour; Pia has none.
        add_shift(
            session,
            username="nora",
            starts_at=NOW - timedelta(hours=2),
            ends_at=NOW + timedelta(hours=6),
            note="",
            by="admin",
            now=NOW,
        )
        add_shift(
            session,
            username="omar",
            starts_at=NOW + timedelta(hours=1),
            ends_at=NOW + timedelta(hours=9),
            note="",
            by="admin",
            now=NOW,
        )
    return found


@pytest.fixture
def fhir(tmp_path: Path) -> Iterator[tuple[FhirPeer, FhirClient]]:
    keys = tmp_path / "ehr-keys"
    write_new_key(keys, SigningAlg.ES384)
    peer = FhirPeer(PeerConfig(clients={CLIENT_ID: public_jwks(keys)}))
    with running_peer(peer) as base_url:
        auth = SmartAuth(
            base_url,
            SmartClient(CLIENT_ID, load_key(keys / "ehr-signing-key.pem"), "system/*.rs"),
        )
        client = FhirClient(FhirHttp(base_url, auth=auth, retry=RetryPolicy(attempts=2)))
        try:
            yield peer, client
        finally:
            client.close()


def _sent_to(practice: Practice, number: str) -> list[str]:
    return [m.body for m in practice.outbox() if m.to == number]


def _message(practice: Practice) -> TriageMessage:
    with practice.rt.db.transaction() as session:
        return session.scalars(select(TriageMessage)).one()


def _work_item(practice: Practice, key: str) -> WorkItem:
    with practice.rt.db.transaction() as session:
        return session.scalars(select(WorkItem).where(WorkItem.key == key)).one()


def test_a_portal_message_synced_over_fhir_reaches_the_on_call_nurse_and_then_the_next(
    practice: Practice, fhir: tuple[FhirPeer, FhirClient]
) -> None:
    peer, client = fhir
    peer.put(patient("p1", "Maria", mobile=MOBILE))
    peer.put(
        {
            "resourceType": "Communication",
            "id": "c1",
            "status": "completed",
            "subject": {"reference": "Patient/p1"},
            "sender": {"reference": "Patient/p1"},
            "sent": (NOW - timedelta(minutes=3)).isoformat(),
            "payload": [{"contentString": "I can't breathe well and my lips look blue"}],
        }
    )
    sync_fhir(practice.rt.db, practice.cipher, practice.clock, client, mode=SyncMode.SEARCH)
    practice.settle()

    message = _message(practice)
    assert (message.source_ref, message.channel, message.patient_id) == (
        "Communication/c1",
        "portal",
        "p1",
    )
    assert message.urgent
    assert message.pool == "urgent"
    assert any("breathing" in r for r in (message.decision or {})["reasons"])
    item = _work_item(practice, message.work_item_key or "")
    assert (item.pool, item.priority, item.status) == ("urgent", "stat", "requested")
    assert item.due_at == message.received_at + timedelta(minutes=15)
    (alert,) = _sent_to(practice, NURSES["nora"])
    assert alert == (
        "Sunrise Clinic: an urgent patient message is waiting. Sign in to clinicflow to see it."
    )
    assert _sent_to(practice, NURSES["omar"]) == []
    assert _sent_to(practice, MOBILE) == []  # the portal patient is answered in the portal
    with practice.rt.db.transaction() as session:
        (reply,) = session.scalars(select(Effect).where(Effect.kind == EHR_WRITE_BACK)).all()
    assert reply.key.endswith("safety")

    # Four minutes: nobody is told again. Six: the next on the rota, Omar.
    practice.clock.advance(timedelta(minutes=4))
    run_now(practice.rt, "urgent-escalation", requested_by="test")
    assert _sent_to(practice, NURSES["omar"]) == []
    practice.clock.advance(timedelta(minutes=2))
    run_now(practice.rt, "urgent-escalation", requested_by="test")
    assert len(_sent_to(practice, NURSES["omar"])) == 1

    # Nora takes it: the ladder stops, Pia is never texted.
    with practice.rt.db.transaction() as session:
        claim_work_item(session, item.id, user="nora", now=practice.clock.now())
    practice.clock.advance(timedelta(minutes=6))
    run_now(practice.rt, "urgent-escalation", requested_by="test")
    assert _sent_to(practice, NURSES["pia"]) == []
    assert _message(practice).acknowledged_by == "nora"


def test_a_cancel_by_text_that_mentions_chest_pain_reaches_a_nurse_and_gets_the_safety_text(
    practice: Practice,
) -> None:
    practice.sync(
        patient("p1", "Maria", mobile=MOBILE),
        visit("a1", "p1", NOW + timedelta(days=2), booked=NOW - timedelta(days=9)),
    )
    practice.remind()
    practice.receive_text("X, can't come, chest pain", "SM-chest", MOBILE)

    message = _message(practice)
    assert message.urgent
    assert message.patient_id == "p1"
    assert _sent_to(practice, NURSES["nora"])
    safety = _sent_to(practice, MOBILE)[-1]
    assert "call 911" in safety
    assert "chest" not in safety
    assert _work_item(practice, message.work_item_key or "").pool == "urgent"
    with practice.rt.db.transaction() as session:
        pools = set(session.scalars(select(WorkItem.pool)))
    assert pools == {"urgent"}  # one work item, not a second one at the front desk


def test_a_routine_message_from_the_api_gets_its_pool_a_due_time_and_an_acknowledgement(
    practice: Practice,
) -> None:
    practice.sync(patient("p1", "Maria", mobile=MOBILE))
    with practice.rt.db.transaction() as session:
        post_message(
            session,
            practice.cipher,
            text="Can I get a copy of my bill from October? My insurance needs it.",
            patient_id="p1",
            language=None,
            thread_ref=None,
            by=Actor.user("portal-bridge"),
            now=practice.clock.now(),
        )
    practice.settle()
    message = _message(practice)
    assert (message.pool, message.urgent) == ("billing", False)
    item = _work_item(practice, message.work_item_key or "")
    assert (item.pool, item.priority) == ("billing", "routine")
    assert item.due_at == message.received_at + timedelta(hours=48)
    (ack,) = _sent_to(practice, MOBILE)
    assert "Our billing team will reply by Fri 4 Dec" in ack
    assert all(_sent_to(practice, phone) == [] for phone in NURSES.values())


def test_an_urgent_message_with_no_clinician_to_tell_is_told_to_the_first_one_who_can_be(
    db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    lonely = build_practice(db, clock, tmp_path, now=NOW, extra=(TRIAGE, ESCALATION))
    with lonely.rt.db.transaction() as session:
        post_message(
            session,
            lonely.cipher,
            text="my baby is 5 weeks old and has a fever of 38.6",
            patient_id=None,
            language=None,
            thread_ref=None,
            by=Actor.user("portal-bridge"),
            now=lonely.clock.now(),
        )
    lonely.settle()
    message = _message(lonely)
    assert message.urgent
    assert message.escalation_level == 0  # nobody was told, so step 0 is still to come
    with lonely.rt.db.transaction() as session:
        create_user(
            session,
            hashing_for("test"),
            username="nora",
            display_name="Nora",
            role=Role.NURSE,
            password="a long test passphrase 1",
            now=NOW,
            created_by="test-admin",
        )
        set_alert_phone(session, username="nora", phone=NURSES["nora"], by="admin", now=NOW)
    lonely.clock.advance(timedelta(minutes=1))
    run_now(lonely.rt, "urgent-escalation", requested_by="test")
    assert len(_sent_to(lonely, NURSES["nora"])) == 1
    assert _message(lonely).escalation_level == 1
