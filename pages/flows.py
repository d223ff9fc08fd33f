"""Flows: 2D particles flowing to the target under MMD, Sinkhorn, SVGD and Langevin, side by side."""

import json

import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from divlab import app_support as sup
from divlab import app_support_2d as s2
from divlab import limits, viz
from divlab.app import entropic_map as emap
from divlab.viz.flow import FLOW_NAMES

# a deep link that is a fresh server's first request runs this file alone: app.py takes it over
# (the one use of Streamlit's private PagesManager lives in divlab.app.streamlit_adapter)
from divlab.app.streamlit_adapter import route_deep_link  # noqa: E402

route_deep_link()

ss = st.session_state
LAST = "flows_last"


GUARD = "flows_guard"  # the running flows' limits.RunGuard


@st.cache_data(show_spinner="Moving particles...", max_entries=32)
def cached_flows(target_json: str, flows: tuple, n: int, steps: int, seed: int, start, _guard=None):
    """The flows of one setting, computed once for every session. ``_guard`` (not part of the
    cache key) stops the run at the wall-clock budget or on Stop; a stopped run is never cached."""
    view = s2.flows_view(target_json, list(flows), n=n, steps=steps, seed=seed, start=start, callback=_guard)
    return view if _guard is None else _guard.result(view)


# a run stopped by a click (Stop) or by the budget: its partial result is this page's last result
sup.keep_stopped_run(ss, GUARD, LAST)


@st.cache_data(show_spinner="Computing the transport map...", max_entries=32)
def cached_maps(target_json: str, particles_key: str):
    """The entropic map from each flow's last particles to samples of the target."""
    return emap.flows_maps({"target": target_json, "final_particles": json.loads(particles_key)})


def seed(key, value):
    if key not in ss:
        ss[key] = value


sc = ss.get(sup.SCENARIO_KEY)
sc2d = sc if sc is not None and sup.scenario_dim(sc) == 2 else None
fresh = sup.needs_seed(ss, "flows")  # once per scenario version (a lesson, link or file was loaded)
if sc2d is not None and fresh:
    ss["flows_target_mode"] = "the scenario's target"
    ss["flows_autorun"] = ss.get("scenario_source", "default") != "default"
for k, v in {"flows_target_mode": "named shape", "flows_shape": "three blobs", "flows_which": list(s2.FLOW_KEYS),
             "flows_n": 150, "flows_steps": 100, "flows_seed": 0, "flows_start_x": -4.0, "flows_start_y": -3.0,
             "flows_from_default": False}.items():
    seed(k, v)

st.title("Flows")
st.caption("Particles start together and move to the target p. MMD and Sinkhorn flows follow the gradient of a "
           "divergence between the particle cloud and samples of p; SVGD and Langevin use the score ∇log p. The "
           "bottom row tracks a measure between the particles and samples of p per step (MMD², Sinkhorn divergence "
           "or energy distance, as named in the table, each in its own unit: kernel units, squared units of x, units of x).")

st.subheader("Target p")
modes = ["named shape", "component table"] + (["the scenario's target"] if sc2d is not None else [])
if ss.get("flows_target_mode") not in modes:
    ss["flows_target_mode"] = modes[0]
mode = st.radio("target from", modes, key="flows_target_mode", horizontal=True)
target_spec, target_error = None, None
if mode == "named shape":
    shape = st.selectbox("shape", list(s2.SHAPES), key="flows_shape")
    params = {}
    cols = st.columns(len(s2.SHAPES[shape][1]))
    for col, (name, (default, lo, hi, help_)) in zip(cols, s2.SHAPES[shape][1].items()):
        seed(f"flows_shape_{shape}_{name}", float(default))
        params[name] = col.slider(name, float(lo), float(hi), step=0.05, help=help_, key=f"flows_shape_{shape}_{name}")
    target_spec = s2.shape_spec(shape, **params)
elif mode == "component table":
    rows = ss.get("flows_rows") or list(s2.DEFAULT_TABLE)
    edited = st.data_editor(pd.DataFrame(rows, columns=list(s2.TABLE_COLUMNS)), num_rows="dynamic", hide_index=True,
                            width="stretch", key=f"flows_table_{s2.rows_key(rows)}")
    try:
        target_spec = s2.spec_from_table(edited)
    except s2.InputError as exc:
        target_error = str(exc)
        st.error(f"Target table: {exc} (the last good result is kept)")
else:
    target_spec = sc2d.target
    st.caption(f"The target of the current scenario: {sc2d.title or target_spec.get('type')}.")

st.subheader("Flows")
which = st.multiselect("flows (side by side)", list(s2.FLOW_KEYS), key="flows_which", format_func=FLOW_NAMES.get)
c1, c2, c3 = st.columns(3)
n = int(c1.number_input("particles", 10, s2.MAX_PARTICLES, key="flows_n", step=10))
n, n_notice = limits.clamp("particles", n)
if n_notice:
    c1.warning(n_notice)
steps = int(c2.number_input("steps", 1, 2000, key="flows_steps", step=25))
steps, notice = limits.clamp("steps", steps)
if notice:
    c2.warning(notice)
seed_ = int(c3.number_input("seed", 0, 2**31 - 1, key="flows_seed"))
c1, c2, c3 = st.columns(3)
from_default = c1.checkbox("start where each flow starts by default", key="flows_from_default",
                           help="otherwise every flow starts from the same round cloud (σ = 0.5) at the point below")
sx = c2.number_input("start: x", key="flows_start_x", step=0.5, disabled=from_default)
sy = c3.number_input("start: y", key="flows_start_y", step=0.5, disabled=from_default)

flow_error = None if which else "Choose at least one flow."
if flow_error:
    st.error(flow_error)

run = st.button("Run", type="primary", key="flows_run_btn")
if run or ss.pop("flows_autorun", False):
    if target_error is not None:
        st.error("Fix the target before running (the last good result stays below).")
    elif flow_error is not None:
        st.error(flow_error)
    elif target_spec is not None:
        start = None if from_default else (float(sx), float(sy))
        try:  # budget and Stop as on Fit 1D; sessions asking for the same run at once share it
            stop_box, tj = st.empty(), s2.spec_json(target_spec)
            share = ("flows", tj, tuple(which), n, steps, seed_, start)
            ss[LAST] = sup.run_guarded(
                ss, GUARD, share, lambda guard: cached_flows(tj, tuple(which), n, steps, seed_, start, _guard=guard),
                stop_requested=sup.rerun_pending(get_script_run_ctx()),
                on_start=lambda guard: stop_box.button("Stop", key="flows_stop_btn", help=sup.stop_help(guard.budget_s)))
            stop_box.empty()
        except ValueError as exc:
            st.error(str(exc))

last = ss.get(LAST)
if last is None:
    st.info("Choose a target and flows, then press Run.")
else:
    if last.get("stopped"):
        st.warning(last["stopped"])
    figure, maps = last["figure"], None
    show_map = st.toggle(emap.MAP_TOGGLE, key="flows_show_map",
                         help="Arrows from the particles at the last step to T_ε(x): where entropic optimal "
                              "transport (cost |x − y|²) onto samples of p would still move them.")
    if show_map and not last.get("final_particles"):
        st.info("Run again to compute the transport map of this result.")
    elif show_map:
        maps = cached_maps(last["target"], emap.maps_key(last["final_particles"]))
        figure = emap.flows_map_figure(last, maps)
    st.plotly_chart(viz.for_display(figure), width="stretch", key="flows_anim")
    if maps:
        st.caption(emap.map_caption(maps, "flows"))
        st.dataframe(pd.DataFrame(emap.map_rows(maps, "flow")), hide_index=True, width="stretch")
    st.subheader("Where each flow ended")
    st.caption("The measure between the particles and samples of p (lower is closer), at the start and at the "
               "last step; status and wall-clock time.")
    st.dataframe(pd.DataFrame(last["table"]), hide_index=True, width="stretch")
    st.markdown("- **MMD flow**: kernel gradient flow; particles far from every target sample feel almost no "
                "pull when the kernel is narrow.\n"
                "- **Sinkhorn flow**: each particle moves toward the mass optimal transport assigns it; far particles "
                "are pulled as hard as near ones.\n"
                "- **SVGD**: particles follow ∇log p and repel each other through the kernel: a deterministic "
                "sample of p.\n"
                "- **Langevin**: ∇log p plus noise: samples p in the long run, but crossing between separated modes "
                "is rare.")
