"""Theory: f(u) and the gradient weight h(r) = r² f''(r) of each f-divergence, and h drawn
along x for the current target and model (why a divergence seeks modes or covers mass)."""

import numpy as np
import streamlit as st

from divlab import app_support as sup
from divlab import viz
from divlab.distributions import Normal
from divlab.divergences.registry import get

# a deep link that is a fresh server's first request runs this file alone: app.py takes it over
# (the one use of Streamlit's private PagesManager lives in divlab.app.streamlit_adapter)
from divlab.app.streamlit_adapter import route_deep_link  # noqa: E402

route_deep_link()

ss = st.session_state


@st.cache_data(show_spinner=False)
def cached_curves(keys: tuple):
    return sup.f_h_curves(list(keys))


sc = ss.get(sup.SCENARIO_KEY) or sup.default_scenario()
fkeys = sup.f_divergence_keys()
if sup.needs_seed(ss, "theory") or "theory_keys" not in ss:
    init = sup.init_of(sc)
    chosen0 = [d.key for d in sc.divergences if d.key in fkeys]
    ss["theory_keys"] = list(dict.fromkeys(chosen0)) or ["kl", "reverse_kl"]
    ss["theory_q_loc"] = float(init.get("loc", 0.0))
    ss["theory_q_scale"] = float(init.get("scale", 1.0))

st.title("Theory: why a divergence seeks modes or covers mass")
st.markdown(
    r"""
An f-divergence is $D_f(p\|q) = \mathbb{E}_q[f(r)]$ with $r = p/q$ (p the target, q the model).
Its gradient with respect to the model's parameters is
$\mathbb{E}_q\big[h(r)\,(\nabla_x \log q - \nabla_x \log p)\,\partial x/\partial\theta\big]$ with the **weight**
$h(r) = r^2 f''(r)$. Where $h$ grows with $r$ (forward KL: $h(r) = r$; Pearson χ²: $h \propto r^2$), regions where
p has mass that q misses ($r \gg 1$) pull hardest: the fit **covers mass**. Where $h$ is flat or falls (reverse KL:
$h \equiv 1$; Neyman χ²: $h \propto 1/r$), those regions hardly count and q settles on **one mode**.
Every f here is normalized so that $f(1) = f'(1) = 0$: the integrand is non-negative and $D(p\|p) = 0$.
"""
)
keys = st.multiselect("f-divergences", fkeys, key="theory_keys", format_func=lambda k: get(k).name)
if not keys:
    st.error("Choose at least one f-divergence.")
    st.stop()
curves = cached_curves(tuple(keys))
st.plotly_chart(viz.f_h_figure(curves), width="stretch", key="theory_fh")
for label, c in curves.items():
    if c["h"] is None:
        st.caption(f"{label}: h is not drawn: {c['note']}")

st.subheader("h along x for the current target p and a model q")
try:
    target = sup.target_1d(sc)
except ValueError as exc:
    sup.cannot_show(st, ss, str(exc), "theory")
    st.stop()
c1, c2 = st.columns(2)
q_loc = c1.number_input("model q: loc", key="theory_q_loc", step=0.5, format="%.3f")
q_scale = c2.number_input("model q: scale", key="theory_q_scale", step=0.1, format="%.3f")
try:
    model = Normal(float(q_loc), float(q_scale))
except ValueError as exc:
    st.error(f"model q: {'scale must be > 0, got ' + format(q_scale, 'g') if not q_scale > 0 else exc} "
             "(showing the scenario's start instead)")
    init = sup.init_of(sc)
    q_loc, q_scale = float(init.get("loc", 0.0)), float(init.get("scale", 1.0))
    try:
        model = Normal(q_loc, q_scale)
    except ValueError:  # a start the density pages cannot draw either: the standard Normal
        q_loc, q_scale = 0.0, 1.0
        model = Normal(q_loc, q_scale)
box = target.bounds().detach().cpu().numpy()
x = np.linspace(min(float(box[0, 0]), q_loc - 4 * q_scale), max(float(box[0, 1]), q_loc + 4 * q_scale), 400)
weights = sup.h_along_x(target, model, keys, x)
st.plotly_chart(viz.h_along_x_figure(target, model, weights, x), width="stretch", key="theory_hx")
st.caption("Read it with the model where it is: under a mode q does not cover, r = p/q is large, and a weight that "
           "grows with r (forward KL) makes that region dominate the gradient, so q stretches towards it; with "
           "h ≡ 1 (reverse KL) it counts no more than anywhere else q has mass, so q stays on its mode.")
