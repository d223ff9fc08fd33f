"""Small helpers to drive a Streamlit app with Playwright: wait for script runs, read widgets and plots.

Streamlit marks its root `[data-testid="stApp"]` with `data-test-script-state` ("running" /
"notRunning"); an init script counts the finished runs so that a helper can wait for *the* run an
action triggered instead of sleeping.
"""

from __future__ import annotations

import os
import re
import time
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "assets" / "screenshots"
#: Playwright's wait limit: Streamlit reruns can be slow on a loaded 2-core machine (waits are on
#: elements, never sleeps, so a quiet machine does not pay for it)
TIMEOUT_MS = int(os.environ.get("DIVLAB_BROWSER_TIMEOUT_MS", "60000"))
#: how often set_number types and commits a value before it gives up (within TIMEOUT_MS in all)
COMMIT_TRIES = 3


def screenshots_enabled() -> bool:
    """Screenshots are written only when asked (DIVLAB_SCREENSHOTS=1), so CI never rewrites them."""
    return os.environ.get("DIVLAB_SCREENSHOTS", "") == "1"


COUNT_RUNS = """
(() => {
  window.__divlabRuns = 0;
  window.__divlabStates = [];  // [performance.now(), script state] at every change
  let last = null;
  const seen = (el) => {
    const s = el.getAttribute('data-test-script-state');
    if (s !== last) window.__divlabStates.push([performance.now(), s]);
    if (s === 'notRunning' && last !== null && last !== 'notRunning') window.__divlabRuns += 1;
    last = s;
  };
  new MutationObserver((muts) => {
    for (const m of muts) {
      if (m.type === 'attributes' && m.target.getAttribute('data-testid') === 'stApp') seen(m.target);
      for (const n of m.addedNodes || []) {
        if (n.nodeType === 1) {
          const app = n.matches('[data-testid=stApp]') ? n : n.querySelector('[data-testid=stApp]');
          if (app) seen(app);
        }
      }
    }
  }).observe(document, {subtree: true, childList: true, attributes: true,
                        attributeFilter: ['data-test-script-state']});
})();
"""

IDLE = '[data-testid="stApp"][data-test-connection-state="CONNECTED"][data-test-script-state="notRunning"]'


def install(page: Page) -> Page:
    """Count finished script runs on this page (call before the first goto)."""
    page.add_init_script(COUNT_RUNS)
    return page


def runs(page: Page) -> int:
    return int(page.evaluate("() => window.__divlabRuns || 0"))


def server_runs(page: Page) -> int:
    """Script runs the page's server has logged so far (st_server starts it with DIVLAB_LOG_RUNS=1)."""
    log = _server_log(page)
    return log.read_text(errors="replace").count("\ndivlab-run ") if log is not None and log.exists() else 0


def run_marks(page: Page) -> tuple[int, int]:
    """What :func:`wait_for_run` compares against: (runs the page saw, runs the server logged)."""
    return runs(page), server_runs(page)


def wait_for_run(page: Page, before: tuple[int, int], timeout_ms: float = TIMEOUT_MS) -> bool:
    """Wait until a script run after ``before`` (:func:`run_marks`) is over, as the page saw it (its
    script state went running -> notRunning). A run so quick that Streamlit's frontend never showed
    it running (both state changes drawn in one frame) is taken from the server's log instead, once
    the page has shown nothing for ``RUN_GRACE_S`` after the server logged it. True if a run was seen
    within ``timeout_ms``."""
    deadline = time.monotonic() + timeout_ms / 1000
    logged_at = None
    while True:
        if runs(page) > before[0]:
            wait_idle(page)
            return True
        if logged_at is None and server_runs(page) > before[1]:
            logged_at = time.monotonic()  # the line is written just before the run's last elements
        if logged_at is not None and time.monotonic() - logged_at > RUN_GRACE_S:
            print(f"wait_for_run: the server logged a run the page never showed running ({page.url[:60]})")
            wait_idle(page)
            return True
        if time.monotonic() > deadline:
            return False
        page.wait_for_timeout(50)  # poll both counters


#: how long after the server logged a run the page may take to show it (see wait_for_run)
RUN_GRACE_S = 2.0


SETTLED = """
() => !!document.querySelector('%s')
      && !document.querySelector('[data-testid="stSkeleton"]')
      && !document.querySelector('[data-stale="true"]')
""" % IDLE.replace("'", "\\'")


def wait_idle(page: Page) -> None:
    """Wait until no script runs and every element of the last run is drawn (no skeleton, none stale)."""
    page.wait_for_function(SETTLED)


@contextmanager
def expect_run(page: Page):
    """Wait until the script run started by the block's action has finished."""
    before = run_marks(page)
    yield
    if not wait_for_run(page, before):
        raise AssertionError(f"no script run within {TIMEOUT_MS / 1000:.0f} s on {page.url}; script states "
                             f"{page.evaluate('() => window.__divlabStates')}")


def _server_log(page: Page):
    from st_server import SERVER_LOGS

    return SERVER_LOGS.get("/".join(page.url.split("/")[:3]))


def server_log_tail(page: Page, chars: int = 6000) -> str:
    log = _server_log(page)
    return log.read_text(errors="replace")[-chars:] if log is not None and log.exists() else "(no server log)"


def assert_no_exception(page: Page) -> None:
    exc = page.locator('[data-testid="stException"]')
    if exc.count():
        raise AssertionError(f"exception box on {page.url}:\n" + "\n---\n".join(exc.all_inner_texts())
                             + "\n--- server log (tail) ---\n" + server_log_tail(page))
    body = page.locator('[data-testid="stMain"]').inner_text()
    assert "Traceback" not in body, body[:3000]


def open_page(page: Page, base: str, path: str = "", query: str = "") -> Page:
    """Open `base/path?query`, wait for the first run and check it raised nothing."""
    return open_url(page, f"{base}/{path}" + (f"?{query}" if query else ""))


def open_url(page: Page, url: str) -> Page:
    """Open a full URL (e.g. a share link), wait for the first run and check it raised nothing."""
    page.goto(url)
    page.wait_for_function("() => (window.__divlabRuns || 0) >= 1")
    wait_idle(page)
    page.locator('[data-testid="stMain"] h1').first.wait_for()
    assert_no_exception(page)
    return page


def main(page: Page) -> Locator:
    return page.locator('[data-testid="stMain"]')


def widget(page: Page, testid: str, label: str) -> Locator:
    """The widget of type `testid` (e.g. stNumberInput) whose label is exactly `label`."""
    lab = re.compile(rf"^\s*{re.escape(label)}\s*$")
    return page.locator(f'[data-testid="{testid}"]').filter(
        has=page.locator('[data-testid="stWidgetLabel"]', has_text=lab))


def number_input(page: Page, label: str) -> Locator:
    return widget(page, "stNumberInput", label).locator("input")


def set_number(page: Page, label: str, value) -> None:
    """Type a value into a number input and commit it (Enter), waiting for the rerun."""
    box = number_input(page, label)
    if float(box.input_value()) == float(value):
        return  # nothing to change: Streamlit would not rerun
    before = run_marks(page)
    # An Enter that lands while Streamlit re-renders the input (a delta of the previous run arriving
    # late) commits nothing and starts no run. Type it again, never wait blind.
    for attempt in range(COMMIT_TRIES):
        box.fill(str(value))
        box.press("Enter" if attempt == 0 else "Tab")  # a retry commits by leaving the input instead
        if wait_for_run(page, before, TIMEOUT_MS / COMMIT_TRIES):
            break
        if attempt == COMMIT_TRIES - 1:
            raise AssertionError(f"number input {label!r} = {value}: no script run after {COMMIT_TRIES} "
                                 f"commits (shown: {box.input_value()!r}); script states "
                                 f"{page.evaluate('() => window.__divlabStates')}\n--- server log (tail) "
                                 f"---\n{server_log_tail(page)}")
        print(f"set_number({label!r}, {value}): no run after commit {attempt + 1}, typing it again")
    wait_idle(page)
    expect(box).to_have_value(re.compile(rf"^{re.escape(str(value))}"))


def click_button(page: Page, name: str) -> None:
    with expect_run(page):
        page.get_by_role("button", name=name, exact=True).click()


PLOT_STATE = """
(el) => {
  const fl = el._fullLayout || {};
  const sl = (fl.sliders || [])[0];
  const frames = (el._transitionData || {})._frames || [];
  return {
    traces: (el._fullData || []).map(d => ({name: d.name === undefined ? null : d.name,
                                            x: Array.from(d.x || []), y: Array.from(d.y || [])})),
    frames: frames.length,
    sliderActive: sl ? sl.active : null,
    sliderSteps: sl ? sl.steps.length : null,
    buttons: (fl.updatemenus || []).flatMap(u => u.buttons.map(b => b.label)),
  };
}
"""


def plots(page: Page) -> Locator:
    return page.locator('[data-testid="stMain"] .js-plotly-plot')


def plot_state(plot: Locator) -> dict:
    return plot.evaluate(PLOT_STATE)


def dataframe_rows(frame: Locator) -> list[dict]:
    """The rows of an `st.dataframe` as dicts, read from glide-data-grid's accessible table."""
    frame.locator('[role="row"]').first.wait_for(state="attached")
    cells = frame.evaluate(
        "e => Array.from(e.querySelectorAll('[role=row]')).map(r => Array.from("
        "r.querySelectorAll('[role=gridcell],[role=columnheader]')).map(c => c.textContent))")
    header, *rows = cells
    return [dict(zip(header, r)) for r in rows]


def table_with(page: Page, column: str) -> Locator:
    """The st.dataframe whose header has `column` (e.g. Fit 1D's "final value" table)."""
    return page.locator('[data-testid="stDataFrame"]').filter(
        has=page.locator('[role="columnheader"]', has_text=re.compile(rf"^\s*{re.escape(column)}\s*$")))


def save_screenshot(page: Page, path, max_height: int = 2400) -> None:
    """Screenshot the whole app (sidebar + main) tall enough to show the page's content."""
    size = page.viewport_size
    height = page.evaluate(
        "() => { const b = document.querySelector('[data-testid=stMainBlockContainer]');"
        " return b ? Math.ceil(b.getBoundingClientRect().height + 120) : 0 }")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(max_height, height))})
    try:
        wait_idle(page)
        page.evaluate("() => document.fonts.ready")
        # from the page's top (a click on a figure's Play button may have scrolled the main column)
        page.evaluate("() => { const m = document.querySelector('[data-testid=stMain]'); if (m) m.scrollTop = 0;"
                      " window.scrollTo(0, 0); }")
        page.screenshot(path=str(path))
    finally:
        page.set_viewport_size(size)


def share_link(page: Page) -> str:
    """The share link, copied with the copy button of the sidebar's code block (read back from the clipboard)."""
    code = page.locator('[data-testid="stSidebar"] [data-testid="stCode"]').last
    shown = code.inner_text().strip()
    code.hover()
    code.get_by_role("button").first.click()
    copied = page.evaluate("() => navigator.clipboard.readText()").strip()
    assert copied == shown
    return copied
