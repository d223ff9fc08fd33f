"""Home in a real browser: one click on a lesson opens it, already computed, on its page."""

from __future__ import annotations

from playwright.sync_api import expect

import st_driver as d
from divlab import app_support as sup

LESSON = "two_equal_modes"


def test_lesson_click_opens_the_lesson_on_fit_1d_with_its_result(server, page):
    card = next(c for c in sup.lesson_cards() if c["id"] == LESSON)
    assert card["page"] == "fit_1d"
    d.install(page)
    d.open_page(page, server)
    with d.expect_run(page):
        page.locator(f".st-key-home_open_{LESSON}_fit_1d_btn button").click()
    page.wait_for_url("**/fit_1d?s=*")
    d.wait_idle(page)
    d.assert_no_exception(page)
    expect(d.main(page).locator("h1").first).to_have_text(sup.PAGE_TITLES["fit_1d"])
    expect(d.main(page)).to_contain_text(f"Lesson: {card['title']}")
    plot = page.locator('[data-testid="stMain"] .st-key-fit1d_anim .js-plotly-plot')
    plot.wait_for()  # a lesson runs on open
    rows = {r["divergence"].split(":")[0]: r for r in d.dataframe_rows(d.table_with(page, "final value"))}
    assert [dv.key for dv in card["scenario"].divergences] == ["kl", "reverse_kl"]
    assert set(rows) == {"KL(p‖q), forward", "KL(q‖p), reverse"}
    # forward KL matches the moments of ½N(−3, 1) + ½N(3, 1): mean 0, σ = √10; reverse KL sits on a mode
    assert abs(float(rows["KL(p‖q), forward"]["loc"])) < 1e-3
    assert abs(float(rows["KL(p‖q), forward"]["scale"]) - 10 ** 0.5) < 1e-3
    assert abs(abs(float(rows["KL(q‖p), reverse"]["loc"])) - 2.984) < 0.01
    # the lesson's scenario is now the page's: its controls show the lesson's start
    init = sup.init_of(card["scenario"])
    expect(d.number_input(page, "initial loc")).to_have_value(f"{init['loc']:.3f}")
    expect(d.number_input(page, "steps")).to_have_value(str(card["scenario"].optimizer.steps))
