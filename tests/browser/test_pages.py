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


# How each page shows its main figure: numbers to set (small sizes), the button to press (None: the
# page draws on load), and the key of the figure to wait for (None: the first figure on the page).
SHOW = {
    "fit_1d": ({"steps": STEPS}, "Run", "fit1d_anim"),
    "fit_2d": ({"steps": 40}, "Run", "fit2d_anim"),
    "race": ({}, "Run the race", "race_chart"),
    "flows": ({"particles": 60, "steps": 40}, "Run", "flows_anim"),
    "families": ({}, None, "fam_anim"),
    "landscape": ({}, None, None),
    "calculator": ({}, None, None),
    "theory": ({}, None, "theory_fh"),
    "home": ({}, None, None),
}


def show(page, name: str):
    """Set the page's controls, press its button, and return its main figure once drawn."""
    numbers, button, key = SHOW.get(name, ({}, None, None))
    for label, value in numbers.items():
        d.set_number(page, label, value)
    if button is not None:
        d.click_button(page, button)
    plot = (page.locator(f'[data-testid="stMain"] .st-key-{key} .js-plotly-plot') if key else d.plots(page)).first
    plot.wait_for()
    d.wait_idle(page)
    return plot


def play_to_end(page, plot) -> None:
    """Wait for a playing animation's last frame (for a screenshot of the end state)."""
    if not d.plot_state(plot)["frames"]:
        return
    plot.page.wait_for_function(
        "(el) => { const s = el._fullLayout.sliders[0]; return s.active === s.steps.length - 1; }",
        arg=plot.element_handle())


# The boxes of a figure's legend, Play/Pause buttons, slider, x-axis and panel titles as drawn (CSS pixels).
CONTROL_BOXES = r"""
(el) => {
  const box = e => { const r = e.getBoundingClientRect();
                     return {top: r.top, bottom: r.bottom, left: r.left, right: r.right}; };
  const out = {};
  for (const [name, sel] of [["legend", "g.legend"], ["slider", "g.slider-container"],
                             ["buttons", "g.updatemenu-container"]]) {
    const e = el.querySelector(sel);
    if (e) out[name] = box(e);
  }
  el.querySelectorAll("g.infolayer g[class$='title']").forEach((e, i) => {
    if (/^g-x\d*title$/.test(e.getAttribute("class")) && e.getBBox().height > 0) out["x title " + i] = box(e);
  });
  el.querySelectorAll("g.annotation").forEach((e, i) => { out["panel title " + i] = box(e); });
  return out;
}
"""


def assert_controls_apart(plot, name: str) -> None:
    """Issue 6: none of legend, Play/Pause and slider overlaps another or an x-axis or panel title."""
    boxes = plot.evaluate(CONTROL_BOXES)
    assert {"legend", "slider", "buttons"} <= set(boxes), boxes
    names = sorted(boxes)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if a.endswith(tuple("0123456789")) and b.endswith(tuple("0123456789")):
                continue  # two titles
            p, q = boxes[a], boxes[b]
            apart = (p["bottom"] <= q["top"] or q["bottom"] <= p["top"]
                     or p["right"] <= q["left"] or q["right"] <= p["left"])
            assert apart, f"{name}: the {a} {p} overlaps the {b} {q}"


def test_navigation_lists_every_page(server, page):
    d.install(page)
    d.open_page(page, server)
    links = page.locator('[data-testid="stSidebarNav"] a[data-testid="stSidebarNavLink"]')
    titles = [t.strip() for t in links.locator('[data-testid="stMarkdownContainer"]').all_inner_texts()]
    assert titles == [p["title"] for p in PAGES]
    paths = [urlsplit(h).path.strip("/") for h in (links.nth(i).get_attribute("href") for i in range(len(titles)))]
    assert paths == [p["url_path"] for p in PAGES]


@pytest.mark.parametrize("spec", PAGES, ids=[p["name"] for p in PAGES])
def test_page_opens_runs_and_draws(server, page, spec):
    d.install(page)
    d.open_page(page, server, spec["url_path"])
    title = page.locator('[data-testid="stMain"] h1').first.inner_text()
    assert title.strip()
    plot = show(page, spec["name"])
    d.assert_no_exception(page)
    state = d.plot_state(plot)
    assert state["traces"], f"{spec['name']}: the figure has no traces"
    if state["frames"]:  # an animation: Play moves its slider and redraws
        assert state["sliderSteps"] == state["frames"]
        assert_controls_apart(plot, spec["name"])
        plot.locator("g.updatemenu-button", has_text="Play").first.click()
        page.wait_for_function("([el, a]) => el._fullLayout.sliders[0].active !== a",
                               arg=[plot.element_handle(), state["sliderActive"]])
        assert d.plot_state(plot)["traces"] != state["traces"]  # the frame on screen changed
        pause = plot.locator("g.updatemenu-button", has_text="Pause")
        if pause.count() and not d.screenshots_enabled():
            pause.first.click()
    if d.screenshots_enabled():
        play_to_end(page, plot)
        d.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        d.save_screenshot(page, d.SCREENSHOTS / f"{spec['name']}.png")
