"""The Families page: the α / Rényi / skew-KL / Tsallis sweeps and the phase diagram."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..fit import FitResult
from .state import (  # noqa: F401
    format_result,
)


#: the parameterized families of the Families page: key -> (parameter, symbol, sweep values)
FAMILY_SWEEPS = {
    "alpha": ("alpha", "α", [round(v, 3) for v in np.linspace(-0.5, 1.5, 21)]),
    "renyi": ("alpha", "α", [round(v, 3) for v in np.linspace(0.1, 3.0, 21)]),
    "skew_kl": ("lam", "λ", [round(v, 3) for v in np.linspace(0.0, 0.95, 20)]),
    "tsallis": ("alpha", "q", [round(v, 3) for v in np.linspace(0.1, 2.0, 20)]),
}


def family_sweep(target_spec: dict, key: str, init: dict, steps: int, values: Sequence[float] | None = None):
    """One warm-started ``dl.sweep`` of ``key``'s parameter over its values (Families page)."""
    from ..distributions import from_spec
    from ..fit import sweep

    if key not in FAMILY_SWEEPS:
        raise ValueError(f"family_sweep(key={key!r}): key must be one of {', '.join(FAMILY_SWEEPS)}")
    param, _, default_values = FAMILY_SWEEPS[key]
    vals = list(default_values if values is None else values)
    init = {k: float(init[k]) for k in ("loc", "scale") if k in init} or None
    return list(sweep(from_spec(target_spec), "normal", key, param=param, values=vals, init=init, steps=int(steps)))


def sweep_rows(results: Sequence[FitResult], param: str, symbol: str) -> list[dict]:
    return [{symbol: float(r.divergence_params[param]), "loc": float(r.params["loc"]),
             "scale": float(r.params["scale"]), "final value": format_result(r),
             "status": r.status} for r in results]


def two_modes_spec(separation: float, scale: float = 1.0) -> dict:
    """Two equal Normal modes at ±separation/2 (the Landscape page's bifurcation target)."""
    s = float(separation)
    if not math.isfinite(s) or s < 0:
        raise ValueError(f"separation must be a finite number >= 0, got {separation!r}")
    return {"type": "mixture", "weights": [0.5, 0.5],
            "components": [{"type": "normal", "loc": -s / 2, "scale": scale},
                           {"type": "normal", "loc": s / 2, "scale": scale}]}

#: half-separations d of the phase diagram's target 0.5·N(−d, 1) + 0.5·N(d, 1)
PHASE_SEPARATIONS = tuple(round(float(v), 3) for v in np.linspace(0.5, 4.0, 8))


def phase_view(key: str, values: Sequence[float], separations: Sequence[float] = PHASE_SEPARATIONS, *,
               steps: int = 150, restarts: int = 6, progress=None) -> dict:
    """Covering vs mode-seeking for each parameter value of ``key`` (rows) and half-separation d
    of 0.5·N(−d, 1) + 0.5·N(d, 1) (columns), from ``dl.phase_diagram`` (continuation in d with the
    switch refined by bisection). ``progress(i, n)`` is called before each value. Returns
    ``covers`` (bool rows), ``critical`` (switch d per value or None), ``loc``, ``scale``,
    ``modes_covered`` and the labels."""
    from ..fit.continuation import phase_diagram

    if key not in FAMILY_SWEEPS:
        raise ValueError(f"phase_view(key={key!r}): key must be one of {', '.join(FAMILY_SWEEPS)}")
    param, symbol, _ = FAMILY_SWEEPS[key]
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("phase_view(values=[]): pick at least one parameter value")
    rows = {"covers": [], "critical": [], "loc": [], "scale": [], "modes_covered": []}
    for i, v in enumerate(vals):
        if progress is not None:
            progress(i, len(vals))
        pdg = phase_diagram([key], list(separations), params={param: v}, restarts=restarts, steps=steps,
                            refine_tol=1e-2)
        rows["covers"].append([bool(c) for c in pdg.covers[0]])
        rows["critical"].append(pdg.critical[key])
        rows["loc"].append(pdg.loc[0].tolist())
        rows["scale"].append(pdg.scale[0].tolist())
        rows["modes_covered"].append(pdg.modes_covered[0].tolist())
    return {"key": key, "param": param, "symbol": symbol, "values": vals, "separations": [float(d) for d in separations],
            **rows}


def phase_rows(view: dict) -> list[dict]:
    """One row per parameter value of a phase view: the switch separation (or "never in range")."""
    sym = view["symbol"]
    return [{sym: v, "switch to one mode at d": (f"{c:.3f}" if c is not None else "never in range"),
             "covers both at smallest d": row[0], "covers both at largest d": row[-1]}
            for v, c, row in zip(view["values"], view["critical"], view["covers"])]
