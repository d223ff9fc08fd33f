"""The Calculator's estimator error explorer (issue 16): app layer, figure and page section."""

from pathlib import Path

import pytest

import divlab as dl
from divlab import app_estimators as ea
from divlab.viz.estimators import estimator_error_figure

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_table_against_closed_forms():
    rows = ea.estimator_error_table("kl", ["knn", "kde"], [300, 2000], [1, 2], seeds=1)
    assert len(rows) == 2 * 2 * 2
    for r in rows:
        p, q = ea.gaussian_pair(r["d"])
        assert r["closed_form"] == pytest.approx(float(dl.divergence(p, q, "kl", "closed_form")), rel=1e-12)
        assert r["abs_error"] == pytest.approx(abs(r["estimate"] - r["closed_form"]), abs=1e-12)
        if r["n"] == 2000:  # the stated bar covers the truth at this size in d <= 2
            assert r["abs_error"] <= r["bar"], r
    # the pair's KL in 1D: ½(1/1.44 + 0.25/1.44 − 1 + ln 1.44)
    assert rows[0]["closed_form"] == pytest.approx(0.5 * (1 / 1.44 + 0.25 / 1.44 - 1 + __import__("math").log(1.44)))


def test_renyi_skips_the_kl_bounds_and_bad_inputs_raise():
    rows = ea.estimator_error_table("renyi", ["knn", "nwj"], [500], [2])
    assert {r["estimator"] for r in rows} == {"knn"}
    with pytest.raises(ValueError, match=r"'mc' is not a sample estimator"):
        ea.estimator_error_table("kl", ["mc"], [100], [1])
    with pytest.raises(ValueError, match=r"key='js'"):
        ea.estimator_error_table("js")
    with pytest.raises(ValueError, match=r"gaussian_pair\(d=0\)"):
        ea.gaussian_pair(0)


def test_figure_draws_closed_form_and_every_estimator():
    rows = ea.estimator_error_table("kl", ["knn", "nn_ratio"], [200, 800], [1, 5])
    fig = estimator_error_figure(rows)
    names = {t.name for t in fig.data}
    assert {"closed form", "knn", "nn_ratio"} <= names
    closed = [t for t in fig.data if t.name == "closed form"]
    assert len(closed) == 2 and {round(t.y[0], 6) for t in closed} == {round(r["closed_form"], 6) for r in rows}


def test_calculator_page_section():
    at = AppTest.from_file(str(ROOT / "pages" / "calculator.py"), default_timeout=180)
    at.session_state["calc_explore"] = True
    at.session_state["calc_explore_names"] = ["knn", "kde"]
    at.session_state["calc_explore_ns"] = [100, 300]
    at.session_state["calc_explore_dims"] = [1, 2]
    at.run()
    assert not at.exception, at.exception
    assert any("Estimator error explorer" in s.value for s in at.subheader)
    tables = at.dataframe
    df = tables[-1].value
    assert set(df["estimator"]) == {"knn", "kde"} and set(df["d"]) == {1, 2} and len(df) == 8
    assert (df["closed_form"] > 0).all()
    assert any("How many samples does KL need?" in e.label for e in at.expander)


def test_mean_field_lesson_runs_on_fit_2d():
    """The mean_field_correlated lesson (issue 16) renders on Fit 2D without an error."""
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    from test_app_pages import errors, lesson, page

    at = page("fit_2d", lesson("mean_field_correlated"))
    assert not at.exception and errors(at) == []
