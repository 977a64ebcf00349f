"""Signing in as a person does it in Chromium: password and code, enrolment, idle logoff."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
from playwright.sync_api import Page, expect
from tests.web.browser.browser_support import LiveApp, sign_in_through_pages, type_password
from tests.web.staff_support import add_person

from clinicflow.security.permissions import Role


def test_password_and_authenticator_code_sign_a_front_desk_user_in_to_today(
    page: Page, live: LiveApp
) -> None:
    dana = add_person(live.db, live.settings, live.clock, "dana", Role.FRONT_DESK)
    type_password(page, dana)
    expect(page.get_by_role("heading", name="Two-step check")).to_be_visible()
    page.get_by_label("Code").fill(dana.code(live.clock))
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/today$"))
    expect(page.get_by_role("heading", name=re.compile(r"^Today"))).to_be_visible()
    expect(page.locator("header .who")).to_have_text("Dana · front-desk")


def test_first_sign_in_enrols_the_authenticator_and_shows_ten_recovery_codes_once(
    page: Page, live: LiveApp
) -> None:
    rosa = add_person(live.db, live.settings, live.clock, "rosa", Role.NURSE, enrolled=False)
    type_password(page, rosa)
    expect(page).to_have_url(re.compile(r"/mfa/enrol"))
    expect(page.locator(".qr svg")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text().strip()
    live.clock.advance(timedelta(seconds=30))
    page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).at(live.clock.now()))
    page.get_by_role("button", name="Turn on").click()
    codes = page.locator("#recovery-codes li")
    expect(codes).to_have_count(10)
    shown = [c.strip() for c in codes.all_inner_texts()]
    assert len(set(shown)) == 10, shown
    page.get_by_role("link", name="I have kept them: continue").click()
    expect(page).to_have_url(re.compile(r"/today$"))
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_a_page_reloaded_after_16_idle_minutes_is_the_sign_in_page(
    page: Page, live: LiveApp
) -> None:
    dana = add_person(live.db, live.settings, live.clock, "dana", Role.FRONT_DESK)
    sign_in_through_pages(page, dana, live)
    expect(page.locator("body")).to_have_attribute("data-idle-seconds", "900")
    live.clock.advance(timedelta(minutes=16))
    page.reload()
    expect(page).to_have_url(re.compile(r"/sign-in\?next="))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
