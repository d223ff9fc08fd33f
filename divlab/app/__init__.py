"""The app layer: what the Streamlit pages call, one module per page plus the shared state.

- :mod:`~divlab.app.state`: the session's scenario (URL, share link with its lesson, upload,
  export), the component table, divergence choices, lessons, drawn targets, value formatting;
- :mod:`~divlab.app.run`: one guarded run (wall-clock budget, Stop, the partial result);
- :mod:`~divlab.app.fit1d`, :mod:`~divlab.app.fit2d`, :mod:`~divlab.app.race`,
  :mod:`~divlab.app.families`, :mod:`~divlab.app.landscape`, :mod:`~divlab.app.flows`,
  :mod:`~divlab.app.calculator` (with :mod:`~divlab.app.estimators`, its error explorer),
  :mod:`~divlab.app.theory`, :mod:`~divlab.app.discrete`: one per page;
- :mod:`~divlab.app.streamlit_adapter`: every use of Streamlit's private APIs, pinned by
  tests/test_streamlit_adapter.py; the only module here that imports Streamlit.

``divlab.app_support``, ``app_support_2d``, ``app_discrete`` and ``app_estimators`` re-export these
names for the pages (``from divlab import app_support as sup``).
"""
