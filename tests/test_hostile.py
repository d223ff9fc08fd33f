"""Hostile input, answered within budget (issue 18).

Every crafted link, file and argument ends in one of three ways: a result, +∞ with a reason, or a
``ValueError`` whose message names the parameter at fault; never another exception, never a NaN
passed off as a number, never a call that runs past ``HANG_S`` seconds.

Part 1 checks the issue's examples one by one. Part 2 is a property-based fuzz (hypothesis,
``derandomize=True``, no example database: the same inputs on every run) over distribution specs,
divergence × estimator pairs, fit arguments, scenario JSON and URL mutations, CLI arguments, and
every page through AppTest with mutated scenarios. ``test_zz_fuzz_counts`` runs last and checks
that at least ``MIN_TOTAL`` generated inputs were tried (the per-category counts are printed).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import io
import json
import math
import os
import re
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import divlab as dl
from divlab import app_support as sup
from divlab import limits
from divlab.cli import main as cli_main
from divlab.distributions import from_spec
from divlab.distributions.base import MAX_ABS, MIN_SCALE
from divlab.distributions.spec import SPEC_TYPES
from divlab.limits import RunStopped

ROOT = Path(__file__).resolve().parents[1]
HANG_S = 10.0
MIN_TOTAL = 3000
COUNTS: Counter = Counter()
#: how the inputs ended, per category ("<category>:result" / "<category>:ValueError")
OUTCOMES: Counter = Counter()


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Thousands of tiny tensor programs: one intra-op thread (see tests/test_fuzz.py)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def fuzz(n: int):
    return settings(max_examples=n, deadline=None, derandomize=True, database=None, print_blob=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])


def timed(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` -> (result or the exception, seconds); asserts it ended within HANG_S."""
    t0 = time.perf_counter()
    try:
        out = fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - classified by the caller
        out = exc
    dt = time.perf_counter() - t0
    assert dt < HANG_S, f"{getattr(fn, '__name__', fn)} took {dt:.1f} s (> {HANG_S} s)"
    return out, dt


def names_one_of(msg: str, names) -> bool:
    return any(re.search(rf"(?<![A-Za-z0-9_]){re.escape(str(n))}(?![A-Za-z0-9_])", msg) for n in names if n)


def spec_keys(spec, depth=0) -> set:
    """Every key in a (nested) spec, and the type names in it."""
    out = set()
    if depth > 10:
        return out
    if isinstance(spec, dict):
        for k, v in spec.items():
            out.add(k)
            if k == "type" and isinstance(v, str):
                out.add(v)
            out |= spec_keys(v, depth + 1)
    elif isinstance(spec, list):
        for v in spec:
            out |= spec_keys(v, depth + 1)
    return out


def check_value_error(exc, names) -> None:
    assert isinstance(exc, ValueError), f"{type(exc).__name__}: {exc}"
    msg = str(exc)
    assert msg.strip(), "ValueError without a message"
    assert names_one_of(msg, names), f"the message names none of {sorted(map(str, names))[:12]}: {msg}"


def check_estimate(e) -> None:
    v = e.value.detach().reshape(-1)
    assert not torch.isnan(v).any(), f"NaN from {e.estimator}"
    if torch.isinf(v).any():
        assert isinstance(e.reason, str) and e.reason.strip(), f"{float(v[0])} without a reason ({e.estimator})"


# =============================================================================================
# part 1: the issue's examples
# =============================================================================================

def _mc_grid_spec():
    return {"type": "normal", "loc": 1e300, "scale": 1.0}


ISSUE_EXAMPLES = [
    pytest.param(lambda: dl.Normal(0.0, 10**400), "scale", "must be a number", id="huge-int-scale"),
    pytest.param(lambda: from_spec({"type": "normal", "loc": 0, "scale": 10**400}), "scale", "larger than",
                 id="huge-int-scale-spec"),
    pytest.param(lambda: from_spec({"type": "normal", "loc": [0, 1, 2], "scale": 1.0}), "loc", "single number",
                 id="batched-loc-spec"),
    pytest.param(lambda: from_spec({"type": "normal", "loc": [], "scale": 1.0}), "loc", "single number",
                 id="empty-list-spec"),
    pytest.param(lambda: dl.Normal([], 1.0), "loc", "must not be empty", id="empty-list"),
    pytest.param(lambda: from_spec({"type": "student_t", "df": [], "loc": 0, "scale": 1}), "df", "single number",
                 id="empty-df"),
    pytest.param(lambda: from_spec({"type": "uniform", "low": 0.0, "high": [[1, 2], [3, 4]]}), "high",
                 "2-vector", id="matrix-high"),
    pytest.param(lambda: dl.Uniform(0.0, [[1.0, 2.0], [3.0, 4.0]]), "high", "same shape", id="matrix-high-ctor"),
    pytest.param(lambda: dl.TwoMoons(0.1, nodes=10**9), "nodes", "4096", id="two-moons-nodes"),
    pytest.param(lambda: dl.Ring(2.0, 1e-300), "width", "1e-09", id="ring-width"),
    pytest.param(lambda: dl.divergence(dl.Mixture([dl.Empirical([0.0, 1.0]), dl.Normal()]), dl.Normal(), "kl"),
                 "components", "no density", id="empirical-in-mixture"),
    pytest.param(lambda: dl.fit(dl.Normal(0.0, 1e300), family="normal", divergence="sinkhorn", estimator="samples",
                                steps=2, init={"loc": 0.0, "scale": 1.0}), "scale", "1e+09", id="sinkhorn-scale-1e300"),
    pytest.param(lambda: dl.divergence(from_spec(_mc_grid_spec()), dl.Normal(), "kl", estimator="quadrature"),
                 "loc", "1e+09", id="quadrature-loc-1e300"),
    pytest.param(lambda: dl.fit(dl.Normal(), family="normal", divergence="kl", steps=2, seed="x"), "seed",
                 "integer", id="string-seed-fit"),
    pytest.param(lambda: dl.divergence(dl.Normal(), dl.Normal(1.0), "kl", estimator="mc", seed="x"), "seed",
                 "integer", id="string-seed-divergence"),
    pytest.param(lambda: dl.Banana(1e200), "curvature", "1000", id="banana-huge"),
    pytest.param(lambda: from_spec({"type": "banana", "curvature": 1e300}), "curvature", "1000",
                 id="banana-huge-spec"),
    pytest.param(lambda: dl.estimate(dl.Normal(), dl.Normal(1.0), "sinkhorn", epsilon=1e-300), "epsilon", "1e-10",
                 id="sinkhorn-eps-1e-300"),
]


@pytest.mark.parametrize("call, param, words", ISSUE_EXAMPLES)
def test_issue_examples_are_value_errors_naming_the_parameter(call, param, words):
    exc, _ = timed(call)
    check_value_error(exc, [param])
    assert words in str(exc), str(exc)


def test_kl_two_moons_vs_far_mvn_finishes():
    """KL (auto) between two moons and an MVN with mean 1e6 (a hang in the issue): a number now,
    from a quadrature whose TwoMoons density is one fused matmul (about 5e11 nats: ~|m|²/2)."""
    e, dt = timed(dl.estimate, dl.TwoMoons(), dl.MultivariateNormal([1e6, 0.0], [[1.0, 0.0], [0.0, 1.0]]), "kl")
    assert not isinstance(e, Exception), e
    check_estimate(e)
    assert float(e.value) == pytest.approx(5e11, rel=0.01)


def test_spec_never_carries_a_batch_but_the_engine_may():
    """A spec (file, scenario, link) is refused a batch; a library caller (the fitting engine)
    still builds batched models from tensors."""
    for spec, key in [({"type": "normal", "loc": [0.0, 1.0], "scale": 1.0}, "loc"),
                      ({"type": "mvn", "mean": [[0, 0], [1, 1]], "cov": [[1, 0], [0, 1]]}, "mean"),
                      ({"type": "mixture", "weights": [[0.5, 0.5]], "components": [{"type": "normal", "loc": 0,
                                                                                     "scale": 1}] * 2}, "weights"),
                      ({"type": "ring", "radius": 2.0, "width": 0.3, "center": [0, 0, 0]}, "center")]:
        with pytest.raises(ValueError, match=rf"\({key}="):
            from_spec(spec)
    batched = dl.Normal(torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64), 1.0)
    assert batched.batch_shape == (3,)
    res = dl.fit(dl.Normal(1.0, 2.0), family="normal", divergence=["kl", "reverse_kl"], steps=3,
                 init={"loc": 0.0, "scale": 1.0})
    assert len(res) == 2


def test_bounds_name_the_largest_value_allowed():
    with pytest.raises(ValueError, match=r"Normal\(loc=10000000000\.0\): \|loc\| must be <= 1e\+09 \(the largest value allowed\)"):
        dl.Normal(1e10, 1.0)
    with pytest.raises(ValueError, match=r"scale must be >= 1e-09"):
        dl.Laplace(0.0, 1e-12)
    with pytest.raises(ValueError, match=r"scale must be >= 1e-10·\|loc\| = 0\.1 here"):
        dl.Normal(1e9, 1e-3)
    assert float(dl.Normal(MAX_ABS, MAX_ABS).bounds()[0, 1]) == pytest.approx(9e9)
    assert dl.Normal(0.0, MIN_SCALE).min_scale() == MIN_SCALE


def test_schema_steps_maximum_is_the_server_limit(monkeypatch):
    d = dl.load_preset("two_equal_modes")["scenario"].to_dict()
    d["optimizer"]["steps"] = 5000
    with pytest.raises(ValueError, match=r"scenario\.optimizer\.steps: must be <= 2000 .*DIVLAB_MAX_STEPS"):
        dl.Scenario.from_dict(d)
    monkeypatch.setenv("DIVLAB_MAX_STEPS", "6000")
    assert dl.Scenario.from_dict(d).optimizer.steps == 5000
    monkeypatch.setenv("DIVLAB_MAX_STEPS", "100")
    d["optimizer"]["steps"] = 101
    with pytest.raises(ValueError, match=r"must be <= 100 "):
        dl.Scenario.from_dict(d)


def _link(mutate) -> str:
    d = dl.load_preset("two_equal_modes")["scenario"].to_dict()
    mutate(d)
    raw = zlib.compress(json.dumps(d).encode(), 9)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


CRAFTED_LINKS = {
    "batched-target": (lambda d: d.update(target={"type": "normal", "loc": [0, 1, 2], "scale": 1.0}),
                       "scenario.target.loc"),
    "steps-5000": (lambda d: d["optimizer"].update(steps=5000), "scenario.optimizer.steps"),
    "sinkhorn-eps-1e-300": (lambda d: d.update(divergences=[{"key": "sinkhorn", "params": {"epsilon": 1e-300}}],
                                               estimator="auto"), "epsilon"),
    "huge-int-scale": (lambda d: d.update(target={"type": "normal", "loc": 0, "scale": 10**400}), "scenario.target"),
    "init-scale-1e-300": (lambda d: d["model"]["init"].update(scale=1e-300), "scenario.model.init.scale"),
}


@pytest.mark.parametrize("name", list(CRAFTED_LINKS))
def test_crafted_links_keep_the_last_good_state(name):
    mutate, where = CRAFTED_LINKS[name]
    good = dl.load_preset("separated_modes")["scenario"]
    r = sup.resolve_url_state(_link(mutate), good, good.to_url_param())
    assert r.scenario == good and not r.loaded
    assert r.error.startswith("The shared link is damaged or was edited") and where in r.error, r.error


# ---------------------------------------------------------------------------------------------
# pages: the issue's crafted scenarios, the message, and the way back
# ---------------------------------------------------------------------------------------------

from streamlit.testing.v1 import AppTest  # noqa: E402

ONE_D_PAGES = ["race", "families", "landscape", "calculator", "theory"]


def open_page(name: str, sc: dl.Scenario, source: str = "url", **state) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=60)
    at.session_state[sup.SCENARIO_KEY] = sc
    at.session_state[sup.VERSION_KEY] = 1
    at.session_state["scenario_source"] = source
    at.session_state["land_restarts"] = 4
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def empirical_mmd_scenario() -> dl.Scenario:
    d = dl.load_preset("two_equal_modes")["scenario"].with_overrides(steps=10).to_dict()
    d.update(target={"type": "empirical", "points": [-2.0, -1.5, 1.0, 2.0, 2.5]}, estimator="samples", samples=32,
             divergences=[{"key": "mmd", "params": {}}])
    return dl.Scenario.from_dict(d)


@pytest.mark.parametrize("page", ONE_D_PAGES)
def test_empirical_target_on_a_density_page_says_where_it_belongs_and_offers_a_way_back(page):
    at = open_page(page, empirical_mmd_scenario())
    msgs = [e.value for e in at.error]
    assert any("point cloud of 5 points" in m and "Fit 1D" in m for m in msgs), msgs
    at.button(key=f"{ {'families': 'fam', 'landscape': 'land', 'calculator': 'calc'}.get(page, page)}_way_back_btn"
              ).click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state[sup.SCENARIO_KEY] == sup.default_scenario()
    assert not any("point cloud" in e.value for e in at.error)


def test_race_at_the_steps_limit_and_at_one_step():
    base = dl.load_preset("two_equal_modes")["scenario"]
    for steps in (1, int(limits.value("steps"))):
        at = open_page("race", base.with_overrides(steps=steps))
        assert at.slider(key="race_steps").value == steps
        assert len(at.get("plotly_chart")) == 1


def test_race_stops_at_the_wall_clock_budget(monkeypatch):
    monkeypatch.setenv("DIVLAB_RUN_BUDGET_S", "0.001")
    d = dl.load_preset("two_equal_modes")["scenario"].with_overrides(steps=300).to_dict()
    d["seed"] = 18_018  # a scenario no other test ran (the page caches finished races)
    sc = dl.Scenario.from_dict(d)
    with pytest.raises(RunStopped) as info:
        sup.race_view(sc.to_json())
    assert "wall-clock budget" in info.value.notice and "figure" in info.value.partial
    at = open_page("race", sc)
    assert any("wall-clock budget" in w.value for w in at.warning)
    assert len(at.get("plotly_chart")) == 1  # the partial race is shown


def test_sinkhorn_small_eps_on_fit1d_and_race():
    d = dl.load_preset("two_equal_modes")["scenario"].with_overrides(steps=5).to_dict()
    d.update(divergences=[{"key": "sinkhorn", "params": {"epsilon": 1e-10}}], estimator="auto", samples=32)
    sc = dl.Scenario.from_dict(d)
    for page in ("fit_1d", "race"):
        open_page(page, sc)


# =============================================================================================
# part 2: the fuzz
# =============================================================================================

HOSTILE = st.one_of(
    st.sampled_from([1e300, -1e300, 1e-300, 5e-324, -0.0, 1e9, 1e9 * 1.0000001, 1e-9, 0.99e-9, 1e-10, 1e6, 1e3,
                     10**400, -10**400, 2**64, float("nan"), float("inf"), -float("inf"), 0, 1, -1, 0.5]),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.integers(-10**30, 10**30),
    st.lists(st.floats(-10, 10), max_size=3),
    st.just([]), st.just([[1.0, 2.0], [3.0, 4.0]]), st.just([[0.0, 0.0]]),
    st.text(max_size=3), st.booleans(), st.none(), st.just({"a": 1}),
)
SANE = {"loc": st.floats(-5, 5), "scale": st.floats(0.1, 5), "df": st.floats(0.5, 30), "low": st.just(0.0),
        "high": st.just(1.0), "mean": st.just([0.0, 0.0]), "cov": st.just([[1.0, 0.2], [0.2, 1.0]]),
        "curvature": st.floats(-2, 2), "scale1": st.floats(0.2, 3), "scale2": st.floats(0.1, 2),
        "radius": st.floats(0.5, 4), "width": st.floats(0.05, 1), "center": st.just([0.0, 0.0]),
        "noise": st.floats(0.05, 0.5), "points": st.just([0.0, 1.0, 3.0]), "weights": st.none(),
        "x": st.just([0.0, 1.0, 2.0]), "values": st.just([0.0, 1.0, 0.0]), "probs": st.just([0.2, 0.3, 0.5]),
        "logits": st.none(), "labels": st.none()}
TYPES = sorted(SPEC_TYPES) + ["gaussian", ""]


@st.composite
def spec_strategy(draw, depth=0):
    typ = draw(st.sampled_from(TYPES))
    cls = SPEC_TYPES.get(typ)
    keys = list(getattr(cls, "spec_keys", ("loc", "scale")))
    spec = {"type": typ}
    if typ == "mixture":
        spec["components"] = draw(st.lists(spec_strategy(depth + 1) if depth < 2 else st.just(
            {"type": "normal", "loc": 0.0, "scale": 1.0}), max_size=3)) if draw(st.booleans()) else copy.deepcopy(draw(HOSTILE))
        if draw(st.booleans()):
            spec["weights"] = copy.deepcopy(draw(HOSTILE))
    else:
        for k in keys:
            if k == "y" or (typ == "categorical" and k in ("logits", "labels")):
                continue
            r = draw(st.integers(0, 9))
            if r == 0:
                continue  # a missing key
            spec[k] = copy.deepcopy(draw(HOSTILE) if r <= 3 else draw(SANE.get(k, st.floats(-1, 1))))
    if draw(st.integers(0, 12)) == 0:
        spec[draw(st.sampled_from(["extra", "Loc", "batch"]))] = 1.0
    return spec


def _check_built(d, spec) -> None:
    assert d.batch_shape == torch.Size(), f"{spec} built a batch {tuple(d.batch_shape)}"
    if getattr(d, "is_discrete", False):
        x = d.sample(4, seed=0)
        assert torch.isfinite(x).all()
        return
    if getattr(d, "has_density", True):
        b = d.bounds()
        assert torch.isfinite(b).all() and (b[:, 1] > b[:, 0]).all(), f"bounds {b.tolist()} of {spec}"
        mid = b.mean(-1)
        pt = mid[0] if d.dim == 1 else mid
        lp = d.log_prob(pt)
        assert not torch.isnan(lp).any(), f"log_prob NaN at the box's middle for {spec}"
    x = d.sample(4, seed=0)
    assert torch.isfinite(x).all(), f"non-finite samples from {spec}"


@fuzz(900)
@given(spec_strategy())
def test_fuzz_distribution_specs(spec):
    COUNTS["specs"] += 1
    out, _ = timed(from_spec, spec)
    OUTCOMES[f"specs:{'ValueError' if isinstance(out, Exception) else 'result'}"] += 1
    if isinstance(out, Exception):
        check_value_error(out, spec_keys(spec) | {"type", "spec", "components"})
        return
    out2, _ = timed(_check_built, out, spec)
    assert not isinstance(out2, Exception), f"{type(out2).__name__}: {out2}"


# -------------------------------------------------------------------------------- divergences

EXT_LOC = st.sampled_from([0.0, 1.0, -3.0, 1e3, -1e6, 1e9, -1e9])
EXT_SCALE = st.sampled_from([1e-9, 1e-4, 0.5, 1.0, 30.0, 1e6, 3e8])


def _valid(make, fallback):
    """An extreme but valid distribution: ``make()``, or ``fallback()`` where the combination drawn
    crosses a bound (those refusals are the spec fuzz's business)."""
    try:
        return make()
    except ValueError:
        return fallback()


@st.composite
def extreme_1d(draw, depth=0):
    return _valid(lambda: draw(_extreme_1d(depth)), lambda: dl.Normal(draw(EXT_LOC), 1e3))


@st.composite
def _extreme_1d(draw, depth=0):
    kind = draw(st.sampled_from(["normal", "student_t", "laplace", "uniform", "empirical", "grid"]
                                + (["mixture"] if depth == 0 else [])))
    loc = draw(EXT_LOC)
    scale = max(draw(EXT_SCALE), 1e-10 * abs(loc), 1e-9)
    if kind == "normal":
        return dl.Normal(loc, scale)
    if kind == "student_t":
        return dl.StudentT(draw(st.sampled_from([1e-3, 0.5, 1.0, 3.0, 1e6])), loc, scale)
    if kind == "laplace":
        return dl.Laplace(loc, scale)
    if kind == "uniform":
        return dl.Uniform(loc - scale, loc + scale)
    if kind == "empirical":
        return dl.Empirical([loc, loc + scale, loc - 2 * scale][: draw(st.integers(1, 3))])
    if kind == "grid":
        return dl.GridDensity([loc - scale, loc, loc + scale], [0.0, 1.0, 0.0])
    comps = draw(st.lists(extreme_1d(depth=1).filter(lambda c: getattr(c, "has_density", True)),
                          min_size=1, max_size=3))
    weights = [draw(st.sampled_from([1e-6, 1.0, 1e300])) for _ in comps] if draw(st.booleans()) else None
    return dl.Mixture(comps, weights)


@st.composite
def extreme_2d(draw):
    return _valid(lambda: draw(_extreme_2d()), lambda: dl.MultivariateNormal([1e6, 0.0], [[1.0, 0.0], [0.0, 1.0]]))


@st.composite
def _extreme_2d(draw):
    kind = draw(st.sampled_from(["mvn", "banana", "ring", "two_moons", "empirical", "uniform"]))
    m = draw(st.sampled_from([0.0, 5.0, 1e6, -1e9]))
    if kind == "mvn":
        s = max(draw(st.sampled_from([1e-4, 1.0, 1e4])), 1e-9 * abs(m))
        return dl.MultivariateNormal([m, 0.0], [[s * s, 0.0], [0.0, s * s]])
    if kind == "banana":
        return dl.Banana(draw(st.sampled_from([-1e3, 0.0, 1.0, 1e3])), draw(st.sampled_from([1e-3, 1.5, 1e4])), 0.5)
    if kind == "ring":
        return dl.Ring(draw(st.sampled_from([1e-3, 2.0, 1e9])), draw(st.sampled_from([1e-3, 0.3, 1e3])), [m, 0.0])
    if kind == "two_moons":
        return dl.TwoMoons(draw(st.sampled_from([0.05, 0.1, 1e3])))
    if kind == "uniform":
        return dl.Uniform([m, 0.0], [m + 1.0, 1e-3])
    return dl.Empirical([[m, 0.0], [m + 1.0, 1.0], [m, 2.0]])


def mostly(valid, hostile):
    """``valid`` nine times in ten, else ``hostile``: most inputs reach the computation."""
    return st.integers(0, 9).flatmap(lambda i: hostile if i == 0 else valid)


KEYS = [s.key for s in dl.catalogue() if s.key != "f_divergence"]


def _estimators(key):
    return ["auto", "closed_form", "quadrature", "mc", "samples"] + list(dl.catalogue() and [
        e for e in next(s for s in dl.catalogue() if s.key == key).estimators if e not in (
            "auto", "closed_form", "quadrature", "mc", "samples")])


def _estimate_call(p, q, key, est, n, seed, params):
    kw = dict(params)
    if est != "quadrature":
        kw["n"] = n
        kw["seed"] = seed
    if key == "sinkhorn":
        kw["options"] = {"max_iter": 100}
    return dl.estimate(p, q, key, est, **kw)


@st.composite
def div_case(draw):
    two_d = draw(st.integers(0, 9)) == 0
    p = draw(extreme_2d() if two_d else extreme_1d())
    q = draw(extreme_2d() if two_d else extreme_1d())
    key = draw(st.sampled_from(KEYS))
    est = draw(st.sampled_from(_estimators(key)))
    if two_d and est in ("auto", "quadrature"):
        est = draw(st.sampled_from(["closed_form", "mc", "samples"]))  # a 513² grid is seconds; covered above
    spec = next(s for s in dl.catalogue() if s.key == key)
    params = {}
    for par in spec.params:
        if par.kind == "number" and not par.choices and draw(st.booleans()):
            params[par.name] = draw(st.sampled_from([v for v in (par.low, par.high, par.default, -1.0, 1e300, 1e-300)
                                                     if isinstance(v, (int, float)) and math.isfinite(v)]))
    n = draw(mostly(st.sampled_from([32, 64]), st.sampled_from([2, 0, 10**9, "64"])))
    seed = draw(mostly(st.sampled_from([0, 7]), st.sampled_from([-1, "x", 2**64, 1.5])))
    return p, q, key, est, n, seed, params


@fuzz(700)
@given(div_case())
def test_fuzz_divergence_estimator_pairs(case):
    COUNTS["divergences"] += 1
    p, q, key, est, n, seed, params = case
    out, _ = timed(_estimate_call, p, q, key, est, n, seed, params)
    OUTCOMES[f"divergences:{'ValueError' if isinstance(out, Exception) else 'result'}"] += 1
    if isinstance(out, Exception):
        names = [key, est, "n", "seed", "p", "q", type(p).__name__, type(q).__name__, *params,
                 "estimator", "grid", "density", "samples"]
        check_value_error(out, names)
        return
    check_estimate(out)


# -------------------------------------------------------------------------------- fit arguments

FIT_DIVS = ["kl", "reverse_kl", "js", "hellinger", "alpha", "sinkhorn", "mmd", "energy", "wasserstein"]


@st.composite
def fit_case(draw):
    two_d = draw(st.integers(0, 5)) == 0
    target = draw(extreme_2d() if two_d else extreme_1d())
    family = draw(mostly(st.sampled_from(["mvn", "diag", "mixture"] if two_d else ["normal", "student_t", "mixture"]),
                         st.sampled_from(["mvn", "categorical", "bogus"])))
    kw = dict(family=family,
              divergence=draw(mostly(st.sampled_from(FIT_DIVS + [["kl", "reverse_kl"]]), st.sampled_from([[], "nope"]))),
              steps=draw(mostly(st.sampled_from([1, 2, 3]), st.sampled_from([0, -1, 10**9, "3", 2.5, True]))),
              lr=draw(mostly(st.sampled_from([0.05, 1e-300, 10.0]), st.sampled_from([-1.0, float("nan"), "x"]))),
              estimator=draw(mostly(st.sampled_from(["auto", "quadrature", "mc", "samples"]), st.just("bogus"))),
              seed=draw(mostly(st.sampled_from([0, 3, None]), st.sampled_from([-1, "x", 2**64, 1.5]))))
    if family == "mixture":
        kw["components"] = draw(mostly(st.sampled_from([1, 2]), st.sampled_from([0, 99])))
    if draw(st.booleans()):
        kw["n"] = draw(mostly(st.sampled_from([16, 64]), st.sampled_from([2, 2**40, "64"])))
    if draw(st.booleans()) and family == "normal":
        kw["init"] = {"loc": draw(st.sampled_from([0.0, 1e9, 1e300, float("nan")])),
                      "scale": draw(st.sampled_from([1.0, 1e-300, -1.0, 1e9]))}
    return target, kw


@fuzz(300)
@given(fit_case())
def test_fuzz_fit_arguments(case):
    COUNTS["fits"] += 1
    target, kw = case
    out, _ = timed(dl.fit, target, time_budget_s=HANG_S / 2, **kw)
    OUTCOMES[f"fits:{'ValueError' if isinstance(out, Exception) else 'result'}"] += 1
    if os.environ.get("DIVLAB_HOSTILE_DEBUG") and isinstance(out, Exception):
        print("FITERR", str(out)[:150])
    if isinstance(out, Exception):
        check_value_error(out, list(kw) + ["target", "divergence", "init", "loc", "scale", "df", "family",
                                           type(target).__name__, "density", "samples", "box", "grid"]
                          + [k for k in (kw["divergence"] if isinstance(kw["divergence"], list) else
                                         [kw["divergence"]])])
        return
    for r in (out if isinstance(out, list) else [out]):
        assert r.status, "a fit without a status"
        for v in r.losses:
            assert not math.isnan(float(v)) or r.status.startswith(("diverged", "stopped")), r.status


# -------------------------------------------------------------------------------- scenario JSON and URLs

BASES = [p["scenario"].with_overrides(steps=min(p["scenario"].optimizer.steps, 20)).to_dict() for p in dl.presets()]


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


@st.composite
def mutated_scenario(draw):
    d = json.loads(json.dumps(draw(st.sampled_from(BASES))))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(d) if p]
        path = draw(st.sampled_from(paths))
        parent = d
        for k in path[:-1]:
            parent = parent[k]
        action = draw(st.integers(0, 9))
        leaf = path[-1]
        if action <= 4:
            parent[leaf] = copy.deepcopy(draw(HOSTILE.filter(lambda v: not (isinstance(v, float)
                                                                            and not math.isfinite(v)))))
        elif action == 5 and isinstance(parent, dict):
            parent.pop(leaf)
        elif action == 6 and isinstance(parent, dict):
            parent[draw(st.sampled_from(["x", "steps", "loc", "batch"]))] = 1
        elif action == 7:
            d["target"] = draw(spec_strategy().filter(lambda s: _json_ok(s)))
        elif action == 8:
            d["optimizer"] = {"name": "adam", "lr": 0.05, "steps": draw(st.sampled_from(
                [1, 2000, 2001, 5000, 10**12]))}
        else:
            d["divergences"] = [{"key": draw(st.sampled_from(["sinkhorn", "mmd", "alpha", "kl"])),
                                 "params": draw(st.sampled_from([{}, {"epsilon": 1e-300}, {"epsilon": 1e-10},
                                                                 {"alpha": 3.0}, {"alpha": "x"}]))}]
    return d


def _json_ok(v) -> bool:
    try:
        json.dumps(v, allow_nan=False)
    except (ValueError, TypeError, OverflowError):
        return False
    return True


def _check_scenario_outcome(out) -> None:
    if isinstance(out, Exception):
        assert isinstance(out, ValueError), f"{type(out).__name__}: {out}"
        assert str(out).startswith("scenario"), f"the message does not name a field path: {out}"
        return
    sc = out
    t = sc.build_target()
    assert t.batch_shape == torch.Size()
    assert sc.optimizer.steps <= limits.value("steps")
    assert dl.Scenario.from_url_param(sc.to_url_param()) == sc


@fuzz(700)
@given(mutated_scenario())
def test_fuzz_scenario_json(d):
    COUNTS["scenario_json"] += 1
    text = json.dumps(d, allow_nan=False) if _json_ok(d) else "{"
    out, _ = timed(dl.Scenario.from_json, text)
    _check_scenario_outcome(out)


@fuzz(300)
@given(mutated_scenario(), st.integers(0, 4), st.integers(0, 10**6))
def test_fuzz_scenario_url(d, damage, where):
    COUNTS["scenario_url"] += 1
    text = json.dumps(d, allow_nan=False) if _json_ok(d) else "{}"
    s = base64.urlsafe_b64encode(zlib.compress(text.encode(), 9)).decode().rstrip("=")
    i = where % max(1, len(s))
    if damage == 1:
        s = s[:i]
    elif damage == 2:
        s = s[:i] + ("A" if s[i:i + 1] != "A" else "B") + s[i + 1:]
    elif damage == 3:
        s = s + "=="
    out, _ = timed(dl.Scenario.from_url_param, s)
    _check_scenario_outcome(out)
    r = sup.resolve_url_state(s, None, None)  # what app.py does with it: a scenario, and why not
    assert isinstance(r.scenario, dl.Scenario)
    if s:  # an empty ?s= is no link at all
        assert (r.error is None) == (not isinstance(out, Exception))


# -------------------------------------------------------------------------------- CLI arguments

_TMP = Path(tempfile.mkdtemp(prefix="divlab_hostile_"))


def _spec_file(spec, name) -> str:
    path = _TMP / name
    path.write_text(json.dumps(spec) if _json_ok(spec) else "{not json")
    return str(path)


@st.composite
def cli_case(draw):
    cmd = draw(st.sampled_from(["compare", "compare", "compare", "fit", "fit", "list", "presets", "junk"]))
    if cmd == "compare":
        p = _spec_file(draw(spec_strategy()), "p.json")
        q = _spec_file(draw(st.sampled_from([{"type": "normal", "loc": 0.0, "scale": 1.0},
                                             {"type": "mvn", "mean": [0, 0], "cov": [[1, 0], [0, 1]]},
                                             {"type": "normal", "loc": [0, 1], "scale": 1.0}])), "q.json")
        argv = ["compare", p, q, "--only", draw(st.sampled_from(["kl", "kl,hellinger", "mmd", "sinkhorn,wasserstein",
                                                                  "nope", ""])), "--quiet"]
        if draw(st.booleans()):
            argv += ["--samples", draw(st.sampled_from(["64", "1", "10000000", "x", "-5"]))]
        if draw(st.booleans()):
            argv += ["--seed", draw(st.sampled_from(["0", "-1", str(2**64), "x"]))]
        return argv
    if cmd == "fit":
        argv = ["fit", "--preset", draw(st.sampled_from([p["id"] for p in dl.presets()] + ["nope"])), "--quiet",
                "--steps", draw(st.sampled_from(["1", "2", "0", "5000", "x", "-3"]))]
        if draw(st.booleans()):
            argv += ["--divergence", draw(st.sampled_from(["kl", "kl,sinkhorn", "bogus", "mmd"]))]
        return argv
    if cmd == "junk":
        return draw(st.lists(st.text(max_size=6), max_size=4))
    return [cmd]


def _run_cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli_main(argv)
    return rc, out.getvalue(), err.getvalue()


@fuzz(200)
@given(cli_case())
def test_fuzz_cli_arguments(argv):
    COUNTS["cli"] += 1
    res, _ = timed(_run_cli, argv)
    assert not isinstance(res, Exception), f"{type(res).__name__}: {res}"
    rc, out, err = res
    assert rc in (0, 2), (rc, err)
    if rc == 2:
        lines = [ln for ln in err.splitlines() if ln.startswith("divlab: error:")]
        assert len(lines) == 1 and "Traceback" not in err, err
    assert not re.search(r"(?<![A-Za-z])nan(?![A-Za-z])", out, re.I), out  # a number is never NaN


# -------------------------------------------------------------------------------- every page

PAGES = ["home", "fit_1d", "fit_2d", "race", "families", "landscape", "flows", "calculator", "theory", "discrete",
         "transport"]
PAGE_RUNS = 30


def _kinds(sc) -> str:
    t = sc.build_target()
    if getattr(t, "is_discrete", False):
        return "categorical"
    if not getattr(t, "has_density", True):
        return "cloud"
    return f"{t.dim}d"


@st.composite
def page_scenario(draw):
    """A scenario the schema admits, pushed to its edges: batches are refused at the URL (above),
    so the page sees maxima, extreme ε and parameters, point clouds, 2D and categorical targets."""
    base = draw(st.sampled_from(BASES))
    d = json.loads(json.dumps(base))
    edits = draw(st.lists(st.integers(0, 9), min_size=1, max_size=3))
    for e in edits:
        if e == 0:
            d["optimizer"]["steps"] = draw(st.sampled_from([1, 2, 7]))
        elif e == 1:
            d["target"] = {"type": "empirical", "points": draw(st.sampled_from(
                [[-1.0, 0.0, 2.5], [[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]]]))}
            d.update(estimator="samples", samples=32, divergences=[{"key": draw(st.sampled_from(["mmd", "sinkhorn",
                                                                                                 "energy"])),
                                                                     "params": {}}])
        elif e == 2:
            d["divergences"] = [{"key": "sinkhorn", "params": {"epsilon": 1e-10}}]
            d.update(estimator="auto", samples=16)
        elif e == 3:
            d["target"] = draw(st.sampled_from([
                {"type": "normal", "loc": 1e9, "scale": 1e9}, {"type": "normal", "loc": -1e9, "scale": 0.1},
                {"type": "laplace", "loc": 0.0, "scale": 1e-9}, {"type": "student_t", "df": 1e-3, "loc": 0.0,
                                                                 "scale": 1.0},
                {"type": "uniform", "low": -1e9, "high": 1e9},
                {"type": "banana", "curvature": 1e3, "scale1": 1e4, "scale2": 1e-9},
                {"type": "ring", "radius": 1e9, "width": 0.1, "center": [0, 0]},
                {"type": "two_moons", "noise": 1e3}]))
        elif e == 4:
            d["seed"] = 2**32 - 1
            d["title"] = "Ω" * 200
            d["view"] = {"frames": draw(st.sampled_from([10, 200])), "show_loss": False}
        elif e == 5 and "init" in d.get("model", {}) and "loc" in d["model"]["init"]:
            d["model"]["init"].update(loc=draw(st.sampled_from([1e6, -1e6])), scale=draw(st.sampled_from([1e6, 1e-4])))
        elif e == 6:
            d["divergences"] = [{"key": k, "params": {}} for k in draw(st.sampled_from(
                [["alpha", "renyi", "tsallis", "skew_kl", "pearson", "neyman"], ["tv"], ["mmd", "energy"]]))]
            d["estimator"] = "auto"
            d["samples"] = 16
        elif e == 7:
            d["estimator"], d["samples"] = "mc", draw(st.sampled_from([16, 64]))
        elif e == 8:
            d["optimizer"] = {"name": draw(st.sampled_from(["adam", "sgd", "lbfgs"])),
                              "lr": draw(st.sampled_from([1e-300, 10.0])), "steps": 3}
        else:
            d["optimizer"]["steps"] = int(limits.value("steps"))
            d["divergences"] = d["divergences"][:1]
    try:
        sc = dl.Scenario.from_dict(d)
    except ValueError:
        sc = dl.Scenario.from_dict(base)  # an edit this base cannot take: the base itself, still a page run
    return sc


def _page_run(page, sc):
    # Flows autoruns a 150-particle, 150-step flow on a linked 2D scenario (tens of seconds on a busy
    # CPU; its own tests cover the run): opened as the default scenario, it seeds every widget.
    source = "default" if page == "flows" else "url"
    return open_page(page, sc, source=source)


@pytest.mark.parametrize("page", PAGES)
def test_fuzz_every_page_with_mutated_scenarios(page):
    if page == "transport":
        # Transport computes its studies from its own widgets (a scenario only seeds them when it
        # is one of its lessons): the first visit fills the cache (5-10 s on a busy CPU; its own
        # tests time it), the fuzz then checks that no scenario breaks the page
        open_page(page, dl.Scenario.from_dict(BASES[0]), source="default")

    @fuzz(PAGE_RUNS)
    @given(page_scenario())
    def run(sc):
        COUNTS[f"page:{page}"] += 1
        at, _ = timed(_page_run, page, sc)
        assert not isinstance(at, Exception), f"{type(at).__name__}: {at}"
        kind = _kinds(sc)
        msgs = " ".join(x.value for x in list(at.error) + list(at.warning) + list(at.info))
        if page in ONE_D_PAGES and kind != "1d":
            assert "This page works on" in msgs, (kind, msgs)
            assert at.button(key=f"{ {'families': 'fam', 'landscape': 'land', 'calculator': 'calc'}.get(page, page)}"
                             "_way_back_btn") is not None
        if page == "fit_1d" and kind == "2d":
            assert "2D target" in msgs, msgs

    run()
    assert COUNTS[f"page:{page}"] >= PAGE_RUNS


def test_zz_fuzz_counts():
    """Runs after the fuzz above (pytest keeps file order): at least MIN_TOTAL generated inputs."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("counts are per process under xdist")
    expected = {"specs", "divergences", "fits", "scenario_json", "scenario_url", "cli"} | {f"page:{p}" for p in PAGES}
    if not expected <= set(COUNTS):
        pytest.skip(f"only part of the fuzz ran (missing: {sorted(expected - set(COUNTS))})")
    total = sum(COUNTS.values())
    print("\nhostile-input fuzz:", dict(sorted(COUNTS.items())), "total", total)
    print("outcomes:", dict(sorted(OUTCOMES.items())))
    assert total >= MIN_TOTAL, dict(COUNTS)


def test_an_integer_too_large_for_a_float_is_a_clear_value_error():
    """Found by the scenario fuzz in a CI run: α = 10⁴⁰⁰ (a JSON integer) raised OverflowError."""
    d = dl.load_preset("alpha_continuum")["scenario"].to_dict()
    d["divergences"][0]["params"]["alpha"] = 10**400
    with pytest.raises(ValueError, match="alpha"):
        dl.Scenario.from_dict(d)
