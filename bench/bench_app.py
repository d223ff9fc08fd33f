"""Benchmark of the Streamlit app in a real browser (Playwright driving Debian's Chromium).

Two numbers, each the median over a few runs:

1. **Fit 1D, Run → chart drawn**: on Fit 1D with 3 divergences (forward KL, reverse KL, JS) and
   500 steps, the time from the click on Run until the new animation is drawn (the plotly
   figure holds the new data and the script run is over). Each run starts the model from a
   different initial loc, so the result cache cannot answer.
2. **Opening a cached lesson**: a new visitor (fresh browser context, i.e. a new session) on Home
   clicks "Open on Fit 1D" for a lesson that an earlier visitor already opened; the time from the
   click until the lesson's animation is drawn on Fit 1D. Two variants for context: the same click
   a second time in one session (back to Home, open it again: the Fit 1D page's element code is
   loaded by then), and the lesson's share link opened directly (page load, websocket, script run
   and drawing all included).

    python bench/bench_app.py                  # print the table
    python bench/bench_app.py --runs 5 --write # also rewrite the app section of docs/benchmarks.md

``--write`` replaces only the text between ``<!-- app:begin -->`` and ``<!-- app:end -->`` in
docs/benchmarks.md (the markers are appended at the end of the file when absent).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import signal
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))  # the browser tests' server and page helpers
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import st_driver as d  # noqa: E402
from _measure import logged_runs  # noqa: E402
from st_server import CHROMIUM, CHROMIUM_ARGS, streamlit_server  # noqa: E402

from divlab import app_support as sup  # noqa: E402

DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- app:begin -->", "<!-- app:end -->"
ANIM = '[data-testid="stMain"] .st-key-fit1d_anim .js-plotly-plot'
TARGET_FIT_S, TARGET_LESSON_S = 1.0, 0.5
#: issue 14: a cached lesson opens in at most this many times a bare page with one chart of the same size
TARGET_RATIO = 1.5

# A fingerprint of the animation on screen: changes when a new figure (other data) is drawn.
FINGERPRINT = """
() => {
  const el = document.querySelector('%s');
  if (!el || !el._fullData) return null;
  const parts = el._fullData.map(t => {
    const y = t.y || []; return y.length ? [y.length, y[0], y[y.length >> 1], y[y.length - 1]].join(':') : '-';
  });
  return parts.join('|') + '#' + (((el._transitionData || {})._frames || []).length);
}
""" % ANIM
DRAWN_AND_SETTLED = """
(before) => {
  const fp = (%s)();
  const done = fp !== null && fp !== before && (%s)();
  if (done) window.__drawnAt = performance.now();
  return done;
}
""" % (FINGERPRINT.strip(), d.SETTLED.strip())


def breakdown(page, t_click: float) -> tuple[float, float, float]:
    """(click → first script run starts, script runs, last run over → drawn) in seconds, from the
    script-state changes the page recorded (several runs when the page reruns itself, e.g. a page switch)."""
    states, drawn = page.evaluate("() => [window.__divlabStates, window.__drawnAt]")
    after = [(t, s) for t, s in states if t >= t_click]
    starts = [t for t, s in after if s == "running"]
    ends = [t for t, s in after if s == "notRunning"]
    if not starts or not ends:
        return (float("nan"),) * 3
    return ((starts[0] - t_click) / 1e3, (ends[-1] - starts[0]) / 1e3, (drawn - ends[-1]) / 1e3)


def log_offset(url: str) -> int:
    """Where the server log ends now (its script-run lines after this point belong to the next action)."""
    from st_server import SERVER_LOGS

    log = SERVER_LOGS.get(url)
    return log.stat().st_size if log is not None and log.exists() else 0


def server_seconds(url: str, start: int) -> float:
    """Seconds of the script runs the server logged since ``start`` (app.py's clock, DIVLAB_LOG_RUNS=1)."""
    from st_server import SERVER_LOGS

    log = SERVER_LOGS.get(url)
    if log is None or not log.exists():
        return float("nan")
    return sum(t for _, t in logged_runs(log, start)[0])


def fingerprint(page):
    return page.evaluate(FINGERPRINT)


def wait_drawn(page, before):
    page.wait_for_function(DRAWN_AND_SETTLED, arg=before, polling="raf")


def fit_scenario(steps: int, divergences: list[str]):
    return sup.build_scenario(sup.spec_from_components(sup.DEFAULT_COMPONENTS), [(k, {}) for k in divergences],
                              {"loc": -2.0, "scale": 1.0}, steps=steps, title="bench_app")


def bench_fit(browser, url: str, runs: int, steps: int, divergences: list[str]) -> list[float]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx.set_default_timeout(max(d.TIMEOUT_MS, 300_000))  # a loaded machine can take minutes
    try:
        page = d.install(ctx.new_page())
        sc = fit_scenario(steps, divergences)
        d.open_page(page, url, "fit_1d", sup.share_query(sc).lstrip("?"))  # a loaded scenario runs on open
        page.wait_for_function("() => !!document.querySelector('%s')" % ANIM)
        d.wait_idle(page)
        d.assert_no_exception(page)
        rows = d.dataframe_rows(d.table_with(page, "final value"))
        assert len(rows) == len(divergences), rows
        # live mode off: this measures the click on Run (live mode refits on the start's change itself)
        with d.expect_run(page):
            d.main(page).get_by_text("Live: refit as you edit", exact=False).click()
        d.wait_idle(page)
        times, parts = [], []
        for i in range(runs):
            d.set_number(page, "initial loc", round(-2.0 + 0.05 * (i + 1), 3))  # a new scenario: no cache hit
            d.wait_idle(page)
            before = fingerprint(page)
            button = page.get_by_role("button", name="Run", exact=True)
            t_click = page.evaluate("() => performance.now()")
            at = log_offset(url)
            t0 = time.perf_counter()
            button.click()
            wait_drawn(page, before)
            times.append(time.perf_counter() - t0)
            time.sleep(0.2)  # the run's log line is written as it ends
            parts.append(breakdown(page, t_click) + (server_seconds(url, at),))
            d.assert_no_exception(page)
        return times, parts
    finally:
        ctx.close()


def open_lesson_from_home(browser, url: str, lesson: str, second: bool = False) -> float:
    """A new session on Home clicks "Open on Fit 1D"; time until the lesson's animation is drawn.
    ``second``: time the second such opening in the session instead (the visitor opened the lesson
    once, went back to Home and opens it again): Chromium has loaded and compiled the Fit 1D page's
    element code by then, so this is the opening without that one-off cost."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx.set_default_timeout(max(d.TIMEOUT_MS, 300_000))  # a loaded machine can take minutes
    try:
        page = d.install(ctx.new_page())
        d.open_page(page, url)
        button = page.locator(f'.st-key-home_open_{lesson}_fit_1d_btn button')
        button.wait_for()
        if second:
            button.click()
            wait_drawn(page, None)
            page.locator('[data-testid="stSidebarNav"] a').filter(has_text=sup.PAGE_TITLES["home"]).click()
            button.wait_for()
            page.wait_for_function("() => !document.querySelector('%s')" % ANIM)
            d.wait_idle(page)
        t_click = page.evaluate("() => performance.now()")
        at = log_offset(url)
        t0 = time.perf_counter()
        button.click()
        wait_drawn(page, None)
        elapsed = time.perf_counter() - t0
        assert "/fit_1d" in page.url, page.url
        d.assert_no_exception(page)
        time.sleep(0.2)
        return elapsed, breakdown(page, t_click) + (server_seconds(url, at),)
    finally:
        ctx.close()


def open_lesson_link(browser, url: str, lesson: str) -> float:
    sc = next(p["scenario"] for p in sup.presets() if p["id"] == lesson)
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx.set_default_timeout(max(d.TIMEOUT_MS, 300_000))  # a loaded machine can take minutes
    try:
        page = d.install(ctx.new_page())
        at = log_offset(url)
        t0 = time.perf_counter()
        page.goto(f"{url}/fit_1d{sup.share_query(sc, lesson)}")
        wait_drawn(page, None)
        elapsed = time.perf_counter() - t0
        d.assert_no_exception(page)
        time.sleep(0.2)
        return elapsed, breakdown(page, 0.0) + (server_seconds(url, at),)
    finally:
        ctx.close()


def bench_lesson(browser, url: str, runs: int, lesson: str) -> dict[str, list[float] | str]:
    out: dict[str, list[float] | str] = {}
    try:
        open_lesson_from_home(browser, url, lesson)  # the first visitor computes it
        got = [open_lesson_from_home(browser, url, lesson) for _ in range(runs)]
        out["home"], out["home_parts"] = [g[0] for g in got], [g[1] for g in got]
    except Exception as exc:  # reported in the table, the other variant still runs
        out["home_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    try:
        got = [open_lesson_from_home(browser, url, lesson, second=True) for _ in range(runs)]
        out["again"], out["again_parts"] = [g[0] for g in got], [g[1] for g in got]
    except Exception as exc:
        out["again_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    try:
        open_lesson_link(browser, url, lesson)
        got = [open_lesson_link(browser, url, lesson) for _ in range(runs)]
        out["link"], out["link_parts"] = [g[0] for g in got], [g[1] for g in got]
    except Exception as exc:
        out["link_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return out


BARE_CHART = '[data-testid="stMain"] .st-key-bare_chart .js-plotly-plot'
DRAWN = "(sel) => { const el = document.querySelector(sel); return !!(el && el._fullData && el._fullData.length); }"
PAGES = ("home", "fit_1d", "fit_2d", "race", "families", "landscape", "flows", "calculator", "theory", "discrete")


@contextlib.contextmanager
def bare_server():
    """`streamlit run bench/bare_app.py` on a free loopback port (the baseline page)."""
    import subprocess
    import tempfile
    import urllib.request

    from st_server import free_port, stop

    port = free_port()
    log = open(Path(tempfile.mkdtemp(prefix="divlab-bare-")) / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "bench/bare_app.py", "--server.headless",
                             "true", "--server.address", "127.0.0.1", "--server.port", str(port),
                             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
                            cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        yield url
    finally:
        stop(proc)
        log.close()


def open_and_time(browser, url: str, selector: str, timeout_ms: int = 300_000) -> float:
    """A fresh browser context opens ``url``; seconds from navigation start until the plotly chart
    at ``selector`` holds its data."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    ctx.set_default_timeout(timeout_ms)
    try:
        page = ctx.new_page()
        t0 = time.perf_counter()
        page.goto(url)
        page.wait_for_function(DRAWN, arg=selector, timeout=timeout_ms)
        return time.perf_counter() - t0
    finally:
        ctx.close()


def bench_baseline(browser, runs: int, lesson: str) -> list[float]:
    with bare_server() as url:
        open_and_time(browser, f"{url}/?lesson={lesson}", BARE_CHART)  # computes and caches the figure
        return [open_and_time(browser, f"{url}/?lesson={lesson}", BARE_CHART) for _ in range(runs)]


def bench_pages(browser, url: str, runs: int) -> dict[str, list[float] | str]:
    """Each page opened by URL in a fresh context (the default scenario): seconds until its first
    plotly chart is drawn; a page that draws none before Run says so."""
    out: dict[str, list[float] | str] = {}
    for name in PAGES:
        sel = '[data-testid="stMain"] .js-plotly-plot'
        try:
            open_and_time(browser, f"{url}/{'' if name == 'home' else name}", sel, 120_000)  # warm: caches
            out[name] = [open_and_time(browser, f"{url}/{'' if name == 'home' else name}", sel, 120_000)
                         for _ in range(runs)]
        except Exception as exc:  # noqa: BLE001 - a page without a chart before Run: reported as such
            out[name] = f"no chart before Run ({type(exc).__name__})"
    return out


def fmt(ts: list[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in ts)


def fmt_parts(parts) -> str:
    """Medians of (click → run starts, script runs, run over → drawn) | the server's own script time."""
    cols = list(zip(*parts))
    page_view = " / ".join(f"{statistics.median(c):.2f}" for c in cols[:3])
    return page_view + (f" | {statistics.median(cols[3]):.3f}" if len(cols) > 3 else " | ")


def verdict(median: float, target: float) -> str:
    return f"met (≤ {target:g} s)" if median <= target else f"**missed** (target ≤ {target:g} s)"


def report(args, fit_times, lesson, load_before, load_after, wall, pages=None, base=None) -> str:
    import streamlit
    import torch
    from importlib.metadata import version

    lines = [
        "## The app in a browser (`bench/bench_app.py`)",
        "",
        f"Playwright {version('playwright')} driving Debian's Chromium ({CHROMIUM}, headless) against "
        f"`streamlit run app.py` (Streamlit {streamlit.__version__}) on loopback; torch {torch.__version__}; "
        f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}); "
        f"load average {load_before:.1f} before and {load_after:.1f} after the run"
        + (" (the machine was shared with other work)" if load_before > 1.0 else " (nothing else running)")
        + f"; {wall:.0f} s in all.",
        "",
        "```",
        f"python bench/bench_app.py --runs {args.runs} --steps {args.steps} --lesson {args.lesson} --write",
        "```",
        "",
        "| measurement | runs (s) | median (s) | target | median split (s), as the page saw it: click → script starts / "
        "script runs / run over → drawn | the script runs by the server's clock (s) |",
        "|---|---|---|---|---|---|",
    ]
    fit_times, fit_parts = fit_times
    fm = statistics.median(fit_times)
    lines.append(f"| Fit 1D, {len(args.divergences)} divergences ({', '.join(args.divergences)}), {args.steps} "
                 f"steps: click on Run → animation drawn (new initial loc each run: no cache hit) "
                 f"| {fmt(fit_times)} | {fm:.2f} | {verdict(fm, TARGET_FIT_S)} | {fmt_parts(fit_parts)} |")
    if "home" in lesson:
        lm = statistics.median(lesson["home"])
        lines.append(f"| cached lesson `{args.lesson}`: new session on Home, click \"Open on Fit 1D\" → animation "
                     f"drawn | {fmt(lesson['home'])} | {lm:.2f} | ≤ {TARGET_RATIO:g}× the bare page (below) "
                     f"| {fmt_parts(lesson['home_parts'])} |")
    else:
        lines.append(f"| cached lesson `{args.lesson}` from Home | not measured: {lesson.get('home_error')} | | | | |")
    if "again" in lesson:
        lm = statistics.median(lesson["again"])
        lines.append(f"| cached lesson `{args.lesson}`, opened from Home a second time in the same session (the "
                     f"Fit 1D page's element code already loaded) | {fmt(lesson['again'])} | {lm:.2f} | (context: "
                     f"the first opening's one-off cost removed) | {fmt_parts(lesson['again_parts'])} |")
    else:
        lines.append(f"| cached lesson `{args.lesson}`, second opening | not measured: {lesson.get('again_error')} "
                     "| | | | |")
    if "link" in lesson:
        lm = statistics.median(lesson["link"])
        lines.append(f"| cached lesson `{args.lesson}`: its share link in a new browser context, from navigation "
                     f"start (page load, websocket, script run) → animation drawn | {fmt(lesson['link'])} "
                     f"| {lm:.2f} | (context: includes loading the page) | {fmt_parts(lesson['link_parts'])} |")
    else:
        lines.append(f"| cached lesson `{args.lesson}` by share link | not measured: {lesson.get('link_error')} | | | | |")
    if base:
        bm = statistics.median(base)
        lines += ["", f"**Against the framework's own cost.** A bare Streamlit page with one plotly chart, the same figure "
                  f"(`bench/bare_app.py`, cached like the lesson), opened in a new browser context and measured the same "
                  f"way in the same run: {fmt(base)} s, median **{bm:.2f} s**. The target for a cached lesson is at "
                  f"most {TARGET_RATIO:g}× that baseline.", "",
                  "| measurement | median (s) | ÷ bare page | target |", "|---|---|---|---|",
                  f"| bare page, one chart of the same size | {bm:.2f} | 1.00 | |"]
        for label, key in (("lesson share link (`&lesson=`), new context → lesson chart drawn", "link"),
                           ("cached lesson from Home → drawn", "home")):
            if key in lesson:
                m = statistics.median(lesson[key])
                ok = "met" if m <= TARGET_RATIO * bm else "**missed**"
                lines.append(f"| {label} | {m:.2f} | {m / bm:.2f} | ≤ {TARGET_RATIO:g}×: {ok} |")
        for name, ts in (pages or {}).items():
            if isinstance(ts, list):
                m = statistics.median(ts)
                lines.append(f"| page {name} by URL (default scenario), new context → first chart drawn | {m:.2f} | "
                             f"{m / bm:.2f} | |")
            else:
                lines.append(f"| page {name} by URL | {ts} | | |")
    missed = [name for name, ts, target in (("Fit 1D Run → drawn", fit_times, TARGET_FIT_S),)
              if ts and statistics.median(ts) > target]
    if missed:
        lines += ["", f"**Targets missed in this run: {'; '.join(missed)}.** The machine had {os.cpu_count()} cores "
                  f"(load average {load_before:.1f}–{load_after:.1f}), shared by the server and the browser. The last "
                  "column is what the server's script runs took by its own clock; the rest of each time is Streamlit "
                  "moving the elements and Chromium (software rendering, --disable-gpu) building the page and "
                  "drawing the figure, on the same two cores."]
    lines += [
        "",
        "\"Drawn\" means: the plotly figure on the page holds the new data (a fingerprint of its traces and "
        "frames changed) and Streamlit's script run is over with no element left stale or as a skeleton; "
        "it is polled on every animation frame. Each lesson run is a fresh browser context (a new "
        "session, as a second student opening the same lesson); the first opening, which computes and "
        "caches the lesson, is not counted. The split comes from the times the page recorded at each change "
        "of Streamlit's script state: \"script runs\" spans every run the action caused (a page switch reruns "
        "the page), so it holds the server's work (the fit, or the cache lookup) and sending the elements; "
        "\"run over → drawn\" is the browser decoding and drawing the figure.",
    ]
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    doc = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    block = f"{BEGIN}\n{text}{END}"
    if BEGIN in doc and END in doc and doc.index(BEGIN) < doc.index(END):
        head, rest = doc.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        doc = head + block + tail
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    DOC.write_text(doc)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="timed runs per measurement (median reported)")
    ap.add_argument("--steps", type=int, default=500, help="optimizer steps of each Fit 1D run")
    ap.add_argument("--divergences", type=lambda s: s.split(","), default=["kl", "reverse_kl", "js"],
                    help="comma-separated divergence keys for Fit 1D")
    ap.add_argument("--lesson", default="two_equal_modes", help="lesson id opened on Fit 1D")
    ap.add_argument("--write", action="store_true", help="rewrite the app section of docs/benchmarks.md")
    args = ap.parse_args(argv)
    if not os.path.exists(CHROMIUM):
        print(f"bench_app: no Chromium at {CHROMIUM} (apt-get install chromium)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    # a plain `kill` ends the run through the `finally` blocks, so the streamlit server is stopped too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load_before, t_start = os.getloadavg()[0], time.perf_counter()
    os.environ["DIVLAB_LOG_RUNS"] = "1"  # the server logs each script run's time (app.py)
    with sync_playwright() as pw, streamlit_server() as url:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            warm = d.install(browser.new_page())  # first visit to "/": the cold imports, outside any timing
            warm.set_default_timeout(180_000)
            warm.goto(url)
            warm.wait_for_function("() => (window.__divlabRuns || 0) >= 1")
            warm.close()
            fit_times = bench_fit(browser, url, args.runs, args.steps, args.divergences)
            lesson = bench_lesson(browser, url, args.runs, args.lesson)
            pages = bench_pages(browser, url, max(1, args.runs // 2))
            base = bench_baseline(browser, args.runs, args.lesson)
        finally:
            browser.close()
    text = report(args, fit_times, lesson, load_before, os.getloadavg()[0], time.perf_counter() - t_start,
                  pages=pages, base=base)
    print(text)
    if args.write:
        write_section(text)
        print(f"wrote the app section of {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
