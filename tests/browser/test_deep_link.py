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
        # the first run has finished (open_page waited for it): what is there now is what a visitor sees
        assert titles.first.text_content().strip() == sup.PAGE_TITLES["home"], titles.all_text_contents()
        assert "Share link" in sidebar.inner_text()
