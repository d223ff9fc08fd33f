"""Landscape: the divergence over (μ, log σ), its local optima, basins and trajectories."""

import pandas as pd
import streamlit as st

from divlab import app_support as sup
from divlab import viz

# a deep link that is a fresh server's first request runs this file alone: app.py takes it over
# (the one use of Streamlit's private PagesManager lives in divlab.app.streamlit_adapter)
from divlab.app.streamlit_adapter import route_deep_link  # noqa: E402

route_deep_link()

ss = st.session_state


@st.cache_data(show_spinner="Computing the surface and the optima...", max_entries=64)
def cached_landscape(target_json: str, key: str, params_json: str, restarts: int):
    import json

    return sup.landscape_view(json.loads(target_json), key, json.loads(params_json), restarts=restarts)


sc = ss.get(sup.SCENARIO_KEY) or sup.default_scenario()
specs = {s.key: s for s in sup.fittable_specs()}
if sup.needs_seed(ss, "land") or "land_key" not in ss:
    keys = [d.key for d in sc.divergences if d.key in specs]
    ss["land_key"] = "reverse_kl" if "reverse_kl" in keys else (keys[0] if keys else "reverse_kl")
    ss["land_target"] = "the scenario's target"
    ss["land_sep"] = 6.0

st.title("Landscape")
st.caption("D(p‖q) for every Normal model q = N(μ, σ²), drawn over μ and log σ (colour: log10 of the value, in "
           "the divergence's unit). Stars are the local optima found from several starts; each start's path is coloured by the "
           "optimum it reached, so the colours show the basins.")

c1, c2 = st.columns(2)
key = c1.selectbox("divergence", list(specs), key="land_key", format_func=lambda k: f"{specs[k].name}: {specs[k].behaviour}")
source = c2.radio("target p", ["the scenario's target", "two equal modes (separation slider)"], key="land_target")
params = {}
for p in specs[key].params:
    lo, hi, default, step = sup.slider_range(p)
    ss.setdefault(f"land_{key}_{p.name}", default)
    params[p.name] = st.slider(f"{specs[key].name}: {p.label or p.name}", lo, hi, step=step, key=f"land_{key}_{p.name}")
if source.startswith("two"):
    sep = st.slider("separation between the two modes (each N(·, 1))", 0.0, 10.0, key="land_sep", step=0.5,
                    help="Reverse KL has one optimum while the modes overlap; past a separation of about 2 "
                         "(two standard deviations) it splits into one optimum per mode: a bifurcation.")
    target_spec = sup.two_modes_spec(sep)
else:
    target_spec = sc.target
    try:
        sup.target_1d(sc)
    except ValueError as exc:
        sup.cannot_show(st, ss, str(exc), "land")
        st.stop()
ss.setdefault("land_restarts", 12)
restarts = int(st.slider("starts (fits from random points)", 4, 32, key="land_restarts", step=4))

import json  # noqa: E402

try:
    view = cached_landscape(json.dumps(target_spec, sort_keys=True), key, json.dumps(params, sort_keys=True), restarts)
except ValueError as exc:
    st.error(str(exc))
    st.stop()
label = specs[key].label(**params) if params else specs[key].name
st.plotly_chart(viz.landscape_figure(view["landscape"], view["optima"], title=f"{label} over (μ, log σ)"),
                width="stretch", key="land_chart")
n_opt = len(view["optima"])
st.markdown(f"**{n_opt} distinct optimum{'s' if n_opt != 1 else ''}** found from {restarts} starts"
            + (f" ({view['unresolved']} start(s) did not settle)" if view["unresolved"] else "") + ".")
st.dataframe(pd.DataFrame(view["rows"]), hide_index=True, width="stretch")
