"""The written practice, read back the way a person or the sync would read it."""

from __future__ import annotations

import gc
import importlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
import pytest

from clinicflow.errors import InputError
from clinicflow.synth import write_practice
from clinicflow.synth.attendance import LEAD_BUCKETS, lead_bucket

ANCHOR = date(2026, 11, 23)  # a Monday, so today and tomorrow are clinic days
PATIENTS = 400
SEED = 7
TYPES = (
    "Organization", "Location", "Practitioner", "PractitionerRole", "Schedule", "Slot",
    "Patient", "Coverage", "Appointment", "Communication",
)  # fmt: skip
MRN = "urn:oid:2.16.840.1.113883.3.clinicflow.mrn"
TIMEZONE = "http://hl7.org/fhir/StructureDefinition/timezone"

Resource = dict[str, Any]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("practice")
    return out, write_practice(out, seed=SEED, patients=PATIENTS, anchor_on=ANCHOR)


@pytest.fixture(scope="module")
def practice_dir(written: tuple[Path, dict[str, int]]) -> Path:
    return written[0]


@pytest.fixture(scope="module")
def practice(practice_dir: Path) -> dict[str, list[Resource]]:
    # Parsing ~60,000 appointments makes millions of small dicts; the cyclic GC would rescan
    # them over and over (5x slower) although none of them can form a cycle.
    gc.disable()
    try:
        return {
            rtype: [orjson.loads(line) for line in (practice_dir / f"{rtype}.ndjson").open("rb")]
            for rtype in TYPES
        }
    finally:
        gc.enable()


def _on(instant: str) -> date:
    return date.fromisoformat(instant[:10])


def _at(instant: str) -> datetime:
    return datetime.fromisoformat(instant.replace("Z", "+00:00"))


def _patient_of(appointment: Resource) -> str:
    return str(appointment["participant"][0]["actor"]["reference"])


def _actor(appointment: Resource, resource_type: str) -> str | None:
    for participant in appointment["participant"]:
        reference = participant["actor"]["reference"]
        if reference.startswith(f"{resource_type}/"):
            return str(reference)
    return None


def _references(value: object) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                yield item
            else:
                yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def _phones(patient: Resource) -> list[str]:
    return [t["value"] for t in patient["telecom"] if t["system"] == "phone"]


def test_the_same_seed_size_and_anchor_write_identical_bytes(
    practice_dir: Path, tmp_path: Path
) -> None:
    write_practice(tmp_path, seed=SEED, patients=PATIENTS, anchor_on=ANCHOR)
    for rtype in TYPES:
        name = f"{rtype}.ndjson"
        assert (tmp_path / name).read_bytes() == (practice_dir / name).read_bytes(), name


def test_a_different_seed_writes_a_different_practice(practice_dir: Path, tmp_path: Path) -> None:
    write_practice(tmp_path, seed=SEED + 1, patients=PATIENTS, anchor_on=ANCHOR)
    for rtype in ("Patient", "Appointment", "Slot"):
        name = f"{rtype}.ndjson"
        assert (tmp_path / name).read_bytes() != (practice_dir / name).read_bytes(), name


def test_one_file_per_resource_type_holds_only_that_type_one_compact_resource_a_line(
    practice_dir: Path,
) -> None:
    assert sorted(p.name for p in practice_dir.iterdir()) == sorted(f"{t}.ndjson" for t in TYPES)
    for rtype in TYPES:
        lines = (practice_dir / f"{rtype}.ndjson").read_text(encoding="utf-8").splitlines()
        for line in lines[:: max(1, len(lines) // 300)]:
            resource = json.loads(line)
            assert resource["resourceType"] == rtype
            assert line == json.dumps(resource, separators=(",", ":"), ensure_ascii=False)


def test_the_practice_has_one_organization_three_sites_and_twelve_practitioners(
    practice: dict[str, list[Resource]],
) -> None:
    organizations = practice["Organization"]
    kinds = Counter(o["type"][0]["coding"][0]["code"] for o in organizations)
    assert kinds["prov"] == 1
    assert kinds["pay"] >= 3
    assert len(practice["Location"]) == 3
    assert all(loc["address"]["city"] for loc in practice["Location"])
    assert all(
        loc["extension"] == [{"url": TIMEZONE, "valueCode": "America/New_York"}]
        for loc in practice["Location"]
    )
    assert len(practice["Practitioner"]) == 12
    roles = practice["PractitionerRole"]
    assert len(roles) == len(practice["Schedule"]) == 12
    nucc = {r["specialty"][0]["coding"][0]["system"] for r in roles}
    assert nucc == {"http://nucc.org/provider-taxonomy"}
    assert len({r["specialty"][0]["coding"][0]["code"] for r in roles}) >= 6


def test_write_practice_reports_how_many_resources_each_file_holds(
    written: tuple[Path, dict[str, int]], practice: dict[str, list[Resource]]
) -> None:
    counts = written[1]
    assert counts == {rtype: len(practice[rtype]) for rtype in TYPES}
    assert counts["Patient"] == PATIENTS


def test_every_reference_points_at_a_resource_in_the_output(
    practice: dict[str, list[Resource]],
) -> None:
    known = {f"{r['resourceType']}/{r['id']}" for resources in practice.values() for r in resources}
    for resources in practice.values():
        for resource in resources:
            for reference in _references(resource):
                assert reference in known, f"{resource['resourceType']}/{resource['id']}"


def test_every_resource_has_an_id_and_was_last_updated_before_the_anchor_morning(
    practice: dict[str, list[Resource]],
) -> None:
    anchor_morning = _at("2026-11-23T06:00:00-05:00")
    ids = [r["id"] for resources in practice.values() for r in resources]
    assert len(ids) == len(set(ids))
    for resources in practice.values():
        for resource in resources:
            assert _at(resource["meta"]["lastUpdated"]) <= anchor_morning


def test_no_slot_is_held_twice_and_busy_slots_are_exactly_the_held_ones(
    practice: dict[str, list[Resource]],
) -> None:
    held = Counter(
        a["slot"][0]["reference"].removeprefix("Slot/")
        for a in practice["Appointment"]
        if "slot" in a
    )
    assert max(held.values()) == 1
    busy = {s["id"] for s in practice["Slot"] if s["status"] == "busy"}
    assert busy == set(held)
    holders = [a for a in practice["Appointment"] if "slot" in a]
    assert {a["status"] for a in holders} <= {"booked", "fulfilled", "noshow"}
    assert all(a["status"] == "booked" for a in holders if _on(a["start"]) >= ANCHOR)


def _is_squeezed_in(appointment: Resource) -> bool:
    return "squeezed in" in appointment.get("comment", "").lower()


def test_booked_appointments_hold_a_slot_at_their_own_time_unless_squeezed_in(
    practice: dict[str, list[Resource]],
) -> None:
    slots = {s["id"]: s for s in practice["Slot"]}
    booked = [a for a in practice["Appointment"] if a["status"] == "booked"]
    squeezed = [a for a in booked if _is_squeezed_in(a)]
    assert 0 < len(squeezed) < 0.01 * len(booked)
    assert all("slot" not in a for a in squeezed)
    for appointment in booked:
        if not _is_squeezed_in(appointment):
            slot = slots[appointment["slot"][0]["reference"].removeprefix("Slot/")]
            assert (slot["start"], slot["end"]) == (appointment["start"], appointment["end"])


def test_a_practitioner_sees_two_patients_at_once_only_when_one_was_squeezed_in(
    practice: dict[str, list[Resource]],
) -> None:
    by_practitioner: dict[str | None, list[tuple[datetime, datetime]]] = defaultdict(list)
    for a in practice["Appointment"]:
        if a["status"] in ("booked", "fulfilled", "noshow") and not _is_squeezed_in(a):
            by_practitioner[_actor(a, "Practitioner")].append((_at(a["start"]), _at(a["end"])))
    for spans in by_practitioner.values():
        spans.sort()
        assert all(end <= next_start for (_, end), (next_start, _) in pairwise(spans))


def test_about_18_percent_of_past_visits_are_no_shows_and_more_the_earlier_they_were_booked(
    practice: dict[str, list[Resource]],
) -> None:
    kept = [a for a in practice["Appointment"] if a["status"] in ("fulfilled", "noshow")]
    assert all(_on(a["start"]) < ANCHOR for a in kept)
    missed = [a for a in kept if a["status"] == "noshow"]
    assert 0.15 <= len(missed) / len(kept) <= 0.21
    buckets = [[0, 0] for _ in LEAD_BUCKETS]
    for a in kept:
        lead_days = (_at(a["start"]) - _at(a["created"])).days
        buckets[lead_bucket(lead_days)][0] += a["status"] == "noshow"
        buckets[lead_bucket(lead_days)][1] += 1
    rates = [noshows / total for noshows, total in buckets]
    assert rates == sorted(rates)
    assert rates[-1] > 2 * rates[0]


def test_past_visits_include_cancellations_with_a_reason(
    practice: dict[str, list[Resource]],
) -> None:
    cancelled = [a for a in practice["Appointment"] if a["status"] == "cancelled"]
    assert cancelled
    assert all(a["cancelationReason"]["coding"][0]["code"] for a in cancelled)
    assert all("slot" not in a for a in cancelled)


def test_every_appointment_says_when_it_was_booked_and_who_takes_part(
    practice: dict[str, list[Resource]],
) -> None:
    kinds: Counter[str] = Counter()
    for a in practice["Appointment"]:
        if a["status"] == "waitlist":
            assert "start" not in a
        else:
            assert _at(a["created"]) < _at(a["start"])
        assert a["participant"][0]["actor"]["reference"].startswith("Patient/")
        assert a["serviceType"]
        coding = a["appointmentType"]["coding"][0]
        assert coding["system"] == "http://terminology.hl7.org/CodeSystem/v2-0276"
        kinds[coding["code"]] += 1
        if a["status"] != "waitlist":
            assert {"start", "end", "minutesDuration"} <= a.keys()
            assert _actor(a, "Practitioner")
            assert _actor(a, "Location")
    assert set(kinds) == {"ROUTINE", "FOLLOWUP", "CHECKUP", "WALKIN"}


def test_past_visits_were_accepted_and_most_upcoming_ones_wait_for_a_confirmation(
    practice: dict[str, list[Resource]],
) -> None:
    upcoming: dict[bool, Counter[str]] = {True: Counter(), False: Counter()}
    for a in practice["Appointment"]:
        said = a["participant"][0]["status"]
        if a["status"] != "booked":
            assert said == "accepted"
            continue
        soon = _on(a["start"]) < ANCHOR + timedelta(days=2)
        upcoming[soon][said] += 1
    for soon, low, high in ((True, 0.25, 0.55), (False, 0.04, 0.2)):
        counts = upcoming[soon]
        assert set(counts) == {"accepted", "needs-action"}
        assert low <= counts["accepted"] / sum(counts.values()) <= high


def test_today_and_tomorrow_are_mostly_booked_with_families_and_double_visits(
    practice: dict[str, list[Resource]],
) -> None:
    patients = {f"Patient/{p['id']}": p for p in practice["Patient"]}
    for day in (ANCHOR, ANCHOR + timedelta(days=1)):
        booked = [a for a in practice["Appointment"] if a["status"] == "booked"]
        todays = [a for a in booked if _on(a["start"]) == day]
        slots = [s for s in practice["Slot"] if _on(s["start"]) == day]
        assert len(todays) >= 0.75 * len(slots)
        visits_per_patient = Counter(_patient_of(a) for a in todays)
        assert max(visits_per_patient.values()) == 2
        phones = Counter(ph for ref in visits_per_patient for ph in _phones(patients[ref]))
        assert max(phones.values()) >= 2


def test_later_weeks_are_less_booked_than_the_next_days(
    practice: dict[str, list[Resource]],
) -> None:
    usage: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for s in practice["Slot"]:
        week = (_on(s["start"]) - ANCHOR).days // 7
        usage[week][0] += s["status"] == "busy"
        usage[week][1] += 1
    share = {week: busy / total for week, (busy, total) in usage.items()}
    assert all(0.6 <= share[week] <= 0.9 for week in range(5))
    assert share[0] > share[4]


def test_patients_have_mrns_ages_of_all_kinds_and_most_have_coverage(
    practice: dict[str, list[Resource]],
) -> None:
    patients = practice["Patient"]
    assert all(p["identifier"][0]["system"] == MRN for p in patients)
    assert len({p["identifier"][0]["value"] for p in patients}) == len(patients)
    ages = [(ANCHOR - date.fromisoformat(p["birthDate"])).days // 365 for p in patients]
    assert any(age < 5 for age in ages)
    assert 0.1 <= sum(age < 18 for age in ages) / len(ages) <= 0.35
    assert 0.1 <= sum(age >= 65 for age in ages) / len(ages) <= 0.4
    covered = {c["beneficiary"]["reference"] for c in practice["Coverage"]}
    assert 0.8 <= len(covered) / len(patients) <= 0.97


def test_about_a_fifth_of_patients_prefer_spanish_and_have_spanish_names(
    practice: dict[str, list[Resource]],
) -> None:
    spanish = [
        p
        for p in practice["Patient"]
        if any(c["language"]["coding"][0]["code"] == "es" for c in p.get("communication", []))
    ]
    assert 0.14 <= len(spanish) / len(practice["Patient"]) <= 0.26
    accented = sum(any(ch in "áéíóúñÁÉÍÓÚÑ" for ch in p["name"][0]["family"]) for p in spanish)
    assert accented > len(spanish) / 4


def test_family_members_share_a_mobile_number_and_address(
    practice: dict[str, list[Resource]],
) -> None:
    by_phone: dict[str, list[Resource]] = defaultdict(list)
    for patient in practice["Patient"]:
        for phone in _phones(patient):
            by_phone[phone].append(patient)
    families = [members for members in by_phone.values() if len(members) > 1]
    sharing = sum(len(members) for members in families)
    assert 0.05 <= sharing / len(practice["Patient"]) <= 0.16
    for members in families:
        assert len({m["name"][0]["family"] for m in members}) == 1
        assert len({json.dumps(m["address"]) for m in members}) == 1
    children = [m for f in families for m in f if m["birthDate"] > "2008-11-23"]
    assert children


def test_rank_one_is_the_preferred_channel_and_preferences_are_mixed(
    practice: dict[str, list[Resource]],
) -> None:
    preferred: Counter[tuple[str, str | None]] = Counter()
    for patient in practice["Patient"]:
        ranks = sorted(t["rank"] for t in patient["telecom"])
        assert ranks == list(range(1, len(ranks) + 1))
        first = next(t for t in patient["telecom"] if t["rank"] == 1)
        preferred[(first["system"], first.get("use"))] += 1
    assert preferred[("phone", "mobile")] > preferred[("email", "home")] > 0
    assert preferred[("phone", "home")] > 0  # a few have no mobile
    without_email = [
        p for p in practice["Patient"] if all(t["system"] != "email" for t in p["telecom"])
    ]
    assert 0.1 <= len(without_email) / len(practice["Patient"]) <= 0.4


def test_a_few_patients_live_in_another_time_zone(practice: dict[str, list[Resource]]) -> None:
    zones = [p["extension"][0] for p in practice["Patient"] if "extension" in p]
    assert 0.01 <= len(zones) / len(practice["Patient"]) <= 0.1
    assert all(z["url"] == TIMEZONE and z["valueCode"] != "America/New_York" for z in zones)


def test_a_few_patients_wait_for_an_opening_in_the_coming_weeks(
    practice: dict[str, list[Resource]],
) -> None:
    waiting = [a for a in practice["Appointment"] if a["status"] == "waitlist"]
    assert len(waiting) >= 0.02 * PATIENTS
    for entry in waiting:
        period = entry["requestedPeriod"][0]
        assert ANCHOR < date.fromisoformat(period["start"]) < date.fromisoformat(period["end"])
        assert date.fromisoformat(period["end"]) <= ANCHOR + timedelta(days=42)
        assert "start" not in entry


def test_portal_messages_come_in_both_languages_with_replies_and_urgent_ones(
    practice: dict[str, list[Resource]],
) -> None:
    messages = practice["Communication"]
    assert {m["language"] for m in messages} == {"en", "es"}
    assert all(m["status"] == "completed" and m["payload"][0]["contentString"] for m in messages)
    from_patients = [m for m in messages if m["sender"]["reference"].startswith("Patient/")]
    assert all(m["recipient"][0]["reference"].startswith("Practitioner/") for m in from_patients)
    assert all(m["subject"] == m["sender"] for m in from_patients)
    assert any("inResponseTo" in m for m in messages)
    texts = " ".join(m["payload"][0]["contentString"] for m in messages).lower()
    assert any(alarm in texts for alarm in ("chest pain", "catch my breath", "drooping"))
    assert any(alarm in texts for alarm in ("dolor en el pecho", "me cuesta respirar", "la cara"))
    sent = [_at(m["sent"]) for m in messages]
    assert min(sent) >= _at("2026-11-02T00:00:00Z")


@pytest.mark.parametrize("rtype", TYPES)
def test_each_resource_type_validates_against_the_fhir_r4b_models(
    practice: dict[str, list[Resource]], rtype: str
) -> None:
    model = getattr(importlib.import_module(f"fhir.resources.R4B.{rtype.lower()}"), rtype)
    resources = practice[rtype]
    step = max(1, len(resources) // 40)
    for resource in resources[:20] + resources[-20:] + resources[::step]:
        model.model_validate(resource)


def test_an_unknown_time_zone_is_refused_with_a_message_saying_what_to_write(
    tmp_path: Path,
) -> None:
    with pytest.raises(InputError, match="America/Chicago"):
        write_practice(tmp_path, seed=1, patients=10, anchor_on=ANCHOR, timezone="Mars/Olympus")
    assert not list(tmp_path.iterdir())


def test_a_practice_without_patients_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="between 1 and"):
        write_practice(tmp_path, seed=1, patients=0, anchor_on=ANCHOR)
