"""2D figures (divlab.viz.fit2d, divlab.viz.flow): geometry against closed forms, figure content
(frames, traces, what each frame draws) and errors. Results are built from known trajectories,
so every number a figure shows can be checked exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import multivariate_normal

import divlab as dl
from divlab.viz import frame_steps
from divlab.fit import FitResult
from divlab.viz.fit2d import (LOG_RANGE, ellipse, fit2d_animation, fit2d_small_multiples, gaussian_parts,
                              log_density_grid, target_contour, target_figure2d, xy_grid)
from divlab.viz.flow import flow_animation, flow_label


def _rot(deg):
    a = math.radians(deg)
    return np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])


def _mvn_result(key="kl", T=21, params=None, losses=None):
    """A FitResult of the mvn family whose mean moves from (-2, 0) to (1, 1) while the scales and
    the correlation change linearly."""
    t = np.linspace(0.0, 1.0, T)
    traj = {"loc_x": -2 + 3 * t, "loc_y": t.copy(), "scale_x": 1 + t, "scale_y": 2 - t, "corr": -0.5 + t}
    losses = np.linspace(2.0, 0.5, T) if losses is None else np.asarray(losses, dtype=float)
    return FitResult(family="mvn", divergence=key, divergence_params=params or {},
                     params={k: float(v[-1]) for k, v in traj.items()}, trajectory=traj, losses=losses,
                     status="max_steps", steps=T - 1, init={k: float(v[0]) for k, v in traj.items()}, lr=0.05,
                     optimizer="adam")


def _cov(r, i):
    sx, sy, c = (r.trajectory[k][i] for k in ("scale_x", "scale_y", "corr"))
    return np.array([[sx * sx, c * sx * sy], [c * sx * sy, sy * sy]])


# ---------------------------------------------------------------------------------------------
# geometry
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [1.0, 2.0])
def test_ellipse_has_the_covariance_axes(k):
    lam = np.array([0.25, 4.0])
    R = _rot(30.0)
    cov = R @ np.diag(lam) @ R.T
    m = np.array([1.0, -2.0])
    x, y = ellipse(m, cov, k, n=101)
    d = np.hypot(x - m[0], y - m[1])
    # semi-axes k·√λ: the shortest and longest distances from the centre
    assert d.min() == pytest.approx(k * 0.5, abs=1e-9)
    assert d.max() == pytest.approx(k * 2.0, abs=1e-9)
    # the longest axis points along the eigenvector of the largest eigenvalue (30°)
    j = int(np.argmax(d))
    assert abs(abs(np.dot([x[j] - m[0], y[j] - m[1]], R[:, 1])) - k * 2.0) < 1e-9
    # every point has Mahalanobis distance k
    z = np.stack([x - m[0], y - m[1]])
    maha = np.einsum("in,ij,jn->n", z, np.linalg.inv(cov), z)
    np.testing.assert_allclose(maha, k * k, rtol=0, atol=1e-9)
    assert (x[0], y[0]) == (x[-1], y[-1])  # closed


def test_ellipse_bad_input():
    with pytest.raises(ValueError, match="cov must be positive semi-definite"):
        ellipse([0.0, 0.0], [[1.0, 0.0], [0.0, -1.0]])
    with pytest.raises(ValueError, match="k must be > 0"):
        ellipse([0.0, 0.0], np.eye(2), k=0.0)
    with pytest.raises(ValueError, match="need a 2-vector and a 2x2 matrix"):
        ellipse([0.0], np.eye(2))


def test_gaussian_parts_of_mvn_and_mixture():
    a = dl.MultivariateNormal([1.0, 2.0], [[2.0, 0.3], [0.3, 1.0]])
    b = dl.MultivariateNormal([-1.0, 0.0], [[0.5, 0.0], [0.0, 0.5]])
    (w, m, c), = gaussian_parts(a)
    assert w == 1.0 and m.tolist() == [1.0, 2.0] and c.tolist() == [[2.0, 0.3], [0.3, 1.0]]
    parts = gaussian_parts(dl.Mixture([a, b], weights=[0.25, 0.75]))
    assert [p[0] for p in parts] == [0.25, 0.75]
    assert parts[1][1].tolist() == [-1.0, 0.0] and parts[1][2].tolist() == [[0.5, 0.0], [0.0, 0.5]]
    assert gaussian_parts(dl.Banana()) is None and gaussian_parts(dl.Normal(0.0, 1.0)) is None


def test_target_contour_values_equal_log_prob():
    mean, cov = np.array([0.5, -1.0]), np.array([[2.0, 0.6], [0.6, 1.0]])
    p = dl.MultivariateNormal(mean, cov)
    xs, ys = xy_grid(p, n=31)
    tr = target_contour(p, xs, ys)
    X, Y = np.meshgrid(xs, ys)
    ref = multivariate_normal(mean, cov).logpdf(np.stack([X, Y], -1))  # scipy, rows = y
    np.testing.assert_allclose(np.asarray(tr.z, dtype=float), ref, rtol=1e-12, atol=1e-12)
    assert tr.zmax == pytest.approx(ref.max()) and tr.zmin == pytest.approx(ref.max() - LOG_RANGE)


def test_target_contour_zero_density_is_a_gap_not_a_number():
    vals = np.zeros((5, 6))
    vals[1:4, 1:4] = 1.0
    g = dl.GridDensity((np.arange(6.0), np.arange(5.0)), vals)
    xs, ys = np.linspace(-1, 6, 15), np.linspace(-1, 5, 13)
    z = np.asarray(target_contour(g, xs, ys).z, dtype=float)
    lp = log_density_grid(g, xs, ys)
    assert np.isneginf(lp).any()
    np.testing.assert_array_equal(np.isnan(z), np.isneginf(lp))
    np.testing.assert_allclose(z[np.isfinite(lp)], lp[np.isfinite(lp)], rtol=0, atol=0)


def test_point_cloud_target_is_drawn_as_its_points():
    pts = np.array([[0.0, 1.0], [2.0, -1.0], [1.0, 1.0]])
    fig = target_figure2d(dl.Empirical(pts))
    assert fig.data[0].type == "scatter"
    np.testing.assert_array_equal(fig.data[0].x, pts[:, 0])
    np.testing.assert_array_equal(fig.data[0].y, pts[:, 1])


def test_xy_grid_covers_the_target_and_the_models():
    p = dl.MultivariateNormal([0.0, 0.0], [[1.0, 0.0], [0.0, 1.0]])
    xs, ys = xy_grid(p, n=11)
    assert len(xs) == len(ys) == 11 and xs[0] < -3 and xs[-1] > 3
    r = _mvn_result(T=5)  # starts at (-2, 0) with scale_x 1: the view reaches -2 - 2.5
    xs2, _ = xy_grid(p, [r], n=11)
    assert xs2[0] <= -4.5 + 1e-12
    with pytest.raises(ValueError, match="needs a 2D target"):
        xy_grid(dl.Normal(0.0, 1.0))


# ---------------------------------------------------------------------------------------------
# the animated fit
# ---------------------------------------------------------------------------------------------

def test_fit2d_animation_frames_traces_and_ellipses():
    p = dl.Banana()
    a, b = _mvn_result("kl", T=21), _mvn_result("reverse_kl", T=11)
    fig = fit2d_animation(p, [a, b], n_frames=6)
    R = 2
    assert len(fig.data) == 1 + 3 * R + R + R
    assert fig.data[0].type == "contour" and fig.data[0].name == "target p (log p)"
    names = [f.name for f in fig.frames]  # paced where the parameters move (viz.frame_steps)
    assert names[0] == "0" and names[-1] == "20" and len(names) == 6
    assert [int(n) for n in names] == frame_steps([a, b], 6)
    assert len(fig.layout.sliders[0].steps) == 6
    assert [bt.label for bt in fig.layout.updatemenus[0].buttons] == ["▶ Play", "▶ ½×", "▶ 2×", "⏸ Pause"]
    for f in fig.frames:
        s = int(f.name)
        assert list(f.traces) == [1, 2, 3, 4, 5, 6, 9, 10]
        for r, first in ((a, 0), (b, 3)):
            i = min(s, len(r.losses) - 1)  # b stopped at step 10: it holds its last model
            m = np.array([r.trajectory["loc_x"][i], r.trajectory["loc_y"][i]])
            for k, tr in ((1.0, f.data[first]), (2.0, f.data[first + 1])):
                ex, ey = ellipse(m, _cov(r, i), k)
                np.testing.assert_allclose(np.array(tr.x[:len(ex)], dtype=float), ex, atol=1e-12)
                np.testing.assert_allclose(np.array(tr.y[:len(ey)], dtype=float), ey, atol=1e-12)
            np.testing.assert_allclose([f.data[first + 2].x[0], f.data[first + 2].y[0]], m, atol=1e-12)
        # the loss markers sit on the loss curves
        assert f.data[6].x[0] == s and f.data[6].y[0] == pytest.approx(a.losses[s])
        assert f.data[7].x[0] == min(s, 10) and f.data[7].y[0] == pytest.approx(b.losses[min(s, 10)])
    np.testing.assert_allclose(np.array(fig.data[7].y, dtype=float), a.losses)
    assert fig.layout.yaxis2.type == "log"  # all losses positive


def test_fit2d_animation_infinite_loss_is_a_gap():
    r = _mvn_result("reverse_kl", T=5, losses=[3.0, 2.0, math.inf, 1.0, 0.5])
    fig = fit2d_animation(dl.Banana(), [r], n_frames=5)
    assert fig.data[4].y[2] is None  # the loss curve
    assert fig.frames[2].data[3].y[0] is None  # the marker at step 2
    assert "D = ∞" in fig.frames[2].data[0].hovertemplate


def test_mixture_model_draws_one_ellipse_pair_per_component():
    comps = [dl.MultivariateNormal([-2.0, 0.0], [[1.0, 0.0], [0.0, 1.0]]),
             dl.MultivariateNormal([2.0, 0.0], [[0.5, 0.2], [0.2, 0.5]])]
    p = dl.Mixture(comps, weights=[0.5, 0.5])
    traj = {"w1": np.array([0.5, 0.3]), "w2": np.array([0.5, 0.7]), "loc_x1": np.array([-1.0, -2.0]),
            "loc_x2": np.array([1.0, 2.0]), "loc_y1": np.zeros(2), "loc_y2": np.zeros(2),
            "scale_x1": np.ones(2), "scale_x2": np.ones(2), "scale_y1": np.ones(2), "scale_y2": np.ones(2),
            "corr1": np.zeros(2), "corr2": np.array([0.0, 0.4])}
    r = FitResult(family="mixture", divergence="kl", divergence_params={}, params={k: float(v[-1]) for k, v in traj.items()},
                  trajectory=traj, losses=np.array([1.0, 0.2]), status="max_steps", steps=1, init={}, lr=0.1,
                  optimizer="adam")
    fig = fit2d_animation(p, [r], n_frames=2)
    last = fig.frames[-1]
    xs = np.asarray(last.data[0].x, dtype=float)  # frames: float32, NaN where the drawn trace has None
    gaps = np.flatnonzero(np.isnan(xs))
    assert len(gaps) == 2  # two closed ellipses, separated by a gap
    assert list(last.data[2].x) == [-2.0, 2.0] and list(last.data[2].customdata) == pytest.approx([0.3, 0.7])
    ex, ey = ellipse([2.0, 0.0], [[1.0, 0.4], [0.4, 1.0]], 1.0)
    second = xs[gaps[0] + 1:-1]
    np.testing.assert_allclose(second, ex, atol=1e-6)


def test_contour_style_draws_log_q():
    r = _mvn_result(T=3)
    p = dl.Banana()
    fig = fit2d_animation(p, [r], n_frames=3, model_style="contour", n=41)
    tr = fig.frames[-1].data[0]
    assert tr.type == "contour"
    q = r.model(2)
    drawn = fig.data[1]  # the frame carries z (float32) only; x and y are the drawn trace's
    assert tr.x is None and np.asarray(tr.z).dtype == np.float32
    np.testing.assert_allclose(np.asarray(tr.z, dtype=float), log_density_grid(q, drawn.x, drawn.y), rtol=1e-6)
    with pytest.raises(ValueError, match="model_style must be 'auto', 'ellipse' or 'contour'"):
        fit2d_animation(p, [r], model_style="dots")


def test_small_multiples_one_panel_per_divergence():
    rs = [_mvn_result(k, T=9, params=pa) for k, pa in (("kl", None), ("reverse_kl", None), ("alpha", {"alpha": 0.5}),
                                                      ("js", None))]
    fig = fit2d_small_multiples(dl.Ring(), rs, n_frames=5, cols=2)
    assert len(fig.data) == 4 * 4
    assert [a.text for a in fig.layout.annotations][:4] == [r.label for r in rs]
    assert len(fig.frames) == 5 and list(fig.frames[0].traces) == [1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15]
    # each panel has its own axes
    assert {fig.data[4 * k + 1].xaxis for k in range(4)} == {"x", "x2", "x3", "x4"}
    assert sum(bool(d.showlegend) for d in fig.data if d.type == "contour") == 1  # one legend entry for p


def test_fit2d_errors():
    r = _mvn_result(T=3)
    with pytest.raises(ValueError, match="needs a 2D target"):
        fit2d_animation(dl.Normal(0.0, 1.0), [r])
    with pytest.raises(ValueError, match="give at least one FitResult"):
        fit2d_animation(dl.Banana(), [])
    with pytest.raises(ValueError, match="cols must be a positive integer"):
        fit2d_small_multiples(dl.Banana(), [r], cols=0)


# ---------------------------------------------------------------------------------------------
# particle flows
# ---------------------------------------------------------------------------------------------

def _flows():
    p = dl.Mixture([dl.MultivariateNormal([-2.0, 0.0], [[0.3, 0.0], [0.0, 0.3]]),
                    dl.MultivariateNormal([2.0, 0.0], [[0.3, 0.0], [0.0, 0.3]])], weights=[0.5, 0.5])
    from divlab.fit.flow import flow

    fl = [flow(p, divergence=d, n=24, steps=6, record_every=2, seed=0) for d in ("mmd", "svgd", "langevin")]
    return p, fl


def test_flow_animation_frames_are_the_particles():
    p, fl = _flows()
    fig = flow_animation(p, fl)
    P = len(fl)
    F = max(len(f.steps) for f in fl)
    assert len(fig.frames) == F and len(fig.layout.sliders[0].steps) == F
    assert len(fig.data) == 2 * P + 2 * P  # per panel: target + particles; loss curves + markers
    assert [fig.data[2 * k].type for k in range(P)] == ["contour"] * P
    for k, f in enumerate(fig.frames):
        for i, flw in enumerate(fl):
            j = min(k, len(flw.steps) - 1)
            # frames carry the positions as float32 (the drawn trace at frame 0 as float64)
            assert np.asarray(f.data[i].x).dtype == np.float32
            np.testing.assert_array_equal(np.asarray(f.data[i].x), flw.frames[j][:, 0].astype(np.float32))
            np.testing.assert_array_equal(np.asarray(f.data[i].y), flw.frames[j][:, 1].astype(np.float32))
            assert f.data[P + i].x[0] == flw.steps[j]
    for i, flw in enumerate(fl):
        np.testing.assert_array_equal(np.asarray(fig.data[2 * P + i].x), np.asarray(flw.steps))
        ys = np.array([np.nan if v is None else v for v in fig.data[2 * P + i].y], dtype=float)
        np.testing.assert_allclose(ys, np.where(np.isfinite(flw.losses), flw.losses, np.nan))
    assert [flow_label(f) for f in fl] == ["MMD flow", "SVGD", "Langevin dynamics"]


def test_flow_animation_bad_input():
    p, fl = _flows()
    with pytest.raises(ValueError, match="needs a 2D target"):
        flow_animation(dl.Normal(0.0, 1.0), fl)
    with pytest.raises(ValueError, match="give at least one flow result"):
        flow_animation(p, [])
    with pytest.raises(ValueError, match="at most 6 side by side"):
        flow_animation(p, fl * 3)


# ---------------------------------------------------------------------------------------------
# layout of every animated figure (1D and 2D): legend, Play/Pause and slider never overlap
# ---------------------------------------------------------------------------------------------
#
# Boxes in paper coordinates (fractions of the plot area's height, 0 = its bottom, 1 = its top)
# from the layout's y / yanchor and pixel heights measured in Chromium (plotly.js 3,
# plotly_white, 12 px font), divided by the plot area's height (layout height minus margins).
# Written independently of divlab.viz.layout, from plotly's own defaults.

_PLOTLY_MARGIN = {"t": 100, "b": 80}   # plotly.js defaults
_SLIDER_LINES_PX = 15 + 14             # current-value line + tick-label line (12 px font)
_LEGEND_ROW_PX = 29
_BUTTONS_PX = 33
_AXIS_TITLE_PX = 43                    # x tick labels and axis title: the title's bottom edge
_TICK_LABELS_PX = 22                   # x tick labels only
_WIDTH_PX = 1000                       # about the app's wide main column


def _plot_px(fig):
    m = fig.layout.margin
    t = m.t if m.t is not None else _PLOTLY_MARGIN["t"]
    b = m.b if m.b is not None else _PLOTLY_MARGIN["b"]
    return (fig.layout.height or 450) - t - b, t, b


def _box(y, anchor, height_px, plot_px):
    """(bottom, top) of a box of ``height_px`` anchored at paper ``y``."""
    h = height_px / plot_px
    if anchor in (None, "auto"):  # plotly's auto anchor
        anchor = "top" if y >= 2 / 3 else ("bottom" if y <= 1 / 3 else "middle")
    return {"top": (y - h, y), "bottom": (y, y + h), "middle": (y - h / 2, y + h / 2)}[anchor]


def _slider_box(fig, plot_px):
    s = fig.layout.sliders[0]
    pad_t = s.pad.t if s.pad and s.pad.t is not None else 20
    pad_b = s.pad.b if s.pad and s.pad.b is not None else 0
    cv = s.currentvalue
    offset = cv.offset if cv is not None and cv.offset is not None else 10
    visible = cv is None or cv.visible is None or cv.visible
    ticklen = s.ticklen if s.ticklen is not None else 7
    px = pad_t + pad_b + (offset if visible else 0) + 25 + ticklen + _SLIDER_LINES_PX - (0 if visible else 15)
    return _box(s.y if s.y is not None else 0.0, s.yanchor or "top", px, plot_px)


def _legend_box(fig, plot_px):
    names = [d.name or "" for d in fig.data if d.showlegend is not False and (d.showlegend or d.name)]
    lg = fig.layout.legend
    if lg.orientation == "h":
        l, r = fig.layout.margin.l or 80, fig.layout.margin.r or 80
        rows, used = 1, 0
        for n in names:
            w = 40 + 6.5 * len(n)
            if used and used + w > _WIDTH_PX - l - r:
                rows, used = rows + 1, 0
            used += w
    else:
        rows = len(names)
    y = lg.y if lg.y is not None else 1.0
    return _box(y, lg.yanchor, rows * _LEGEND_ROW_PX, plot_px)


def _buttons_box(fig, plot_px):
    u = fig.layout.updatemenus[0]
    return _box(u.y if u.y is not None else 1.0, u.yanchor or "top", _BUTTONS_PX, plot_px)


def _apart(a, b) -> bool:
    return a[1] <= b[0] or b[1] <= a[0]


def _animated_figures():
    from divlab import viz

    p1 = dl.Mixture([dl.Normal(-3.0, 1.0), dl.Normal(3.0, 1.0)], weights=[0.5, 0.5])
    two = list(dl.fit(p1, divergence=["kl", "reverse_kl"], steps=8, init={"loc": 1.0, "scale": 1.0}))
    six = list(dl.fit(p1, divergence=["kl", "reverse_kl", "js", "tv", "hellinger", "alpha"], steps=8,
                      init={"loc": 1.0, "scale": 1.0}))
    sweep = list(dl.sweep(p1, "normal", "alpha", param="alpha", values=[0.1, 0.5, 0.9], steps=8))
    p2 = dl.MultivariateNormal([0.0, 0.0], [[1.0, 0.3], [0.3, 0.5]])
    r2 = [_mvn_result("kl"), _mvn_result("reverse_kl"), _mvn_result("js"), _mvn_result("tv")]
    _, fl = _flows()
    figs = {
        "fit_animation (2 fits)": viz.fit_animation(p1, two, n_frames=5),
        "fit_animation (6 fits)": viz.fit_animation(p1, six, n_frames=5),
        "race_animation (2 panels)": viz.race_animation(p1, two, n_frames=5),
        "race_animation (6 panels)": viz.race_animation(p1, six, n_frames=5),
        "sweep_animation": viz.sweep_animation(p1, sweep, "alpha", "α"),
        "fit2d_animation": fit2d_animation(p2, r2[:2], n_frames=5),
        "fit2d_animation (no loss)": fit2d_animation(p2, r2[:2], n_frames=5, show_loss=False),
        "fit2d_small_multiples (1 row)": fit2d_small_multiples(p2, r2[:2], n_frames=5),
        "fit2d_small_multiples (2 rows)": fit2d_small_multiples(p2, r2, n_frames=5, cols=2),
        "flow_animation": flow_animation(p2, fl),
    }
    assert list(figs) == ANIMATED
    return figs


@pytest.fixture(scope="module")
def animated():
    return _animated_figures()


ANIMATED = ["fit_animation (2 fits)", "fit_animation (6 fits)", "race_animation (2 panels)",
            "race_animation (6 panels)", "sweep_animation", "fit2d_animation", "fit2d_animation (no loss)",
            "fit2d_small_multiples (1 row)", "fit2d_small_multiples (2 rows)", "flow_animation"]


@pytest.mark.parametrize("name", ANIMATED)
def test_legend_slider_and_buttons_do_not_overlap(animated, name):
    """Issue 6: the legend sat on the slider's tick labels (Fit 1D, Fit 2D, Flows) and on the Play
    button (Race). Each box must be apart from the others, the controls below the x-axis titles,
    and all of them inside the margins (else plotly grows the margins and moves them)."""
    fig = animated[name]
    plot_px, top_px, bottom_px = _plot_px(fig)
    legend, slider, buttons = _legend_box(fig, plot_px), _slider_box(fig, plot_px), _buttons_box(fig, plot_px)
    assert _apart(legend, slider), f"{name}: legend {legend} overlaps the slider {slider}"
    assert _apart(legend, buttons), f"{name}: legend {legend} overlaps Play/Pause {buttons}"
    assert _apart(buttons, slider), f"{name}: Play/Pause {buttons} overlaps the slider {slider}"
    titled = any(getattr(fig.layout[k].title, "text", None) for k in fig.layout if k.startswith("xaxis"))
    below_axis = -(_AXIS_TITLE_PX if titled else _TICK_LABELS_PX) / plot_px
    for what, box in (("legend", legend), ("slider", slider), ("buttons", buttons)):
        assert box[0] >= 1.0 or box[1] <= below_axis, f"{name}: the {what} {box} is over the plot or its x-axis title"
        assert -bottom_px / plot_px - 1e-9 <= box[0] and box[1] <= 1 + top_px / plot_px + 1e-9, \
            f"{name}: the {what} {box} is outside the margins"


def test_animation_layout_reserves_legend_rows_and_checks_its_input():
    from divlab.viz.layout import animation_layout, legend_rows

    one = animation_layout(["0", "1"], plot_height=300, legend_names=["target p", "KL(p‖q), forward"])
    many = animation_layout(["0", "1"], plot_height=300, legend_names=[f"divergence number {k}" for k in range(12)])
    assert legend_rows([f"divergence number {k}" for k in range(12)]) > 1
    extra = many["margin"]["t"] - one["margin"]["t"]
    assert extra > 0 and many["height"] - one["height"] == extra  # the plot area keeps its height
    assert [s["label"] for s in one["sliders"][0]["steps"]] == ["0", "1"]
    assert [b["label"] for b in animation_layout(["0"], plot_height=100, pause=False)["updatemenus"][0]["buttons"]] == [
        "▶ Play"]
    with pytest.raises(ValueError, match="2 labels for 1 frames"):
        animation_layout(["0"], plot_height=100, labels=["a", "b"])
    with pytest.raises(ValueError, match="plot_height"):
        animation_layout(["0"], plot_height=0)
