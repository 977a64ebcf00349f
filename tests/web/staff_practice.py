"""What the staff page tests share besides their fixtures (`tests/web/staff/conftest.py`)."""

from __future__ import annotations

import html
import re
from datetime import date

from tests.web.staff_support import Person, add_person

from clinicflow.clock import FakeClock
from clinicflow.security.permissions import Role
from clinicflow.settings import Settings
from clinicflow.store import Database

DAY = date(2026, 11, 23)


def page_text(page: str) -> str:
    """A page's text, tags gone and whitespace folded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def person(db: Database, settings: Settings, clock: FakeClock, role: Role) -> Person:
    """Someone of `role`, MFA set up, named after the role."""
    return add_person(db, settings, clock, role.value.replace("-", ""), role)
