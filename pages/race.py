"""Race: one target, up to 6 divergences side by side, one synchronized animation."""

import pandas as pd
import streamlit as st

from divlab import app_support as sup
from divlab import limits, viz

# a deep link that is a fresh server's first request runs this file alone: app.py takes it over
# (the one use of Streamlit's private PagesManager lives in divlab.app.streamlit_adapter)
from divlab.app.streamlit_adapter import route_deep_link  # noqa: E402

route_deep_link()

ss = st.session_state


@st.cache_data(show_spinner="Racing the fits...", max_entries=32)
def cached_race(scenario_json: str):
    return sup.race_view(scenario_json)


sc = ss.get(sup.SCENARIO_KEY) or sup.default_scenario()
specs = sup.page_fit_specs()
first_params = {}
for d in sc.divergences:
    first_params.setdefault(d.key, dict(d.params))
if sup.needs_seed(ss, "race") or "race_divs" not in ss:
    ss["race_divs"] = [k for k in first_params if k in specs][: sup.MAX_FITS]
    ss["race_steps"] = int(sc.optimizer.steps)
    ss["race_autorun"] = ss.get("scenario_source", "default") != "default"

st.title("Race")
st.caption("One target p, one starting model q, up to six divergences: each panel is one fit, and one slider "
           "(or Play) moves them all together. Values D(p‖q) in each divergence's unit: nats for the log-based "
           "ones (KL, JS, Rényi ...), none for H², TV, χ² and α.")
try:
    target = sup.target_1d(sc)
except ValueError as exc:
    sup.cannot_show(st, ss, str(exc), "race")
    st.stop()

chosen = st.multiselect("divergences (up to 6)", list(specs), key="race_divs", max_selections=sup.MAX_FITS,
                        format_func=lambda k: f"{specs[k].name}: {specs[k].behaviour}")
# the range is the schema's: 1 up to this server's limit (a scenario never holds more)
steps = int(st.slider("steps", 1, int(limits.value("steps")), key="race_steps", step=1))
st.caption("Parameters (α, λ, q) are the scenario's where it sets them, otherwise the defaults; change them on Fit 1D.")

new_sc, error = None, None
if not chosen:
    error = "Choose at least one divergence."
    st.error(error)
else:
    try:
        new_sc = sup.build_scenario(sc.target, [(k, first_params.get(k, {})) for k in chosen], sup.init_of(sc),
                                    family=sc.model.family, steps=steps, lr=sc.optimizer.lr,
                                    optimizer=sc.optimizer.name, estimator=sc.estimator, seed=sc.seed, base=sc)
    except ValueError as exc:
        error = str(exc)
        st.error(f"These settings do not make a valid scenario: {error}")
    else:
        if new_sc != sc:
            sup.update_scenario(ss, new_sc)

if (st.button("Run the race", type="primary", key="race_run_btn") or ss.pop("race_autorun", False)) and new_sc:
    try:
        ss["race_last"] = cached_race(new_sc.to_json())
    except limits.RunStopped as stop:  # the server's wall-clock budget: the partial race, and why
        ss["race_last"] = stop.partial
        st.warning(stop.notice)
    except ValueError as exc:
        st.error(str(exc))

last = ss.get("race_last")
if last is None:
    st.info("Choose the divergences and press Run the race.")
else:
    st.plotly_chart(viz.for_display(last["figure"]), width="stretch", key="race_chart")
    st.subheader("Final fits")
    st.dataframe(pd.DataFrame(last["table"]), hide_index=True, width="stretch")
