"""Patient- and Group-level Bulk Data export against the FHIR peer: what is asked, what is stored,
and whose high-water marks move.

The peer's clock is the test's FakeClock, so each phase of a test has its own lastUpdated and
transactionTime and `_since` filters never race the wall clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from tests.ehr.builders import appointment
from tests.fhir_peer import FhirPeer, PeerConfig, RequestLog, running_peer

from clinicflow.clock import FakeClock
from clinicflow.ehr.bulk_export import ExportLevel
from clinicflow.ehr.fhir_client import FhirClient
from clinicflow.ehr.fhir_sync import (
    WHOLE_SYNC,
    FhirSyncReport,
    SyncMode,
    check_level,
    export_source,
    read_checkpoints,
    source_key,
    sync_fhir,
)
from clinicflow.ehr.http import FhirHttp, RetryPolicy
from clinicflow.ehr.signing import SigningAlg, load_key, public_jwks, write_new_key
from clinicflow.ehr.smart import SmartAuth, SmartClient
from clinicflow.errors import InputError
from clinicflow.security.phi import PhiCipher
from clinicflow.store import Database
from clinicflow.store.replica import Appointment, FhirResource

CLIENT_ID = "clinicflow-test"
COMPARTMENT_TYPES = ["Patient", "Coverage", "Appointment", "Communication", "Encounter"]
FIRST_VISIT_AT = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)


def _appointment(n: int, status: str = "booked") -> dict[str, object]:
    return appointment(n, FIRST_VISIT_AT, status=status, participant_status="accepted")


@dataclass
class Ehr:
    """A running peer and a client signed in to it."""

    peer: FhirPeer
    base_url: str
    client: FhirClient


@pytest.fixture
def ehr(tmp_path: Path, clock: FakeClock) -> Iterator[Ehr]:
    """Four patients with a visit each, a doctor, and Group g1 of patients p1 and p2."""
    write_new_key(tmp_path, SigningAlg.ES384)
    peer = FhirPeer(PeerConfig(clients={CLIENT_ID: public_jwks(tmp_path)}, export_polls=0))
    peer.now = clock.now
    for n in range(1, 5):
        peer.put({"resourceType": "Patient", "id": f"p{n}", "name": [{"family": f"F{n}"}]})
        peer.put(_appointment(n))
    peer.put({"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "Osei"}]})
    peer.put(
        {
            "resourceType": "Group",
            "id": "g1",
            "type": "person",
            "actual": True,
            "member": [
                {"entity": {"reference": "Patient/p1"}},
                {"entity": {"reference": "Patient/p2"}},
            ],
        }
    )
    with running_peer(peer) as base_url:
        key = load_key(tmp_path / "ehr-signing-key.pem")
        auth = SmartAuth(base_url, SmartClient(CLIENT_ID, key, "system/*.rs"))
        client = FhirClient(FhirHttp(base_url, auth=auth, retry=RetryPolicy(attempts=2)))
        try:
            yield Ehr(peer, base_url, client)
        finally:
            client.close()


def _stored(db: Database) -> set[str]:
    with db.transaction() as s:
        rows = s.execute(select(FhirResource.resource_type, FhirResource.fhir_id))
        return {f"{rtype}/{fhir_id}" for rtype, fhir_id in rows}


def _last_kick_off(peer: FhirPeer) -> RequestLog:
    return [r for r in peer.requests if r.path.endswith("$export")][-1]


def _sync(
    ehr: Ehr,
    db: Database,
    cipher: PhiCipher,
    clock: FakeClock,
    *,
    mode: SyncMode = SyncMode.AUTO,
    level: ExportLevel = ExportLevel.SYSTEM,
    group_id: str | None = None,
) -> FhirSyncReport:
    report = sync_fhir(
        db,
        cipher,
        clock,
        ehr.client,
        mode=mode,
        level=level,
        group_id=group_id,
        sleep=lambda _s: None,
    )
    clock.advance(timedelta(minutes=1))  # what the EHR changes next is stamped after the export
    return report


def test_a_group_export_stores_only_the_members_records_under_marks_of_its_own(
    ehr: Ehr, sqlite_db: Database, cipher: PhiCipher, clock: FakeClock
):
    report = _sync(ehr, sqlite_db, cipher, clock, level=ExportLevel.GROUP, group_id="g1")
    assert (report.mode, report.level, report.group_id) == (SyncMode.BULK, "group", "g1")
    assert _stored(sqlite_db) == {"Patient/p1", "Patient/p2", "Appointment/a1", "Appointment/a2"}
    kick_off = _last_kick_off(ehr.peer)
    assert kick_off.path.endswith("/fhir/Group/g1/$export")
    assert kick_off.query["_type"] == [",".join(COMPARTMENT_TYPES)]
    assert "_since" not in kick_off.query
    # The server's own marks, and what the replica is current as of, are untouched.
    assert read_checkpoints(sqlite_db, source_key(ehr.base_url)) == {}
    group_marks = read_checkpoints(sqlite_db, export_source(ehr.base_url, ExportLevel.GROUP, "g1"))
    assert group_marks == dict.fromkeys(COMPARTMENT_TYPES, report.high_water)


def test_a_second_group_sync_asks_from_the_groups_mark_and_the_practice_sync_still_sees_the_rest(
    ehr: Ehr, sqlite_db: Database, cipher: PhiCipher, clock: FakeClock
):
    practice = _sync(ehr, sqlite_db, cipher, clock, mode=SyncMode.BULK)
    practice_marks = read_checkpoints(sqlite_db, source_key(ehr.base_url))
    assert practice_marks[WHOLE_SYNC] == practice.high_water
    first = _sync(ehr, sqlite_db, cipher, clock, level=ExportLevel.GROUP, group_id="g1")
    assert first.high_water is not None
    assert first.high_water > practice.high_water

    ehr.peer.put(_appointment(1, status="cancelled"))  # a member's visit
    ehr.peer.put(_appointment(3, status="cancelled"))  # someone else's
    second = _sync(ehr, sqlite_db, cipher, clock, level=ExportLevel.GROUP, group_id="g1")
    assert _last_kick_off(ehr.peer).query["_since"] == [
        first.high_water.isoformat(timespec="milliseconds")
    ]
    assert (second.ingest.updated, second.ingest.created) == (1, 0)
    assert read_checkpoints(sqlite_db, source_key(ehr.base_url)) == practice_marks

    # The practice-wide sync starts from its own mark, so a3's cancellation is not skipped.
    again = _sync(ehr, sqlite_db, cipher, clock, mode=SyncMode.BULK)
    assert again.since == practice.high_water
    with sqlite_db.transaction() as s:
        statuses = dict(s.execute(select(Appointment.fhir_id, Appointment.status)).all())
    assert statuses == {"a1": "cancelled", "a2": "booked", "a3": "cancelled", "a4": "booked"}


def test_a_patient_level_export_asks_for_patient_compartment_types_only(
    ehr: Ehr, sqlite_db: Database, cipher: PhiCipher, clock: FakeClock
):
    report = _sync(ehr, sqlite_db, cipher, clock, level=ExportLevel.PATIENT)
    kick_off = _last_kick_off(ehr.peer)
    assert kick_off.path.endswith("/fhir/Patient/$export")
    assert kick_off.query["_type"] == [",".join(COMPARTMENT_TYPES)]
    assert report.ingest.created == 8
    assert "Practitioner/dr1" not in _stored(sqlite_db)
    assert read_checkpoints(sqlite_db, source_key(ehr.base_url)) == {}
    assert WHOLE_SYNC not in read_checkpoints(
        sqlite_db, export_source(ehr.base_url, ExportLevel.PATIENT)
    )


@pytest.mark.parametrize(
    ("mode", "level", "group_id", "told"),
    [
        (SyncMode.AUTO, ExportLevel.GROUP, None, "add --group ID"),
        (SyncMode.SEARCH, ExportLevel.GROUP, "g1", "leave out --mode search"),
        (SyncMode.SEARCH, ExportLevel.PATIENT, None, "leave out --mode search"),
        (SyncMode.BULK, ExportLevel.SYSTEM, "g1", "add --level group"),
        (SyncMode.BULK, ExportLevel.GROUP, "g1/$export?x=", "not a FHIR id"),
    ],
)
def test_options_that_do_not_go_together_are_refused_with_what_to_change(
    mode: SyncMode, level: ExportLevel, group_id: str | None, told: str
):
    with pytest.raises(InputError, match=told):
        check_level(mode, level, group_id)


@given(
    base=st.text(alphabet="abc/:.", max_size=300),
    groups=st.lists(st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True), min_size=2),
)
def test_each_group_keeps_marks_apart_from_the_server_and_other_groups_however_long_the_url(
    base: str, groups: list[str]
):
    keys = {export_source(base, ExportLevel.GROUP, g) for g in set(groups)}
    assert len(keys) == len(set(groups))
    assert source_key(base) not in keys
    assert export_source(base, ExportLevel.PATIENT) not in keys
    assert all(len(key) <= 200 for key in keys)
