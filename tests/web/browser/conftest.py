"""Browser tests: the real app served by uvicorn on loopback, driven by headless system Chromium.

The server runs in a thread of the test process, over the test's SQLite database and FakeClock,
so a test can open work items in the database, move time on and then look at the page.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import (
    Browser,
    Page,
    Playwright,
    ViewportSize,
    expect,
    sync_playwright,
)
from tests.web.browser.browser_support import LiveApp
from tests.web.staff_support import staff_settings

from clinicflow.clock import FakeClock
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.web import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Two busy cores run the suite: give a page time before an expectation counts as failed.
EXPECT_TIMEOUT_MS = 15_000
VIEWPORT = ViewportSize(width=1280, height=800)


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    """Playwright's driver, once per test process."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    """Headless Debian Chromium (never a browser Playwright downloads)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}: the browser tests need it. Install it with "
            "`apt-get install -y chromium` (.ci/run does this), then run the tests again."
        )
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    launched = playwright_driver.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
    )
    yield launched
    launched.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return staff_settings(tmp_path)


@pytest.fixture
def live(sqlite_db: Database, settings: Settings, clock: FakeClock) -> Iterator[LiveApp]:
    """The real app served by uvicorn on a free loopback port, in a background thread."""
    # The socket listens before the server starts, so an early request waits in the backlog
    # instead of being refused: no polling for the server to come up.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    app = create_app(settings, db=sqlite_db, clock=clock)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        answer = httpx.get(f"{url}/healthz", timeout=30)
        assert answer.status_code == 200, f"the live server did not come up: {answer.text}"
        yield LiveApp(url=url, db=sqlite_db, settings=settings, clock=clock)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        assert not thread.is_alive(), "the live server did not stop within 30 s"


@pytest.fixture
def page(browser: Browser, live: LiveApp) -> Iterator[Page]:
    """A fresh browser profile (no cookies) on the live app, at a laptop's window size."""
    context = browser.new_context(base_url=live.url, viewport=VIEWPORT)
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    tab = context.new_page()
    yield tab
    context.close()
