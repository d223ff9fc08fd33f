"""AppTest checks of the Streamlit pages (app.py, Home, Fit 1D)."""

from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 60
STEPS = 100


def fit1d(components=None, divergences=None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "fit_1d.py"), default_timeout=TIMEOUT)
    at.run()  # the first run seeds the widgets from the session's scenario
    assert not at.exception
    if components is not None:
        at.session_state["fit1d_components"] = components
    at.number_input[2].set_value(STEPS)  # steps
    if divergences is not None:
        at.multiselect[0].set_value(divergences)
    at.run()
    assert not at.exception
    return at


def click_run(at: AppTest) -> AppTest:
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def results_table(at: AppTest):
    tables = [d.value for d in at.dataframe if "final value" in d.value.columns]
    assert tables, "no final-fits table"
    return tables[-1]


def test_app_loads_home():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    assert any("divergence geometry" in t.value for t in at.title)
    assert any("Device:" in c.value for c in at.sidebar.caption)


def test_fit1d_defaults_run_shows_chart_and_table():
    at = fit1d()
    # live mode (on by default for cheap scenarios): the chart is there before any Run
    assert len(at.get("plotly_chart")) == 1
    assert [n.label for n in at.number_input][2] == "steps"
    click_run(at)
    assert len(at.get("plotly_chart")) == 1
    table = results_table(at)
    assert len(table) == 2  # default: forward and reverse KL
    assert table["divergence"].str.contains("KL\\(p‖q\\)").any()
    assert table["divergence"].str.contains("KL\\(q‖p\\)").any()
    assert table["final value"].str.endswith("nats").all()
    assert not at.error


def test_fit1d_edited_row_is_fitted():
    at = fit1d(components=[{"weight": 1.0, "family": "normal", "loc": 1.0, "scale": 1.0, "df": None}],
               divergences=["kl"])
    at.number_input[0].set_value(0.0).run()  # initial loc
    click_run(at)
    table = results_table(at)
    assert len(table) == 1
    # the single-Normal target N(1, 1) is reachable: forward KL moves the model there
    assert table["loc"][0] == pytest.approx(1.0, abs=0.05)
    assert table["scale"][0] == pytest.approx(1.0, abs=0.05)


def test_fit1d_infinite_value_is_shown_as_infinity_with_reason():
    at = fit1d(components=[{"weight": 1.0, "family": "uniform", "loc": 0.0, "scale": 1.0, "df": None}],
               divergences=["reverse_kl"])
    at.number_input[1].set_value(2.0).run()  # initial scale: q spills outside p's support
    click_run(at)
    value = results_table(at)["final value"][0]
    assert value.startswith("D(p‖q) = ∞ (")
    assert "p = 0 < q" in value
    assert "nan" not in value.lower()


def test_fit1d_bad_row_shows_error_and_keeps_last_chart():
    at = click_run(fit1d(divergences=["kl"]))
    good = results_table(at)
    at.session_state["fit1d_components"] = [
        {"weight": 0.5, "family": "normal", "loc": -3.0, "scale": 1.0, "df": None},
        {"weight": 0.5, "family": "normal", "loc": 3.0, "scale": 0.0, "df": None},
    ]
    at.run()
    assert not at.exception
    assert any("row 2: scale must be > 0" in e.value for e in at.error)
    assert len(at.get("plotly_chart")) == 1  # the last good chart stays
    click_run(at)  # pressing Run with a bad table neither crashes nor replaces the last result
    assert any("scale" in e.value for e in at.error)
    assert len(at.get("plotly_chart")) == 1
    assert results_table(at).equals(good)


def test_fit1d_live_mode_refits_when_the_start_moves_without_run():
    """Live mode: changing the start of q redraws the fits with no Run; switched off, it does not."""
    at = fit1d()
    before = at.session_state["fit1d_last"]["scenario"]
    at.number_input[0].set_value(0.5).run()  # initial loc (the default start is 1.5)
    assert not at.exception
    after = at.session_state["fit1d_last"]["scenario"]
    import json

    assert after != before and json.loads(after)["model"]["init"]["loc"] == 0.5  # refitted from the new start
    at.toggle(key="fit1d_live").set_value(False).run()
    at.number_input[0].set_value(-1.0).run()
    assert at.session_state["fit1d_last"]["scenario"] == after  # not refitted until Run
    click_run(at)
    assert at.session_state["fit1d_last"]["scenario"] != after
