"""Fit 1D: fit a Normal model q to a 1D target mixture p with several divergences at once."""

import pandas as pd
import streamlit as st

from divlab import app_support as sup
from divlab.viz import fit_animation

STATE_TABLE, STATE_LAST = "fit1d_components", "fit1d_last"


@st.cache_data(show_spinner="Fitting...", max_entries=64)
def cached_fits(components, choices, init, steps, lr):
    return sup.run_fits(components, choices, init, steps, lr)


st.title("Fit 1D")
st.caption("Target p: a mixture you edit below. Model q: a Normal(loc, scale), fitted by minimizing D(p‖q) "
           "for each chosen divergence from the same starting point. Values in nats.")

st.subheader("Target p")
table_in = pd.DataFrame(sup.table_records(st.session_state.get(STATE_TABLE, sup.DEFAULT_COMPONENTS)),
                        columns=list(sup.COLUMNS))
edited = st.data_editor(
    table_in, num_rows="dynamic", hide_index=True, width="stretch",
    column_config={
        "weight": st.column_config.NumberColumn("weight", help="≥ 0; weights are normalized"),
        "family": st.column_config.SelectboxColumn("family", options=list(sup.FAMILIES), required=True),
        "loc": st.column_config.NumberColumn("loc"),
        "scale": st.column_config.NumberColumn("scale", help="> 0; uniform rows span [loc − scale, loc + scale]"),
        "df": st.column_config.NumberColumn("df", help="degrees of freedom, student_t rows only"),
    },
)
components, table_error = None, None
try:
    components = sup.parse_components(edited)
    sup.mixture_from_rows(components)
except sup.ComponentError as exc:
    table_error = str(exc)
    st.error(f"Target table: {table_error}")

st.subheader("Model q = Normal(loc, scale) and divergences")
c1, c2, c3, c4 = st.columns(4)
init_loc = c1.number_input("initial loc", value=-2.0, step=0.5, format="%.3f")
init_scale = c2.number_input("initial scale", value=1.0, min_value=1e-3, step=0.1, format="%.3f")
steps = int(c3.number_input("steps", value=300, min_value=1, max_value=5000, step=50))
lr = c4.number_input("learning rate", value=0.05, min_value=1e-5, max_value=5.0, step=0.01, format="%.4f")

specs = {s.key: s for s in sup.fittable_specs()}
chosen = st.multiselect("divergences", list(specs), default=list(sup.DEFAULT_DIVERGENCES),
                        format_func=lambda k: f"{specs[k].name}: {specs[k].behaviour}")
choices = []
for key in chosen:
    params = {}
    for p in specs[key].params:
        lo, hi, default, step = sup.slider_range(p)
        params[p.name] = st.slider(f"{specs[key].name}: {p.label or p.name}", lo, hi, default, step,
                                   help=p.description or None, key=f"fit1d_{key}_{p.name}")
    choices.append((key, params))

if st.button("Run", type="primary"):
    if table_error is not None:
        st.error("Fix the target table before running (the last good result stays below).")
    elif not choices:
        st.error("Choose at least one divergence.")
    else:
        init = {"loc": float(init_loc), "scale": float(init_scale)}
        try:
            results = cached_fits(components, choices, init, steps, float(lr))
        except ValueError as exc:
            st.error(str(exc))
        else:
            target = sup.mixture_from_rows(components)
            st.session_state[STATE_LAST] = {"figure": fit_animation(target, results),
                                            "table": sup.result_rows(results)}

last = st.session_state.get(STATE_LAST)
if last is None:
    st.info("Choose divergences and press Run.")
else:
    st.plotly_chart(last["figure"], width="stretch")
    st.subheader("Final fits")
    st.dataframe(pd.DataFrame(last["table"]), hide_index=True, width="stretch")
