"""Every page of the app opens in a real Chromium without an exception and shows its figure.

With DIVLAB_SCREENSHOTS=1 the same tests save assets/screenshots/<page>.png (the README's pictures);
without it they write nothing, so CI never rewrites tracked files.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
import st_driver as d
from divlab import app_support as sup

# The pages app.py registers: the page files present, in the navigation's order, with their titles.
PAGES = [{"name": n, "title": sup.PAGE_TITLES[n], "url_path": "" if n == "home" else Path(f).stem}
         for n, f in sup.PAGE_FILES.items() if (d.ROOT / f).exists()]
STEPS = 60  # small fits keep the browser suite fast; the benchmark measures the real sizes


def show_fit_1d(page):
    d.set_number(page, "steps", STEPS)
    d.click_button(page, "Run")
    d.plots(page).first.wait_for()


# What to do on a page so that it shows its main figure (pages that draw on load need nothing).
SHOW = {"fit_1d": show_fit_1d}


def test_navigation_lists_every_page(server, page):
    d.install(page)
    d.open_page(page, server)
    links = page.locator('[data-testid="stSidebarNav"] a[data-testid="stSidebarNavLink"]')
    titles = [t.strip() for t in links.locator('[data-testid="stMarkdownContainer"]').all_inner_texts()]
    assert titles == [p["title"] for p in PAGES]
    paths = [urlsplit(h).path.strip("/") for h in (links.nth(i).get_attribute("href") for i in range(len(titles)))]
    assert paths == [p["url_path"] for p in PAGES]


@pytest.mark.parametrize("spec", PAGES, ids=[p["name"] for p in PAGES])
def test_page_opens_without_exception(server, page, spec):
    d.install(page)
    d.open_page(page, server, spec["url_path"])
    title = page.locator('[data-testid="stMain"] h1').first.inner_text()
    assert title.strip()
    show = SHOW.get(spec["name"])
    if show is not None:
        show(page)
        d.assert_no_exception(page)
        state = d.plot_state(d.plots(page).first)
        assert state["traces"], f"{spec['name']}: the figure has no traces"
    if d.screenshots_enabled():
        d.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        d.save_screenshot(page, d.SCREENSHOTS / f"{spec['name']}.png")
