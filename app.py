"""divlab Streamlit entry point: navigation over the pages and the shared sidebar.

Run with ``streamlit run app.py``. Pages are thin: widgets in, divlab calls, figures out.

The shared state is one :class:`divlab.Scenario` in ``st.session_state["scenario"]`` (the last
good one). It lives in the URL (``?s=...``), so a link reproduces the exact state; the sidebar
imports and exports it as JSON. Decisions about the URL and files are made by plain functions in
:mod:`divlab.app_support`; this file only wires them to widgets.
"""

import os
import sys
import time
from pathlib import Path

import streamlit as st

import divlab
from divlab import app_support as sup
from divlab.device import describe

_RUN_T0 = time.perf_counter()
st.set_page_config(page_title="divlab", layout="wide")
ss = st.session_state
ROOT = Path(__file__).resolve().parent

# widget values of every page survive page switches: re-assigning a widget's key turns it into
# plain session state that Streamlit does not clean up when the widget is not on the page
for _key in list(ss.keys()):
    if sup.persist_key(_key):
        ss[_key] = ss[_key]

# -- the scenario: from the URL on a new session or a pasted link, else the last good one ----------
_resolved = sup.resolve_url_state(st.query_params.get_all(sup.URL_PARAM) or None, ss.get(sup.SCENARIO_KEY),
                                  ss.get("scenario_param"))
if _resolved.error:
    ss["url_error"] = _resolved.error
if _resolved.loaded or sup.SCENARIO_KEY not in ss:
    sup.set_scenario(ss, _resolved.scenario, "url" if st.query_params.get(sup.URL_PARAM) and not _resolved.error
                     else "default")
    # a shared lesson link (?s=...&lesson=<id>) opens the lesson view, not only its scenario
    _card = sup.lesson_from_url(st.query_params.get(sup.LESSON_PARAM), ss[sup.SCENARIO_KEY])
    if _card is not None:
        ss["lesson"] = _card

_PAGES = [
    ("home", "🏠"), ("fit_1d", "📈"), ("fit_2d", "🗺️"), ("race", "🏁"), ("families", "🎚️"),
    ("landscape", "⛰️"), ("flows", "🌊"), ("calculator", "🧮"), ("theory", "📐"), ("discrete", "🎲"),
    ("transport", "🚚"),
]
pages = [st.Page(sup.PAGE_FILES[name], title=sup.PAGE_TITLES[name], icon=icon, default=name == "home")
         for name, icon in _PAGES if (ROOT / sup.PAGE_FILES[name]).exists()]
nav = st.navigation(pages)
# a deep link that reached the server before app.py had ever run was started as a plain script
# of pages/ (see the guard at the top of each page) and lands here on the default page: go on to
# the page its URL names, keeping its query (the scenario)
_wanted = sup.page_from_url(st.context.url, [p.url_path for p in pages])
if _wanted and _wanted != nav.url_path and nav.url_path == pages[0].url_path:
    st.switch_page(next(p for p in pages if p.url_path == _wanted), query_params=st.query_params.to_dict())

with st.sidebar:
    st.markdown(f"**divlab** {divlab.__version__}")
    st.caption("p = target (fixed), q = model (fitted), D(p‖q); log-based divergences in nats.")
    try:
        st.caption(f"Device: {describe()}")
    except ValueError as exc:  # e.g. DIVLAB_DEVICE names a device this machine lacks
        st.error(str(exc))
    if ss.get("url_error"):
        st.error(ss["url_error"])
        if st.button("Dismiss", key="sidebar_dismiss_url_btn"):
            ss.pop("url_error", None)
            st.rerun()
    st.subheader("Scenario")
    upload = st.file_uploader("Import scenario (JSON)", type=["json"], key="sidebar_upload",
                              help="A file exported here (or by `divlab fit --export`). Size and nesting are "
                                   "checked before reading; a bad file leaves the current scenario as it is.")
    if upload is not None:
        sup.apply_upload(ss, upload.getvalue(), upload.name, upload.file_id)
    if ss.get("upload_error"):
        st.error(ss["upload_error"] + " The current scenario is kept.")
    elif ss.get("upload_ok"):
        st.success(ss["upload_ok"])
    # filled after the page ran, so export and link show the state the page just set
    share_box = st.container()

try:
    nav.run()
finally:
    # DIVLAB_LOG_RUNS=1: one line per script run on stderr (the server log), e.g. for the load test
    # (bench/load_test.py) and for a host watching how long its visitors' runs take
    if os.environ.get("DIVLAB_LOG_RUNS"):
        print(f"divlab-run page={nav.url_path or 'home'} seconds={time.perf_counter() - _RUN_T0:.4f}",
              file=sys.stderr, flush=True)

sc = ss[sup.SCENARIO_KEY]
param = sc.to_url_param()
if st.query_params.get(sup.URL_PARAM) != param:
    st.query_params[sup.URL_PARAM] = param
ss["scenario_param"] = param
_lesson = sup.lesson_for(ss, sc)
_lesson_id = _lesson["id"] if _lesson else None
if st.query_params.get(sup.LESSON_PARAM) != _lesson_id:
    if _lesson_id:
        st.query_params[sup.LESSON_PARAM] = _lesson_id
    elif sup.LESSON_PARAM in st.query_params:
        del st.query_params[sup.LESSON_PARAM]
with share_box:
    st.download_button("Export scenario (JSON)", sup.export_json(sc), file_name=sup.export_name(sc),
                       mime="application/json", key="sidebar_export_btn", on_click="ignore")
    base = (st.context.url or "").split("?")[0]
    st.caption("Share link (the URL holds the scenario; opening it restores this exact state):")
    st.code(base + sup.share_query(sc, _lesson_id), language=None, wrap_lines=True)
    st.caption(f"{len(sc.divergences)} divergence(s) · {sc.model.family} model · seed {sc.seed}")
