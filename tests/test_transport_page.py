"""The Transport page (issue 17): "Which gradient?" and "Which map?".

The numbers are checked against references the test computes itself: finite differences, a
reference solved with another gradient mode, the errors recomputed from sinkhorn_divergence's own
outputs at a loose tolerance ("at loose tolerance the measured errors are what the panel shows"),
the Monge gap's identities (an increasing 1D map is optimal; x ↦ −x on a symmetric sample has
M₀ = 4·Var) and the closed-form Gaussian OT map. Then the page itself, in AppTest."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch

import divlab as dl
from divlab import app_support as sup
from divlab.app import transport as tr
from divlab.divergences import gradient_study as G
from divlab.divergences import map_study as M
from divlab.divergences import ot_solver as S
from divlab.divergences.transport import sinkhorn_divergence, sinkhorn_potentials
from divlab.viz import transport as vt
from divlab.viz.palette import MAP_COLOR, color_for

DT = torch.float64
ROOT = Path(__file__).resolve().parents[1]
EPS = 0.2
TOLS = (1e-1, 1e-2, 1e-9)
TIGHT = dict(tol=1e-13, max_iter=100_000, backend="tensorized")


def clouds(n=40, m=35, seed=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g, dtype=DT) * 0.7 + torch.tensor([-1.0, 0.5], dtype=DT)
    y = torch.randn(m, 2, generator=g, dtype=DT) * torch.tensor([1.0, 0.6], dtype=DT) + torch.tensor([1.0, 0.0], dtype=DT)
    return x, y


X, Y = clouds()
A = torch.full((X.shape[0],), 1.0 / X.shape[0], dtype=DT)
B = torch.full((Y.shape[0],), 1.0 / Y.shape[0], dtype=DT)


@pytest.fixture(scope="module")
def study():
    return G.sinkhorn_gradient_study(X, Y, EPS, tols=TOLS)


def value(x=X, eps=EPS, **kw):
    with torch.no_grad():
        v, info = sinkhorn_divergence(x, A, Y, B, eps, **{**TIGHT, **kw})
    assert info["status"] == "converged"
    return float(v)


def grads(mode, tol, eps=EPS):
    """A mode's value, ∇ₓS and dS/dε, recomputed here from sinkhorn_divergence itself."""
    xx = X.clone().requires_grad_(True)
    et = torch.tensor(eps, dtype=DT, requires_grad=True)
    v, info = sinkhorn_divergence(xx, A, Y, B, et, tol=tol, max_iter=20_000, gradient=mode, backend="tensorized")
    gx, ge = torch.autograd.grad(v, (xx, et))
    return float(v.detach()), gx, float(ge), info


def disp_of_plan(plan, x):
    T = (plan @ Y) / plan.sum(1, keepdim=True)
    return (A * ((T - x) ** 2).sum(1)).sum()


def disp(x=X, eps=EPS):
    """D = Σ a_i |T(x_i) − x_i|² of the entropic map at a tight tolerance (no gradient)."""
    with torch.no_grad():
        f, g, _, _, status, _ = S.solve_ab(x, A.log(), Y, B.log(), eps, tol=1e-14, max_iter=100_000)
        return float(disp_of_plan(S.plan_dense(x, A, Y, B, torch.tensor(eps, dtype=DT), f, g), x))


def rel(a, b):
    return float((a - b).norm() / b.norm())


def test_at_tight_tolerance_every_mode_agrees_with_the_reference_and_finite_differences(study):
    rows = {r["mode"]: r for r in study.rows if r["tol"] == 1e-9}
    assert set(rows) == {"unrolled", "envelope", "implicit"}
    for mode, r in rows.items():
        assert r["status"] == "converged"
        assert r["value_error"] <= 1e-9 * abs(study.reference["value"]), mode
        assert r["grad_error"] <= 1e-6, (mode, r["grad_error"])
        assert r["deps_error"] <= 1e-6, (mode, r["deps_error"])
    # the reference itself against central finite differences computed here (h = 1e-5)
    h = 1e-5
    gref = study.reference["grad_x"]
    for i, k in [(0, 0), (17, 1), (39, 0)]:
        E = torch.zeros_like(X)
        E[i, k] = h
        fd = (value(X + E) - value(X - E)) / (2 * h)
        assert float(gref[i, k]) == pytest.approx(fd, rel=1e-6, abs=1e-10)
        for mode in rows:  # and each mode's own gradient, recomputed from sinkhorn_divergence
            assert float(grads(mode, 1e-9)[1][i, k]) == pytest.approx(fd, rel=1e-6, abs=1e-10), mode
    fd_e = (value(eps=EPS + h) - value(eps=EPS - h)) / (2 * h)
    assert study.reference["deps"] == pytest.approx(fd_e, rel=1e-6)
    assert study.reference["fd_deps"] == pytest.approx(fd_e, rel=1e-7)


def test_implicit_eps_gradient_and_map_gradient_vs_finite_differences(study):
    """dS/dε of the implicit mode, and the entropic map's dD/dε and ∂D/∂x (the plan's derivatives,
    which only implicit and unrolled give), against central finite differences."""
    h = 1e-5
    _, _, ge, _ = grads("implicit", 1e-12)
    assert ge == pytest.approx((value(eps=EPS + h) - value(eps=EPS - h)) / (2 * h), rel=1e-6)
    ref = study.reference
    assert ref["map_deps"] == pytest.approx((disp(eps=EPS + h) - disp(eps=EPS - h)) / (2 * h), rel=1e-6)
    for i, k in [(2, 0), (30, 1)]:
        E = torch.zeros_like(X)
        E[i, k] = h
        assert float(ref["map_grad_x"][i, k]) == pytest.approx((disp(X + E) - disp(X - E)) / (2 * h), rel=1e-6,
                                                               abs=1e-10)
    rows = {r["mode"]: r for r in study.rows if r["tol"] == 1e-9}
    assert rows["implicit"]["map_grad_error"] < 1e-6 and rows["unrolled"]["map_grad_error"] < 1e-5
    # frozen potentials (the envelope mode's constants) do not give the map's derivative at any tolerance
    assert all(r["map_grad_error"] > 0.1 for r in study.rows if r["mode"] == "envelope")


@pytest.mark.parametrize("tol", [1e-1, 1e-2])
@pytest.mark.parametrize("mode", G.MODES)
def test_at_loose_tolerance_the_rows_are_the_errors_recomputed_here(study, mode, tol):
    """The errors the panel shows at a loose tolerance are the distances between what
    sinkhorn_divergence returns there and a reference this test computes another way (the
    unrolled mode at 1e-13, where the study's reference is the envelope mode)."""
    xx = X.clone().requires_grad_(True)
    et = torch.tensor(EPS, dtype=DT, requires_grad=True)
    v_ref, info = sinkhorn_divergence(xx, A, Y, B, et, tol=1e-13, max_iter=100_000, gradient="unrolled")
    assert info["status"] == "converged"
    g_ref, e_ref = torch.autograd.grad(v_ref, (xx, et))
    v, gx, ge, info = grads(mode, tol)
    row = next(r for r in study.rows if r["mode"] == mode and r["tol"] == tol)
    assert row["iterations"] == info["iterations"]["ab"]
    assert row["value"] == pytest.approx(v, rel=1e-12)
    assert row["value_error"] == pytest.approx(abs(v - float(v_ref.detach())), rel=1e-6)
    assert row["grad_error"] == pytest.approx(rel(gx, g_ref), rel=1e-6)
    assert row["deps_error"] == pytest.approx(abs(ge - float(e_ref)) / abs(float(e_ref)), rel=1e-6)
    assert row["grad_error"] > 1e-5  # loose: a visible error, not rounding
    # the map's gradient: recomputed with the mode's own plan against a tight unrolled reference
    xr = X.clone().requires_grad_(True)
    f, g, *_ = sinkhorn_potentials(((xr[:, None] - Y[None]) ** 2).sum(-1), A.log(), B.log(), EPS, tol=1e-13,
                                   max_iter=100_000)
    (dref,) = torch.autograd.grad(disp_of_plan(S.plan_dense(xr, A, Y, B, torch.tensor(EPS, dtype=DT), f, g), xr), xr)
    xm = X.clone().requires_grad_(True)
    if mode == "implicit":
        _, info = sinkhorn_divergence(xm, A, Y, B, EPS, tol=tol, gradient="implicit", backend="tensorized")
        plan = info["plan"]
    elif mode == "unrolled":
        f, g, *_ = sinkhorn_potentials(((xm[:, None] - Y[None]) ** 2).sum(-1), A.log(), B.log(), EPS, tol=tol,
                                       max_iter=20_000)
        plan = S.plan_dense(xm, A, Y, B, torch.tensor(EPS, dtype=DT), f, g)
    else:
        _, info = sinkhorn_divergence(xm, A, Y, B, EPS, tol=tol, backend="tensorized")
        f, g = info["potentials"]["ab"]
        plan = S.plan_dense(xm, A, Y, B, torch.tensor(EPS, dtype=DT), f, g)
    (dm,) = torch.autograd.grad(disp_of_plan(plan, xm), xm)
    assert row["map_grad_error"] == pytest.approx(rel(dm, dref), rel=1e-5)


def test_the_envelope_error_follows_the_tolerance_and_the_others_shrink_faster():
    """On the page's own clouds (n = 60): the measured order of ∇ₓS's error in the tolerance is
    ≈ 1 for envelope and > 1.4 for unrolled and implicit; memory held for the backward: unrolled
    grows with the iterations, envelope and implicit do not."""
    x, y = tr.gradient_clouds(60, 0)
    st = G.sinkhorn_gradient_study(x, y, 0.1, tols=(1e-1, 1e-3, 1e-5, 1e-7))
    by = {m: [r for r in st.rows if r["mode"] == m] for m in G.MODES}
    assert 0.8 < tr.error_order(by["envelope"], "grad_error") < 1.3
    assert tr.error_order(by["unrolled"], "grad_error") > 1.4 and tr.error_order(by["implicit"], "grad_error") > 1.4
    saved = [r["saved_mib"] for r in by["unrolled"]]
    assert saved == sorted(saved) and saved[-1] > 3 * saved[0]
    assert max(r["saved_mib"] for r in by["envelope"]) < 0.1 < min(saved)
    assert all(r["forward_s"] > 0 and r["backward_s"] >= 0 for r in st.rows)
    summary = " ".join(tr.gradient_summary(st))
    assert "envelope gradient's error follows the tolerance" in summary


def test_unrolled_iterations_are_capped_by_the_memory_budget():
    st = G.sinkhorn_gradient_study(X, Y, 0.05, tols=(1e-9,), modes=("unrolled",), unrolled_budget_mib=0.5,
                                   fd_coords=0)
    cap = int(0.5 * 2**20 / (16 * 40 * 40))
    assert st.unrolled_max_iter == cap
    (row,) = st.rows
    assert row["max_iter"] == cap and row["status"] == "max_iter" and row["iterations"] > cap


@pytest.mark.parametrize("text, match", [
    ("abc, 1e-3", "'abc' is not a number"), ("0", r"outside \[1e-11, 0.5\]"), ("1e-20", "outside"),
    ("", "enter numbers"), (", ,", "at least one"), (", ".join(f"1e-{k}" for k in range(1, 12)), "at most 10"),
    ("nan", "outside"),
])
def test_bad_tolerances_say_what_is_allowed(text, match):
    with pytest.raises(tr.InputError, match=match):
        tr.parse_tolerances(text)


def test_tolerances_are_sorted_loose_to_tight_and_epsilon_is_bounded():
    assert tr.parse_tolerances("1e-9; 1e-1 1e-3,1e-3") == (1e-1, 1e-3, 1e-9)
    for bad in (0.001, -1.0, float("inf"), "x", None):
        with pytest.raises(tr.InputError, match="ε"):
            tr.check_epsilon(bad, tr.EPS_GRAD)
    assert tr.check_epsilon(0.1, tr.EPS_GRAD) == 0.1


# ------------------------------------------------------------------------------------- which map?

def test_monge_gap_1d_lesson_numbers():
    """x ↦ eˣ (increasing) has M₀ = 0: −ε log n ≤ M_ε ≤ 0; x ↦ −x on a symmetric sample with
    variance exactly 1 has M₀ = 4: M_ε increases monotonically towards 4 as ε decreases, within
    4 − ε log n ≤ M_ε ≤ 4."""
    view = tr.monge_1d_view(100, 0)
    sw = view["sweep"]
    n = 100
    assert sw["second_moment"] == pytest.approx(1.0, rel=1e-12)
    inc, flip = (sorted([r for r in sw["rows"] if r["map"] == k], key=lambda r: -r["epsilon"]) for k in M.MAPS_1D)
    assert sw["limits"][inc[0]["map"]] == 0.0 and sw["limits"][flip[0]["map"]] == pytest.approx(4.0, rel=1e-12)
    for r in inc:
        assert -r["epsilon"] * math.log(n) - 1e-4 <= r["gap"] <= 1e-4, r
    for r in flip:
        assert 4.0 - r["epsilon"] * math.log(n) - 1e-4 <= r["gap"] <= 4.0 + 1e-4, r
    gaps = [r["gap"] for r in flip]
    assert all(b > a for a, b in zip(gaps, gaps[1:]))  # monotone in ε, towards 4
    assert gaps[0] < 3.3 and gaps[-1] > 3.97  # ε = 1 → 0.005
    # the increasing map's gap shrinks towards 0 with ε too
    assert abs(inc[-1]["gap"]) < 0.03 < abs(inc[0]["gap"])
    assert all(row["within 0 ≤ M₀ − M_ε ≤ ε log n"] for row in view["rows"])


def test_monge_gap_2d_lesson_linear_map_is_not_optimal_and_the_ot_maps_are():
    view = tr.monge_2d_view(80, 0.05, 0)
    m0, S0, m1, S1 = view["gaussians"]
    # the matrices against scipy: A = Σ₀^{-½}(Σ₀^{½}Σ₁Σ₀^{½})^{½}Σ₀^{-½}, symmetric PD, A Σ₀ A = Σ₁; L Σ₀ Lᵀ = Σ₁
    r = scipy.linalg.sqrtm(S0).real
    ri = np.linalg.inv(r)
    A_ref = ri @ scipy.linalg.sqrtm(r @ S1 @ r).real @ ri
    np.testing.assert_allclose(view["A"], A_ref, atol=1e-12)
    np.testing.assert_allclose(view["A"] @ S0 @ view["A"], S1, atol=1e-12)
    assert np.all(np.linalg.eigvalsh(view["A"]) > 0)
    np.testing.assert_allclose(view["L"] @ S0 @ view["L"].T, S1, atol=1e-12)
    assert abs(view["L"][0, 1]) < 1e-15 and not np.allclose(view["L"], view["L"].T)
    # population gap of the triangular map: E|x − Lx|² − W₂², W₂² between centred Gaussians from scipy
    I = np.eye(2)
    w2 = np.trace(S0) + np.trace(S1) - 2 * np.trace(scipy.linalg.sqrtm(r @ S1 @ r).real)
    pop = np.trace((I - view["L"]) @ S0 @ (I - view["L"]).T) - w2
    g = {row["map"]: row for row in view["cmp"]["rows"]}
    lin, ent, ot = g["linear (triangular, not OT)"], g["entropic OT map T_ε"], g["closed-form OT map"]
    assert lin["population_gap"] == pytest.approx(pop, rel=1e-10) and pop > 0.5
    bound = 0.05 * math.log(80)
    for row in (ent, ot):
        assert -bound - 1e-3 <= row["gap"] <= 1e-3, row
    assert lin["gap"] > ot["gap"] + 0.4 and lin["gap"] > ent["gap"] + 0.4
    assert lin["displacement"] > ot["displacement"]
    # the gaps are dl.monge_gap's, recomputed here
    x = view["cmp"]["x"]
    lin_images = torch.as_tensor(m1) + (x - torch.as_tensor(m0)) @ torch.as_tensor(view["L"]).T
    assert float(dl.monge_gap(lin_images, x, epsilon=0.05, tol=1e-5, max_iter=2000)) == pytest.approx(lin["gap"],
                                                                                                     rel=1e-9)


# ------------------------------------------------------------------------------------- figures

def test_figures_use_the_palette_and_the_shared_arrows():
    x, y = tr.gradient_clouds(50, 1)
    st = G.sinkhorn_gradient_study(x, y, 0.3, tols=(1e-1, 1e-4), fd_coords=0)
    fig = vt.gradient_study_figure(st)
    lines = [t for t in fig.data if t.legendgroup in G.MODES]
    assert len(lines) == 3 * 6 and {t.line.color for t in lines} == {color_for(m) for m in G.MODES}
    assert len({color_for(m) for m in G.MODES}) == 3
    assert [t.name for t in fig.data if t.showlegend] == [vt.MODE_LABELS[m] for m in G.MODES]
    assert all(t.line.dash == "dash" for t in lines if t.legendgroup == "envelope" and t.xaxis == "x4")
    lay = fig.layout.to_plotly_json()
    assert all(lay[k]["type"] == "log" for k in lay if k.startswith(("xaxis", "yaxis")))
    view = tr.monge_2d_view(50, 0.1, 0)
    arrows = [t for t in view["figure"].data if t.name == "map x → T(x)"]
    assert len(arrows) == 3 and all(t.line.color == MAP_COLOR for t in arrows)
    assert all(t.marker.symbol == "arrow" for t in arrows)  # divlab.viz.arrows' heads
    # 50 arrows: start, end, gap per arrow
    assert len(arrows[0].x) == 3 * 50


# ------------------------------------------------------------------------------------- the page

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest
SMALL = {"transport_grad_n": 50, "transport_grad_tols": "1e-1, 1e-5", "transport_map_n1": 100,
         "transport_map_n2": 50}


def run_page(**state) -> AppTest:
    """The page with its default widgets (what a new visitor sees), changed by ``state``. The
    results are cached (st.cache_data) for the rest of this process, as on a server."""
    at = AppTest.from_file(str(ROOT / "pages" / "transport.py"), default_timeout=120)
    for k, v in {**tr.seed_values(None), **state}.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_page_runs_and_labels_its_numbers():
    at = run_page()
    assert [e.value for e in at.error] == []
    assert [h.value for h in at.title] == ["Transport"]
    tables = [d.value for d in at.dataframe]
    grad = next(t for t in tables if "gradient mode" in t.columns)
    assert len(grad) == 15 and set(grad["gradient mode"]) == set(G.MODES)  # 3 modes × 5 default tolerances
    assert "|S_ε − S_ref| [squared units of x]" in grad.columns and "∇ₓS_ε error [relative, L2]" in grad.columns
    assert "dS_ε/dε [dimensionless]" in grad.columns and "held for backward [MiB]" in grad.columns
    for t in tables:  # every column says its unit, or is a label / relative error / status
        for c in t.columns:
            assert "[" in c or c in ("gradient mode", "tolerance", "status", "map", "Sinkhorn", "map derivative by",
                                     "iterations of OT_ε(x, y)", "within 0 ≤ M₀ − M_ε ≤ ε log n"), c
    text = " ".join(m.value for m in at.markdown)
    assert "squared units of x" in text and "Reference: envelope mode at tolerance 1e-12" in text
    assert "M₀ = 4·E[x²] = 4" in text and "Linear triangular map" in text
    assert len(at.get("plotly_chart")) == 3


def test_page_bad_input_gets_a_message_next_to_the_control():
    at = run_page(**{**SMALL, "transport_grad_tols": "abc, 1e-3", "transport_grad_eps": 1e-6,
                     "transport_map_eps": -1.0})
    errs = [e.value for e in at.error]
    assert any("'abc' is not a number" in e for e in errs)
    assert any("ε = 1e-06: choose a value between 0.05 and 5" in e for e in errs)
    assert any("2D: ε = -1.0" in e for e in errs)
    assert len(at.get("plotly_chart")) == 1  # the 1D Monge gap still draws
    # fixing the input brings the panel back
    at.text_input(key="transport_grad_tols").set_value("1e-1, 1e-5").run()
    at.number_input(key="transport_grad_eps").set_value(0.1).run()
    assert not at.exception and not any("tolerances" in e.value or "ε = 1e-06" in e.value for e in at.error)
    assert len(next(d.value for d in at.dataframe if "gradient mode" in d.value.columns)) == 6


@pytest.mark.parametrize("lesson_id, edit", [
    ("two_equal_modes", {}),  # a 1D scenario: the page keeps its own clouds
    ("best_of_n_formula", {}),  # a categorical target
    (tr.GRADIENT_LESSON, {"samples": 4096, "seed": 2**32 - 1, "divergences": [{"key": "sinkhorn",
                                                                                  "params": {"epsilon": 1e-10}}]}),
])
def test_any_scenario_seeds_widgets_within_their_ranges(lesson_id, edit):
    d = dl.load_preset(lesson_id)["scenario"].to_dict()
    d.update(edit)
    sc = dl.Scenario.from_dict(d)
    vals = tr.seed_values(sc)
    assert tr.N_GRAD[0] <= vals["transport_grad_n"] <= tr.N_GRAD[1]
    assert tr.EPS_GRAD[0] <= vals["transport_grad_eps"] <= tr.EPS_GRAD[1]
    assert 0 <= vals["transport_grad_seed"] <= 9999 and tr.N_MAP_2D[0] <= vals["transport_map_n2"] <= tr.N_MAP_2D[1]
    if lesson_id != tr.GRADIENT_LESSON:  # not a Transport lesson: the page runs on its own (small) settings
        at = AppTest.from_file(str(ROOT / "pages" / "transport.py"), default_timeout=120)
        at.session_state[sup.SCENARIO_KEY] = sc
        at.session_state[sup.VERSION_KEY] = 1
        for k, v in {**tr.seed_values(None), **SMALL}.items():
            at.session_state[k] = v
        at.run()
        assert not at.exception and [e.value for e in at.error] == []
        assert at.session_state["transport_grad_n"] == SMALL["transport_grad_n"]  # not reseeded by the scenario


def test_lessons_open_on_the_transport_page():
    cards = {c["id"]: c for c in sup.lesson_cards()}
    for lid in tr.TRANSPORT_LESSONS:
        assert cards[lid]["page"] == "transport" and sup.PAGE_FILES["transport"] == "pages/transport.py"
        assert tr.lesson_of(cards[lid]["scenario"]) == lid
    sc = cards[tr.GRADIENT_LESSON]["scenario"]
    vals = tr.seed_values(sc)
    assert vals["transport_grad_n"] == sc.samples and vals["transport_grad_eps"] == 0.1
    assert tr.seed_values(cards[tr.MAP_LESSON]["scenario"])["transport_map_eps"] == 0.02
    at = AppTest.from_file(str(ROOT / "pages" / "transport.py"), default_timeout=120)
    at.session_state[sup.SCENARIO_KEY] = sc
    at.session_state[sup.VERSION_KEY] = 1
    at.session_state["lesson"] = cards[tr.GRADIENT_LESSON]
    for k, v in SMALL.items():  # the lesson reseeds these on opening (n, ε and seed from its scenario)
        at.session_state[k] = v
    at.run()
    assert not at.exception
    assert any(i.value.startswith("**Which Sinkhorn gradient?") for i in at.info)
    assert at.session_state["transport_grad_n"] == 150  # the lesson's sample size, seeded on opening it
