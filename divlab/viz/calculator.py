"""Calculator figures: the pair (p, q) and a Monte Carlo estimator's error against sample size."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..distributions import Distribution
from ..divergences.registry import get as get_spec
from ..divergences.registry import unit_label
from .layout import legible
from .fit1d import TARGET_COLOR, TARGET_FILL, _density

__all__ = ["pair_figure", "error_curve_figure"]


def pair_figure(p: Distribution, q: Distribution, n: int = 400) -> go.Figure:
    """The target p (shaded) and the model q on one axis covering both."""
    if p.dim != 1 or q.dim != 1:
        raise ValueError(f"pair_figure: needs 1D distributions (got {p.dim}D and {q.dim}D)")
    bp, bq = p.bounds().detach().cpu().numpy(), q.bounds().detach().cpu().numpy()
    x = np.linspace(min(bp[0, 0], bq[0, 0]), max(bp[0, 1], bq[0, 1]), n)
    fig = go.Figure([
        go.Scatter(x=x, y=_density(p, x), mode="lines", fill="tozeroy", name="target p", fillcolor=TARGET_FILL,
                   line={"color": TARGET_COLOR, "width": 1.5}),
        go.Scatter(x=x, y=_density(q, x), mode="lines", name="model q", line={"color": "#d62728", "width": 2}),
    ])
    fig.update_layout(template="plotly_white", height=260, margin={"l": 40, "r": 10, "t": 10, "b": 40},
                      xaxis_title="x", yaxis_title="density")
    return legible(fig)


def error_curve_figure(curve: dict) -> go.Figure:
    """Mean |estimate − reference| against n (log-log) with the mean reported standard error and
    the 1/√n slope through the first point. ``curve`` from ``app_support.mc_error_curve``."""
    n = np.asarray(curve["n"], dtype=float)
    err = np.asarray(curve["abs_error"], dtype=float)
    se = np.asarray(curve["stderr"], dtype=float)
    unit = unit_label(get_spec(curve["key"]).unit) if curve.get("key") else ""  # the curve's divergence's unit
    u = f" ({unit})" if unit else ""
    fig = go.Figure([
        go.Scatter(x=n, y=err, mode="lines+markers", name=f"mean |estimate − reference|{u}",
                   line={"color": "#1f77b4"}),
        go.Scatter(x=n, y=se, mode="lines+markers", name=f"mean reported standard error{u}",
                   line={"color": "#ff7f0e", "dash": "dash"}),
    ])
    if len(n) and se[0] > 0:
        fig.add_trace(go.Scatter(x=n, y=se[0] * np.sqrt(n[0] / n), mode="lines", name="∝ 1/√n",
                                 line={"color": "#999", "dash": "dot"}))
    fig.update_layout(template="plotly_white", height=340, margin={"l": 50, "r": 10, "t": 10, "b": 40},
                      xaxis={"type": "log", "title": "samples n"}, yaxis={"type": "log", "title": f"error{u}"},
                      legend={"orientation": "h", "y": -0.25})
    return legible(fig)
