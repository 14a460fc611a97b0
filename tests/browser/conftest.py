"""Browser suite: pytest-playwright driving Debian's Chromium against tools/serve.py on a free port."""

from __future__ import annotations

from pathlib import Path

import pytest

from samtab_tools.browser import BOOT_TIMEOUT_MS, EVENT_RECORDER, RequestLog, SiteServer, launch_args

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    # One Chromium per session (pytest-playwright's `browser` fixture), started from /usr/bin/chromium.
    return {**browser_type_launch_args, **launch_args()}


ROOT = HERE.parent.parent


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    # Playwright's request routing (used to simulate failures) does not see what a service worker fetches,
    # so the `page` fixture's contexts run without one; tests of the service worker make their own context.
    return {**browser_context_args, "service_workers": "block"}


@pytest.fixture(scope="session")
def site(sam2_model):
    """tools/serve.py on a free port, with the runtime, the baseline demos and, for the SAM2.1 tests, the
    random-init SAM2.1 tiny (serve.py encodes the demos with it too)."""
    server = SiteServer()
    yield server
    server.stop()


@pytest.fixture
def requests_seen(context):
    log = RequestLog()
    context.on("request", log.record)
    return log


@pytest.fixture
def app(page, site, requests_seen):
    """A page with the samtab:* event recorder installed, not yet navigated."""
    page.add_init_script(EVENT_RECORDER)
    page.set_default_timeout(BOOT_TIMEOUT_MS)
    return page
