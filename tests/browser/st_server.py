"""Start and stop `streamlit run app.py` on a free loopback port (used by tests/browser and bench/bench_app.py).

Plain functions, no pytest: the server is a subprocess of this Python (`python -m streamlit`), with
the repository root as its working directory, its output in a log file, and it is killed at the end.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("DIVLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"]
SERVER_START_TIMEOUT = 90.0
#: base URL -> the server's log file, quoted when a page shows an exception
SERVER_LOGS: dict[str, Path] = {}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_streamlit(port: int, log) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py",
           "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    # DIVLAB_LOG_RUNS: one log line per script run, which st_driver counts (a quick rerun can pass
    # without the page's script state ever showing "running")
    env = dict(os.environ, PYTHONUNBUFFERED="1", DIVLAB_LOG_RUNS="1")
    return subprocess.Popen(cmd, cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)


def wait_healthy(url: str, proc: subprocess.Popen, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"streamlit not healthy after {timeout:.0f} s:\n{log_path.read_text()[-4000:]}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextmanager
def streamlit_server():
    """Start `streamlit run app.py` on a free loopback port; yield its base URL; kill it after."""
    port = free_port()
    log_path = Path(tempfile.mkdtemp(prefix="divlab-streamlit-")) / "server.log"
    with open(log_path, "w") as log:
        proc = start_streamlit(port, log)
        url = f"http://127.0.0.1:{port}"
        SERVER_LOGS[url] = log_path
        try:
            wait_healthy(url, proc, log_path, SERVER_START_TIMEOUT)
            yield url
        finally:
            stop(proc)


