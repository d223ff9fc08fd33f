"""Which Sinkhorn gradient? The three gradient modes measured against a high-precision reference.

For two point clouds x (n, d) with weights a (the model's sample: the points that move) and
y (m, d) with weights b (the target's sample, fixed), :func:`sinkhorn_gradient_study` solves the
debiased Sinkhorn divergence S_ε (cost |x − y|², :func:`~divlab.divergences.transport.sinkhorn_divergence`)
once at a tight tolerance (the reference) and then, for every gradient mode and every tolerance
of a sweep, reports what that mode returns and how far it is from the reference:

- the value S_ε (squared units of x) and its absolute error;
- ∇ₓS_ε, relative L2 error ‖g − g_ref‖ / ‖g_ref‖;
- dS_ε/dε (dimensionless), relative error; the reference is the envelope formula
  ∂OT_ε/∂ε = KL(π‖a⊗b) at the tight tolerance, checked against a central finite difference;
- a quantity the envelope rule does not give: the gradient of the entropic map. With the plan π
  of OT_ε(a, b), T(x_i) = Σ_j π_ij y_j / Σ_j π_ij and the map's mean squared displacement
  D = Σ_i a_i |T(x_i) − x_i|² (the first term of the Monge gap). Its gradients ∇ₓD and dD/dε
  need the derivative of the potentials: "implicit" gets it from the implicit function theorem,
  "unrolled" by autodiff through the loop; the envelope mode's potentials are constants, so the
  envelope row reports what differentiating the plan with the potentials *frozen* gives (wrong
  at any tolerance: that is the lesson). Reference: the implicit rule at the tight tolerance,
  checked against central finite differences (ε and a few coordinates of x);
- the forward's and the backward's wall time and peak memory (:class:`ot_solver.Meter`), and the
  bytes autograd keeps between the forward and the backward (every saved tensor, counted once per
  storage): the unrolled mode keeps ~2 n × m matrices per iteration, the others O(n + m) (the
  implicit forward also builds the n × m plan, and its backward solves a dense (n + m) system).

The unrolled mode's memory grows with its iterations, so it gets an iteration cap from
``unrolled_budget_mib`` (a row that hit it says ``max_iter``). Everything is float64 on the CPU,
tensorized backend. Rows are plain dicts of floats (see :class:`GradientStudy`).
"""

from __future__ import annotations

import ctypes
import math
import time
from dataclasses import dataclass, field

import torch

from ..device import one_cpu_thread
from . import ot_solver as S
from ._samples import sqdist
from .transport import ot_eps, sinkhorn_divergence, sinkhorn_potentials

__all__ = ["MODES", "DEFAULT_TOLS", "GradientStudy", "sinkhorn_gradient_study", "map_displacement", "rel_error",
           "one_thread"]

#: the gradient modes of :func:`~divlab.divergences.transport.sinkhorn_divergence`
MODES = ("unrolled", "envelope", "implicit")
#: the tolerance sweep (row-marginal L1 error at which the solver stops)
DEFAULT_TOLS = tuple(10.0 ** -k for k in range(1, 10))
#: bytes one unrolled iteration keeps per entry of the n × m cost (measured: ~1.7 float64 matrices)
_UNROLLED_BYTES_PER_ENTRY = 2 * 8


@dataclass
class GradientStudy:
    """The outcome of :func:`sinkhorn_gradient_study`.

    ``reference``: value, grad_x (tensor), deps, map_disp, map_grad_x (tensor), map_deps, tol,
    iterations, status, and the finite-difference checks (fd_deps, fd_map_deps, fd_grad_x: the
    largest relative difference over the probed coordinates, implicit_vs_envelope: the reference
    gradient from the implicit rule against the envelope one). ``rows``: one dict per (mode,
    tolerance) with keys mode, tol, status, iterations, value, value_error, grad_error, deps,
    deps_error, map_grad_error, map_deps_error, map_rule, forward_s, backward_s, peak_mib,
    saved_mib, max_iter. Errors are relative except value_error (absolute, squared units of x).
    """

    epsilon: float
    n: int
    m: int
    reference: dict
    rows: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    unrolled_max_iter: int = 0
    memory_kind: str = ""


def rel_error(v, ref) -> float:
    """‖v − ref‖ / ‖ref‖ (L2 over every entry); |v − ref| when ref is 0."""
    v, ref = torch.as_tensor(v, dtype=torch.float64), torch.as_tensor(ref, dtype=torch.float64)
    d = float((v - ref).norm())
    r = float(ref.norm())
    return d / r if r > 0 else d


def map_displacement(plan: torch.Tensor, x: torch.Tensor, y: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """D = Σ_i a_i |T(x_i) − x_i|² with the barycentric (entropic) map T(x_i) = Σ_j π_ij y_j / Σ_j π_ij.
    Differentiable through the plan and the points."""
    T = (plan @ y) / plan.sum(1, keepdim=True)
    return (a * ((T - x) ** 2).sum(1)).sum()


class _Saved:
    """Counts the bytes autograd saves for the backward (each storage once)."""

    def __init__(self):
        self.storages: dict = {}

    def pack(self, t):
        s = t.untyped_storage()
        self.storages[s.data_ptr()] = s.nbytes()
        return t

    @staticmethod
    def unpack(t):
        return t

    @property
    def mib(self) -> float:
        return sum(self.storages.values()) / 2**20

    def hooks(self):
        return torch.autograd.graph.saved_tensors_hooks(self.pack, self.unpack)


def _f(t) -> float:
    return float(t.detach()) if isinstance(t, torch.Tensor) else float(t)


def _value(x, a, y, b, eps, tol, max_iter) -> float:
    with torch.no_grad():
        v, _ = sinkhorn_divergence(x, a, y, b, eps, tol=tol, max_iter=max_iter, backend="tensorized")
    return float(v)


def _disp(x, a, y, b, eps, tol, max_iter) -> float:
    with torch.no_grad():
        _, info = ot_eps(x, a, y, b, eps, tol=tol, max_iter=max_iter, backend="tensorized")
        f, g = info["potentials"]
        return float(map_displacement(S.plan_dense(x, a, y, b, torch.tensor(eps, dtype=x.dtype), f, g), x, y, a))


def _release_memory() -> None:
    """Give freed heap memory back to the OS (glibc malloc_trim), so that the next Meter's peak
    resident-set growth counts what that run allocates rather than reusing an earlier run's pages.
    (The previous run's tensors are freed by reference counting when its graph goes; a full
    gc.collect() would cost ~0.2 s a row in a process holding plotly and Streamlit.)"""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the Meter's peak is then an upper bound as documented
        pass


def _run(mode, x, a, y, b, eps, tol, max_iter):
    """One mode at one tolerance: (S, ∇ₓS, dS/dε, D, ∇ₓD, dD/dε, info, saved MiB, map rule)."""
    _release_memory()
    xx = x.detach().clone().requires_grad_(True)
    et = torch.tensor(float(eps), dtype=x.dtype, requires_grad=True)
    saved = _Saved()
    with saved.hooks():
        v, info = sinkhorn_divergence(xx, a, y, b, et, tol=tol, max_iter=max_iter, gradient=mode, backend="tensorized")
    gx, ge = torch.autograd.grad(v, (xx, et), retain_graph=mode == "implicit")
    if mode == "implicit":
        plan, rule = info["plan"], "implicit function theorem"
    elif mode == "unrolled":
        # the same loop as the unrolled OT_ε(a, b) above, kept differentiable (ot_eps returns its potentials detached)
        f, g, *_ = sinkhorn_potentials(sqdist(xx, y), a.log(), b.log(), et, tol=tol, max_iter=max_iter)
        plan, rule = S.plan_dense(xx, a, y, b, et, f, g), "autodiff through the loop"
    else:
        f, g = info["potentials"]["ab"]
        plan, rule = S.plan_dense(xx, a, y, b, et, f.detach(), g.detach()), "potentials frozen (envelope rule does not apply)"
    D = map_displacement(plan, xx, y, a)
    dx, de = torch.autograd.grad(D, (xx, et))
    return float(v.detach()), gx, float(ge), float(D.detach()), dx, float(de), info, saved.mib, rule


#: one intra-op CPU thread for the study (n × m ≤ 10⁵ entries): on a busy 2-core machine the thread
#: pool's hand-off made the unrolled mode's autograd 10-20× slower (34 s instead of 3.4 s for the
#: page's default study)
one_thread = one_cpu_thread


def sinkhorn_gradient_study(x, y, epsilon: float, *, a=None, b=None, tols=DEFAULT_TOLS, modes=MODES,
                            ref_tol: float = 1e-13, max_iter: int = 20_000, ref_max_iter: int = 100_000,
                            unrolled_budget_mib: float = 256.0, time_budget_s: float | None = None,
                            fd_coords: int = 2) -> GradientStudy:
    """Measure the Sinkhorn gradient modes against a high-precision reference (module docstring).

    ``x`` (n, d): the points that move (their gradient is studied); ``y`` (m, d): the fixed
    cloud; ``a``, ``b``: weights (uniform by default); ``epsilon`` > 0 in squared units of x;
    ``tols``: the tolerance sweep; ``modes``: a subset of :data:`MODES`; ``ref_tol`` /
    ``ref_max_iter``: the reference solve (its status is reported; the reference must converge);
    ``unrolled_budget_mib``: the unrolled mode's iteration cap is the largest that keeps its graph
    under this many MiB; ``time_budget_s``: rows not started once it has passed are listed in
    ``skipped`` instead (None: no limit); ``fd_coords``: coordinates of x probed by central finite
    differences for the reference check. Runs on one CPU thread (:func:`one_thread`), so the times
    are single-thread times.
    """
    with one_thread():
        return _study(x, y, epsilon, a=a, b=b, tols=tols, modes=modes, ref_tol=ref_tol, max_iter=max_iter,
                      ref_max_iter=ref_max_iter, unrolled_budget_mib=unrolled_budget_mib,
                      time_budget_s=time_budget_s, fd_coords=fd_coords)


def _study(x, y, epsilon, *, a, b, tols, modes, ref_tol, max_iter, ref_max_iter, unrolled_budget_mib, time_budget_s,
           fd_coords) -> GradientStudy:
    x = torch.as_tensor(x, dtype=torch.float64).detach()
    y = torch.as_tensor(y, dtype=torch.float64).detach()
    if x.dim() == 1:
        x = x[:, None]
    if y.dim() == 1:
        y = y[:, None]
    n, m = x.shape[0], y.shape[0]
    a = torch.full((n,), 1.0 / n, dtype=x.dtype) if a is None else torch.as_tensor(a, dtype=x.dtype)
    b = torch.full((m,), 1.0 / m, dtype=x.dtype) if b is None else torch.as_tensor(b, dtype=x.dtype)
    eps = float(epsilon)
    if not (math.isfinite(eps) and eps > 0):
        raise ValueError(f"sinkhorn_gradient_study(epsilon={epsilon!r}): epsilon must be a finite number > 0")
    bad = [md for md in modes if md not in MODES]
    if bad:
        raise ValueError(f"sinkhorn_gradient_study(modes={list(modes)!r}): modes must be among {', '.join(MODES)}")
    t_start = time.perf_counter()

    # -- the reference: envelope for S and its gradients, implicit for the map (both at ref_tol)
    xx = x.clone().requires_grad_(True)
    et = torch.tensor(eps, dtype=x.dtype, requires_grad=True)
    v, info = sinkhorn_divergence(xx, a, y, b, et, tol=ref_tol, max_iter=ref_max_iter, backend="tensorized")
    if info["status"] != "converged":
        raise ValueError(f"sinkhorn_gradient_study: the reference did not converge to tol {ref_tol:g} in "
                         f"{ref_max_iter} iterations at ε = {eps:g} ({info['status']}); use a larger ε")
    gx, ge = torch.autograd.grad(v, (xx, et))
    iv, igx, ige, D, dx, de, iinfo, _, _ = _run("implicit", x, a, y, b, eps, ref_tol, ref_max_iter)
    # finite-difference checks of the reference (central; h relative to ε and to the cloud's spread)
    h_e = 1e-4 * eps
    fd_deps = (_value(x, a, y, b, eps + h_e, ref_tol, ref_max_iter)
               - _value(x, a, y, b, eps - h_e, ref_tol, ref_max_iter)) / (2 * h_e)
    fd_map_deps = (_disp(x, a, y, b, eps + h_e, ref_tol, ref_max_iter)
                   - _disp(x, a, y, b, eps - h_e, ref_tol, ref_max_iter)) / (2 * h_e)
    h_x = 1e-5 * float(x.std()) if n > 1 else 1e-5
    fd_grad, fd_map = 0.0, 0.0
    for i in torch.linspace(0, n - 1, max(int(fd_coords), 0)).round().long().tolist() if fd_coords else []:
        E = torch.zeros_like(x)
        E[i, 0] = h_x
        fd = (_value(x + E, a, y, b, eps, ref_tol, ref_max_iter) - _value(x - E, a, y, b, eps, ref_tol, ref_max_iter)) / (2 * h_x)
        fd_grad = max(fd_grad, abs(fd - float(gx[i, 0])) / max(abs(fd), 1e-300))
        fdm = (_disp(x + E, a, y, b, eps, ref_tol, ref_max_iter) - _disp(x - E, a, y, b, eps, ref_tol, ref_max_iter)) / (2 * h_x)
        fd_map = max(fd_map, abs(fdm - float(dx[i, 0])) / max(abs(fdm), 1e-300))
    reference = {
        "value": float(v.detach()), "grad_x": gx, "deps": float(ge), "map_disp": D, "map_grad_x": dx, "map_deps": de,
        "tol": ref_tol, "iterations": info["iterations"], "status": info["status"], "fd_deps": fd_deps,
        "fd_map_deps": fd_map_deps, "fd_grad_x": fd_grad, "fd_map_grad_x": fd_map, "fd_step_x": h_x, "fd_step_eps": h_e,
        "implicit_vs_envelope": rel_error(igx, gx), "time_s": time.perf_counter() - t_start,
    }

    cap = int(unrolled_budget_mib * 2**20 / (_UNROLLED_BYTES_PER_ENTRY * max(n * m, n * n, m * m)))
    cap = max(10, min(cap, max_iter))
    study = GradientStudy(epsilon=eps, n=n, m=m, reference=reference, unrolled_max_iter=cap)
    for mode in modes:
        for tol in tols:
            if time_budget_s is not None and time.perf_counter() - t_start > time_budget_s:
                study.skipped.append((mode, float(tol)))
                continue
            mi = cap if mode == "unrolled" else max_iter
            sv, sgx, sge, sD, sdx, sde, sinfo, saved, rule = _run(mode, x, a, y, b, eps, float(tol), mi)
            solve, back = sinkhorn_info_meters(sinfo)
            peaks = [p for p in (solve.get("peak_mib"), back.get("peak_mib")) if p is not None]
            its = sinfo["iterations"]
            study.memory_kind = solve.get("memory_kind", "")
            study.rows.append({
                "mode": mode, "tol": float(tol), "status": sinfo["status"],
                "iterations": its["ab"] if isinstance(its, dict) else its, "max_iter": mi,
                "value": sv, "value_error": abs(sv - reference["value"]),
                "grad_error": rel_error(sgx, gx), "deps": sge, "deps_error": abs(sge - reference["deps"]) / abs(reference["deps"]),
                "map_grad_error": rel_error(sdx, dx), "map_deps_error": abs(sde - de) / abs(de) if de else abs(sde),
                "map_rule": rule, "forward_s": solve.get("time_s"), "backward_s": back.get("time_s"),
                "peak_mib": max(peaks) if peaks else None, "saved_mib": saved,
            })
    return study


def sinkhorn_info_meters(info: dict) -> tuple[dict, dict]:
    """The forward's and the backward's meters of a sinkhorn_divergence info (empty dicts when absent)."""
    return dict(info.get("solve") or {}), dict(info.get("backward") or {})
