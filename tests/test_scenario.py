"""Scenario schema: validation messages, JSON and URL round trips, limits, presets, determinism."""

from __future__ import annotations

import copy
import json
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import divlab as dl
from divlab.scenario import MAX_BYTES, MAX_DEPTH, Scenario, load_preset, presets, run_scenario

BASE = {
    "version": 1,
    "title": "two modes",
    "target": {"type": "mixture", "weights": [0.5, 0.5],
               "components": [{"type": "normal", "loc": -3.0, "scale": 1.0},
                              {"type": "normal", "loc": 3.0, "scale": 1.0}]},
    "model": {"family": "normal", "init": {"loc": 1.5, "scale": 1.0}},
    "divergences": [{"key": "kl", "params": {}}, {"key": "reverse_kl", "params": {}}],
    "estimator": "quadrature",
    "optimizer": {"name": "adam", "lr": 0.05, "steps": 20},
    "seed": 0,
    "view": {"frames": 20, "show_loss": True},
}


def _with(**changes):
    d = copy.deepcopy(BASE)
    for path, value in changes.items():
        node = d
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[int(k)] if isinstance(node, list) else node[k]
        last = keys[-1]
        if isinstance(node, list):
            node[int(last)] = value
        elif value is _DELETE:
            del node[last]
        else:
            node[last] = value
    return d


_DELETE = object()


def test_valid_scenario_and_exports():
    sc = Scenario.from_dict(BASE)
    assert sc.optimizer.steps == 20 and [d.key for d in sc.divergences] == ["kl", "reverse_kl"]
    assert json.loads(sc.to_json()) == BASE
    assert dl.Scenario is Scenario and dl.presets is presets and dl.load_preset is load_preset


@pytest.mark.parametrize("changes, expected", [
    pytest.param({"target__components__1__scale": -1.0}, "scenario.target.components[1].scale: ", id="component-scale"),
    pytest.param({"target__type": "blob"}, "scenario.target: distribution spec: type='blob' is unknown", id="target-type"),
    pytest.param({"target": {"type": "normal", "loc": 0.0}}, "missing key 'scale'", id="target-missing"),
    pytest.param({"target": {"type": "mvn", "mean": [0.0, 0.0], "cov": [[1.0, 0.0], [0.0, 1.0]]}},
                 "scenario.target: the normal model family is 1D but this target is 2D", id="target-2d"),
    pytest.param({"optimizer__lr": 20.0}, "scenario.optimizer.lr: Input should be less than or equal to 10", id="lr-high"),
    pytest.param({"optimizer__lr": 0.0}, "scenario.optimizer.lr: Input should be greater than 0", id="lr-zero"),
    pytest.param({"optimizer__steps": 5001}, "scenario.optimizer.steps:", id="steps-high"),
    pytest.param({"optimizer__steps": True}, "scenario.optimizer.steps: Input should be a valid integer", id="steps-bool"),
    pytest.param({"optimizer__name": "lbfgs"}, "scenario.optimizer.name: Input should be 'adam' or 'sgd'", id="optimizer"),
    pytest.param({"seed": -1}, "scenario.seed:", id="seed"),
    pytest.param({"view__frames": 5}, "scenario.view.frames:", id="frames"),
    pytest.param({"version": 2}, "scenario.version:", id="version"),
    pytest.param({"estimator": "mc"}, "scenario.estimator:", id="estimator"),
    pytest.param({"title": "x" * 201}, "scenario.title:", id="title-long"),
    pytest.param({"extra": 1}, "scenario.extra: unknown field (allowed: version, title", id="extra"),
    pytest.param({"model__init__loc": "0"}, "scenario.model.init.loc: Input should be a valid number", id="loc-str"),
    pytest.param({"model__init__scale": 0.0}, "scenario.model.init.scale:", id="scale-zero"),
    pytest.param({"model": _DELETE}, "scenario.model: required field is missing", id="model-missing"),
    pytest.param({"divergences": []}, "scenario.divergences: List should have at least 1 item", id="no-divs"),
    pytest.param({"divergences": [{"key": "kl"}] * 7}, "scenario.divergences: List should have at most 6", id="many-divs"),
    pytest.param({"divergences__1": {"key": "foo"}}, "scenario.divergences[1].key: 'foo' is not a divergence", id="div-key"),
    pytest.param({"divergences__1": {"key": "mmd"}}, "scenario.divergences[1].key: 'mmd' is not", id="div-not-fittable"),
    pytest.param({"divergences__0": {"key": "alpha", "params": {"alpha": 5.0}}},
                 "scenario.divergences[0].params.alpha: alpha must be in [-2, 3] (got 5.0)", id="div-param-range"),
    pytest.param({"divergences__0": {"key": "alpha", "params": {"beta": 0.5}}},
                 "scenario.divergences[0].params.beta: unknown parameter of 'alpha' (allowed: alpha)", id="div-param-name"),
    pytest.param({"divergences__0": {"key": "alpha", "params": {"alpha": True}}},
                 "scenario.divergences[0].params.alpha: must be a number", id="div-param-bool"),
])
def test_errors_name_the_field(changes, expected):
    with pytest.raises(ValueError) as info:
        Scenario.from_dict(_with(**changes))
    msg = str(info.value)
    assert expected in msg
    assert "\n" not in msg


def test_json_limits_checked_before_parsing():
    deep = "[" * 1000 + "]" * 1000
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=f"nested deeper than {MAX_DEPTH} levels"):
        Scenario.from_json(deep)
    assert time.perf_counter() - t0 < 0.5
    # brackets inside strings do not count
    ok = _with(title="[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[")
    assert Scenario.from_json(json.dumps(ok)).title.startswith("[[[")
    with pytest.raises(ValueError, match="too large"):
        Scenario.from_json('{"title": "' + "a" * MAX_BYTES + '"}')
    with pytest.raises(ValueError, match="malformed JSON at line 1"):
        Scenario.from_json(json.dumps(BASE)[:-10])
    with pytest.raises(ValueError, match="NaN is not allowed"):
        Scenario.from_json(json.dumps(BASE).replace("0.05", "NaN"))
    with pytest.raises(ValueError, match="expected a JSON object"):
        Scenario.from_json("[1, 2]")
    with pytest.raises(ValueError, match="empty"):
        Scenario.from_json("  ")


def test_url_param_is_strict():
    sc = Scenario.from_dict(BASE)
    s = sc.to_url_param()
    assert "=" not in s and set(s) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert Scenario.from_url_param(s) == sc
    for bad, match in [(s + "=", "not allowed"), (s[: len(s) // 2], "truncated"), ("", "non-empty"),
                       ("abc!", "not allowed"), ("QUJD", "not zlib")]:
        with pytest.raises(ValueError, match=match):
            Scenario.from_url_param(bad)


def test_every_preset_loads_and_validates():
    ps = presets()
    assert len(ps) >= 12
    ids = [p["id"] for p in ps]
    assert len(set(ids)) == len(ids)
    for p in ps:
        assert p["page"] == "fit_1d" and p["title"] and len(p["look_for"]) > 80
        sc = p["scenario"]
        assert isinstance(sc, Scenario)
        assert Scenario.from_json(sc.to_json()) == sc
        assert Scenario.from_url_param(sc.to_url_param()) == sc
        assert load_preset(p["id"])["scenario"] == sc
    with pytest.raises(ValueError, match="preset 'nope' is unknown"):
        load_preset("nope")


def test_same_scenario_same_trajectories():
    sc = Scenario.from_dict(_with(divergences=[{"key": "alpha", "params": {"alpha": 0.3}},
                                               {"key": "alpha", "params": {"alpha": 0.8}}]))
    a, b = run_scenario(sc), run_scenario(Scenario.from_url_param(sc.to_url_param()))
    assert [r.label for r in a] == ["α-divergence (Amari) (α=0.3)", "α-divergence (Amari) (α=0.8)"]
    for ra, rb in zip(a, b):
        for k in ("loc", "scale"):
            np.testing.assert_array_equal(ra.trajectory[k], rb.trajectory[k])
        np.testing.assert_array_equal(ra.losses, rb.losses)
        assert ra.init == {"loc": 1.5, "scale": 1.0}
    # different α, different paths
    assert not np.array_equal(a[0].trajectory["scale"], a[1].trajectory["scale"])


# ----------------------------------------------------------------------------------------------
# property: random valid scenarios round-trip unchanged
# ----------------------------------------------------------------------------------------------

_fin = dict(allow_nan=False, allow_infinity=False)
_scale = st.floats(0.05, 20.0, **_fin)
_loc = st.floats(-50.0, 50.0, **_fin)
_leaf = st.one_of(
    st.builds(lambda a, b: {"type": "normal", "loc": a, "scale": b}, _loc, _scale),
    st.builds(lambda a, b: {"type": "laplace", "loc": a, "scale": b}, _loc, _scale),
    st.builds(lambda d, a, b: {"type": "student_t", "df": d, "loc": a, "scale": b}, st.floats(0.5, 30.0, **_fin), _loc,
              _scale),
    st.builds(lambda a, w: {"type": "uniform", "low": a, "high": a + w}, _loc, st.floats(0.1, 20.0, **_fin)),
)


@st.composite
def _target(draw):
    if draw(st.booleans()):
        return draw(_leaf)
    comps = draw(st.lists(_leaf, min_size=1, max_size=3))
    raw = draw(st.lists(st.floats(0.1, 1.0, **_fin), min_size=len(comps), max_size=len(comps)))
    return {"type": "mixture", "weights": [w / sum(raw) for w in raw], "components": comps}


_div = st.one_of(
    st.sampled_from(["kl", "reverse_kl", "js", "hellinger", "tv", "pearson", "neyman", "jeffreys",
                     "bhattacharyya", "cauchy_schwarz"]).map(lambda k: {"key": k, "params": {}}),
    st.floats(-2.0, 3.0, **_fin).map(lambda a: {"key": "alpha", "params": {"alpha": a}}),
    st.floats(0.01, 10.0, **_fin).map(lambda a: {"key": "renyi", "params": {"alpha": a}}),
    st.floats(0.0, 0.99, **_fin).map(lambda a: {"key": "skew_kl", "params": {"lam": a}}),
)


@st.composite
def _scenario(draw):
    return {
        "version": 1,
        "title": draw(st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)),
        "target": draw(_target()),
        "model": {"family": "normal", "init": {"loc": draw(_loc), "scale": draw(_scale)}},
        "divergences": draw(st.lists(_div, min_size=1, max_size=6)),
        "estimator": "quadrature",
        "optimizer": {"name": draw(st.sampled_from(["adam", "sgd"])), "lr": draw(st.floats(1e-4, 10.0, **_fin)),
                      "steps": draw(st.integers(1, 5000))},
        "seed": draw(st.integers(0, 2**32 - 1)),
        "view": {"frames": draw(st.integers(10, 200)), "show_loss": draw(st.booleans())},
    }


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_scenario())
def test_random_scenarios_round_trip(data):
    sc = Scenario.from_dict(data)
    assert sc.to_dict() == data
    back = Scenario.from_json(sc.to_json())
    assert back == sc and back.to_json() == sc.to_json()
    url = Scenario.from_url_param(sc.to_url_param())
    assert url == sc and url.to_dict() == data
