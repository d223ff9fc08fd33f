"""In a real browser: the transport-map arrows on a 2D animation (issue 17) are drawn at the last
step, gone while Play replays the fit (they are the final model's), back at the end, and the target
image stays under them throughout. The figure is the one Fit 2D shows with the toggle on, written
as offline HTML."""

from __future__ import annotations

import plotly.graph_objects as go

import divlab as dl
from divlab.app import entropic_map as em
from divlab.viz import fit2d_animation
from divlab.viz.shown import figure_spec

from conftest import require_browser  # noqa: F401  (the browser fixture skips or fails with the reason)

STATE = """
(el) => ({
  arrows: (el._fullData || []).filter(d => d.legendgroup === 'transport map').map(d => (d.x || []).length),
  images: document.querySelectorAll('.imagelayer image, g.layer-below image').length,
  active: ((el._fullLayout || {}).sliders || [{}])[0].active,
})
"""


def test_arrows_leave_while_playing_and_come_back_at_the_end(browser, tmp_path):
    t = dl.Banana()
    res = dl.fit(t, family="mvn", divergence=["kl", "reverse_kl"], steps=30)
    frames = 20
    view = {"figure": figure_spec(fit2d_animation(t, res, n_frames=frames)), "final_models": em.fit2d_final_models(res)}
    maps = [em._public(em.transport_map(r.model(), t), r.label) for r in res]
    spec = em.fit2d_map_figure(view, maps, which=1)
    path = tmp_path / "fit2d_map.html"
    go.Figure(spec).write_html(str(path), include_plotlyjs=True, auto_play=False)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        page.goto(f"file://{path}")
        plot = page.locator(".js-plotly-plot").first
        plot.wait_for()
        page.wait_for_selector(".imagelayer image, g.layer-below image", state="attached", timeout=60_000)
        first = plot.evaluate(STATE)
        n_frames = len(go.Figure(spec).frames)
        assert first["arrows"] == [3 * em.MAP_ARROWS] and first["active"] == n_frames - 1, first
        page.get_by_text("▶ Play", exact=True).first.click()
        seen = []
        for _ in range(8):
            page.wait_for_timeout(150)
            seen.append(plot.evaluate(STATE))
        assert all(s["images"] >= 1 for s in seen), seen  # the target stays
        assert any(s["arrows"] == [0] for s in seen), seen  # no stale arrows over earlier steps
        page.wait_for_function("(el) => el._fullLayout.sliders[0].active === %d" % (n_frames - 1),
                               arg=plot.element_handle(), timeout=60_000)
        page.wait_for_timeout(300)
        end = plot.evaluate(STATE)
        assert end["arrows"] == [3 * em.MAP_ARROWS] and end["images"] >= 1, end
    finally:
        page.close()
