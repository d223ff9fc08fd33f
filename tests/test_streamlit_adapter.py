"""Pins the Streamlit private APIs divlab.app.streamlit_adapter relies on (issue 14): if an
upgrade renames or removes them, this fails, not a visitor's deep link or Stop button."""

import pytest

pytest.importorskip("streamlit")

from divlab.app import streamlit_adapter as ad  # noqa: E402


def test_pages_manager_still_has_the_pages_directory_switch():
    from streamlit.runtime.pages_manager import PagesManager

    assert isinstance(getattr(PagesManager, "uses_pages_directory", None), (bool, type(None)))
    old = PagesManager.uses_pages_directory
    try:  # the adapter writes it as a class attribute
        PagesManager.uses_pages_directory = False
        assert PagesManager.uses_pages_directory is False
    finally:
        PagesManager.uses_pages_directory = old


def test_script_requests_state_reads_continue_then_a_rerun_request():
    from streamlit.runtime.scriptrunner_utils.script_requests import RerunData, ScriptRequests

    req = ScriptRequests()

    class Ctx:
        script_requests = req

    pending = ad.rerun_pending(Ctx())
    assert pending() is False  # a fresh run: CONTINUE
    assert req._state.name == "CONTINUE"
    req.request_rerun(RerunData())  # what a click during a run does
    assert pending() is True
    assert ad.rerun_pending(None)() is False  # no context: never pending


def test_no_page_uses_the_private_apis_directly():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for f in list((root / "pages").glob("*.py")) + [root / "app.py"]:
        text = f.read_text()
        assert "PagesManager" not in text.replace("private PagesManager lives", ""), f.name
        assert "script_requests" not in text and "._state" not in text, f.name
