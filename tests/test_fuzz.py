"""Fuzzing the public API and every parser a visitor can reach (issue 7).

Hypothesis property tests over the scenario space and the public API. The contract checked
everywhere: an input either works, or raises ``ValueError`` with a message (never another
exception type, never a traceback in the app); a number returned is never NaN; an infinite value
comes with its reason.

Budget: about 2 400 examples in total, derandomized (the same examples on every run, so CI is
not flaky; set ``DIVLAB_FUZZ_SCALE=10`` locally to explore ten times as many, randomized).
Examples are kept cheap (coarse grids, a few optimizer steps, small clouds).
"""

from __future__ import annotations

import base64
import json
import math
import os
import zlib

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import divlab as dl
from divlab import app_support as sup
from divlab import limits
from divlab.divergences.registry import UNITS
from divlab.scenario import MAX_BYTES, Scenario, check_json_text, presets

SCALE = float(os.environ.get("DIVLAB_FUZZ_SCALE", "1"))


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Thousands of tiny tensor programs: one intra-op thread. (On a busy 2-core machine two
    threads made this module 7x slower: the OpenMP workers wait on each other.)"""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def fuzz(n: int):
    """settings for one property: ``n`` examples (times DIVLAB_FUZZ_SCALE), no deadline."""
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None, derandomize=SCALE == 1,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large], database=None)


def expect_value_error(exc: BaseException) -> None:
    """The only acceptable failure: a ValueError with a message."""
    assert isinstance(exc, ValueError), f"{type(exc).__name__}: {exc}"
    assert str(exc).strip(), "ValueError without a message"


def check_number(x, reason=None, what="value") -> None:
    """Not NaN; infinite only with a reason."""
    v = float(x)
    assert not math.isnan(v), f"{what} is NaN"
    if math.isinf(v):
        assert isinstance(reason, str) and reason.strip(), f"{what} is {v} without a reason"


# ---------------------------------------------------------------------------------------------
# strategies: distributions
# ---------------------------------------------------------------------------------------------

loc_s = st.floats(-1e3, 1e3, allow_nan=False)
scale_s = st.floats(1e-3, 1e3, allow_nan=False)
weird_num = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**30, 10**30),
                      st.just(0.0), st.just(-0.0), st.booleans(), st.none(), st.text(max_size=4))


@st.composite
def dist1d(draw, depth=0):
    kind = draw(st.sampled_from(["normal", "student_t", "laplace", "uniform", "mixture"] if depth == 0
                                else ["normal", "student_t", "laplace", "uniform"]))
    if kind == "normal":
        return dl.Normal(draw(loc_s), draw(scale_s))
    if kind == "student_t":
        return dl.StudentT(draw(st.floats(0.5, 100)), draw(loc_s), draw(scale_s))
    if kind == "laplace":
        return dl.Laplace(draw(loc_s), draw(scale_s))
    if kind == "uniform":
        lo = draw(loc_s)
        return dl.Uniform(lo, lo + draw(scale_s))
    comps = draw(st.lists(dist1d(depth=1), min_size=1, max_size=3))
    w = draw(st.lists(st.floats(0.0, 10.0), min_size=len(comps), max_size=len(comps)))
    assume(sum(w) > 1e-6)
    return dl.Mixture(comps, weights=w)


@st.composite
def mvn2d(draw):
    mean = [draw(st.floats(-100, 100)), draw(st.floats(-100, 100))]
    sx, sy = draw(st.floats(1e-2, 50)), draw(st.floats(1e-2, 50))
    rho = draw(st.floats(-0.99, 0.99))
    cov = [[sx * sx, rho * sx * sy], [rho * sx * sy, sy * sy]]
    return dl.MultivariateNormal(mean, cov)


DENSITY_KEYS = [s.key for s in dl.catalogue() if s.from_logs is not None and s.key != "f_divergence"]
SAMPLE_KEYS = ["wasserstein", "sliced_wasserstein", "mmd", "energy"]


@st.composite
def div_params(draw, key):
    """Parameters for ``key``: usually inside the documented range, sometimes anything."""
    spec = dl.catalogue()
    spec = next(s for s in spec if s.key == key)
    out = {}
    for p in spec.params:
        if p.kind != "number" or p.choices:
            continue
        if not isinstance(p.default, (int, float)) or isinstance(p.default, bool):
            continue
        lo = p.low if math.isfinite(p.low) else -10.0
        hi = p.high if math.isfinite(p.high) else 10.0
        if draw(st.integers(0, 4)) == 0:
            out[p.name] = draw(weird_num)
        elif draw(st.booleans()):
            out[p.name] = draw(st.floats(lo, hi))
    return out


# ---------------------------------------------------------------------------------------------
# the public API: dl.estimate / dl.divergence
# ---------------------------------------------------------------------------------------------

@fuzz(400)
@given(data=st.data(), p=dist1d(), q=dist1d(), key=st.sampled_from(DENSITY_KEYS),
       estimator=st.sampled_from(["auto", "quadrature"]))
def test_divergence_1d_never_nan_and_infinity_has_a_reason(data, p, q, key, estimator):
    params = data.draw(div_params(key))
    try:
        est = dl.estimate(p, q, key, estimator, n=129, **params)
    except Exception as exc:  # noqa: BLE001 - the property is about which exceptions escape
        expect_value_error(exc)
        return
    check_number(est.value, est.reason, f"{key}({p}‖{q})")
    v = float(est.value)
    assert v >= -1e-6 * (1 + abs(v)) or key in ("alpha", "renyi", "tsallis"), f"{key} = {v} < 0"


@fuzz(150)
@given(data=st.data(), p=mvn2d(), q=mvn2d(), key=st.sampled_from(DENSITY_KEYS))
def test_divergence_2d_never_nan_and_infinity_has_a_reason(data, p, q, key):
    params = data.draw(div_params(key))
    try:
        est = dl.estimate(p, q, key, "auto", n=33, **params)
    except Exception as exc:  # noqa: BLE001
        expect_value_error(exc)
        return
    check_number(est.value, est.reason, f"{key} 2D")


clouds = st.integers(1, 2).flatmap(lambda d: st.tuples(
    st.lists(st.lists(st.floats(-1e3, 1e3), min_size=d, max_size=d), min_size=1, max_size=24),
    st.lists(st.lists(st.floats(-1e3, 1e3), min_size=d, max_size=d), min_size=1, max_size=24)))


@fuzz(200)
@given(data=st.data(), xy=clouds, key=st.sampled_from(SAMPLE_KEYS))
def test_sample_divergences_on_random_clouds(data, xy, key):
    x, y = (np.asarray(c, dtype=float) for c in xy)
    params = data.draw(div_params(key))
    try:
        est = dl.estimate(dl.Empirical(x), dl.Empirical(y), key, **params)
    except Exception as exc:  # noqa: BLE001
        expect_value_error(exc)
        return
    check_number(est.value, est.reason, key)


@fuzz(150)
@given(spec=st.recursive(
    st.one_of(weird_num, st.lists(weird_num, max_size=3)),
    lambda inner: st.dictionaries(st.sampled_from(["type", "loc", "scale", "df", "low", "high", "mean", "cov",
                                                   "components", "weights", "x", "values", "points"]),
                                  st.one_of(inner, st.sampled_from(["normal", "mixture", "uniform", "mvn",
                                                                    "student_t", "laplace", "grid", "ring"]),
                                            st.lists(inner, max_size=3)), max_size=5),
    max_leaves=12))
def test_from_spec_on_random_objects(spec):
    try:
        d = dl.from_spec(spec)
    except Exception as exc:  # noqa: BLE001
        expect_value_error(exc)
        return
    assert isinstance(d, dl.Distribution)


@pytest.mark.parametrize("typ", [[], {}], ids=["list", "dict"])
def test_from_spec_unhashable_type_is_a_value_error(typ):
    with pytest.raises(ValueError, match="type"):
        dl.from_spec({"type": typ})


# ---------------------------------------------------------------------------------------------
# dl.fit with random small runs
# ---------------------------------------------------------------------------------------------

FIT_KEYS = [s.key for s in sup.fittable_specs()]


@fuzz(150)
@given(data=st.data(), target=dist1d(), key=st.sampled_from(FIT_KEYS), steps=st.integers(0, 4),
       lr=st.one_of(st.floats(1e-4, 20.0), st.floats(1e-3, 1.0), st.floats(1e-3, 1.0), weird_num),
       loc=st.one_of(loc_s, loc_s, loc_s, weird_num), scale=st.one_of(scale_s, scale_s, scale_s, weird_num), optimizer=st.sampled_from(["adam", "sgd"]),
       polish=st.booleans())
def test_fit_random_small_runs(data, target, key, steps, lr, loc, scale, optimizer, polish):
    params = data.draw(div_params(key))
    try:
        res = dl.fit(target, family="normal", divergence=key, params=params, steps=steps, lr=lr,
                     init={"loc": loc, "scale": scale}, optimizer=optimizer, polish=polish, n=129)
    except Exception as exc:  # noqa: BLE001
        expect_value_error(exc)
        return
    losses = np.asarray(res.losses, dtype=float)
    assert losses.size >= 1 and not np.isnan(losses).any(), f"NaN in losses: {losses}"
    for name, arr in res.trajectory.items():
        assert np.isfinite(np.asarray(arr, dtype=float)).all(), f"non-finite {name} in the trajectory"
    assert res.status in ("converged", "max_steps") or res.status.split(":")[0] in ("diverged", "stopped")
    if math.isinf(res.final_loss):
        reason = sup._reason(res.status)
        check_number(res.final_loss, reason if res.status.startswith("diverged:") else None, "final loss")
    row = sup.result_rows([res])[0]
    assert "nan" not in row["final value"].lower()


# ---------------------------------------------------------------------------------------------
# scenarios: JSON text, mutated presets, URL parameters
# ---------------------------------------------------------------------------------------------

PRESET_JSON = [p["scenario"].to_json(indent=None) for p in presets()]
PRESET_DICTS = [json.loads(t) for t in PRESET_JSON]


def scenario_or_value_error(fn, arg):
    try:
        sc = fn(arg)
    except Exception as exc:  # noqa: BLE001
        expect_value_error(exc)
        assert "\n" not in str(exc), f"error message is not one line: {exc!r}"
        return None
    # whatever was accepted round-trips exactly through JSON and the URL
    assert Scenario.from_json(sc.to_json()) == sc
    assert Scenario.from_url_param(sc.to_url_param()) == sc
    return sc


@fuzz(300)
@given(text=st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_scenario_from_random_text(text):
    scenario_or_value_error(Scenario.from_json, text)


@st.composite
def mutated_text(draw):
    s = draw(st.sampled_from(PRESET_JSON))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["replace", "delete", "insert", "truncate"]))
        i = draw(st.integers(0, len(s)))
        if op == "replace" and i < len(s):
            s = s[:i] + draw(st.sampled_from(list('{}[]",:0123456789.-eE ntfa\\') + ["\x00", "é"])) + s[i + 1:]
        elif op == "delete":
            s = s[:i] + s[i + draw(st.integers(1, 10)):]
        elif op == "insert":
            s = s[:i] + draw(st.sampled_from(["1e400", "NaN", "-Infinity", "[[[[", "null", "\"x\"", "{}", "-0"])) + s[i:]
        else:
            s = s[:i]
    return s


@fuzz(300)
@given(text=mutated_text())
def test_scenario_from_mutated_preset_text(text):
    scenario_or_value_error(Scenario.from_json, text)


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=False),
                      st.text(max_size=8), st.sampled_from(["normal", "mixture", "kl", "reverse_kl", "adam",
                                                            "quadrature", "mvn", "mixture"]))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                             st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                          max_leaves=8)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


@st.composite
def mutated_dict(draw):
    d = json.loads(json.dumps(draw(st.sampled_from(PRESET_DICTS))))
    paths = [p for p in _paths(d) if p]
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        parent = d
        try:
            for k in path[:-1]:
                parent = parent[k]
            if draw(st.integers(0, 5)) == 0 and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = draw(json_value)
        except (KeyError, IndexError, TypeError):
            pass
    return d


@fuzz(400)
@given(d=mutated_dict())
def test_scenario_from_mutated_preset_fields(d):
    try:
        text = json.dumps(d, allow_nan=True)
    except (ValueError, RecursionError):
        return
    scenario_or_value_error(Scenario.from_json, text)
    scenario_or_value_error(Scenario.from_dict, d)


def _param_of(text: str) -> str:
    return base64.urlsafe_b64encode(zlib.compress(text.encode("utf-8"), 9)).decode("ascii").rstrip("=")


@st.composite
def url_params(draw):
    kind = draw(st.integers(0, 3))
    if kind == 0:  # random characters, mostly from the allowed alphabet
        return draw(st.text(alphabet=st.sampled_from(list("ABCDEFabcdef0123456789-_=+/%. ")), max_size=80))
    if kind == 1:  # a valid parameter with a few characters flipped or cut
        s = draw(st.sampled_from(PRESET_JSON))
        u = _param_of(s)
        i = draw(st.integers(0, len(u) - 1))
        if draw(st.booleans()):
            return u[:i]
        return u[:i] + draw(st.sampled_from(list("AZaz09-_"))) + u[i + 1:]
    if kind == 2:  # valid compression of invalid JSON
        return _param_of(draw(mutated_text()))
    return draw(st.text(max_size=40))


@fuzz(300)
@given(u=url_params())
def test_scenario_from_url_param(u):
    scenario_or_value_error(Scenario.from_url_param, u)


def test_url_param_zip_bomb_is_refused_before_inflating():
    """A tiny parameter that inflates to 50 MB: refused, without building 50 MB."""
    bomb = base64.urlsafe_b64encode(zlib.compress(b" " * 50_000_000, 9)).decode().rstrip("=")
    assert len(bomb) < 100_000
    with pytest.raises(ValueError, match=f"decompresses to more than {MAX_BYTES} bytes"):
        Scenario.from_url_param(bomb)


@fuzz(150)
@given(depth=st.integers(0, 3000), width=st.integers(0, 3), brackets=st.sampled_from(["[]", "{}"]),
       in_string=st.booleans())
def test_check_json_text_depth(depth, width, brackets, in_string):
    """Depth is counted outside strings only; the limit is exact."""
    from divlab.scenario import MAX_DEPTH

    o, c = brackets
    inner = ('"' + "[{" * width + '"') if in_string else ""
    if o == "[":
        text = "[" * depth + inner + "]" * depth
    else:
        text = '{"a":' * depth + (inner or "1") + "}" * depth
    if depth > MAX_DEPTH:
        with pytest.raises(ValueError, match=f"nested deeper than {MAX_DEPTH}"):
            check_json_text(text)
    else:
        assert check_json_text(text) == text


# ---------------------------------------------------------------------------------------------
# the app's parsers (divlab.app_support) and limits
# ---------------------------------------------------------------------------------------------

cell = st.one_of(weird_num, st.sampled_from(list(sup.FAMILIES) + ["Normal ", "gauss", ""]),
                 st.floats(-1e6, 1e6), st.floats(1e-3, 1e3))
row = st.one_of(
    st.fixed_dictionaries({c: cell for c in sup.COLUMNS}),
    st.dictionaries(st.sampled_from(list(sup.COLUMNS) + ["extra", "_index"]), cell, max_size=6),
)


@fuzz(300)
@given(rows=st.one_of(st.lists(row, max_size=5), st.lists(st.one_of(row, weird_num), max_size=3), weird_num,
                      st.dictionaries(st.text(max_size=3), cell, max_size=2)))
def test_component_table_parsing(rows):
    try:
        clean = sup.parse_components(rows)
        target = sup.mixture_from_rows(rows)
    except Exception as exc:  # noqa: BLE001
        expect_value_error(exc)
        return
    assert 1 <= len(clean) <= len(rows)
    for r in clean:
        assert r["family"] in sup.FAMILIES and math.isfinite(r["loc"]) and r["scale"] > 0 and r["weight"] >= 0
    lp = target.log_prob(torch.tensor([clean[0]["loc"]], dtype=torch.float64))
    assert not torch.isnan(lp).any()


@fuzz(200)
@given(x=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6)),
       reason=st.text(max_size=20), unit=st.sampled_from(UNITS))
def test_format_value_never_shows_nan_as_a_number(x, reason, unit):
    s = sup.format_value(x, reason, unit=unit)
    assert "nan" not in s.lower().replace(reason.lower(), "")
    if math.isinf(float(x)):
        assert "∞" in s
    elif not math.isnan(float(x)):
        assert s.endswith(unit) if unit != "dimensionless" else s.endswith(f"{float(x):.6g}")


@fuzz(150)
@given(name=st.sampled_from(list(limits.LIMITS)), v=st.one_of(weird_num, st.integers(-10**12, 10**12),
                                                              st.floats(-1e12, 1e12)))
def test_clamp_on_anything(name, v):
    try:
        out, notice = limits.clamp(name, v)
    except Exception as exc:  # noqa: BLE001
        expect_value_error(exc)
        return
    cap = limits.value(name)
    assert out <= cap and not math.isnan(out)
    assert (notice is None) == (float(v) <= cap)
    if notice is not None:
        assert limits.LIMITS[name].env in notice


# ---------------------------------------------------------------------------------------------
# the drawing canvas and the parameter text boxes (values a visitor, or a tampered WebSocket
# message, controls)
# ---------------------------------------------------------------------------------------------

coord = st.one_of(st.floats(-50, 700), st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**15, 10**15),
                  st.booleans(), st.none(), st.text(max_size=3), st.lists(st.floats(), max_size=2))
path_cmd = st.one_of(st.tuples(st.sampled_from(["M", "L", "Q", "C", "Z"]), coord, coord).map(list),
                     st.lists(coord, max_size=5), coord)
canvas_obj = st.one_of(
    st.fixed_dictionaries({"type": st.just("path"), "path": st.one_of(st.lists(path_cmd, max_size=12), coord)}),
    st.fixed_dictionaries({"type": st.just("line"), "left": coord, "top": coord, "x1": coord, "y1": coord,
                           "x2": coord, "y2": coord}),
    st.dictionaries(st.text(max_size=5), coord, max_size=3), coord)
canvas_json = st.one_of(st.fixed_dictionaries({"objects": st.one_of(st.lists(canvas_obj, max_size=4), coord)}),
                        coord, st.dictionaries(st.text(max_size=5), coord, max_size=2))


@fuzz(300)
@given(data=canvas_json, smooth=st.floats(0, 0.1), ink=st.floats(0, 1))
def test_canvas_values_never_crash_or_hang(data, smooth, ink):
    import time

    t0 = time.perf_counter()
    strokes = sup.canvas_points(data)
    try:
        spec = sup.density_from_strokes(strokes, 640, 220, (-6.0, 6.0), smooth=smooth, ink=ink)
    except Exception as exc:  # noqa: BLE001
        expect_value_error(exc)
    else:
        values = np.asarray(spec["values"])
        assert np.isfinite(values).all() and (values >= 0).all() and values.max() > 0
    assert time.perf_counter() - t0 < 2.0


def test_a_stroke_far_outside_the_canvas_is_not_densified():
    """A tampered stroke from x = 0 to 10^12 would be 4·10^12 points at 4 per pixel."""
    import time

    t0 = time.perf_counter()
    spec = sup.density_from_strokes([[(0.0, 100.0), (1e12, 100.0)]], 640, 220, (-6.0, 6.0))
    assert time.perf_counter() - t0 < 2.0
    assert len(spec["values"]) == 201
    line = {"objects": [{"type": "line", "left": "x", "top": [1], "x1": 0, "y1": 0, "x2": 5, "y2": 5}]}
    assert sup.canvas_points(line) == []
    assert sup.canvas_points({"objects": 5}) == []


PARAM_SPECS = [(s, p) for s in sup.fittable_specs() for p in s.params]


@fuzz(200)
@given(sp=st.sampled_from(PARAM_SPECS),
       text=st.one_of(st.text(max_size=30), st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=4)
                      .map(lambda xs: ", ".join(map(str, xs))), weird_num))
def test_parameter_text_boxes(sp, text):
    spec, param = sp
    try:
        values = sup.parse_param_values(spec, param, text)
    except Exception as exc:  # noqa: BLE001
        expect_value_error(exc)
        return
    assert values and all(math.isfinite(v) for v in values)
    for v in values:
        spec.resolve_params({param.name: v})  # each value is allowed by the registry


# ---------------------------------------------------------------------------------------------
# cases the fuzzers found (kept as plain tests: the hypothesis database is not in CI)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [1.0, "M 0 0", {"a": 1}, None], ids=["number", "text", "object", "null"])
def test_canvas_path_that_is_not_a_list_is_no_stroke(path):
    from divlab import app_support as sup

    assert sup.canvas_points({"objects": [{"type": "path", "path": path}]}) == []


def test_scenario_field_name_with_a_newline_gets_a_one_line_message():
    from divlab.scenario import Scenario

    d = dl.load_preset("two_equal_modes")["scenario"].model_dump()
    d["model"] = {"\n": None}
    with pytest.raises(ValueError) as info:
        Scenario.from_json(json.dumps(d))
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("scenario.model['\\n']: unknown field"), msg
