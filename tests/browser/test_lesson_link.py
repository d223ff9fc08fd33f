"""The lesson at a glance, in a real browser at 1400 × 900 (issue 14).

- A lesson's share link (``?s=...&lesson=<id>``) opened in a fresh browser shows the lesson's text
  and the top of its chart within the first 900 px, with no scrolling.
- Live mode: changing the start of q redraws the fits without pressing Run.
"""

from __future__ import annotations

from playwright.sync_api import expect

import st_driver as d
from divlab import app_support as sup

ANIM = '[data-testid="stMain"] .st-key-fit1d_anim .js-plotly-plot'
FINGER = ("() => { const el = document.querySelector('%s'); if (!el || !el._fullData) return null;"
          " return el._fullData.map(t => (t.y || []).length ? t.y[(t.y.length >> 1)] : 0).join('|'); }" % ANIM)


def test_a_lesson_link_shows_its_text_and_chart_above_the_fold(server, browser):
    card = next(c for c in sup.lesson_cards() if c["id"] == "two_equal_modes")
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = d.install(ctx.new_page())
        d.open_url(page, f"{server}/fit_1d{sup.share_query(card['scenario'], card['id'])}")
        expect(d.main(page)).to_contain_text(f"Lesson: {card['title']}")
        plot = page.locator(ANIM)
        plot.wait_for()
        page.wait_for_function("() => { const el = document.querySelector('%s'); return el && el._fullData; }" % ANIM)
        assert page.evaluate("() => window.scrollY") == 0
        info_box = d.main(page).get_by_text(f"Lesson: {card['title']}").bounding_box()
        chart_box = plot.bounding_box()
        assert info_box["y"] < 900 and chart_box["y"] < 900, (info_box, chart_box)  # both above the fold
        play = page.locator(ANIM).get_by_text("▶ Play", exact=True).first.bounding_box()
        assert play["y"] + play["height"] <= 900, play  # and the Play button: no scrolling to start it
        assert "lesson=two_equal_modes" in page.url  # the link keeps the lesson
        d.assert_no_exception(page)
    finally:
        ctx.close()


def test_live_mode_redraws_after_the_start_moves_without_run(server, page):
    d.install(page)
    d.open_page(page, server, "fit_1d")
    d.set_number(page, "steps", 60)
    page.wait_for_function("() => { const el = document.querySelector('%s'); return el && el._fullData; }" % ANIM)
    before = page.evaluate(FINGER)
    d.set_number(page, "initial loc", -2.5)  # no Run click
    page.wait_for_function("(b) => { const f = (%s)(); return f !== null && f !== b; }" % FINGER, arg=before)
    after = page.evaluate(FINGER)
    assert after != before
    d.assert_no_exception(page)
