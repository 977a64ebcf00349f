"""Waitlist entries read from the synthetic practice's FHIR Appointments (status waitlist)."""

from __future__ import annotations

import json
from datetime import date, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from clinicflow.automations.waitlist.entries import Availability
from clinicflow.automations.waitlist.from_fhir import (
    AVAILABILITY_URL,
    CONTACT_URL,
    availability_text,
    entry_from_appointment,
    parse_availability,
    with_contact,
)
from clinicflow.engine import MessageChannel
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


def test_the_days_and_times_a_patient_can_come_and_how_to_reach_them_come_from_extensions(
    waitlist: list[dict[str, object]],
) -> None:
    resource = {
        **waitlist[0],
        "extension": [
            {"url": AVAILABILITY_URL, "valueString": "tue 08:00-12:00"},
            {"url": AVAILABILITY_URL, "valueString": "thu 13:30-17:00"},
            {"url": CONTACT_URL, "valueCode": "email"},
            {"url": "https://example.org/other", "valueString": "ignored"},
        ],
    }
    entry = entry_from_appointment(resource, zone=ZONE)
    assert entry.availability == (
        Availability(1, time(8, 0), time(12, 0)),
        Availability(3, time(13, 30), time(17, 0)),
    )
    assert [availability_text(w) for w in entry.availability] == [
        "tue 08:00-12:00",
        "thu 13:30-17:00",
    ]
    assert (entry.channel, entry.contact_chosen) == (MessageChannel.EMAIL, True)
    # The shell's preferred channel does not override the one the entry asked for.
    kept = with_contact(entry, channel=MessageChannel.SMS, opted_out=False, last_contacted_at=None)
    assert kept.channel is MessageChannel.EMAIL
    plain = entry_from_appointment(waitlist[0], zone=ZONE)
    assert (plain.availability, plain.contact_chosen) == ((), False)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("mon", "is not a window"),
        ("funday 08:00-09:00", "the day must be one of"),
        ("mon 12:00-08:00", "must end after it starts"),
        ("mon 8-9", "is not a window"),
    ],
)
def test_a_window_that_cannot_be_read_says_what_is_wrong(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_availability(text)
    resource = {
        "resourceType": "Appointment",
        "id": "e1",
        "status": "waitlist",
        "serviceType": [{"coding": [{"code": "124"}]}],
        "created": "2026-11-01T10:00:00Z",
        "participant": [{"actor": {"reference": "Patient/p1"}}],
        "extension": [{"url": AVAILABILITY_URL, "valueString": text}],
    }
    with pytest.raises(InputError, match=why):
        entry_from_appointment(resource, zone=ZONE)
