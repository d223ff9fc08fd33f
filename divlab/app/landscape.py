"""The Landscape page: D(p‖q) over (μ, log σ), local optima and basins."""

from __future__ import annotations

from ..divergences.registry import get
from .state import (  # noqa: F401
    format_value,
)


def landscape_view(target_spec: dict, key: str, params: dict, restarts: int = 12, steps: int = 200,
                   n: tuple[int, int] = (61, 41)) -> dict:
    """The surface (``dl.landscape``) and the local optima with their basins and trajectories
    (``dl.local_optima`` from ``restarts`` starts), over the landscape's (μ, log σ) window."""
    from ..distributions import from_spec
    from ..fit import landscape, local_optima

    target = from_spec(target_spec)
    land = landscape(target, "normal", key, params=params, n=n)
    opt = local_optima(target, "normal", key, params=params, restarts=restarts, steps=steps, seed=0)
    unit = get(key).unit
    rows = [{"optimum": f"{'global' if o.is_global else 'local'} {k + 1}", "μ (loc)": o.params["loc"],
             "σ (scale)": o.params["scale"], "D(p‖q)": format_value(o.value, unit=unit).split("= ", 1)[-1],
             "basin (share of starts)": o.share} for k, o in enumerate(opt)]
    return {"landscape": land, "optima": opt, "rows": rows, "unresolved": opt.unresolved}
