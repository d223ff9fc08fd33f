"""In a real browser: the target stays on screen while a 2D animation plays (issue 14).

plotly.js drops contour traces that an animation frame does not list while it plays, so Fit 2D's
and Flows' target vanished during Play. The figures now hold the target as a layout image under
every panel. This test opens the offline HTML export of a 2D fit and of a flow in Chromium,
presses Play and samples the page while it plays."""

from __future__ import annotations

import pytest

import divlab as dl
from divlab import export, viz

from conftest import require_browser  # noqa: F401  (the browser fixture skips or fails with the reason)


def _play_and_sample(browser, html_path, samples=10):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        page.goto(f"file://{html_path}")
        page.wait_for_selector(".imagelayer image, g.layer-below image", state="attached", timeout=60_000)
        page.get_by_text("▶ Play", exact=True).first.click()
        seen = []
        for _ in range(samples):
            page.wait_for_timeout(100)
            seen.append(page.evaluate("document.querySelectorAll('.imagelayer image, g.layer-below image').length"))
        return seen
    finally:
        page.close()


def test_target_stays_while_a_2d_fit_and_a_flow_play(browser, tmp_path):
    t = dl.Banana()
    res = dl.fit(t, family="mvn", divergence=["kl", "reverse_kl"], steps=40)
    fig = viz.fit2d_animation(t, res, n_frames=20)
    path = tmp_path / "fit2d.html"
    fig.write_html(str(path), include_plotlyjs=True)
    seen = _play_and_sample(browser, path)
    assert all(n >= 1 for n in seen), seen
    flows = [dl.flow(t, "mmd", n=60, steps=20, seed=0)]
    fig = viz.flow_animation(t, flows)
    path = tmp_path / "flow.html"
    fig.write_html(str(path), include_plotlyjs=True)
    seen = _play_and_sample(browser, path)
    assert all(n >= 1 for n in seen), seen
