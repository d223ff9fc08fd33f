"""The Transport page in a real Chromium (issue 17): a lesson link opens it with the lesson's text,
the gradient study draws one line per gradient mode in its palette colour, and the Monge-gap
figures draw (the 2D one with the shared map arrows).

With DIVLAB_SCREENSHOTS=1 it saves assets/screenshots/transport.png at 1400×900 (the gradient
panel: its controls, legend and the six error/cost plots)."""

from __future__ import annotations

import st_driver as d

import divlab as dl
from divlab.viz import color_for


def test_transport_lesson_draws_the_three_modes_and_the_maps(server, page):
    page.set_viewport_size({"width": 1400, "height": 900})
    d.install(page)
    sc = dl.load_preset("which_sinkhorn_gradient")["scenario"]
    d.open_page(page, server, "transport", f"s={sc.to_url_param()}&lesson=which_sinkhorn_gradient")
    main = d.main(page)
    assert main.locator("h1").first.inner_text().strip() == "Transport"
    grad = main.locator(".st-key-transport_gradient_chart .js-plotly-plot").first
    grad.wait_for()
    main.locator(".st-key-transport_monge1d_chart .js-plotly-plot").first.wait_for()
    maps = main.locator(".st-key-transport_monge2d_chart .js-plotly-plot").first
    maps.wait_for()
    d.wait_idle(page)
    d.assert_no_exception(page)
    assert "Which Sinkhorn gradient?" in main.locator('[data-testid="stAlert"]').first.inner_text()
    legend = grad.evaluate("(el) => el.data.filter(t => t.showlegend !== false).map(t => [t.legendgroup, t.line.color])")
    assert legend == [[m, color_for(m)] for m in ("unrolled", "envelope", "implicit")]
    arrows = maps.evaluate("(el) => el.data.filter(t => t.name === 'map x → T(x)').length")
    assert arrows == 3
    if d.screenshots_enabled():
        d.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        main.locator("h2").first.evaluate("(el) => el.scrollIntoView({block: 'start'})")
        d.wait_idle(page)
        page.screenshot(path=str(d.SCREENSHOTS / "transport.png"))
