"""What browser tests share: the live app's handle, signing in through the pages, work items."""

from __future__ import annotations

import re
from dataclasses import dataclass

from playwright.sync_api import Page, expect
from tests.web.staff_support import Person

from clinicflow.clock import FakeClock
from clinicflow.engine import Priority, WorkItemId, open_work_item
from clinicflow.security.phi import PhiCipher, keyring_from_settings
from clinicflow.settings import Settings
from clinicflow.store import Database


@dataclass(frozen=True)
class LiveApp:
    """The app as the browser reaches it, and what the test shares with it."""

    url: str
    db: Database
    settings: Settings
    clock: FakeClock


def type_password(page: Page, person: Person) -> None:
    """The first sign-in step: username and password on /sign-in."""
    page.goto("/sign-in")
    page.get_by_label("Username").fill(person.username)
    page.get_by_label("Password").fill(person.password)
    page.get_by_role("button", name="Continue").click()


def sign_in_through_pages(page: Page, person: Person, live: LiveApp) -> None:
    """Password, then the code the person's authenticator shows (a fresh 30 s step)."""
    type_password(page, person)
    expect(page).to_have_url(re.compile(r"/sign-in/mfa"))
    page.get_by_label("Code").fill(person.code(live.clock))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def open_item(
    live: LiveApp,
    key: str,
    description: str,
    *,
    pool: str = "front-desk",
    priority: Priority = Priority.ROUTINE,
) -> WorkItemId:
    """A work item waiting in `pool`, as an automation would open it."""
    cipher = PhiCipher(keyring_from_settings(live.settings, create=False))
    with live.db.transaction() as session:
        opened = open_work_item(
            session,
            cipher,
            key=key,
            pool=pool,
            description=description,
            actor="automation:test",
            now=live.clock.now(),
            priority=priority,
        )
    return opened.id
