"""Head anchors: the chain head saved outside the database once a day."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from clinicflow.clock import FakeClock
from clinicflow.errors import SecurityError
from clinicflow.security.audit import (
    Actor,
    anchor_dir_for,
    is_anchor_due,
    read_anchors,
    record_access,
    write_head_anchor,
)
from clinicflow.security.audit_verify import verify_chain
from clinicflow.store import Database


def test_anchor_files_live_in_the_data_dir_and_only_their_owner_can_read_them(
    sqlite_db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    anchors = anchor_dir_for(tmp_path / "var")
    with sqlite_db.transaction() as session:
        record_access(session, Actor.user("alice"), "read", ["Patient/p1"], at=clock.now())
    with sqlite_db.transaction() as session:
        path = write_head_anchor(session, anchors, clock.now())
        write_head_anchor(session, anchors, clock.now() + timedelta(hours=1))

    assert path == tmp_path / "var" / "audit-anchors" / "2026-11-23.jsonl"
    assert path.stat().st_mode & 0o777 == 0o600
    assert anchors.stat().st_mode & 0o777 == 0o700
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["seq"] for line in lines] == [1, 1]
    assert lines[0]["written_at"] == "2026-11-23T14:00:00+00:00"


def test_an_anchor_is_due_once_per_utc_day(
    sqlite_db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    anchors = tmp_path / "audit-anchors"
    assert is_anchor_due(anchors, clock.now())
    with sqlite_db.transaction() as session:
        write_head_anchor(session, anchors, clock.now())

    assert not is_anchor_due(anchors, clock.now())
    clock.advance(timedelta(hours=9, minutes=59))  # 23:59 UTC, still the same day
    assert not is_anchor_due(anchors, clock.now())
    clock.advance(timedelta(minutes=1))
    assert is_anchor_due(anchors, clock.now())


def test_an_anchor_of_an_empty_log_verifies(db: Database, clock: FakeClock, tmp_path: Path) -> None:
    anchors = tmp_path / "audit-anchors"
    with db.transaction() as session:
        write_head_anchor(session, anchors, clock.now())

    with db.transaction() as session:
        result = verify_chain(session, read_anchors(anchors))
    assert result.ok
    assert read_anchors(anchors)[0].seq == 0


def test_a_chain_that_grew_after_its_anchors_still_verifies(
    db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    anchors = tmp_path / "audit-anchors"
    for day in range(3):
        with db.transaction() as session:
            record_access(session, Actor.user("alice"), "read", [f"Patient/p{day}"], at=clock.now())
        with db.transaction() as session:
            write_head_anchor(session, anchors, clock.now())
        clock.advance(timedelta(days=1))
    with db.transaction() as session:
        record_access(session, Actor.user("bob"), "read", ["Patient/p9"], at=clock.now())

    with db.transaction() as session:
        result = verify_chain(session, read_anchors(anchors))
    assert result.ok
    assert (result.head_seq, result.anchors_checked) == (4, 3)


def test_an_unreadable_anchor_line_is_named(tmp_path: Path) -> None:
    anchors = tmp_path / "audit-anchors"
    anchors.mkdir()
    (anchors / "2026-11-23.jsonl").write_text('{"seq": 1, "row_hash": "ab", "written_at": "x"}\n')

    with pytest.raises(SecurityError, match=r"2026-11-23.jsonl, line 1"):
        read_anchors(anchors)


def test_no_anchor_dir_means_no_anchors(tmp_path: Path) -> None:
    assert read_anchors(tmp_path / "missing") == []
