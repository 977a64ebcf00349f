"""How `clinicflow` reports bad input: exit codes, `FILE:LINE: reason` and one-line errors.

Each command runs as a real process of the installed entry point on an embedded install.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cli_process import SAMPLE, clinicflow, finish, said, start

from clinicflow.store import Database
from clinicflow.store.summary import summarize


@pytest.fixture
def fresh_install(tmp_path: Path, sqlite_template: Path) -> Path:
    """A data dir whose database is already at the current schema."""
    shutil.copyfile(sqlite_template, tmp_path / "clinicflow.db")
    return tmp_path


def test_a_bad_line_exits_1_names_its_file_and_line_on_stderr_and_the_rest_is_stored(
    fresh_install: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("export")
    good = (SAMPLE / "Patient.000.ndjson").read_text(encoding="utf-8").splitlines()[:3]
    lines = [good[0], '{"resourceType": "Patient", "id": ', *good[1:]]
    (folder / "Patient.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = clinicflow(fresh_install, "sync", "folder", str(folder))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines()[0].startswith("Patient.ndjson:2: not valid JSON")
    assert "(3 new, 0 updated, 0 unchanged), 1 rejected" in said(result)
    db = Database.from_url(f"sqlite:///{fresh_install / 'clinicflow.db'}")
    try:
        with db.transaction() as session:
            assert summarize(session)["resources"] == {"Patient": 3}
    finally:
        db.dispose()


def test_a_missing_folder_exits_2_with_one_line_and_debug_adds_the_traceback(
    fresh_install: Path,
) -> None:
    missing = "no-such-export"  # relative to the working directory, as people type it
    plain = start(fresh_install, "sync", "folder", missing)
    debug = start(fresh_install, "--debug", "sync", "folder", missing)
    plain_result, debug_result = finish(plain), finish(debug)
    assert plain_result.returncode == 2
    assert plain_result.stdout == ""
    assert plain_result.stderr.strip() == f"error: {missing} is not a folder"
    assert debug_result.returncode == 2
    assert "Traceback (most recent call last)" in debug_result.stderr
    assert debug_result.stderr.rstrip().endswith(f"error: {missing} is not a folder")
