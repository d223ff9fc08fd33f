"""The app layer: what the Streamlit pages call. The only part of divlab that may import
Streamlit, and only where a page needs it (:mod:`divlab.app.streamlit_adapter` holds every use of
Streamlit's private APIs)."""
