"""Consent evidence and stored replies, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from clinicflow.channels.consent import (
    ConsentSource,
    is_opted_out,
    opted_out_among,
    record_consent,
)
from clinicflow.channels.inbound import INBOUND_RECEIVED, StoredInbound, store_inbound
from clinicflow.channels.replies import Classified, Intent
from clinicflow.clock import FakeClock
from clinicflow.engine.payloads import MessageChannel
from clinicflow.errors import InputError
from clinicflow.security.phi import PhiCipher
from clinicflow.store import Database
from clinicflow.store.audit import audit_log
from clinicflow.store.engine import Event
from clinicflow.store.messaging import ConsentChange, InboundMessage, inbound_message_aad

SMS = MessageChannel.SMS
PATIENT = "+15551230001"


def _opt(db: Database, clock: FakeClock, digest: str, *, out: bool, keyword: str) -> bool:
    with db.transaction() as session:
        return record_consent(
            session,
            channel=SMS,
            contact_digest=digest,
            opted_out=out,
            keyword=keyword,
            source=ConsentSource.STAFF,
            now=clock.now(),
        )


def _receive(
    db: Database, cipher: PhiCipher, clock: FakeClock, body: str, sid: str = "SM1"
) -> StoredInbound:
    with db.transaction() as session:
        return store_inbound(
            session,
            cipher,
            provider_id=sid,
            channel="sms",
            sender=PATIENT,
            contact_digest=cipher.blind_index("phone", PATIENT),
            body=body,
            received_at=clock.now(),
        )


def _count(db: Database, model: type[object]) -> int:
    with db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_contact_with_no_consent_row_is_not_opted_out(db: Database) -> None:
    with db.transaction() as session:
        assert not is_opted_out(session, SMS, "d1")
        assert opted_out_among(session, SMS, ["d1"]) == set()


def test_the_latest_change_wins_and_each_change_says_whether_it_changed_anything(
    db: Database, clock: FakeClock
) -> None:
    assert _opt(db, clock, "d1", out=True, keyword="STOP") is True
    assert _opt(db, clock, "d1", out=True, keyword="QUIT") is False
    with db.transaction() as session:
        assert is_opted_out(session, SMS, "d1")
    assert _opt(db, clock, "d1", out=False, keyword="START") is True
    with db.transaction() as session:
        assert not is_opted_out(session, SMS, "d1")
    # A repeated STOP is still kept: every time the patient said so is evidence.
    assert _count(db, ConsentChange) == 3


def test_an_opt_in_without_an_earlier_opt_out_changes_nothing_but_is_kept(
    db: Database, clock: FakeClock
) -> None:
    assert _opt(db, clock, "d1", out=False, keyword="START") is False
    assert _count(db, ConsentChange) == 1


def test_an_opt_out_on_one_channel_leaves_the_other_channel_alone(
    db: Database, clock: FakeClock
) -> None:
    _opt(db, clock, "d1", out=True, keyword="STOP")
    with db.transaction() as session:
        assert not is_opted_out(session, MessageChannel.EMAIL, "d1")
        assert opted_out_among(session, MessageChannel.EMAIL, ["d1"]) == set()


def test_opted_out_among_answers_for_many_contacts_past_one_chunk(
    db: Database, clock: FakeClock
) -> None:
    digests = [f"d{n:04}" for n in range(1203)]
    with db.transaction() as session:
        for n, digest in enumerate(digests):
            if n % 3 == 0:
                record_consent(
                    session,
                    channel=SMS,
                    contact_digest=digest,
                    opted_out=True,
                    keyword="STOP",
                    source=ConsentSource.SMS,
                    now=clock.now(),
                )
            if n % 9 == 0:  # some of those came back
                record_consent(
                    session,
                    channel=SMS,
                    contact_digest=digest,
                    opted_out=False,
                    keyword="START",
                    source=ConsentSource.SMS,
                    now=clock.now() + timedelta(minutes=1),
                )
    expected = {d for n, d in enumerate(digests) if n % 3 == 0 and n % 9 != 0}
    with db.transaction() as session:
        assert opted_out_among(session, SMS, [*digests, "never-seen"]) == expected
        assert opted_out_among(session, SMS, []) == set()


def test_a_reply_is_stored_encrypted_with_its_intent_an_event_and_an_audit_row(
    db: Database, cipher: PhiCipher, clock: FakeClock
) -> None:
    stored = _receive(db, cipher, clock, "Sí")

    assert stored.created
    assert stored.intent is Intent.CONFIRM
    with db.transaction() as session:
        row = session.get_one(InboundMessage, stored.id)
        event = session.scalars(select(Event)).one()
        audit = session.execute(select(audit_log)).one()
    assert PATIENT.encode() not in row.sender_enc
    assert cipher.decrypt(row.sender_enc, inbound_message_aad("SM1", "from")) == PATIENT.encode()
    assert cipher.decrypt(row.body_enc, inbound_message_aad("SM1", "body")) == "Sí".encode()
    assert (row.intent, row.channel, row.received_at) == ("confirm", "sms", clock.now())
    assert (event.type, event.resource_type, event.resource_id) == (
        INBOUND_RECEIVED,
        "InboundMessage",
        str(stored.id),
    )
    assert event.payload == {"intent": "confirm", "channel": "sms"}
    assert (audit.actor, audit.action, audit.resources) == (
        "inbound-sms",
        "create",
        [f"InboundMessage/{stored.id}"],
    )


def test_a_webhook_delivered_twice_is_stored_once_and_acted_on_once(
    db: Database, cipher: PhiCipher, clock: FakeClock
) -> None:
    first = _receive(db, cipher, clock, "STOP")
    again = _receive(db, cipher, clock, "STOP")

    assert again == StoredInbound(first.id, created=False, intent=Intent.STOP)
    assert _count(db, InboundMessage) == 1
    assert _count(db, Event) == 1
    assert _count(db, ConsentChange) == 1
    assert _count(db, audit_log) == 1


def test_stop_opts_the_number_out_with_the_message_as_evidence_and_start_reverses_it(
    db: Database, cipher: PhiCipher, clock: FakeClock
) -> None:
    digest = cipher.blind_index("phone", PATIENT)
    stop = _receive(db, cipher, clock, "stop.", sid="SM1")
    with db.transaction() as session:
        assert is_opted_out(session, SMS, digest)
        change = session.scalars(select(ConsentChange)).one()
    assert (change.keyword, change.source, change.inbound_message_id) == ("STOP", "sms", stop.id)

    start = _receive(db, cipher, clock, "Start", sid="SM2")
    with db.transaction() as session:
        assert not is_opted_out(session, SMS, digest)
        latest = session.scalars(select(ConsentChange).order_by(ConsentChange.id.desc())).first()
    assert latest is not None
    assert (latest.opted_out, latest.keyword, latest.inbound_message_id) == (
        False,
        "START",
        start.id,
    )


def test_free_text_changes_no_consent_and_its_event_carries_no_words(
    db: Database, cipher: PhiCipher, clock: FakeClock
) -> None:
    stored = _receive(db, cipher, clock, "please stop calling my mother about the biopsy")

    assert stored.intent is Intent.OTHER
    assert _count(db, ConsentChange) == 0
    with db.transaction() as session:
        event = session.scalars(select(Event)).one()
    assert event.payload == {"intent": "other", "channel": "sms"}


def test_a_given_classification_is_used_and_its_keyword_never_copies_free_text(
    db: Database, cipher: PhiCipher, clock: FakeClock
) -> None:
    with db.transaction() as session:
        stored = store_inbound(
            session,
            cipher,
            provider_id="page:abc",
            channel="email",
            sender="pat@example.org",
            contact_digest="e1",
            body="Unsubscribe me, my name is Jane",
            received_at=clock.now(),
            classified=Classified(Intent.STOP, opts_out=True),
            appointment_ids=["Appointment/9"],
        )
        row = session.get_one(InboundMessage, stored.id)
        change = session.scalars(select(ConsentChange)).one()
    assert row.appointment_ids == ["Appointment/9"]
    assert (change.channel, change.keyword, change.source) == ("email", "STOP", "email-link")


def test_an_unknown_channel_is_refused_and_nothing_is_stored(
    db: Database, cipher: PhiCipher, clock: FakeClock
) -> None:
    with pytest.raises(InputError, match="unknown channel 'fax'"), db.transaction() as session:
        store_inbound(
            session,
            cipher,
            provider_id="F1",
            channel="fax",
            sender=PATIENT,
            contact_digest="d1",
            body="C",
            received_at=clock.now(),
        )
    assert _count(db, InboundMessage) == 0
