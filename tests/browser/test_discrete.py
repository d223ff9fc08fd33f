"""The Discrete page in a real Chromium (issue 15): it opens on a lesson's link, draws the students'
animated bars (one colour per divergence) and the frontier, and Play moves the animation.

With DIVLAB_SCREENSHOTS=1 it saves assets/screenshots/discrete.png at 1400×900 (the README's picture)."""

from __future__ import annotations

import st_driver as d

import divlab as dl
from divlab.viz import color_for


def test_discrete_lesson_draws_students_and_frontier(server, page):
    page.set_viewport_size({"width": 1400, "height": 900})
    d.install(page)
    sc = dl.load_preset("distilling_long_tailed_teacher")["scenario"].with_overrides(steps=120)
    d.open_page(page, server, "discrete", f"s={sc.to_url_param()}")
    assert page.locator('[data-testid="stMain"] h1').first.inner_text().strip() == "Discrete"
    plot = page.locator('[data-testid="stMain"] .st-key-disc_students_chart .js-plotly-plot').first
    plot.wait_for()
    page.locator('[data-testid="stMain"] .st-key-disc_frontier_chart .js-plotly-plot').first.wait_for()
    d.wait_idle(page)
    d.assert_no_exception(page)
    state = d.plot_state(plot)
    # the teacher and one bar series per divergence of the lesson, each in its palette colour
    assert len(state["traces"]) == 1 + len(sc.divergences)
    colors = plot.evaluate("(el) => el.data.slice(1).map(t => t.marker.color)")
    assert colors == [color_for(x.key) for x in sc.divergences]
    assert state["frames"] > 1 and state["sliderSteps"] == state["frames"]
    plot.locator("g.updatemenu-button", has_text="Play").first.click()
    page.wait_for_function("([el, a]) => el._fullLayout.sliders[0].active !== a",
                           arg=[plot.element_handle(), state["sliderActive"]])
    if d.screenshots_enabled():
        page.wait_for_function("(el) => { const s = el._fullLayout.sliders[0]; return s.active === s.steps.length - 1; }",
                               arg=plot.element_handle())
        d.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        d.wait_idle(page)
        page.locator('[data-testid="stMain"] h2').first.scroll_into_view_if_needed()
        page.screenshot(path=str(d.SCREENSHOTS / "discrete.png"))
