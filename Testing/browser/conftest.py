"""Browser tests: the real ``breast-subtype web`` server in a subprocess and Debian's headless Chromium.

Every test here is marked ``browser`` and skipped (with the reason) only when /usr/bin/chromium is
absent; CI installs it. The server listens on 127.0.0.1 on a free port and is stopped afterwards.
Rendering is offscreen: the tests choose VTK's OSMesa window themselves so no display is needed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from web_server import CHROMIUM, CHROMIUM_ARGS, WebServer


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is absent (apt-get install chromium)")
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists():
                item.add_marker(skip)


@pytest.fixture(scope="module")
def web_server(tmp_path_factory):
    """One server per test file: a server holds one session (one scene), so files start clean."""
    server = WebServer(tmp_path_factory.mktemp("web") / "server.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, web_server):
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(web_server.access_url)
    page.get_by_test_id("load-demo").wait_for()
    yield page
    context.close()
