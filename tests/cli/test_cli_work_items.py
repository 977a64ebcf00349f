"""`clinicflow work-items list`: what the daily digest flagged, as a scheduler would read it."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from cli_process import clinicflow

from clinicflow.synth import write_practice

TOMORROW = "2026-11-24"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An install synced with a small practice (only tomorrow's visits) and one digest run."""
    practice = tmp_path_factory.mktemp("practice")
    write_practice(practice, seed=7, patients=250, anchor_on=date(2026, 11, 23))
    for name in ("Appointment.ndjson", "Slot.ndjson"):
        path = practice / name
        kept = [line for line in path.read_text().splitlines(keepends=True) if TOMORROW in line]
        path.write_text("".join(kept))
    data = tmp_path_factory.mktemp("install")
    assert clinicflow(data, "db", "upgrade").returncode == 0
    assert clinicflow(data, "sync", "folder", str(practice)).returncode == 0
    ran = clinicflow(data, "run", "daily-digest", "--now", "2026-11-23T21:00:00Z")
    assert ran.returncode == 0, ran.stderr
    return data


def test_the_digest_findings_are_listed_for_the_scheduler_pool(data_dir: Path) -> None:
    listed = clinicflow(data_dir, "work-items", "list", "--pool", "scheduler", "--json")
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)
    problems = sorted("overbooked" if "overbooked" in i["description"] else "empty" for i in items)
    assert problems == ["empty", "overbooked"]
    assert all(i["focus"].startswith("Practitioner/") for i in items)
    assert all(i["description"].endswith("Please review the schedule.") for i in items)


def test_reading_the_list_is_in_the_audit_log_and_the_chain_holds(data_dir: Path) -> None:
    clinicflow(data_dir, "work-items", "list")
    verified = clinicflow(data_dir, "audit", "verify", "--json")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["ok"] is True
    nurse_pool = clinicflow(data_dir, "work-items", "list", "--pool", "nurse", "--json")
    assert json.loads(nurse_pool.stdout) == []
