"""The estimator error explorer's figure (Calculator): sample estimators against the closed form,
over the sample size n (x, log) with one column per dimension d. Rows from
``divlab.app_estimators.estimator_error_table``."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..divergences.registry import get as get_spec
from .layout import legible

__all__ = ["estimator_error_figure", "ESTIMATOR_COLORS"]

#: one colour per estimator (the closed form is black, dashed)
ESTIMATOR_COLORS = {"knn": "#1f77b4", "nn_ratio": "#ff7f0e", "kde": "#2ca02c", "dv": "#9467bd", "nwj": "#8c564b"}


def estimator_error_figure(rows: list[dict]) -> go.Figure:
    """Top row: each estimator's estimate with its stated bar (3·stderr + error) against n, the closed
    form as a dashed black line; bottom row: |estimate − closed form| against n (log-log). One column
    per dimension d."""
    if not rows:
        raise ValueError("estimator_error_figure(rows=[]): nothing to draw (no estimator ran)")
    dims = sorted({r["d"] for r in rows})
    key = rows[0]["key"]
    spec = get_spec(key)
    unit = f" [{spec.unit}]"
    titles = [f"d = {d}: {key} = {next(r['closed_form'] for r in rows if r['d'] == d):.4g}" for d in dims]
    fig = make_subplots(rows=2, cols=len(dims), shared_xaxes=True, subplot_titles=titles + [""] * len(dims),
                        vertical_spacing=0.08, horizontal_spacing=0.05)
    names = list(dict.fromkeys(r["estimator"] for r in rows))
    for j, d in enumerate(dims, start=1):
        sub = [r for r in rows if r["d"] == d]
        ns = sorted({r["n"] for r in sub})
        fig.add_trace(go.Scatter(x=ns, y=[sub[0]["closed_form"]] * len(ns), mode="lines", name="closed form",
                                 line={"color": "black", "dash": "dash"}, showlegend=(j == 1),
                                 legendgroup="closed form"), row=1, col=j)
        for name in names:
            rr = sorted((r for r in sub if r["estimator"] == name), key=lambda r: r["n"])
            if not rr:
                continue
            color = ESTIMATOR_COLORS.get(name, "#444")
            label = f"{name} (lower bound)" if rr[0]["bound"] else name
            fig.add_trace(go.Scatter(x=[r["n"] for r in rr], y=[r["estimate"] for r in rr], mode="lines+markers",
                                     name=label, legendgroup=name, showlegend=(j == 1), line={"color": color},
                                     error_y={"type": "data", "array": [r["bar"] for r in rr], "visible": True}),
                          row=1, col=j)
            fig.add_trace(go.Scatter(x=[r["n"] for r in rr], y=[max(r["abs_error"], 1e-6) for r in rr],
                                     mode="lines+markers", name=label, legendgroup=name, showlegend=False,
                                     line={"color": color, "dash": "dot"}), row=2, col=j)
        fig.update_xaxes(type="log", row=1, col=j)
        fig.update_xaxes(type="log", title_text="samples n (each side)", row=2, col=j)
        fig.update_yaxes(type="log", row=2, col=j)
    fig.update_yaxes(title_text=f"estimate{unit}", row=1, col=1)
    fig.update_yaxes(title_text=f"|estimate − closed form|{unit}", row=2, col=1)
    fig.update_layout(template="plotly_white", height=560, margin={"l": 60, "r": 10, "t": 40, "b": 40},
                      legend={"orientation": "h", "y": -0.15})
    return legible(fig)
