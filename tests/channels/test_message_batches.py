"""`message.send` in batches on SQLite and PostgreSQL: the send-time checks of many messages in a
few queries with the verdicts one message at a time would get, and the sandbox outbox written in
one transaction with one audit row naming every patient."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import event, insert, select

from clinicflow.channels.consent import ConsentSource, record_consent
from clinicflow.channels.delivery import (
    MessageRouter,
    check_many,
    check_may_send,
    contact_digest,
)
from clinicflow.channels.pause import set_messages_paused
from clinicflow.channels.sandbox import SandboxMessageHandler, list_outbox
from clinicflow.clock import FakeClock
from clinicflow.engine import (
    DeferredError,
    EffectCall,
    EffectId,
    HandlerEnv,
    MessageChannel,
    OutgoingMessage,
    RunId,
    VoidedError,
)
from clinicflow.engine.handlers import CALL_EXECUTE, can_execute_many
from clinicflow.engine.payloads import ValidWhile
from clinicflow.security.audit import INDEX_LATER, Actor, catch_up_audit_index
from clinicflow.security.audit_search import AuditQuery, search_audit
from clinicflow.security.phi import PhiCipher
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.store.audit import audit_log
from clinicflow.store.engine import SandboxMessage
from clinicflow.store.replica import Appointment

ZONE = "America/New_York"  # the clock fixture's 14:00 UTC is 09:00 there, inside the window


def _visit_at(clock: FakeClock) -> datetime:
    return clock.now() + timedelta(days=2)


def _text(i: int, clock: FakeClock, **changes: object) -> OutgoingMessage:
    base: dict[str, object] = {
        "channel": MessageChannel.SMS,
        "to": f"+1555010{i:04d}",
        "body": f"Your visit is on Wednesday (patient {i}).",
        "for_ref": f"Patient/p{i}",
        "zone": ZONE,
        "not_after": _visit_at(clock),
        "valid_while": (ValidWhile(f"Appointment/a{i}", _visit_at(clock)),),
    }
    return OutgoingMessage(**{**base, **changes})  # type: ignore[arg-type]


def _call(i: int, message: OutgoingMessage, automation: str = "reminders") -> EffectCall:
    return EffectCall(
        EffectId(i + 1), f"k{i}", "message.send", automation, RunId(1), 1, message.to_payload()
    )


def _book(db: Database, clock: FakeClock, count: int, **status: str) -> None:
    with db.transaction() as session:
        session.execute(
            insert(Appointment),
            [
                {
                    "fhir_id": f"a{i}",
                    "status": status.get(f"a{i}", "booked"),
                    "start_at": _visit_at(clock),
                }
                for i in range(count)
            ],
        )


@contextmanager
def _env(
    db: Database, cipher: PhiCipher, clock: FakeClock, settings: Settings | None = None
) -> Iterator[HandlerEnv]:
    with db.sessions() as session:
        yield HandlerEnv(
            session=session,
            db=db,
            cipher=cipher,
            clock=clock,
            settings=settings or Settings(timezone=ZONE),
        )


def _opt_out(db: Database, cipher: PhiCipher, clock: FakeClock, to: str) -> None:
    with db.transaction() as session:
        record_consent(
            session,
            channel=MessageChannel.SMS,
            contact_digest=contact_digest(cipher, MessageChannel.SMS, to),
            opted_out=True,
            keyword="STOP",
            source=ConsentSource.SMS,
            now=clock.now(),
        )


def _verdicts(
    db: Database, cipher: PhiCipher, clock: FakeClock, messages: list[OutgoingMessage]
) -> list[tuple[str, str, datetime | None] | None]:
    with _env(db, cipher, clock) as env, db.transaction() as session:
        verdicts = check_many(session, messages, env, clock.now())
    return [
        None
        if v is None
        else (type(v).__name__, v.message, v.until if isinstance(v, DeferredError) else None)
        for v in verdicts
    ]


def _one_at_a_time(
    db: Database, cipher: PhiCipher, clock: FakeClock, messages: list[OutgoingMessage]
) -> list[tuple[str, str, datetime | None] | None]:
    verdicts: list[tuple[str, str, datetime | None] | None] = []
    for message in messages:
        with _env(db, cipher, clock) as env, db.transaction() as session:
            try:
                check_may_send(session, message, env, clock.now())
                verdicts.append(None)
            except DeferredError as exc:
                verdicts.append(("DeferredError", exc.message, exc.until))
            except VoidedError as exc:
                verdicts.append(("VoidedError", exc.message, None))
    return verdicts


def test_a_batch_gets_the_verdicts_each_message_would_get_alone(
    db: Database, cipher: PhiCipher, clock: FakeClock
) -> None:
    _book(db, clock, 8, a3="cancelled")
    _opt_out(db, cipher, clock, _text(1, clock).to)
    _opt_out(db, cipher, clock, _text(5, clock).to)  # also too late: that is said first
    gone = ValidWhile("Appointment/nowhere", _visit_at(clock))
    messages = [
        _text(0, clock),
        _text(1, clock),
        _text(
            2,
            clock,
            valid_while=(ValidWhile("Appointment/a2", _visit_at(clock) + timedelta(hours=1)),),
        ),
        _text(3, clock),
        _text(4, clock, zone="Asia/Tokyo"),  # 23:00 there
        _text(5, clock, not_after=clock.now() - timedelta(minutes=1)),
        _text(6, clock, valid_while=(ValidWhile("Appointment/a6", _visit_at(clock)), gone)),
        _text(7, clock, channel=MessageChannel.EMAIL, to="p7@example.org", zone="Asia/Tokyo"),
    ]
    tokyo_8am = datetime.fromisoformat("2026-11-24T08:00:00+09:00")
    expected = [
        None,
        ("VoidedError", "The patient opted out of texts.", None),
        ("VoidedError", "Appointment/a2 moved: the reminder for the old time is dropped.", None),
        ("VoidedError", "Appointment/a3 is cancelled: the reminder no longer applies.", None),
        ("DeferredError", "Quiet hours where the patient lives: held until 8:00.", tokyo_8am),
        ("VoidedError", "Too late to help: its time passed while it waited.", None),
        ("VoidedError", "Appointment/nowhere is removed: the reminder no longer applies.", None),
        None,  # e-mail knows no quiet hours
    ]
    assert _verdicts(db, cipher, clock, messages) == expected
    assert _one_at_a_time(db, cipher, clock, messages) == expected


def test_paused_messages_are_all_held_for_a_few_minutes_before_any_other_check(
    db: Database, cipher: PhiCipher, clock: FakeClock
) -> None:
    _book(db, clock, 2, a1="cancelled")
    with db.transaction() as session:
        set_messages_paused(session, paused=True, actor=Actor.user("mgr"), now=clock.now())
    verdicts = _verdicts(db, cipher, clock, [_text(0, clock), _text(1, clock)])
    held = ("DeferredError", "Patient messages are paused (by mgr): held until they resume.")
    assert verdicts == [(*held, clock.now() + timedelta(minutes=5))] * 2


def test_checking_sixty_messages_takes_no_more_queries_than_checking_three(
    db: Database, cipher: PhiCipher, clock: FakeClock
) -> None:
    _book(db, clock, 60)
    _opt_out(db, cipher, clock, _text(2, clock).to)
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    def queries(n: int) -> int:
        statements.clear()
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            _verdicts(db, cipher, clock, [_text(i, clock) for i in range(n)])
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        return len(statements)

    assert queries(60) == queries(3)


def test_a_sandbox_batch_is_one_transaction_and_one_audit_row_naming_every_patient(
    db: Database, cipher: PhiCipher, clock: FakeClock
) -> None:
    messages = [
        _text(0, clock),
        _text(1, clock),
        _text(2, clock, channel=MessageChannel.EMAIL, to="p2@example.org", subject="Your visit"),
    ]
    calls = [_call(i, m) for i, m in enumerate(messages)]
    commits: list[object] = []

    def committed(conn: object) -> None:
        commits.append(conn)

    event.listen(db.engine, "commit", committed)
    try:
        with _env(db, cipher, clock) as env:
            results = SandboxMessageHandler().deliver_many(
                list(zip(calls, messages, strict=True)), env
            )
    finally:
        event.remove(db.engine, "commit", committed)
    assert len(commits) == 1
    with db.transaction() as session:
        uids = dict(session.execute(select(SandboxMessage.effect_key, SandboxMessage.uid)).all())
        outbox = list_outbox(session, cipher, reader=Actor.user("tester"), now=clock.now())
    assert results == [{"outbox_uid": uids[f"k{i}"]} for i in range(3)]
    assert sorted((m.effect_key, m.to, m.subject, m.body) for m in outbox) == [
        (f"k{i}", m.to, m.subject, m.body) for i, m in enumerate(messages)
    ]
    with db.transaction() as session:
        [sent] = session.execute(select(audit_log).where(audit_log.c.action == "send")).all()
    assert (sent.actor_kind, sent.actor) == ("automation", "reminders")
    assert sorted(sent.resources) == ["Patient/p0", "Patient/p1", "Patient/p2"]
    # Indexed by patient with the next catch-up (the worker's audit-index job), many batches'
    # rows in one sorted write.
    assert sent.detail == {"messages": 3, "channels": {"email": 1, "sms": 2}, INDEX_LATER: True}
    with db.transaction() as session:
        catch_up_audit_index(session)
        found = search_audit(session, AuditQuery(patient_id="p2"))
    assert [e.seq for e in found if e.action == "send"] == [sent.seq]


def test_a_batch_from_two_automations_is_audited_once_for_each(
    db: Database, cipher: PhiCipher, clock: FakeClock
) -> None:
    pairs = [
        (_call(0, _text(0, clock), "reminders"), _text(0, clock)),
        (_call(1, _text(1, clock), "replies"), _text(1, clock)),
    ]
    with _env(db, cipher, clock) as env:
        SandboxMessageHandler().deliver_many(pairs, env)
    with db.transaction() as session:
        rows = session.execute(
            select(audit_log.c.actor, audit_log.c.resources).order_by(audit_log.c.seq)
        ).all()
    assert [(r.actor, r.resources) for r in rows] == [
        ("reminders", ["Patient/p0"]),
        ("replies", ["Patient/p1"]),
    ]


def test_the_router_sends_a_checked_batch_to_the_sandbox_and_says_why_others_may_not_go(
    db: Database, cipher: PhiCipher, clock: FakeClock
) -> None:
    _book(db, clock, 3, a1="cancelled")
    router = MessageRouter()
    assert can_execute_many(router)
    calls = [_call(i, _text(i, clock)) for i in range(3)]
    with _env(db, cipher, clock) as env:
        outcomes = router.execute_many(calls, env)
    with db.transaction() as session:
        keys = list(session.scalars(select(SandboxMessage.effect_key)))
    assert keys == ["k0", "k2"]
    assert isinstance(outcomes[1], VoidedError)
    assert [o for i, o in enumerate(outcomes) if i != 1] == [
        {"outbox_uid": uid}
        for uid in [outcomes[0]["outbox_uid"], outcomes[2]["outbox_uid"]]  # type: ignore[index]
    ]


def test_messages_for_twilio_smtp_or_with_a_zone_that_does_not_load_are_left_to_execute(
    db: Database, cipher: PhiCipher, clock: FakeClock
) -> None:
    _book(db, clock, 4)
    settings = Settings(timezone=ZONE, smtp_host="127.0.0.1", twilio_account_sid="AC" + "1" * 32)
    email = _text(1, clock, channel=MessageChannel.EMAIL, to="p1@example.org")
    calls = [_call(0, _text(0, clock)), _call(1, email)]
    with _env(db, cipher, clock, settings) as env:
        assert MessageRouter().execute_many(calls, env) == [CALL_EXECUTE, CALL_EXECUTE]
    odd = [_call(2, _text(2, clock, zone="Nowhere/Land")), _call(3, _text(3, clock))]
    broken = EffectCall(EffectId(9), "k9", "message.send", "reminders", RunId(1), 1, {"to": "x"})
    with _env(db, cipher, clock) as env:
        outcomes = MessageRouter().execute_many([*odd, broken], env)
    assert outcomes[0] is CALL_EXECUTE
    assert outcomes[2] is CALL_EXECUTE
    assert isinstance(outcomes[1], dict)
    with db.transaction() as session:
        assert list(session.scalars(select(SandboxMessage.effect_key))) == ["k3"]
