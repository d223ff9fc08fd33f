"""How an estimate is written for a person: one rule for the CLI, the pages and the exports.

- ∞ (or −∞) with its reason, never NaN, never a huge finite number standing in for infinity;
- a finite value with its error bar (``± 0.0012``) only when the estimator says the bar holds;
- an unreliable estimate (Monte Carlo weights with Pareto k̂ > 0.7, a quadrature whose tails could
  not be bounded, an integral no rule decides) as ``0.213 (unreliable: <why>)``, with no error bar.
"""

from __future__ import annotations

import math

from .result import Estimate

__all__ = ["value_text", "error_text", "caveat"]


def _num(v: float, digits: int) -> str:
    if math.isnan(v):
        return "undefined"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    return f"{v:.{digits}g}"


def caveat(est: Estimate) -> str | None:
    """Why the estimate's error bar does not hold, in words; None when it does."""
    if math.isfinite(float(est)) and not est.reliable:
        return str(est.info.get("warning") or "the estimator says its error bar does not hold")
    return None


def value_text(est: Estimate, digits: int = 6, *, with_reason: bool = True) -> str:
    """``0.25934``, ``∞ (reason)``, or ``0.213 (unreliable: why)``."""
    v = float(est)
    text = _num(v, digits)
    if not math.isfinite(v):
        return text + (f" ({est.reason})" if with_reason and est.reason else "")
    why = caveat(est)
    if why:
        return f"{text} (unreliable: {why})" if with_reason else f"{text} (unreliable)"
    return text


def error_text(est: Estimate) -> str:
    """``± 0.0012`` style error (without the sign), ``unreliable``, or ``-`` (exact or infinite)."""
    v = float(est)
    if not math.isfinite(v):
        return "-"
    if caveat(est):
        return "unreliable"
    unc = est.uncertainty
    return f"{unc:.2g}" if unc else "-"
