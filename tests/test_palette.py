"""One palette: a distinct, non-grey colour per divergence, the same everywhere (issue 14)."""

import itertools
import re

import divlab as dl
from divlab.viz.families import param_colors
from divlab.viz.palette import COLORS, TARGET_GREY, color_for, delta_e, extra_colors


def _hex(rgb: str) -> str:
    r, g, b = (int(v) for v in re.findall(r"\d+", rgb)[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


def test_every_registered_divergence_has_a_distinct_non_grey_colour():
    keys = [s.key for s in dl.catalogue()] + ["svgd", "langevin"]
    cols = [color_for(k) for k in keys]
    for k, c in zip(keys, cols):
        assert delta_e(c, TARGET_GREY) >= 25, (k, c)  # not the target's grey
        assert delta_e(c, "#808080") >= 25 and delta_e(c, "#b0b0b0") >= 25, (k, c)
    for (k1, c1), (k2, c2) in itertools.combinations(zip(keys, cols), 2):
        assert delta_e(c1, c2) >= 20, (k1, c1, k2, c2)


def test_palette_numbers_are_as_documented():
    vals = list(COLORS.values())
    assert min(delta_e(a, b) for a, b in itertools.combinations(vals, 2)) >= 24
    assert all(delta_e(c, "#808080") >= 25 for c in vals + list(extra_colors()))


def test_figures_and_exports_use_the_palette():
    from divlab import export
    from divlab.viz import color_for as viz_color_for

    for k in ("kl", "reverse_kl", "neyman", "sinkhorn", "wasserstein"):
        assert export._color(k) == viz_color_for(k) == COLORS[k]


def test_families_overlay_colours_are_saturated_from_red_to_blue():
    cols = [_hex(c) for c in param_colors(7)]
    assert all(delta_e(c, "#808080") >= 25 for c in cols)
    assert delta_e(cols[0], COLORS["reverse_kl"]) < 25  # small α: the reverse-KL end
    assert delta_e(cols[-1], COLORS["kl"]) < 30  # large α: the forward-KL end


def test_every_log_axis_is_labelled_with_plain_numbers():
    """Tick labels of every log axis are plain numbers (0.5, 1, 2, 5), never bare minor digits or
    SI prefixes; every axis writes powers of ten, not SI prefixes."""
    import math

    import divlab as dl
    from divlab import viz
    from divlab.viz.layout import log_ticks

    assert log_ticks(0.3, 6) == ([0.5, 1.0, 2.0, 5.0], ["0.5", "1", "2", "5"])
    p = dl.Mixture([dl.Normal(-3.0, 1.0), dl.Normal(3.0, 1.0)])
    res = dl.fit(p, family="normal", divergence=["kl", "reverse_kl"], steps=60, init={"loc": -2.0, "scale": 1.0})
    figs = [viz.fit_animation(p, res), viz.loss_figure(res)]
    for fig in figs:
        lay = fig.layout.to_plotly_json()
        logs = [k for k in lay if k.startswith(("xaxis", "yaxis")) and lay[k].get("type") == "log"]
        assert logs, "the loss axis of positive losses is a log axis"
        for k in lay:
            if k.startswith(("xaxis", "yaxis")):
                assert lay[k].get("exponentformat") == "power", k
        for k in logs:
            text = lay[k]["ticktext"]
            assert len(text) >= 2
            for t in text:
                v = float(t)  # a plain number, parseable as written
                assert math.isfinite(v) and v > 0 and not t.endswith(("p", "µ", "n", "m", "k"))


def test_every_2d_animation_carries_the_target_under_every_panel():
    """The target is a layout image under each panel (plotly drops unlisted contour traces while
    playing), so it is there in every frame; Fit 1D's target trace is a scatter, which stays."""
    import divlab as dl
    from divlab import viz

    t = dl.Banana()
    res = dl.fit(t, family="mvn", divergence=["kl", "reverse_kl"], steps=30)
    for fig in (viz.fit2d_animation(t, res, n_frames=10), viz.fit2d_small_multiples(t, res, n_frames=10)):
        panels = {(tr.xaxis or "x", tr.yaxis or "y") for tr in fig.data if str(tr.name or "").startswith("target p")}
        imgs = {(im.xref, im.yref) for im in fig.layout.images}
        assert panels and panels <= imgs, (panels, imgs)
        assert all(im.source.startswith("data:image/png;base64,") for im in fig.layout.images)
        assert [b.label for b in fig.layout.updatemenus[0].buttons][:3] == ["▶ Play", "▶ ½×", "▶ 2×"]
    flows = [dl.flow(t, "mmd", n=40, steps=10, seed=0), dl.flow(t, "svgd", n=40, steps=10, seed=0)]
    fig = viz.flow_animation(t, flows)
    panels = {(tr.xaxis or "x", tr.yaxis or "y") for tr in fig.data if str(tr.name or "").startswith("target p")}
    assert panels and panels <= {(im.xref, im.yref) for im in fig.layout.images}
    p = dl.Mixture([dl.Normal(-3.0, 1.0), dl.Normal(3.0, 1.0)])
    r1 = dl.fit(p, family="normal", divergence="kl", steps=30)
    fig = viz.fit_animation(p, [r1], n_frames=10)
    assert fig.data[0].name == "target p" and all(0 not in fr.traces for fr in fig.frames)
