"""`clinicflow impact report` as a process, on a fresh synthetic practice."""

from __future__ import annotations

import json
from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.cli.cli_process import clinicflow, said

from clinicflow.clock import SystemClock

ZONE = ZoneInfo("America/New_York")  # the embedded default's practice zone


def test_reminders_then_impact_report_shows_hours_saved_on_a_fresh_practice(
    tmp_path: Path,
) -> None:
    practice = tmp_path / "practice"
    today = SystemClock().now().astimezone(ZONE).date()
    # 10:00 in the practice's zone on the practice's first day: texts are outside quiet hours.
    morning = datetime.combine(today, time(10, 0), tzinfo=ZONE).isoformat()
    steps = [
        ("db", "upgrade"),
        (
            "synth",
            "--seed",
            "3",
            "--patients",
            "120",
            "--anchor-date",
            today.isoformat(),
            "--out",
            str(practice),
        ),
        ("sync", "folder", str(practice)),
        ("run", "appointment-reminders", "--now", morning),
    ]
    for step in steps:
        done = clinicflow(tmp_path, *step)
        assert done.returncode == 0, (step, done.stderr)
    report = clinicflow(tmp_path, "impact", "report", "--weeks", "2", "--json", "--now", morning)
    assert report.returncode == 0, report.stderr
    printed = json.loads(report.stdout)
    assert printed["hours_saved"] > 0, printed
    (reminders,) = [
        line for line in printed["lines"] if line["automation"] == "appointment-reminders"
    ]
    sent = reminders["units"]["reminder_sent"]
    assert reminders["minutes_saved"] == sent * reminders["minutes_per_unit"]["reminder_sent"]
    html = tmp_path / "board.html"
    shown = clinicflow(
        tmp_path, "impact", "report", "--weeks", "2", "--html", str(html), "--now", morning
    )
    assert shown.returncode == 0, shown.stderr
    assert "staff hours saved" in said(shown)
    assert "<svg" in html.read_text(encoding="utf-8")
