"""`clinicflow impact report` as a process, on a fresh synthetic practice."""

from __future__ import annotations

import json
from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.cli.cli_process import clinicflow, said
from tests.impact.pdf_text import pdf_text

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
    # The synthetic practice's past two weeks have visits seen and missed: the trends count them.
    trend_weeks = printed["trends"]["weeks"]
    assert len(trend_weeks) == 2
    assert sum(w["visits_with_outcome"] for w in trend_weeks) > 0
    for week in trend_weeks:
        expected = week["visits_with_outcome"] * printed["trends"]["baseline_noshow_rate"]
        assert week["noshows_avoided"] == round(max(0.0, expected - week["noshows"]), 2)

    html, pdf = tmp_path / "board.html", tmp_path / "board.pdf"
    shown = clinicflow(
        tmp_path,
        "impact",
        "report",
        "--weeks",
        "2",
        "--html",
        str(html),
        "--pdf",
        str(pdf),
        "--now",
        morning,
    )
    assert shown.returncode == 0, shown.stderr
    terminal = said(shown)
    assert "staff hours saved" in terminal
    assert "No-show and confirmation rates" in terminal
    page = html.read_text(encoding="utf-8")
    assert page.count("<svg") == 3  # hours, money, rates
    assert "<polyline" in page  # the rates drawn as lines
    text = pdf_text(pdf.read_bytes())
    assert f"{printed['hours_saved']:.1f} staff hours saved" in text
    assert "No-show and confirmation rates" in text
    assert "appointment-reminders" in text
