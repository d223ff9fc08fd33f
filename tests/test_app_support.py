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
    with pytest.raises(ValueError, match="at least one divergence"):
        sup.run_fits(rows, [], {"loc": 0.0, "scale": 1.0}, 10, 0.05)


def test_infinite_value_row_says_why():
    results = sup.run_fits([row(family="uniform", scale=1.0)], [("reverse_kl", {})], {"loc": 0.0, "scale": 2.0},
                           10, 0.05)
    value = sup.result_rows(results)[0]["final value"]
    assert value.startswith("D(p‖q) = ∞ (")
    assert "p = 0 < q" in value


@pytest.mark.parametrize("x, expected", [
    pytest.param(0.25, "D(p‖q) = 0.25 nats", id="finite"),
    pytest.param(math.inf, "D(p‖q) = ∞ (why)", id="inf"),
    pytest.param(math.nan, "D(p‖q) undefined (why)", id="nan"),
])
def test_format_value(x, expected):
    assert sup.format_value(x, "why") == expected
