"""Landscape figures: the divergence over (μ, log σ) with its local optima, basins and the
trajectories of fits from several starts."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from .layout import legible
from ..divergences.registry import get as get_spec

__all__ = ["landscape_figure", "BASIN_COLORS"]

BASIN_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def landscape_figure(land, optima=None, title: str = "") -> go.Figure:
    """Contours of D(p‖N(μ, σ²)) over μ (x axis) and log σ (y axis), shown as log10(D) so that
    both shallow and steep regions read; infinite values are blank. ``optima`` (from
    ``dl.local_optima``): each optimum as a star (global: gold) labelled with its value and basin
    share, and each start's trajectory coloured by the optimum it reached (its basin)."""
    vals = np.asarray(land.values, dtype=float)
    finite = np.isfinite(vals) & (vals > 0)
    z = np.full(vals.shape, np.nan)
    z[finite] = np.log10(vals[finite])
    fig = go.Figure(go.Contour(
        x=np.asarray(land.loc), y=np.asarray(land.log_scale), z=z, colorscale="Viridis", ncontours=30,
        colorbar={"title": "log10 D"}, name=f"D(p‖q) [{land.divergence}]",
        hovertemplate="μ=%{x:.3g}<br>log σ=%{y:.3g}<br>log10 D=%{z:.3g}<extra></extra>"))
    if optima is not None:
        spec = get_spec(land.divergence)
        fits = getattr(optima, "fits", [])
        owner = {}
        for k, o in enumerate(optima):
            for m in o.members:
                owner[m] = k
        for i, r in enumerate(fits):
            k = owner.get(i)
            color = BASIN_COLORS[k % len(BASIN_COLORS)] if k is not None else "#999999"
            loc = np.asarray(r.trajectory["loc"], dtype=float)
            ls = np.log(np.asarray(r.trajectory["scale"], dtype=float))
            ok = np.isfinite(loc) & np.isfinite(ls)
            fig.add_trace(go.Scatter(x=loc[ok], y=ls[ok], mode="lines", line={"color": color, "width": 1.2},
                                     opacity=0.8, showlegend=False, hoverinfo="skip"))
            if ok.any():
                fig.add_trace(go.Scatter(x=loc[ok][:1], y=ls[ok][:1], mode="markers", showlegend=False,
                                         marker={"color": color, "size": 6, "symbol": "circle-open"},
                                         hovertemplate=f"start {i}: μ=%{{x:.3g}}, log σ=%{{y:.3g}}<extra></extra>"))
        for k, o in enumerate(optima):
            color = "gold" if o.is_global else BASIN_COLORS[k % len(BASIN_COLORS)]
            val = spec.with_unit(f"{o.value:.4g}") if math.isfinite(o.value) else "∞"
            label = (f"{'global' if o.is_global else 'local'} optimum {k + 1}: μ={o.params['loc']:.3g}, "
                     f"σ={o.params['scale']:.3g}, D(p‖q)={val}, basin {100 * o.share:.0f}% of starts")
            fig.add_trace(go.Scatter(x=[o.params["loc"]], y=[math.log(o.params["scale"])], mode="markers",
                                     name=label, marker={"color": color, "size": 16, "symbol": "star",
                                                         "line": {"color": "black", "width": 1}},
                                     hovertemplate=label + "<extra></extra>"))
    fig.update_layout(template="plotly_white", height=520, title=title or None,
                      xaxis_title="model mean μ", yaxis_title="model log σ",
                      margin={"l": 60, "r": 10, "t": 40 if title else 20, "b": 40},
                      legend={"orientation": "h", "y": -0.18})
    fig.update_xaxes(range=[float(land.loc[0]), float(land.loc[-1])])
    fig.update_yaxes(range=[float(land.log_scale[0]), float(land.log_scale[-1])])
    return legible(fig)
