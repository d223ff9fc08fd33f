"""divlab.limits: one configuration place for the server limits (issue 7)."""

import math
import tomllib
from pathlib import Path

import numpy as np
import pytest

from divlab import limits

ROOT = Path(__file__).resolve().parents[1]

ENV_NAMES = {
    "steps": "DIVLAB_MAX_STEPS", "grid": "DIVLAB_MAX_GRID", "grid_2d": "DIVLAB_MAX_GRID_2D",
    "particles": "DIVLAB_MAX_PARTICLES", "batch": "DIVLAB_MAX_BATCH", "samples": "DIVLAB_MAX_SAMPLES",
    "upload_mb": "DIVLAB_MAX_UPLOAD_MB", "run_budget_s": "DIVLAB_RUN_BUDGET_S",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for env in ENV_NAMES.values():
        monkeypatch.delenv(env, raising=False)


def test_every_limit_has_its_variable_and_a_default_inside_its_range():
    assert {n: lim.env for n, lim in limits.LIMITS.items()} == ENV_NAMES
    for lim in limits.LIMITS.values():
        assert lim.low <= lim.default <= lim.high
    assert limits.current() == {n: lim.default for n, lim in limits.LIMITS.items()}


def test_defaults_suit_a_small_shared_server():
    v = limits.current()
    assert v["steps"] == 2000 and v["grid"] == 4097 and v["batch"] == 64
    assert v["upload_mb"] == 1 and v["run_budget_s"] == 20
    assert limits.upload_bytes() == 1_000_000


def test_env_overrides_are_read_at_call_time(monkeypatch):
    monkeypatch.setenv("DIVLAB_MAX_STEPS", "150")
    monkeypatch.setenv("DIVLAB_RUN_BUDGET_S", "0.25")
    assert limits.value("steps") == 150
    assert limits.value("run_budget_s") == 0.25
    monkeypatch.setenv("DIVLAB_MAX_STEPS", "  ")  # blank: the default
    assert limits.value("steps") == 2000


@pytest.mark.parametrize("raw", ["lots", "1.5", "0", "-3", "nan", "inf", "1e9"])
def test_bad_env_value_names_the_variable(monkeypatch, raw):
    monkeypatch.setenv("DIVLAB_MAX_STEPS", raw)
    with pytest.raises(ValueError, match=r"DIVLAB_MAX_STEPS='.*': must be an integer in \[1, 100000\]"):
        limits.value("steps")
    with pytest.raises(ValueError, match="DIVLAB_MAX_STEPS"):
        limits.current()


def test_clamp_within_limit_passes_through():
    assert limits.clamp("steps", 300) == (300, None)
    assert limits.clamp("steps", np.int64(2000)) == (2000, None)
    assert limits.clamp("run_budget_s", 1.5) == (1.5, None)


def test_clamp_above_limit_caps_with_a_notice(monkeypatch):
    v, notice = limits.clamp("steps", 100_000)
    assert v == 2000
    assert notice == ("steps: 100000 is above this server's limit of 2000 steps (DIVLAB_MAX_STEPS); "
                      "using 2000")
    monkeypatch.setenv("DIVLAB_MAX_GRID", "1025")
    v, notice = limits.clamp("grid", 10**9)
    assert v == 1025 and "DIVLAB_MAX_GRID" in notice and "1000000000" in notice
    v, notice = limits.clamp("samples", math.inf)
    assert v == 20_000 and "∞" in notice


@pytest.mark.parametrize("bad", ["12", None, True, math.nan, -math.inf, 2.5, [3]])
def test_clamp_rejects_non_numbers(bad):
    with pytest.raises(ValueError, match=r"clamp\('steps'"):
        limits.clamp("steps", bad)


def test_unknown_limit_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown limit 'stepz'.*steps, grid"):
        limits.clamp("stepz", 1)


def test_describe_lists_every_limit():
    line = limits.describe()
    for name in limits.LIMITS:
        assert f"{name} ≤ " in line
    assert "steps ≤ 2000" in line


def test_streamlit_config_is_hardened_and_matches_the_upload_limit():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["headless"] is True
    assert cfg["server"]["enableXsrfProtection"] is True
    assert cfg["server"]["enableCORS"] is True
    assert cfg["server"]["maxUploadSize"] == limits.LIMITS["upload_mb"].default
    assert cfg["browser"]["gatherUsageStats"] is False
    assert cfg["client"]["showErrorDetails"] in ("type", "none")  # no message, no traceback


# ---------------------------------------------------------------------------------------------
# shared_run: concurrent identical runs compute once
# ---------------------------------------------------------------------------------------------

def _crowd(n, key, compute):
    import threading

    out, errors = [None] * n, [None] * n
    start = threading.Barrier(n)

    def one(i):
        start.wait()
        try:
            out[i] = limits.shared_run(key, compute)
        except Exception as exc:  # noqa: BLE001 - collected for the assertions
            errors[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return out, errors


def test_shared_run_computes_once_for_a_crowd():
    import threading
    import time

    calls = []
    lock = threading.Lock()

    def compute():
        with lock:
            calls.append(1)
        time.sleep(0.3)
        return {"value": 42}

    out, errors = _crowd(12, "lesson-a", compute)
    assert errors == [None] * 12
    assert len(calls) == 1
    assert all(o is out[0] and o == {"value": 42} for o in out)
    # the key is forgotten afterwards: a later call computes again (the page's cache sits in front)
    assert limits.shared_run("lesson-a", compute) == {"value": 42} and len(calls) == 2


def test_shared_run_hands_a_stopped_run_and_errors_to_the_waiting_callers():
    import time

    def stopped():
        time.sleep(0.2)
        raise limits.RunStopped({"table": [1, 2]}, "Stopped: budget")

    out, errors = _crowd(6, "lesson-b", stopped)
    assert all(isinstance(e, limits.RunStopped) and e.partial == {"table": [1, 2]} and e.notice == "Stopped: budget"
               for e in errors)

    def bad():
        time.sleep(0.2)
        raise ValueError("scenario.optimizer.lr: must be > 0")

    out, errors = _crowd(4, "lesson-c", bad)
    assert all(isinstance(e, ValueError) and "optimizer.lr" in str(e) for e in errors)


def test_shared_run_waiters_compute_themselves_when_the_first_callers_visitor_clicked_stop():
    import threading
    import time

    calls = []
    lock = threading.Lock()

    def compute():
        with lock:
            calls.append(1)
            first = len(calls) == 1
        time.sleep(0.2)
        if first:  # the first caller's visitor stops it: the partial run is that visitor's only
            raise limits.RunStopped({"table": [1]}, "Stopped after 0.2 s, as you asked.", "stop")
        return {"value": 7}

    out, errors = _crowd(5, "lesson-stop", compute)
    stopped = [e for e in errors if e is not None]
    assert len(stopped) == 1 and isinstance(stopped[0], limits.RunStopped) and stopped[0].reason == "stop"
    assert sum(o == {"value": 7} for o in out) == 4 and len(calls) >= 2


def test_shared_run_waiters_compute_themselves_when_the_first_caller_is_interrupted():
    import threading
    import time

    calls = []
    lock = threading.Lock()

    class Interrupted(Exception):
        """Stands for Streamlit's rerun exception when the first visitor navigates away."""

    def compute():
        with lock:
            calls.append(1)
            first = len(calls) == 1
        time.sleep(0.2)
        if first:
            raise Interrupted()
        return "done"

    out, errors = _crowd(5, "lesson-d", compute)
    assert sum(isinstance(e, Interrupted) for e in errors) == 1
    assert out.count("done") == 4 and len(calls) == 2
