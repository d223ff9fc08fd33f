"""Fit 2D and Flows: the plain helpers behind them (divlab.app_support_2d) and AppTest runs of
both pages (defaults, two lessons each, bad input next to the control, no exception)."""

from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest

import divlab as dl
from divlab import app_support as sup
from divlab import app_support_2d as s2
from divlab.scenario import load_preset

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 120


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def test_table_to_mixture_and_back():
    rows = [{"weight": 1.0, "mean_x": -1.0, "mean_y": 2.0, "scale_x": 0.5, "scale_y": 2.0, "corr": 0.3},
            {"weight": 3.0, "mean_x": 1.0, "mean_y": 0.0, "scale_x": 1.0, "scale_y": 1.0, "corr": 0.0},
            {"weight": None, "mean_x": None, "mean_y": None, "scale_x": None, "scale_y": None, "corr": None}]
    spec = s2.spec_from_table(rows)
    assert spec["weights"] == [0.25, 0.75]
    assert spec["components"][0]["cov"] == [[0.25, 0.3], [0.3, 4.0]]  # corr·sx·sy = 0.3·0.5·2
    back = s2.table_from_spec(spec)
    for a, b in zip(back, rows[:2]):
        assert a == pytest.approx({**b, "weight": b["weight"] / 4.0})
    d = dl.from_spec(spec)
    x = np.array([[0.3, -0.2]])
    ref = 0.25 * dl.MultivariateNormal([-1.0, 2.0], [[0.25, 0.3], [0.3, 4.0]]).prob(x) \
        + 0.75 * dl.MultivariateNormal([1.0, 0.0], np.eye(2)).prob(x)
    assert float(d.prob(x)) == pytest.approx(float(ref), rel=1e-12)


@pytest.mark.parametrize("change, message", [
    ({"scale_x": 0.0}, "row 1: scale_x must be > 0"),
    ({"corr": 1.0}, "row 1: corr must be strictly between -1 and 1"),
    ({"mean_y": "abc"}, "row 1: mean_y must be a number (got 'abc')"),
    ({"mean_x": None}, "row 1: mean_x is empty"),
    ({"weight": -1.0}, "row 1: weight must be >= 0"),
    ({"weight": 0.0}, "the weights are all 0"),
])
def test_table_errors_name_row_and_column(change, message):
    row = {"weight": 1.0, "mean_x": 0.0, "mean_y": 0.0, "scale_x": 1.0, "scale_y": 1.0, "corr": 0.0}
    with pytest.raises(s2.InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        s2.spec_from_table([{**row, **change}])
    with pytest.raises(s2.InputError, match="no components"):
        s2.spec_from_table([])


def _canvas(h=120, w=120):
    return np.full((h, w, 4), 255.0)


def test_brush_painting_becomes_a_density_where_it_was_painted():
    img = _canvas()
    img[10:40, 70:110, :3] = 0.0  # a dark patch top right: x > 0, y > 0
    spec = s2.density_from_brush(img, ((-4.0, 4.0), (-4.0, 4.0)), n=24, smooth=0.0)
    g = dl.from_spec(spec)
    assert g.dim == 2
    m = g.mean.numpy()
    # the patch spans columns 70..110 of 120 (x from 0.67 to 3.33) and rows 10..40 (y from 3.33 down to 1.33)
    assert 0.6 < m[0] < 3.4 and 1.2 < m[1] < 3.5
    assert float(g.prob(np.array([[-3.0, -3.0]]))) == 0.0  # unpainted: no mass


@pytest.mark.parametrize("paint, message", [
    (None, "The canvas is empty"),
    ("dot", "That is a single dot"),
    ("full", "% painted"),
])
def test_brush_bad_input(paint, message):
    img = _canvas()
    if paint == "dot":
        img[50:53, 50:53, :3] = 0.0
    elif paint == "full":
        img[:, :, :3] = 0.0
    with pytest.raises(s2.InputError, match=message):
        s2.density_from_brush(img)
    with pytest.raises(s2.InputError, match="The canvas is empty"):
        s2.density_from_brush(None)


def _clicks(pts, r=4):
    return {"objects": [{"type": "circle", "left": x - r, "top": y - r, "radius": r} for x, y in pts]}


def test_clicked_points_become_a_sample_cloud():
    spec = s2.points_from_canvas(_clicks([(0, 0), (100, 100), (200, 50)]), 200, 200, ((-4.0, 4.0), (-2.0, 2.0)))
    assert spec == {"type": "empirical", "points": [[-4.0, 2.0], [0.0, 0.0], [4.0, 1.0]]}
    assert dl.from_spec(spec).n == 3
    with pytest.raises(s2.InputError, match="No points yet"):
        s2.points_from_canvas({"objects": []}, 200, 200)
    with pytest.raises(s2.InputError, match="A single dot is not a sample cloud"):
        s2.points_from_canvas(_clicks([(5, 5)]), 200, 200)
    with pytest.raises(s2.InputError, match="All points are at the same place"):
        s2.points_from_canvas(_clicks([(5, 5)] * 4), 200, 200)


def test_shapes_init_and_scenario():
    for name in s2.SHAPES:
        assert dl.from_spec(s2.shape_spec(name)).dim == 2
    with pytest.raises(s2.InputError, match="curvature must be a number in"):
        s2.shape_spec("banana", curvature=5.0)
    init = s2.fit2d_init("mixture", 1.0, -1.0, 0.5, components=3)
    assert [init[f"w{k}"] for k in (1, 2, 3)] == pytest.approx([1 / 3] * 3)
    assert init["loc_x1"] == pytest.approx(1.5) and init["loc_y1"] == pytest.approx(-1.0)
    sc = s2.build_2d_scenario(s2.shape_spec("ring"), [("kl", {}), ("sinkhorn", {"epsilon": 0.5})], family="mixture",
                              init=init, components=3, estimator="auto", samples=64, steps=10)
    assert sc.model.components == 3 and sc.samples == 64 and sc.estimator_for("sinkhorn") == "samples"
    only_quad = s2.build_2d_scenario(s2.shape_spec("ring"), [("kl", {})], family="mvn",
                                     init=s2.fit2d_init("mvn", 0.0, 0.0, 1.0), samples=64, steps=10)
    assert only_quad.samples is None  # not used by quadrature, so not stored
    # widget state round trip: the lesson's widgets rebuild the lesson's scenario
    lesson = load_preset("three_blobs_sinkhorn_mmd")["scenario"]
    w = s2.widget_state(lesson)
    choices = [c for k in w["fit2d_divs"] for c in s2.parse_choices(k, w.get(f"fit2d_{k}_values", ""))]
    rebuilt = s2.build_2d_scenario(s2.spec_from_table(w["fit2d_rows"]), choices, family=w["fit2d_family"],
                                   init=s2.fit2d_init(w["fit2d_family"], w["fit2d_start_x"], w["fit2d_start_y"],
                                                      w["fit2d_start_scale"]),
                                   estimator=w["fit2d_estimator"], samples=w["fit2d_samples"], lr=w["fit2d_lr"],
                                   steps=w["fit2d_steps"], title=lesson.title, frames=lesson.view.frames)
    assert [(d.key, d.params) for d in rebuilt.divergences] == [(d.key, d.params) for d in lesson.divergences]
    assert dl.from_spec(rebuilt.target).log_prob(np.zeros((1, 2))).item() == pytest.approx(
        lesson.build_target().log_prob(np.zeros((1, 2))).item(), rel=1e-12)


# ---------------------------------------------------------------------------------------------
# AppTest: Fit 2D
# ---------------------------------------------------------------------------------------------

def _page(name, scenario=None):
    at = AppTest.from_file(str(ROOT / "pages" / name), default_timeout=TIMEOUT)
    if scenario is not None:
        at.session_state[sup.SCENARIO_KEY] = scenario
        at.session_state["scenario_source"] = "lesson"
        at.session_state[sup.VERSION_KEY] = 1
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _table(at, column="divergence"):
    """The results table (the first dataframe with ``column``; a component table comes before it)."""
    tables = [d.value for d in at.dataframe if column in d.value.columns]
    assert tables, [list(d.value.columns) for d in at.dataframe]
    return tables[0]


def test_fit2d_defaults_run():
    at = _page("fit_2d.py")
    assert not at.get("plotly_chart") or len(at.get("plotly_chart")) == 1  # only the target preview before Run
    at.session_state["fit2d_steps"] = 20
    at.run()
    at.button(key="fit2d_run_btn").click().run()
    assert not at.exception, [e.value for e in at.exception]
    table = _table(at)
    assert list(table["divergence"].str.slice(0, 7)) == ["KL(p‖q)", "KL(q‖p)"]
    assert table["final value"].str.endswith("nats").all()
    assert "model q parameters" in table and table["model q parameters"].str.contains("loc_x=").all()
    assert not at.error
    modes = _table(at, "modes covered")  # dl.mode_metrics on the banana: one mode, both fits cover it
    assert list(modes["modes covered"]) == ["1 of 1", "1 of 1"]
    cov = modes["coverage (p in q's 95% region)"]
    assert ((cov > 0) & (cov <= 1)).all()


@pytest.mark.parametrize("lesson", ["ring_2d", "three_blobs_sinkhorn_mmd"])
def test_fit2d_opens_a_lesson(lesson):
    sc = load_preset(lesson)["scenario"].with_overrides(steps=15)
    at = _page("fit_2d.py", sc)  # a loaded lesson runs at once
    assert at.session_state["fit2d_divs"] == list(dict.fromkeys(d.key for d in sc.divergences))
    table = _table(at)
    assert len(table) == len(sc.divergences)
    assert not at.error
    from divlab.divergences.registry import get

    labels = [get(d.key).label(**d.resolved()) for d in sc.divergences]
    assert all(row.startswith(label) for row, label in zip(table["divergence"], labels))
    assert len(at.get("plotly_chart")) >= 1


def test_fit2d_bad_table_keeps_the_last_result():
    at = _page("fit_2d.py")
    at.session_state["fit2d_steps"] = 10
    at.run()
    at.button(key="fit2d_run_btn").click().run()
    good = _table(at)
    at.session_state["fit2d_target_mode"] = "component table"
    at.session_state["fit2d_rows"] = [{"weight": 1.0, "mean_x": 0.0, "mean_y": 0.0, "scale_x": -1.0, "scale_y": 1.0,
                                       "corr": 0.0}]
    at.run()
    assert not at.exception
    assert any("row 1: scale_x must be > 0" in e.value for e in at.error)
    at.button(key="fit2d_run_btn").click().run()
    assert any("Fix the target" in e.value for e in at.error)
    assert _table(at).equals(good)  # the last good result stays


def test_fit2d_empty_canvas_says_so():
    at = _page("fit_2d.py")
    at.radio(key="fit2d_target_mode").set_value("paint a density (brush)").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("The canvas is empty" in e.value for e in at.error)
    at.radio(key="fit2d_target_mode").set_value("click points (sample cloud)").run()
    assert not at.exception
    assert any("No points yet" in e.value for e in at.error)


# ---------------------------------------------------------------------------------------------
# AppTest: Flows
# ---------------------------------------------------------------------------------------------

def test_flows_defaults_run():
    at = _page("flows.py")
    at.session_state["flows_n"] = 40
    at.session_state["flows_steps"] = 10
    at.run()
    at.button(key="flows_run_btn").click().run()
    assert not at.exception, [e.value for e in at.exception]
    table = _table(at, "flow")
    assert len(table) == 4 and table["flow"].str.startswith(("MMD", "Sinkhorn", "SVGD", "Langevin")).all()
    # each measure is named with its unit (transport and kernel measures are not in nats)
    assert set(table["measure (particles vs samples of p)"].str.extract(r"\[(.*)\]$")[0]) <= {
        "kernel units", "squared units of x", "units of x"}
    assert not table["at the end"].str.lower().str.contains("nan").any()
    assert len(at.get("plotly_chart")) == 1


@pytest.mark.parametrize("lesson", ["banana_2d", "three_blobs_sinkhorn_mmd"])
def test_flows_on_a_lesson_target(lesson):
    sc = load_preset(lesson)["scenario"]
    at = AppTest.from_file(str(ROOT / "pages" / "flows.py"), default_timeout=TIMEOUT)
    at.session_state[sup.SCENARIO_KEY] = sc
    at.session_state["scenario_source"] = "lesson"
    at.session_state[sup.VERSION_KEY] = 1
    at.session_state["flows_n"] = 30
    at.session_state["flows_steps"] = 8
    at.session_state["flows_which"] = ["svgd", "langevin"]
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.radio(key="flows_target_mode").value == "the scenario's target"
    assert len(_table(at, "flow")) == 2


def test_flows_bad_input():
    at = _page("flows.py")
    at.multiselect(key="flows_which").set_value([]).run()
    assert any("Choose at least one flow" in e.value for e in at.error)
    at.button(key="flows_run_btn").click().run()
    assert not at.exception
    assert not at.get("plotly_chart")
    at.session_state["flows_target_mode"] = "component table"
    at.session_state["flows_rows"] = [{"weight": "x", "mean_x": 0.0, "mean_y": 0.0, "scale_x": 1.0, "scale_y": 1.0,
                                       "corr": 0.0}]
    at.run()
    assert not at.exception
    assert any("row 1: weight must be a number" in e.value for e in at.error)


def test_sample_divergence_values_carry_their_own_unit():
    sc = load_preset("three_blobs_sinkhorn_mmd")["scenario"].with_overrides(steps=3)
    view = s2.fit2d_view(sc.to_json())
    finals = [row["final value"] for row in view["table"]]
    assert finals[0].endswith(" squared units of x") and finals[1].endswith(" kernel units")
    assert not any("nats" in v for v in finals)
    assert go.Figure(view["figure"]).layout.annotations[1].text == "D(p‖q) per step [kernel units; squared units of x]"
