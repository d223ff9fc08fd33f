"""Hosting (issue 7): hostile uploads get a clear message fast, a run that exceeds its wall-clock
budget stops, says so and keeps its partial trajectory on screen, requests beyond a limit are
clamped with a visible notice; the deployment files are consistent."""

from __future__ import annotations

import json
import re
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest

import divlab as dl
from divlab import app_support as sup
from divlab import limits
from divlab.scenario import MAX_BYTES, MAX_DEPTH, Scenario, check_json_text, fit_groups, run_scenario

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 120


def fake_clock(step_s: float):
    """A clock that advances ``step_s`` seconds at every reading (deterministic budgets)."""
    t = [0.0]

    def clock():
        t[0] += step_s
        return t[0]
    return clock


def big_json(n_bytes: int) -> bytes:
    """A syntactically valid scenario-like JSON document of about ``n_bytes``."""
    pad = "x" * (n_bytes - 100)
    return json.dumps({"version": 1, "title": pad, "target": {"type": "normal", "loc": 0, "scale": 1}}).encode()


def nested_json(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


# ---------------------------------------------------------------------------------------------
# hostile uploads: a clear message within 2 s (library level; the browser test drives the sidebar)
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make, message", [
    pytest.param(lambda: big_json(50_000_000), f"is too large \\(at most {MAX_BYTES} bytes\\)", id="50MB"),
    pytest.param(lambda: nested_json(1000), f"nested deeper than {MAX_DEPTH} levels", id="1000-levels"),
    pytest.param(lambda: nested_json(1000).decode(), f"nested deeper than {MAX_DEPTH} levels", id="1000-levels-text"),
])
def test_hostile_upload_gets_a_clear_message_within_2_s(make, message):
    data = make()
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=message) as info:
        sup.scenario_from_upload(data, "evil.json")
    elapsed = time.perf_counter() - t0
    assert elapsed < 2.0, f"{elapsed:.2f} s"
    assert str(info.value).startswith("evil.json: ") and "\n" not in str(info.value)


def test_the_nesting_check_runs_before_json_parsing():
    """json.loads of 100 000 nested brackets would raise RecursionError; the check says why first."""
    with pytest.raises(RecursionError):
        json.loads("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="nested deeper"):
        check_json_text("[" * 100_000 + "]" * 100_000)


def test_upload_limit_agrees_with_the_scenario_limit():
    assert limits.upload_bytes() == MAX_BYTES
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["maxUploadSize"] * 1024 * 1024 >= MAX_BYTES  # Streamlit counts MiB


# ---------------------------------------------------------------------------------------------
# RunGuard: wall-clock budget and Stop as the fit callback
# ---------------------------------------------------------------------------------------------

def test_guard_stops_a_fit_at_its_budget_and_keeps_the_trajectory():
    target = dl.Mixture([dl.Normal(-3.0, 1.0), dl.Normal(3.0, 1.0)], weights=[0.5, 0.5])
    guard = limits.RunGuard(budget_s=10.0, clock=fake_clock(1.0))  # the 10th reading is past the budget
    res = dl.fit(target, family="normal", divergence="reverse_kl", steps=500, init={"loc": -2.0, "scale": 1.0},
                 callback=guard, polish=False)
    assert guard.stopped and guard.reason == "budget"
    assert res.status.startswith("stopped: by the caller after step ")
    n = int(res.status.rsplit(" ", 1)[-1])
    assert 5 <= n < 15 and len(res.losses) == n + 1 == len(res.trajectory["loc"])
    assert np.isfinite(res.losses).all()
    # the partial trajectory is the beginning of the full run
    full = dl.fit(target, family="normal", divergence="reverse_kl", steps=500, init={"loc": -2.0, "scale": 1.0},
                  polish=False)
    np.testing.assert_allclose(res.trajectory["loc"], full.trajectory["loc"][: n + 1], rtol=0, atol=1e-12)
    guard.relabel([res])
    assert res.status == f"stopped: wall-clock budget of 10 s reached (DIVLAB_RUN_BUDGET_S) after step {n}"
    assert "wall-clock budget of 10 s" in guard.notice and "partial trajectories" in guard.notice


def test_guard_stops_every_fit_call_of_a_scenario():
    sc = dl.load_preset("alpha_continuum")["scenario"]
    assert len(fit_groups(sc)) >= 2  # several fit calls: the later ones stop at their first step
    calls = {"n": 0}

    def stop_after_20():
        calls["n"] += 1
        return calls["n"] > 20

    guard = limits.RunGuard(budget_s=1000.0, stop_requested=stop_after_20)
    results = run_scenario(sc, callback=guard)
    guard.relabel(results)
    assert guard.reason == "stop"
    assert all(r.status.startswith("stopped: by you (Stop) after step") for r in results), [r.status for r in results]
    assert all(1 <= len(r.losses) <= 22 and not np.isnan(r.losses).any() for r in results)
    assert guard.notice.startswith("Stopped after")


def test_guard_without_a_stop_changes_nothing():
    sc = dl.load_preset("two_equal_modes")["scenario"].with_overrides(steps=30)
    guard = limits.RunGuard(budget_s=1000.0)
    a = run_scenario(sc, callback=guard)
    b = run_scenario(sc)
    assert not guard.stopped and guard.notice is None and guard.calls > 0
    for x, y in zip(a, b):
        assert x.status == y.status
        np.testing.assert_array_equal(x.losses, y.losses)


def test_guard_budget_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("DIVLAB_RUN_BUDGET_S", "2.5")
    assert limits.RunGuard().budget_s == 2.5
    monkeypatch.setenv("DIVLAB_RUN_BUDGET_S", "soon")
    with pytest.raises(ValueError, match="DIVLAB_RUN_BUDGET_S='soon'"):
        limits.RunGuard()
    with pytest.raises(ValueError, match="budget_s must be a finite number > 0"):
        limits.RunGuard(budget_s=0)


def test_fit1d_view_with_a_guard_names_why_it_stopped():
    sc = dl.load_preset("two_equal_modes")["scenario"]
    guard = limits.RunGuard(budget_s=5.0, clock=fake_clock(1.0))
    view = sup.fit1d_view(sc.to_json(), callback=guard)
    statuses = [row["status"] for row in view["table"]]
    assert statuses and all(s.startswith("stopped: wall-clock budget of 5 s reached") for s in statuses), statuses


# ---------------------------------------------------------------------------------------------
# Stop during a run: Streamlit's fast rerun, simulated with its own ScriptRequests (no browser)
# ---------------------------------------------------------------------------------------------

def test_guard_result_keeps_a_stopped_run_and_wakes_a_waiting_thread():
    guard = limits.RunGuard(budget_s=1000.0, stop_requested=lambda: True)
    assert guard.result({"table": []}) == {"table": []} and not guard.wait(0)  # not stopped: passes through
    guard(0, {}, 0.0)
    assert guard.reason == "stop"
    with pytest.raises(limits.RunStopped) as info:
        guard.result({"table": [1]})
    assert guard.partial == info.value.partial == {"table": [1]} and guard.wait(0)
    other = limits.RunGuard(budget_s=1000.0)
    other.end()
    assert other.wait(0) and other.partial is None


def test_rerun_pending_reads_the_request_streamlit_holds_for_the_running_script():
    """Pins the (private) request state that the installed Streamlit keeps: a Stop click arrives
    as request_stop (fastReruns, the default) or request_rerun (fastReruns off)."""
    from types import SimpleNamespace

    from streamlit.runtime.scriptrunner_utils.script_requests import RerunData, ScriptRequests

    for ask in (lambda r: r.request_stop(), lambda r: r.request_rerun(RerunData())):
        requests = ScriptRequests()
        pending = sup.rerun_pending(SimpleNamespace(script_requests=requests))
        assert not pending()
        ask(requests)
        assert pending()
    assert not sup.rerun_pending(None)()


class _Stopped(BaseException):
    """Streamlit's StopException: what a stopped script run gets from every session-state access."""


class _SessionState(dict):
    """Session state as a stopped script thread sees it (streamlit's SafeSessionState raises at each
    access once its run is stopped); the thread that replaced it reads and writes normally."""

    def __init__(self, requests):
        super().__init__()
        self.requests, self.stopped_thread = requests, None

    def _check(self):
        import threading

        if threading.current_thread() is self.stopped_thread and self.requests._state.name == "STOP":
            raise _Stopped()

    def __getitem__(self, k):
        self._check()
        return super().__getitem__(k)

    def __setitem__(self, k, v):
        self._check()
        super().__setitem__(k, v)

    def __delitem__(self, k):
        self._check()
        super().__delitem__(k)

    def get(self, k, default=None):
        self._check()
        return super().get(k, default)


def test_a_stop_click_hands_the_stopped_runs_partial_result_to_the_run_it_starts():
    """fastReruns: the click marks the running script STOP and a new script run starts at once in
    another thread. The stopped fit ends at its next step; the new run waits for its partial view."""
    import threading
    from types import SimpleNamespace

    from streamlit.runtime.scriptrunner_utils.script_requests import ScriptRequests

    sc = Scenario.model_validate(dict(json.loads(sup.default_scenario().to_json()), estimator="mc",
                                      optimizer={"name": "adam", "lr": 0.001, "steps": 2000}))
    requests = ScriptRequests()
    state = _SessionState(requests)
    started, out = threading.Event(), {}

    pending, checks = sup.rerun_pending(SimpleNamespace(script_requests=requests)), []

    def stop_requested():  # the guard asks at every step; after 20 steps the visitor clicks Stop
        checks.append(1)
        if len(checks) >= 20:
            started.set()
        return pending()

    def script_run():  # the page's Run: the result goes to session state, as the page does
        try:
            state["last"] = sup.run_guarded(state, "guard", ("stop-test", time.time()),
                                            lambda guard: guard.result(sup.fit1d_view(sc.to_json(), callback=guard)),
                                            stop_requested=stop_requested)
        except _Stopped:
            out["stopped_thread"] = True

    first = threading.Thread(target=script_run)
    state.stopped_thread = first
    first.start()
    assert started.wait(60)
    t_click = time.monotonic()
    requests.request_stop()  # the Stop click
    sup.keep_stopped_run(state, "guard", "last")  # the script run the click started, at the top of the page
    waited = time.monotonic() - t_click
    first.join(60)
    assert out == {"stopped_thread": True}  # it could not touch session state any more
    last = state["last"]
    assert last["stopped"].startswith("Stopped after") and "as you asked" in last["stopped"]
    statuses = [r["status"] for r in last["table"]]
    stopped = re.compile(r"stopped: by you \(Stop\) after step (\d+)$")
    steps = [int(m.group(1)) for s in statuses for m in [stopped.match(s)] if m]
    assert statuses and len(steps) == len(statuses) and all(19 <= n < 2000 for n in steps), statuses
    assert last["figure"] is not None and "guard" not in state
    assert waited < 10, waited


def test_a_run_that_is_not_stopped_leaves_no_guard_behind():
    state = {}
    view = sup.run_guarded(state, "guard", ("plain", time.time()), lambda g: g.result({"table": []}))
    assert view == {"table": []} and state == {}
    sup.keep_stopped_run(state, "guard", "last")
    assert state == {}


# ---------------------------------------------------------------------------------------------
# through the app (AppTest): budget, clamp notice
# ---------------------------------------------------------------------------------------------

st_testing = pytest.importorskip("streamlit.testing.v1")


def final_table(at):
    tables = [d.value for d in at.dataframe if "status" in d.value.columns]
    assert len(tables) == 1, [list(d.value.columns) for d in at.dataframe]
    return tables[0]


def fit1d_page():
    at = st_testing.AppTest.from_file(str(ROOT / "pages" / "fit_1d.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_app_run_over_budget_stops_says_so_and_keeps_the_partial_trajectory(monkeypatch):
    monkeypatch.setenv("DIVLAB_RUN_BUDGET_S", "0.05")
    at = fit1d_page()
    at.number_input(key="fit1d_steps").set_value(2000)
    at.run()
    at.button(key="fit1d_run_btn").click()
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    warnings = [w.value for w in at.warning]
    assert any("wall-clock budget of 0.05 s" in w and "DIVLAB_RUN_BUDGET_S" in w for w in warnings), warnings
    assert len(at.get("plotly_chart")) >= 1  # the partial trajectory is on screen
    table = final_table(at)
    steps_done = [int(m.group(1)) for s in table["status"] for m in [re.search(r"after step (\d+)$", s)] if m]
    assert len(steps_done) == len(table) and all(0 <= n < 2000 for n in steps_done), list(table["status"])
    assert table["status"].str.startswith("stopped: wall-clock budget of 0.05 s reached").all()
    # the stopped run was not cached: with a normal budget the same scenario runs to the end
    monkeypatch.setenv("DIVLAB_RUN_BUDGET_S", "600")
    at.number_input(key="fit1d_steps").set_value(100)
    at.run()
    at.button(key="fit1d_run_btn").click()
    at.run()
    assert not at.exception
    assert not any("wall-clock budget" in w.value for w in at.warning)
    assert not final_table(at)["status"].str.startswith("stopped").any()


def test_app_shows_a_stopped_run_after_the_rerun_a_stop_click_starts():
    """A Stop click interrupts the script; the next run finds the guard's partial result."""
    at = fit1d_page()
    guard = limits.RunGuard(budget_s=1000.0, stop_requested=lambda: True)
    sc = dl.load_preset("two_equal_modes")["scenario"]
    guard.partial = sup.fit1d_view(sc.to_json(), callback=guard)
    at.session_state["fit1d_guard"] = guard
    at.run()
    assert not at.exception
    assert any(w.value.startswith("Stopped after") for w in at.warning)
    assert len(at.get("plotly_chart")) >= 1
    assert final_table(at)["status"].str.startswith("stopped: by you (Stop)").all()


def test_app_clamps_steps_beyond_the_limit_with_a_notice(monkeypatch):
    monkeypatch.setenv("DIVLAB_MAX_STEPS", "150")
    at = fit1d_page()
    at.number_input(key="fit1d_steps").set_value(4000)
    at.run()
    assert not at.exception
    notices = [w.value for w in at.warning]
    assert "steps: 4000 is above this server's limit of 150 steps (DIVLAB_MAX_STEPS); using 150" in notices
    assert at.session_state["scenario"].optimizer.steps == 150


# ---------------------------------------------------------------------------------------------
# deployment files
# ---------------------------------------------------------------------------------------------

def test_dockerfile_is_cpu_only_non_root_and_health_checked():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    assert "torch==2.13.0" in text and "download.pytorch.org/whl/cpu" in text
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    assert re.search(r"^HEALTHCHECK .*?/_stcore/health", text, re.M | re.S)
    assert "--server.address=0.0.0.0" in text or "--server.address 0.0.0.0" in text
    for env in ("DIVLAB_MAX_STEPS", "DIVLAB_RUN_BUDGET_S", "OMP_NUM_THREADS"):
        assert env in text


def test_requirements_pin_the_cpu_torch_and_list_the_app_dependencies():
    lines = [ln.strip() for ln in (ROOT / "requirements.txt").read_text().splitlines()]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines
    assert "torch==2.13.0" in lines
    assert "." in lines or "-e ." in lines  # divlab itself, with its declared dependencies
    assert any(ln.startswith("streamlit") for ln in lines)


def test_huggingface_header_is_valid_front_matter():
    text = (ROOT / "docs" / "hf_space_README.md").read_text()
    head = text.split("---")[1]
    fields = dict(ln.split(":", 1) for ln in head.strip().splitlines())
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    assert text.startswith("---\n")
    assert fields["sdk"] == "docker" and fields["app_port"] == "8501"


def test_readme_has_a_host_it_section_naming_each_route():
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"^## Host it\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
    assert m, "README has no '## Host it' section"
    section = m.group(1)
    for route in ("docker build", "Streamlit Community Cloud", "Hugging Face", "DIVLAB_RUN_BUDGET_S"):
        assert route in section


def _over_budget(monkeypatch, page: str, run_key: str):
    """``page`` run with a 0.05 s budget: no exception, the budget notice, the partial result drawn."""
    monkeypatch.setenv("DIVLAB_RUN_BUDGET_S", "0.05")
    at = st_testing.AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    at.button(key=run_key).click()
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    warnings = [w.value for w in at.warning]
    assert any("wall-clock budget of 0.05 s" in w for w in warnings), warnings
    assert len(at.get("plotly_chart")) >= 1
    return at


def test_fit2d_run_over_budget_stops_says_so_and_keeps_the_partial_trajectory(monkeypatch):
    at = _over_budget(monkeypatch, "fit_2d", "fit2d_run_btn")
    assert final_table(at)["status"].str.startswith("stopped: wall-clock budget of 0.05 s reached").all()


def test_flows_particles_beyond_the_limit_are_clamped_with_a_notice(monkeypatch):
    monkeypatch.setenv("DIVLAB_MAX_PARTICLES", "50")
    at = st_testing.AppTest.from_file(str(ROOT / "pages" / "flows.py"), default_timeout=TIMEOUT)
    at.run()
    at.number_input(key="flows_n").set_value(400)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert ("particles: 400 is above this server's limit of 50 particles (DIVLAB_MAX_PARTICLES); using 50"
            in [w.value for w in at.warning])


def test_flows_run_over_budget_stops_says_so_and_keeps_the_partial_frames(monkeypatch):
    """Flows has the run budget and Stop of Fit 1D (issue 14): over budget it stops, says so next to
    the chart, keeps the frames it has, and the stopped run is not cached."""
    at = _over_budget(monkeypatch, "flows", "flows_run_btn")
    statuses = list(at.dataframe[-1].value["status"])
    assert statuses and all(s.startswith("stopped: wall-clock budget of 0.05 s reached") for s in statuses), statuses
    monkeypatch.setenv("DIVLAB_RUN_BUDGET_S", "600")
    at.number_input(key="flows_steps").set_value(10)
    at.run()
    at.button(key="flows_run_btn").click()
    at.run()
    assert not at.exception
    assert not any("wall-clock budget" in w.value for w in at.warning)
    assert not any(s.startswith("stopped") for s in at.dataframe[-1].value["status"])
