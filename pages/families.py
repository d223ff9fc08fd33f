"""Families: α / Rényi / skew-KL / Tsallis: the best fit moving as the parameter slides."""

import pandas as pd
import streamlit as st

from divlab import app_support as sup
from divlab import viz

# a deep link that is a fresh server's first request runs this file alone: app.py takes it over
# (the one use of Streamlit's private PagesManager lives in divlab.app.streamlit_adapter)
from divlab.app.streamlit_adapter import route_deep_link  # noqa: E402

route_deep_link()

ss = st.session_state


@st.cache_data(show_spinner="Sweeping the parameter (one warm-started sweep)...", max_entries=32)
def cached_sweep(target_json: str, key: str, init_json: str, steps: int):
    import json

    return sup.family_sweep(json.loads(target_json), key, json.loads(init_json), steps)


@st.cache_data(show_spinner=False, max_entries=32)
def cached_phase(key: str, values: tuple, _progress=None):
    return sup.phase_view(key, list(values), progress=_progress)


sc = ss.get(sup.SCENARIO_KEY) or sup.default_scenario()
if sup.needs_seed(ss, "fam") or "fam_key" not in ss:
    keys = [d.key for d in sc.divergences if d.key in sup.FAMILY_SWEEPS]
    ss["fam_key"] = keys[0] if keys else "alpha"
    ss["fam_steps"] = min(max(int(sc.optimizer.steps), 20), 300)  # within the slider's range (20..1000)

st.title("Families")
st.caption("A divergence with a parameter is a continuum between behaviours. The sweep fits the model q for every "
           "value, each fit starting where the previous one ended (so it follows one branch of optima). "
           "Drag the slider under the chart or press Play: no recomputation.")
try:
    target = sup.target_1d(sc)
except ValueError as exc:
    sup.cannot_show(st, ss, str(exc), "fam")
    st.stop()

names = {"alpha": "α-divergence (Amari): α → 0 reverse KL, α → 1 forward KL",
         "renyi": "Rényi D_α: α → 1 forward KL", "skew_kl": "skew KL(p‖λp + (1−λ)q)",
         "tsallis": "Tsallis D_q: q → 1 forward KL"}
c1, c2 = st.columns([2, 1])
key = c1.selectbox("family", list(sup.FAMILY_SWEEPS), key="fam_key", format_func=names.get)
steps = int(c2.slider("steps per value", 20, 1000, key="fam_steps", step=10))
param, symbol, values = sup.FAMILY_SWEEPS[key]
st.caption(f"{symbol} from {values[0]:g} to {values[-1]:g} in {len(values)} values; the model starts from the "
           f"scenario's start {sup.params_text(sup.init_of(sc)) or '(default)'}.")

import json  # noqa: E402

try:
    results = cached_sweep(json.dumps(sc.target, sort_keys=True), key, json.dumps(sup.init_of(sc), sort_keys=True),
                           steps)
except ValueError as exc:
    st.error(str(exc))
    st.stop()

st.plotly_chart(viz.sweep_animation(target, results, param, symbol), width="stretch", key="fam_anim")
st.subheader("Overlay of several values")
pick_key = f"fam_picks_{key}"
if pick_key not in ss:
    ss[pick_key] = [values[0], values[len(values) // 2], values[-1]]
picks = st.multiselect(f"{symbol} values to overlay", values, key=pick_key)
chosen = [r for r in results if float(r.divergence_params[param]) in set(picks)]
if chosen:
    st.plotly_chart(viz.sweep_overlay(target, chosen, param, symbol), width="stretch", key="fam_overlay")
else:
    st.info(f"Pick at least one {symbol} value to overlay.")
with st.expander("the sweep as a table (final values D(p‖q))"):
    st.dataframe(pd.DataFrame(sup.sweep_rows(results, param, symbol)), hide_index=True, width="stretch")

st.subheader("Phase diagram: when does the best fit stop covering both modes?")
st.caption("Target 0.5·N(−d, 1) + 0.5·N(d, 1). For each chosen value (the overlay's values above) the optima are "
           "followed as the modes move apart (dl.phase_diagram: continuation with the switch refined by bisection); "
           "blue: the global optimum covers both modes, red: it sits on one; ◆ the switch separation.")
phase_key = f"fam_phase_{key}_{'_'.join(f'{v:g}' for v in sorted(picks))}"
if not picks:
    st.info(f"Pick {symbol} values in the overlay above to compute their phase diagram.")
elif st.button(f"Compute the phase diagram for {symbol} = {', '.join(f'{v:g}' for v in sorted(picks))} "
               "(about 10 s per value)", key="fam_phase_btn") or phase_key in ss:
    if phase_key not in ss:
        bar = st.progress(0.0, text="Following the optima as the modes separate...")
        try:
            ss[phase_key] = cached_phase(key, tuple(sorted(picks)),
                                         lambda i, n: bar.progress(i / n, text=f"{symbol} value {i + 1} of {n}..."))
        except ValueError as exc:
            st.error(str(exc))
        bar.empty()
    if phase_key in ss:
        view = ss[phase_key]
        st.plotly_chart(viz.phase_figure(view), width="stretch", key="fam_phase_chart")
        st.dataframe(pd.DataFrame(sup.phase_rows(view)), hide_index=True, width="stretch")
