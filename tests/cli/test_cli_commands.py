"""`clinicflow` commands on a set-up install, as a person runs them in a shell: exit codes, data
on stdout, sentences on stderr. Each runs as a real process of the installed entry point on an
embedded install (SQLite and huey's SQLite queue) in a temp data dir.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_process import SAMPLE, Result, clinicflow, said

SAMPLE_RESOURCES = sum(
    len(path.read_text(encoding="utf-8").splitlines())
    for path in SAMPLE.glob("*.000.ndjson")  # log.ndjson is the export's log, not resources
)
# The issue-3 shape, plus what the replica is current as of per EHR (issue 4).
SUMMARY_KEYS = {
    "resources",
    "events",
    "work_items",
    "effects",
    "runs",
    "ehr_sync",
    "jobs",
    "reminders",
    "waitlist",
}


@dataclass(frozen=True)
class Install:
    """An embedded install set up by `db upgrade`, then `sync folder` of the Synthea sample."""

    data_dir: Path
    upgrade: Result
    sync: Result


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory) -> Install:
    data_dir = tmp_path_factory.mktemp("install")
    upgrade = clinicflow(data_dir, "db", "upgrade")
    sync = clinicflow(data_dir, "sync", "folder", str(SAMPLE))
    return Install(data_dir, upgrade, sync)


def test_db_upgrade_sets_up_the_database_and_running_it_again_is_fine(install: Install) -> None:
    assert install.upgrade.returncode == 0, install.upgrade.stderr
    assert "database (sqlite) upgraded from empty to" in said(install.upgrade)
    again = clinicflow(install.data_dir, "db", "upgrade")
    assert again.returncode == 0, again.stderr
    assert "database (sqlite) already at revision" in said(again)


def test_sync_folder_stores_the_sample_and_a_second_sync_finds_nothing_new(
    install: Install,
) -> None:
    assert install.sync.returncode == 0, install.sync.stderr
    assert f"stored {SAMPLE_RESOURCES} resources ({SAMPLE_RESOURCES} new," in said(install.sync)
    assert "0 rejected" in said(install.sync)
    again = clinicflow(install.data_dir, "sync", "folder", str(SAMPLE), "--json")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert (report["created"], report["updated"], report["rejected"]) == (0, 0, [])
    assert report["unchanged"] == SAMPLE_RESOURCES


def test_status_json_prints_plain_json_with_the_summary_on_stdout(install: Install) -> None:
    result = clinicflow(install.data_dir, "status", "--json")
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stdout  # no terminal colours in data
    summary = json.loads(result.stdout)
    assert set(summary) == SUMMARY_KEYS
    assert isinstance(summary["events"]["pending"], int)
    assert isinstance(summary["work_items"]["open"], int)
    assert summary["resources"]["Patient"] == 13
    assert summary["waitlist"]["freed"] == 0  # no visit cancelled since the sync


def test_audit_verify_finds_the_log_intact_after_a_sync(install: Install) -> None:
    result = clinicflow(install.data_dir, "audit", "verify")
    assert result.returncode == 0, result.stderr
    checked = re.search(r"audit log intact: (\d+) rows", said(result))
    assert checked is not None
    assert int(checked[1]) > 0


def test_automations_list_json_shows_daily_digest_loaded(install: Install) -> None:
    result = clinicflow(install.data_dir, "automations", "list", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    digest = rows["daily-digest"]
    assert digest["status"] == "loaded"
    assert digest["owner"] == "scheduler"
    assert (digest["enabled"], digest["dry_run"]) == (True, False)
    assert "overbooked or empty" in digest["summary"]


def test_run_daily_digest_at_a_given_instant_prints_the_outcome(install: Install) -> None:
    result = clinicflow(install.data_dir, "run", "daily-digest", "--now", "2026-11-23T21:00:00Z")
    assert result.returncode == 0, result.stderr
    printed = said(result)
    assert re.search(r"run \d+ of daily-digest: succeeded", printed)
    # The Synthea sample has no schedules, so there is nobody to check and nothing to flag.
    assert "units: provider_day_checked 0" in printed
    assert "effects: none" in printed
