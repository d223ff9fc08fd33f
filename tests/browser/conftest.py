"""Fixtures for the browser tests: one `streamlit run app.py` on loopback and Debian's Chromium.

The server is started once per session (a subprocess of this Python, repo root as cwd) and killed
at the end. Chromium comes from apt (`/usr/bin/chromium`, installed by `.ci/run`); Playwright only
drives it (`playwright install` is never needed). Outside CI a missing Chromium skips these tests
with the reason printed; with CI set, it fails them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("DIVLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = ROOT / "assets" / "screenshots"
SERVER_START_TIMEOUT = 90.0
# Streamlit reruns can be slow on a loaded 2-core machine; waits are on elements, never sleeps.
TIMEOUT_MS = int(os.environ.get("DIVLAB_BROWSER_TIMEOUT_MS", "60000"))


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_browser() -> None:
    """Skip (outside CI) or fail (in CI) when Chromium or Playwright is missing, saying why."""
    problems = []
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        problems.append(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        problems.append(f"the playwright package is not importable ({exc})")
    if not problems:
        return
    reason = "browser tests need " + "; ".join(problems)
    if in_ci():
        pytest.fail(f"CI is set but {reason}", pytrace=False)
    print(f"\nSKIP tests/browser: {reason}", file=sys.stderr)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_streamlit(port: int, log) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py",
           "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
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


@pytest.fixture(scope="session")
def server():
    """Base URL of one `streamlit run app.py` for the whole session."""
    require_browser()
    port = free_port()
    log_path = Path(tempfile.mkdtemp(prefix="divlab-streamlit-")) / "server.log"
    with open(log_path, "w") as log:
        proc = start_streamlit(port, log)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, proc, log_path, SERVER_START_TIMEOUT)
            yield url
        finally:
            stop(proc)


@pytest.fixture(scope="session")
def browser():
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context):
    return context.new_page()


def screenshots_enabled() -> bool:
    return os.environ.get("DIVLAB_SCREENSHOTS", "") == "1"
