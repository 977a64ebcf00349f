"""The pages the README shows, from a synthetic practice: Today and the review queue.

Each run overwrites docs/screenshots/*.png, so the README shows the pages as the code draws them.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from tests.web.browser.browser_support import LiveApp, open_item, sign_in_through_pages
from tests.web.staff_support import add_person

from clinicflow.ehr import sync_folder
from clinicflow.engine import Priority
from clinicflow.security.permissions import Role
from clinicflow.security.phi import PhiCipher, keyring_from_settings
from clinicflow.synth import write_practice

SCREENSHOTS = Path(__file__).parents[3] / "docs" / "screenshots"
ANCHOR = date(2026, 11, 23)  # the `clock` fixture's day in New York, a Monday
# Only the anchor day's slots and visits are kept: the board shows one day, and the year of
# history would make the sync take seconds instead of a fraction of one.
_START = re.compile(rb'"start":"(\d{4}-\d{2}-\d{2})')


@pytest.fixture(scope="module")
def practice_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 200-patient synthetic practice with the visits of the anchor day only."""
    out = tmp_path_factory.mktemp("practice")
    write_practice(out, seed=11, patients=200, anchor_on=ANCHOR, timezone="America/New_York")
    day = ANCHOR.isoformat().encode()
    for rtype in ("Slot", "Appointment"):
        path = out / f"{rtype}.ndjson"
        kept = [
            line
            for line in path.read_bytes().splitlines(keepends=True)
            if (match := _START.search(line)) and match.group(1) == day
        ]
        path.write_bytes(b"".join(kept))
    return out


def _save(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # The urgent alarm pulses: with animations stopped, the same page gives the same bytes.
    page.screenshot(path=str(SCREENSHOTS / name), animations="disabled")


def test_today_board_lists_the_days_visits_by_provider_and_is_saved_as_a_screenshot(
    page: Page, live: LiveApp, practice_dir: Path
) -> None:
    cipher = PhiCipher(keyring_from_settings(live.settings, create=False))
    report = sync_folder(live.db, cipher, live.clock, practice_dir)
    assert not report.rejected
    dana = add_person(live.db, live.settings, live.clock, "dana", Role.FRONT_DESK)
    sign_in_through_pages(page, dana, live)
    expect(page).to_have_url(re.compile(r"/today$"))
    expect(page.get_by_role("heading", name="Today Monday 23 November 2026")).to_be_visible()
    expect(page.locator("#today-summary")).to_contain_text(re.compile(r"^\d+ visits"))
    expect(page.locator("section.provider").first).to_be_visible()
    assert page.locator("tr.visit").count() > 20
    _save(page, "today.png")


def test_review_queue_shows_urgent_items_above_routine_ones_and_is_saved_as_a_screenshot(
    page: Page, live: LiveApp
) -> None:
    dana = add_person(live.db, live.settings, live.clock, "dana", Role.FRONT_DESK)
    open_item(
        live,
        "demo:triage:1",
        "Portal message mentions chest pain since this morning: call the patient now",
        priority=Priority.URGENT,
    )
    open_item(
        live,
        "demo:eligibility:1",
        "Coverage inactive for Tue 10:30 visit (payer 271: plan terminated): ask for a new card",
    )
    open_item(
        live,
        "demo:reminder:1",
        "Reminder for Wed 09:15 not sent: this mobile number opted out of texts. Please call.",
    )
    open_item(
        live,
        "demo:digest:1",
        "Dr. Okafor's Thursday morning session is overbooked by 2 visits",
        pool="scheduling",
    )
    sign_in_through_pages(page, dana, live)
    page.goto("/review?pool=all")
    expect(page.locator("#urgent-alarm")).to_be_visible()
    expect(page.locator("table.queue.urgent tr.work-item")).to_have_count(1)
    expect(page.locator("table.queue:not(.urgent) tr.work-item")).to_have_count(3)
    _save(page, "review-queue.png")
