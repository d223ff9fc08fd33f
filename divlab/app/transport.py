"""The Transport page's app layer: "Which gradient?" (Sinkhorn's gradient modes against a
high-precision reference) and "Which map?" (the Monge gap in 1D and between two Gaussians).

Plain functions (no Streamlit): the page reads widgets, calls these (cached on their arguments)
and draws what they return. Bad input raises :class:`InputError` with one line meant to be shown
next to the widget that caused it. The computations live in the library
(:mod:`divlab.divergences.gradient_study`, :mod:`divlab.divergences.map_study`); here they get
their inputs from the page's lessons, their bounds (so that a run stays within seconds on a
2-core CPU), and tables whose every number carries its unit and direction.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..divergences import gradient_study as G
from ..divergences import map_study as M
from ..distributions import MultivariateNormal
from ..scenario import Scenario, load_preset
from ..viz import transport as vt

__all__ = ["InputError", "TRANSPORT_LESSONS", "GRADIENT_LESSON", "MAP_LESSON", "DEFAULT_TOLS_TEXT", "N_GRAD",
           "EPS_GRAD", "N_MAP_1D", "N_MAP_2D", "EPS_MAP", "parse_tolerances", "check_epsilon", "lesson_of",
           "seed_values", "gaussians_of", "gradient_clouds", "gradient_view", "monge_1d_view", "monge_2d_view",
           "UNIT", "GRADIENT_BUDGET_S", "error_order", "gradient_summary"]

GRADIENT_LESSON = "which_sinkhorn_gradient"
MAP_LESSON = "monge_gap"
#: lessons of this page and the section each is about
TRANSPORT_LESSONS = {GRADIENT_LESSON: "gradient", MAP_LESSON: "maps"}

UNIT = "squared units of x"
DEFAULT_TOLS_TEXT = "1e-1, 1e-3, 1e-5, 1e-7, 1e-9"
#: bounds that keep a run within seconds (the reference solve at tol 1e-12 slows down like 1/ε)
N_GRAD = (50, 300)
EPS_GRAD = (0.05, 5.0)
N_MAP_1D = (100, 400)
N_MAP_2D = (50, 300)
EPS_MAP = (0.01, 5.0)
TOL_RANGE = (1e-11, 0.5)
MAX_TOLS = 10
#: wall-clock budget of one gradient study (rows not started by then are listed as skipped)
GRADIENT_BUDGET_S = 40.0
REF_TOL = 1e-12
#: coordinates of x whose reference gradient is checked by central finite differences on the page
FD_COORDS = 1
#: the Monge-gap solves: the gap settles to ~1e-5 long before the marginals reach a tight tolerance
MAP_TOL = 1e-5
MAP_MAX_ITER = 2000


class InputError(ValueError):
    """A user's input the page cannot use; the message names the field and what is allowed."""


def parse_tolerances(text) -> tuple[float, ...]:
    """The tolerance sweep from text like "1e-1, 1e-3, 1e-5": distinct numbers in [1e-11, 0.5],
    at most 10, returned from loose to tight (``InputError`` naming the bad entry)."""
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"tolerances: enter numbers between {TOL_RANGE[0]:g} and {TOL_RANGE[1]:g}, e.g. "
                         f"{DEFAULT_TOLS_TEXT}")
    out = []
    for tok in text.replace(";", ",").replace("\n", ",").replace(" ", ",").split(","):
        tok = tok.strip()
        if not tok:
            continue
        try:
            v = float(tok)
        except ValueError:
            raise InputError(f"tolerances: {tok[:30]!r} is not a number (write e.g. 1e-3)") from None
        if not math.isfinite(v) or not TOL_RANGE[0] <= v <= TOL_RANGE[1]:
            raise InputError(f"tolerances: {tok[:30]} is outside [{TOL_RANGE[0]:g}, {TOL_RANGE[1]:g}] "
                             "(the solver's row-marginal L1 error; the reference uses 1e-12)")
        out.append(v)
    out = sorted(set(out), reverse=True)
    if not out:
        raise InputError(f"tolerances: enter at least one number, e.g. {DEFAULT_TOLS_TEXT}")
    if len(out) > MAX_TOLS:
        raise InputError(f"tolerances: at most {MAX_TOLS} values (got {len(out)}), to keep the run within seconds")
    return tuple(out)


def check_epsilon(value, bounds, what: str = "ε") -> float:
    """A finite ε within ``bounds`` (squared units of x), else ``InputError`` saying why."""
    try:
        e = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number in squared units of x, got {value!r}") from None
    lo, hi = bounds
    if not math.isfinite(e) or not lo <= e <= hi:
        raise InputError(f"{what} = {value!r}: choose a value between {lo:g} and {hi:g} squared units of x (a "
                         f"smaller ε needs more Sinkhorn iterations than this page's time budget allows; "
                         "divlab.divergences.gradient_study and divlab.monge_gap take any ε > 0)")
    return e


def lesson_of(sc: Scenario | None) -> str | None:
    """The id of the Transport lesson whose scenario ``sc`` is (same target and model), else None."""
    if sc is None:
        return None
    for lid in TRANSPORT_LESSONS:
        try:
            lsc = load_preset(lid)["scenario"]
        except ValueError:
            continue
        if lsc.target == sc.target and lsc.model == sc.model:
            return lid
    return None


def _sinkhorn_eps(sc: Scenario, default: float) -> float:
    for d in sc.divergences:
        if d.key == "sinkhorn" and "epsilon" in d.params:
            return float(d.params["epsilon"])
    return default


def seed_values(sc: Scenario | None) -> dict:
    """Widget values for the page: from the scenario when it is one of the page's lessons (its ε,
    sample size and seed), else the lessons' own defaults. Values are clamped into the widgets'
    ranges (a linked scenario may hold any sample size)."""
    g = load_preset(GRADIENT_LESSON)["scenario"]
    m = load_preset(MAP_LESSON)["scenario"]
    lid = lesson_of(sc)
    if lid == GRADIENT_LESSON:
        g = sc
    elif lid == MAP_LESSON:
        m = sc

    def clamp(v, lo, hi, step=1):
        return int(min(max(int(v), lo), hi) // step * step)

    return {
        "transport_grad_n": clamp(g.samples or 150, *N_GRAD, step=10),
        "transport_grad_eps": min(max(_sinkhorn_eps(g, 0.1), EPS_GRAD[0]), EPS_GRAD[1]),
        "transport_grad_seed": int(g.seed) % 10_000,
        "transport_grad_tols": DEFAULT_TOLS_TEXT,
        "transport_map_n1": 200,
        "transport_map_n2": clamp(m.samples or 150, *N_MAP_2D, step=10),
        "transport_map_eps": min(max(_sinkhorn_eps(m, 0.02), EPS_MAP[0]), EPS_MAP[1]),
        "transport_map_seed": int(m.seed) % 10_000,
    }


def gaussians_of(sc: Scenario) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(m₀, Σ₀, m₁, Σ₁): the model's start q₀ (a 2D Normal from its init: locs, scales, corr) and the
    target p (a 2D Normal) of a lesson scenario."""
    init = dict(sc.model.init.model_dump() if hasattr(sc.model.init, "model_dump") else sc.model.init)
    sx, sy, r = float(init["scale_x"]), float(init["scale_y"]), float(init["corr"])
    m0 = np.array([float(init["loc_x"]), float(init["loc_y"])])
    S0 = np.array([[sx * sx, r * sx * sy], [r * sx * sy, sy * sy]])
    t = sc.target
    return m0, S0, np.asarray(t["mean"], float), np.asarray(t["cov"], float)


def gradient_clouds(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradient lesson's two clouds: x, n draws of the model's start q₀ (the points that move),
    and y, n draws of the target p (fixed); seeds ``seed`` and ``seed + 1``."""
    m0, S0, m1, S1 = gaussians_of(load_preset(GRADIENT_LESSON)["scenario"])
    q0 = MultivariateNormal(m0.tolist(), S0.tolist())
    p = MultivariateNormal(m1.tolist(), S1.tolist())
    return q0.sample(int(n), seed=int(seed)).to(torch.float64), p.sample(int(n), seed=int(seed) + 1).to(torch.float64)


def _sci(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{v:.2e}"


def gradient_view(n: int, eps: float, seed: int, tols_text: str) -> dict:
    """Run the gradient study on the lesson's clouds: ``figure``, ``rows`` (the table, every
    column with its unit or "relative"), ``reference`` (lines describing the reference and its
    checks), ``study`` (the library result), ``skipped`` and ``caption``. ``InputError`` for bad input."""
    n = int(n)
    if not N_GRAD[0] <= n <= N_GRAD[1]:
        raise InputError(f"points per cloud must be between {N_GRAD[0]} and {N_GRAD[1]}, got {n}")
    eps = check_epsilon(eps, EPS_GRAD)
    tols = parse_tolerances(tols_text)
    x, y = gradient_clouds(n, seed)
    try:
        study = G.sinkhorn_gradient_study(x, y, eps, tols=tols, ref_tol=REF_TOL, max_iter=20_000, ref_max_iter=20_000,
                                          time_budget_s=GRADIENT_BUDGET_S, fd_coords=FD_COORDS)
    except ValueError as exc:  # the reference did not converge
        raise InputError(str(exc)) from None
    rows = []
    for r in study.rows:
        rows.append({
            "gradient mode": r["mode"], "tolerance": f"{r['tol']:.0e}",
            "iterations of OT_ε(x, y)": r["iterations"], "status": r["status"],
            f"S_ε(x, y) [{UNIT}]": f"{r['value']:.10f}",
            f"|S_ε − S_ref| [{UNIT}]": _sci(r["value_error"]),
            "∇ₓS_ε error [relative, L2]": _sci(r["grad_error"]),
            "dS_ε/dε [dimensionless]": f"{r['deps']:.6g}",
            "dS_ε/dε error [relative]": _sci(r["deps_error"]),
            "map ∇ₓD error [relative, L2]": _sci(r["map_grad_error"]),
            "map derivative by": r["map_rule"],
            "forward [s]": f"{r['forward_s']:.3f}" if r["forward_s"] is not None else "—",
            "backward [s]": f"{r['backward_s']:.3f}" if r["backward_s"] is not None else "—",
            "held for backward [MiB]": f"{r['saved_mib']:.2f}",
            "peak RSS growth [MiB]": f"{r['peak_mib']:.1f}" if r["peak_mib"] is not None else "not measurable here",
        })
    ref = study.reference
    its = ref["iterations"]
    reference = [
        f"Reference: envelope mode at tolerance {ref['tol']:g} ({its['ab']} iterations for OT_ε(x, y), {its['aa']} "
        f"and {its['bb']} for the debiasing terms), {ref['time_s']:.2f} s with its checks.",
        f"S_ε(x, y) = {ref['value']:.10f} {UNIT} (symmetric: S_ε(x, y) = S_ε(y, x)).",
        f"dS_ε/dε = {ref['deps']:.8g} (dimensionless; the envelope formula KL(π‖a⊗b) of the three OT_ε terms); "
        f"central finite difference (h = {ref['fd_step_eps']:.0e}): {ref['fd_deps']:.8g}, relative difference "
        f"{abs(ref['fd_deps'] - ref['deps']) / abs(ref['deps']):.1e}.",
        f"∇ₓS_ε against a central finite difference at x₁'s first coordinate (h = {ref['fd_step_x']:.0e} units "
        "of x): "
        f"relative difference {ref['fd_grad_x']:.1e}; the implicit rule's ∇ₓS_ε at the same tolerance "
        f"differs from the envelope one by {ref['implicit_vs_envelope']:.1e} (relative, L2).",
        f"Entropic map: D = Σᵢ aᵢ|T(xᵢ) − xᵢ|² = {ref['map_disp']:.8g} {UNIT}; its reference derivatives by the "
        f"implicit rule: dD/dε = {ref['map_deps']:.8g} (finite difference {ref['fd_map_deps']:.8g}); ∇ₓD against "
        f"a finite difference: relative difference {ref['fd_map_grad_x']:.1e}.",
    ]
    caption = (f"x: {n} draws of the model's start q₀ (the points that move, whose gradient is taken); y: {n} draws "
               f"of the target p (fixed); uniform weights, cost |x − y|², ε = {eps:g} {UNIT}, float64 on one CPU thread. "
               f"Each row solves again at its tolerance (the row-marginal L1 error at which Sinkhorn stops) and "
               "differentiates with its mode. The unrolled mode is capped at "
               f"{study.unrolled_max_iter} iterations (its autograd graph grows by ~2 n × m numbers per iteration). "
               "'held for backward' counts the tensors autograd saves between the forward and the backward; "
               "'peak RSS growth' is the process's resident-memory peak over its start (Linux VmHWM: an upper "
               "bound that includes anything else the server did meanwhile). Errors below 1e-16 (rounding) are "
               "drawn at 1e-16.")
    return {"figure": vt.gradient_study_figure(study), "rows": rows, "reference": reference, "study": study,
            "skipped": [f"{m} at {t:.0e}" for m, t in study.skipped], "caption": caption,
            "summary": gradient_summary(study)}


def error_order(rows: list, key: str, floor: float = 1e-11) -> float | None:
    """The measured order k of error ∝ tolerance^k: the least-squares slope of log error against
    log tolerance over the rows whose error is above ``floor`` (rounding); None with fewer than 2."""
    pts = [(math.log10(r["tol"]), math.log10(r[key])) for r in rows
           if r[key] is not None and r[key] > floor and r["status"] == "converged"]
    if len(pts) < 2:
        return None
    t, e = np.array(pts).T
    if np.ptp(t) == 0:
        return None
    return float(np.polyfit(t, e, 1)[0])


def gradient_summary(study) -> list[str]:
    """What the study shows, in sentences with its own numbers: errors at a middle tolerance of the
    sweep, the measured orders, the map's gradient and the memory held for the backward."""
    by = {(r["mode"], r["tol"]): r for r in study.rows}
    modes = [m for m in G.MODES if any(r["mode"] == m for r in study.rows)]
    tols = sorted({r["tol"] for r in study.rows}, reverse=True)
    if not modes or not tols:
        return []
    mid = min(tols, key=lambda t: abs(math.log10(t) + 3))  # the tolerance nearest 1e-3
    tight = tols[-1]
    label = {"unrolled": "unrolled", "envelope": "envelope", "implicit": "implicit"}

    def at(key, t):
        return ", ".join(f"{label[m]} {by[(m, t)][key]:.1e}" for m in modes if (m, t) in by)

    def order(key):
        out = []
        for m in modes:
            k = error_order([r for r in study.rows if r["mode"] == m], key)
            out.append(f"{label[m]} {k:.1f}" if k is not None else f"{label[m]} —")
        return ", ".join(out)

    orders = {m: error_order([r for r in study.rows if r["mode"] == m], "grad_error") for m in modes}
    reading = ""
    if (orders.get("envelope") is not None and orders["envelope"] < 1.3
            and all(orders.get(m) is not None and orders[m] > 1.4 for m in modes if m != "envelope")):
        reading = (" — the envelope gradient's error follows the tolerance (order ≈ 1: it inherits the potentials' "
                   "error), unrolled and implicit shrink faster (about its square: Ablin, Peyré & Moreau 2020).")
    lines = [f"**∇ₓS_ε** (relative error) at tolerance {mid:.0e}: {at('grad_error', mid)}. Measured order k of "
             f"error ∝ tolerance^k: {order('grad_error')}{reading}"]
    if ("envelope", mid) in by:
        env = by[("envelope", mid)]["map_grad_error"]
        rest = ", ".join(f"{label[m]} {by[(m, mid)]['map_grad_error']:.1e}" for m in modes
                         if m != "envelope" and (m, mid) in by)
        lines.append(f"**The entropic map's gradient ∇ₓD** at tolerance {mid:.0e}: {rest}; with the potentials frozen "
                     f"(what the envelope mode's constants give) {env:.2g} at every tolerance "
                     f"({by[('envelope', tight)]['map_grad_error']:.2g} at {tight:.0e}): the envelope rule holds for "
                     "the value only, not for the plan or the map.")
    mem = ", ".join(f"{label[m]} {by[(m, tight)]['saved_mib']:.2f} MiB ({by[(m, tight)]['iterations']} iterations)"
                    for m in modes if (m, tight) in by)
    tim = ", ".join(f"{label[m]} {(by[(m, tight)]['forward_s'] or 0) + (by[(m, tight)]['backward_s'] or 0):.3f} s"
                    for m in modes if (m, tight) in by)
    lines.append(f"**Cost** at tolerance {tight:.0e}: memory held for the backward {mem}; time forward + backward "
                 f"{tim}.")
    return lines


def _solver(r: dict) -> str:
    if r["status"] == "converged":
        return f"converged ({r['iterations']} iterations)"
    return f"stopped at {r['iterations']} iterations, marginal error {r['marginal_error']:.0e}"


def monge_1d_view(n: int, seed: int, epsilons=M.DEFAULT_EPSILONS_1D) -> dict:
    """The 1D Monge-gap lesson on a symmetric, standardized sample of N(0, 1) (n points): the
    sweep, its ``figure`` and ``rows`` (every number with its unit)."""
    n = int(n)
    if not N_MAP_1D[0] <= n <= N_MAP_1D[1] or n % 2:
        raise InputError(f"points must be an even number between {N_MAP_1D[0]} and {N_MAP_1D[1]}, got {n}")
    x = M.symmetric_normal_sample(n, seed)
    x = x / (x * x).mean().sqrt()  # mean 0 and variance exactly 1: the limit of x ↦ −x is exactly 4
    with G.one_thread():
        sweep = M.monge_gap_sweep_1d(x, epsilons, tol=MAP_TOL, max_iter=MAP_MAX_ITER)
    rows = [{"map": r["map"], f"ε [{UNIT}]": r["epsilon"], f"Monge gap M_ε [{UNIT}]": round(r["gap"], 6),
             f"limit M₀ [{UNIT}]": round(r["limit"], 6), f"M₀ − M_ε [{UNIT}]": round(r["shortfall"], 6),
             f"ε-bias bound ε log n [{UNIT}]": round(r["bias_bound"], 6),
             "within 0 ≤ M₀ − M_ε ≤ ε log n": bool(-1e-4 <= r["shortfall"] <= r["bias_bound"] + 1e-4),
             "Sinkhorn": _solver(r)} for r in sweep["rows"]]
    summary = []
    for label, m0 in sweep["limits"].items():
        rs = sorted([r for r in sweep["rows"] if r["map"] == label], key=lambda r: -r["epsilon"])
        lo, hi = rs[0], rs[-1]
        inside = all(-1e-4 <= r["shortfall"] <= r["bias_bound"] + 1e-4 for r in rs)
        where = "always" if inside else "not always (see the table)"
        if abs(m0) < 1e-12:
            summary.append(f"**{label}**: M_ε = {lo['gap']:.4f} at ε = {lo['epsilon']:g} and {hi['gap']:.4f} at "
                           f"ε = {hi['epsilon']:g} {UNIT}, {where} between −ε log n and 0 ({-hi['bias_bound']:.4f} "
                           f"at ε = {hi['epsilon']:g}): an increasing 1D map is optimal, M₀ = 0.")
        else:
            summary.append(f"**{label}**: M_ε rises from {lo['gap']:.4f} at ε = {lo['epsilon']:g} to {hi['gap']:.4f} at "
                           f"ε = {hi['epsilon']:g} {UNIT}, towards M₀ = 4·E[x²] = {m0:.4g} (= 4·Var: the sample is "
                           "centred with variance 1): the reflection maps the sample onto itself, so OT_ε(ρ, T#ρ) → 0 "
                           "while every point moves |2x|².")
    return {"sweep": sweep, "figure": vt.monge_gap_1d_figure(sweep), "rows": rows, "n": n, "summary": summary}


def monge_2d_view(n: int, eps: float, seed: int) -> dict:
    """The 2D lesson: the triangular linear map, the entropic OT map and the closed-form OT map
    between the lesson's Gaussians (source q₀, target p): ``figure``, ``rows``, ``A`` and ``L``."""
    n = int(n)
    if not N_MAP_2D[0] <= n <= N_MAP_2D[1]:
        raise InputError(f"points must be between {N_MAP_2D[0]} and {N_MAP_2D[1]}, got {n}")
    eps = check_epsilon(eps, EPS_MAP)
    m0, S0, m1, S1 = gaussians_of(load_preset(MAP_LESSON)["scenario"])
    with G.one_thread():
        cmp = M.gaussian_map_comparison(m0, S0, m1, S1, n=n, epsilon=eps, seed=seed, tol=MAP_TOL,
                                        max_iter=MAP_MAX_ITER)
    rows = [{"map": r["map"], f"Monge gap M_ε [{UNIT}]": round(r["gap"], 5),
             f"population gap M₀ [{UNIT}]": ("not in closed form" if r["population_gap"] is None
                                            else f"{r['population_gap']:.5f}"),
             f"mean |x − T(x)|² [{UNIT}]": round(r["displacement"], 5),
             "RMS |T(x) − T_OT(x)| [units of x]": round(r["rms_to_ot"], 5), "Sinkhorn": _solver(r)}
            for r in cmp["rows"]]
    g = {r["map"]: r for r in cmp["rows"]}
    lin, ent, ot = (g["linear (triangular, not OT)"], g["entropic OT map T_ε"], g["closed-form OT map"])
    summary = [
        f"**Linear triangular map** x ↦ m₁ + L(x − m₀): M_ε = {lin['gap']:.3f} {UNIT} (population M₀ = "
        f"{lin['population_gap']:.3f}). It pushes q₀ exactly onto p, yet it is not optimal: it moves the points "
        f"{lin['displacement']:.3f} on average where the OT map needs {ot['displacement']:.3f}.",
        f"**Entropic OT map T_ε** (fitted from the two samples): M_ε = {ent['gap']:.3f}; the **closed-form OT map**: "
        f"M_ε = {ot['gap']:.3f} — "
        + ("both ≈ 0 within the ε-bias " if all(-r["bias_bound"] - 1e-4 <= r["gap"] <= 1e-4 for r in (ent, ot))
           else "not both within the ε-bias ")
        + f"(−ε log n = {-ot['bias_bound']:.3f} ≤ M_ε ≤ 0 at ε = {eps:g}). "
        f"T_ε is {ent['rms_to_ot']:.2f} units of x (RMS) from the closed-form map: an estimate from {n} + {n} points.",
    ]

    def mat(M_):
        return "[[" + "], [".join(", ".join(f"{v:.3f}" for v in row) for row in M_) + "]]"

    caption = (f"Source: {n} draws of q₀ = N(m₀ = {m0.tolist()}, Σ₀ = {mat(S0)}) (white dots); target: {n} draws of "
               f"p = N(m₁ = {m1.tolist()}, Σ₁ = {mat(S1)}) (grey). L = chol(Σ₁)·chol(Σ₀)⁻¹ = {mat(cmp['L'])} "
               f"(lower triangular: the Knothe–Rosenblatt map). A = Σ₀^(-½)(Σ₀^(½)Σ₁Σ₀^(½))^(½)Σ₀^(-½) = "
               f"{mat(cmp['A'])} (symmetric positive definite: the OT map x ↦ m₁ + A(x − m₀)). "
               f"Gaps with ε = {eps:g} {UNIT} on all n = {n} points (ε-bias bound ε log n = "
               f"{ot['bias_bound']:.4f}); at most 100 arrows drawn per panel.")
    return {"cmp": cmp, "figure": vt.map_comparison_figure(cmp), "rows": rows, "A": cmp["A"], "L": cmp["L"],
            "gaussians": (m0, S0, m1, S1), "summary": summary, "caption": caption}
