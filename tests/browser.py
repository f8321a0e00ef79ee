"""A real headless browser for tests: Playwright driving Debian's Chromium (package `chromium`,
which scripts/install.sh installs). Playwright never downloads a browser of its own here: the
fixture launches /usr/bin/chromium by `executable_path`, and the `playwright` wheel carries its own
node driver, so nothing is fetched at run time. The fixtures reach every test through conftest's
pytest_plugins:

    def test_something(page):
        page.goto(url)
        expect(page.locator("h1")).to_have_text("Calls")

Fixtures:
- `browser` (module scope): one headless Chromium per test module that uses it, started with
  Playwright's sync API and closed after the module's last test (a launch costs well under a
  second; no browser lingers through the rest of the suite).
- `page` (function scope): a fresh browser context (its own cookies, storage and cache, so nothing
  leaks between tests) and a page in it, both closed after the test. Its default timeout is
  `TIMEOUT_MS`, shorter than Playwright's 30 s so that a broken page fails fast.

`launch_seconds` lists how long each launch took (Playwright start plus Chromium launch), newest last.

The sync API cannot run inside a running asyncio event loop: use these fixtures in plain (not async)
tests.
"""

import os
import shutil
import time
from typing import Iterator, List

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

# Irrelevant to the Python package (only `playwright install` downloads), but harmless: should
# anything ever run the npm package's install step, it must not try to fetch a browser either.
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

# As root in a container Chromium's sandbox cannot start, hence --no-sandbox (Playwright adds it too
# while chromium_sandbox is False, its default; explicit here). A container's /dev/shm may be as
# small as 64 MB, too small for Chromium's shared memory: --disable-dev-shm-usage uses /tmp instead
# (Debian's launcher script means to add it when /dev/shm is small, but its check breaks when
# findmnt reports /dev/shm twice, as it does on some machines).
LAUNCH_ARGS = ["--no-sandbox", "--disable-dev-shm-usage"]
TIMEOUT_MS = 10_000

launch_seconds: List[float] = []


def chromium_path() -> str:
    """Debian's Chromium launcher, or a clear failure naming the package to install."""
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("no 'chromium' on PATH: install the Debian package 'chromium' "
                    "(scripts/install.sh does; apt-get install --no-install-recommends chromium). "
                    "Playwright's own browser builds are not used here.", pytrace=False)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium under Playwright, one per test module."""
    executable = chromium_path()
    started = time.monotonic()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True,
                                              args=LAUNCH_ARGS, timeout=60_000)
        launch_seconds.append(time.monotonic() - started)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh browser context of its own."""
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()
