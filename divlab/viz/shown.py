"""Figures as plain dicts, for showing one many times (a cached lesson, a page's reruns).

A plotly ``go.Figure`` is costly to copy: unpickling one validates every trace again, and each
``to_dict()`` deep-copies it (0.05 s and 0.18 s for Fit 1D's 60-frame, 3-divergence animation).
Streamlit's ``st.cache_data`` hands out a pickled copy of the cached value on every hit, and
``st.plotly_chart`` calls ``to_dict()`` on every run. So the app caches :func:`figure_spec`
(the dict, which pickles in milliseconds) and shows it with :func:`for_display`.
"""

from __future__ import annotations

import plotly.graph_objects as go

__all__ = ["figure_spec", "for_display", "SpecFigure"]


def figure_spec(fig: go.Figure) -> dict:
    """The figure as plotly's own plain dict (``fig.to_dict()``): data, layout, frames."""
    if not isinstance(fig, go.Figure):
        raise ValueError(f"figure_spec(fig={type(fig).__name__}): needs a plotly go.Figure")
    return fig.to_dict()


class SpecFigure(go.Figure):
    """A figure held as the dict :func:`figure_spec` made, to hand to a renderer (st.plotly_chart)
    without validating and copying it again: ``to_dict()`` returns that dict itself. Its ``data``,
    ``layout`` and ``frames`` attributes are empty; rebuild ``go.Figure(spec)`` to inspect one."""

    def __init__(self, spec: dict):
        super().__init__()
        self._spec = spec

    def to_dict(self) -> dict:
        return self._spec

    def to_plotly_json(self) -> dict:
        return self._spec

    def __reduce__(self):
        return (SpecFigure, (self._spec,))


def for_display(spec) -> go.Figure:
    """What to pass to ``st.plotly_chart`` for a cached figure dict (a ``go.Figure`` is returned as
    it is). The dict must come from :func:`figure_spec`, which makes it valid by construction."""
    if isinstance(spec, go.Figure):
        return spec
    if not isinstance(spec, dict) or "data" not in spec:
        raise ValueError(f"for_display(spec={type(spec).__name__}): needs a dict made by figure_spec")
    return SpecFigure(spec)
