"""The Flows page's default run as a user meets it (issue 17: "the Flows page's defaults draw in ≤ 5 s").

    python bench/bench_flows_page.py [--runs 3]

Each run is a fresh Streamlit AppTest of pages/flows.py with its default controls (three blobs,
the four flows, 150 particles, 100 steps) and an empty cache: the time from the click on Run to
the script run's end (the figure and table built), as wall clock and as this process's CPU time,
with the load average before and after, and each flow's own time from the page's table. Prints
one JSON line per run and a summary line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def one_run() -> dict:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "pages" / "flows.py"), default_timeout=600)
    at.run()
    load = os.getloadavg()[0]
    c0, t0 = time.process_time(), time.perf_counter()
    at.button(key="flows_run_btn").click().run()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert not at.exception, [e.value for e in at.exception]
    per_flow = {}
    for df in at.dataframe:
        d = df.value
        if "flow" in d.columns and "time [s]" in d.columns:
            per_flow = dict(zip(d["flow"], d["time [s]"]))
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "load_before": round(load, 2),
            "load_after": round(os.getloadavg()[0], 2), "per_flow_s": per_flow}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    rows = []
    for _ in range(args.runs):
        r = one_run()
        rows.append(r)
        print(json.dumps(r), flush=True)
    med = statistics.median(r["wall_s"] for r in rows)
    print(json.dumps({"median_wall_s": med, "median_cpu_s": statistics.median(r["cpu_s"] for r in rows),
                      "target_s": 5.0, "met": med <= 5.0, "time": time.strftime("%H:%M UTC", time.gmtime())}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
