"""The Impact page in Chromium: the charts render their bars and rate lines, the CSV downloads."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from playwright.sync_api import Page, expect
from tests.web.browser.browser_support import LiveApp, sign_in_through_pages
from tests.web.staff_support import add_person

from clinicflow.ehr import sync_folder
from clinicflow.engine import Automation, EngineRuntime, Manual, Registry, RunContext, Unit, run_now
from clinicflow.security.permissions import Role
from clinicflow.security.phi import PhiCipher, keyring_from_settings
from clinicflow.synth import write_practice


def _checks(ctx: RunContext) -> None:
    ctx.count("provider_day_checked", 45)


# A stand-in under a name the app's own registry knows, so the page reads the real
# automation's owner and minutes per unit (2 minutes a provider-day checked).
DIGEST = Automation(
    name="daily-digest",
    summary="stand-in counting units (tests)",
    trigger=Manual(),
    run=_checks,
    owner="scheduler",
    units=(Unit("provider_day_checked", minutes_saved=2.0),),
)


def test_leadership_sees_hours_saved_as_a_chart_and_downloads_the_lines_as_csv(
    page: Page, live: LiveApp, tmp_path: Path
) -> None:
    cipher = PhiCipher(keyring_from_settings(live.settings, create=False))
    # A synthetic practice whose past visits give the no-show rate line its points.
    folder = tmp_path / "practice"
    write_practice(folder, seed=3, patients=60, anchor_on=live.clock.now().date())
    sync_folder(live.db, cipher, live.clock, folder)
    rt = EngineRuntime.build(
        db=live.db,
        settings=live.settings,
        clock=live.clock,
        cipher=cipher,
        registry=Registry([DIGEST]),
    )
    for week in (2, 1, 0):  # a run in each of the last three weeks
        live.clock.advance(timedelta(days=7) if week < 2 else timedelta(0))
        run_now(rt, "daily-digest", requested_by="test")
    lee = add_person(live.db, live.settings, live.clock, "lee", Role.LEADERSHIP)
    sign_in_through_pages(page, lee, live)

    page.get_by_role("navigation").get_by_role("link", name="Impact").click()
    expect(page.get_by_role("heading", name="Staff hours saved per week")).to_be_visible()
    hours, money = page.locator("svg.chart").nth(0), page.locator("svg.chart").nth(1)
    expect(hours).to_have_attribute("aria-label", "Staff hours saved per week")
    expect(money).to_have_attribute("aria-label", "Money saved per week")
    bars = hours.locator("rect.bar")
    expect(bars).to_have_count(3)
    expect(money.locator("rect.bar")).to_have_count(3)
    box = bars.first.bounding_box()
    assert box is not None
    assert box["height"] > 0  # drawn, not an empty element
    expect(page.locator("#impact-lines tbody tr")).to_have_count(3)
    rates = page.locator("#rates-chart svg.chart")
    expect(rates).to_have_attribute("aria-label", "No-show and confirmation rates per week")
    expect(rates.locator("polyline").first).to_be_visible()
    assert rates.locator("circle.point").count() >= 2  # a point per week with visits

    with page.expect_download() as caught:
        page.locator("#impact-csv").click()
    saved = tmp_path / "impact.csv"
    caught.value.save_as(saved)
    lines = saved.read_text(encoding="utf-8").strip().splitlines()
    assert lines[0].startswith("week_of,automation,runs,units,minutes_saved")
    assert len(lines) == 4
    assert all(",daily-digest,1," in line for line in lines[1:])
