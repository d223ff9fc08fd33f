"""Figures over discrete outcomes: teacher/student bars, the alignment frontier, the KL-estimator zoo.

Same conventions as the other figures: the target p in grey (:data:`TARGET_COLOR`), one colour
per divergence (:func:`color_for`), every axis with its unit. A Categorical with many outcomes
is drawn as its ``top`` most probable outcomes (by the target) plus one bar "rest" holding the
mass of all the others, so a 50 000-token teacher stays readable.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .palette import TARGET_COLOR, TARGET_FILL, color_for, extra_colors

__all__ = ["categorical_bars", "students_figure", "students_loss_figure", "frontier_figure", "estimator_figure", "categorical_thumbnail",
           "top_outcomes", "TOP"]

#: outcomes drawn before the rest are pooled into one bar
TOP = 30
REST = "rest"


def _probs(d) -> np.ndarray:
    return d.probs.detach().cpu().double().numpy().reshape(-1)


def top_outcomes(p: np.ndarray, top: int = TOP) -> np.ndarray:
    """Indices of the ``top`` most probable outcomes of ``p``, in outcome order (all of them when
    K ≤ top + 1)."""
    K = p.size
    if K <= top + 1:
        return np.arange(K)
    return np.sort(np.argsort(-p, kind="stable")[:top])


def _pooled(q: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """q on the outcomes ``idx``, then (if any outcome is left out) the mass of the rest."""
    if idx.size == q.size:
        return q[idx]
    return np.concatenate([q[idx], [max(0.0, 1.0 - float(q[idx].sum()))]])


def _xlabels(target, idx: np.ndarray) -> list[str]:
    labs = target.label_list()
    out = [str(labs[i]) for i in idx]
    if idx.size < target.K:
        out.append(f"{REST} ({target.K - idx.size})")
    return out


def categorical_bars(target, models: dict | None = None, top: int = TOP, title: str = "",
                     height: int = 360) -> go.Figure:
    """Target p (grey bars) and any models {name: (Categorical or probs, colour)} as grouped bars."""
    p = _probs(target)
    idx = top_outcomes(p, top)
    x = _xlabels(target, idx)
    fig = go.Figure(go.Bar(x=x, y=_pooled(p, idx), name="target p", marker={"color": TARGET_FILL,
                           "line": {"color": TARGET_COLOR, "width": 1}}))
    for name, (m, col) in (models or {}).items():
        q = m if isinstance(m, np.ndarray) else _probs(m)
        fig.add_trace(go.Bar(x=x, y=_pooled(q, idx), name=name, marker={"color": col}))
    fig.update_layout(template="plotly_white", barmode="group", height=height, title=title or None,
                      xaxis={"title": "outcome", "type": "category"}, yaxis={"title": "probability"},
                      legend={"orientation": "h", "y": -0.25}, margin={"l": 50, "r": 10, "t": 40 if title else 10, "b": 10})
    return fig


def categorical_thumbnail(target, height: int = 150) -> go.Figure:
    """A lesson thumbnail: the target's bars (top outcomes, the rest pooled), no legend."""
    fig = categorical_bars(target, top=20, height=height)
    fig.update_layout(showlegend=False, margin={"l": 5, "r": 5, "t": 5, "b": 20},
                      yaxis={"visible": False, "title": None}, xaxis={"title": None, "tickfont": {"size": 8}})
    return fig


def _frame_of(r, step: float) -> np.ndarray:
    steps = np.asarray(r.trajectory["step"], dtype=float)
    j = int(np.searchsorted(steps, step, side="right") - 1)
    return np.asarray(r.trajectory["probs"][max(j, 0)], dtype=float)


def students_figure(target, results, top: int = TOP, height: int = 480, animate: bool = True) -> go.Figure:
    """The fitted students per divergence (one colour each) against the teacher p (grey bars),
    animated over the recorded frames of the fits (Play and a step slider below the bars), the
    final students shown when it stops. The losses are :func:`students_loss_figure`."""
    results = list(results)
    if not results:
        raise ValueError("students_figure: no results to draw")
    p = _probs(target)
    idx = top_outcomes(p, top)
    x = _xlabels(target, idx)
    fig = go.Figure(go.Bar(x=x, y=_pooled(p, idx), name="target p", marker={"color": TARGET_FILL,
                           "line": {"color": TARGET_COLOR, "width": 1}}))
    for r in results:
        fig.add_trace(go.Bar(x=x, y=_pooled(np.asarray(r.probs), idx), name=r.label,
                             marker={"color": color_for(r.divergence)}))
    ymax = 1.1 * max(float(np.max(_pooled(p, idx))),
                     max(float(np.max(_pooled(np.asarray(q), idx))) for r in results for q in r.trajectory["probs"]))
    fig.update_layout(template="plotly_white", barmode="group", height=height,
                      xaxis={"type": "category", "tickangle": -45, "automargin": False},
                      yaxis={"title": "probability", "range": [0, ymax]},
                      legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
                      margin={"l": 60, "r": 10, "t": 40, "b": 170})
    steps = sorted({float(s) for r in results for s in r.trajectory["step"]})
    if animate and len(steps) > 1:
        bars = list(range(1, 1 + len(results)))
        fig.frames = [go.Frame(name=f"{s:g}", traces=bars,
                               data=[go.Bar(y=_pooled(_frame_of(r, s), idx)) for r in results]) for s in steps]
        fig.update_layout(
            updatemenus=[{"type": "buttons", "showactive": False, "x": 0.0, "y": 0, "xanchor": "left",
                          "yanchor": "top", "pad": {"t": 105},
                          "buttons": [{"label": "▶ Play", "method": "animate",
                                       "args": [None, {"frame": {"duration": 60, "redraw": True},
                                                       "fromcurrent": False, "transition": {"duration": 0}}]},
                                      {"label": "❚❚ Pause", "method": "animate",
                                       "args": [[None], {"mode": "immediate", "frame": {"duration": 0, "redraw": False},
                                                         "transition": {"duration": 0}}]}]}],
            sliders=[{"active": len(steps) - 1, "x": 0.2, "y": 0, "yanchor": "top", "len": 0.8, "pad": {"t": 95},
                      "currentvalue": {"prefix": "step "},
                      "steps": [{"label": f"{s:g}", "method": "animate",
                                 "args": [[f"{s:g}"], {"mode": "immediate", "frame": {"duration": 0, "redraw": True},
                                                       "transition": {"duration": 0}}]} for s in steps]}])
    return fig


def students_loss_figure(results, height: int = 260) -> go.Figure:
    """D(p‖q) of each student along its fit (exact sums, log scale), one colour per divergence."""
    fig = go.Figure()
    for r in results:
        losses = np.asarray(r.losses, dtype=float)
        y = np.where(np.isfinite(losses), np.maximum(losses, 1e-16), np.nan)
        fig.add_trace(go.Scatter(x=np.arange(y.size), y=y, mode="lines", name=r.label,
                                 line={"color": color_for(r.divergence), "width": 2}))
    fig.update_layout(template="plotly_white", height=height, xaxis={"title": "step"},
                      yaxis={"title": "D(p‖q) (its unit)", "type": "log"}, showlegend=False,
                      margin={"l": 60, "r": 10, "t": 10, "b": 40})
    return fig


def frontier_figure(fr, height: int = 420) -> go.Figure:
    """Expected reward against KL(π‖π_ref) [nats]: the tilt's curve over β (the optimum), best-of-n
    at its exact KL (filled) and at the quoted log n − (n−1)/n (hollow), joined per n."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=fr.tilt_kl, y=fr.tilt_reward, mode="lines", name="tilt π_ref·exp(r/β)/Z (optimal)",
                             line={"color": color_for("reverse_kl"), "width": 2.5},
                             customdata=np.asarray(fr.betas), hovertemplate="β=%{customdata:.3g}<br>KL=%{x:.4g} nats"
                                                                            "<br>reward=%{y:.4g}<extra></extra>"))
    for n, ke, kf, rw in zip(fr.ns, fr.bon_kl, fr.bon_formula, fr.bon_reward):
        fig.add_trace(go.Scatter(x=[ke, kf], y=[rw, rw], mode="lines", showlegend=False, hoverinfo="skip",
                                 line={"color": color_for("kl"), "dash": "dot", "width": 1}))
    fig.add_trace(go.Scatter(x=fr.bon_kl, y=fr.bon_reward, mode="markers+text", name="best-of-n, exact KL",
                             text=[f"n={int(n)}" for n in fr.ns], textposition="bottom right",
                             marker={"color": color_for("kl"), "size": 9}))
    fig.add_trace(go.Scatter(x=fr.bon_formula, y=fr.bon_reward, mode="markers", name="best-of-n at log n − (n−1)/n",
                             marker={"color": color_for("kl"), "size": 9, "symbol": "circle-open", "line": {"width": 2}}))
    xmax = max(float(np.max(fr.bon_formula)), float(np.max(fr.bon_kl))) * 1.15 + 0.05
    fig.update_layout(template="plotly_white", height=height, xaxis={"title": "KL(π‖π_ref) [nats]", "range": [0, xmax]},
                      yaxis={"title": "expected reward E_π[r]"}, legend={"orientation": "h", "y": -0.2},
                      margin={"l": 60, "r": 10, "t": 10, "b": 10})
    return fig


def estimator_figure(zoo, labels=None, height: int = 440) -> go.Figure:
    """Left: each estimator's mean ± one standard deviation, exact (bars) and simulated (markers),
    against KL(π‖π_ref). Right: the expected gradient each gives as a loss (w.r.t. π's logits),
    exact (lines) and simulated (markers), against ∇KL(π‖π_ref) and ∇KL(π_ref‖π)."""
    keys = ("k1", "k2", "k3")
    # k2 descends reverse KL and k3 forward KL: their colours; k1 (gradient 0) one of the palette's spares
    # (grey is the target's alone)
    cols = {"k1": extra_colors()[0], "k2": color_for("reverse_kl"), "k3": color_for("kl")}
    fig = make_subplots(rows=1, cols=2, column_widths=[0.35, 0.65], horizontal_spacing=0.12,
                        subplot_titles=("mean ± sd per sample [nats]", "expected gradient of the loss, per logit"))
    fig.add_trace(go.Bar(x=list(keys), y=[zoo.mean[k] for k in keys], name="exact mean",
                         marker={"color": [cols[k] for k in keys]},
                         error_y={"type": "data", "array": [math.sqrt(zoo.var[k]) for k in keys]}), row=1, col=1)
    fig.add_trace(go.Scatter(x=list(keys), y=[zoo.mc_mean[k] for k in keys], mode="markers",
                             name=f"simulated mean ({zoo.n} draws)", marker={"color": "black", "symbol": "x", "size": 10},
                             error_y={"type": "data", "array": [2 * zoo.mc_se[k] for k in keys]}), row=1, col=1)
    fig.add_hline(y=zoo.kl, line={"color": "black", "dash": "dash"}, row=1, col=1,
                  annotation_text=f"KL(π‖π_ref) = {zoo.kl:.4g}", annotation_position="top left")
    K = len(zoo.grad_of_kl)
    x = [str(v) for v in (labels if labels is not None else range(K))]
    fig.add_trace(go.Scatter(x=x, y=zoo.grad_of_kl, mode="lines", name="∇KL(π‖π_ref) (reverse)",
                             line={"color": color_for("reverse_kl"), "width": 6}, opacity=0.35), row=1, col=2)
    fig.add_trace(go.Scatter(x=x, y=zoo.grad_of_forward_kl, mode="lines", name="∇KL(π_ref‖π) (forward)",
                             line={"color": color_for("kl"), "width": 6}, opacity=0.35), row=1, col=2)
    for k in keys:
        fig.add_trace(go.Scatter(x=x, y=zoo.grad[k], mode="lines", name=f"{k} exact",
                                 line={"color": cols[k], "width": 1.5, "dash": "dot"}), row=1, col=2)
        fig.add_trace(go.Scatter(x=x, y=zoo.mc_grad[k], mode="markers", name=f"{k} simulated",
                                 marker={"color": cols[k], "size": 6},
                                 error_y={"type": "data", "array": 2 * np.asarray(zoo.mc_grad_se[k]), "thickness": 1}),
                      row=1, col=2)
    fig.update_xaxes(type="category", row=1, col=2, title_text="outcome")
    fig.update_layout(template="plotly_white", height=height, legend={"orientation": "h", "y": -0.25},
                      margin={"l": 50, "r": 10, "t": 40, "b": 10})
    return fig
