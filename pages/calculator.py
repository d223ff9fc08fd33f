"""Calculator: two distributions -> every applicable divergence, with estimators, error bars and
closed-form checks; and a Monte Carlo estimator's error against the sample size."""

import pandas as pd
import streamlit as st

from divlab import app_support as sup
from divlab import viz
from divlab.distributions import from_spec

# a deep link that is a fresh server's first request runs this file alone: app.py takes it over
# (the one use of Streamlit's private PagesManager lives in divlab.app.streamlit_adapter)
from divlab.app.streamlit_adapter import route_deep_link  # noqa: E402

route_deep_link()

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

st.subheader("Estimator error explorer: KL and Rényi from samples alone")
st.caption("Every sample estimator (knn, nn_ratio, kde; the variational lower bounds dv and nwj) on a Gaussian "
           "pair p = N(0, I_d), q = N(μ, 1.2² I_d) with |μ| = 0.5, against the closed form (dashed), over the "
           "sample size n (each side) and the dimension d. Bars: the estimator's own 3·stderr + bias indicator.")
from divlab import app_estimators as est_app  # noqa: E402
from divlab.viz.estimators import estimator_error_figure  # noqa: E402


@st.cache_data(show_spinner="Running the sample estimators...", max_entries=16)
def cached_explorer(key: str, names: tuple, ns: tuple, dims: tuple, seeds: int):
    return est_app.estimator_error_table(key, list(names), list(ns), list(dims), seeds)


with st.expander(f"Lesson: {est_app.LESSON['title']}"):
    st.write(est_app.LESSON["look_for"])
    if st.button("Load this lesson's settings", key="calc_explore_lesson"):
        cfg = est_app.LESSON["settings"]
        ss.update({"calc_explore_key": cfg["key"], "calc_explore_names": cfg["estimators"],
                   "calc_explore_ns": cfg["ns"], "calc_explore_dims": cfg["dims"], "calc_explore": True})
        st.rerun()
for k, v in (("calc_explore_key", "kl"), ("calc_explore_names", est_app.DEFAULTS["estimators"]),
             ("calc_explore_ns", est_app.DEFAULTS["ns"]), ("calc_explore_dims", [1, 2, 5])):
    ss.setdefault(k, v)
e1, e2, e3, e4 = st.columns(4)
ex_key = e1.selectbox("divergence", ["kl", "renyi"], key="calc_explore_key",
                      help="renyi at α = 0.5; dv and nwj bound KL only")
ex_names = e2.multiselect("estimators", list(est_app.SAMPLE_ESTIMATORS), key="calc_explore_names")
ex_ns = e3.multiselect("sample sizes n", [30, 100, 300, 1000, 3000, 10000], key="calc_explore_ns")
ex_dims = e4.multiselect("dimensions d", [1, 2, 5, 10], key="calc_explore_dims")
run_ex = st.checkbox("run the explorer (seconds to a minute on a busy CPU)", key="calc_explore")
if run_ex:
    if not ex_names or not ex_ns or not ex_dims:
        st.warning("Choose at least one estimator, one sample size and one dimension.")
    else:
        try:
            ex_rows = cached_explorer(ex_key, tuple(ex_names), tuple(sorted(ex_ns)), tuple(sorted(ex_dims)), 1)
        except ValueError as exc:
            st.error(str(exc))
        else:
            if ex_rows:
                st.plotly_chart(estimator_error_figure(ex_rows), width="stretch", key="calc_explore_fig")
                st.dataframe(pd.DataFrame(ex_rows)[["estimator", "d", "n", "closed_form", "estimate", "bar",
                                                    "abs_error", "seconds"]], hide_index=True, width="stretch")
            else:
                st.info("No chosen estimator applies to this divergence (dv and nwj estimate KL only).")
