"""The baseline of bench/bench_app.py: a bare Streamlit page with one plotly chart, the same
figure Fit 1D draws for the lesson (60 frames, 3 curves of 400 points and the loss panel), computed
once and cached like the lesson. Its opening time is what Streamlit and Chromium cost on this
machine for a chart of that size, with none of divlab's page around it.

    streamlit run bench/bare_app.py --server.headless true
"""

import streamlit as st

from divlab import app_support as sup
from divlab import viz


@st.cache_data(show_spinner=False)
def figure(lesson: str) -> dict:
    card = next(c for c in sup.lesson_cards() if c["id"] == lesson)
    return sup.fit1d_view(card["scenario"].to_json())["figure"]


st.plotly_chart(viz.for_display(figure(st.query_params.get("lesson", "two_equal_modes"))), width="stretch",
                key="bare_chart")
