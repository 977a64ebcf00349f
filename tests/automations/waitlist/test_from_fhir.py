"""Waitlist entries read from the synthetic practice's FHIR Appointments (status waitlist)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from clinicflow.automations.waitlist.from_fhir import entry_from_appointment
from clinicflow.errors import InputError
from clinicflow.synth import write_practice

ZONE = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def waitlist(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, object]]:
    folder: Path = tmp_path_factory.mktemp("practice")
    write_practice(
        folder, seed=4, patients=300, anchor_on=date(2026, 11, 23), timezone="America/New_York"
    )
    rows = [json.loads(line) for line in (folder / "Appointment.ndjson").read_text().splitlines()]
    return [r for r in rows if r["status"] == "waitlist"]


def test_every_synthetic_waitlist_entry_reads_with_its_window_and_service(
    waitlist: list[dict[str, object]],
) -> None:
    assert waitlist
    for resource in waitlist:
        entry = entry_from_appointment(resource, zone=ZONE)
        assert entry.id == resource["id"]
        assert entry.patient_id
        assert entry.specialty
        assert entry.minutes > 0
        assert entry.earliest_on is not None
        assert entry.latest_on is not None
        assert entry.earliest_on <= entry.latest_on
        assert entry.listed_at.tzinfo is not None


def test_an_entry_without_a_patient_or_service_is_refused_saying_which(
    waitlist: list[dict[str, object]],
) -> None:
    nobody = {**waitlist[0], "participant": []}
    with pytest.raises(InputError, match="names no patient"):
        entry_from_appointment(nobody, zone=ZONE)
    unclear = {k: v for k, v in waitlist[0].items() if k not in ("serviceType", "specialty")}
    with pytest.raises(InputError, match="neither serviceType nor specialty") as caught:
        entry_from_appointment(unclear, zone=ZONE)
    assert caught.value.where == f"Appointment/{waitlist[0]['id']}"
    booked = {**waitlist[0], "status": "booked"}
    with pytest.raises(InputError, match="not a waitlist entry"):
        entry_from_appointment(booked, zone=ZONE)
