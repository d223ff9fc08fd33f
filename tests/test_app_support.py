"""divlab.app_support: the component table -> Mixture, slider ranges, result rows."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

import divlab as dl
from divlab import app_support as sup

ROW = {"weight": 1.0, "family": "normal", "loc": 0.0, "scale": 1.0, "df": None}


def row(**kw):
    return {**ROW, **kw}


def test_default_table_is_the_design_mixture():
    m = sup.mixture_from_rows(list(sup.DEFAULT_COMPONENTS))
    ref = dl.Mixture([dl.Normal(-3.0, 1.0), dl.Normal(3.0, 1.0)], weights=[0.5, 0.5])
    x = torch.linspace(-8, 8, 41, dtype=torch.float64)
    torch.testing.assert_close(m.log_prob(x), ref.log_prob(x))


def test_families_and_uniform_convention():
    rows = [row(weight=2.0, family="uniform", loc=1.0, scale=2.0), row(family="student_t", df=3.0),
            row(family="laplace", loc=-1.0, scale=0.5), row(family=" Normal ")]
    m = sup.mixture_from_rows(pd.DataFrame(rows))
    spec = m.to_spec()
    assert spec["components"][0] == {"type": "uniform", "low": -1.0, "high": 3.0}
    assert spec["components"][1]["type"] == "student_t" and spec["components"][1]["df"] == 3.0
    assert spec["components"][2]["type"] == "laplace"
    assert spec["weights"] == pytest.approx([0.4, 0.2, 0.2, 0.2])


def test_df_ignored_except_for_student_t():
    assert sup.parse_components([row(df=-5.0)])[0]["df"] is None


def test_blank_rows_skipped():
    rows = [row(), {c: None for c in sup.COLUMNS}, {c: float("nan") if c != "family" else None for c in sup.COLUMNS}]
    assert len(sup.parse_components(rows)) == 1


@pytest.mark.parametrize("rows, message", [
    pytest.param([row(), row(scale=0.0)], "row 2: scale must be > 0, got 0.0", id="scale-zero"),
    pytest.param([row(scale=-1)], "row 1: scale must be > 0, got -1.0", id="scale-negative"),
    pytest.param([row(loc=None)], "row 1: loc is blank", id="blank"),
    pytest.param([row(loc="")], "row 1: loc is blank", id="blank-string"),
    pytest.param([row(loc=float("nan"))], "row 1: loc is blank", id="nan-cell"),
    pytest.param([row(loc="nan")], "row 1: loc must be a number, got NaN", id="nan-text"),
    pytest.param([row(scale="wide")], "row 1: scale must be a number, got 'wide'", id="text"),
    pytest.param([row(loc=float("inf"))], "row 1: loc must be finite", id="inf"),
    pytest.param([row(), row(weight=-0.5)], "row 2: weight must be >= 0, got -0.5", id="negative-weight"),
    pytest.param([row(weight=0.0), row(weight=0)], "weights sum to 0", id="zero-weights"),
    pytest.param([row(family="cauchy")], "row 1: family must be one of normal, student_t, laplace, uniform",
                 id="family"),
    pytest.param([row(family=None)], "row 1: family is blank", id="family-blank"),
    pytest.param([row(family="student_t")], "row 1: df (degrees of freedom) is required", id="df-missing"),
    pytest.param([row(family="student_t", df=0)], "row 1: df must be > 0, got 0.0", id="df-zero"),
    pytest.param([], "the component table is empty", id="empty"),
    pytest.param([row(colour="red")], "row 1: unknown column 'colour'", id="unknown-column"),
    pytest.param([row(weight=True)], "row 1: weight must be a number, got True", id="bool"),
])
def test_bad_tables_raise_clear_errors(rows, message):
    with pytest.raises(sup.ComponentError) as info:
        sup.mixture_from_rows(rows)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_dataframe_with_blank_numeric_cell():
    df = pd.DataFrame([row(), row(scale=np.nan)])
    with pytest.raises(sup.ComponentError, match="row 2: scale is blank"):
        sup.parse_components(df)


def test_fittable_specs():
    keys = [s.key for s in sup.fittable_specs()]
    assert "f_divergence" not in keys
    assert {"kl", "reverse_kl", "alpha", "renyi"} <= set(keys)
    assert all(s.from_logs is not None for s in sup.fittable_specs())
    assert set(sup.DEFAULT_DIVERGENCES) <= set(keys)


@pytest.mark.parametrize("spec", sup.fittable_specs(), ids=lambda s: s.key)
def test_slider_ranges_are_inside_the_allowed_range(spec):
    for p in spec.params:
        lo, hi, default, step = sup.slider_range(p)
        assert math.isfinite(lo) and math.isfinite(hi) and lo < hi and step > 0
        assert lo <= default <= hi
        for v in (lo, hi, default):
            spec.resolve_params({p.name: v})  # every slider position is accepted by the registry


def test_slider_range_clips_infinite_and_open_ends():
    p = dl.divergences.registry.Param("t", 1.0, low=0.0, low_open=True)
    lo, hi, default, step = sup.slider_range(p)
    assert lo == pytest.approx(step) and hi == 6.0 and default == 1.0
    lo, hi, _, _ = sup.slider_range(dl.divergences.registry.Param("s", 0.0))
    assert (lo, hi) == (-5.0, 5.0)


def test_run_fits_and_result_rows():
    rows = [row(loc=1.0)]
    results = sup.run_fits(rows, [("kl", {}), ("alpha", {"alpha": 0.5})], {"loc": 0.0, "scale": 1.0}, 60, 0.05)
    assert [r.divergence for r in results] == ["kl", "alpha"]
    assert all(r.init == {"loc": 0.0, "scale": 1.0} for r in results)
    table = sup.result_rows(results)
    assert table[0]["divergence"].startswith("KL(p‖q), forward: forward KL(p‖q)")
    assert "α=0.5" in table[1]["divergence"]
    assert table[0]["loc"] == results[0].params["loc"]
    assert table[0]["final value"] == f"D(p‖q) = {results[0].final_loss:.6g} nats"
    assert table[1]["final value"] == f"D(p‖q) = {results[1].final_loss:.6g}"  # the α-divergence has no unit
    with pytest.raises(ValueError, match="at least one divergence"):
        sup.run_fits(rows, [], {"loc": 0.0, "scale": 1.0}, 10, 0.05)


def test_infinite_value_row_says_why():
    results = sup.run_fits([row(family="uniform", scale=1.0)], [("reverse_kl", {})], {"loc": 0.0, "scale": 2.0},
                           10, 0.05)
    value = sup.result_rows(results)[0]["final value"]
    assert value.startswith("D(p‖q) = ∞ (")
    assert "p = 0 < q" in value


@pytest.mark.parametrize("x, unit, expected", [
    pytest.param(0.25, "nats", "D(p‖q) = 0.25 nats", id="finite"),
    pytest.param(0.25, "dimensionless", "D(p‖q) = 0.25", id="dimensionless"),
    pytest.param(1.5, "squared units of x", "D(p‖q) = 1.5 squared units of x", id="squared-length"),
    pytest.param(math.inf, "nats", "D(p‖q) = ∞ (why)", id="inf"),
    pytest.param(math.nan, "dimensionless", "D(p‖q) undefined (why)", id="nan"),
])
def test_format_value(x, unit, expected):
    assert sup.format_value(x, "why", unit=unit) == expected


def test_result_rows_use_the_registry_unit_of_each_divergence():
    """TV and H² are pure numbers: their final values carry no 'nats' (issue 6); KL's do."""
    results = sup.run_fits([row(loc=1.0)], [("kl", {}), ("tv", {}), ("hellinger", {}), ("pearson", {})],
                           {"loc": 0.0, "scale": 1.0}, 10, 0.05)
    values = {r.divergence: v["final value"] for r, v in zip(results, sup.result_rows(results))}
    assert values["kl"].endswith(" nats")
    for key in ("tv", "hellinger", "pearson"):
        assert "nats" not in values[key] and values[key].startswith("D(p‖q) = "), values[key]
        float(values[key].split("= ", 1)[1])  # just the number


# ------------------------------------------------------------------ scenario state (issue 6)

def lesson_sc(lesson_id="separated_modes"):
    return dl.load_preset(lesson_id)["scenario"]


def test_resolve_url_state_new_session_link_and_default():
    sc = lesson_sc()
    r = sup.resolve_url_state(sc.to_url_param(), None, None)
    assert r.scenario == sc and r.loaded and r.error is None
    r = sup.resolve_url_state(None, None, None)
    assert r.scenario == sup.default_scenario() and r.loaded and r.error is None
    r = sup.resolve_url_state([sc.to_url_param()], None, None)  # query params may come as a list
    assert r.scenario == sc


def test_resolve_url_state_damaged_link_keeps_last_good():
    good, other = lesson_sc(), lesson_sc("heavy_tails")
    param = good.to_url_param()
    r = sup.resolve_url_state(param[:-4] + "AAAA", good, param)
    assert r.scenario == good and not r.loaded
    assert r.error.startswith("The shared link is damaged or was edited, so it was ignored: scenario URL parameter")
    r = sup.resolve_url_state("%%%", None, None)
    assert r.scenario == sup.default_scenario() and "character '%'" in r.error
    # the session's own link: nothing to do; another valid link: load it
    assert not sup.resolve_url_state(param, good, param).loaded
    r = sup.resolve_url_state(other.to_url_param(), good, param)
    assert r.loaded and r.scenario == other


def test_scenario_from_upload_errors_name_the_file():
    with pytest.raises(ValueError, match=r"^up.json: scenario: malformed JSON at line 1"):
        sup.scenario_from_upload(b"{nope", "up.json")
    with pytest.raises(ValueError, match=r"^up.json: scenario: the file is empty"):
        sup.scenario_from_upload(b"", "up.json")
    with pytest.raises(ValueError, match="nested deeper"):
        sup.scenario_from_upload(b"[" * 1000 + b"]" * 1000, "deep.json")
    sc = lesson_sc()
    assert sup.scenario_from_upload(sup.export_json(sc).encode()) == sc


def test_set_scenario_bumps_version_and_pages_reseed_once():
    state = {}
    sup.set_scenario(state, lesson_sc(), "lesson")
    assert state[sup.VERSION_KEY] == 1 and state["scenario_source"] == "lesson"
    assert sup.needs_seed(state, "fit1d") and not sup.needs_seed(state, "fit1d")
    sup.set_scenario(state, lesson_sc("heavy_tails"), "upload")
    assert state[sup.VERSION_KEY] == 2 and sup.needs_seed(state, "fit1d")


def test_persist_key():
    assert sup.persist_key("fit1d_steps") and sup.persist_key("land_sep")
    for k in ("fit1d_run_btn", "fit1d_table_ab12", "fit1d_canvas", "sidebar_upload", "scenario", 3):
        assert not sup.persist_key(k)


def test_components_spec_round_trip():
    rows = [row(weight=0.7, loc=-2.5, scale=0.8), row(weight=0.3, family="laplace", loc=2.0, scale=0.5),
            row(weight=1.0, family="uniform", loc=1.0, scale=2.0), row(weight=1.0, family="student_t", df=3.0)]
    spec = sup.spec_from_components(rows)
    back = sup.components_from_spec(spec)
    w = sum(r["weight"] for r in rows)
    for a, b in zip(rows, back):
        assert b["family"] == a["family"] and b["weight"] == pytest.approx(a["weight"] / w)
        assert b["loc"] == pytest.approx(a["loc"]) and b["scale"] == pytest.approx(a["scale"])
    assert sup.components_from_spec({"type": "normal", "loc": 1.0, "scale": 2.0})[0]["scale"] == 2.0
    assert sup.components_from_spec({"type": "grid", "x": [0, 1], "values": [1, 1]}) is None
    assert sup.target_kind({"type": "grid", "x": [0.0, 1.0], "values": [1.0, 1.0]}) == "drawn"


def test_build_scenario_round_trips_through_the_url():
    sc = sup.build_scenario(sup.spec_from_components(list(sup.DEFAULT_COMPONENTS)),
                            [("alpha", {"alpha": 0.1}), ("alpha", {"alpha": 0.9}), ("kl", {})],
                            {"loc": -1.0, "scale": 0.5}, steps=123, lr=0.02, optimizer="sgd", seed=7)
    assert dl.Scenario.from_url_param(sc.to_url_param()) == sc
    assert sc.optimizer.steps == 123 and sc.optimizer.name == "sgd" and sc.seed == 7
    assert sup.choices_by_key(sc) == {"alpha": {"alpha": [0.1, 0.9]}, "kl": {}}
    with pytest.raises(ValueError, match="optimizer.steps"):
        sup.build_scenario(sc.target, [("kl", {})], {"loc": 0.0, "scale": 1.0}, steps=0)


def test_fit1d_widget_state_of_a_lesson():
    sc = lesson_sc("alpha_continuum")
    w = sup.fit1d_widget_state(sc)
    assert w["fit1d_divs"] == ["alpha"]
    assert w["fit1d_alpha_alpha_values"] == ", ".join(f"{d.params['alpha']:g}" for d in sc.divergences)
    assert len(sc.divergences) == 5
    assert w["fit1d_steps"] == sc.optimizer.steps and w["fit1d_target_mode"] == "component table"
    assert len(w["fit1d_components"]) == 2


@pytest.mark.parametrize("text, expected", [("0.1, 0.5", [0.1, 0.5]), ("0.2 0.4;0.6", [0.2, 0.4, 0.6]), ("1", [1.0])])
def test_parse_param_values(text, expected):
    spec = dl.divergences.registry.get("alpha")
    assert sup.parse_param_values(spec, spec.params[0], text) == expected


@pytest.mark.parametrize("text, message", [("", "enter at least one value"), ("0.5, abc", "'abc' is not a number"),
                                           ("inf", "not a finite number"), ("7", "alpha")])
def test_parse_param_values_errors(text, message):
    spec = dl.divergences.registry.get("alpha")
    with pytest.raises(ValueError, match=message):
        sup.parse_param_values(spec, spec.params[0], text)


def test_lesson_cards_and_first_sentence():
    cards = sup.lesson_cards(["home", "fit_1d", "race"])
    assert len(cards) == len(dl.presets())
    by_id = {c["id"]: c for c in cards}
    assert by_id["two_equal_modes"]["page"] == "fit_1d" and by_id["banana_2d"]["page"] is None
    assert by_id["symmetric_divergences"]["also"] == "race" and by_id["renyi_order"]["also"] is None
    assert all(c["sentence"] and len(c["sentence"]) <= 220 for c in cards)
    assert sup.first_sentence("The first sentence. Then another.") == "The first sentence."
    assert sup.first_sentence("e.g. 3.5 is fine. Next.") == "e.g. 3.5 is fine."  # no cut inside "e.g." or "3.5"


# ------------------------------------------------------------------ drawing -> GridDensity

def _integral(spec):
    return float(np.trapezoid(spec["values"], spec["x"]))


def test_drawn_triangle_becomes_a_normalized_density_peaking_under_the_stroke():
    # a tent from x-pixel 100 to 500 on a 600 x 200 canvas, apex at pixel 300 (x = 0 on [-6, 6])
    stroke = [(100, 200), (300, 0), (500, 200)]
    spec = sup.density_from_strokes([stroke], 600, 200, (-6.0, 6.0), smooth=0.0)
    assert spec["type"] == "grid" and len(spec["x"]) == 201
    assert _integral(spec) == pytest.approx(1.0, rel=1e-3)
    x, v = np.array(spec["x"]), np.array(spec["values"])
    assert x[np.argmax(v)] == pytest.approx(0.0, abs=0.1)
    # a tent of base 8 (x in [-4, 4]) and area 1 has height 1/4
    assert v.max() == pytest.approx(0.25, rel=0.03)
    assert v[np.abs(x) > 4.2].max() == pytest.approx(0.0, abs=1e-12)  # no stroke there: density 0
    g = dl.from_spec(spec)  # a valid divlab GridDensity
    assert float(g.log_prob(torch.tensor([0.0], dtype=torch.float64)).exp()) == pytest.approx(v.max(), rel=1e-3)


def test_smoothing_keeps_mass_and_lowers_the_peak():
    stroke = [(100, 200), (300, 0), (500, 200)]
    rough = sup.density_from_strokes([stroke], 600, 200, smooth=0.0)
    smooth = sup.density_from_strokes([stroke], 600, 200, smooth=0.05)
    assert _integral(smooth) == pytest.approx(1.0, rel=1e-3)
    assert max(smooth["values"]) < max(rough["values"])


@pytest.mark.parametrize("strokes, ink, message", [
    pytest.param([], 0.0, "canvas is empty", id="empty"),
    pytest.param([[(300, 100)]], 0.0, "single dot", id="dot"),
    pytest.param([[(300, 100), (305, 98)]], 0.0, "single dot", id="tiny"),
    pytest.param([[(0, 200), (600, 200)]], 0.0, "bottom edge", id="bottom"),
    pytest.param([[(0, 10), (600, 10)]], 0.95, "95% filled", id="filled"),
])
def test_bad_drawings_raise_clear_errors(strokes, ink, message):
    with pytest.raises(sup.DrawingError, match=message):
        sup.density_from_strokes(strokes, 600, 200, ink=ink)


def test_bad_drawing_range():
    with pytest.raises(sup.DrawingError, match="right end must be larger"):
        sup.density_from_strokes([[(0, 10), (600, 10)]], 600, 200, (3.0, 3.0))


def test_canvas_points_and_ink_fraction():
    data = {"objects": [{"type": "path", "path": [["M", 10, 20], ["Q", 11, 21, 12, 22], ["L", 30, 40]]},
                        {"type": "rect"}, {"type": "line", "left": 5, "top": 5, "x1": 0, "y1": 0, "x2": 10, "y2": 0}]}
    assert sup.canvas_points(data) == [[(10.0, 20.0), (12.0, 22.0), (30.0, 40.0)], [(5.0, 5.0), (15.0, 5.0)]]
    assert sup.canvas_points(None) == [] and sup.canvas_points({"objects": None}) == []
    img = np.full((10, 10, 4), 255, dtype=np.uint8)
    img[:3, :, :3] = 0
    assert sup.ink_fraction(img) == pytest.approx(0.3)
    assert sup.ink_fraction(None) == 0.0


# ------------------------------------------------------------------ calculator, theory, landscape

def test_calculator_rows_closed_forms_agree_with_quadrature():
    p, q = dl.Normal(0.0, 1.0), dl.Normal(1.0, 2.0)
    rows = {r["key"]: r for r in sup.calculator_rows(p, q)}
    assert rows["kl"]["number"] == pytest.approx(math.log(2) + 2 / 8 - 0.5, rel=1e-12)
    assert rows["wasserstein"]["number"] == pytest.approx(math.sqrt(2), rel=1e-12)  # W2 = sqrt(Δμ² + Δσ²)
    for key in ("kl", "reverse_kl", "jeffreys", "hellinger", "alpha", "renyi", "bhattacharyya", "cauchy_schwarz"):
        assert rows[key]["estimator"] == "closed_form"
        assert rows[key]["check_delta"] < 1e-8, key
    assert rows["kl"]["unit"] == "nats" and rows["wasserstein"]["unit"] == "units of x"
    assert rows["tv"]["unit"] == rows["hellinger"]["unit"] == rows["pearson"]["unit"] == "dimensionless"
    assert all(r["unit"] == dl.divergences.get(k).unit for k, r in rows.items())
    assert "sinkhorn" not in rows and "f_divergence" not in rows
    assert all(not (isinstance(r["number"], float) and math.isnan(r["number"])) for r in rows.values() if "number" in r)


def test_calculator_infinite_value_has_reason():
    p = dl.Uniform(-1.0, 1.0)
    rows = {r["key"]: r for r in sup.calculator_rows(p, dl.Normal(0.0, 1.0))}
    assert rows["reverse_kl"]["value"].startswith("∞ (")
    assert rows["kl"]["value"] != "not applicable" and math.isfinite(rows["kl"]["number"])


def test_mc_error_curve_shrinks_with_n():
    c = sup.mc_error_curve(dl.Normal(0.0, 1.0), dl.Normal(1.0, 2.0), "kl", sizes=(30, 3000), seeds=4)
    assert c["reference"] == pytest.approx(math.log(2) - 0.25, rel=1e-12) and c["reference_estimator"] == "closed_form"
    assert c["abs_error"][1] < c["abs_error"][0]
    assert c["stderr"][1] == pytest.approx(c["stderr"][0] / 10, rel=0.3)  # 1/sqrt(n): 100x samples, 10x smaller


def test_f_h_curves_known_weights():
    c = sup.f_h_curves(["kl", "reverse_kl", "pearson", "tv"])
    kl, rkl, pe, tv = (c[k] for k in c)
    r = kl["r"]
    np.testing.assert_allclose(kl["h"], r, rtol=1e-12)            # forward KL: h(r) = r
    np.testing.assert_allclose(rkl["h"], np.ones_like(r), rtol=1e-12)  # reverse KL: h = 1
    np.testing.assert_allclose(pe["h"], 2 * r ** 2, rtol=1e-12)    # Pearson: f = (u−1)², h = 2r²
    assert tv["h"] is None and tv["note"]
    u = kl["u"]
    i1 = int(np.argmin(np.abs(u - 1.0)))
    assert abs(kl["f"][i1]) < 1e-3  # f(1) = 0
    assert (kl["f"] >= -1e-15).all()  # normalized f >= 0


def test_h_along_x_is_the_density_ratio_for_forward_kl():
    p, q = dl.Mixture([dl.Normal(-3.0, 1.0), dl.Normal(3.0, 1.0)], weights=[0.5, 0.5]), dl.Normal(0.0, 2.0)
    x = np.linspace(-5, 5, 11)
    w = sup.h_along_x(p, q, ["kl", "reverse_kl", "tv"], x)
    xt = torch.tensor(x, dtype=torch.float64)
    ratio = (p.log_prob(xt) - q.log_prob(xt)).exp().numpy()
    np.testing.assert_allclose(w["KL(p‖q), forward"][1], ratio, rtol=1e-10)
    np.testing.assert_allclose(w["KL(q‖p), reverse"][1], 1.0)
    assert len(w) == 2  # TV has no smooth weight


def test_landscape_bifurcation_one_then_two_reverse_kl_optima():
    one = sup.landscape_view(sup.two_modes_spec(0.0), "reverse_kl", {}, restarts=6, steps=150, n=(21, 15))
    two = sup.landscape_view(sup.two_modes_spec(8.0), "reverse_kl", {}, restarts=6, steps=150, n=(21, 15))
    assert len(one["optima"]) == 1
    assert one["optima"][0].params["loc"] == pytest.approx(0.0, abs=1e-3)
    assert one["optima"][0].params["scale"] == pytest.approx(1.0, rel=1e-3)  # the target itself: D = 0
    locs = sorted(o.params["loc"] for o in two["optima"] if abs(o.params["loc"]) > 1)
    assert locs and all(abs(abs(v) - 4.0) < 0.05 for v in locs)  # one optimum sits on each mode
    assert one["landscape"].values.shape == (15, 21)


def test_two_modes_spec_and_family_sweep():
    spec = sup.two_modes_spec(6.0)
    assert [c["loc"] for c in spec["components"]] == [-3.0, 3.0]
    with pytest.raises(ValueError, match="separation"):
        sup.two_modes_spec(-1.0)
    res = sup.family_sweep(spec, "alpha", {"loc": 2.0, "scale": 1.0}, 60, values=[0.0, 1.0])
    assert [r.divergence_params["alpha"] for r in res] == [0.0, 1.0]
    # α = 1 is forward KL: moment matching gives scale sqrt(1 + 9) = sqrt(10)
    assert res[1].params["scale"] == pytest.approx(math.sqrt(10), rel=0.02)
    with pytest.raises(ValueError, match="key must be one of"):
        sup.family_sweep(spec, "kl", {}, 10)


def test_page_from_url():
    paths = ["home", "fit_1d", "race"]
    assert sup.page_from_url("http://h:8501/race?s=abc", paths) == "race"
    assert sup.page_from_url("http://h:8501/?s=abc", paths) is None
    assert sup.page_from_url("http://h:8501/nope", paths) is None
    assert sup.page_from_url(None, paths) is None


def test_fit1d_view_mode_metrics_forward_covers_reverse_seeks():
    sc = dl.load_preset("two_equal_modes")["scenario"].with_overrides(steps=30)
    view = sup.fit1d_view(sc.to_json())
    fwd, rev = view["modes"]
    assert fwd["modes covered"] == "2 of 2" and rev["modes covered"] == "1 of 2"
    assert fwd["coverage (p in q's 95% region)"] > 0.99  # forward KL puts q over all of p
    assert rev["coverage (p in q's 95% region)"] < 0.55  # reverse KL holds one of two equal modes
    assert rev["precision (q in p's 95% region)"] > fwd["precision (q in p's 95% region)"]
    assert len(view["look_for"]) == 2 and view["table"][0]["final value"].endswith("nats")


def test_fit1d_downloads_are_real_files():
    sc = dl.load_preset("two_equal_modes")["scenario"].with_overrides(steps=20)
    out = sup.fit1d_downloads(sc.to_json())
    _, results = sup.run_scenario_json(sc.to_json())
    assert out["gif"][:6] == b"GIF89a"
    lines = out["csv"].decode().splitlines()
    assert lines[0] == "step,divergence,label,loc,scale,loss"
    assert len(lines) == 1 + sum(len(r.losses) for r in results)  # one row per trajectory point
    assert b"plotly" in out["html"] and b"<html" in out["html"][:200].lower()
