"""divlab.viz figures of the app pages (race, landscape, families, calculator, theory, gallery):
trace and frame structure and the numbers drawn."""

import math

import numpy as np
import pytest
import torch

import divlab as dl
from divlab import app_support as sup
from divlab import viz

P = dl.Mixture([dl.Normal(-3.0, 1.0), dl.Normal(3.0, 1.0)], weights=[0.5, 0.5])


@pytest.fixture(scope="module")
def fits():
    return list(dl.fit(P, divergence=["kl", "reverse_kl", "js"], steps=40, init={"loc": 1.0, "scale": 1.0}))


def test_race_animation_one_panel_per_fit_synchronized(fits):
    fig = viz.race_animation(P, fits, n_frames=10)
    assert len(fig.data) == 2 * len(fits)  # target + model per panel
    assert len(fig.frames) == len(viz.frame_steps(fits, 10))
    assert all(list(f.traces) == [1, 3, 5] for f in fig.frames)  # one frame moves every panel
    assert [a.text for a in fig.layout.annotations] == [r.label for r in fits]
    # shared legend: the target once, each fit once
    names = [d.name for d in fig.data if d.showlegend]
    assert names == ["target p"] + [r.label for r in fits]
    # the last frame draws each final model
    x = np.asarray(fig.data[1].x)
    last = fig.frames[-1]
    for r, d in zip(fits, last.data):
        q = r.model()
        assert np.asarray(d.y).dtype == np.float32 and d.x is None  # frames carry float32 y only (frame_values)
        np.testing.assert_allclose(d.y, q.log_prob(torch.tensor(x, dtype=torch.float64)).exp().numpy(), rtol=2e-7)


@pytest.mark.parametrize("n, grid", [(1, (1, 1)), (3, (1, 3)), (4, (2, 3)), (6, (2, 3))])
def test_race_grid(n, grid):
    assert viz.race_grid(n) == grid


def test_race_grid_limits():
    with pytest.raises(ValueError, match="1 to 6 fits"):
        viz.race_grid(7)


def test_landscape_figure_marks_each_optimum_and_colours_basins():
    view = sup.landscape_view(sup.two_modes_spec(8.0), "reverse_kl", {}, restarts=6, steps=150, n=(21, 15))
    fig = viz.landscape_figure(view["landscape"], view["optima"])
    stars = [d for d in fig.data if getattr(d, "marker", None) is not None and d.marker.symbol == "star"]
    assert len(stars) == len(view["optima"])
    g = [d for d in stars if d.marker.color == "gold"]
    assert len(g) >= 1 and "global" in g[0].name
    z = fig.data[0].z
    vals = view["landscape"].values
    assert np.nanmin(z) == pytest.approx(np.log10(vals[np.isfinite(vals) & (vals > 0)].min()))


def test_sweep_animation_and_overlay():
    res = sup.family_sweep(sup.two_modes_spec(6.0), "alpha", {"loc": 2.0, "scale": 1.0}, 40, values=[0.1, 0.5, 0.9])
    fig = viz.sweep_animation(P, res, "alpha", "α")
    assert [f.name for f in fig.frames] == ["0.1", "0.5", "0.9"]
    assert list(fig.data[2].y) == pytest.approx([r.params["loc"] for r in res])
    assert list(fig.data[3].y) == pytest.approx([r.params["scale"] for r in res])
    ov = viz.sweep_overlay(P, res, "alpha", "α")
    assert [d.name for d in ov.data] == ["target p", "α = 0.1", "α = 0.5", "α = 0.9"]
    with pytest.raises(ValueError):
        viz.sweep_overlay(P, [], "alpha")


def test_error_curve_and_pair_figures():
    c = {"n": [10, 1000], "abs_error": [0.1, 0.01], "stderr": [0.2, 0.02]}
    fig = viz.error_curve_figure(c)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert list(fig.data[2].y) == pytest.approx([0.2, 0.02])  # the 1/sqrt(n) guide through the first point
    pf = viz.pair_figure(dl.Normal(0.0, 1.0), dl.Normal(2.0, 0.5))
    assert [d.name for d in pf.data] == ["target p", "model q"]
    assert max(pf.data[1].y) == pytest.approx(1 / (0.5 * math.sqrt(2 * math.pi)), rel=1e-3)


def test_theory_figures():
    curves = sup.f_h_curves(["kl", "reverse_kl", "tv"])
    fig = viz.f_h_figure(curves)
    assert len(fig.data) == 5  # f for three, h for two (TV has none)
    assert fig.layout.xaxis2.type == "log" and fig.layout.yaxis2.type == "log"
    x = np.linspace(-6, 6, 50)
    q = dl.Normal(0.0, 2.0)
    fig2 = viz.h_along_x_figure(P, q, sup.h_along_x(P, q, ["kl"], x), x)
    assert [d.name for d in fig2.data] == ["target p", "model q", "KL(p‖q), forward"]
    with pytest.raises(ValueError, match="at least one"):
        viz.f_h_figure({})


def test_thumbnails_1d_and_2d():
    sc = dl.load_preset("two_equal_modes")["scenario"]
    fig = viz.thumbnail(sc.target, sup.init_of(sc))
    assert [d.name for d in fig.data] == ["target p", "start q"]
    x = np.asarray(fig.data[1].x)
    init = sup.init_of(sc)
    ref = dl.Normal(init["loc"], init["scale"]).log_prob(torch.tensor(x, dtype=torch.float64)).exp().numpy()
    np.testing.assert_allclose(fig.data[1].y, ref, rtol=1e-10)
    fig2 = viz.thumbnail(dl.load_preset("banana_2d")["scenario"].target)
    assert fig2.data[0].type == "heatmap"
    prev = viz.target_preview({"type": "grid", "x": [0.0, 1.0, 2.0], "values": [0.0, 1.0, 0.0]})
    assert max(prev.data[0].y) == pytest.approx(1.0, rel=5e-3)  # normalized tent of base 2: peak 1 (grid of 400 x)


def test_phase_view_and_figure_reverse_like_switches_forward_like_does_not():
    view = sup.phase_view("alpha", [0.0, 1.0], separations=[0.5, 1.5, 3.0, 4.0], steps=100, restarts=4)
    rev, fwd = view["covers"]
    assert rev[0] and not rev[-1]  # α = 0 (reverse KL): covers close modes, sits on one when apart
    assert 1.5 < view["critical"][0] < 4.0
    assert all(fwd) and view["critical"][1] is None  # α = 1 (forward KL): moment matching, always centred
    assert view["scale"][1][-1] == pytest.approx(math.sqrt(1 + 4.0 ** 2), rel=0.02)  # σ² = 1 + d²
    fig = viz.phase_figure(view)
    assert fig.data[0].type == "heatmap" and list(fig.data[0].z[1]) == [1.0] * 4
    assert list(fig.data[1].x) == pytest.approx([view["critical"][0]])
    rows = sup.phase_rows(view)
    assert rows[1]["switch to one mode at d"] == "never in range"


def test_2d_thumbnail_frames_the_shape_not_its_whole_bounding_box():
    """The banana is 0.5 wide along a parabola whose bounds span 30 units in y: on the bounding box it
    drew as a few dark pixels (under 2 % of cells visibly shaded); framed on its middle 99 % it fills the tile."""
    h = viz.thumbnail(dl.load_preset("banana_2d")["scenario"].target).data[0]
    z = np.asarray(h.z)
    assert h.y[-1] - h.y[0] < 10.0
    assert (z > 0.05 * z.max()).mean() > 0.05


def test_1d_thumbnail_frames_the_shape_not_its_whole_bounding_box():
    """A Student-t(3) target's bounds span about ±100: there its peak and tails drew as one spike
    (3 of 200 points above a tenth of the peak). Framed on the middle 99 % of the target and the
    start's loc ± 3 scale, the peak spans many points and the start q is inside the view."""
    sc = dl.load_preset("heavy_tails")["scenario"]
    fig = viz.thumbnail(sc.target, sup.init_of(sc))
    x, p = np.asarray(fig.data[0].x), np.asarray(fig.data[0].y)
    assert x[-1] - x[0] < 20.0
    assert (p > 0.1 * p.max()).sum() > 30
    init = sup.init_of(sc)
    assert x[0] <= init["loc"] - 3 * init["scale"] and x[-1] >= init["loc"] + 3 * init["scale"]
