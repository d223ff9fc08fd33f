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
    pytest.param({"optimizer__name": "newton"}, "scenario.optimizer.name: Input should be 'adam', 'sgd' or 'lbfgs'",
                 id="optimizer"),
    pytest.param({"seed": -1}, "scenario.seed:", id="seed"),
    pytest.param({"view__frames": 5}, "scenario.view.frames:", id="frames"),
    pytest.param({"version": 2}, "scenario.version:", id="version"),
    pytest.param({"estimator": "grid"}, "scenario.estimator: Input should be 'auto', 'quadrature', 'mc' or 'samples'",
                 id="estimator"),
    pytest.param({"estimator": "mc", "divergences": [{"key": "mmd", "params": {}}]},
                 "scenario.divergences[0].key: 'mmd' cannot be fitted with estimator 'mc' (it allows: samples",
                 id="estimator-mc-mmd"),
    pytest.param({"divergences": [{"key": "sinkhorn", "params": {}}]},
                 "scenario.divergences[0].key: 'sinkhorn' cannot be fitted with estimator 'quadrature' "
                 "(it allows: samples; or use estimator 'auto')", id="sinkhorn-quadrature"),
    pytest.param({"samples": 256}, "scenario.samples: only used by the mc and samples estimators", id="samples-unused"),
    pytest.param({"samples": 5, "estimator": "mc"}, "scenario.samples: Input should be greater than or equal to 16",
                 id="samples-small"),
    pytest.param({"estimator": "auto", "divergences": [{"key": "sinkhorn", "params": {"debias": 1}}]},
                 "scenario.divergences[0].params.debias: must be one of True, False (got 1)", id="debias-int"),
    pytest.param({"estimator": "auto", "divergences": [{"key": "mmd", "params": {"kernel": "rbf"}}]},
                 "scenario.divergences[0].params.kernel: kernel must be one of 'gaussian', 'imq', 'energy'",
                 id="mmd-kernel"),
    pytest.param({"title": "x" * 201}, "scenario.title:", id="title-long"),
    pytest.param({"extra": 1}, "scenario.extra: unknown field (allowed: version, title", id="extra"),
    pytest.param({"model__init__loc": "0"}, "scenario.model.init.loc: Input should be a valid number", id="loc-str"),
    pytest.param({"model__init__scale": 0.0}, "scenario.model.init.scale:", id="scale-zero"),
    pytest.param({"model": _DELETE}, "scenario.model: required field is missing", id="model-missing"),
    pytest.param({"divergences": []}, "scenario.divergences: List should have at least 1 item", id="no-divs"),
    pytest.param({"divergences": [{"key": "kl"}] * 7}, "scenario.divergences: List should have at most 6", id="many-divs"),
    pytest.param({"divergences__1": {"key": "foo"}}, "scenario.divergences[1].key: 'foo' is not a divergence", id="div-key"),
    pytest.param({"divergences__1": {"key": "ksd"}}, "scenario.divergences[1].key: 'ksd' is not", id="div-not-fittable"),
    # the model family: dimension, components, init names and ranges
    pytest.param({"model": {"family": "mvn"}}, "scenario.target: the mvn model family is 2D but this target is 1D",
                 id="mvn-on-1d"),
    pytest.param({"model": {"family": "mixture"}}, "scenario.model.components: the mixture family needs components",
                 id="mixture-no-k"),
    pytest.param({"model": {"family": "student_t", "components": 2}},
                 "scenario.model.components: only the mixture family has components", id="k-not-mixture"),
    pytest.param({"model": {"family": "mixture", "components": 6}}, "scenario.model.components: Input should be less "
                 "than or equal to 5", id="mixture-k-high"),
    pytest.param({"model": {"family": "normal"}}, "scenario.model.init: required field is missing", id="normal-no-init"),
    pytest.param({"model__init__loc_x": 0.0}, "scenario.model.init.loc_x: unknown parameter of the 1D normal family "
                 "(allowed: loc, scale)", id="init-unknown"),
    pytest.param({"model": {"family": "mixture", "components": 2, "init": {"w1": 0.5, "loc1": 0.0}}},
                 "scenario.model.init.w2: missing (give every parameter of the 1D mixture family: w1, w2, loc1",
                 id="init-missing"),
    pytest.param({"model": {"family": "student_t", "init": {"loc": 0.0, "scale": 1.0, "df": -1.0}}},
                 "scenario.model.init.df: must be in [0.001, 1000] (got -1.0)", id="init-df"),
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


BASE2D = {
    "version": 1, "title": "banana",
    "target": {"type": "banana", "curvature": 0.3, "scale1": 1.5, "scale2": 0.5},
    "model": {"family": "mvn", "init": {"loc_x": 1.0, "loc_y": 1.0, "scale_x": 1.0, "scale_y": 1.0, "corr": 0.0}},
    "divergences": [{"key": "kl", "params": {}}, {"key": "sinkhorn", "params": {"epsilon": 0.1}}],
    "estimator": "auto", "samples": 128,
    "optimizer": {"name": "adam", "lr": 0.05, "steps": 5}, "seed": 0, "view": {"frames": 10, "show_loss": True},
}


def _with2d(**changes):
    d = copy.deepcopy(BASE2D)
    for k, v in changes.items():
        if "__" in k:
            a, b = k.split("__")
            d[a][b] = v
        else:
            d[k] = v
    return d


def test_2d_scenario_round_trips_and_resolves_estimators():
    sc = Scenario.from_dict(BASE2D)
    assert sc.to_dict() == BASE2D and Scenario.from_url_param(sc.to_url_param()) == sc
    assert [sc.estimator_for(d.key) for d in sc.divergences] == ["quadrature", "samples"]
    assert sc.dim == 2
    # a 1D scenario keeps its compact form: no components / init / samples keys appear
    one = Scenario.from_dict(BASE).to_dict()
    assert "samples" not in one and set(one["model"]) == {"family", "init"}
    mix = Scenario.from_dict(_with2d(model={"family": "mixture", "components": 3}))
    assert mix.to_dict()["model"] == {"family": "mixture", "components": 3}


@pytest.mark.parametrize("changes, expected", [
    pytest.param({"model__init": {"loc_x": 1.0, "loc_y": 1.0, "scale_x": 1.0, "scale_y": 1.0, "corr": 1.0}},
                 "scenario.model.init.corr: must be in (-1, 1) (got 1.0)", id="corr"),
    pytest.param({"model__init": {"loc_x": 1.0, "loc_y": 1.0, "scale_x": 1.0, "scale_y": 1.0}},
                 "scenario.model.init.corr: missing", id="corr-missing"),
    pytest.param({"model__family": "diag"}, "scenario.model.init.corr: unknown parameter of the 2D diag family "
                 "(allowed: loc_x, loc_y, scale_x, scale_y)", id="diag-corr"),
    pytest.param({"model": {"family": "normal", "init": {"loc": 0.0, "scale": 1.0}}},
                 "scenario.target: the normal model family is 1D but this target is 2D", id="normal-on-2d"),
    pytest.param({"target": {"type": "empirical", "points": [[0.0, 0.0], [1.0, 1.0]]}},
                 "scenario.divergences[0].key: 'kl' needs the target's density, but a empirical target is a point "
                 "cloud", id="kl-on-points"),
    pytest.param({"target": {"type": "empirical", "points": [[0.0, 0.0]] * 20001}},
                 "scenario.target.points: 20001 points is too many (at most 20000)", id="too-many-points"),
    pytest.param({"target": {"type": "banana", "curvature": 0.3, "scale1": -1.0}},
                 "scenario.target.scale1: Banana(scale1=-1.0): scale1 must be > 0", id="banana-scale"),
    pytest.param({"target": {"type": "grid", "x": [0.0, 1.0], "y": [0.0, 1.0], "values": [[0.0, 0.0], [0.0, 0.0]]}},
                 "scenario.target.values: GridDensity(values=", id="grid-empty"),
    pytest.param({"estimator": "samples"}, "scenario.divergences[0].key: 'kl' cannot be fitted with estimator "
                 "'samples' (it allows: quadrature, mc; or use estimator 'auto')", id="kl-samples"),
])
def test_2d_errors_name_the_field(changes, expected):
    with pytest.raises(ValueError) as info:
        Scenario.from_dict(_with2d(**changes))
    msg = str(info.value)
    assert expected in msg, msg
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
        sc = p["scenario"]
        want = "discrete" if sc.target["type"] == "categorical" else ("fit_2d" if sc.dim == 2 else "fit_1d")
        if p["page"] == "transport":  # the Transport page's lessons: a Sinkhorn scenario (its ε, sample size, seed)
            want = "transport" if any(d.key == "sinkhorn" for d in sc.divergences) else want
        assert p["page"] == want and p["title"] and len(p["look_for"]) > 80
        assert isinstance(sc, Scenario)
        assert Scenario.from_json(sc.to_json()) == sc
        assert Scenario.from_url_param(sc.to_url_param()) == sc
        assert load_preset(p["id"])["scenario"] == sc
    with pytest.raises(ValueError, match="preset 'nope' is unknown"):
        load_preset("nope")


def test_the_lessons_issue_5_asks_for_are_shipped():
    by_id = {p["id"]: p["scenario"] for p in presets()}
    two_d = {k for k, sc in by_id.items() if sc.dim == 2}
    assert {"banana_2d", "ring_2d", "two_moons_2d", "three_blobs_sinkhorn_mmd", "wasserstein_vs_kl_shift"} <= two_d
    assert by_id["banana_2d"].target["type"] == "banana" and by_id["ring_2d"].target["type"] == "ring"
    assert by_id["two_moons_2d"].target["type"] == "two_moons"
    blobs = by_id["three_blobs_sinkhorn_mmd"]
    assert len(blobs.target["components"]) == 3 and {d.key for d in blobs.divergences} == {"sinkhorn", "mmd"}
    shift = by_id["wasserstein_vs_kl_shift"]
    assert {"kl", "sinkhorn"} <= {d.key for d in shift.divergences}
    for pid in ("distillation_failure_modes", "distillation_no_overlap"):
        keys = [d.key for d in by_id[pid].divergences]
        assert keys == ["kl", "reverse_kl", "js", "sinkhorn"]  # the three failure modes against a Sinkhorn fit
        assert by_id[pid].target == by_id["distillation_failure_modes"].target  # the same teacher


def test_banana_lesson_forward_kl_matches_the_banana_moments():
    """Forward KL into the full-covariance Normal family is moment matching: for the banana
    x ~ N(0, s1²), y | x ~ N(b(x² − s1²), s2²): mean (0, 0), var x = s1², var y = 2b²s1⁴ + s2²,
    cov(x, y) = b·E[x³] = 0."""
    sc = load_preset("banana_2d")["scenario"].with_overrides(divergences=["kl"])
    (r,) = run_scenario(sc)
    b, s1, s2 = 0.3, 1.5, 0.5
    assert sc.target == {"type": "banana", "curvature": b, "scale1": s1, "scale2": s2}
    assert r.params["loc_x"] == pytest.approx(0.0, abs=2e-3) and r.params["loc_y"] == pytest.approx(0.0, abs=2e-3)
    assert r.params["scale_x"] == pytest.approx(s1, rel=2e-3)
    assert r.params["scale_y"] == pytest.approx((2 * b * b * s1**4 + s2 * s2) ** 0.5, rel=2e-3)
    assert r.params["corr"] == pytest.approx(0.0, abs=2e-3)


def test_shift_lesson_js_is_stuck_at_ln2():
    """Two narrow Normals 6 apart: JS is at its ceiling ln 2 with no gradient, the model never moves."""
    import math

    sc = load_preset("wasserstein_vs_kl_shift")["scenario"].with_overrides(divergences=["js"], steps=20)
    (r,) = run_scenario(sc)
    assert r.losses[0] == pytest.approx(math.log(2), abs=1e-9)
    assert abs(r.losses[-1] - math.log(2)) < 1e-9
    # Adam moves about lr = 0.1 per step along any usable gradient; here the gradient is below its
    # ε, so in 20 steps the model moves less than 1e-3 (instead of ~2)
    assert abs(r.params["loc_x"] - sc.model.init["loc_x"]) < 1e-3


def test_presets_are_package_data():
    """A non-editable install ships the lessons: PRESET_DIR is inside the package and pyproject's
    package-data glob matches every preset file."""
    import fnmatch
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")

    import divlab
    from divlab.scenario import PRESET_DIR

    pkg = Path(divlab.__file__).resolve().parent
    assert PRESET_DIR.parent == pkg
    conf = tomllib.loads((pkg.parent / "pyproject.toml").read_text(encoding="utf-8"))
    globs = conf["tool"]["setuptools"]["package-data"]["divlab"]
    files = [p.relative_to(pkg).as_posix() for p in PRESET_DIR.iterdir()]
    assert files and all(any(fnmatch.fnmatch(f, g) for g in globs) for f in files)


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


_corr = st.floats(-0.95, 0.95, **_fin)
_pos = st.floats(0.1, 5.0, **_fin)


def _mvn(mx, my, sx, sy, rho):
    c = rho * sx * sy
    return {"type": "mvn", "mean": [mx, my], "cov": [[sx * sx, c], [c, sy * sy]]}


_leaf2 = st.one_of(
    st.builds(_mvn, _loc, _loc, _pos, _pos, st.floats(-0.9, 0.9, **_fin)),
    st.builds(lambda b, s1, s2: {"type": "banana", "curvature": b, "scale1": s1, "scale2": s2},
              st.floats(-1.0, 1.0, **_fin), _pos, _pos),
    st.builds(lambda r, w, cx, cy: {"type": "ring", "radius": r, "width": w, "center": [cx, cy]},
              _pos, st.floats(0.05, 1.0, **_fin), _loc, _loc),
    st.builds(lambda nz: {"type": "two_moons", "noise": nz}, st.floats(0.05, 0.5, **_fin)),
)
_points = st.lists(st.tuples(_loc, _loc).map(list), min_size=1, max_size=12)


@st.composite
def _target2d(draw):
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(_leaf2)
    if kind == 1:
        comps = draw(st.lists(_leaf2, min_size=1, max_size=3))
        raw = draw(st.lists(st.floats(0.1, 1.0, **_fin), min_size=len(comps), max_size=len(comps)))
        return {"type": "mixture", "weights": [w / sum(raw) for w in raw], "components": comps}
    if kind == 2:
        nx, ny = draw(st.integers(2, 5)), draw(st.integers(2, 5))
        vals = draw(st.lists(st.lists(st.floats(0.0, 5.0, **_fin), min_size=nx, max_size=nx), min_size=ny,
                             max_size=ny).filter(lambda v: sum(map(sum, v)) > 0.5))
        return {"type": "grid", "x": [float(i) for i in range(nx)], "y": [0.5 * j for j in range(ny)], "values": vals}
    return {"type": "empirical", "points": draw(_points)}


_sample_div = st.one_of(
    st.builds(lambda e, d: {"key": "sinkhorn", "params": {"epsilon": e, "debias": d}}, st.floats(0.01, 5.0, **_fin),
              st.booleans()),
    st.builds(lambda k, b: {"key": "mmd", "params": {"kernel": k, "bandwidth": b}},
              st.sampled_from(["gaussian", "imq", "energy"]), st.floats(0.05, 10.0, **_fin)),
    st.just({"key": "energy", "params": {}}),
    st.just({"key": "mmd", "params": {}}),
)
_mc_div = st.one_of(st.sampled_from(["kl", "reverse_kl"]).map(lambda k: {"key": k, "params": {}}),
                    st.floats(-2.0, 3.0, **_fin).map(lambda a: {"key": "alpha", "params": {"alpha": a}}))

_VALUE = {"loc": _loc, "loc_x": _loc, "loc_y": _loc, "scale": _scale, "scale_x": _scale, "scale_y": _scale,
          "corr": _corr, "df": st.floats(0.5, 100.0, **_fin), "w": st.floats(0.01, 10.0, **_fin)}


@st.composite
def _scenario(draw):
    from divlab.scenario import init_names

    dim = draw(st.sampled_from([1, 2]))
    target = draw(_target() if dim == 1 else _target2d())
    family = draw(st.sampled_from(["normal", "student_t", "mixture"] if dim == 1 else ["mvn", "diag", "mixture"]))
    model = {"family": family}
    k = None
    if family == "mixture":
        k = draw(st.integers(1, 5))
        model["components"] = k
    if family == "normal" or draw(st.booleans()):
        model["init"] = {n: draw(_VALUE[n.rstrip("0123456789")]) for n in init_names(family, dim, k)}
    if target["type"] == "empirical":
        estimator = draw(st.sampled_from(["samples", "auto"]))
    else:
        estimator = draw(st.sampled_from(["quadrature", "mc", "samples", "auto"]))
    pool = {"quadrature": _div, "mc": _mc_div, "samples": _sample_div,
            "auto": _sample_div if target["type"] == "empirical" else st.one_of(_div, _sample_div)}[estimator]
    divs = draw(st.lists(pool, min_size=1, max_size=6))
    data = {
        "version": 1,
        "title": draw(st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)),
        "target": target,
        "model": model,
        "divergences": divs,
        "estimator": estimator,
        "optimizer": {"name": draw(st.sampled_from(["adam", "sgd", "lbfgs"])), "lr": draw(st.floats(1e-4, 10.0, **_fin)),
                      "steps": draw(st.integers(1, 2000))},  # the schema's maximum: DIVLAB_MAX_STEPS
        "seed": draw(st.integers(0, 2**32 - 1)),
        "view": {"frames": draw(st.integers(10, 200)), "show_loss": draw(st.booleans())},
    }
    sampled = estimator in ("mc", "samples") or any(d["key"] in ("sinkhorn", "mmd", "energy") for d in divs)
    if sampled and draw(st.booleans()):
        data["samples"] = draw(st.integers(16, 4096))
    return data


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_scenario())
def test_random_scenarios_round_trip(data):
    sc = Scenario.from_dict(data)
    assert sc.to_dict() == data
    back = Scenario.from_json(sc.to_json())
    assert back == sc and back.to_json() == sc.to_json()
    url = Scenario.from_url_param(sc.to_url_param())
    assert url == sc and url.to_dict() == data
