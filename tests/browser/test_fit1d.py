"""Fit 1D in a real browser: change a control, run, read the numbers; the animation plays."""

from __future__ import annotations

import math
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
    return d.dataframe_rows(d.table_with(page, "final value"))


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
    expect(d.table_with(page, "final value")).to_contain_text("-2.98")
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


# -- drawing a target -----------------------------------------------------------------------------

CANVAS = 'iframe[title="streamlit_drawable_canvas.st_canvas"]'


def draw_bump(page, centre: float, width: float = 0.06) -> None:
    """Draw one curve left to right on the 1D canvas: a Gaussian bump at `centre` (fraction of the width)."""
    upper = page.frame_locator(CANVAS).locator("canvas.upper-canvas").last
    upper.wait_for()
    box = upper.bounding_box()
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    n = 80
    with d.expect_run(page):  # the canvas sends its strokes on mouse-up, which reruns the page
        page.mouse.move(x0 + 4, y0 + h - 6)
        page.mouse.down()
        for i in range(n + 1):
            t = i / n
            bump = math.exp(-0.5 * ((t - centre) / width) ** 2)
            page.mouse.move(x0 + 4 + t * (w - 8), y0 + h - 6 - (h - 30) * bump)
        page.mouse.up()


def peak_x(trace: dict) -> float:
    return trace["x"][max(range(len(trace["y"])), key=trace["y"].__getitem__)]


def mean(trace: dict) -> float:
    """Mean of a density drawn as a trace (trapezoid rule on its own grid)."""
    x, y = trace["x"], trace["y"]
    pairs = list(zip(x[:-1], x[1:], y[:-1], y[1:]))
    mass = sum((b - a) * (u + v) / 2 for a, b, u, v in pairs)
    return sum((b - a) * (a * u + b * v) / 2 for a, b, u, v in pairs) / mass


def keyed_plot(page, key: str):
    return page.locator(f'[data-testid="stMain"] .st-key-{key} .js-plotly-plot')


def fitted(page) -> dict:
    return {r["divergence"].split(":")[0]: r for r in final_rows(page)}


def test_fit1d_drawn_stroke_becomes_the_target_and_the_fit_follows_it(fit1d):
    page = fit1d
    # live mode off: this test presses Run itself and checks that Run changes the table
    with d.expect_run(page):
        d.main(page).get_by_text("Live: refit as you edit", exact=False).click()
    with d.expect_run(page):
        page.get_by_text("drawing", exact=True).click()
    expect(d.main(page)).to_contain_text("The canvas is empty")  # nothing drawn yet: said next to the canvas
    lo, hi = (float(d.number_input(page, lab).input_value()) for lab in ("x at the left edge", "x at the right edge"))
    at = lambda frac: lo + frac * (hi - lo)  # noqa: E731
    tol = 0.05 * (hi - lo)

    draw_bump(page, 0.25)
    expect(d.main(page)).not_to_contain_text("The canvas is empty")
    preview = d.plot_state(keyed_plot(page, "fit1d_preview"))
    assert peak_x(preview["traces"][0]) == pytest.approx(at(0.25), abs=tol)
    d.click_button(page, "Run")
    d.assert_no_exception(page)
    anim = d.plot_state(keyed_plot(page, "fit1d_anim"))
    target = next(t for t in anim["traces"] if t["name"] == "target p")
    assert peak_x(target) == pytest.approx(at(0.25), abs=tol)
    # forward KL to a Normal matches moments: the fitted loc is the mean of the drawn target (with its
    # tails: 2 % of a broad Normal at the box centre moves the mean by 0.02·|centre − bump| ≈ 0.06,
    # and the plotted range leaves out a little of that broad component)
    assert float(fitted(page)["KL(p‖q), forward"]["loc"]) == pytest.approx(mean(target), abs=0.12)
    assert mean(target) < at(0.5) - tol

    # clear, draw the bump on the other side: the target and the fits follow the new stroke
    with d.expect_run(page):
        page.frame_locator(CANVAS).locator('img[alt="Reset canvas & history"]').click()
    draw_bump(page, 0.75)
    expect(keyed_plot(page, "fit1d_preview")).to_have_count(1)
    page.wait_for_function(
        "([el, x]) => { const d = el._fullData[0]; let k = 0;"
        " for (let i = 1; i < d.y.length; i++) if (d.y[i] > d.y[k]) k = i; return Math.abs(d.x[k] - x) < 1e-9 + %r; }"
        % tol, arg=[keyed_plot(page, "fit1d_preview").element_handle(), at(0.75)])
    before = fitted(page)["KL(p‖q), forward"]["loc"]
    d.click_button(page, "Run")
    expect(d.table_with(page, "final value")).not_to_contain_text(before)
    anim = d.plot_state(keyed_plot(page, "fit1d_anim"))
    target = next(t for t in anim["traces"] if t["name"] == "target p")
    assert peak_x(target) == pytest.approx(at(0.75), abs=tol)
    assert float(fitted(page)["KL(p‖q), forward"]["loc"]) == pytest.approx(mean(target), abs=0.12)
    assert mean(target) > at(0.5) + tol


# -- share link -----------------------------------------------------------------------------------

def test_fit1d_share_link_reproduces_the_state_in_a_fresh_browser(fit1d, new_context):
    page = fit1d
    d.set_number(page, "initial loc", 0.25)
    d.set_number(page, "initial scale", 0.7)
    d.click_button(page, "Run")
    rows = final_rows(page)
    link = d.share_link(page)
    assert "?s=" in link and "/fit_1d" in link
    assert link == page.url  # the address bar holds the same state

    other = d.install(new_context().new_page())  # a fresh browser context: a new session, nothing shared
    d.open_url(other, link)
    for label, value in (("initial loc", "0.250"), ("initial scale", "0.700"), ("steps", str(STEPS))):
        expect(d.number_input(other, label)).to_have_value(value)
    d.plots(other).first.wait_for()  # a shared scenario runs on open
    assert final_rows(other) == rows  # the same numbers, to the last digit
    d.assert_no_exception(other)
