"""Score-based divergences: kernel Stein discrepancy ``ksd`` and ``fisher`` divergence.

Both use only the *score* ∇ log of the target, so an unnormalized target would do.

- ``ksd`` = KSD²(q; p): squared kernel Stein discrepancy of the model q (its samples) against the
  target p (its score s = ∇ log p), with the IMQ kernel k(x, y) = (c² + |x − y|²)^β, β = −½
  (Gorham & Mackey 2017: IMQ detects non-convergence). With r = x − y, B = c² + |r|²:

      u_p(x, y) = k sₓ·s_y + 2β B^{β−1} r·(s_y − sₓ) − 2β [d B^{β−1} + 2(β−1) B^{β−2} |r|²]

  and KSD² = E_{x,x'~q} u_p(x, x'): U-statistic (i ≠ j; unbiased) or V-statistic (≥ 0).
  Standard error: first-order Hoeffding, 2·sd(h₁)/√n with h₁(x_i) the leave-one-out row mean.
  At q = p the U-statistic is degenerate (h₁ ≡ 0, spread O(1/n)); the plug-in h₁ then carries
  the second-order noise, which makes the stderr conservative there rather than 0 (measured:
  spread 0.011 vs mean stderr 0.016 at n = 100, 0.0032 vs 0.0040 at n = 400; tests/test_stein.py).
  Blind spot: the score does not see how mass splits between well-separated modes (a weight
  change of KL 0.51 nats moves KSD² by ~3e-4, a shift of the same KL by 0.41). The fix:
  ``options={"perturb": 5, "jump": 0.8}`` first moves the model's samples by 5 Metropolis–Hastings
  steps that leave p invariant, jumping between p's modes (:func:`perturb_cloud`; perturbed KSD,
  Liu & Briol): ½N(−4, 1) + ½N(4, 1) against its 0.9/0.1 reweighting then gives KSD² ≈ 0.05 instead
  of ≈ 0 (tests/test_ksd_blind_spot.py).
  The value is differentiable in the sample locations (the score is taken with
  ``create_graph``), so it can drive particles.
- ``fisher`` = F(p‖q) = E_p |∇ log p − ∇ log q|² (expectation under the target p). Estimators:
  ``grid`` (quadrature on a grid adapted to p and q, scores by autograd) and ``mc`` (draws
  from p, with standard error; also takes a batch of models, as ``dl.fit`` passes). +inf where
  q = 0 < p. Both are differentiable in q's parameters: the model's scores are taken with
  ``create_graph`` whenever its log-density depends on a tensor that requires grad (score
  matching differentiates ∇ₓ log q_θ in θ). ``dl.fit(..., divergence="fisher")`` uses ``mc``.

References: Liu, Lee & Jordan (2016); Chwialkowski, Strathmann & Gretton (2016); Gorham & Mackey
(2017); Hyvärinen (2005) for score matching / the Fisher divergence.
"""

from __future__ import annotations

import math

import torch

from ..distributions import Distribution, Empirical
from ..estimators.quadrature import make_grid
from ..estimators.result import Estimate
from ._samples import check_options, sqdist, to_cloud
from .registry import DivergenceSpec, Param, register

__all__ = ["score_at", "ksd2", "fisher_terms", "perturb_cloud", "find_modes"]

DEFAULT_N = 1000
BETA = -0.5
PQ = "p is the target, q the model"


def score_at(d: Distribution, x: torch.Tensor, owner: str) -> torch.Tensor:
    """∇ log d at points x (n, dim) as (n, dim); differentiable in x when x requires grad."""
    if not getattr(d, "has_density", True):
        raise ValueError(f"{owner}: the target must have a density (a score); {type(d).__name__} has none")
    pts = x if d.dim == 2 else x[:, 0]
    need_graph = pts.requires_grad
    xs = pts if need_graph else pts.detach().requires_grad_(True)
    with torch.enable_grad():
        lp = d.log_prob(xs)
        if not lp.requires_grad:  # log-density constant in x (e.g. Uniform): zero score
            return torch.zeros_like(x)
        (g,) = torch.autograd.grad(lp.sum(), xs, create_graph=need_graph, allow_unused=True)
        if g is None:
            return torch.zeros_like(x)
    return g.reshape(x.shape)


def ksd2(x, w, s, bandwidth: float, statistic: str = "unbiased"):
    """KSD² of the weighted cloud (x (n, d), w) given the target scores s (n, d) at x, IMQ
    kernel with c = ``bandwidth``. Returns (value, first-order stderr)."""
    n, d = x.shape
    r = x[:, None, :] - x[None, :, :]
    d2 = sqdist(x, x)
    B = bandwidth**2 + d2
    k = B**BETA
    U = (k * (s @ s.T) + 2 * BETA * B ** (BETA - 1) * (r * (s[None, :, :] - s[:, None, :])).sum(-1)
         - 2 * BETA * (d * B ** (BETA - 1) + 2 * (BETA - 1) * B ** (BETA - 2) * d2))
    full = w @ U @ w
    if statistic == "biased" or n < 2:
        value = full
    else:
        s2 = (w * w).sum()
        value = (full - (w * w * torch.diagonal(U)).sum()) / (1 - s2)
    with torch.no_grad():
        se = 0.0
        if n >= 2:
            off = U - torch.diag(torch.diagonal(U))
            wo = w[None, :] * (1 - torch.eye(n, dtype=w.dtype, device=w.device))
            h1 = (off * w[None, :]).sum(1) / wo.sum(1)
            mean = (w * h1).sum()
            se = math.sqrt(4 * float((w * (h1 - mean) ** 2).sum()) * float((w * w).sum()))
    return value, se


def find_modes(p: Distribution, x: torch.Tensor, owner: str, starts: int = 64, iters: int = 300) -> torch.Tensor:
    """Local maxima of log p, (K, dim): the component means of a Gaussian Mixture target; otherwise
    gradient ascent (Adam on −log p) from up to ``starts`` of the points x (n, dim), merged when
    closer than half of p's smallest feature length."""
    comps = getattr(p, "components", None)
    if comps is not None and all(hasattr(c, "loc") or hasattr(c, "mean") for c in comps):
        return torch.stack([torch.as_tensor(getattr(c, "loc", None) if hasattr(c, "loc") else c.mean)
                            .reshape(-1).to(x.dtype) for c in comps])
    idx = torch.linspace(0, x.shape[0] - 1, min(starts, x.shape[0])).long()
    z = x.detach()[idx].clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=0.05)
    with torch.enable_grad():
        for _ in range(iters):
            opt.zero_grad()
            (-p.log_prob(z if p.dim > 1 else z[:, 0]).sum()).backward()
            opt.step()
    z = z.detach()
    tol = 0.5 * float(p.min_scale())
    modes = []
    for pt in z:
        if all(float((pt - m).norm()) > tol for m in modes):
            modes.append(pt)
    return torch.stack(modes)


def perturb_cloud(p: Distribution, x: torch.Tensor, steps: int, jump: float, seed, modes=None,
                  owner: str = "ksd") -> tuple[torch.Tensor, dict]:
    """``steps`` Metropolis–Hastings steps that leave p invariant, applied to every point of x (n, dim):
    propose x' = x + jump·(m_j − m_i) for an ordered pair of distinct modes (i, j) drawn uniformly (a
    symmetric proposal), accept with probability min(1, p(x')/p(x)). After Liu & Briol (2024), "On
    the robustness of kernel goodness-of-fit tests" / "Using perturbation to improve goodness-of-fit
    tests based on kernelized Stein discrepancy": under p the flows between modes balance (pK = p),
    under a q with the wrong mode weights the net flow lands off-centre in the receiving mode
    (jump ≠ 1), a change of *shape* the score sees. Accepted points move by a constant shift, so the
    result stays differentiable in x."""
    M = find_modes(p, x, owner) if modes is None else torch.as_tensor(modes, dtype=x.dtype).reshape(-1, x.shape[1])
    info = {"perturbation": f"{steps} MH steps, mode-jump proposal x + {jump:g}·(m_j − m_i)", "modes": M.tolist()}
    K = M.shape[0]
    if K < 2 or steps == 0:
        info["note"] = "fewer than two modes: nothing to jump between, no perturbation"
        return x, info
    g = torch.Generator(device="cpu").manual_seed(0 if seed is None else int(seed))
    acc = 0.0
    for _ in range(steps):
        i = torch.randint(0, K, (x.shape[0],), generator=g)
        j = (i + torch.randint(1, K, (x.shape[0],), generator=g)) % K
        xp = x + jump * (M[j] - M[i]).to(x.dtype)
        lp = lambda t: p.log_prob(t if p.dim > 1 else t[:, 0])  # noqa: E731
        with torch.no_grad():
            la = lp(xp.detach()) - lp(x.detach())
        u = torch.rand(x.shape[0], generator=g, dtype=x.dtype)
        ok = (torch.log(u) < la)[:, None]
        acc += float(ok.double().mean())
        x = torch.where(ok, xp, x)
    info["acceptance"] = acc / steps
    return x, info


def _ksd_samples(p, q, *, n=None, seed=None, options=None, bandwidth=1.0, statistic="unbiased"):
    owner = "ksd"
    o = check_options(owner, options or {}, {"perturb": 0, "jump": 0.8, "modes": None})
    steps = o["perturb"]
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"{owner}(perturb={steps!r}): perturb must be an integer >= 0 (MH steps)")
    try:
        jump = float(o["jump"])
    except (TypeError, ValueError):
        jump = math.nan
    if not (jump > 0 and math.isfinite(jump)):
        raise ValueError(f"{owner}(jump={o['jump']!r}): jump must be a number > 0 (1 = exactly mode to mode)")
    if isinstance(p, Empirical):
        raise ValueError(f"{owner}: the target p must have a density (its score is used); p is Empirical")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"{owner}(n={n!r}): n must be a positive integer")
    x, w = to_cloud(q, n or DEFAULT_N, seed, owner)
    x = x.to(p.dtype)
    pinfo = {}
    if steps:
        x, pinfo = perturb_cloud(p, x, steps, jump, seed, o["modes"], owner)
    s = score_at(p, x, owner)
    if not torch.isfinite(s.detach()).all():
        return Estimate(value=torch.tensor(math.inf, dtype=x.dtype, device=x.device), estimator="samples",
                        divergence="ksd", params={"bandwidth": float(bandwidth), "statistic": statistic},
                        n=int(x.shape[0]), reason="KSD is undefined: the target's score is not finite at some "
                                                  "model samples (the target density is 0 there)")
    value, se = ksd2(x, w.to(x.dtype), s, float(bandwidth), statistic)
    info = {"kernel": "imq", "beta": BETA, **pinfo}
    if statistic == "unbiased" and x.shape[0] < 2:
        info["statistic_used"] = "biased"
        info["note"] = "a single point has no pair i ≠ j: the unbiased statistic is undefined, the V-statistic is used"
    return Estimate(value=value, estimator="samples", divergence="ksd",
                    params={"bandwidth": float(bandwidth), "statistic": statistic}, stderr=se, n=int(x.shape[0]),
                    info=info)


def _log_prob_and_score(d: Distribution, pts: torch.Tensor, create_graph: bool):
    """(log d(pts) (detached: for the support masks), ∇ log d(pts)) for points pts (..., *event_shape) broadcastable with d's batch
    (each log d(pts[i]) depends on pts[i] only, so one gradient of the sum gives every score).
    With ``create_graph`` the score keeps its graph: differentiable in d's parameters and in the
    points (score matching needs ∂/∂θ ∇ₓ log q_θ)."""
    leaf = not pts.requires_grad
    xs = pts.detach().clone().requires_grad_(True) if leaf else pts
    with torch.enable_grad():
        lp = d.log_prob(xs)
        if not lp.requires_grad:  # log-density constant in x (e.g. Uniform): zero score
            return lp, torch.zeros_like(pts)
        (g,) = torch.autograd.grad(lp.sum(), xs, create_graph=create_graph, allow_unused=True)
    if g is None:
        g = torch.zeros_like(pts)
    return lp.detach(), g


def _needs_graph(*ds) -> bool:
    """True when grad mode is on and some distribution's log-density depends on a tensor that
    requires grad (checked on one point; tensors of parameters are not listed by the classes)."""
    if not torch.is_grad_enabled():
        return False
    for d in ds:
        x0 = torch.zeros((1,) + tuple(d.event_shape), device=d.device, dtype=d.dtype)
        if d.batch_shape:
            x0 = x0.reshape((1,) + (1,) * len(d.batch_shape) + tuple(d.event_shape))
        if d.log_prob(x0).requires_grad:
            return True
    return False


def fisher_terms(p, q, x, owner):
    """|s_p − s_q|² at points x (n, dim): shape (n,), or (n, B) for a model q with batch_shape
    (B,) (each model's scores at the same points); +inf where q = 0 < p (and 0 where p = 0).

    Differentiable in q's (and p's) parameters, and in x when x requires grad: the scores are
    taken with ``create_graph`` when anything they depend on requires grad."""
    n = x.shape[0]
    pts = x if p.dim == 2 else x[:, 0]
    ev = tuple(q.event_shape)
    graph = bool(x.requires_grad) or _needs_graph(p, q)
    lp, sp = _log_prob_and_score(p, pts, graph)
    ptq = pts.to(q.dtype)
    if q.batch_shape:
        nb = len(q.batch_shape)
        shape = (n,) + tuple(q.batch_shape) + ev
        ptq = ptq.reshape((n,) + (1,) * nb + ev).expand(shape)
        lp = lp.reshape((n,) + (1,) * nb)
        sp = sp.reshape((n,) + (1,) * nb + ev)
        if not ptq.requires_grad:
            ptq = ptq.contiguous()
    lq, sq = _log_prob_and_score(q, ptq, graph)
    lq, sq = lq.to(p.dtype), sq.to(p.dtype)
    if not torch.isfinite(sp.detach()).all() or not torch.isfinite(sq.detach()).all():
        fin_s = torch.isfinite(sp) & torch.isfinite(sq)
        sp = torch.where(fin_s, sp, torch.zeros_like(sp))
        sq = torch.where(fin_s, sq, torch.zeros_like(sq))
    sq2 = (sp - sq) ** 2
    diff = sq2.sum(-1) if ev else sq2
    lp, lq = torch.broadcast_tensors(lp, lq)
    ok = torch.isfinite(lp) & torch.isfinite(lq)
    diff = torch.where(ok, diff, torch.zeros_like(diff))
    only_p = torch.isfinite(lp) & ~torch.isfinite(lq)
    return torch.where(only_p, torch.full_like(diff, math.inf), diff)


_FISHER_INF = "Fisher divergence is infinite: the model q = 0 where the target p > 0 (log q has no gradient there)"


def _check_fisher(owner, p, q, options, allowed, batch_q=False):
    o = check_options(owner, options or {}, allowed)
    for name, d in (("p", p), ("q", q)):
        if not getattr(d, "has_density", True):
            raise ValueError(f"{owner}: needs densities (scores); {name} = {type(d).__name__} has none")
        if d.batch_shape and not (batch_q and name == "q" and len(d.batch_shape) == 1):
            raise ValueError(f"{owner}: {name} has batch_shape {tuple(d.batch_shape)}; one distribution at a time")
    return o


def _fisher_grid(p, q, *, n=None, seed=None, options=None):
    owner = "fisher"
    _check_fisher(owner, p, q, options, {})
    grid = make_grid(p, q, n=n)
    pts = grid.points.to(device=p.device, dtype=p.dtype)
    x = pts.reshape(pts.shape[0], p.dim)
    w = grid.weights.to(device=p.device, dtype=p.dtype)
    dens = p.log_prob(x if p.dim == 2 else x[:, 0]).exp()
    terms = fisher_terms(p, q, x, owner)
    weight = w * dens
    mass = weight.sum()
    pos = weight > 0
    value = (torch.where(pos, terms, torch.zeros_like(terms)) * weight).sum() / mass
    reason = _FISHER_INF if bool(torch.isinf(value.detach())) else None
    return Estimate(value=value, estimator="grid", divergence="fisher", n=grid.n, reason=reason,
                    info={"grid_shape": grid.shape, "mass_p": float(mass.detach())})


def _fisher_mc(p, q, *, n=None, seed=None, options=None):
    """Draws from the target p; differentiable in q's parameters (the model scores keep their
    graph). A model q with batch_shape (B,) (a batch of models, as :func:`divlab.fit` passes)
    gives B values at the same draws; the reported stderr is then the largest of the batch."""
    owner = "fisher"
    _check_fisher(owner, p, q, options, {}, batch_q=True)
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 2):
        raise ValueError(f"{owner}(n={n!r}): n must be an integer >= 2")
    n = n or 4096
    x = p.rsample(n, seed=seed) if p.has_rsample else p.sample(n, seed=seed)
    x = x.reshape(n, p.dim)
    terms = fisher_terms(p, q, x, owner)
    value = terms.mean(0)
    finite = torch.isfinite(terms.detach())
    reason = _FISHER_INF if not bool(finite.all()) else None
    se = 0.0 if reason else float((terms.detach().std(0) / math.sqrt(n)).max())
    return Estimate(value=value, estimator="mc", divergence="fisher", stderr=se, n=n, reason=reason,
                    info={"draws": "from the target p", "gradient": "in q's parameters through its scores"})


register(DivergenceSpec(
    key="ksd", name="Kernel Stein discrepancy² (IMQ)",
    unit="kernel units",
    latex=r"\mathrm{KSD}^2(q;p)=\mathbb{E}_{x,x'\sim q}\,u_p(x,x')",
    family="stein", behaviour="mode-seeking", symmetric=False,
    params=(Param("bandwidth", 1.0, 0.0, math.inf, low_open=True, label="c",
                  description="IMQ kernel scale c in (c² + |x − y|²)^(−½), absolute (units of x)"),
            Param("statistic", "unbiased", choices=("unbiased", "biased"), label="estimator",
                  description="unbiased U-statistic (may be slightly negative) or biased V-statistic (≥ 0)")),
    needs=("samples", "scores"),
    direction=f"KSD²(q; p): samples of the model q against the score of the target p ({PQ})",
    description="Squared kernel Stein discrepancy with the inverse multiquadric kernel. Needs only ∇log p, "
                "so the target may be unnormalized. Zero iff q = p (for IMQ, under mild conditions).",
    from_logs=None, estimator_fns={"samples": _ksd_samples},
    look_for="Scores only see the local shape of p: samples stuck in one mode of a well-separated mixture "
             "look almost right, so KSD under-weights missing modes."))

register(DivergenceSpec(
    key="fisher", name="Fisher divergence", latex=r"F(p\|q)=\mathbb{E}_p\,|\nabla\log p-\nabla\log q|^2",
    unit="squared score units",
    family="stein", behaviour="balanced", symmetric=False, needs=("densities", "scores"),
    direction=f"F(p‖q): expectation under the target p of the squared score difference ({PQ})",
    description="Fisher (score-matching) divergence. Insensitive to the normalizing constants and, with "
                "separated modes, to the relative mode weights. +inf where q = 0 < p.",
    from_logs=None, estimator_fns={"grid": _fisher_grid, "mc": _fisher_mc},
    look_for="It compares slopes, not masses: a fit can match each mode's shape and still get the mode "
             "weights wrong."))
