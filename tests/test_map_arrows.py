"""The transport map drawn as arrows on Fit 2D and Flows (issue 17): the arrow helper draws exactly
the segments it is given, the app's map has the known answer on a Gaussian translation and sends
half of a one-mode model to the missing mode, and both pages show the arrows and the mean squared
displacement with its direction and unit when the toggle is on."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
from plotly.subplots import make_subplots

import divlab as dl
from divlab.app import entropic_map as em
from divlab.viz.arrows import HEAD_PX, MAP_NAME, add_map_arrows, add_map_arrows_to_spec, open_at_frame
from divlab.viz.palette import MAP_COLOR

ROOT = Path(__file__).resolve().parents[1]
I2 = np.eye(2).tolist()


def _segments(tr):
    """[(start, end), ...] of an arrow trace: triples (start, head, gap)."""
    xs, ys = list(tr["x"]), list(tr["y"])
    assert len(xs) % 3 == 0 and all(v is None for v in xs[2::3]) and all(v is None for v in ys[2::3])
    return [((xs[i], ys[i]), (xs[i + 1], ys[i + 1])) for i in range(0, len(xs), 3)]


# ---------------------------------------------------------------------------------------------
# the arrow helper
# ---------------------------------------------------------------------------------------------

def test_arrows_are_exactly_the_given_segments_in_one_trace():
    rng = np.random.default_rng(0)
    x, Tx = rng.normal(size=(10, 2)), rng.normal(size=(10, 2)) + 3.0
    Tx[5] = np.nan  # a non-finite image is left out
    fig = make_subplots(rows=1, cols=2)
    fig.add_trace(go.Scatter(x=[0], y=[0]), row=1, col=1)
    add_map_arrows(fig, x, Tx, row=1, col=2)
    assert len(fig.data) == 2  # one trace for all arrows, no annotations
    assert not fig.layout.annotations
    tr = fig.data[1]
    assert (tr.xaxis, tr.yaxis) == ("x2", "y2") and tr.name == MAP_NAME
    keep = [i for i in range(10) if i != 5]
    assert _segments(tr) == [((x[i, 0], x[i, 1]), (Tx[i, 0], Tx[i, 1])) for i in keep]
    # a head (the "arrow" marker, turned along the segment) at each image, none at the starts
    assert list(tr.marker.size) == [0, HEAD_PX, 0] * len(keep)
    assert tr.marker.symbol == "arrow" and tr.marker.angleref == "previous"
    assert tr.line.color == MAP_COLOR == tr.marker.color and 0 < tr.opacity < 1


def test_at_most_max_arrows_at_evenly_spaced_points():
    x = np.stack([np.arange(100.0), np.zeros(100)], 1)
    fig = add_map_arrows(go.Figure(), x, x + [0.0, 1.0], max_arrows=4)
    segs = _segments(fig.data[0])
    assert [s[0][0] for s in segs] == [0.0, 33.0, 66.0, 99.0]
    assert all(end == (start[0], start[1] + 1.0) for start, end in segs)
    with pytest.raises(ValueError, match="x has shape"):
        add_map_arrows(go.Figure(), x, x[:5])
    with pytest.raises(ValueError, match="max_arrows must be a positive integer"):
        add_map_arrows(go.Figure(), x, x, max_arrows=0)


def test_in_an_animation_the_arrows_are_in_every_frame_and_drawn_in_the_last():
    fig = go.Figure([go.Scatter(x=[0.0], y=[0.0], mode="markers")],
                    frames=[go.Frame(name=str(k), data=[go.Scatter(x=[float(k)], y=[0.0])], traces=[0])
                            for k in range(3)])
    fig.update_layout(sliders=[{"active": 0, "steps": [{"label": str(k)} for k in range(3)]}])
    x = np.array([[0.0, 0.0], [1.0, 1.0]])
    for out in (add_map_arrows(go.Figure(fig), x, x + 1.0),
                go.Figure(add_map_arrows_to_spec(fig.to_dict(), x, x + 1.0))):
        assert [list(fr.traces) for fr in out.frames] == [[0, 1]] * 3
        assert [len(fr.data[1].x) for fr in out.frames] == [0, 0, 6]
        assert _segments(out.frames[2].data[1]) == [((0.0, 0.0), (1.0, 1.0)), ((1.0, 1.0), (2.0, 2.0))]
    spec = fig.to_dict()
    with_arrows = add_map_arrows_to_spec(spec, x, x + 1.0, xaxis="x2", yaxis="y2")
    assert len(spec["data"]) == 1 and len(spec["frames"][0]["data"]) == 1  # the input is not changed
    assert (with_arrows["data"][1]["xaxis"], with_arrows["data"][1]["yaxis"]) == ("x2", "y2")
    opened = go.Figure(open_at_frame(with_arrows))
    assert list(opened.data[0].x) == [2.0] and len(opened.data[1].x) == 6  # the last frame's state
    assert opened.layout.sliders[0].active == 2
    assert spec["layout"]["sliders"][0]["active"] == 0
    # under the first trace: the frames' indices are renumbered, so each still moves its own trace
    for out in (add_map_arrows(go.Figure(fig), x, x + 1.0, index=0),
                go.Figure(add_map_arrows_to_spec(spec, x, x + 1.0, index=0))):
        assert out.data[0].legendgroup == "transport map" and out.data[1].mode == "markers"
        assert [list(fr.traces) for fr in out.frames] == [[1, 0]] * 3
        assert list(out.frames[1].data[0].x) == [1.0]
    below = go.Figure(open_at_frame(add_map_arrows_to_spec(spec, x, x + 1.0, index=0)))
    assert list(below.data[1].x) == [2.0] and len(below.data[0].x) == 6
    with pytest.raises(ValueError, match="must be a trace position"):
        add_map_arrows_to_spec(spec, x, x, index=5)


def test_a_legend_too_wide_for_one_row_wraps_into_rows_with_room_above():
    """Flows' legend with the arrows' entry ran under plotly's modebar at 1400 px: past
    LEGEND_SAFE_PX it wraps into equal columns, and the top margin grows by a row (the plot area
    keeps its size); a short legend is left as it is."""
    from divlab.viz.arrows import LEGEND_SAFE_PX, make_legend_room
    from divlab.viz.layout import LEGEND_ROW_PX

    flows = ["target p (log p)", "MMD flow", "Sinkhorn flow", "SVGD", "Langevin dynamics"]
    spec = {"data": [{"name": n} for n in [flows[0], MAP_NAME] + flows[1:]] + [{"name": "loss", "showlegend": False}],
            "layout": {"margin": {"t": 70}, "height": 800}}
    out = make_legend_room(spec, before=flows)
    assert out["layout"]["legend"]["entrywidth"] == LEGEND_SAFE_PX // 3  # 6 entries: 2 rows of 3 columns
    assert out["layout"]["legend"]["entrywidthmode"] == "pixels"
    assert out["layout"]["margin"]["t"] == 70 + LEGEND_ROW_PX and out["layout"]["height"] == 800 + LEGEND_ROW_PX
    assert spec["layout"] == {"margin": {"t": 70}, "height": 800}
    short = {"data": [{"name": "target p (log p)"}, {"name": MAP_NAME}], "layout": {}}
    assert make_legend_room(short) is short


def test_transport_map_colour_is_its_own():
    """One colour means "transport map": a violet ΔE ≥ 27 from every other colour of the palette
    and ≥ 53 from those drawn beside it (forward/reverse KL, JS, Hellinger, the four flows), far
    from the target's greys (as documented in divlab.viz.palette)."""
    from divlab.viz.palette import COLORS, delta_e

    others = {k: c for k, c in COLORS.items() if k != "transport_map"}
    assert MAP_COLOR == COLORS["transport_map"]
    assert min(delta_e(MAP_COLOR, c) for c in others.values()) >= 27
    beside = ("kl", "reverse_kl", "js", "hellinger", "mmd", "sinkhorn", "svgd", "langevin")
    assert min(delta_e(MAP_COLOR, others[k]) for k in beside) >= 53
    assert min(delta_e(MAP_COLOR, g) for g in ("#3c3c3c", "#808080", "#b0b0b0")) >= 90


# ---------------------------------------------------------------------------------------------
# the map the pages draw
# ---------------------------------------------------------------------------------------------

def test_map_of_a_translation_is_the_translation():
    """q = N(0, I), p = N(m, I): the optimal map is x ↦ x + m. The barycentric images' mean is
    the target sample's mean exactly (the plan's columns sum to b), so the mean arrow is
    ȳ − x̄ = m + N(0, 2/n · I): sd √(2/400) = 0.071 per axis; 0.3 is 4 sd. The mean squared
    displacement |m|² + 2m·(ȳ − x̄) + spread has sd 2|m|·0.071 = 0.32; 1.3 is 4 sd. Single arrows
    scatter around m by the two samples' local mismatch: the median distance to m was ≤ 0.20 over
    20 seeds (ε = 0.05 s̄² = 0.05)."""
    m = np.array([2.0, -1.0])
    mp = em.transport_map(dl.MultivariateNormal([0.0, 0.0], I2), dl.MultivariateNormal(m.tolist(), I2))
    d = mp["Tx"] - mp["x"]
    assert mp["n_source"] == mp["n_target"] == em.MAP_N and mp["status"] == "converged"
    assert mp["epsilon"] == pytest.approx(0.05, rel=0.2)  # 0.05 × the sample variance (≈ 1)
    assert np.abs(d.mean(0) - m).max() < 0.3
    assert abs(mp["msd"] - m @ m) < 1.3 and mp["rms"] == pytest.approx(math.sqrt(mp["msd"]))
    assert np.median(np.linalg.norm(d - m, axis=1)) < 0.35


def test_a_model_on_one_mode_is_sent_half_to_the_other():
    """Reverse KL's fit on one mode of p = ½N((−3, 0), I) + ½N((3, 0), I): q = N((−3, 0), I). Half
    of q's mass has to cross: the share of images nearer (3, 0) is the target sample's share
    there, Binomial(400, ½)/400 = 0.5 ± 0.025; 0.4..0.6 is 4 sd. Those arrows are long (≈ 6)."""
    p = dl.Mixture([dl.MultivariateNormal([-3.0, 0.0], I2), dl.MultivariateNormal([3.0, 0.0], I2)])
    mp = em.transport_map(dl.MultivariateNormal([-3.0, 0.0], I2), p)
    T = mp["Tx"]
    other = np.linalg.norm(T - [3.0, 0.0], axis=1) < np.linalg.norm(T - [-3.0, 0.0], axis=1)
    assert 0.4 < other.mean() < 0.6
    assert np.median(np.linalg.norm(T[other] - mp["x"][other], axis=1)) > 4.0
    # about half the points move ≈ 6 (the nearest ones less): 12.1 to 14.8 over 20 seeds
    assert 10.0 < mp["msd"] < 18.0


def test_a_clicked_point_cloud_is_the_target_sample_itself():
    """A small clicked cloud (Empirical) is used as it is, with its weights: the images are
    barycentres of its points, so they lie in its convex hull (here the box [−1, 1]²)."""
    pts = [[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [0.0, 0.0]]
    mp = em.transport_map(dl.MultivariateNormal([3.0, 3.0], I2), dl.Empirical(pts))
    assert mp["n_target"] == 5 and mp["n_source"] == em.MAP_N
    assert np.abs(mp["Tx"]).max() <= 1.0 + 1e-9
    assert mp["epsilon"] == pytest.approx(0.05 * 0.8)  # 0.05 × the cloud's variance per axis (4/5)
    assert "5 target points" in em.map_caption([{**mp, "label": "q"}])


def test_fit2d_maps_follow_the_layout():
    """The maps of a Fit 2D view: each fit's arrows on its own panel, or one fit's on the overlay;
    the figure opens at the last step."""
    from divlab.app.fit2d import fit2d_view

    sc = dl.Scenario.from_dict({
        "version": 1, "target": {"type": "mixture", "weights": [0.5, 0.5], "components": [
            {"type": "mvn", "mean": [-3.0, 0.0], "cov": I2}, {"type": "mvn", "mean": [3.0, 0.0], "cov": I2}]},
        "model": {"family": "mvn", "init": {"loc_x": -2.5, "loc_y": 0.0, "scale_x": 1.0, "scale_y": 1.0,
                                            "corr": 0.0}},
        "divergences": [{"key": "kl"}, {"key": "reverse_kl"}], "optimizer": {"name": "adam", "lr": 0.1, "steps": 8},
        "seed": 0, "view": {"frames": 10}})
    for layout in ("panels", "overlay"):
        view = fit2d_view(sc.to_json(), layout=layout)
        assert [m["label"] for m in view["final_models"]] == ["KL(p‖q), forward", "KL(q‖p), reverse"]
        maps = em.fit2d_maps(view)
        fig = go.Figure(em.fit2d_map_figure(view, maps, which=1))
        arrows = [tr for tr in fig.data if tr.legendgroup == "transport map"]
        axes = [(tr.xaxis, tr.yaxis) for tr in arrows]
        assert axes == ([("x", "y"), ("x2", "y2")] if layout == "panels" else [("x", "y")])
        # each just above its panel's target (under the model), and every other trace opens at its
        # own last frame: the renumbered frames still move the traces they moved before
        names = [tr.name for tr in fig.data]
        for tr in arrows:
            i = fig.data.index(tr)
            assert names[i - 1].startswith("target p") and (fig.data[i - 1].xaxis, fig.data[i - 1].yaxis) == (
                tr.xaxis, tr.yaxis)
        plain = go.Figure(open_at_frame(view["figure"]))
        kept = [tr for tr in fig.data if tr.legendgroup != "transport map"]
        assert [tr.to_plotly_json() for tr in kept] == [tr.to_plotly_json() for tr in plain.data]
        assert em.fit2d_shared_panel(view) == (layout == "overlay")
        if layout == "overlay":  # fit 1 (reverse KL) was asked for
            assert _segments(arrows[0])[0][0] == tuple(maps[1]["x"][0])
        assert all(len(_segments(tr)) == em.MAP_ARROWS for tr in arrows)
        assert fig.layout.sliders[0].active == len(fig.frames) - 1
        rows = em.map_rows(maps)
        assert all(float(r[em.MSD_LABEL]) > 0 for r in rows)


# ---------------------------------------------------------------------------------------------
# the pages (AppTest)
# ---------------------------------------------------------------------------------------------

def _chart_traces(at, key):
    charts = [c for c in at.get("plotly_chart") if c.proto.spec and key in c.proto.id]
    assert charts, [c.proto.id for c in at.get("plotly_chart")]
    return json.loads(charts[-1].proto.spec)["data"]


def _map_table(at):
    tables = [d.value for d in at.dataframe if em.MSD_LABEL in d.value.columns]
    assert tables, [list(d.value.columns) for d in at.dataframe]
    return tables[0]


@pytest.mark.parametrize("page, prefix, steps, n", [("fit_2d.py", "fit2d", 10, None), ("flows.py", "flows", 10, 40)])
def test_pages_draw_the_map_when_asked(page, prefix, steps, n):
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=120)
    at.session_state[f"{prefix}_steps"] = steps
    if n:
        at.session_state[f"{prefix}_n"] = n
    at.run()
    at.button(key=f"{prefix}_run_btn").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.toggle(key=f"{prefix}_show_map").value is False  # opt-in
    assert not [t for t in _chart_traces(at, f"{prefix}_anim") if t.get("legendgroup") == "transport map"]
    at.toggle(key=f"{prefix}_show_map").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error
    arrows = [t for t in _chart_traces(at, f"{prefix}_anim") if t.get("legendgroup") == "transport map"]
    table = _map_table(at)
    msd = table[em.MSD_LABEL].astype(float)
    assert ((msd > 0) & np.isfinite(msd)).all()
    assert "q → p" in em.MSD_LABEL and "[squared units of x]" in em.MSD_LABEL
    if prefix == "fit2d":  # the banana lesson in the overlay: KL and reverse KL, the first fit's arrows
        assert len(table) == 2 and len(arrows) == 1
        assert at.selectbox(key="fit2d_map_which").value == 0
    else:  # four flows, one panel each
        assert len(table) == 4 and len(arrows) == 4
        assert len({(t.get("xaxis"), t.get("yaxis")) for t in arrows}) == 4
    assert any("ε = " in c.value and "squared units of x" in c.value for c in at.caption)
