"""The FHIR connector against a peer speaking the real wire protocol on loopback.

SMART Backend Services sign-in (both algorithms), paged search with high-water marks, Bulk Data
export, write-back with If-Match and 412, throttling with Retry-After, and bad data rejected
alone. The peer is ours (tests/fhir_peer; no FHIR server installs here), written from the specs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from tests.ehr.builders import appointment
from tests.fhir_peer import Fault, FhirPeer, PeerConfig, running_peer

from clinicflow.clock import FakeClock, SystemClock
from clinicflow.ehr.bulk_export import kick_off, wait_for_manifest
from clinicflow.ehr.fhir_client import FhirClient
from clinicflow.ehr.fhir_sync import (
    WHOLE_SYNC,
    SyncMode,
    read_checkpoints,
    source_key,
    sync_fhir,
)
from clinicflow.ehr.http import FhirHttp, RetryPolicy
from clinicflow.ehr.signing import SigningAlg, public_jwks, write_new_key
from clinicflow.ehr.smart import SmartAuth, SmartClient
from clinicflow.ehr.writeback import EHR_WRITE_BACK, Change, WriteBack
from clinicflow.engine import (
    Automation,
    EngineRuntime,
    Manual,
    Registry,
    RunContext,
    ehr_write_key,
    run_now,
)
from clinicflow.errors import EhrError
from clinicflow.security.phi import PhiCipher
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.store.engine import Event
from clinicflow.store.replica import Appointment, FhirResource

CLIENT_ID = "clinicflow-test"


def _patient(n: int) -> dict[str, object]:
    return {
        "resourceType": "Patient",
        "id": f"p{n}",
        "name": [{"family": f"Family{n}", "given": ["Pat"]}],
        "telecom": [{"system": "phone", "value": f"555-010-{n:04d}"}],
    }


def _appointment(n: int, clock: FakeClock, status: str = "booked") -> dict[str, object]:
    return appointment(n, clock.now() + timedelta(days=2), status=status)


@dataclass
class Ehr:
    """A running peer and a client signed in to it."""

    peer: FhirPeer
    base_url: str
    client: FhirClient
    keys_dir: Path
    sleeps: list[float]


def _connect(peer: FhirPeer, base_url: str, keys_dir: Path, sleeps: list[float]) -> FhirClient:
    from clinicflow.ehr.signing import load_key

    key = load_key(keys_dir / "ehr-signing-key.pem")
    auth = SmartAuth(base_url, SmartClient(CLIENT_ID, key, "system/*.rs system/*.cu"))
    http = FhirHttp(
        base_url, auth=auth, retry=RetryPolicy(attempts=4, base_delay_s=0.01), sleep=sleeps.append
    )
    return FhirClient(http)


@pytest.fixture(params=[SigningAlg.ES384, SigningAlg.RS384])
def ehr(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Ehr]:
    keys_dir = tmp_path / "keys"
    write_new_key(keys_dir, request.param)
    peer = FhirPeer(
        PeerConfig(clients={CLIENT_ID: public_jwks(keys_dir)}, export_polls=2, retry_after_s=3)
    )
    for n in range(1, 13):
        peer.put(_patient(n))
        peer.put(_appointment(n, clock))
    with running_peer(peer) as base_url:
        sleeps: list[float] = []
        client = _connect(peer, base_url, keys_dir, sleeps)
        try:
            yield Ehr(peer, base_url, client, keys_dir, sleeps)
        finally:
            client.close()


def _count(db: Database, model: type) -> int:
    with db.transaction() as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def test_search_sync_signs_in_once_pages_through_everything_and_marks_its_place(
    ehr: Ehr, sqlite_db: Database, cipher: PhiCipher, clock: FakeClock, monkeypatch
):
    monkeypatch.setattr("clinicflow.ehr.fhir_sync.SEARCH_PAGE_SIZE", 5)  # 3 pages of each type
    first = sync_fhir(sqlite_db, cipher, clock, ehr.client, mode=SyncMode.SEARCH)
    assert first.ingest.created == 24
    assert first.ingest.rejected == []
    assert _count(sqlite_db, Appointment) == 12
    assert ehr.peer.token_requests == 1  # one token served every page of every type
    pages = [r for r in ehr.peer.requests if r.path.endswith("/Appointment")]
    assert len(pages) >= 3
    marks = read_checkpoints(sqlite_db, source_key(ehr.base_url))
    assert marks["Appointment"] is not None
    assert marks[WHOLE_SYNC] is not None
    events = _count(sqlite_db, Event)

    # Nothing changed in the EHR: the second sync asks only for what changed since the mark.
    second = sync_fhir(sqlite_db, cipher, clock, ehr.client, mode=SyncMode.SEARCH)
    assert second.ingest.created == second.ingest.updated == 0
    assert _count(sqlite_db, Event) == events
    later = [r for r in ehr.peer.requests if r.path.endswith("/Appointment")][-1]
    assert later.query["_lastUpdated"][0].startswith("ge")

    # A cancellation at the desk arrives as an update with its event.
    ehr.peer.put(_appointment(3, clock, status="cancelled"))
    third = sync_fhir(sqlite_db, cipher, clock, ehr.client, mode=SyncMode.SEARCH)
    assert third.ingest.updated == 1
    with sqlite_db.transaction() as s:
        assert (
            s.execute(select(Appointment.status).where(Appointment.fhir_id == "a3")).scalar_one()
            == "cancelled"
        )
        newest = s.execute(select(Event.type).order_by(Event.id.desc()).limit(1)).scalar_one()
    assert newest == "appointment.cancelled"


def test_a_revoked_token_is_renewed_once_and_the_request_goes_through(
    ehr: Ehr, sqlite_db: Database, cipher: PhiCipher, clock: FakeClock
):
    next(iter(ehr.client.search("Patient", {"_count": "1"})))
    ehr.peer.revoke_tokens()
    page = next(iter(ehr.client.search("Patient", {"_count": "1"})))
    assert page.items
    assert ehr.peer.token_requests == 2


def test_throttling_is_honoured_with_the_servers_retry_after(ehr: Ehr):
    ehr.peer.faults.add(
        Fault(method="GET", path_contains="/Patient", status=429, retry_after=2, times=2)
    )
    page = next(iter(ehr.client.search("Patient", {"_count": "2"})))
    assert len(page.items) == 2
    assert ehr.sleeps == [2.0, 2.0]


def test_an_unknown_client_gets_a_message_that_says_what_to_check(ehr: Ehr, tmp_path: Path):
    other = tmp_path / "other"
    key = write_new_key(other, SigningAlg.ES384)
    stranger = SmartAuth(ehr.base_url, SmartClient(CLIENT_ID, key))  # a key the EHR never saw
    client = FhirClient(FhirHttp(ehr.base_url, auth=stranger, retry=RetryPolicy(attempts=1)))
    with pytest.raises(EhrError, match=r"refused our sign-in.*JWKS"):
        next(iter(client.search("Patient")))
    client.close()


def test_a_malformed_resource_in_a_page_is_rejected_alone(
    ehr: Ehr, sqlite_db: Database, cipher: PhiCipher, clock: FakeClock
):
    ehr.peer.put_raw("Appointment", "bad1", b'{"resourceType": "Appointment", "id": "bad1"}')
    report = sync_fhir(sqlite_db, cipher, clock, ehr.client, mode=SyncMode.SEARCH).ingest
    assert report.created == 24
    (rejection,) = report.rejected
    assert rejection.where.startswith("Appointment search page 1 entry")
    assert "status" in rejection.reason


def test_bulk_export_waits_as_told_streams_the_files_and_cleans_up(
    ehr: Ehr, sqlite_db: Database, cipher: PhiCipher, clock: FakeClock
):
    ehr.peer.put_raw("Patient", "broken", b"{not json")
    ehr.peer.export_errors = [
        {
            "resourceType": "OperationOutcome",
            "issue": [
                {"severity": "error", "code": "processing", "diagnostics": "Coverage c9 unreadable"}
            ],
        }
    ]
    waits: list[float] = []
    report = sync_fhir(sqlite_db, cipher, clock, ehr.client, mode=SyncMode.BULK, sleep=waits.append)
    assert waits == [3.0, 3.0]  # two polls in progress, each waiting the Retry-After given
    assert report.ingest.created == 24
    (rejection,) = report.ingest.rejected
    assert rejection.where.startswith("export Patient file")
    assert "not valid JSON" in rejection.reason
    assert report.export_errors == ["error: Coverage c9 unreadable"]
    assert ehr.peer.jobs == {}  # the job was deleted when done
    kick_off = next(r for r in ehr.peer.requests if r.path.endswith("$export"))
    assert "_since" not in kick_off.query

    ehr.peer.put(_appointment(5, clock, status="noshow"))
    again = sync_fhir(sqlite_db, cipher, clock, ehr.client, mode=SyncMode.BULK, sleep=waits.append)
    assert again.since == report.high_water
    assert again.ingest.updated == 1
    assert again.ingest.created == 0
    kick_offs = [r for r in ehr.peer.requests if r.path.endswith("$export")]
    assert "_since" in kick_offs[-1].query


def test_a_file_that_needs_no_token_is_fetched_without_one(ehr: Ehr):
    status_url = kick_off(ehr.client.http, types=["Patient"])
    manifest = wait_for_manifest(
        ehr.client.http, status_url, clock=SystemClock(), sleep=lambda _s: None
    )
    url = manifest.outputs[0].url
    with ehr.client.http.lines(url) as lines:
        assert sum(1 for _ in lines) == 12
    # The peer wants a token for its files, so a token-free fetch is refused: proof none was sent.
    with (
        pytest.raises(EhrError, match="401"),
        ehr.client.http.lines(url, with_token=False) as lines,
    ):
        list(lines)
    last = ehr.peer.requests[-1]
    assert last.path.endswith(".ndjson")
    assert "authorization" not in last.headers


def test_auto_mode_chooses_bulk_when_the_server_offers_export(
    ehr: Ehr, sqlite_db: Database, cipher: PhiCipher, clock: FakeClock
):
    report = sync_fhir(sqlite_db, cipher, clock, ehr.client, sleep=lambda _s: None)
    assert report.mode is SyncMode.BULK


def test_a_failed_export_says_what_the_server_said(
    ehr: Ehr, sqlite_db: Database, cipher: PhiCipher, clock: FakeClock
):
    ehr.peer.fail_exports(True)
    with pytest.raises(EhrError, match=r"export's status.*500"):
        sync_fhir(sqlite_db, cipher, clock, ehr.client, mode=SyncMode.BULK, sleep=lambda _s: None)
    assert _count(sqlite_db, FhirResource) == 0


def test_a_sync_that_dies_halfway_resumes_without_gaps_or_duplicates(
    ehr: Ehr, sqlite_db: Database, cipher: PhiCipher, clock: FakeClock, monkeypatch
):
    monkeypatch.setattr("clinicflow.ehr.fhir_sync.SEARCH_PAGE_SIZE", 4)
    # The third page of appointments fails (500 is not retried): patients and the first
    # eight appointments are committed, in batches of four.
    pages = []
    original = ehr.client.search

    def failing_on_the_third_appointment_page(rtype, params=None):
        for page in original(rtype, params):
            if rtype == "Appointment" and page.number == 3:
                raise EhrError("the EHR answered 500 (simulated)", status=500)
            pages.append(page)
            yield page

    monkeypatch.setattr(ehr.client, "search", failing_on_the_third_appointment_page)
    with pytest.raises(EhrError, match="Sync of Appointment stopped"):
        sync_fhir(sqlite_db, cipher, clock, ehr.client, mode=SyncMode.SEARCH, batch_size=4)
    assert _count(sqlite_db, Appointment) == 8
    stored_before = _count(sqlite_db, FhirResource)
    marks = read_checkpoints(sqlite_db, source_key(ehr.base_url))
    assert marks["Appointment"] is not None  # moved past the committed batches
    monkeypatch.undo()
    report = sync_fhir(sqlite_db, cipher, clock, ehr.client, mode=SyncMode.SEARCH, batch_size=4)
    assert _count(sqlite_db, FhirResource) == 24
    assert report.ingest.created == 24 - stored_before
    with sqlite_db.transaction() as s:
        booked = s.execute(
            select(Event.resource_id, func.count()).group_by(Event.resource_id)
        ).all()
    assert all(n == 1 for _id, n in booked)  # no appointment raised its event twice


def _writer(change: WriteBack, name: str) -> Automation:
    def run(ctx: RunContext) -> None:
        ctx.effects.record(
            EHR_WRITE_BACK,
            key=ehr_write_key(name, f"{change.resource_type}/{change.fhir_id}", str(change.change)),
            payload=change.to_payload(),
            summary=f"{change.change} {change.resource_type}/{change.fhir_id}",
        )

    return Automation(
        name=name, summary="write back (tests)", trigger=Manual(), run=run, owner="front-desk"
    )


def _engine(
    ehr: Ehr,
    db: Database,
    cipher: PhiCipher,
    clock: FakeClock,
    tmp_path: Path,
    automation: Automation,
) -> EngineRuntime:
    settings = Settings(
        data_dir=tmp_path,
        fhir_base_url=ehr.base_url,
        fhir_client_id=CLIENT_ID,
        fhir_key_path=ehr.keys_dir / "ehr-signing-key.pem",
        fhir_scopes="system/*.rs system/*.cu",
    )
    return EngineRuntime.build(
        db=db, settings=settings, clock=clock, cipher=cipher, registry=Registry([automation])
    )


def test_a_confirmation_is_written_to_the_ehr_conditionally_and_reaches_the_replica(
    ehr: Ehr, sqlite_db: Database, cipher: PhiCipher, clock: FakeClock, tmp_path: Path
):
    sync_fhir(sqlite_db, cipher, clock, ehr.client, mode=SyncMode.SEARCH)
    ehr.peer.faults.add(Fault(method="PUT", path_contains="/Appointment/a2", status=412, times=1))
    rt = _engine(
        ehr,
        sqlite_db,
        cipher,
        clock,
        tmp_path,
        _writer(WriteBack(Change.CONFIRM, "Appointment", "a2"), "confirm-a2"),
    )
    outcome = run_now(rt, "confirm-a2", requested_by="test")
    assert outcome.effects == {"done": 1}
    stored = ehr.peer.get("Appointment", "a2")
    assert stored["participant"][0]["status"] == "accepted"
    puts = [r for r in ehr.peer.requests if r.method == "PUT"]
    assert [r.status for r in puts] == [412, 200]  # re-read and re-decided after the 412
    assert all(r.headers.get("if-match") for r in puts)
    with sqlite_db.transaction() as s:
        row = s.execute(select(FhirResource).where(FhirResource.fhir_id == "a2")).scalar_one()
    assert (row.source, row.local_change) == ("fhir", False)
    assert row.version_id == stored["meta"]["versionId"]


def test_a_visit_cancelled_at_the_desk_is_not_confirmed_over_it(
    ehr: Ehr, sqlite_db: Database, cipher: PhiCipher, clock: FakeClock, tmp_path: Path
):
    sync_fhir(sqlite_db, cipher, clock, ehr.client, mode=SyncMode.SEARCH)
    ehr.peer.put(_appointment(4, clock, status="cancelled"))  # after our sync
    rt = _engine(
        ehr,
        sqlite_db,
        cipher,
        clock,
        tmp_path,
        _writer(WriteBack(Change.CONFIRM, "Appointment", "a4"), "confirm-a4"),
    )
    assert run_now(rt, "confirm-a4", requested_by="test").effects == {"done": 1}
    assert ehr.peer.get("Appointment", "a4")["status"] == "cancelled"
    assert not [r for r in ehr.peer.requests if r.method == "PUT"]
    assert _count(sqlite_db, Appointment) == 12
    with sqlite_db.transaction() as s:  # the replica now knows what the EHR knows
        assert (
            s.execute(select(Appointment.status).where(Appointment.fhir_id == "a4")).scalar_one()
            == "cancelled"
        )


def test_a_waitlist_entry_is_booked_in_the_ehr_with_if_match_and_reaches_the_replica(
    ehr: Ehr, sqlite_db: Database, cipher: PhiCipher, clock: FakeClock, tmp_path: Path
):
    from clinicflow.ehr.writeback import booking

    waiting = _appointment(5, clock, status="waitlist")
    for name in ("start", "end", "slot", "minutesDuration"):
        waiting.pop(name, None)
    ehr.peer.put(waiting)
    sync_fhir(sqlite_db, cipher, clock, ehr.client, mode=SyncMode.SEARCH)
    start = clock.now() + timedelta(days=1)
    fields = booking(
        start=start,
        end=start + timedelta(minutes=20),
        practitioner_id="dr1",
        location_id="loc1",
        slot_id=None,
    )
    change = WriteBack(Change.BOOK, "Appointment", "a5", status="booked", resource=fields)
    rt = _engine(ehr, sqlite_db, cipher, clock, tmp_path, _writer(change, "book-a5"))
    assert run_now(rt, "book-a5", requested_by="test").effects == {"done": 1}
    stored = ehr.peer.get("Appointment", "a5")
    assert stored["status"] == "booked"
    assert datetime.fromisoformat(stored["start"]) == start
    (put,) = [r for r in ehr.peer.requests if r.method == "PUT"]
    assert put.headers.get("if-match")
    with sqlite_db.transaction() as s:
        row = s.get_one(Appointment, "a5")
        assert (row.status, row.start_at, row.practitioner_id) == ("booked", start, "dr1")


def test_a_created_communication_exists_once_however_often_it_is_sent(
    ehr: Ehr, sqlite_db: Database, cipher: PhiCipher, clock: FakeClock, tmp_path: Path
):
    message = {
        "resourceType": "Communication",
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "payload": [{"contentString": "Reminder sent"}],
    }
    change = WriteBack(Change.CREATE, "Communication", "draft-1", resource=message)
    rt = _engine(ehr, sqlite_db, cipher, clock, tmp_path, _writer(change, "note-p1"))
    assert run_now(rt, "note-p1", requested_by="test").effects == {"done": 1}
    # The same create sent again (as after a lost answer) finds the first copy.
    client = ehr.client
    from clinicflow.ehr.remote_writeback import effect_search, with_effect_identifier

    key = ehr_write_key("note-p1", "Communication/draft-1", "create")
    again = client.create(with_effect_identifier(message, key), if_none_exist=effect_search(key))
    pages = list(client.search("Communication", {"_count": "50"}))
    created = [i.resource for p in pages for i in p.items]
    assert len(created) == 1
    assert again.resource["id"] == created[0]["id"]


def test_after_a_crash_reconcile_asks_the_ehr_whether_the_create_took(
    ehr: Ehr, sqlite_db: Database, cipher: PhiCipher, clock: FakeClock, tmp_path: Path
):
    from clinicflow.ehr.writeback import WriteBackHandler
    from clinicflow.engine import Delivery, EffectCall, HandlerEnv

    message = {
        "resourceType": "Communication",
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
    }
    change = WriteBack(Change.CREATE, "Communication", "draft-2", resource=message)
    rt = _engine(ehr, sqlite_db, cipher, clock, tmp_path, _writer(change, "note-p2"))
    assert run_now(rt, "note-p2", requested_by="test").effects == {"done": 1}
    sent_key = ehr_write_key("note-p2", "Communication/draft-2", "create")

    def delivery(key: str) -> Delivery:
        call = EffectCall(1, key, EHR_WRITE_BACK, "note-p2", 1, 1, change.to_payload())
        with sqlite_db.transaction() as session:
            env = HandlerEnv(session, sqlite_db, cipher, clock, rt.settings)
            return WriteBackHandler().reconcile(call, env)

    assert delivery(sent_key) is Delivery.DELIVERED
    assert delivery(sent_key + "-never-sent") is Delivery.NOT_DELIVERED
