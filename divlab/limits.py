"""Server limits for a shared divlab deployment: one configuration place.

A public demo runs on a small shared machine (the defaults suit 2 CPU cores for a class of ~30).
Every limit is an environment variable read at call time, so an operator sets them in the
Dockerfile, the Spaces settings or the shell, and tests can change them with ``monkeypatch``:

==========================  =========  ====================================================
variable                    default    what it bounds
==========================  =========  ====================================================
``DIVLAB_MAX_STEPS``        2000       optimizer steps of one fit
``DIVLAB_MAX_GRID``         4097       quadrature points of a 1D grid
``DIVLAB_MAX_GRID_2D``      257        quadrature points per axis of a 2D grid
``DIVLAB_MAX_PARTICLES``    1000       particles of a flow
``DIVLAB_MAX_BATCH``        64         members of one batched fit (divergences × restarts)
``DIVLAB_MAX_SAMPLES``      20000      sample size of a sample-based estimate
``DIVLAB_MAX_UPLOAD_MB``    1          size of an uploaded scenario file, in MB (10^6 bytes)
``DIVLAB_RUN_BUDGET_S``     20         wall-clock seconds one run may take before it stops
==========================  =========  ====================================================

``.streamlit/config.toml`` sets Streamlit's own ``server.maxUploadSize`` to the same 1 MB
(override it with ``STREAMLIT_SERVER_MAX_UPLOAD_SIZE`` when you change ``DIVLAB_MAX_UPLOAD_MB``).

A request beyond a limit is clamped with a notice the page shows next to the control, never
refused silently::

    steps, notice = limits.clamp("steps", 100_000)
    # steps == 2000, notice == "steps: 100000 is above this server's limit of 2000 (DIVLAB_MAX_STEPS); using 2000"

A bad environment value raises ``ValueError`` naming the variable
(``DIVLAB_MAX_STEPS='lots': must be an integer in [1, 100000]``).

divlab never imports Streamlit; pages call :func:`clamp` with widget values.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass

__all__ = ["LIMITS", "Limit", "value", "clamp", "current", "upload_bytes", "describe", "RunGuard", "RunStopped", "shared_run"]


@dataclass(frozen=True)
class Limit:
    """One limit: its name (as pages call it), environment variable, default, the hard range an
    operator may set it in, whether it is an integer, its unit and what it bounds."""

    name: str
    env: str
    default: float
    low: float
    high: float
    integer: bool
    unit: str
    what: str

    def read(self, environ=None) -> float:
        """The configured value (the default when the variable is unset or empty)."""
        environ = os.environ if environ is None else environ
        raw = environ.get(self.env)
        if raw is None or not raw.strip():
            return self.default
        kind = "an integer" if self.integer else "a number"
        msg = f"{self.env}={raw!r}: must be {kind} in [{_num(self.low)}, {_num(self.high)}] ({self.what})"
        try:
            v = float(raw.strip())
        except ValueError:
            raise ValueError(msg) from None
        if not math.isfinite(v) or v < self.low or v > self.high or (self.integer and not v.is_integer()):
            raise ValueError(msg)
        return int(v) if self.integer else v


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


#: every limit, by the name pages use
LIMITS: dict[str, Limit] = {lim.name: lim for lim in (
    Limit("steps", "DIVLAB_MAX_STEPS", 2000, 1, 100_000, True, "steps", "optimizer steps of one fit"),
    Limit("grid", "DIVLAB_MAX_GRID", 4097, 65, 1_000_001, True, "points", "quadrature points of a 1D grid"),
    Limit("grid_2d", "DIVLAB_MAX_GRID_2D", 257, 17, 4097, True, "points per axis",
          "quadrature points per axis of a 2D grid"),
    Limit("particles", "DIVLAB_MAX_PARTICLES", 1000, 2, 1_000_000, True, "particles", "particles of a flow"),
    Limit("batch", "DIVLAB_MAX_BATCH", 64, 1, 4096, True, "members",
          "members of one batched fit (divergences × restarts)"),
    Limit("samples", "DIVLAB_MAX_SAMPLES", 20_000, 2, 10_000_000, True, "samples",
          "sample size of a sample-based estimate"),
    Limit("upload_mb", "DIVLAB_MAX_UPLOAD_MB", 1, 0.001, 200, False, "MB", "size of an uploaded scenario file"),
    Limit("run_budget_s", "DIVLAB_RUN_BUDGET_S", 20, 0.001, 3600, False, "s",
          "wall-clock seconds one run may take"),
)}


def _limit(name: str) -> Limit:
    try:
        return LIMITS[name]
    except KeyError:
        raise ValueError(f"limits: unknown limit {name!r} (known: {', '.join(LIMITS)})") from None


def value(name: str, environ=None):
    """The configured value of limit ``name`` (``"steps"``, ``"grid"``, ... see :data:`LIMITS`)."""
    return _limit(name).read(environ)


def current(environ=None) -> dict:
    """Every limit's configured value, ``{name: value}``; raises on the first bad variable."""
    return {name: lim.read(environ) for name, lim in LIMITS.items()}


def upload_bytes(environ=None) -> int:
    """The upload limit in bytes (``DIVLAB_MAX_UPLOAD_MB`` × 10^6)."""
    return int(value("upload_mb", environ) * 1_000_000)


def clamp(name: str, requested, environ=None):
    """``(value, notice)``: ``requested`` capped at limit ``name``; ``notice`` is None when within
    the limit, else one line saying what was asked, the limit, its variable and what is used.

    ``requested`` must be a finite number (an integer for integer limits); anything else is a
    ``ValueError`` naming the limit. Values below 1 (or 0 for non-integer limits) are left for the
    caller's own validation, which knows the lower bound that makes sense there."""
    lim = _limit(name)
    if isinstance(requested, bool) or not isinstance(requested, (int, float)) and not hasattr(requested, "__float__"):
        raise ValueError(f"clamp({name!r}, {requested!r}): {name} must be a number")
    try:
        x = float(requested)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"clamp({name!r}, {requested!r}): {name} must be a number") from None
    if math.isnan(x):
        raise ValueError(f"clamp({name!r}, {requested!r}): {name} must be a number, got NaN")
    if lim.integer and math.isfinite(x) and not x.is_integer():
        raise ValueError(f"clamp({name!r}, {requested!r}): {name} must be an integer")
    cap = lim.read(environ)
    if x > cap:
        shown = "∞" if math.isinf(x) else _num(x)
        return cap, (f"{name}: {shown} is above this server's limit of {_num(cap)} {lim.unit} "
                     f"({lim.env}); using {_num(cap)}")
    if math.isinf(x):  # -inf
        raise ValueError(f"clamp({name!r}, {requested!r}): {name} must be finite")
    return (int(x) if lim.integer else x), None


def describe(environ=None) -> str:
    """The limits as one line for a sidebar or a log, e.g. ``steps ≤ 2000, grid ≤ 4097, ...``."""
    vals = current(environ)
    return ", ".join(f"{n} ≤ {_num(vals[n])}" for n in LIMITS)


# ---------------------------------------------------------------------------------------------
# one run: wall-clock budget and Stop
# ---------------------------------------------------------------------------------------------

class RunStopped(Exception):
    """A run that a :class:`RunGuard` stopped, carrying what was computed (``partial``), the
    notice to show and the guard's ``reason`` ("budget", "stop" or None if unknown). Raised from
    inside a cached function so that a partial run is never cached."""

    def __init__(self, partial, notice: str, reason: str | None = None):
        super().__init__(notice)
        self.partial, self.notice, self.reason = partial, notice, reason


class RunGuard:
    """The fit callback of one run (``callback(step, params, loss)`` of :func:`divlab.fit`, or
    ``callback(i, step, params, loss)`` of :func:`divlab.scenario.run_scenario`): it returns
    ``False`` (which stops every unfinished fit, keeping its trajectory) once the run has used its
    wall-clock budget (``DIVLAB_RUN_BUDGET_S`` by default) or once ``stop_requested()`` says the
    visitor asked to stop. Later fit calls of the same run stop at their first step.

    After the run, :meth:`relabel` rewrites the results' "stopped: by the caller after step N"
    into the actual reason, and :attr:`notice` is the sentence to show (None if nothing stopped).
    :meth:`result` keeps a stopped run's partial result on the guard and raises
    :class:`RunStopped`; :meth:`wait` lets another thread wait for that result (see
    :func:`divlab.app_support.keep_stopped_run`). No Streamlit here: a page passes its own
    ``stop_requested``.
    """

    def __init__(self, budget_s: float | None = None, stop_requested=None, clock=time.monotonic):
        self.budget_s = float(value("run_budget_s") if budget_s is None else budget_s)
        if not (math.isfinite(self.budget_s) and self.budget_s > 0):
            raise ValueError(f"RunGuard(budget_s={budget_s!r}): budget_s must be a finite number > 0")
        self._stop_requested = stop_requested
        self._clock = clock
        self.start = clock()
        self.reason: str | None = None  # "budget" | "stop"
        self.partial = None  # what a page computed from the stopped run (kept across a rerun)
        self.last_step = 0
        self.calls = 0
        self._stopped_after: float | None = None  # seconds from the start to the stop
        self._ended = threading.Event()  # set by :meth:`result` on a stop and by :meth:`end`

    @property
    def stopped(self) -> bool:
        return self.reason is not None

    @property
    def elapsed_s(self) -> float:
        return self._clock() - self.start

    def __call__(self, *args):
        self.calls += 1
        if len(args) >= 3:
            step = args[-3]
            if isinstance(step, (int, float)) and not isinstance(step, bool):
                self.last_step = int(step)
        if self.reason is None:
            elapsed = self._clock() - self.start
            if elapsed > self.budget_s:
                self.reason = "budget"
            elif self._stop_requested is not None and self._stop_requested():
                self.reason = "stop"
            if self.reason is not None:
                self._stopped_after = elapsed
        return False if self.reason is not None else None

    def result(self, value):
        """``value`` (what the run computed) if the run went to the end; if it stopped, keep
        ``value`` as :attr:`partial`, wake :meth:`wait`, and raise :class:`RunStopped` with it (so a
        cached function never caches a partial run)."""
        if self.reason is None:
            return value
        self.partial = value
        self._ended.set()
        raise RunStopped(value, self.notice, self.reason)

    def end(self) -> None:
        """Mark the run as over (however it ended): :meth:`wait` returns."""
        self._ended.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run has stopped with its partial result or ended (at most ``timeout``
        seconds); True if it has. For the script run a Stop click starts while the stopped one is
        still finishing its last step in another thread."""
        return self._ended.wait(timeout)

    @property
    def notice(self) -> str | None:
        if self.reason == "budget":
            return (f"Stopped: this run reached the server's wall-clock budget of {_num(self.budget_s)} s "
                    f"({LIMITS['run_budget_s'].env}). The partial trajectories up to that point are shown; "
                    f"fewer steps or divergences finish in time.")
        if self.reason == "stop":
            after = self.elapsed_s if self._stopped_after is None else self._stopped_after
            return (f"Stopped after {after:.1f} s, as you asked. The partial trajectories up to that "
                    f"point are shown.")
        return None

    def status_reason(self) -> str:
        if self.reason == "budget":
            return f"wall-clock budget of {_num(self.budget_s)} s reached ({LIMITS['run_budget_s'].env})"
        return "by you (Stop)"

    def relabel(self, results) -> None:
        """Replace "by the caller" in the statuses of ``results`` (FitResult objects) with the reason."""
        if self.reason is None:
            return
        for r in results:
            status = getattr(r, "status", "")
            if status.startswith("stopped: by the caller"):
                r.status = status.replace("by the caller", self.status_reason(), 1)


# ---------------------------------------------------------------------------------------------
# concurrent identical runs: compute once
# ---------------------------------------------------------------------------------------------

class _Flight:
    def __init__(self):
        self.done = threading.Event()
        self.value = None
        self.error: BaseException | None = None


_flights: dict = {}
_flights_lock = threading.Lock()


def shared_run(key, compute):
    """``compute()`` once for concurrent callers with the same ``key`` (e.g. a class opening the
    same lesson at once): the first caller computes, the others wait for it and receive the same
    value, or the same :class:`RunStopped` (with its partial result) or ``ValueError``. If the
    first caller ends any other way (its visitor navigated away, or clicked Stop: a RunStopped
    with reason "stop"), a waiting caller computes itself. Not a cache: the key is forgotten as
    soon as the first caller finishes (a page's ``st.cache_data`` keeps the value)."""
    with _flights_lock:
        flight = _flights.get(key)
        leader = flight is None
        if leader:
            flight = _flights[key] = _Flight()
    if leader:
        try:
            flight.value = compute()
            return flight.value
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with _flights_lock:
                _flights.pop(key, None)
            flight.done.set()
    flight.done.wait()
    if flight.error is None:
        return flight.value
    error = flight.error
    if isinstance(error, RunStopped) and error.reason != "stop":  # one visitor's Stop is not the others'
        raise RunStopped(error.partial, error.notice, error.reason)  # a fresh exception per waiting thread
    if isinstance(error, ValueError):
        raise ValueError(str(error))
    return shared_run(key, compute)
