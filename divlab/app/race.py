"""The Race page: one target, up to six divergences in small multiples."""

from __future__ import annotations

from .fit1d import (  # noqa: F401
    fit_rows,
    run_scenario_json,
)


def race_view(scenario_json: str, budget_s: float | None = None) -> dict:
    """Race: every divergence of the scenario fitted from the same start, small multiples.

    The run has the server's wall-clock budget (``DIVLAB_RUN_BUDGET_S``, or ``budget_s``): a race
    that reaches it raises :class:`divlab.limits.RunStopped` carrying the view of the partial
    trajectories and the notice (so a cached caller never caches a partial race)."""
    from .. import viz
    from ..limits import RunGuard

    guard = RunGuard(budget_s)
    sc, results = run_scenario_json(scenario_json, callback=guard)
    target = sc.build_target()
    view = {"figure": viz.race_animation_spec(target, results, n_frames=min(sc.view.frames, 40)),
            "table": fit_rows(results)}
    return guard.result(view)
