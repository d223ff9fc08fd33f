"""A link to a page (e.g. a share link to /fit_1d?s=...) must work as the very first request a
freshly started server gets: the app shell (app.py's navigation and sidebar) runs, not the page
file alone. This needs its own server, since any earlier visit to "/" teaches Streamlit that
app.py uses st.navigation.
"""

from __future__ import annotations

import pytest

import st_driver as d
from divlab import app_support as sup
from st_server import streamlit_server


def test_deep_link_as_first_request_to_a_fresh_server_runs_the_app_shell(new_context):
    sc = sup.default_scenario()
    with streamlit_server() as url:
        page = d.install(new_context().new_page())
        page.set_default_timeout(max(d.TIMEOUT_MS, 120_000))  # cold imports on this fresh server
        d.open_page(page, url, "fit_1d", sup.share_query(sc).lstrip("?"))
        sidebar = page.locator('[data-testid="stSidebar"]')
        titles = sidebar.locator('[data-testid="stSidebarNavLink"] [data-testid="stMarkdownContainer"]')
        # the bare first run hands over to app.py (st.rerun), which switches to the linked page: several
        # script runs, and open_page may return in the pause between two of them. The app shell has run
        # once its sidebar shows the share link, which app.py writes after the page ran.
        sidebar.get_by_text("Share link").wait_for()
        d.wait_idle(page)
        d.assert_no_exception(page)
        assert titles.first.text_content().strip() == sup.PAGE_TITLES["home"], titles.all_text_contents()
        assert "Share link" in sidebar.inner_text()
        # ... on the linked page, with the linked scenario (the share link it shows is the one opened)
        assert d.main(page).locator("h1").first.text_content().strip() == sup.PAGE_TITLES["fit_1d"]
        link = sidebar.locator('[data-testid="stCode"]').last.inner_text()
        assert link.endswith(sup.share_query(sc)), link
