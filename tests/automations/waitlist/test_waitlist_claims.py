"""Claims of a freed slot: the first claim books it, later ones are told it was taken, and two
workers claiming at the same instant on PostgreSQL book it exactly once."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from clinicflow.automations.waitlist.claims import (
    ClaimOutcome,
    NewOffer,
    claim_offer,
    record_offers,
    slot_key,
)
from clinicflow.clock import FakeClock
from clinicflow.store import Database
from clinicflow.store.waitlist import SlotBooking, WaitlistOffer

START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def _offer(db: Database, now: datetime, key: str, entries: int, wave: int = 1) -> list[int]:
    with db.transaction() as session:
        return record_offers(
            session,
            key=key,
            slot_start_at=START,
            offers=[NewOffer(f"w{key}-{i}", f"p{i}", wave) for i in range(entries)],
            now=now,
            expires_at=now + timedelta(hours=2),
        )


def test_the_first_claim_books_and_the_next_is_told_the_slot_was_taken(
    db: Database, clock: FakeClock
) -> None:
    key = slot_key("dr-ortiz", START)
    first, second, third = _offer(db, clock.now(), key, 3)
    with db.transaction() as session:
        assert claim_offer(session, second, now=clock.now()) is ClaimOutcome.BOOKED
    with db.transaction() as session:
        assert claim_offer(session, first, now=clock.now()) is ClaimOutcome.TAKEN
        assert claim_offer(session, second, now=clock.now()) is ClaimOutcome.BOOKED  # a re-tap
    clock.advance(timedelta(hours=3))
    with db.transaction() as session:
        assert claim_offer(session, third, now=clock.now()) is ClaimOutcome.TAKEN
        assert claim_offer(session, 999_999, now=clock.now()) is ClaimOutcome.UNKNOWN
        states = dict(session.execute(sa.select(WaitlistOffer.id, WaitlistOffer.state)).all())
        bookings = session.scalars(sa.select(SlotBooking.offer_id)).all()
    assert states == {first: "taken", second: "booked", third: "taken"}
    assert bookings == [second]


def test_an_expired_offer_books_nothing(db: Database, clock: FakeClock) -> None:
    (offer,) = _offer(db, clock.now(), slot_key(None, START, slot_id="s1"), 1)
    clock.advance(timedelta(hours=2))
    with db.transaction() as session:
        assert claim_offer(session, offer, now=clock.now()) is ClaimOutcome.EXPIRED
        assert session.scalar(sa.select(sa.func.count()).select_from(SlotBooking)) == 0


def test_an_entry_is_offered_a_slot_once_even_in_a_later_wave(
    db: Database, clock: FakeClock
) -> None:
    key = slot_key("dr-ortiz", START)
    assert len(_offer(db, clock.now(), key, 3)) == 3
    assert _offer(db, clock.now(), key, 3, wave=2) == []


def _claimer(url: str, offers: list[int], barrier: Any, results: Any) -> None:
    """One worker process: for each round, wait for the other, then claim at the same instant."""
    db = Database.from_url(url)
    now = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)  # within the offers' two hours
    for offer in offers:
        barrier.wait(timeout=30)
        with db.transaction() as session:
            results.put((offer, claim_offer(session, offer, now=now).value))
    db.dispose()


def test_two_workers_claiming_one_slot_at_the_same_instant_book_it_exactly_once(
    pg_url: str, clock: FakeClock
) -> None:
    db = Database.from_url(pg_url)
    rounds = [_offer(db, clock.now(), f"Slot/race-{n}", 2) for n in range(25)]
    spawn = multiprocessing.get_context("spawn")
    barrier, results = spawn.Barrier(2), spawn.Queue()
    workers = [
        spawn.Process(target=_claimer, args=(pg_url, [r[side] for r in rounds], barrier, results))
        for side in (0, 1)
    ]
    for worker in workers:
        worker.start()
    outcomes = dict(results.get(timeout=60) for _ in range(2 * len(rounds)))
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    for pair in rounds:
        assert sorted(outcomes[o] for o in pair) == ["booked", "taken"], pair
    with db.transaction() as session:
        booked = session.scalar(sa.select(sa.func.count()).select_from(SlotBooking))
    assert booked == len(rounds)
    db.dispose()
