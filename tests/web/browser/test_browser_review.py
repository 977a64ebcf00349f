"""The review queue and what each role sees, in Chromium: work an item through, refusals, alarms."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect
from tests.web.browser.browser_support import LiveApp, open_item, sign_in_through_pages
from tests.web.staff_support import add_person

from clinicflow.engine import Priority, WorkItemStatus, get_work_item
from clinicflow.security.permissions import Role
from clinicflow.security.phi import PhiCipher, keyring_from_settings

NOTE = "Called the patient back: new card on file, copay confirmed."


def test_front_desk_claims_notes_and_resolves_a_work_item_and_it_leaves_the_queue(
    page: Page, live: LiveApp
) -> None:
    dana = add_person(live.db, live.settings, live.clock, "dana", Role.FRONT_DESK)
    item_id = open_item(live, "test:insurance:1", "Insurance card expired for the 10:30 visit")
    open_item(live, "test:callback:2", "Patient asked for a call back about parking")
    sign_in_through_pages(page, dana, live)

    page.get_by_role("navigation").get_by_role("link", name="Review queue").click()
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    rows = page.locator("tr.work-item")
    expect(rows).to_have_count(2)
    page.get_by_role("link", name="Insurance card expired for the 10:30 visit").click()
    expect(page).to_have_url(re.compile(rf"/review/{item_id}$"))
    expect(page.locator("#item-status")).to_have_text("requested")

    page.locator("#claim").click()
    expect(page.locator("#item-status")).to_have_text("accepted · dana")
    page.get_by_label("Note").fill(NOTE)
    page.locator("#add-note").click()
    expect(page.locator("ul.notes li")).to_contain_text([NOTE])
    page.locator("#resolve").click()

    expect(page).to_have_url(re.compile(r"/review$"))
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text(["Patient asked for a call back about parking"])
    expect(page.get_by_text("Insurance card expired")).to_have_count(0)
    cipher = PhiCipher(keyring_from_settings(live.settings, create=False))
    with live.db.transaction() as session:
        stored = get_work_item(session, cipher, item_id, reader="test", now=live.clock.now())
    assert stored.status is WorkItemStatus.COMPLETED
    assert [(n.author, n.text) for n in stored.notes] == [("dana", NOTE)]


def test_a_nurse_sees_no_automations_link_and_gets_not_for_your_role_at_automations(
    page: Page, live: LiveApp
) -> None:
    rosa = add_person(live.db, live.settings, live.clock, "rosa", Role.NURSE)
    sign_in_through_pages(page, rosa, live)
    nav = page.get_by_role("navigation")
    expect(nav.get_by_role("link", name="Today")).to_be_visible()
    expect(nav.get_by_role("link", name="Automations")).to_have_count(0)

    answer = page.goto("/automations")
    assert answer is not None
    assert answer.status == 403
    expect(page.get_by_role("heading", name="Not for your role")).to_be_visible()
    expect(page.get_by_text("Your role (nurse) cannot open this page")).to_be_visible()


def test_an_urgent_work_item_raises_the_alarm_at_the_top_of_every_page_for_the_front_desk(
    page: Page, live: LiveApp
) -> None:
    dana = add_person(live.db, live.settings, live.clock, "dana", Role.FRONT_DESK)
    urgent_id = open_item(
        live, "test:urgent:1", "Chest pain reported in a portal message", priority=Priority.URGENT
    )
    routine_id = open_item(live, "test:routine:1", "Update the fax number of Dr. Lee's office")
    sign_in_through_pages(page, dana, live)

    alarm = page.locator("#urgent-alarm")
    for path in ("/today", "/review", f"/review/{urgent_id}", f"/review/{routine_id}"):
        page.goto(path)
        expect(alarm).to_be_visible()
        expect(alarm).to_have_text("1 urgent item waiting in the review queue")
        alarm_box, main_box = alarm.bounding_box(), page.locator("main").bounding_box()
        assert alarm_box is not None
        assert main_box is not None
        assert alarm_box["y"] < main_box["y"], f"the alarm is not above the page on {path}"

    alarm.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"/review\?pool=all$"))
    expect(page.locator("table.queue.urgent tr.work-item")).to_contain_text(["Chest pain"])
