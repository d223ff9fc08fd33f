"""The Calculator page: every divergence between p and q with its estimator, error bar and closed-form check."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..distributions import Distribution
from ..divergences.registry import DivergenceSpec, catalogue
from .state import (  # noqa: F401
    ComponentError,
    _component,
    _direction,
    parse_components,
)


# -- Calculator -----------------------------------------------------------------------------------

#: sample estimators run with this many samples on the Calculator (sinkhorn is opt-in: slow)
CALC_SAMPLES = 300

CALC_SLOW = ("sinkhorn",)

CALC_SKIP = ("f_divergence",)


def calculator_rows(p: Distribution, q: Distribution, *, include_slow: bool = False, n: int = CALC_SAMPLES,
                    seed: int = 0) -> list[dict]:
    """Every registry divergence between ``p`` (target) and ``q`` (model): its value (``unit``: the
    registry's unit of that divergence) with
    the estimator used and its error bar (quadrature: |I_h − I_2h|; samples/mc: standard error),
    and, where a closed form exists for the pair, an independent quadrature (or quantile, or
    sample) check with the absolute difference (``check_delta``; None without a check).
    Divergences that do not apply say why."""
    from ..divergences import catalogue, estimate
    from ..estimators.show import value_text

    rows = []
    for spec in catalogue():
        if spec.key in CALC_SKIP or (spec.key in CALC_SLOW and not include_slow):
            continue
        row = {"divergence": spec.name, "key": spec.key, "direction": _direction(spec), "unit": unit_of(spec)}
        try:
            est = estimate(p, q, spec.key, "auto", seed=seed, n=n if "samples" in spec.needs else None)
        except ValueError as exc:
            row.update({"value": "not applicable", "estimator": "", "± error": None,
                        "closed-form check": str(exc).split(": ", 1)[-1]})
            rows.append(row)
            continue
        v = float(est)
        err = max(float(est.stderr or 0.0), float(est.error or 0.0))
        row.update({"value": value_text(est),
                    "estimator": est.estimator, "± error": err if (math.isfinite(v) and est.reliable) else None,
                    "closed-form check": ""})
        row["number"] = v
        if est.estimator == "closed_form":
            row["closed-form check"], row["check_delta"] = _closed_form_check(p, q, spec, v, seed)
        rows.append(row)
    return rows


def unit_of(spec: DivergenceSpec) -> str:
    """The unit of a divergence's value, from the registry (:attr:`DivergenceSpec.unit`): nats
    for the log-based divergences, "dimensionless" for H², TV, χ², α and Tsallis, the units of x
    for transport distances (squared for Sinkhorn's S_ε), kernel units, squared score units."""
    return spec.unit


def _value_text(v: float, reason: str = "") -> str:
    if math.isinf(v):
        return ("∞" if v > 0 else "−∞") + (f" ({reason})" if reason else "")
    if math.isnan(v):
        return "undefined" + (f" ({reason})" if reason else "")
    return f"{v:.6g}"


def _closed_form_check(p, q, spec: DivergenceSpec, closed: float, seed: int) -> str:
    from ..divergences import estimate

    for other in ("quadrature", "quantile", "samples"):
        if other not in spec.estimators:
            continue
        try:
            chk = estimate(p, q, spec.key, other, seed=seed, n=1000 if other == "samples" else None)
        except ValueError:
            continue
        c = float(chk)
        if not (math.isfinite(c) and math.isfinite(closed)):
            same = c == closed
            return f"{other}: {_value_text(c, chk.reason or '')}" + (" (agrees)" if same else ""), (0.0 if same else None)
        bar = max(float(chk.stderr or 0.0), float(chk.error or 0.0))
        return f"{other} {c:.6g} (|Δ| = {abs(c - closed):.1e}" + (f", ±{bar:.1e})" if bar else ")"), abs(c - closed)
    return "no independent estimator", None


def mc_error_curve(p: Distribution, q: Distribution, key: str = "kl", sizes: Sequence[int] = (30, 100, 300, 1000, 3000),
                   seeds: int = 5) -> dict:
    """Monte Carlo estimator error against sample size: for each n, the mean |estimate − reference|
    over ``seeds`` seeds and the mean reported standard error; the reference is the closed form
    where one exists, else quadrature. ``ValueError`` when ``key`` has no mc estimator."""
    from ..divergences import estimate

    ref = estimate(p, q, key, "auto")
    refv = float(ref)
    out = {"key": key, "reference": refv, "reference_estimator": ref.estimator, "n": [], "abs_error": [], "stderr": []}
    for n in sizes:
        errs, ses = [], []
        for s in range(seeds):
            e = estimate(p, q, key, "mc", n=int(n), seed=s)
            errs.append(abs(float(e) - refv))
            ses.append(float(e.stderr))
        out["n"].append(int(n))
        out["abs_error"].append(float(np.mean(errs)))
        out["stderr"].append(float(np.mean(ses)))
    return out


def simple_spec(family: str, loc: float, scale: float, df: float | None = None) -> dict:
    """The spec of one Normal / Laplace / Student-t / Uniform(loc ± scale) (Calculator's q)."""
    rows = parse_components([{"weight": 1.0, "family": family, "loc": loc, "scale": scale, "df": df}])
    try:
        return _component(rows[0]).to_spec()
    except ComponentError:
        raise
    except ValueError as exc:  # the distribution's own bounds (magnitude, smallest scale)
        raise ComponentError(f"row 1: {exc}") from None


def mc_keys() -> list[str]:
    """Divergences with a Monte Carlo ('mc') estimator (Calculator's error-vs-n plot); not the
    generic f-divergence, which needs a user's f that the page does not take."""
    return [s.key for s in catalogue() if "mc" in s.estimators and not any(p.kind == "callable" for p in s.params)]
