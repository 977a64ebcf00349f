"""`clinicflow messages`: staff pause and resume every patient message, and see who paused them."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.cli_process import clinicflow


def test_pause_shows_who_and_why_and_resume_lets_messages_flow(tmp_path: Path) -> None:
    assert clinicflow(tmp_path, "db", "upgrade").returncode == 0
    paused = clinicflow(tmp_path, "messages", "pause", "--reason", "snow day")
    assert paused.returncode == 0, paused.stderr
    state = json.loads(clinicflow(tmp_path, "messages", "status", "--json").stdout)
    assert state["paused"] is True
    assert state["reason"] == "snow day"
    assert clinicflow(tmp_path, "messages", "resume").returncode == 0
    state = json.loads(clinicflow(tmp_path, "messages", "status", "--json").stdout)
    assert state == {"paused": False}
    audit = clinicflow(tmp_path, "audit", "verify")
    assert audit.returncode == 0, audit.stderr
