"""Theory figures: the generator f(u) and the gradient weight h(r) = r² f''(r) of f-divergences,
and h evaluated along x for a target p and a model q.

Every f here is the registry's normalized one (f(1) = f'(1) = 0). For D_f(p‖q) = E_q[f(p/q)],
the gradient with respect to the model's parameters is E_q[h(r)(∇log q − ∇log p)·∂x/∂θ] with
r = p/q: h says how much each region counts. Forward KL has h(r) = r (regions where p ≫ q pull
hardest: mass-covering); reverse KL has h ≡ 1 (every region of q counts alike, regions with no p
push q away: mode-seeking).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..distributions import Distribution
from .layout import legible
from .fit1d import TARGET_COLOR, TARGET_FILL, _density, color_for

__all__ = ["f_h_figure", "h_along_x_figure"]


def f_h_figure(curves: dict) -> go.Figure:
    """Two panels: f(u) for u in (0, u_max] and h(r) on a log-log scale. ``curves`` maps a label
    to ``{"key", "u", "f", "r", "h"}`` (numpy arrays; h may be None where f'' is not a function,
    e.g. total variation)."""
    if not curves:
        raise ValueError("f_h_figure(curves={}): choose at least one f-divergence")
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("generator f(u), u = p/q (normalized: f(1) = f'(1) = 0)",
                                        "gradient weight h(r) = r² f''(r), r = p/q"))
    for label, c in curves.items():
        color = color_for(c["key"])
        fig.add_trace(go.Scatter(x=c["u"], y=c["f"], mode="lines", name=label, legendgroup=label,
                                 line={"color": color, "width": 2},
                                 hovertemplate=f"{label}<br>u=%{{x:.3g}}, f(u)=%{{y:.4g}}<extra></extra>"), row=1, col=1)
        if c.get("h") is not None:
            fig.add_trace(go.Scatter(x=c["r"], y=c["h"], mode="lines", name=label, legendgroup=label, showlegend=False,
                                     line={"color": color, "width": 2},
                                     hovertemplate=f"{label}<br>r=%{{x:.3g}}, h(r)=%{{y:.4g}}<extra></extra>"),
                          row=1, col=2)
    fig.add_vline(x=1.0, line={"color": "#999", "dash": "dot", "width": 1}, row=1, col=1)
    fig.add_vline(x=1.0, line={"color": "#999", "dash": "dot", "width": 1}, row=1, col=2)
    fig.update_xaxes(title_text="u = p/q", row=1, col=1)
    fig.update_yaxes(title_text="f(u)", row=1, col=1)
    fig.update_xaxes(title_text="r = p/q (log)", type="log", row=1, col=2)
    fig.update_yaxes(title_text="h(r) (log)", type="log", row=1, col=2)
    fig.update_layout(template="plotly_white", height=420, margin={"l": 50, "r": 10, "t": 50, "b": 40},
                      legend={"orientation": "h", "y": -0.2})
    return legible(fig)


def h_along_x_figure(target: Distribution, model: Distribution, weights: dict, x: np.ndarray) -> go.Figure:
    """Top: the target p (shaded) and the model q along x. Bottom: each divergence's weight
    h(r(x)), r = p(x)/q(x) (log scale), where q has its mass (the gradient is an expectation under
    q). ``weights`` maps a label to ``(key, h values on x)``."""
    x = np.asarray(x, dtype=float)
    p, q = _density(target, x), _density(model, x)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.45, 0.55],
                        subplot_titles=("target p and model q", "h(r(x)), r = p(x)/q(x): how much x pulls on q"))
    fig.add_trace(go.Scatter(x=x, y=p, mode="lines", fill="tozeroy", name="target p", fillcolor=TARGET_FILL,
                             line={"color": TARGET_COLOR, "width": 1.5}), row=1, col=1)
    fig.add_trace(go.Scatter(x=x, y=q, mode="lines", name="model q", line={"color": "#444", "dash": "dash", "width": 2}),
                  row=1, col=1)
    for label, (key, h) in weights.items():
        h = np.asarray(h, dtype=float)
        y = [float(v) if np.isfinite(v) and v > 0 else None for v in h]
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=label, line={"color": color_for(key), "width": 2},
                                 hovertemplate=f"{label}<br>x=%{{x:.3g}}, h=%{{y:.4g}}<extra></extra>"), row=2, col=1)
    fig.update_yaxes(title_text="density", row=1, col=1)
    fig.update_yaxes(title_text="h(r(x)) (log)", type="log", row=2, col=1)
    fig.update_xaxes(title_text="x", row=2, col=1)
    fig.update_layout(template="plotly_white", height=560, margin={"l": 50, "r": 10, "t": 50, "b": 40})
    return legible(fig)
