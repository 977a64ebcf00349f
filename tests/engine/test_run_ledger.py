"""The run ledger on SQLite and PostgreSQL: created once, claimed once, outcome recorded."""

from __future__ import annotations

from datetime import timedelta

import pytest
from engine_harness import MakeHarness

from clinicflow.engine import (
    Automation,
    Manual,
    RunContext,
    RunState,
    TriggerKind,
    Unit,
    get_run,
)
from clinicflow.engine.runs import claim_run, create_run, finish_run
from clinicflow.errors import EngineError, InputError


def _counting(ctx: RunContext) -> None:
    ctx.count("letter_prepared", 2)


COUNTING = Automation(
    name="letter-prep",
    summary="Prepare letters",
    trigger=Manual(),
    run=_counting,
    owner="front-desk",
    units=(Unit("letter_prepared", minutes_saved=4.0),),
)


def test_a_run_is_created_once_per_trigger_key(make_harness: MakeHarness) -> None:
    h = make_harness()
    now = h.clock.now()
    created = []
    for _ in range(2):
        with h.db.transaction() as session:
            created.append(
                create_run(
                    session,
                    automation="letter-prep",
                    trigger_kind=TriggerKind.CRON,
                    trigger_key="cron:2026-11-23T14:00Z",
                    scheduled_for=now,
                    requested_by="schedule",
                    now=now,
                )
            )
    assert created[0] is not None
    assert created[1] is None


def test_only_one_worker_claims_a_queued_run_until_its_lease_expires(
    make_harness: MakeHarness,
) -> None:
    h = make_harness()
    now = h.clock.now()
    with h.db.transaction() as session:
        run_id = create_run(
            session,
            automation="letter-prep",
            trigger_kind=TriggerKind.MANUAL,
            trigger_key="manual:1",
            scheduled_for=now,
            requested_by="test",
            now=now,
        )
    assert run_id is not None
    with h.db.transaction() as session:
        assert claim_run(session, run_id, owner="a", now=now, lease_s=60)
        assert not claim_run(session, run_id, owner="b", now=now, lease_s=60)
    later = now + timedelta(seconds=61)
    with h.db.transaction() as session:
        assert claim_run(session, run_id, owner="b", now=later, lease_s=60)
        assert not finish_run(
            session, run_id, owner="a", now=later, state=RunState.SUCCEEDED, dry_run=False
        )
        assert finish_run(
            session, run_id, owner="b", now=later, state=RunState.SUCCEEDED, dry_run=False
        )
        assert get_run(session, run_id).attempts == 2


def test_a_successful_run_records_its_units_and_minutes_saved(make_harness: MakeHarness) -> None:
    h = make_harness([COUNTING])
    outcome = h.run("letter-prep")
    assert outcome.state is RunState.SUCCEEDED
    assert outcome.units == {"letter_prepared": 2}
    assert outcome.minutes_saved == 8.0
    with h.db.transaction() as session:
        run = get_run(session, outcome.run_id)
    assert run.trigger_kind is TriggerKind.MANUAL
    assert run.finished_at == h.clock.now()


def test_a_run_that_raises_is_failed_with_a_message_a_person_can_act_on(
    make_harness: MakeHarness,
) -> None:
    def broken(ctx: RunContext) -> None:
        raise InputError("`start` is missing", where="Appointment/9")

    def crashing(ctx: RunContext) -> None:
        raise ZeroDivisionError

    h = make_harness(
        [
            Automation(name="broken", summary="", trigger=Manual(), run=broken, owner="x"),
            Automation(name="crashing", summary="", trigger=Manual(), run=crashing, owner="x"),
        ]
    )
    failed = h.run("broken")
    assert failed.state is RunState.FAILED
    assert failed.error_message == "`start` is missing"
    crashed = h.run("crashing")
    assert crashed.state is RunState.FAILED
    assert crashed.error_message is not None
    assert crashed.error_message.startswith("Something went wrong on our side (ref R-")


def test_counting_an_undeclared_unit_fails_the_run(make_harness: MakeHarness) -> None:
    def typo(ctx: RunContext) -> None:
        ctx.count("leter_prepared")

    h = make_harness(
        [
            Automation(
                name="typo",
                summary="",
                trigger=Manual(),
                run=typo,
                owner="x",
                units=(Unit("letter_prepared", 1.0),),
            )
        ]
    )
    outcome = h.run("typo")
    assert outcome.state is RunState.FAILED
    assert "leter_prepared" in (outcome.error_message or "")


def test_a_run_leaves_nothing_behind_when_it_fails_halfway(make_harness: MakeHarness) -> None:
    def halfway(ctx: RunContext) -> None:
        ctx.effects.open_work_item(key="work-item:halfway:x:y", description="call back")
        raise EngineError("the replica is not synced yet")

    h = make_harness(
        [Automation(name="halfway", summary="", trigger=Manual(), run=halfway, owner="x")]
    )
    outcome = h.run("halfway")
    assert outcome.state is RunState.FAILED
    assert h.effects() == []


def test_running_an_unknown_automation_names_the_known_ones(make_harness: MakeHarness) -> None:
    h = make_harness([COUNTING])
    with pytest.raises(EngineError, match="letter-prep"):
        h.run("letter-perp")


def test_a_run_logs_with_its_ids_and_the_callers_fields(
    make_harness: MakeHarness, caplog: pytest.LogCaptureFixture
) -> None:
    def chatty(ctx: RunContext) -> None:
        ctx.logger.info("letters prepared", extra={"letters": 2})

    h = make_harness(
        [Automation(name="chatty", summary="", trigger=Manual(), run=chatty, owner="x")]
    )
    with caplog.at_level("INFO", logger="clinicflow.run"):
        outcome = h.run("chatty")
    [record] = [r for r in caplog.records if r.getMessage() == "letters prepared"]
    assert (record.run_id, record.automation, record.letters) == (outcome.run_id, "chatty", 2)  # type: ignore[attr-defined]
