"""daily-digest end to end: a synthetic practice synced into a real store, run by the engine.

The practice is the one `clinicflow synth` writes for the `clock` fixture's day; the run happens at
16:00 in New York, when the digest's schedule fires, and looks at Tuesday 24 November.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from clinicflow.automations.digest import AUTOMATION
from clinicflow.clock import FakeClock
from clinicflow.ehr import sync_folder
from clinicflow.engine import (
    EngineRuntime,
    Registry,
    RunOutcome,
    RunState,
    WorkItemView,
    list_open,
    run_now,
)
from clinicflow.security.phi import Keyring, PhiCipher
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.synth import write_practice

NY = ZoneInfo("America/New_York")
ANCHOR = date(2026, 11, 23)  # the `clock` fixture's day in New York
TOMORROW = "Tue 24 Nov"
PATIENTS = 300
# The digest reads tomorrow only; a week of slots and visits keeps the sync to a second
# instead of ingesting the year of past visits on both databases.
KEPT_DAYS = 7
_START = re.compile(rb'"start":"(\d{4}-\d{2}-\d{2})')

Resource = dict[str, Any]


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _resources(folder: Path, rtype: str) -> list[Resource]:
    return [orjson.loads(line) for line in _lines(folder / f"{rtype}.ndjson")]


@pytest.fixture(scope="module")
def practice_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic practice, with slots and visits of the coming week only."""
    out = tmp_path_factory.mktemp("practice")
    write_practice(out, seed=7, patients=PATIENTS, anchor_on=ANCHOR)
    wanted = {(ANCHOR + timedelta(days=n)).isoformat().encode() for n in range(KEPT_DAYS)}
    for rtype in ("Slot", "Appointment"):
        path = out / f"{rtype}.ndjson"
        kept = [
            line
            for line in _lines(path)
            if (match := _START.search(line)) and match.group(1) in wanted
        ]
        path.write_bytes(b"".join(kept))
    return out


@dataclass(frozen=True)
class Digest:
    """A store holding the practice, and the engine that runs the digest over it."""

    rt: EngineRuntime
    cipher: PhiCipher
    clock: FakeClock

    def run(self, *, dry_run: bool = False) -> RunOutcome:
        return run_now(self.rt, "daily-digest", requested_by="test", dry_run=dry_run)

    def open_items(self) -> list[WorkItemView]:
        with self.rt.db.transaction() as session:
            return list_open(session, self.cipher, reader="test", now=self.clock.now())


@pytest.fixture
def digest(db: Database, clock: FakeClock, practice_dir: Path, tmp_path: Path) -> Digest:
    assert clock.now().astimezone(NY).date() == ANCHOR
    cipher = PhiCipher(Keyring.generate())
    report = sync_folder(db, cipher, clock, practice_dir)
    assert not report.rejected
    clock.set(datetime(2026, 11, 23, 21, 0, tzinfo=UTC))  # 16:00 in New York
    rt = EngineRuntime.build(
        db=db,
        settings=Settings(data_dir=tmp_path, timezone="America/New_York"),
        clock=clock,
        cipher=cipher,
        registry=Registry([AUTOMATION]),
    )
    return Digest(rt, cipher, clock)


def _display_names(folder: Path) -> dict[str, str]:
    """'Practitioner/id' -> 'Dr. Ana Ortiz', as the practitioner's resource writes the name."""
    names = {}
    for practitioner in _resources(folder, "Practitioner"):
        name = practitioner["name"][0]
        parts = [*name.get("prefix", []), *name["given"], name["family"]]
        names[f"Practitioner/{practitioner['id']}"] = " ".join(parts)
    return names


def _tomorrow(resource: Resource) -> bool:
    return str(resource.get("start", "")).startswith("2026-11-24")


def test_the_digest_opens_one_work_item_per_flagged_provider_in_plain_words(
    digest: Digest, practice_dir: Path
) -> None:
    outcome = digest.run()
    assert outcome.state is RunState.SUCCEEDED
    items = digest.open_items()
    assert len(items) == len({item.focus for item in items}) == 2
    names = _display_names(practice_dir)
    for item in items:
        assert item.focus in names
        assert item.description.startswith(f"{names[item.focus]}, {TOMORROW}: ")
        assert item.description.endswith("Please review the schedule.")
        assert item.pool == "scheduler"
    (overbooked,) = [item for item in items if " overbooked (" in item.description]
    (empty,) = [item for item in items if " empty (" in item.description]
    counts = re.search(
        r"(morning|afternoon) overbooked \((\d+) visits for (\d+) slots\)", overbooked.description
    )
    assert counts is not None
    assert int(counts[2]) > int(counts[3])
    assert re.search(r"(morning|afternoon) empty \(\d+ open slots, no visits\)", empty.description)
    # The overbooked provider is the one the front desk squeezed a patient in with.
    squeezed = {
        actor["actor"]["reference"]
        for visit in _resources(practice_dir, "Appointment")
        if _tomorrow(visit) and "Squeezed in" in visit.get("comment", "")
        for actor in visit["participant"]
    }
    assert overbooked.focus in squeezed
    assert empty.focus not in squeezed


def test_the_run_counts_every_provider_with_slots_tomorrow_as_checked(
    digest: Digest, practice_dir: Path
) -> None:
    owners = {
        schedule["id"]: schedule["actor"][0]["reference"]
        for schedule in _resources(practice_dir, "Schedule")
    }
    working = {
        owners[slot["schedule"]["reference"].removeprefix("Schedule/")]
        for slot in _resources(practice_dir, "Slot")
        if _tomorrow(slot)
    }
    outcome = digest.run()
    assert outcome.units == {"provider_day_checked": len(working), "session_flagged": 2}
    assert len(working) == 12
    assert outcome.minutes_saved == pytest.approx(2.0 * len(working))


def test_running_the_digest_again_opens_nothing_new(digest: Digest) -> None:
    digest.run()
    first = {item.id: item.description for item in digest.open_items()}
    digest.clock.advance(timedelta(minutes=5))
    again = digest.run()
    assert again.state is RunState.SUCCEEDED
    assert {item.id: item.description for item in digest.open_items()} == first
    assert len(first) == 2


def test_a_dry_run_opens_no_work_item_and_records_what_it_would_have_opened(
    digest: Digest,
) -> None:
    outcome = digest.run(dry_run=True)
    assert outcome.state is RunState.SUCCEEDED
    assert outcome.dry_run
    assert outcome.effects == {"dry_run": 2}
    assert outcome.units["provider_day_checked"] == 12
    assert digest.open_items() == []
