"""The Flows page: 2D particles under MMD, Sinkhorn, SVGD and Langevin side by side (budget and Stop via
:mod:`divlab.app.run`)."""

from __future__ import annotations

import math
from typing import Sequence

from .fit2d import InputError  # noqa: F401


# ---------------------------------------------------------------------------------------------
# flows
# ---------------------------------------------------------------------------------------------

#: the flows the Flows page offers, in display order
FLOW_KEYS = ("mmd", "sinkhorn", "svgd", "langevin")
MAX_PARTICLES = 1000


def _flow_loss_key(name: str) -> str:
    """The divergence key of a flow's per-frame measure (``FlowResult.loss_name``)."""
    low = str(name).lower()
    if low.startswith(("s_ε", "sinkhorn")):
        return "sinkhorn"
    if low.startswith("mmd"):
        return "mmd"
    return "energy" if low.startswith("energy") else low


def flows_view(target_json: str, flows: Sequence[str], *, n: int = 150, steps: int = 100, seed: int = 0,
               start: tuple[float, float] | None = None, callback=None) -> dict:
    """Run each flow of ``flows`` on the target (a spec as JSON text) with the same ``n``
    particles, ``steps`` and ``seed``; return the side-by-side animation and one table row per
    flow (what it does, the final measure with its direction and unit, status, work done).
    ``start``: the particles start around this point (a round Normal of scale 0.5), else at the
    flow's default start. ``callback``: a :class:`divlab.limits.RunGuard` (wall-clock budget and
    Stop): a stopped run keeps every flow's frames up to the stop, and the flows after it stop at
    their first step."""
    from ..distributions import MultivariateNormal, from_spec
    from ..fit.flow import flow
    from ..scenario import _parse_json
    from ..divergences.registry import unit_label
    from ..viz.fit2d import unit
    from ..viz.flow import FLOW_NAMES, flow_animation
    from ..viz.shown import figure_spec

    flows = list(flows)
    if not flows:
        raise InputError("Choose at least one flow.")
    bad = [f for f in flows if f not in FLOW_KEYS]
    if bad:
        raise InputError(f"flow {bad[0]!r} is unknown (allowed: {', '.join(FLOW_KEYS)})")
    if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= MAX_PARTICLES:
        raise InputError(f"particles must be an integer in [2, {MAX_PARTICLES}] (got {n!r})")
    target = from_spec(_parse_json(target_json, "target"))
    if target.dim != 2:
        raise InputError(f"the Flows page needs a 2D target (this one is {target.dim}D)")
    particles = None
    if start is not None:
        particles = MultivariateNormal([float(start[0]), float(start[1])], [[0.25, 0.0], [0.0, 0.25]])
    results = []
    for key in flows:
        results.append(flow(target, divergence=key, n=n, steps=steps, seed=seed, particles=particles,
                            callback=callback))
    if hasattr(callback, "relabel"):  # "stopped: by the caller" -> the budget or Stop
        callback.relabel(results)
    rows = []
    for key, fr in zip(flows, results):
        u = unit_label(unit(_flow_loss_key(fr.loss_name)))
        first, final = float(fr.losses[0]), float(fr.losses[-1])
        rows.append({"flow": FLOW_NAMES[key],
                     "measure (particles vs samples of p)": f"{fr.loss_name}" + (f" [{u}]" if u else ""),
                     "at the start": f"{first:.4g}" if math.isfinite(first) else "∞",
                     "at the end": f"{final:.4g}" if math.isfinite(final) else "∞",
                     "status": fr.status, "time [s]": round(float(fr.elapsed_s), 2)})
    fig = flow_animation(target, results)
    # the last particles (small lists), for the transport map the page draws on request (entropic_map)
    from .entropic_map import flows_final_particles

    return {"figure": figure_spec(fig), "table": rows, "target": target_json,
            "final_particles": flows_final_particles(results)}
