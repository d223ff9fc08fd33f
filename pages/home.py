"""Home: what divlab is, its conventions, and the lesson gallery (one click opens a lesson)."""

from pathlib import Path

import streamlit as st

from divlab import app_support as sup
from divlab import viz

# a deep link that is a fresh server's first request runs this file alone: app.py takes it over
# (the one use of Streamlit's private PagesManager lives in divlab.app.streamlit_adapter)
from divlab.app.streamlit_adapter import route_deep_link  # noqa: E402

route_deep_link()

ss = st.session_state
# a lesson opened by its button (on_click below): switch before drawing the gallery again
if ss.get("home_goto"):
    st.switch_page(sup.PAGE_FILES[ss.pop("home_goto")])


def open_lesson(card: dict, page: str) -> None:
    """The Open button's callback: it runs before the rerun, so the rerun goes straight to the page."""
    ss["lesson"] = card
    sup.set_scenario(ss, card["scenario"], "lesson")
    ss["home_goto"] = page


@st.cache_data(show_spinner=False)
def cached_cards():
    root = Path(__file__).resolve().parent.parent
    return sup.lesson_cards([name for name, f in sup.PAGE_FILES.items() if (root / f).exists()])


@st.cache_data(show_spinner=False)
def cached_thumbnail(lesson_id: str):
    card = next(c for c in cached_cards() if c["id"] == lesson_id)
    return viz.thumbnail(card["scenario"].target, sup.init_of(card["scenario"]))


st.title("divlab: an explorer of divergence geometry")
st.markdown(
    """
divlab fits a model distribution q to a target p by minimizing a divergence, and shows how the
choice of divergence shapes the answer: **mode-seeking** divergences (reverse KL) lock onto one
mode, **mass-covering** ones (forward KL) stretch over all of them, and the α, Rényi and skew
families move between the two. **p is the target** (fixed), **q the model** (fitted), every
divergence is written D(p‖q); log-based ones (KL, JS, Rényi) are in **nats**, H², TV and χ² have no unit;
infinity is an answer, shown as ∞ with its reason.
"""
)

st.header("Lessons")
st.caption("Each lesson is a scenario: a target, a model start and the divergences to compare. The thumbnail shows "
           "the target p (shaded) and the model's starting point q (dashed). Open one; every page then works on it, "
           "and the share link in the sidebar reproduces it.")

cards = cached_cards()
cols = st.columns(3)
for i, card in enumerate(cards):
    with cols[i % 3].container(border=True):
        st.markdown(f"**{card['title']}**")
        st.plotly_chart(cached_thumbnail(card["id"]), width="stretch", key=f"home_thumb_{card['id']}",
                        config={"displayModeBar": False, "staticPlot": True})
        st.caption(card["sentence"])
        b1, b2 = st.columns(2)
        if card["page"] is None:
            b1.caption(f"Needs the {sup.PAGE_TITLES[card['wanted_page']]} page, which this app does not have.")
        targets = [t for t in (card["page"], card["also"]) if t]
        for col, page in zip((b1, b2), targets):
            col.button(f"Open on {sup.PAGE_TITLES[page]}", key=f"home_open_{card['id']}_{page}_btn",
                       type="primary" if page == card["page"] else "secondary", on_click=open_lesson,
                       args=(card, page))
