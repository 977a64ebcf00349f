"""Work items on SQLite and PostgreSQL: opened once per key, claimed, noted, handed over, closed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from engine_harness import MakeHarness
from sqlalchemy import select

from clinicflow.engine import (
    Priority,
    WorkItemStatus,
    add_note,
    claim_work_item,
    get_work_item,
    hand_to_pool,
    list_open,
    open_work_item,
    resolve_work_item,
    start_work_item,
    work_item_key,
)
from clinicflow.engine.workitems import next_status
from clinicflow.errors import EngineError
from clinicflow.store.engine import WorkItem, WorkItemNote

KEY = work_item_key("noshow", "call", "Appointment/9")


def test_opening_twice_with_one_key_gives_one_work_item(make_harness: MakeHarness) -> None:
    h = make_harness()
    now = h.clock.now()
    with h.db.transaction() as session:
        first = open_work_item(
            session,
            h.rt.cipher,
            key=KEY,
            pool="front-desk",
            description="Call J. Rivera",
            actor="test",
            now=now,
        )
        second = open_work_item(
            session, h.rt.cipher, key=KEY, pool="nurse", description="other", actor="test", now=now
        )
    assert first.created
    assert not second.created
    assert second.id == first.id
    with h.db.transaction() as session:
        item = get_work_item(
            session, h.rt.cipher, first.id, reader="test-user", now=h.rt.clock.now()
        )
    assert item.pool == "front-desk"
    assert item.description == "Call J. Rivera"


def test_a_work_item_goes_from_requested_to_completed(make_harness: MakeHarness) -> None:
    h = make_harness()
    now = h.clock.now()
    with h.db.transaction() as session:
        item_id = open_work_item(
            session,
            h.rt.cipher,
            key=KEY,
            pool="front-desk",
            description="Call J. Rivera",
            actor="engine",
            now=now,
            focus="Appointment/9",
            for_ref="Patient/1",
        ).id
    with h.db.transaction() as session:
        claim_work_item(session, item_id, user="maria", now=now)
        start_work_item(session, item_id, user="maria", now=now)
        add_note(session, h.rt.cipher, item_id, author="maria", text="Left a voicemail", now=now)
        resolve_work_item(session, item_id, user="maria", now=now, reason="rebooked")
    with h.db.transaction() as session:
        item = get_work_item(
            session, h.rt.cipher, item_id, reader="test-user", now=h.rt.clock.now()
        )
        assert list_open(session, h.rt.cipher, reader="test-user", now=h.rt.clock.now()) == []
    assert item.status is WorkItemStatus.COMPLETED
    assert item.owner_user == "maria"
    assert item.status_reason == "rebooked"
    assert [(n.author, n.text) for n in item.notes] == [("maria", "Left a voicemail")]


def test_a_work_item_taken_by_one_person_cannot_be_claimed_by_another(
    make_harness: MakeHarness,
) -> None:
    h = make_harness()
    now = h.clock.now()
    with h.db.transaction() as session:
        item_id = open_work_item(
            session, h.rt.cipher, key=KEY, pool="front-desk", description="x", actor="t", now=now
        ).id
        claim_work_item(session, item_id, user="maria", now=now)
    with h.db.transaction() as session, pytest.raises(EngineError, match="maria"):
        claim_work_item(session, item_id, user="sam", now=now)


def test_handing_to_another_pool_makes_it_wait_there_unowned(make_harness: MakeHarness) -> None:
    h = make_harness()
    now = h.clock.now()
    with h.db.transaction() as session:
        item_id = open_work_item(
            session, h.rt.cipher, key=KEY, pool="front-desk", description="x", actor="t", now=now
        ).id
        claim_work_item(session, item_id, user="maria", now=now)
        hand_to_pool(session, item_id, pool="nurse", actor="maria", now=now)
    with h.db.transaction() as session:
        nurse = list_open(
            session, h.rt.cipher, reader="test-user", now=h.rt.clock.now(), pool="nurse"
        )
        front = list_open(
            session, h.rt.cipher, reader="test-user", now=h.rt.clock.now(), pool="front-desk"
        )
    assert [i.id for i in nurse] == [item_id]
    assert nurse[0].status is WorkItemStatus.REQUESTED
    assert nurse[0].owner_user is None
    assert front == []


def test_open_items_are_listed_most_pressing_first(make_harness: MakeHarness) -> None:
    h = make_harness()
    now = h.clock.now()
    specs = [
        ("a", Priority.ROUTINE, now + timedelta(hours=1)),
        ("b", Priority.STAT, None),
        ("c", Priority.URGENT, now + timedelta(hours=3)),
        ("d", Priority.URGENT, now + timedelta(hours=2)),
    ]
    with h.db.transaction() as session:
        for name, priority, due in specs:
            open_work_item(
                session,
                h.rt.cipher,
                key=name,
                pool="front-desk",
                description=name,
                actor="t",
                now=now,
                priority=priority,
                due_at=due,
            )
    with h.db.transaction() as session:
        listed = [
            i.key
            for i in list_open(
                session, h.rt.cipher, reader="test-user", now=h.rt.clock.now(), pool="front-desk"
            )
        ]
    assert listed == ["b", "d", "c", "a"]


def test_descriptions_and_notes_are_encrypted_at_rest(make_harness: MakeHarness) -> None:
    h = make_harness()
    now = h.clock.now()
    with h.db.transaction() as session:
        item_id = open_work_item(
            session,
            h.rt.cipher,
            key=KEY,
            pool="p",
            description="Jane Rivera DOB 1970",
            actor="t",
            now=now,
        ).id
        add_note(session, h.rt.cipher, item_id, author="t", text="Jane's mobile", now=now)
    with h.db.transaction() as session:
        item = session.scalars(select(WorkItem)).one()
        note = session.scalars(select(WorkItemNote)).one()
    assert b"Rivera" not in item.description_enc
    assert b"Jane" not in note.body_enc


def test_a_closed_work_item_cannot_be_started_again() -> None:
    with pytest.raises(EngineError, match="completed"):
        next_status(WorkItemStatus.COMPLETED, "start")
