"""Reminders exactly once (issue 5), with real `clinicflow worker` processes on PostgreSQL + Redis:
two workers and two more runs racing on one batch, a worker SIGKILLed mid-batch, a crash after
Twilio accepted a text but before we recorded it, and a reply webhook delivered twice.

Whatever happens, each patient gets each touchpoint once: every (visit, touchpoint) is listed
by exactly one message, and that message was delivered once (the sandbox outbox, or the
Twilio peer's message log).
"""

from __future__ import annotations

import signal
import threading
from collections import Counter
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import httpx
import pytest
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session
from tests.automations.reminder_cluster import Cluster, due_practice, reminded, running_cluster
from tests.fhir_peer.server import serving
from tests.twilio_peer import Fault, TwilioPeer, running_peer, twilio_signature

from clinicflow.channels.inbound import INBOUND_RECEIVED
from clinicflow.channels.sms_webhook import INBOUND_PATH
from clinicflow.clock import SystemClock
from clinicflow.ehr.writeback import EHR_WRITE_BACK
from clinicflow.engine import EffectState, RunState, execute_run, request_run, run_now
from clinicflow.engine.payloads import MESSAGE_SEND
from clinicflow.store.base import Base
from clinicflow.store.engine import AutomationRun, Effect, Event
from clinicflow.store.messaging import InboundMessage
from clinicflow.store.replica import Appointment
from clinicflow.web import create_app

pytestmark = pytest.mark.slow

REMINDERS = "appointment-reminders"
REPLIES = "reminder-replies"
PUBLIC_URL = "https://clinic.example.org"  # what Twilio signs: the app's public address
SIGNATURE = "X-Twilio-Signature"
ACCOUNT_SID = "AC" + "5" * 32
AUTH_TOKEN = "race-test-token"
PRACTICE_NUMBER = "+15550001111"


def _runs(cluster: Cluster, automation: str) -> list[AutomationRun]:
    with cluster.db.transaction() as session:
        query = select(AutomationRun).where(AutomationRun.automation == automation)
        return list(session.scalars(query.order_by(AutomationRun.id)))


def _all_sent(cluster: Cluster, count: int) -> bool:
    states = [e.state for e in cluster.sends()]
    return len(states) == count and set(states) == {EffectState.DONE}


def _effects_of(cluster: Cluster, automation: str) -> list[Effect]:
    with cluster.db.transaction() as session:
        return list(session.scalars(select(Effect).where(Effect.automation == automation)))


def _count(session: Session, table: type[Base], *where: ColumnElement[bool]) -> int:
    return int(session.scalar(select(func.count()).select_from(table).where(*where)) or 0)


def _overlapping(runs: list[AutomationRun]) -> bool:
    spans = sorted((r.started_at, r.finished_at) for r in runs if r.started_at and r.finished_at)
    return any(later[0] < earlier[1] for earlier, later in pairwise(spans))


def _assert_each_touchpoint_once(cluster: Cluster, expected: set[tuple[str, str]]) -> None:
    per_key = cluster.outbox_per_key()
    twice = [key for key, n in per_key.items() if n > 1]
    assert not twice, f"delivered more than once: {twice}"
    listed = Counter(pair for key in per_key for pair in reminded(key))
    assert set(listed) == expected
    assert set(listed.values()) == {1}, [pair for pair, n in listed.items() if n > 1]
    assert set(per_key) == {e.key for e in cluster.sends()}


# --- two workers and two runs on one batch --------------------------------------------------


@pytest.fixture
def racing(tmp_path: Path, pg_url: str) -> Iterator[Cluster]:
    with running_cluster(tmp_path, pg_url, lease_s=10.0, send_delay_s=0.02) as cluster:
        yield cluster


def test_two_workers_and_two_runs_racing_on_one_batch_send_each_touchpoint_once(
    racing: Cluster,
) -> None:
    roster = due_practice(SystemClock().now(), texts=200, emails=40, families=20)
    workers = [racing.start_worker(), racing.start_worker()]
    racing.sync(roster.resources)
    for proc in workers:
        racing.wait_until_serving(proc)
    rt = racing.rt
    start = threading.Barrier(3)

    def run_here() -> None:
        run_id = request_run(rt, REMINDERS, dry_run=False, requested_by="test")
        start.wait()
        # Each message goes to the queue twice: both workers grab the same effects.
        for effect_id in execute_run(rt, run_id) * 2:
            racing.queue.enqueue_effect(effect_id)

    threads = [threading.Thread(target=run_here) for _ in range(2)]
    for thread in threads:
        thread.start()
    queued = [request_run(rt, REMINDERS, dry_run=False, requested_by="test") for _ in range(2)]
    start.wait()
    for run_id in queued:  # two more runs at the same moment, on the workers
        racing.queue.enqueue_run(run_id)
    for thread in threads:
        thread.join()

    messages = 200 - 20 + 40  # each family's two visits share one text
    racing.wait_for(lambda: _all_sent(racing, messages), "every reminder to be sent")
    racing.wait_for(
        lambda: all(r.state == RunState.SUCCEEDED for r in _runs(racing, REMINDERS)),
        "every run to finish",
    )
    _assert_each_touchpoint_once(racing, roster.expected)
    runs = _runs(racing, REMINDERS)
    assert len(runs) >= 4
    assert _overlapping(runs), "the runs did not race: each ran alone"
    # A lease owner reads host:pid/token; the last one stays on a done effect.
    senders = {(e.lease_owner or "").partition("/")[0] for e in racing.sends()}
    assert {s.rpartition(":")[2] for s in senders} >= {str(p.pid) for p in workers}
    assert sum(r.units.get("visit_reminded", 0) for r in runs) == len(roster.expected)
    assert sum(r.units.get("reminder_sent", 0) for r in runs) == messages


# --- a worker killed mid-batch --------------------------------------------------------------


@pytest.fixture
def crashing(tmp_path: Path, pg_url: str) -> Iterator[Cluster]:
    with running_cluster(tmp_path, pg_url, lease_s=2.0, send_delay_s=0.2) as cluster:
        yield cluster


def test_a_worker_killed_mid_batch_leaves_each_touchpoint_sent_once(crashing: Cluster) -> None:
    roster = due_practice(SystemClock().now(), texts=40)
    victim = crashing.start_worker()
    crashing.sync(roster.resources)
    rt = crashing.rt
    crashing.queue.enqueue_run(request_run(rt, REMINDERS, dry_run=False, requested_by="test"))

    def victim_mid_send() -> bool:
        sent = sum(crashing.outbox_per_key().values())
        busy = [e for e in crashing.sends() if e.state == EffectState.IN_FLIGHT]
        return sent >= 4 and any(f":{victim.pid}/" in (e.lease_owner or "") for e in busy)

    crashing.wait_for(victim_mid_send, "the worker to be part-way through the batch")
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    with crashing.db.transaction() as session:
        in_flight = set(
            session.scalars(select(Effect.key).where(Effect.state == EffectState.IN_FLIGHT))
        )
    delivered = crashing.outbox_per_key()
    assert in_flight
    assert sum(delivered.values()) < 40
    crashing.start_worker()

    crashing.wait_for(lambda: _all_sent(crashing, 40), "the second worker to finish the batch")
    _assert_each_touchpoint_once(crashing, roster.expected)
    for effect in crashing.sends():
        if effect.key in in_flight and effect.key in delivered:  # sent, not marked: looked up
            assert (effect.attempts, effect.result) == (1, {"reconciled": True})
        elif effect.key in in_flight:  # killed before it sent: provably not sent, so sent again
            assert effect.attempts == 2


# --- a crash after Twilio accepted a text, before we recorded it ------------------------------


def test_a_crash_after_twilio_accepted_a_text_is_settled_by_looking_it_up_never_by_resending(
    tmp_path: Path, pg_url: str
) -> None:
    peer = TwilioPeer(ACCOUNT_SID, AUTH_TOKEN, {PRACTICE_NUMBER})
    # The first two texts are taken while the worker waits for answers that come too late (it is
    # killed meanwhile); the third is taken and its connection dropped before the answer.
    peer.add_fault(Fault(delay_s=10.0, accept=True, times=2))
    peer.add_fault(Fault(drop_connection=True, accept=True))
    with (
        running_peer(peer) as api_url,
        running_cluster(
            tmp_path,
            pg_url,
            lease_s=3.0,
            send_delay_s=0.0,
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=AUTH_TOKEN,
            twilio_from_number=PRACTICE_NUMBER,
            twilio_api_url=api_url,
            public_url=api_url,  # status callbacks would land in the peer's webhook sink
            sms_per_second="100",
        ) as cluster,
    ):
        roster = due_practice(SystemClock().now(), texts=6)
        victim = cluster.start_worker()
        cluster.sync(roster.resources)
        request = request_run(cluster.rt, REMINDERS, dry_run=False, requested_by="test")
        cluster.queue.enqueue_run(request)

        def both_threads_waiting_on_twilio() -> bool:
            busy = [e for e in cluster.sends() if e.state == EffectState.IN_FLIGHT]
            return len(peer.outgoing()) == 2 and len(busy) == 2

        cluster.wait_for(both_threads_waiting_on_twilio, "two texts accepted, answers pending")
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        with cluster.db.transaction() as session:
            in_flight = set(
                session.scalars(select(Effect.key).where(Effect.state == EffectState.IN_FLIGHT))
            )
        assert len(in_flight) == 2
        cluster.start_worker()
        cluster.wait_for(lambda: _all_sent(cluster, 6), "every text to be settled")

        texts = {m.sid: m for m in peer.outgoing()}
        assert sorted(m.to for m in texts.values()) == sorted(roster.phone_of.values())
        creates = [path for method, path in peer.requests if method == "POST"]
        assert len(creates) == 6, "a text was sent again"
        looked_up = set()
        for effect in cluster.sends():
            [(appointment, _)] = reminded(effect.key)
            assert effect.provider_ref in texts
            assert texts[effect.provider_ref].to == roster.phone_of[appointment]
            assert effect.attempts == 1
            if effect.result == {"reconciled": True}:
                looked_up.add(effect.key)
        assert len(looked_up) == 3  # the two killed mid-call, the one whose answer was cut
        assert looked_up > in_flight


# --- a reply webhook delivered twice ---------------------------------------------------------


def test_a_c_reply_posted_twice_at_once_confirms_each_visit_once_and_thanks_once(
    tmp_path: Path, pg_url: str
) -> None:
    with running_cluster(
        tmp_path,
        pg_url,
        lease_s=10.0,
        send_delay_s=0.0,
        twilio_auth_token=AUTH_TOKEN,  # signs webhooks; without an account SID texts stay sandboxed
        public_url=PUBLIC_URL,
    ) as cluster:
        workers = [cluster.start_worker(tick_s=0.2), cluster.start_worker(tick_s=0.2)]
        roster = due_practice(SystemClock().now(), texts=2, families=1)  # one phone, two visits
        cluster.sync(roster.resources)
        run_now(cluster.rt, REMINDERS, requested_by="test")  # (or a worker's cron run: no matter)
        cluster.wait_for(lambda: _all_sent(cluster, 1), "the reminder to be sent")
        for proc in workers:
            cluster.wait_until_serving(proc)
        app = create_app(cluster.settings, db=cluster.db, clock=SystemClock())
        form = {
            "AccountSid": ACCOUNT_SID,
            "Body": "C",
            "From": roster.phone_of["a0"],
            "MessageSid": "SM" + "c" * 32,
            "NumMedia": "0",
            "SmsStatus": "received",
            "To": PRACTICE_NUMBER,
        }
        signed = {SIGNATURE: twilio_signature(PUBLIC_URL + INBOUND_PATH, form, AUTH_TOKEN)}
        with serving(app, name="clinicflow web") as url:
            together = threading.Barrier(2)
            answers: list[int] = []

            def deliver() -> None:
                together.wait()
                answers.append(
                    httpx.post(url + INBOUND_PATH, data=form, headers=signed).status_code
                )

            posts = [threading.Thread(target=deliver) for _ in range(2)]
            for post in posts:
                post.start()
            for post in posts:
                post.join()
            assert answers == [200, 200]

            def replied() -> bool:
                effects = _effects_of(cluster, REPLIES)
                return len(effects) >= 3 and {e.state for e in effects} == {EffectState.DONE}

            cluster.wait_for(replied, "the reply to be handled")
            late = httpx.post(url + INBOUND_PATH, data=form, headers=signed)  # a late redelivery
            assert late.status_code == 200

        with cluster.db.transaction() as session:
            assert _count(session, InboundMessage) == 1
            assert _count(session, Event, Event.type == INBOUND_RECEIVED) == 1
            statuses = {a.fhir_id: a.patient_status for a in session.scalars(select(Appointment))}
        assert statuses == {"a0": "accepted", "a1": "accepted"}
        assert [r.state for r in _runs(cluster, REPLIES)] == [RunState.SUCCEEDED]
        kinds = Counter(e.kind for e in _effects_of(cluster, REPLIES))
        assert kinds == {EHR_WRITE_BACK: 2, MESSAGE_SEND: 1}  # a write-back per visit, one text
        thanks = [m for m in cluster.outbox() if m.effect_key.startswith("message:")]
        assert [(m.to, "Confirmed" in m.body) for m in thanks] == [(roster.phone_of["a0"], True)]
