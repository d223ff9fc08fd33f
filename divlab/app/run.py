"""One guarded run of a fitting page (Fit 1D, Fit 2D, Flows): wall-clock budget, Stop, the partial result."""

from __future__ import annotations


# -- one guarded run of a fitting page (Fit 1D, Fit 2D): wall-clock budget, Stop, partial result ---

#: how long the script run a Stop click starts waits for the stopped run's partial result (one
#: more fit step and the figure of the steps done); past it, the page shows what it had
STOP_WAIT_S = 15.0


def stop_help(budget_s: float) -> str:
    """The Stop button's tooltip."""
    return (f"Stop this run; the trajectories so far stay on screen. Runs also stop at the server's "
            f"budget of {budget_s:g} s.")


def run_guarded(state, guard_key: str, share_key, compute, *, stop_requested=None, on_start=None) -> dict:
    """One fit run of a page under a fresh :class:`divlab.limits.RunGuard` (budget and Stop).

    The guard stays in ``state[guard_key]`` (a page's session state) while ``compute(guard)``
    runs, so that the script run a Stop click starts finds it (:func:`keep_stopped_run`);
    ``on_start(guard)`` is called first (the page shows its Stop button). Sessions asking for the
    same ``share_key`` at once share one computation (:func:`divlab.limits.shared_run`).
    ``compute`` must end with ``guard.result(view)``. Returns the view, or for a stopped run its
    partial view with ``"stopped"``: the notice."""
    from .. import limits

    guard = limits.RunGuard(stop_requested=stop_requested)
    state[guard_key] = guard
    try:
        if on_start is not None:
            on_start(guard)
        try:
            view = limits.shared_run(share_key, lambda: compute(guard))
        except limits.RunStopped as stopped:
            view = dict(stopped.partial, stopped=stopped.notice)
    finally:
        guard.end()
    # Streamlit ends a script run it was asked to stop or rerun at its next Streamlit call or
    # session-state access (StopException, RerunException; perhaps already in the cache's spinner
    # above): the guard then stays in state, for keep_stopped_run of the run that follows
    if state.get(guard_key) is guard:
        del state[guard_key]
    return view


def keep_stopped_run(state, guard_key: str, last_key: str, wait_s: float = STOP_WAIT_S) -> None:
    """At the top of a page: if a run of this session was stopped (its guard is still in
    ``state[guard_key]``), make its partial view, with the notice, the page's last result
    ``state[last_key]``. A Stop click starts this script run while the stopped run may still be
    finishing its last step in another thread: wait for it (at most ``wait_s`` seconds)."""
    guard = state.get(guard_key)
    if guard is None:
        return
    del state[guard_key]
    if guard.partial is None:
        guard.wait(wait_s)
    if guard.partial is not None:
        state[last_key] = dict(guard.partial, stopped=guard.notice)
