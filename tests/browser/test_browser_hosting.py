"""Hostile uploads through the sidebar of a real `streamlit run` (issue 7): a 50 MB JSON and a
1 000-level nested JSON each get a clear message within 2 s, the current scenario is kept, and the
app stays responsive (a page switch and a fit still complete)."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

import st_driver as d

MESSAGE_S = 2.0


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uploads")
    big = folder / "huge.json"
    pad = "x" * (50_000_000 - 100)
    big.write_text('{"version": 1, "title": "' + pad + '", "target": {"type": "normal", "loc": 0, "scale": 1}}')
    nested = folder / "nested.json"
    nested.write_text("[" * 1000 + "]" * 1000)
    return {"big": big, "nested": nested}


def uploader_input(page):
    return page.locator('[data-testid="stSidebar"] [data-testid="stFileUploader"] input[type="file"]')


def share_link(page) -> str:
    return page.locator('[data-testid="stSidebar"] [data-testid="stCode"]').last.inner_text()


def still_responsive(page, server) -> None:
    """A page switch runs, and a short fit on Fit 1D draws its chart."""
    d.open_page(page, server, "fit_1d")
    d.set_number(page, "steps", 30)
    d.click_button(page, "Run")
    d.assert_no_exception(page)
    expect(d.plots(page).first).to_be_visible()


def test_a_50_mb_upload_gets_a_clear_message_within_2_s(server, page, hostile_files):
    d.install(page)
    d.open_page(page, server)
    before = share_link(page)
    t0 = time.monotonic()
    uploader_input(page).set_input_files(str(hostile_files["big"]))
    msg = page.locator('[data-testid="stSidebar"] [data-testid="stFileUploader"]').get_by_text(
        re.compile(r"File must be 1(\.0)?\s?MB or smaller"))
    msg.wait_for(timeout=MESSAGE_S * 1000)
    elapsed = time.monotonic() - t0
    assert elapsed < MESSAGE_S, f"{elapsed:.2f} s"
    print(f"50 MB upload: message after {elapsed:.2f} s")
    d.wait_idle(page)
    d.assert_no_exception(page)
    assert share_link(page) == before  # the current scenario is kept
    still_responsive(page, server)


def test_a_1000_level_nested_upload_gets_a_clear_message_within_2_s(server, page, hostile_files):
    d.install(page)
    d.open_page(page, server)
    before = share_link(page)
    t0 = time.monotonic()
    uploader_input(page).set_input_files(str(hostile_files["nested"]))
    err = page.locator('[data-testid="stSidebar"] [data-testid="stAlert"]').filter(
        has_text=re.compile(r"nested\.json: scenario: JSON nested deeper than 20 levels"))
    err.wait_for(timeout=MESSAGE_S * 1000)
    elapsed = time.monotonic() - t0
    assert elapsed < MESSAGE_S, f"{elapsed:.2f} s"
    print(f"1000-level upload: message after {elapsed:.2f} s")
    expect(err).to_contain_text("The current scenario is kept.")
    d.wait_idle(page)
    d.assert_no_exception(page)
    assert share_link(page) == before
    still_responsive(page, server)
