"""The urgent-message alarm in Chromium: it appears on a signed-in nurse's open page without a
reload, says nothing about the patient, and goes away once she acknowledges it."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect
from sqlalchemy import select
from tests.web.browser.browser_support import LiveApp, sign_in_through_pages
from tests.web.staff_support import add_person

from clinicflow.automations.triage import AUTOMATION as TRIAGE
from clinicflow.automations.triage.intake import post_message
from clinicflow.engine import EngineRuntime, InlineEnqueuer, Registry, dispatch_events
from clinicflow.security.audit import Actor
from clinicflow.security.permissions import Role
from clinicflow.security.phi import PhiCipher, keyring_from_settings
from clinicflow.store.triage import TriageMessage


def test_an_urgent_message_raises_the_alarm_on_an_open_page_and_acknowledge_clears_it(
    page: Page, live: LiveApp
) -> None:
    nina = add_person(live.db, live.settings, live.clock, "nina", Role.NURSE)
    sign_in_through_pages(page, nina, live)
    page.goto("/review")
    expect(page.locator("#urgent-messages")).to_have_count(0)

    cipher = PhiCipher(keyring_from_settings(live.settings, create=False))
    rt = EngineRuntime.build(
        db=live.db,
        settings=live.settings,
        clock=live.clock,
        cipher=cipher,
        registry=Registry([TRIAGE]),
    )
    with live.db.transaction() as session:
        post_message(
            session,
            cipher,
            text="I took all my pills, I want to die",
            patient_id=None,
            language=None,
            thread_ref=None,
            by=Actor.user("portal-bridge"),
            now=live.clock.now(),
        )
    with live.db.transaction() as session:
        runs = dispatch_events(session, registry=rt.registry, now=live.clock.now())
    for run_id in runs:
        InlineEnqueuer(rt).enqueue_run(run_id)

    alarm = page.locator("#urgent-messages")
    expect(alarm).to_be_visible(timeout=8000)  # the page polls every 5 s
    expect(alarm).to_contain_text("1 urgent patient message waiting")
    expect(alarm).not_to_contain_text("pills")
    page.locator("#acknowledge-urgent").click()
    expect(page).to_have_url(re.compile(r"/review/\d+"))
    expect(page.locator("#urgent-messages")).to_have_count(0, timeout=8000)
    with live.db.transaction() as session:
        (message,) = session.scalars(select(TriageMessage)).all()
        assert message.acknowledged_by == "nina"
