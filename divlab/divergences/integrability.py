"""Is D(p‖q) finite? One rule, consulted by every estimator before it runs.

A divergence between two densities is an integral, and an integral can diverge: KL(p‖q) is +∞
when q = 0 on part of p's support, or when p's tails are so heavy that E_p[−log q] = ∞ (a
Cauchy target and a Normal model); χ²(p‖q) = ∫p²/q − 1 is +∞ unless q's tails are at least as
heavy as p's squared; every member of the α / Rényi / Tsallis families with α outside [0, 1] is
finite only if ∫p^α q^(1−α) converges. No estimator can tell this from a finite number of grid
points or draws: a quadrature over a box returns whatever the box holds, and a Monte Carlo
average of an infinite-variance quantity returns a finite number with a small error bar. So
:func:`finiteness` decides it *before* any estimator runs, from what the distributions are:

- **Gaussian pairs** (Normal, MultivariateNormal): exact. ∫p^α q^(1−α) < ∞ iff
  A = α·Σp⁻¹ + (1−α)·Σq⁻¹ is positive definite (α = 2 is Pearson χ², α = −1 Neyman χ²).
- **Mixtures**, component by component: ∫p^α q^(1−α) (α > 1) is finite iff for every component
  p_i of p (with positive weight) and every direction, the heaviest component of q in that
  direction keeps p_i^α q^(1−α) integrable (p^α ≤ Σ w_i p_i^α by Jensen, and q ≥ v_j q_j).
- **Tail rules in 1D** for Normal, Laplace, Student-t and Uniform components, side by side: a log-
  density tail is Gaussian (−x²/2σ²), exponential (−|x|/b), a power (−(ν+1)·log|x|) or ends
  (bounded support); the heavier class dominates, and within a class the coefficients decide.
  KL(p‖q) needs the moment of p that q's tail asks for (2 for a Normal q, 1 for a Laplace q,
  only log|x| for a Student-t q): KL(t_ν‖Normal) is finite iff ν > 2.
- **Supports**: intervals (Uniform, GridDensity's non-zero cells) and boxes; q = 0 on a set
  where p > 0 makes every divergence with f'(∞) = ∞ infinite (KL(p‖q), χ²(p‖q), α ≥ 1), and
  disjoint supports make Rényi (α < 1), Bhattacharyya and Cauchy–Schwarz infinite.
- **Transport**: W_p (and Sinkhorn with its squared cost) is infinite when exactly one side lacks
  the p-th moment (a Cauchy against a Normal).

Where no rule decides (a drawn 2D density against a Gaussian for α > 1, a user's f), the verdict
is ``"unknown"`` and the estimators say so next to their value instead of guessing.
Conventions and definitions: docs/conventions.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..distributions import GridDensity, Laplace, Mixture, MultivariateNormal, Normal, StudentT, Uniform

__all__ = ["Verdict", "finiteness"]

FINITE, INFINITE, UNKNOWN = "finite", "infinite", "unknown"


@dataclass(frozen=True)
class Verdict:
    """``status``: "finite" | "infinite" | "unknown"; ``reason``: why, in words (for "infinite" the
    sentence the UI shows next to ∞; for "unknown" what could not be decided); ``rule``: which rule
    decided."""

    status: str
    reason: str = ""
    rule: str = ""

    @property
    def infinite(self) -> bool:
        return self.status == INFINITE

    @property
    def unknown(self) -> bool:
        return self.status == UNKNOWN


_FIN = Verdict(FINITE, "", "")


def _fin(rule):
    return Verdict(FINITE, "", rule)


def _unk(reason):
    return Verdict(UNKNOWN, reason, "no rule")


# --------------------------------------------------------------------------- components
def _flat(d, w=1.0):
    """[(weight, component)] with positive weight, nested mixtures flattened; None if batched."""
    if d.batch_shape:
        return None
    if isinstance(d, Mixture):
        out = []
        ws = d.weights.detach().reshape(-1).tolist()
        for wi, c in zip(ws, d.components):
            if wi > 0:
                sub = _flat(c, w * wi)
                if sub is None:
                    return None
                out.extend(sub)
        return out
    return [(w, d)]


def _f(t) -> float:
    return float(t.detach().reshape(-1)[0])


# --------------------------------------------------------------------------- 1D tails
# a tail on side s (+1: x → +∞, −1: x → −∞) as (rank, coefficients):
#   ("end", x0)            support ends at x0 (Uniform, GridDensity)
#   ("gauss", c2, c1)      log p ≈ −c2 x² + c1 |x|   (c2 = 1/2σ², c1 = s·μ/σ²)
#   ("exp", c)             log p ≈ −c |x|            (c = 1/b)
#   ("power", k)           log p ≈ −k log|x|         (k = ν + 1)
_RANK = {"end": 0, "gauss": 1, "exp": 2, "power": 3}


def _tail(c, s):
    if isinstance(c, Normal):
        sig = _f(c.scale)
        return ("gauss", 1.0 / (2 * sig * sig), s * _f(c.loc) / (sig * sig))
    if isinstance(c, Laplace):
        return ("exp", 1.0 / _f(c.scale))
    if isinstance(c, StudentT):
        return ("power", _f(c.df) + 1.0)
    if isinstance(c, Uniform) and c.dim == 1:
        return ("end", _f(c.high) if s > 0 else _f(c.low))
    if isinstance(c, GridDensity) and c.dim == 1:
        xs = c.axes[0]
        return ("end", float(xs[-1]) if s > 0 else float(xs[0]))
    return None


def _heavier_key(t):
    kind = t[0]
    if kind == "end":
        return (0, 0.0, 0.0)
    if kind == "gauss":
        return (1, -t[1], t[2])
    if kind == "exp":
        return (2, -t[1], 0.0)
    return (3, -t[1], 0.0)


def _heaviest(comps, s):
    """The heaviest tail among the components on side s (None if any is of an unknown kind)."""
    tails = [_tail(c, s) for _, c in comps]
    if any(t is None for t in tails):
        return None
    return max(tails, key=_heavier_key)


def _side_pairs(cp, cq):
    """For each side (+1, −1) and each component c of p with an unbounded tail there:
    (side, c, c's tail, q's heaviest tail on that side); a single (Verdict "unknown", None, None,
    None) when a component has no tail rule."""
    for s in (1, -1):
        tq = _heaviest(cq, s)
        if tq is None:
            yield _unk(f"no tail rule for {type(cq[0][1]).__name__}"), None, None, None
            return
        for _, c in cp:
            tp = _tail(c, s)
            if tp is None:
                yield _unk(f"no tail rule for {type(c).__name__}"), None, None, None
                return
            if tp[0] != "end":
                yield s, c, tp, tq


def _moment_order(tq):
    """The moment of p that E_p[−log q] needs on a side where q's tail is ``tq``."""
    return {"gauss": 2.0, "exp": 1.0, "power": 0.0, "end": 0.0}[tq[0]]


def _has_moment(tp, m) -> bool:
    if tp[0] == "power":
        return m == 0 or (tp[1] - 1.0) > m  # E|x|^m < ∞ iff ν > m (log-moments always)
    return True


def _describe(c) -> str:
    if isinstance(c, Normal):
        return f"Normal(loc={_f(c.loc):g}, scale={_f(c.scale):g})"
    if isinstance(c, Laplace):
        return f"Laplace(loc={_f(c.loc):g}, scale={_f(c.scale):g})"
    if isinstance(c, StudentT):
        return f"StudentT(df={_f(c.df):g}, loc={_f(c.loc):g}, scale={_f(c.scale):g})"
    if isinstance(c, Uniform):
        return f"Uniform({_f(c.low):g}, {_f(c.high):g})"
    return type(c).__name__


def _tail_words(t):
    return {"gauss": "Gaussian", "exp": "exponential (Laplace)", "power": f"power-law (x^−{t[1]:g})",
            "end": "bounded"}[t[0]]


# --------------------------------------------------------------------------- supports
def _support_1d(d):
    """Sorted disjoint open intervals [(a, b)] where the density is positive, or None (unknown)."""
    comps = _flat(d)
    if comps is None:
        return None
    out = []
    for _, c in comps:
        if isinstance(c, (Normal, Laplace, StudentT)):
            out.append((-math.inf, math.inf))
        elif isinstance(c, Uniform) and c.dim == 1:
            out.append((_f(c.low), _f(c.high)))
        elif isinstance(c, GridDensity) and c.dim == 1:
            xs, v = c.axes[0].detach().cpu().tolist(), c.values.detach().cpu().tolist()
            for i in range(len(xs) - 1):
                if v[i] > 0 or v[i + 1] > 0:
                    out.append((xs[i], xs[i + 1]))
        else:
            return None
    out.sort()
    merged = []
    for a, b in out:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _support_box(d):
    """(lo, hi) 2-vectors of a 2D box support, ((−inf,)*2, (inf,)*2) for positive densities, None unknown."""
    comps = _flat(d)
    if comps is None:
        return None
    from ..distributions import Banana, Ring, TwoMoons

    lo, hi = [math.inf, math.inf], [-math.inf, -math.inf]
    for _, c in comps:
        if isinstance(c, (MultivariateNormal, Banana, Ring, TwoMoons)):
            return ([-math.inf] * 2, [math.inf] * 2)
        if isinstance(c, Uniform) and c.dim == 2:
            a, b = c.low.detach().reshape(-1).tolist(), c.high.detach().reshape(-1).tolist()
        else:
            return None
        lo = [min(lo[i], a[i]) for i in range(2)]
        hi = [max(hi[i], b[i]) for i in range(2)]
    if len(comps) > 1:
        return None  # a union of boxes is not a box: leave it to the grid
    return (lo, hi)


def _outside(sp, sq):
    """A point (in words) of supp p not in supp q, or None when supp p ⊆ supp q; sp/sq interval lists."""
    for a, b in sp:
        x = a
        while x < b:
            cover = next(((c, e) for c, e in sq if c <= x < e), None)
            if cover is None:
                nxt = min((c for c, _ in sq if c > x), default=math.inf)
                mid = _mid(x, min(b, nxt))
                return f"x = {mid:.4g}"
            x = cover[1]
    return None


def _role(name):
    return "the target p" if name == "p" else "the model q"


def _missing(zero, pos):
    """'the model q has no mass where the target p does' / 'the model q puts mass where the target p has none'."""
    if zero == "q":
        return "the model q has no mass where the target p does"
    return "the model q puts mass where the target p has none"


def _mid(a, b):
    if math.isinf(a) and math.isinf(b):
        return 0.0
    if math.isinf(a):
        return b - 1.0
    if math.isinf(b):
        return a + 1.0
    return 0.5 * (a + b)


def _overlap(sp, sq) -> bool:
    return any(min(b, e) > max(a, c) for a, b in sp for c, e in sq)


def _support_relation(p, q):
    """(p_not_in_q: str|None, q_not_in_p: str|None, overlap: bool) or None when unknown."""
    if p.dim == 1:
        sp, sq = _support_1d(p), _support_1d(q)
        if sp is None or sq is None:
            return None
        return _outside(sp, sq), _outside(sq, sp), _overlap(sp, sq)
    bp, bq = _support_box(p), _support_box(q)
    if bp is None or bq is None:
        return None

    def out(b1, b2):
        for i, ax in enumerate("xy"):
            if b1[0][i] < b2[0][i] or b1[1][i] > b2[1][i]:
                return f"{ax} outside [{b2[0][i]:.4g}, {b2[1][i]:.4g}]"
        return None

    ov = all(min(bp[1][i], bq[1][i]) > max(bp[0][i], bq[0][i]) for i in range(2))
    return out(bp, bq), out(bq, bp), ov


# --------------------------------------------------------------------------- KL
def _kl(p, q, who="KL(p‖q)", pname="p", qname="q"):
    """Finiteness of KL(p‖q)."""
    rel = _support_relation(p, q)
    if rel is not None and rel[0] is not None:
        return Verdict(INFINITE, f"{who} is infinite: {_missing(qname, pname)} "
                       f"({qname} = 0 < {pname} near {rel[0]})", "support")
    if p.dim == 2:
        if _all_gaussian_tailed_2d(p) and _all_gaussian_tailed_2d(q):
            return _fin("2D densities with Gaussian-type tails: every moment is finite")
        return _unk(f"no rule decides whether {who} converges for {type(p).__name__} and {type(q).__name__}")
    cp, cq = _flat(p), _flat(q)
    if cp is None or cq is None or rel is None:
        return _unk("batched or unsupported distributions")
    for s, c, tp, tq in _side_pairs(cp, cq):
        if isinstance(s, Verdict):
            return s
        m = _moment_order(tq)
        if not _has_moment(tp, m):
            need = {2.0: "a finite variance", 1.0: "a finite mean"}[m]
            side = "+∞" if s > 0 else "−∞"
            return Verdict(INFINITE,
                           f"{who} is infinite: {pname} has {_describe(c)} in it, whose power-law tail "
                           f"(toward {side}) has no {'second' if m == 2 else 'first'} moment, but −log {qname} "
                           f"grows like |x|^{m:g} ({_tail_words(tq)} tail of {qname}): E_{pname}[−log {qname}] "
                           f"needs {need}", "tails")
    return _fin("1D tails: the moment each side needs is finite")


def _all_gaussian_tailed_2d(d):
    from ..distributions import Banana, Ring, TwoMoons

    comps = _flat(d)
    return comps is not None and all(isinstance(c, (MultivariateNormal, Banana, Ring, TwoMoons)) for _, c in comps)


# --------------------------------------------------------------------------- ∫ p^a q^(1−a), a > 1
def _gauss_2d(c):
    return isinstance(c, MultivariateNormal)


def _chernoff(p, q, a, label, pname="p", qname="q"):
    """Finiteness of ∫ p^a q^(1−a) for a > 1 (roles already swapped for α < 0)."""
    rel = _support_relation(p, q)
    if rel is not None and rel[0] is not None:
        return Verdict(INFINITE, f"{label} is infinite: {_missing(qname, pname)} "
                       f"({qname} = 0 < {pname} near {rel[0]}), so ∫{pname}^{a:g}·{qname}^{1 - a:g} diverges there",
                       "support")
    cp, cq = _flat(p), _flat(q)
    if cp is None or cq is None:
        return _unk("batched distributions")
    if p.dim == 2:
        if not (all(_gauss_2d(c) for _, c in cp) and all(_gauss_2d(c) for _, c in cq)):
            return _unk(f"no rule decides whether ∫{pname}^{a:g}·{qname}^{1 - a:g} converges for "
                        f"{type(p).__name__} and {type(q).__name__} (only Gaussian components are decided in 2D)")
        return _chernoff_mvn(cp, cq, a, label, pname, qname)
    if rel is None:
        return _unk("unsupported distributions")
    b = a - 1.0
    for s, c, tp, tq in _side_pairs(cp, cq):
        if isinstance(s, Verdict):
            return s
        side = "+∞" if s > 0 else "−∞"
        why = _pair_diverges(tp, tq, a, b, pname, qname)
        if why:
            return Verdict(INFINITE,
                           f"{label} is infinite: ∫{pname}^{a:g}·{qname}^{1 - a:g} diverges toward {side}: "
                           f"{_describe(c)} in {pname} has a {_tail_words(tp)} tail and {qname}'s heaviest tail "
                           f"there is {_tail_words(tq)} ({why})", "tails")
    return _fin("1D tails: p^a q^(1−a) decays on both sides")


def _pair_diverges(tp, tq, a, b, pn="p", qn="q") -> str:
    """'' if p^a q^(1−a) is integrable on this side for these tails, else the reason."""
    kp, kq = tp[0], tq[0]
    if kq == "end":  # q ends, p does not: the support check already said so
        return "q = 0 beyond its support"
    if kq == "power":
        if kp != "power":
            return ""
        e = a * tp[1] - b * tq[1]
        return "" if e > 1 else f"the integrand decays like |x|^−{e:g}, not faster than 1/|x|"
    if kq == "exp":
        if kp == "gauss":
            return ""
        if kp == "power":
            return "q^(1−a) grows exponentially while p^a decays only polynomially"
        e = a * tp[1] - b * tq[1]
        return "" if e > 0 else f"the exponent −({e:g})·|x| does not decay"
    # q Gaussian
    if kp != "gauss":
        return "q^(1−a) grows like exp(c·x²) while p^a decays more slowly"
    d2 = a * tp[1] - b * tq[1]
    if d2 > 0:
        return ""
    if d2 < 0:
        return f"{a:g}/σ_{pn}² − {b:g}/σ_{qn}² = {2 * d2:.4g} < 0 for these two components"
    d1 = a * tp[2] - b * tq[2]
    return "" if d1 < 0 else f"{a:g}/σ_{pn}² = {b:g}/σ_{qn}² exactly, and the linear term does not decay"


def _chernoff_mvn(cp, cq, a, label, pname, qname):
    """2D Gaussian mixtures: for each p_i and each direction u, some q_j must make
    uᵀ(aΛ_i − (a−1)Λ_j)u > 0. Exact for one component each (A positive definite); for
    mixtures the directions are scanned (720 of them)."""
    b = a - 1.0
    th = torch.linspace(0, math.pi, 721, dtype=torch.float64)[:-1]
    U = torch.stack([torch.cos(th), torch.sin(th)], -1)  # (D, 2)
    for _, ci in cp:
        Li = torch.linalg.inv(ci.cov.detach().to(torch.float64))
        forms = []
        for _, cj in cq:
            Lj = torch.linalg.inv(cj.cov.detach().to(torch.float64))
            A = a * Li - b * Lj
            A = 0.5 * (A + A.T)
            if len(cq) == 1:
                ev = torch.linalg.eigvalsh(A)
                if bool((ev > 0).all()):
                    break
                return Verdict(INFINITE, f"{label} is infinite: a·Σp⁻¹ + (1−a)·Σq⁻¹ (a = {a:g}) is not positive "
                               f"definite (eigenvalues {ev[0]:.3g}, {ev[1]:.3g}), so ∫{pname}^{a:g}·{qname}^{1 - a:g} "
                               "diverges along its non-positive direction", "gaussian")
            forms.append(((U @ A) * U).sum(-1))
        if forms:
            best = torch.stack(forms).max(0).values
            if bool((best <= 0).any()):
                k = int(torch.argmin(best))
                return Verdict(INFINITE, f"{label} is infinite: along the direction at {float(th[k]) * 180 / math.pi:.1f}° "
                               f"every component of {qname} has tails too light for {pname}^{a:g}·{qname}^{1 - a:g} "
                               "to decay", "gaussian mixture")
    return _fin("Gaussian components: a·Σp_i⁻¹ + (1−a)·Σq_j⁻¹ positive definite where needed")


def _alpha_like(p, q, a, label):
    """∫p^a q^(1−a) finite? a > 1: as is; a < 0: swap (J_a(p, q) = J_(1−a)(q, p)); [0, 1]: finite."""
    if a > 1:
        return _chernoff(p, q, a, label)
    if a < 0:
        return _chernoff(q, p, 1.0 - a, label, pname="q", qname="p")
    return _fin("0 ≤ α ≤ 1: ∫p^α q^(1−α) ≤ 1 (Hölder)")


def _disjoint(p, q, label):
    rel = _support_relation(p, q)
    if rel is None:
        return None
    if not rel[2]:
        return Verdict(INFINITE, f"{label} is infinite: p and q do not overlap (disjoint supports)", "support")
    return None


# --------------------------------------------------------------------------- moments (transport)
def _moment_infinite(d, m):
    """A component of d without a finite m-th moment (description), '' if all have it, None unknown."""
    comps = _flat(d)
    if comps is None:
        return None
    for _, c in comps:
        if isinstance(c, StudentT):
            if _f(c.df) <= m:
                return _describe(c)
        elif not isinstance(c, (Normal, Laplace, Uniform, GridDensity, MultivariateNormal)) and c.dim == 1:
            return None
    return ""


def _transport(p, q, m, label):
    mp, mq = _moment_infinite(p, m), _moment_infinite(q, m)
    if mp is None or mq is None:
        return _unk("no moment rule for these distributions")
    if bool(mp) != bool(mq):
        who, c = ("p", mp) if mp else ("q", mq)
        return Verdict(INFINITE, f"{label} is infinite: {who} contains {c}, which has no finite moment of order {m:g}, "
                       "while the other side has one: no transport plan has finite cost", "moments")
    if mp and mq:
        return _unk("both sides lack the moment: finite only if their tails match (e.g. a pure shift)")
    return _fin(f"both sides have a finite moment of order {m:g}")


# --------------------------------------------------------------------------- front
def finiteness(spec, p, q, params: dict) -> Verdict:
    """Is ``spec``'s divergence D(p‖q) with ``params`` finite? See the module docstring."""
    from ..distributions import Distribution

    if not (isinstance(p, Distribution) and isinstance(q, Distribution)) or p.dim != q.dim:
        return _unk("not two distributions of one dimension")
    if p.batch_shape or q.batch_shape:
        return _unk("batched distributions are not decided here")
    if not (getattr(p, "has_density", True) and getattr(q, "has_density", True)):
        return _unk("point clouds: the samples decide")
    key = spec.key
    label = spec.label(**{k: v for k, v in params.items() if not callable(v)})
    try:
        return _decide(key, spec, p, q, params, label)
    except (RuntimeError, ValueError, TypeError, ZeroDivisionError, OverflowError) as exc:  # never block an estimate
        return _unk(f"the rule could not be evaluated ({type(exc).__name__})")


def _decide(key, spec, p, q, params, label):
    if key == "kl":
        return _kl(p, q, label)
    if key == "reverse_kl":
        return _kl(q, p, label, pname="q", qname="p")
    if key == "jeffreys":
        v = _kl(p, q, label)
        if v.infinite:
            return v
        w = _kl(q, p, label, pname="q", qname="p")
        return w if (w.infinite or w.unknown) else v
    if key in ("js", "hellinger", "tv"):
        return _fin("bounded divergence")
    if key == "skew_kl":
        if float(params["lam"]) == 0.0:
            return _kl(p, q, label)
        return _fin("skew KL with λ > 0 is at most −log λ")
    if key == "pearson":
        return _alpha_like(p, q, 2.0, label)
    if key == "neyman":
        return _alpha_like(p, q, -1.0, label)
    if key in ("alpha", "tsallis"):
        a = float(params["alpha"])
        if a == 1.0:
            return _kl(p, q, label)
        if a == 0.0:
            return _kl(q, p, label, pname="q", qname="p")
        return _alpha_like(p, q, a, label)
    if key == "renyi":
        a = float(params["alpha"])
        if a == 1.0:
            return _kl(p, q, label)
        if a < 1.0:
            return _disjoint(p, q, label) or _fin("α < 1: ∫p^α q^(1−α) ∈ (0, 1] when the supports overlap")
        return _alpha_like(p, q, a, label)
    if key in ("bhattacharyya", "cauchy_schwarz"):
        return _disjoint(p, q, label) or _fin("overlapping supports, bounded densities")
    if key == "f_divergence":
        return _generic_f(spec, p, q, params, label)
    if key in ("wasserstein", "sliced_wasserstein"):
        return _transport(p, q, float(params.get("order", 2)), label)
    if key == "sinkhorn":
        return _transport(p, q, 2.0, label)
    return _unk(f"no finiteness rule for {key!r}")


def _generic_f(spec, p, q, params, label):
    from .fdiv import generic_fdivergence

    fd = generic_fdivergence(params["f"], check=False)
    f0, fi = float(fd.f0()), float(fd.fprime_inf())
    rel = _support_relation(p, q)
    if rel is not None:
        if rel[0] is not None and math.isinf(fi):
            return Verdict(INFINITE, f"{label} is infinite: f'(∞) = ∞ and q = 0 where p > 0 ({rel[0]})", "support")
        if rel[1] is not None and math.isinf(f0):
            return Verdict(INFINITE, f"{label} is infinite: f(0) = ∞ and p = 0 where q > 0 ({rel[1]})", "support")
    if math.isfinite(f0) and math.isfinite(fi):
        return _fin("f(0) and f'(∞) finite: D_f ≤ f(0) + f'(∞)")
    return _unk("no tail rule for a user's f with an infinite limit")
