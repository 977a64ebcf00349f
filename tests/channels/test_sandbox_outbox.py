"""The sandbox channel on SQLite and PostgreSQL: a delivery is an outbox row anyone can check."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select

from clinicflow.channels import SandboxMessageHandler, deliveries_of, list_outbox
from clinicflow.clock import FakeClock
from clinicflow.engine import (
    Delivery,
    EffectCall,
    EffectId,
    HandlerEnv,
    MessageChannel,
    OutgoingMessage,
    RunId,
    message_key,
)
from clinicflow.security.audit import Actor
from clinicflow.security.phi import Keyring, PhiCipher
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.store.audit import audit_log
from clinicflow.store.engine import SandboxMessage

KEY = message_key("reminders", "Appointment/9", "48h")


def _call(key: str = KEY) -> EffectCall:
    message = OutgoingMessage(
        MessageChannel.EMAIL,
        "jane.rivera@example.org",
        "Your visit is on Tuesday at 10:30.",
        subject="Your visit",
        for_ref="Patient/1",
    )
    return EffectCall(
        EffectId(1), key, "message.send", "reminders", RunId(1), 1, message.to_payload()
    )


@contextmanager
def _env(db: Database, cipher: PhiCipher, clock: FakeClock) -> Iterator[HandlerEnv]:
    with db.sessions() as session:
        yield HandlerEnv(session=session, db=db, cipher=cipher, clock=clock, settings=Settings())


def test_a_delivered_message_is_in_the_outbox_encrypted(db: Database, clock: FakeClock) -> None:
    cipher = PhiCipher(Keyring.generate())
    with _env(db, cipher, clock) as env:
        result = SandboxMessageHandler().execute(_call(), env)
    with db.transaction() as session:
        row = session.scalars(select(SandboxMessage)).one()
        [message] = list_outbox(session, cipher, reader=Actor.user("tester"), now=clock.now())
    assert result == {"outbox_uid": row.uid}
    assert b"rivera" not in row.recipient_enc
    assert b"Tuesday" not in row.body_enc
    assert (message.to, message.subject, message.body) == (
        "jane.rivera@example.org",
        "Your visit",
        "Your visit is on Tuesday at 10:30.",
    )
    assert message.to_json()["for"] == "Patient/1"
    assert message.sent_at == clock.now()


def test_reconcile_answers_from_the_outbox(db: Database, clock: FakeClock) -> None:
    cipher = PhiCipher(Keyring.generate())
    handler = SandboxMessageHandler()
    with _env(db, cipher, clock) as env:
        assert handler.reconcile(_call(), env) is Delivery.NOT_DELIVERED
    with _env(db, cipher, clock) as env:
        handler.execute(_call(), env)
    with _env(db, cipher, clock) as env:
        assert handler.reconcile(_call(), env) is Delivery.DELIVERED


def test_a_double_send_shows_as_two_outbox_rows(db: Database, clock: FakeClock) -> None:
    cipher = PhiCipher(Keyring.generate())
    handler = SandboxMessageHandler()
    with _env(db, cipher, clock) as env:
        handler.execute(_call(), env)
        handler.execute(_call(), env)
    with db.transaction() as session:
        assert deliveries_of(session, KEY) == 2


def test_sending_and_reading_the_outbox_are_both_in_the_audit_log(
    db: Database, clock: FakeClock
) -> None:
    cipher = PhiCipher(Keyring.generate())
    with _env(db, cipher, clock) as env:
        SandboxMessageHandler().execute(_call(), env)
    with db.transaction() as session:
        list_outbox(session, cipher, reader=Actor.user("frontdesk1"), now=clock.now())
    with db.transaction() as session:
        rows = session.execute(
            select(
                audit_log.c.actor_kind, audit_log.c.actor, audit_log.c.action, audit_log.c.resources
            ).order_by(audit_log.c.seq)
        ).all()
    assert [(r.actor_kind, r.actor, r.action) for r in rows] == [
        ("automation", "reminders", "send"),
        ("user", "frontdesk1", "read"),
    ]
    assert "Patient/1" in rows[0].resources
    assert "Patient/1" in rows[1].resources


def test_a_message_for_a_contained_patient_is_sent_and_audited_without_the_odd_reference(
    db: Database, clock: FakeClock
) -> None:
    cipher = PhiCipher(Keyring.generate())
    message = OutgoingMessage(
        MessageChannel.SMS, "+15550100199", "See you tomorrow.", for_ref="Patient/#p1"
    )
    call = EffectCall(
        EffectId(1), "k1", "message.send", "reminders", RunId(1), 1, message.to_payload()
    )
    with _env(db, cipher, clock) as env:
        SandboxMessageHandler().execute(call, env)
    with db.transaction() as session:
        resources = session.execute(select(audit_log.c.resources)).scalar_one()
    assert resources == []
