"""Every use of Streamlit's private APIs, in one place, each pinned by a test
(``tests/test_streamlit_adapter.py``) so that a Streamlit upgrade that changes them fails there,
not on a visitor's screen.

1. :func:`route_deep_link` — ``streamlit.runtime.pages_manager.PagesManager.uses_pages_directory``.
   A deep link (``/fit_1d?s=...``) that is a fresh server's *first* request runs the page file
   directly (Streamlit's pages/-directory mode, before app.py ever called ``st.navigation``):
   each page calls this first, which switches that mode off and reruns, so app.py routes to the
   page with the shared sidebar and the scenario from the URL.
2. :func:`rerun_pending` — ``ScriptRunContext.script_requests._state``. Streamlit delivers a click
   during a run as a rerun request; the running fit never calls Streamlit, so a page's
   :class:`divlab.limits.RunGuard` reads this (non-destructive) state at each step to honour Stop.
"""

from __future__ import annotations

__all__ = ["route_deep_link", "rerun_pending"]


def route_deep_link(state_key: str = "scenario_param") -> None:
    """At the top of a page: hand a deep link that started the server in pages/-directory mode
    to app.py (see the module docstring). ``state_key``: set by app.py on every run, so its absence
    means app.py has not run in this session."""
    import streamlit as st
    from streamlit.runtime.pages_manager import PagesManager

    if getattr(PagesManager, "uses_pages_directory", False) and state_key not in st.session_state:
        PagesManager.uses_pages_directory = False
        st.rerun()


def rerun_pending(ctx):
    """A ``stop_requested`` for :class:`divlab.limits.RunGuard`: True once Streamlit has asked the
    script run of ``ctx`` (the page's ``get_script_run_ctx()``, taken in the script thread) to
    stop or rerun, because the visitor clicked Stop or anything else, or left.

    With ``runner.fastReruns`` (the default) Streamlit marks the running run's requests STOP and
    starts a new script run at once; without it, it marks them RERUN. ``ctx`` is duck-typed (no
    Streamlit import); without one this is always False."""
    requests = getattr(ctx, "script_requests", None)

    def pending() -> bool:
        state = getattr(requests, "_state", None)
        return state is not None and getattr(state, "name", "CONTINUE") != "CONTINUE"

    return pending
