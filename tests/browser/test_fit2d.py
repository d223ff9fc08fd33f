"""Fit 2D in a real browser: a changed control runs, and its share link reproduces the same numbers."""

from __future__ import annotations

from playwright.sync_api import expect

import st_driver as d


def test_fit2d_share_link_reproduces_the_run_in_a_fresh_browser(server, page, new_context):
    d.install(page)
    d.open_page(page, server, "fit_2d")
    d.set_number(page, "steps", 30)
    d.set_number(page, "start: mean x", 0.5)
    d.click_button(page, "Run")
    d.assert_no_exception(page)
    page.locator('[data-testid="stMain"] .st-key-fit2d_anim .js-plotly-plot').wait_for()
    rows = d.dataframe_rows(d.table_with(page, "final value"))
    assert rows and all("nats" in r["final value"] or "∞" in r["final value"] for r in rows), rows
    link = d.share_link(page)
    assert "/fit_2d?s=" in link

    other = d.install(new_context().new_page())
    d.open_url(other, link)
    expect(d.number_input(other, "steps")).to_have_value("30")
    expect(d.number_input(other, "start: mean x")).to_have_value("0.500")
    other.locator('[data-testid="stMain"] .st-key-fit2d_anim .js-plotly-plot').wait_for()  # runs on open
    assert d.dataframe_rows(d.table_with(other, "final value")) == rows
    d.assert_no_exception(other)
