"""divlab Streamlit entry point: navigation over the pages and the shared sidebar.

Run with ``streamlit run app.py``. Pages are thin: widgets in, divlab calls, figures out.
"""

import streamlit as st

import divlab
from divlab.device import describe

st.set_page_config(page_title="divlab", layout="wide")

pages = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/fit_1d.py", title="Fit 1D", icon="📈"),
]
nav = st.navigation(pages)

with st.sidebar:
    st.markdown(f"**divlab** {divlab.__version__}")
    try:
        st.caption(f"Device: {describe()}")
    except ValueError as exc:  # e.g. DIVLAB_DEVICE names a device this machine lacks
        st.error(str(exc))
    st.caption("p = target (fixed), q = model (fitted), D(p‖q) in nats.")

nav.run()
