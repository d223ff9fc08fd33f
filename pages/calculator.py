"""Calculator: two distributions -> every applicable divergence, with estimators, error bars and
closed-form checks; and a Monte Carlo estimator's error against the sample size."""

import pandas as pd
import streamlit as st

from divlab import app_support as sup
from divlab import viz
from divlab.distributions import from_spec

# A deep link (e.g. /fit_1d?s=...) that is the server's first request runs this file directly
# (Streamlit's pages/-directory mode, before app.py ever called st.navigation): hand it to app.py,
# which routes to this page with the shared sidebar and the scenario from the URL.
from streamlit.runtime.pages_manager import PagesManager  # noqa: E402

if PagesManager.uses_pages_directory and "scenario_param" not in st.session_state:
    PagesManager.uses_pages_directory = False
    st.rerun()

ss = st.session_state


@st.cache_data(show_spinner="Computing every divergence...", max_entries=64)
def cached_rows(p_json: str, q_json: str, include_slow: bool):
    import json

    return sup.calculator_rows(from_spec(json.loads(p_json)), from_spec(json.loads(q_json)), include_slow=include_slow)


@st.cache_data(show_spinner="Estimating at several sample sizes...", max_entries=32)
def cached_curve(p_json: str, q_json: str, key: str):
    import json

    return sup.mc_error_curve(from_spec(json.loads(p_json)), from_spec(json.loads(q_json)), key)


sc = ss.get(sup.SCENARIO_KEY) or sup.default_scenario()
if sup.needs_seed(ss, "calc") or "calc_q_family" not in ss:
    init = sup.init_of(sc)
    ss.update({"calc_p_source": "the scenario's target", "calc_p_family": "normal", "calc_p_loc": 0.0,
               "calc_p_scale": 1.0, "calc_p_df": 5.0, "calc_q_family": "normal",
               "calc_q_loc": float(init.get("loc", 0.0)), "calc_q_scale": float(init.get("scale", 1.0)),
               "calc_q_df": 5.0, "calc_slow": False, "calc_curve_key": "kl"})

st.title("Calculator")
st.caption("Every divergence between a target p and a model q, with the estimator used and its error bar. Where a "
           "closed form exists for the pair, an independent estimator checks it and the difference |Δ| is shown. "
           "Direction: p is the target, q the model. Units: nats for the log-based divergences (KL, JS, Rényi, "
           "Bhattacharyya, Cauchy–Schwarz), none for H², TV, χ², α and Tsallis, units of x for transport.")


def one(prefix: str, who: str):
    c1, c2, c3, c4 = st.columns(4)
    fam = c1.selectbox(f"{who}: family", list(sup.FAMILIES), key=f"calc_{prefix}_family")
    loc = c2.number_input(f"{who}: loc", key=f"calc_{prefix}_loc", step=0.5, format="%.3f")
    scale = c3.number_input(f"{who}: scale", key=f"calc_{prefix}_scale", step=0.1, format="%.3f",
                            help="> 0; a uniform spans loc ± scale")
    df = c4.number_input(f"{who}: df (student_t)", key=f"calc_{prefix}_df", step=1.0, format="%.2f")
    try:
        return sup.simple_spec(fam, loc, scale, df if fam == "student_t" else None), None
    except sup.ComponentError as exc:
        msg = f"{who}: {str(exc).replace('row 1: ', '')}"
        st.error(msg)
        return None, msg


p_source = st.radio("target p", ["the scenario's target", "one distribution"], key="calc_p_source", horizontal=True)
if p_source == "one distribution":
    p_spec, p_err = one("p", "target p")
else:
    p_spec, p_err = sc.target, None
    try:
        sup.target_1d(sc)
    except ValueError as exc:
        p_spec, p_err = None, str(exc)
        sup.cannot_show(st, ss, p_err + " Or choose 'one distribution' above.", "calc")
q_spec, q_err = one("q", "model q")
slow = st.checkbox("include Sinkhorn (slow: minutes on a busy CPU)", key="calc_slow")

import json  # noqa: E402

if p_spec is not None and q_spec is not None:
    pj, qj = json.dumps(p_spec, sort_keys=True), json.dumps(q_spec, sort_keys=True)
    ss["calc_last"] = (pj, qj)
elif "calc_last" in ss:
    st.warning("Showing the last valid pair until the input above is fixed.")
last = ss.get("calc_last")
if last is None:
    st.stop()
pj, qj = last
st.plotly_chart(viz.pair_figure(from_spec(json.loads(pj)), from_spec(json.loads(qj))), width="stretch",
                key="calc_pair")
rows = cached_rows(pj, qj, slow)
COLS = ["divergence", "value", "unit", "± error", "estimator", "closed-form check", "direction"]
table = pd.DataFrame([{k: r.get(k) for k in COLS} for r in rows], columns=COLS)
st.dataframe(table, hide_index=True, width="stretch")

st.subheader("Monte Carlo error against sample size")
mc_keys = sup.mc_keys()
curve_key = st.selectbox("divergence", mc_keys, key="calc_curve_key")
try:
    curve = cached_curve(pj, qj, curve_key)
except ValueError as exc:
    st.error(str(exc))
else:
    st.plotly_chart(viz.error_curve_figure(curve), width="stretch", key="calc_curve")
    ref = sup.get(curve["key"]).with_unit(f"{curve['reference']:.6g}")
    st.caption(f"Reference: {ref} ({curve['reference_estimator']}). The error falls like "
               "1/√n while the estimator is unbiased; the reported standard error should track it.")
