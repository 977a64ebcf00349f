"""Empty and overbooked half-days: tomorrow always has one of each, the rest of the weeks a few.

Sessions are counted from the written NDJSON the way the daily digest counts them: offered slots
(free or busy) through their Schedule's practitioner, visits that hold a place on the calendar
through their Practitioner participant, and the half-day split at 12:30 in the practice's zone.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinicflow.synth import write_practice
from clinicflow.synth.anomalies import plan_anomalies, showcase_day, squeeze_in_starts
from clinicflow.synth.practice import build_practice
from clinicflow.synth.schedule import weekly_grid
from clinicflow.synth.timeline import local_days

ZONE = ZoneInfo("America/New_York")
MONDAY = date(2026, 11, 23)
SATURDAY = date(2026, 11, 28)
PATIENTS = 400
SEED = 7
OFFERED = {"free", "busy", "busy-tentative"}
ACTIVE = {"proposed", "pending", "booked", "arrived", "fulfilled", "checked-in"}
AFTERNOON_STARTS = time(12, 30)
_START = re.compile(rb'"start":"(\d{4}-\d{2}-\d{2})')

Resource = dict[str, Any]
SessionKey = tuple[str, date, str]


@dataclass
class Session:
    """One provider's half-day as the written files show it."""

    slots: list[Resource] = field(default_factory=list)
    visits: list[Resource] = field(default_factory=list)

    @property
    def active(self) -> list[Resource]:
        return [v for v in self.visits if v["status"] in ACTIVE]

    @property
    def is_overbooked(self) -> bool:
        return len(self.active) > len(self.slots)

    @property
    def is_empty(self) -> bool:
        return bool(self.slots) and not self.active


def _read(folder: Path, rtype: str, on: set[str] | None = None) -> list[Resource]:
    """Resources of one file; with `on`, only those starting on one of those local dates."""
    resources = []
    with (folder / f"{rtype}.ndjson").open("rb") as fh:
        for line in fh:
            # Parsing a year of history would take seconds; the date filter keeps this fast.
            match = _START.search(line)
            if on is None or (match and match.group(1).decode() in on):
                resources.append(orjson.loads(line))
    return resources


def _session_of(practitioner: str, start: str) -> SessionKey:
    local = datetime.fromisoformat(start).astimezone(ZONE)
    half = "morning" if local.time() < AFTERNOON_STARTS else "afternoon"
    return practitioner, local.date(), half


def _practitioner(resource: Resource, key: str) -> str | None:
    for entry in resource[key]:
        reference = str((entry.get("actor") or entry)["reference"])
        if reference.startswith("Practitioner/"):
            return reference
    return None


def sessions_of(folder: Path, days: list[date]) -> dict[SessionKey, Session]:
    """Every provider half-day on `days`, with its offered slots and its visits."""
    wanted = {day.isoformat() for day in days}
    owners = {s["id"]: _practitioner(s, "actor") for s in _read(folder, "Schedule")}
    sessions: dict[SessionKey, Session] = defaultdict(Session)
    for slot in _read(folder, "Slot", wanted):
        owner = owners[slot["schedule"]["reference"].removeprefix("Schedule/")]
        if owner and slot["status"] in OFFERED:
            sessions[_session_of(owner, slot["start"])].slots.append(slot)
    for visit in _read(folder, "Appointment", wanted):
        practitioner = _practitioner(visit, "participant")
        if practitioner and visit["status"] not in ("cancelled", "waitlist"):
            sessions[_session_of(practitioner, visit["start"])].visits.append(visit)
    return {key: session for key, session in sessions.items() if key[1] in days}


def _is_squeezed_in(visit: Resource) -> bool:
    return "squeezed in" in visit.get("comment", "").lower()


@pytest.fixture(scope="module")
def monday_practice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("monday")
    write_practice(out, seed=SEED, patients=PATIENTS, anchor_on=MONDAY)
    return out


@pytest.fixture(scope="module")
def tomorrow(monday_practice: Path) -> dict[SessionKey, Session]:
    return sessions_of(monday_practice, [MONDAY + timedelta(days=1)])


def test_tomorrow_has_an_empty_session_and_an_overbooked_one_of_different_providers(
    tomorrow: dict[SessionKey, Session],
) -> None:
    empty = [key for key, session in tomorrow.items() if session.is_empty]
    overbooked = [key for key, session in tomorrow.items() if session.is_overbooked]
    assert len(empty) >= 1
    assert len(overbooked) >= 1
    assert {key[0] for key in empty}.isdisjoint(key[0] for key in overbooked)


def test_the_empty_session_offers_only_free_slots_and_nobody_is_booked_into_it(
    tomorrow: dict[SessionKey, Session],
) -> None:
    for session in (s for s in tomorrow.values() if s.is_empty):
        assert len(session.slots) >= 8  # a whole half-day was opened, not a stray slot
        assert {slot["status"] for slot in session.slots} == {"free"}
        assert session.visits == []


def test_the_overbooked_session_is_full_and_one_or_two_patients_are_squeezed_in_beside_others(
    tomorrow: dict[SessionKey, Session],
) -> None:
    for session in (s for s in tomorrow.values() if s.is_overbooked):
        assert {slot["status"] for slot in session.slots} == {"busy"}
        squeezed = [v for v in session.visits if _is_squeezed_in(v)]
        assert 1 <= len(squeezed) == len(session.active) - len(session.slots) <= 2
        regular_starts = {v["start"] for v in session.visits if not _is_squeezed_in(v)}
        for visit in squeezed:
            assert visit["status"] == "booked"
            assert "slot" not in visit
            assert visit["start"] in regular_starts  # double-booked on top of a booked visit
            assert datetime.fromisoformat(visit["created"]) < datetime.fromisoformat(
                f"{MONDAY.isoformat()}T06:00:00-05:00"
            )


def test_other_sessions_tomorrow_are_neither_empty_nor_overbooked(
    tomorrow: dict[SessionKey, Session],
) -> None:
    flagged = [s for s in tomorrow.values() if s.is_empty or s.is_overbooked]
    assert len(flagged) == 2
    assert len(tomorrow) > 15


def test_over_the_six_weeks_of_slots_a_few_sessions_are_empty_or_overbooked(
    monday_practice: Path,
) -> None:
    window = [MONDAY + timedelta(days=offset) for offset in range(-7, 36)]
    sessions = sessions_of(monday_practice, window)
    # On past days no-shows count as well: they were on the calendar when the day began.
    empty = [key for key, s in sessions.items() if s.slots and not s.visits]
    overbooked = [key for key, s in sessions.items() if len(s.visits) > len(s.slots)]
    assert 3 <= len(empty) <= 0.02 * len(sessions)
    assert 3 <= len(overbooked) <= 0.02 * len(sessions)
    assert len({key[1] for key in empty + overbooked}) >= 4  # spread out, not one bad day


def test_a_weekend_anchor_puts_them_on_the_next_weekday(tmp_path: Path) -> None:
    write_practice(tmp_path, seed=SEED, patients=300, anchor_on=SATURDAY)
    monday = SATURDAY + timedelta(days=2)
    sessions = sessions_of(tmp_path, [monday])
    assert any(s.is_empty for s in sessions.values())
    assert any(s.is_overbooked for s in sessions.values())


@given(st.integers(min_value=0, max_value=2**32), st.dates(date(2025, 1, 1), date(2028, 12, 31)))
def test_the_first_clinic_day_after_any_anchor_gets_one_empty_and_one_overbooked_session(
    seed: int, anchor_on: date
) -> None:
    rng = random.Random(seed)
    clinicians = build_practice(rng, 400, "America/New_York").clinicians
    grids = [weekly_grid(c) for c in clinicians]
    days = local_days(anchor_on, ZONE, -7, 35)
    anomalies = plan_anomalies(rng, clinicians, grids, days)
    showcase = showcase_day(days)
    assert showcase in (1, 2, 3)
    assert days[showcase].on.weekday() < 5
    assert all(days[offset].on.weekday() >= 5 for offset in range(1, showcase))
    empty = [key for key in anomalies.empty if key[1] == showcase]
    overbooked = [key for key in anomalies.overbooked if key[1] == showcase]
    assert len(empty) == len(overbooked) == 1
    assert empty[0][0] != overbooked[0][0]
    assert clinicians[overbooked[0][0]].specialty.primary_care
    assert anomalies.empty.isdisjoint(anomalies.overbooked)
    for clinician, day, half in anomalies.empty | anomalies.overbooked:
        worked = grids[clinician][days[day].on.weekday()]
        assert any((minute >= 13 * 60) == bool(half) for minute in worked)


@given(
    st.integers(),
    st.lists(st.sampled_from(range(480, 720, 20)), min_size=1, unique=True),
)
def test_patients_are_squeezed_in_only_when_every_slot_is_held_and_beside_a_held_one(
    seed: int, held: list[int]
) -> None:
    offered = list(range(480, 720, 20))
    starts = squeeze_in_starts(random.Random(seed), held, offered)
    if sorted(held) != offered:
        assert starts == []
    else:
        assert 1 <= len(starts) <= 2
        assert set(starts) <= set(held)
        assert starts == sorted(set(starts))
