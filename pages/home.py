"""Home: what divlab is and the conventions every page uses."""

import streamlit as st

st.title("divlab: an explorer of divergence geometry")
st.markdown(
    """
divlab fits a model distribution to a target by minimizing a divergence, and shows how the
choice of divergence shapes the answer: **mode-seeking** divergences (reverse KL) lock onto one
mode, **mass-covering** ones (forward KL) stretch over all of them, and the α, Rényi and skew
families move between the two.

Everything on these pages comes from the `divlab` Python library (PyTorch, CPU or GPU), which you
can also use without Streamlit, in notebooks and scripts.

### Conventions
- **p is the target** (fixed), **q is the model** (fitted); every divergence is written D(p‖q).
- `kl` is KL(p‖q), forward, mass-covering; `reverse_kl` is KL(q‖p), reverse, mode-seeking.
- Values are in **nats** (natural logarithms).
- **Infinity is an answer**: KL(p‖q) is +∞ when q has no mass where p does, and the page says why.
"""
)
st.page_link("pages/fit_1d.py", label="Fit 1D: fit a Normal to a 1D mixture with several divergences", icon="📈")
