"""Figures for particle flows (:func:`divlab.flow`): particles moving over the target.

:func:`flow_animation` draws several flows side by side, one panel each (MMD, Sinkhorn, SVGD,
Langevin ...), every panel over the same target contours (log p, nats), all driven by one slider
and one Play button; an optional bottom row shows each flow's divergence between particles and
target per recorded step. A flow result needs ``frames`` (F, n, 2), ``steps`` (F step indices),
``losses`` (F,), ``divergence`` and ``status`` (the :class:`~divlab.fit.flow.FlowResult` contract).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..distributions import Distribution
from .fit1d import _finite_or_none, color_for
from .fit2d import FRAME_MS, N_XY, _check_2d, add_target_images, target_contour, xy_grid
from .layout import animation_frame, animation_layout, legible

__all__ = ["flow_animation", "flow_label", "FLOW_NAMES"]

#: display names of the flows (what each one minimizes or samples)
FLOW_NAMES = {
    "mmd": "MMD flow (kernel gradient flow of MMD²(q, p))",
    "sinkhorn": "Sinkhorn flow (debiased entropic OT)",
    "svgd": "SVGD (Stein variational gradient descent)",
    "langevin": "Langevin dynamics (noisy gradient of log p)",
}
MAX_PANELS = 6


def flow_label(fr) -> str:
    """A short label for a flow result: its ``label`` if it has one, else the flow's name."""
    lab = getattr(fr, "label", None)
    if isinstance(lab, str) and lab:
        return lab
    key = str(getattr(fr, "divergence", "flow"))
    return FLOW_NAMES.get(key, key).split(" (")[0]


def _check_flows(flows) -> list:
    if isinstance(flows, dict):
        flows = list(flows.values())
    elif hasattr(flows, "frames") and hasattr(flows, "losses"):
        flows = [flows]
    flows = list(flows)
    if not flows:
        raise ValueError("flow_animation(flows=[]): give at least one flow result")
    if len(flows) > MAX_PANELS:
        raise ValueError(f"flow_animation(flows with {len(flows)} entries): at most {MAX_PANELS} side by side")
    for i, f in enumerate(flows):
        for attr in ("frames", "steps", "losses", "divergence"):
            if not hasattr(f, attr):
                raise ValueError(f"flows[{i}]={type(f).__name__}: a flow result needs .{attr} (see divlab.flow)")
        fr = np.asarray(f.frames)
        if fr.ndim != 3 or fr.shape[2] != 2 or fr.shape[0] < 1:
            raise ValueError(f"flows[{i}].frames with shape {fr.shape}: need (frames, particles, 2) for a 2D figure")
        if len(f.steps) != fr.shape[0]:
            raise ValueError(f"flows[{i}]: {len(f.steps)} steps for {fr.shape[0]} frames (need one step per frame)")
    return flows


def _particles(f, k: int, color: str, label: str, showlegend: bool, frame: bool = False):
    """The particles of recorded frame k; in an animation frame only the positions (float32,
    half the bytes of float64 to send) and the hover text, as a dict merged into the drawn trace."""
    j = min(k, len(f.steps) - 1)
    pts = np.asarray(f.frames[j], dtype=float)
    ok = np.isfinite(pts).all(axis=1)
    loss = float(f.losses[j])
    val = f"{loss:.4g}" if math.isfinite(loss) else "∞"
    if frame:
        xy = pts[ok].astype(np.float32)
        return {"type": "scatter", "x": xy[:, 0], "y": xy[:, 1],
                "hovertemplate": f"{label}<br>step {int(f.steps[j])}: D = {val}<extra></extra>"}
    return go.Scatter(x=pts[ok, 0], y=pts[ok, 1], mode="markers", name=label, legendgroup=label,
                      showlegend=showlegend, marker={"color": color, "size": 5, "opacity": 0.85,
                                                     "line": {"width": 0.5, "color": "white"}},
                      hovertemplate=f"{label}<br>step {int(f.steps[j])}: D = {val}<extra></extra>")


def flow_animation(target: Distribution, flows, *, cols: int | None = None, show_loss: bool = True,
                   n: int = 81, loss_label: str = "measure between particles and p") -> go.Figure:
    """Particle flows side by side over the target's log-density contours, one panel per flow,
    animated together (frame k shows every flow's k-th recorded frame; a flow with fewer frames
    holds its last one). With ``show_loss`` a bottom row plots each flow's ``losses`` against its
    steps (in the measure's own units, named in the row title; infinite values are gaps) with a
    marker at the current frame.

    Trace order: per panel, the target then the particles (2 per flow); then, with ``show_loss``,
    one loss curve and one marker per flow. Frames update the particles and the markers.
    """
    flows = _check_flows(flows)
    _check_2d("flow_animation", target)
    P = len(flows)
    ncol = P if cols is None else min(max(int(cols), 1), P)
    nrow = math.ceil(P / ncol)
    xs, ys = xy_grid(target, n=n)
    # widen the view to where the particles started (they usually start away from the target)
    allpts = np.concatenate([np.asarray(f.frames, dtype=float).reshape(-1, 2) for f in flows])
    allpts = allpts[np.isfinite(allpts).all(axis=1)]
    if allpts.size:
        w = np.array([xs[-1] - xs[0], ys[-1] - ys[0]])
        lo = np.maximum(np.minimum([xs[0], ys[0]], np.quantile(allpts, 0.005, axis=0)), [xs[0], ys[0]] - w)
        hi = np.minimum(np.maximum([xs[-1], ys[-1]], np.quantile(allpts, 0.995, axis=0)), [xs[-1], ys[-1]] + w)
        xs, ys = np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)
    labels = [flow_label(f) for f in flows]
    colors = [color_for(str(f.divergence)) for f in flows]
    F = max(len(f.steps) for f in flows)
    rows = nrow + (1 if show_loss else 0)
    specs = [[{} for _ in range(ncol)] for _ in range(nrow)]
    titles = [f"{lab} · {getattr(f, 'status', '')}".rstrip(" ·") for lab, f in zip(labels, flows)]
    titles += [""] * (nrow * ncol - P)
    if show_loss:
        specs.append([{"colspan": ncol}] + [None] * (ncol - 1))
        names = sorted({str(getattr(f, "loss_name", "")).split(" (")[0] for f in flows} - {""})
        titles.append(f"{loss_label} per step" + (f" ({'; '.join(names)})" if names else ""))
    fig = make_subplots(rows=rows, cols=ncol, specs=specs, subplot_titles=titles, horizontal_spacing=0.04,
                        vertical_spacing=0.1, row_heights=[1.0] * nrow + ([0.55] if show_loss else []))
    tgt = target_contour(target, xs, ys, showscale=False)
    for k, f in enumerate(flows):
        row, col = k // ncol + 1, k % ncol + 1
        t = go.Contour(tgt) if isinstance(tgt, go.Contour) else go.Scatter(tgt)
        t.showlegend = k == 0
        fig.add_trace(t, row=row, col=col)
        fig.add_trace(_particles(f, 0, colors[k], labels[k], True), row=row, col=col)
        fig.update_xaxes(range=[float(xs[0]), float(xs[-1])], row=row, col=col)
        fig.update_yaxes(range=[float(ys[0]), float(ys[-1])], row=row, col=col)
    traces = [2 * k + 1 for k in range(P)]
    if show_loss:
        for k, f in enumerate(flows):
            fig.add_trace(go.Scatter(x=np.asarray(f.steps), y=_finite_or_none(f.losses), mode="lines",
                                     legendgroup=labels[k], showlegend=False, name=labels[k],
                                     line={"color": colors[k], "width": 1.5}), row=rows, col=1)
        for k, f in enumerate(flows):
            fig.add_trace(_loss_marker(f, 0, colors[k], labels[k]), row=rows, col=1)
        traces += [3 * P + k for k in range(P)]
        fig.update_xaxes(title_text="step", row=rows, col=1)
        vals = np.concatenate([np.asarray(f.losses, dtype=float) for f in flows])
        vals = vals[np.isfinite(vals)]
        if vals.size and (vals > 0).all():
            fig.update_yaxes(type="log", row=rows, col=1)

    def frame_data(k: int) -> list:
        data = [_particles(f, k, colors[i], labels[i], True, frame=True) for i, f in enumerate(flows)]
        if show_loss:
            data += [_loss_marker(f, k, colors[i], labels[i], frame=True) for i, f in enumerate(flows)]
        return data

    names = [str(k) for k in range(F)]
    fig.frames = [animation_frame(name=names[k], data=frame_data(k), traces=traces) for k in range(F)]
    ref = max(flows, key=lambda f: len(f.steps))
    labels_at = [str(int(ref.steps[min(k, len(ref.steps) - 1)])) for k in range(F)]
    legend = [d.name for d in fig.data if d.showlegend is not False and d.name]
    fig.update_layout(template="plotly_white",
                      **animation_layout(names, labels=labels_at, plot_height=330 * nrow + (200 if show_loss else 0),
                                         frame_ms=FRAME_MS, legend_names=legend, axis_title=show_loss, left=40))
    return legible(add_target_images(fig, target, xs, ys))


def _loss_marker(f, k: int, color: str, label: str, frame: bool = False):
    j = min(k, len(f.steps) - 1)
    y = float(f.losses[j])
    if frame:
        return {"type": "scatter", "x": [int(f.steps[j])], "y": [y if math.isfinite(y) else None]}
    return go.Scatter(x=[int(f.steps[j])], y=[y if math.isfinite(y) else None], mode="markers",
                      showlegend=False, legendgroup=label, marker={"color": color, "size": 9},
                      hovertemplate=f"{label}<br>step %{{x}}: %{{y:.4g}}<extra></extra>")
