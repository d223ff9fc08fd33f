"""AppTest checks of every page of the app (issue 6): defaults, two lessons each, one bad input
each, never an exception; and the shared sidebar: share link, damaged link, JSON import/export,
state across page switches.

Runs are kept short: scenarios are loaded with few optimizer steps."""

from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

import divlab as dl  # noqa: E402
from divlab import app_support as sup  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 120
STEPS = 30


def lesson(lesson_id: str, steps: int = STEPS) -> dl.Scenario:
    return dl.load_preset(lesson_id)["scenario"].with_overrides(steps=steps)


def page(name: str, scenario: dl.Scenario | None = None, source: str = "lesson", **state) -> AppTest:
    """Run one page file with ``scenario`` as the session's scenario (as a lesson or link loads it)."""
    at = AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=TIMEOUT)
    if scenario is not None:
        at.session_state[sup.SCENARIO_KEY] = scenario
        at.session_state[sup.VERSION_KEY] = 1
        at.session_state["scenario_source"] = source
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    ok(at)
    return at


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def app(**query) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    return ok(at)


def final_table(at: AppTest):
    """The Fit 1D / Race table of final fits (the one with a "final value" column)."""
    tables = [d.value for d in at.dataframe if "final value" in d.value.columns]
    assert tables, "no final-fits table on the page"
    return tables[-1]


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


# -------------------------------------------------------------------------------- app shell

def test_app_sidebar_has_import_export_share_and_device():
    at = app()
    assert any("divergence geometry" in t.value for t in at.title)
    assert len(at.sidebar.get("file_uploader")) == 1
    assert len(at.sidebar.get("download_button")) == 1
    assert any("Device:" in c.value for c in at.sidebar.caption)
    sc = at.session_state[sup.SCENARIO_KEY]
    assert sc == sup.default_scenario()
    # the share link in the sidebar holds the scenario, and it decodes to the same state
    link = at.sidebar.code[0].value
    assert "?s=" in link
    assert dl.Scenario.from_url_param(link.split("?s=", 1)[1]) == sc


def test_share_link_restores_exact_state_on_fit1d():
    sc = lesson("alpha_continuum")
    at = app(s=sc.to_url_param())
    assert at.session_state[sup.SCENARIO_KEY] == sc
    assert not at.sidebar.error
    at.switch_page("pages/fit_1d.py").run()
    ok(at)
    # the widgets show the linked scenario: five α values, its steps and start, and it ran at once
    assert at.session_state["fit1d_divs"] == ["alpha"]
    assert at.session_state["fit1d_alpha_alpha_values"] == sup.format_param_values(
        [d.params["alpha"] for d in sc.divergences])
    assert at.session_state["fit1d_steps"] == STEPS
    assert at.session_state[sup.SCENARIO_KEY] == sc  # the page rebuilt exactly the same scenario
    table = final_table(at)
    assert len(table) == 5 and table["final value"].str.match(r"^D\(p‖q\) = [-+0-9.e]+$").all()  # α: no unit


def test_damaged_link_says_so_and_keeps_the_default():
    sc = lesson("separated_modes")
    bad = sc.to_url_param()[:-6] + "AAAAAA"
    at = app(s=bad)
    msg = " ".join(e.value for e in at.sidebar.error)
    assert "shared link is damaged" in msg
    assert at.session_state[sup.SCENARIO_KEY] == sup.default_scenario()
    at2 = app(s="not base64 !!")
    assert "character" in " ".join(e.value for e in at2.sidebar.error)


def test_import_bad_json_keeps_state_then_good_json_loads():
    # AppTest (Streamlit 1.67) reruns only the page script of a st.navigation app, so app.py's
    # sidebar is gone after the first run: the upload handler that app.py calls with the uploaded
    # file is driven with the session state here.
    at = app()
    state = at.session_state
    before = state[sup.SCENARIO_KEY]
    assert not sup.apply_upload(state, b'{"version": 1, "target": ', "broken.json", "id-1")
    assert state["upload_error"].startswith("broken.json: scenario: malformed JSON at line 1")
    assert state[sup.SCENARIO_KEY] == before
    good = lesson("heavy_tails")
    assert sup.apply_upload(state, sup.export_json(good).encode(), "heavy.json", "id-2")
    assert not sup.apply_upload(state, b"{", "heavy.json", "id-2")  # the same upload is handled once
    at.run()
    ok(at)
    assert at.session_state[sup.SCENARIO_KEY] == good and "upload_error" not in at.session_state


def test_state_survives_page_switches():
    at = app()
    at.switch_page("pages/fit_1d.py").run()
    ok(at)
    at.number_input(key="fit1d_steps").set_value(77).run()
    ok(at)
    assert at.session_state[sup.SCENARIO_KEY].optimizer.steps == 77
    at.switch_page("pages/theory.py").run()
    ok(at)
    at.switch_page("pages/fit_1d.py").run()
    ok(at)
    assert at.number_input(key="fit1d_steps").value == 77
    assert at.session_state[sup.SCENARIO_KEY].optimizer.steps == 77


# -------------------------------------------------------------------------------- Home

def test_home_gallery_and_lesson_click_opens_its_page():
    at = app()
    n_lessons = len(dl.presets())
    assert len([b for b in at.button if b.label.startswith("Open on")]) >= n_lessons - 5  # 2D need Fit 2D
    at.button(key="home_open_separated_modes_landscape_btn").click()
    at.session_state["land_restarts"] = 4
    at.run()
    ok(at)
    assert at.session_state[sup.SCENARIO_KEY] == dl.load_preset("separated_modes")["scenario"]
    assert any(t.value == "Landscape" for t in at.title)


# -------------------------------------------------------------------------------- Fit 1D

@pytest.mark.parametrize("lesson_id, rows", [("disjoint_supports", 4), ("symmetric_divergences", 4)])
def test_fit1d_lessons_run_at_once(lesson_id, rows):
    at = page("fit_1d", lesson(lesson_id))
    table = final_table(at)
    assert len(table) == rows
    if lesson_id == "disjoint_supports":  # KL(p‖q) of a Normal to disjoint flat pieces is finite, JS ≤ ln 2
        js = table[table["divergence"].str.startswith("Jensen")]["final value"].iloc[0]
        assert float(js.split("= ")[1].split()[0]) <= 0.6931472


def test_fit1d_bad_parameter_text_is_reported_next_to_it():
    at = page("fit_1d", lesson("alpha_continuum"))
    good = final_table(at)
    at.text_input(key="fit1d_alpha_alpha_values").set_value("0.5, abc").run()
    ok(at)
    assert any("'abc' is not a number" in e for e in errors(at))
    at.button(key="fit1d_run_btn").click().run()
    ok(at)
    assert final_table(at).equals(good)  # last good result kept


def test_fit1d_empty_canvas_says_what_to_draw():
    at = page("fit_1d", lesson("two_equal_modes"))
    at.radio(key="fit1d_target_mode").set_value("drawing").run()
    ok(at)
    assert any("canvas is empty" in e for e in errors(at))


def test_fit1d_2d_scenario_is_not_overwritten():
    sc = dl.load_preset("banana_2d")["scenario"]
    at = page("fit_1d", sc)
    assert any("2D target" in w.value for w in at.warning)
    assert at.session_state[sup.SCENARIO_KEY] == sc


# -------------------------------------------------------------------------------- Race

@pytest.mark.parametrize("lesson_id, n", [("symmetric_divergences", 4), ("distillation_failure_modes", 4)])
def test_race_lessons(lesson_id, n):
    at = page("race", lesson(lesson_id))
    assert len(at.get("plotly_chart")) == 1
    table = final_table(at)
    assert len(table) == n  # every divergence of the lesson (Sinkhorn fitted from samples too), one panel each
    fig_json = at.get("plotly_chart")[0].proto.spec
    assert '"frames"' in fig_json


def test_race_defaults_and_bad_input():
    at = page("race", lesson("two_equal_modes"), source="default")
    assert not at.get("plotly_chart")
    at.button(key="race_run_btn").click().run()
    ok(at)
    assert len(final_table(at)) == 2
    at.multiselect(key="race_divs").set_value([]).run()
    ok(at)
    assert "Choose at least one divergence." in errors(at)
    assert len(at.get("plotly_chart")) == 1  # the last race stays on screen


# -------------------------------------------------------------------------------- Families

@pytest.mark.parametrize("lesson_id, key", [("alpha_continuum", "alpha"), ("renyi_order", "renyi")])
def test_families_lessons(lesson_id, key):
    at = page("families", lesson(lesson_id, steps=20))
    assert at.selectbox(key="fam_key").value == key
    assert len(at.get("plotly_chart")) == 2  # sweep animation and overlay
    table = final_table(at)
    assert len(table) == len(sup.FAMILY_SWEEPS[key][2])


def test_families_default_and_bad_input():
    at = page("families", lesson("two_equal_modes", steps=20), source="default")
    assert at.selectbox(key="fam_key").value == "alpha"
    at.multiselect(key="fam_picks_alpha").set_value([]).run()
    ok(at)
    assert any("Pick at least one" in i.value for i in at.info)
    at2 = page("families", dl.load_preset("ring_2d")["scenario"])
    assert any("1D targets" in e for e in errors(at2))


# -------------------------------------------------------------------------------- Landscape

@pytest.mark.parametrize("lesson_id", ["separated_modes", "two_equal_modes"])
def test_landscape_lessons_show_two_reverse_kl_modes(lesson_id):
    at = page("landscape", lesson(lesson_id), land_restarts=8)
    assert at.selectbox(key="land_key").value == "reverse_kl"
    assert len(at.get("plotly_chart")) == 1
    table = at.dataframe[-1].value
    assert len(table) >= 2  # one optimum per mode (and perhaps the wide middle one)


def test_landscape_separation_slider_and_bad_input():
    at = page("landscape", lesson("two_equal_modes"), land_restarts=8)
    at.radio(key="land_target").set_value("two equal modes (separation slider)").run()
    at.slider(key="land_sep").set_value(0.0).run()
    ok(at)
    assert len(at.dataframe[-1].value) == 1  # one mode: one optimum
    at2 = page("landscape", dl.load_preset("banana_2d")["scenario"])
    assert any("1D targets" in e for e in errors(at2))


# -------------------------------------------------------------------------------- Calculator

def test_calculator_closed_form_agreement_for_two_normals():
    at = page("calculator", lesson("two_equal_modes"))
    at.radio(key="calc_p_source").set_value("one distribution").run()
    at.number_input(key="calc_q_loc").set_value(1.0)
    at.number_input(key="calc_q_scale").set_value(2.0).run()
    ok(at)
    table = at.dataframe[0].value
    kl = table[table["divergence"] == "KL(p‖q), forward"].iloc[0]
    assert float(kl["value"]) == pytest.approx(0.4431471805599453, rel=1e-5)  # log 2 + 2/8 − 1/2 (6 digits shown)
    assert kl["estimator"] == "closed_form" and "|Δ|" in kl["closed-form check"]


def test_calculator_shows_each_divergence_in_its_own_unit():
    """TV, H², χ² and α are pure numbers: no "nats" in their rows (issue 6); KL's row says nats,
    the transport rows a length; the Monte Carlo caption names the curve's unit."""
    at = page("calculator", lesson("two_equal_modes"))
    table = at.dataframe[0].value
    by_name = {row["divergence"]: row for _, row in table.iterrows()}
    assert by_name["KL(p‖q), forward"]["unit"] == "nats"
    for name in ("Total variation", "Hellinger² (squared)", "Pearson χ²(p‖q)", "α-divergence (Amari)"):
        row = by_name[name]
        assert not any("nats" in str(v) for v in row.values), row.to_dict()
        assert row["unit"] == "dimensionless"
    assert by_name["Wasserstein W_p"]["unit"] == "units of x"
    assert any("nats" in c.value and "Reference:" in c.value for c in at.caption)  # the default curve is KL's
    at.selectbox(key="calc_curve_key").set_value("hellinger").run()
    ok(at)
    ref = next(c.value for c in at.caption if c.value.startswith("Reference:"))
    assert "nats" not in ref.split("(")[0]


@pytest.mark.parametrize("lesson_id", ["disjoint_supports", "heavy_tails"])
def test_calculator_lessons(lesson_id):
    at = page("calculator", lesson(lesson_id))
    table = at.dataframe[0].value
    assert len(table) >= 15
    assert not table["value"].str.contains("nan", case=False).any()
    if lesson_id == "disjoint_supports":  # q = N(start) is positive everywhere: KL(p‖q) finite, KL(q‖p) = ∞
        rkl = table[table["divergence"] == "KL(q‖p), reverse"]["value"].iloc[0]
        assert rkl.startswith("∞ (")


def test_calculator_bad_scale_keeps_last_pair():
    at = page("calculator", lesson("two_equal_modes"))
    before = at.dataframe[0].value
    at.number_input(key="calc_q_scale").set_value(0.0).run()
    ok(at)
    assert any("model q: scale must be > 0" in e for e in errors(at))
    assert at.dataframe[0].value.equals(before)


# -------------------------------------------------------------------------------- Theory

@pytest.mark.parametrize("lesson_id, keys", [("gradient_weights", ["kl", "reverse_kl", "pearson", "neyman"]),
                                             ("unequal_weights", ["kl", "reverse_kl"])])
def test_theory_lessons(lesson_id, keys):
    at = page("theory", lesson(lesson_id))
    assert at.multiselect(key="theory_keys").value == keys
    assert len(at.get("plotly_chart")) == 2


def test_theory_defaults_and_bad_input():
    at = page("theory", lesson("two_equal_modes"), source="default")
    assert len(at.get("plotly_chart")) == 2
    at.number_input(key="theory_q_scale").set_value(0.0).run()
    ok(at)
    assert any("model q: scale must be > 0" in e for e in errors(at))
    assert len(at.get("plotly_chart")) == 2
    at.multiselect(key="theory_keys").set_value([]).run()
    ok(at)
    assert "Choose at least one f-divergence." in errors(at)


def test_families_phase_diagram_button():
    at = page("families", lesson("two_equal_modes", steps=20), source="default")
    at.multiselect(key="fam_picks_alpha").set_value([-0.5]).run()  # one value: keep it short
    ok(at)
    at.button(key="fam_phase_btn").click().run()
    ok(at)
    assert any(c.proto.spec and '"heatmap"' in c.proto.spec for c in at.get("plotly_chart"))
    table = at.dataframe[-1].value
    assert list(table["α"]) == [-0.5]
    assert table["switch to one mode at d"][0] != "never in range"  # α = −0.5 is mode-seeking: it switches
