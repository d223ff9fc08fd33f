"""Fit 1D in a real browser: change a control, run, read the numbers; the animation plays."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

import st_driver as d

STEPS = 60


@pytest.fixture
def fit1d(server, page):
    d.install(page)
    d.open_page(page, server, "fit_1d")
    d.set_number(page, "steps", STEPS)
    return page


def final_rows(page):
    return d.dataframe_rows(page.locator('[data-testid="stDataFrame"]').last)


def test_fit1d_changed_start_runs_to_the_other_mode(fit1d):
    """Reverse KL from loc = +2 ends on the right mode (+2.984, 1.023), from −2 on the left one."""
    page = fit1d
    d.set_number(page, "initial loc", 2)
    d.click_button(page, "Run")
    d.assert_no_exception(page)
    rows = {r["divergence"].split(":")[0]: r for r in final_rows(page)}
    assert set(rows) == {"KL(p‖q), forward", "KL(q‖p), reverse"}
    rev = rows["KL(q‖p), reverse"]
    assert float(rev["loc"]) == pytest.approx(2.984, abs=0.01)
    assert float(rev["scale"]) == pytest.approx(1.023, abs=0.01)
    assert re.search(r"= 0\.6887\d* nats", rev["final value"])
    fwd = rows["KL(p‖q), forward"]
    assert float(fwd["loc"]) == pytest.approx(0.0, abs=1e-3)
    assert float(fwd["scale"]) == pytest.approx(10 ** 0.5, abs=1e-3)  # moment matching: σ² = 1 + 3²

    d.set_number(page, "initial loc", -2)
    d.click_button(page, "Run")
    expect(page.locator('[data-testid="stDataFrame"]').last).to_contain_text("-2.98")
    rows = {r["divergence"].split(":")[0]: r for r in final_rows(page)}
    assert float(rows["KL(q‖p), reverse"]["loc"]) == pytest.approx(-2.984, abs=0.01)


def test_fit1d_animation_renders_and_plays(fit1d):
    page = fit1d
    d.click_button(page, "Run")
    plot = d.plots(page).first
    plot.wait_for()
    before = d.plot_state(plot)
    assert before["frames"] >= 10 and before["sliderSteps"] == before["frames"]
    assert before["sliderActive"] == 0
    assert any(b.endswith("Play") for b in before["buttons"])
    model = next(i for i, t in enumerate(before["traces"]) if t["name"] and "reverse" in t["name"])
    label = page.locator(".slider-container text.slider-label").first
    assert label.text_content().strip().endswith(" 0")

    page.locator("g.updatemenu-button", has_text="Play").click()
    page.wait_for_function(
        "(el) => { const s = el._fullLayout.sliders[0]; return s.active === s.steps.length - 1; }",
        arg=plot.element_handle())
    after = d.plot_state(plot)
    assert after["traces"][model]["y"] != before["traces"][model]["y"]  # the model curve moved
    assert not label.text_content().strip().endswith(" 0")
    d.assert_no_exception(page)
