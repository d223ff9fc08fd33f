"""Figures of the Transport page: Sinkhorn's gradient modes against a reference, the Monge gap
against ε, and maps drawn as arrows (with :func:`divlab.viz.arrows.add_map_arrows`, the arrows of
Fit 2D and Flows).

Colours come from the palette: one per gradient mode (``color_for("unrolled" | "envelope" |
"implicit")``), the transport map's (:data:`~divlab.viz.palette.MAP_COLOR`) for every map, optimal
or not (the panel titles and line styles say which), grey only for the target's sample. No
Streamlit here.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .arrows import add_map_arrows
from .layout import legible
from .palette import MAP_COLOR, TARGET_COLOR, color_for

__all__ = ["gradient_study_figure", "monge_gap_1d_figure", "map_comparison_figure",
           "MODE_LABELS", "ERROR_FLOOR"]

#: the gradient modes in words (legend entries)
MODE_LABELS = {"unrolled": "unrolled (autodiff through the loop)", "envelope": "envelope (Danskin)",
               "implicit": "implicit (implicit function theorem)"}
#: errors below this are drawn at it (float64 rounding; a log axis cannot show 0)
ERROR_FLOOR = 1e-16


def _np(v) -> np.ndarray:
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    return np.asarray(v, dtype=float)


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"


def _floor(v) -> float | None:
    if v is None or not math.isfinite(v):
        return None
    return max(float(v), ERROR_FLOOR)


#: the gradient-study panels: (row key, title)
_PANELS = [
    ("value_error", "value: |S_ε − S_ref| (squared units of x)"),
    ("grad_error", "∇ₓS_ε: relative error"),
    ("deps_error", "dS_ε/dε: relative error"),
    ("map_grad_error", "entropic map, ∇ₓD: relative error<br>(envelope dashed: potentials frozen)"),
    ("time", "time: forward + backward (s)"),
    ("saved_mib", "memory held for the backward (MiB)"),
]


def gradient_study_figure(study, *, height: int = 600) -> go.Figure:
    """Error against tolerance, log-log, one line per gradient mode (palette colours), for a
    :class:`~divlab.divergences.gradient_study.GradientStudy`: the value, ∇ₓS_ε, dS_ε/dε, the
    entropic map's gradient ∇ₓD (the envelope line there is the potentials-frozen derivative,
    dashed), the time (forward + backward) and the memory autograd holds for the backward. The
    tolerance axis runs from loose (left) to tight (right); errors below 1e-16 are drawn at 1e-16."""
    fig = make_subplots(rows=2, cols=3, subplot_titles=[t for _, t in _PANELS], horizontal_spacing=0.075,
                        vertical_spacing=0.16)
    modes = list(dict.fromkeys(r["mode"] for r in study.rows))
    for mode in modes:
        rows = sorted([r for r in study.rows if r["mode"] == mode], key=lambda r: -r["tol"])
        tol = [r["tol"] for r in rows]
        for k, (key, _) in enumerate(_PANELS):
            if key == "time":
                ys = [(r["forward_s"] or 0.0) + (r["backward_s"] or 0.0) for r in rows]
            elif key == "saved_mib":
                ys = [max(r["saved_mib"], 1e-3) for r in rows]
            else:
                ys = [_floor(r[key]) for r in rows]
            dash = "dash" if (key == "map_grad_error" and mode == "envelope") else "solid"
            label = MODE_LABELS.get(mode, mode)
            text = [f"{label}<br>tol {t:.0e}: {y:.3g}" + (f"<br>{r['status']}" if r["status"] != "converged" else "")
                    for t, y, r in zip(tol, ys, rows)]
            fig.add_trace(go.Scatter(x=tol, y=ys, mode="lines+markers", name=label, legendgroup=mode,
                                     showlegend=k == 0, line=dict(color=color_for(mode), width=2.2, dash=dash),
                                     marker=dict(size=6), hovertext=text, hoverinfo="text"),
                          row=k // 3 + 1, col=k % 3 + 1)
    tols = sorted({r["tol"] for r in study.rows}, reverse=True)
    for k in range(6):
        fig.update_xaxes(type="log", autorange="reversed", tickvals=tols, ticktext=[f"{t:.0e}" for t in tols],
                         title_text="solver tolerance (loose → tight)" if k >= 3 else None, row=k // 3 + 1,
                         col=k % 3 + 1)
        fig.update_yaxes(type="log", row=k // 3 + 1, col=k % 3 + 1)
    fig.update_layout(template="plotly_white", height=height, margin=dict(l=60, r=20, t=70, b=55),
                      legend=dict(orientation="h", x=0, y=1.1, xanchor="left", yanchor="bottom"),
                      font=dict(size=13))
    fig.update_annotations(font_size=13)
    return legible(fig)


def monge_gap_1d_figure(sweep: dict, *, height: int = 400) -> go.Figure:
    """The Monge gap M_ε against ε (log axis, ε decreasing to the right), one panel per map of a
    :func:`~divlab.divergences.map_study.monge_gap_sweep_1d` result, with the map's limit M₀
    (dashed) and its ε-bias band M₀ − ε log n ≤ M_ε ≤ M₀ (shaded). Every map is drawn in the
    palette's transport-map colour; the panel titles say which map."""
    maps = list(dict.fromkeys(r["map"] for r in sweep["rows"]))
    titles = [f"{label}: M₀ = {sweep['limits'][label]:.3g}" for label in maps]
    fig = make_subplots(rows=1, cols=len(maps), subplot_titles=titles, horizontal_spacing=0.1)
    for k, label in enumerate(maps, start=1):
        rows = sorted([r for r in sweep["rows"] if r["map"] == label], key=lambda r: -r["epsilon"])
        eps = [r["epsilon"] for r in rows]
        m0 = sweep["limits"][label]
        lower = [m0 - r["bias_bound"] for r in rows]
        first = k == 1
        fig.add_trace(go.Scatter(x=eps + eps[::-1], y=[m0] * len(eps) + lower[::-1], mode="lines", fill="toself",
                                 fillcolor=_rgba(MAP_COLOR, 0.12), line=dict(width=0), hoverinfo="skip",
                                 name="ε-bias band: M₀ − ε log n ≤ M_ε ≤ M₀", showlegend=first,
                                 legendgroup="band"), row=1, col=k)
        fig.add_trace(go.Scatter(x=[eps[0], eps[-1]], y=[m0, m0], mode="lines", name="limit M₀ (ε → 0)",
                                 line=dict(color=TARGET_COLOR, dash="dash", width=1.5), showlegend=first,
                                 legendgroup="limit", hoverinfo="skip"), row=1, col=k)
        fig.add_trace(go.Scatter(x=eps, y=[r["gap"] for r in rows], mode="lines+markers", name="Monge gap M_ε",
                                 legendgroup="gap", showlegend=first, line=dict(color=MAP_COLOR, width=2.4),
                                 marker=dict(size=7),
                                 hovertext=[f"{label}<br>ε = {r['epsilon']:g}: M_ε = {r['gap']:.4f}<br>"
                                            f"M₀ − ε log n = {r['limit'] - r['bias_bound']:.4f}" for r in rows],
                                 hoverinfo="text"), row=1, col=k)
        span = max(abs(m0), 1.0)
        lo = min(min(r["gap"] for r in rows), m0) - 0.25 * span
        fig.update_yaxes(range=[lo, m0 + 0.15 * span], row=1, col=k,
                         title_text="Monge gap M_ε (squared units of x)" if first else None)
        fig.update_xaxes(type="log", autorange="reversed", title_text="ε (squared units of x), decreasing →",
                         tickvals=eps, ticktext=[f"{e:g}" for e in eps], row=1, col=k)
    fig.update_layout(template="plotly_white", height=height, margin=dict(l=70, r=20, t=90, b=60),
                      legend=dict(orientation="h", x=0, y=1.14, xanchor="left", yanchor="bottom"), font=dict(size=13))
    fig.update_annotations(font_size=13)
    return legible(fig)


def map_comparison_figure(cmp: dict, *, panels: Sequence[str] = ("linear (triangular, not OT)", "entropic OT map T_ε",
                                                                 "closed-form OT map"),
                          height: int = 460, max_arrows: int = 100) -> go.Figure:
    """Side by side, each map of a :func:`~divlab.divergences.map_study.gaussian_map_comparison`
    result as arrows from the source sample (white dots) to its images, over the target's sample
    (grey), in the palette's transport-map colour; each title gives the map's Monge gap. At most
    ``max_arrows`` arrows per panel (evenly spaced indices; the gaps use every point)."""
    gaps = {r["map"]: r for r in cmp["rows"]}
    titles = [f"{p}<br>M_ε = {gaps[p]['gap']:.3f}" for p in panels]
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=titles, horizontal_spacing=0.06)
    x, y = _np(cmp["x"]), _np(cmp["y"])
    for k, label in enumerate(panels, start=1):
        first = k == 1
        fig.add_trace(go.Scatter(x=y[:, 0], y=y[:, 1], mode="markers", name="target sample y ~ p",
                                 marker=dict(color=TARGET_COLOR, size=4, opacity=0.45), showlegend=first,
                                 legendgroup="target", hoverinfo="skip"), row=1, col=k)
        add_map_arrows(fig, x, cmp["images"][label], name="map x → T(x)", row=1, col=k, max_arrows=max_arrows,
                       showlegend=first)
        fig.add_trace(go.Scatter(x=x[:, 0], y=x[:, 1], mode="markers", name="source sample x ~ q₀",
                                 marker=dict(color="#ffffff", size=5, line=dict(color="#000000", width=1)),
                                 showlegend=first, legendgroup="source", hoverinfo="skip"), row=1, col=k)
        fig.update_xaxes(title_text="x₁", row=1, col=k)
        fig.update_yaxes(title_text="x₂" if first else None, scaleanchor=f"x{'' if k == 1 else k}", scaleratio=1,
                         row=1, col=k)
    fig.update_layout(template="plotly_white", height=height, margin=dict(l=60, r=20, t=100, b=60),
                      legend=dict(orientation="h", x=0, y=1.2, xanchor="left", yanchor="bottom"), font=dict(size=13))
    fig.update_annotations(font_size=13)
    return legible(fig)
