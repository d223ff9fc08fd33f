"""The density divergences: one registry entry each (definitions as in DESIGN.md).

Where a definition differs from TFP, POT, GeomLoss or scipy (JS and H² are half of TFP's,
Jeffreys twice, the Amari α in Minka's convention, the Tsallis index passed as ``alpha``, Rényi's
argument order), docs/conventions.md gives the conversion.
"""

from __future__ import annotations

import math
from functools import partial

import torch

from .fdiv import FDIVS, f_from_logs, generic_fdivergence
from .logint import (bhattacharyya_from_logs, bhattacharyya_grad_from_logs, cs_from_logs, renyi_from_logs,
                     renyi_grad_from_logs)
from .registry import DIMENSIONLESS, NATS, DivergenceSpec, Param, register

LN2 = math.log(2.0)
_UNDERFLOW = -745.0  # exp(x) == 0 in float64 below this
PQ = "p is the target, q the model"


def _fd(key):
    fd = FDIVS[key]
    return partial(f_from_logs, fd)


ALPHA = Param("alpha", 0.5, -2.0, 3.0, label="α",
              description="α → 1: KL(p‖q) (mass-covering); α → 0: KL(q‖p) (mode-seeking); α = ½: 4·H²")

register(DivergenceSpec(
    key="kl", name="KL(p‖q), forward", latex=r"\mathrm{KL}(p\|q)=\int p\log\frac{p}{q}",
    unit=NATS,
    family="f-divergence", behaviour="mass-covering", symmetric=False,
    direction=f"forward KL(p‖q): expectation under the target p ({PQ})",
    description="Kullback–Leibler divergence, forward direction. Infinite when q = 0 where p > 0.",
    from_logs=_fd("kl"), fdiv=FDIVS["kl"],
    look_for="q stretches to put mass wherever p has any: it covers every mode, even if that puts "
             "mass between them. For a Normal model it matches p's mean and variance."))

register(DivergenceSpec(
    key="reverse_kl", name="KL(q‖p), reverse", latex=r"\mathrm{KL}(q\|p)=\int q\log\frac{q}{p}",
    unit=NATS,
    family="f-divergence", behaviour="mode-seeking", symmetric=False,
    direction=f"reverse KL(q‖p): expectation under the model q ({PQ})",
    description="Kullback–Leibler divergence, reverse direction (the variational-inference objective). "
                "Infinite when p = 0 where q > 0.",
    from_logs=_fd("reverse_kl"), fdiv=FDIVS["reverse_kl"],
    look_for="q avoids regions where p is small: it locks onto one mode and ignores the others. "
             "Which mode depends on where it starts."))

register(DivergenceSpec(
    key="jeffreys", name="Jeffreys (symmetric KL)", latex=r"J(p,q)=\mathrm{KL}(p\|q)+\mathrm{KL}(q\|p)",
    unit=NATS,
    family="f-divergence", behaviour="mass-covering", symmetric=True,
    direction=f"KL(p‖q) + KL(q‖p), symmetric ({PQ})",
    description="Sum of both KL directions. Infinite if either support is not contained in the other. Conventions vs TFP/scipy: docs/conventions.md.",
    from_logs=_fd("jeffreys"), fdiv=FDIVS["jeffreys"],
    look_for="The forward term dominates for a narrow q: the fit covers the modes, a little tighter than KL(p‖q)."))

register(DivergenceSpec(
    key="js", name="Jensen–Shannon", latex=r"\mathrm{JS}=\tfrac12\mathrm{KL}(p\|m)+\tfrac12\mathrm{KL}(q\|m),\ m=\tfrac{p+q}{2}",
    unit=NATS,
    family="f-divergence", behaviour="balanced", symmetric=True, value_range=(0.0, LN2),
    direction=f"JS(p, q), symmetric, in [0, ln 2] ({PQ})",
    description="Jensen–Shannon divergence; bounded by ln 2, reached for disjoint supports (where its gradient vanishes). Conventions vs TFP/scipy: docs/conventions.md.",
    from_logs=_fd("js"), fdiv=FDIVS["js"],
    look_for="Between the two KLs: often sits on the larger mode and under-weights the other. With barely "
             "overlapping supports it saturates at ln 2 and gives no gradient."))

register(DivergenceSpec(
    key="hellinger", name="Hellinger² (squared)", latex=r"H^2=1-\int\sqrt{pq}",
    unit=DIMENSIONLESS,
    family="f-divergence", behaviour="balanced", symmetric=True, value_range=(0.0, 1.0),
    direction=f"H²(p, q) = 1 − ∫√(pq), symmetric, in [0, 1] ({PQ})",
    description="Squared Hellinger distance; equals ¼ of the α-divergence at α = ½. Conventions vs TFP/scipy: docs/conventions.md.",
    from_logs=_fd("hellinger"), fdiv=FDIVS["hellinger"],
    look_for="Halfway between forward and reverse KL (α = ½): covers a second mode only if it is close enough."))

register(DivergenceSpec(
    key="tv", name="Total variation", latex=r"\mathrm{TV}=\tfrac12\int|p-q|",
    unit=DIMENSIONLESS,
    family="f-divergence", behaviour="balanced", symmetric=True, value_range=(0.0, 1.0),
    direction=f"TV(p, q), symmetric, in [0, 1] ({PQ})",
    description="Total variation distance; bounded by 1 (disjoint supports). Its f is not smooth at u = 1.",
    from_logs=_fd("tv"), fdiv=FDIVS["tv"],
    look_for="Counts mass mismatches without weighting them: robust, but its gradient is piecewise and can stall."))

register(DivergenceSpec(
    key="pearson", name="Pearson χ²(p‖q)", latex=r"\chi^2(p\|q)=\int\frac{(p-q)^2}{q}",
    unit=DIMENSIONLESS,
    family="f-divergence", behaviour="mass-covering", symmetric=False,
    direction=f"χ²(p‖q), divides by the model q ({PQ})",
    description="Pearson chi-square; strongly mass-covering (weight h(r) = 2r²). Infinite when q has lighter tails than p/√2. Conventions vs TFP/scipy: docs/conventions.md.",
    from_logs=_fd("pearson"), fdiv=FDIVS["pearson"],
    look_for="Even more mass-covering than forward KL: q becomes wide to avoid small q under p's tails."))

register(DivergenceSpec(
    key="neyman", name="Neyman χ²(q‖p)", latex=r"\chi^2(q\|p)=\int\frac{(q-p)^2}{p}",
    unit=DIMENSIONLESS,
    family="f-divergence", behaviour="mode-seeking", symmetric=False,
    direction=f"χ²(q‖p), divides by the target p ({PQ})",
    description="Neyman chi-square; strongly mode-seeking (weight h(r) = 2/r). Conventions vs TFP/scipy: docs/conventions.md.",
    from_logs=_fd("neyman"), fdiv=FDIVS["neyman"],
    look_for="More mode-seeking than reverse KL: q shrinks into a single mode."))

register(DivergenceSpec(
    key="alpha", name="α-divergence (Amari)", latex=r"D_\alpha=\frac{1-\int p^\alpha q^{1-\alpha}}{\alpha(1-\alpha)}",
    unit=DIMENSIONLESS,
    family="f-divergence", behaviour="depends on parameter", symmetric=False, params=(ALPHA,),
    direction=f"D_α(p‖q), Minka's convention: α → 1 is KL(p‖q), α → 0 is KL(q‖p) ({PQ})",
    description="Amari α-divergence; interpolates from mode-seeking (α ≤ 0) to mass-covering (α ≥ 1). h(r) = r^α. Conventions vs TFP/scipy: docs/conventions.md.",
    from_logs=_fd("alpha"), fdiv=FDIVS["alpha"],
    look_for="Slide α: small α locks onto one mode (like reverse KL), large α spreads over all of them (like forward KL)."))

register(DivergenceSpec(
    key="skew_kl", name="Skew KL", latex=r"\mathrm{KL}(p\|\lambda p+(1-\lambda)q)",
    unit=NATS,
    family="f-divergence", behaviour="mass-covering", symmetric=False,
    params=(Param("lam", 0.5, 0.0, 1.0, high_open=True, label="λ",
                  description="λ = 0: KL(p‖q); λ → 1: the divergence vanishes"),),
    direction=f"KL(p‖λp + (1−λ)q): forward KL against a blend of target and model ({PQ})",
    description="Skew (λ-) KL divergence; finite for any q when λ > 0, so it tolerates disjoint supports. Conventions vs TFP/scipy: docs/conventions.md.",
    from_logs=_fd("skew_kl"), fdiv=FDIVS["skew_kl"],
    look_for="A forward KL that stays finite: mass-covering, softened as λ grows."))

register(DivergenceSpec(
    key="tsallis", name="Tsallis relative entropy", latex=r"D^T_q=\frac{\int p^q q^{1-q}-1}{q-1}",
    unit=DIMENSIONLESS,
    family="f-divergence", behaviour="depends on parameter", symmetric=False,
    params=(Param("alpha", 0.5, 0.0, 3.0, low_open=True, label="q (entropic index)",
                  description="The entropic index (called q in the literature; 'alpha' here so it does not clash "
                              "with the model q). q → 1 gives KL(p‖q); equals q · D_α (Amari) at α = q."),),
    direction=f"Tsallis D_q(p‖q) with entropic index q → 1 giving KL(p‖q) ({PQ})",
    description="Tsallis relative entropy; a rescaled α-divergence (index · D_α). Conventions vs TFP/scipy: docs/conventions.md.",
    from_logs=_fd("tsallis"), fdiv=FDIVS["tsallis"],
    look_for="Behaves like the α-divergence of the same index, scaled."))

register(DivergenceSpec(
    key="renyi", name="Rényi divergence", latex=r"D^R_\alpha=\frac{1}{\alpha-1}\log\int p^\alpha q^{1-\alpha}",
    unit=NATS,
    family="renyi", behaviour="depends on parameter", symmetric=False,
    params=(Param("alpha", 0.5, 0.0, 10.0, low_open=True, label="α",
                  description="α → 1: KL(p‖q); α → 0: −log Q(p > 0) (support); α = ½: 2·Bhattacharyya"),),
    direction=f"D_α(p‖q), α → 1 is KL(p‖q) ({PQ})",
    description="Rényi divergence of order α; non-decreasing in α. Not an f-divergence (a log of one). Conventions vs TFP/scipy: docs/conventions.md.",
    from_logs=renyi_from_logs, grad_from_logs=renyi_grad_from_logs,
    look_for="Small α tolerates q missing parts of p; large α punishes it harder: the fit widens as α grows."))

register(DivergenceSpec(
    key="bhattacharyya", name="Bhattacharyya distance", latex=r"D_B=-\log\int\sqrt{pq}",
    unit=NATS,
    family="bhattacharyya", behaviour="balanced", symmetric=True,
    direction=f"D_B(p, q), symmetric ({PQ})",
    description="Bhattacharyya distance, −log of the Bhattacharyya coefficient; equals ½ · Rényi at α = ½. "
                "Infinite for disjoint supports.",
    from_logs=bhattacharyya_from_logs, grad_from_logs=bhattacharyya_grad_from_logs,
    look_for="A log-scale Hellinger: same optimum as H², but it grows without bound as overlap vanishes."))

register(DivergenceSpec(
    key="cauchy_schwarz", name="Cauchy–Schwarz", latex=r"D_{CS}=-\log\frac{\int pq}{\sqrt{\int p^2\int q^2}}",
    unit=NATS,
    family="cauchy-schwarz", behaviour="mode-seeking", symmetric=True,
    direction=f"D_CS(p, q), symmetric, scale-invariant ({PQ})",
    description="Cauchy–Schwarz divergence; closed form for Gaussian mixtures. Infinite for disjoint supports.",
    from_logs=cs_from_logs,
    look_for="Rewards overlap with the densest part of p: a narrow q sits on the highest mode."))


def _generic_from_logs(lp, lq, w, f, f0=None, fprime_inf=None):
    fd = generic_fdivergence(f, f0=f0, fprime_inf=fprime_inf, check=False)
    # where both densities underflow to 0, q·f(p/q) is 0·f(0/0): leave those nodes out (a user's f
    # cannot be evaluated in log space, and their contribution is below the smallest double)
    lp, lq = torch.broadcast_tensors(lp, lq)
    both0 = (lp < _UNDERFLOW) & (lq < _UNDERFLOW)
    if bool(both0.any()):
        lp = torch.where(both0, torch.full_like(lp, -math.inf), lp)
        lq = torch.where(both0, torch.full_like(lq, -math.inf), lq)
    return f_from_logs(fd, lp, lq, w)


register(DivergenceSpec(
    key="f_divergence", name="f-divergence (your f)", latex=r"D_f(p\|q)=\int q\,f\!\left(\frac{p}{q}\right)",
    unit=DIMENSIONLESS,
    family="f-divergence", behaviour="depends on parameter", symmetric=False,
    params=(Param("f", None, label="f", description="a convex torch function of u with f(1) = 0", kind="callable"),),
    direction=f"D_f(p‖q) = E_q[f(p/q)] ({PQ})",
    description="A generic f-divergence from any convex f with f(1) = 0; limits f(0) and f'(∞) are taken numerically.",
    from_logs=_generic_from_logs,
    look_for="Its gradient weight h(r) = r² f''(r) tells you: growing in r → mass-covering, decaying → mode-seeking."))
