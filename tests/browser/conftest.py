"""Fixtures for the browser tests: one `streamlit run app.py` on loopback and Debian's Chromium.

The server is started once per session (a subprocess of this Python, repo root as cwd) and killed
at the end. Chromium comes from apt (`/usr/bin/chromium`, installed by `.ci/run`); Playwright only
drives it (`playwright install` is never needed). Outside CI a missing Chromium skips these tests
with the reason printed; with CI set, it fails them.
"""

from __future__ import annotations

import os
import sys

import pytest

import st_driver as d
from st_server import CHROMIUM, CHROMIUM_ARGS, streamlit_server

# Streamlit reruns can be slow on a loaded 2-core machine; waits are on elements, never sleeps.
TIMEOUT_MS = d.TIMEOUT_MS


def pytest_configure(config):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_browser() -> None:
    """Skip (outside CI) or fail (in CI) when Chromium or Playwright is missing, saying why."""
    problems = []
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        problems.append(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        problems.append(f"the playwright package is not importable ({exc})")
    if not problems:
        return
    reason = "browser tests need " + "; ".join(problems)
    if in_ci():
        pytest.fail(f"CI is set but {reason}", pytrace=False)
    print(f"\nSKIP tests/browser: {reason}", file=sys.stderr)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def server(browser):
    """Base URL of one `streamlit run app.py` for the whole session.

    Its first visit is the entry page "/": Streamlit learns from that run that app.py navigates
    with st.navigation (a deep link as the very first request is tested on its own server in
    test_deep_link.py). The visit also pays the cold imports once, outside any test's timing.
    """
    with streamlit_server() as url:
        ctx = browser.new_context()
        ctx.set_default_timeout(max(TIMEOUT_MS, 120_000))
        try:  # only a visit: whether Home raises is test_pages' business
            warm = d.install(ctx.new_page())
            warm.goto(url)
            warm.wait_for_function("() => (window.__divlabRuns || 0) >= 1")
        finally:
            ctx.close()
        yield url


@pytest.fixture(scope="session")
def browser():
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def new_context(browser):
    """Factory of fresh browser contexts (no cookies, storage or session shared); closed after the test."""
    made = []

    def make():
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000},
                                  permissions=["clipboard-read", "clipboard-write"])
        ctx.set_default_timeout(TIMEOUT_MS)
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.close()


@pytest.fixture
def context(new_context):
    return new_context()


@pytest.fixture
def page(context):
    return context.new_page()

