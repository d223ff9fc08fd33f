"""Transport: which Sinkhorn gradient (unrolled, envelope, implicit, against a tight reference)
and which map (the Monge gap in 1D and between two Gaussians). Widgets in, divlab.app.transport out."""

import pandas as pd
import streamlit as st

from divlab import app_support as sup
from divlab.app import transport as tr

# a deep link that is a fresh server's first request runs this file alone: app.py takes it over
# (the one use of Streamlit's private PagesManager lives in divlab.app.streamlit_adapter)
from divlab.app.streamlit_adapter import route_deep_link  # noqa: E402

route_deep_link()

ss = st.session_state


@st.cache_data(show_spinner="Solving at every tolerance with every gradient mode (a few seconds)...", max_entries=16)
def cached_gradient(n: int, eps: float, seed: int, tols_text: str):
    return tr.gradient_view(n, eps, seed, tols_text)


@st.cache_data(show_spinner="Monge gaps at every ε...", max_entries=16)
def cached_monge_1d(n: int, seed: int):
    return tr.monge_1d_view(n, seed)


@st.cache_data(show_spinner="Fitting the entropic map and the Monge gaps...", max_entries=16)
def cached_monge_2d(n: int, eps: float, seed: int):
    return tr.monge_2d_view(n, eps, seed)


sc = ss.get(sup.SCENARIO_KEY) or sup.default_scenario()
fresh = sup.needs_seed(ss, "transport")  # once per scenario version (a lesson, link or file was loaded)
_lesson_sc = fresh and tr.lesson_of(sc) is not None  # a Transport lesson was just opened: its ε, n and seed
for _k, _v in tr.seed_values(sc).items():
    if _k not in ss or _lesson_sc:
        ss[_k] = _v

st.title("Transport")
st.caption("Entropic optimal transport with cost |x − y|², ε in squared units of x. Which gradient of the Sinkhorn "
           "divergence S_ε to trust at which solver tolerance, and which maps are optimal (the Monge gap). S_ε is "
           "symmetric, S_ε(p, q) = S_ε(q, p), in squared units of x; here p is the target and q the model.")
lesson = ss.get("lesson")
if lesson and lesson.get("id") in tr.TRANSPORT_LESSONS and tr.lesson_of(sc) == lesson.get("id"):
    st.info(f"**{lesson['title']}**: {lesson['look_for']}")

# ------------------------------------------------------------------ (A) which gradient?
st.header("Which gradient? Unrolled, envelope, implicit")
st.markdown(
    "Sinkhorn stops at a **tolerance** (the error of the plan's row marginals). Three ways to differentiate what it "
    "returns: **unrolled** (autodiff through every iteration: memory grows with the iterations), **envelope** "
    "(Danskin: differentiate the objective at the potentials it stopped at, treated as constants) and **implicit** "
    "(the implicit function theorem on the optimality conditions: also differentiates the potentials, so the plan "
    "and the entropic map). Each is compared with a reference solved to 10⁻¹²."
)
c1, c2, c3, c4 = st.columns([1, 1, 1, 2])
n = int(c1.slider("points per cloud (n)", tr.N_GRAD[0], tr.N_GRAD[1], step=10, key="transport_grad_n"))
c2.number_input("ε (squared units of x)", key="transport_grad_eps", step=0.05, format="%.3f",
                help=f"the entropic blur; {tr.EPS_GRAD[0]:g} to {tr.EPS_GRAD[1]:g} here (smaller ε needs more iterations)")
seed = int(c3.number_input("seed", 0, 9999, step=1, key="transport_grad_seed"))
c4.text_input("tolerances (comma-separated, loose to tight)", key="transport_grad_tols",
              help="the row-marginal L1 error at which Sinkhorn stops; between 1e-11 and 0.5, at most 10 values")
eps = tols_ok = None
try:
    eps = tr.check_epsilon(ss["transport_grad_eps"], tr.EPS_GRAD)
except tr.InputError as exc:
    c2.error(str(exc))
try:
    tols_ok = tr.parse_tolerances(ss["transport_grad_tols"])
except tr.InputError as exc:
    c4.error(str(exc))
if eps is not None and tols_ok is not None:
    try:
        gv = cached_gradient(n, eps, seed, ss["transport_grad_tols"])
    except tr.InputError as exc:  # e.g. the reference did not converge
        c2.error(str(exc))
    else:
        st.plotly_chart(gv["figure"], width="stretch", key="transport_gradient_chart")
        for line in gv["summary"]:
            st.markdown(f"- {line}")
        st.caption(gv["caption"])
        if gv["skipped"]:
            st.warning(f"Skipped to stay within {tr.GRADIENT_BUDGET_S:g} s: {', '.join(gv['skipped'])}.")
        with st.expander("every row: value, gradients, time and memory per mode and tolerance", expanded=False):
            st.dataframe(pd.DataFrame(gv["rows"]), hide_index=True, width="stretch")
        with st.expander("the reference and its checks", expanded=False):
            for line in gv["reference"]:
                st.markdown(f"- {line}")

# ------------------------------------------------------------------ (B) which map?
st.header("Which map? The Monge gap")
st.markdown(
    "The Monge gap of a map T on a sample ρ = (x₁, …, xₙ) is **M_ε(T) = (1/n) Σᵢ |xᵢ − T(xᵢ)|² − OT_ε(ρ, T#ρ)**: what "
    "moving every point by T costs, minus the cheapest way (entropic, blur ε) to move ρ onto the same image. Without "
    "blur M₀(T) ≥ 0, and M₀(T) = 0 exactly when T is an optimal (Monge) map. The blur lowers it by at most ε log n: "
    "**M₀ − ε log n ≤ M_ε ≤ M₀** (the shaded bands), and M_ε rises to M₀ as ε → 0. All in squared units of x."
)
m1, m2, m3, m4 = st.columns(4)
n1 = int(m1.slider("1D: points (a sample of N(0, 1), symmetrized)", tr.N_MAP_1D[0], tr.N_MAP_1D[1], step=50,
                   key="transport_map_n1"))
n2 = int(m2.slider("2D: source points", tr.N_MAP_2D[0], tr.N_MAP_2D[1], step=10, key="transport_map_n2"))
m3.number_input("2D: ε (squared units of x)", key="transport_map_eps", step=0.01, format="%.3f",
                help=f"the blur of the entropic map and of the gaps; {tr.EPS_MAP[0]:g} to {tr.EPS_MAP[1]:g} here")
map_seed = int(m4.number_input("seed (maps)", 0, 9999, step=1, key="transport_map_seed"))

st.subheader("1D: an increasing map and a reflection")
try:
    mv = cached_monge_1d(n1, map_seed)
except tr.InputError as exc:
    m1.error(str(exc))
else:
    st.plotly_chart(mv["figure"], width="stretch", key="transport_monge1d_chart")
    for line in mv["summary"]:
        st.markdown(f"- {line}")
    with st.expander("the numbers (every ε, both maps)", expanded=False):
        st.dataframe(pd.DataFrame(mv["rows"]), hide_index=True, width="stretch")

st.subheader("2D: a linear map that is not optimal, and the OT map")
try:
    map_eps = tr.check_epsilon(ss["transport_map_eps"], tr.EPS_MAP, "2D: ε")
    m2v = cached_monge_2d(n2, map_eps, map_seed)
except tr.InputError as exc:
    m3.error(str(exc))
else:
    st.plotly_chart(m2v["figure"], width="stretch", key="transport_monge2d_chart")
    for line in m2v["summary"]:
        st.markdown(f"- {line}")
    st.dataframe(pd.DataFrame(m2v["rows"]), hide_index=True, width="stretch")
    st.caption(m2v["caption"])
