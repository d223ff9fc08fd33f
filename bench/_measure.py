"""Measurement helpers shared by the benchmarks: peak memory (transport benchmarks) and the
script-run times the app logs (bench_app, load_test).

``Peak`` reports the increase of the process's peak resident set size (Linux VmHWM) over its
resident size when the block starts, in MiB. This counts every allocation (torch's C++ tensors,
numpy, KeOps), which ``tracemalloc`` would not see; each benchmark case runs in its own process
so that the high-water mark belongs to that case alone.
"""

from __future__ import annotations


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Peak:
    def __enter__(self):
        try:  # reset the high-water mark to the current RSS (Linux >= 4.0)
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
        except OSError:
            pass
        self.start = _status_kib("VmRSS")
        return self

    def __exit__(self, *exc):
        self.mib = max(0, _status_kib("VmHWM") - self.start) / 1024.0
        return False


def logged_runs(log_path, start: int = 0) -> tuple[list[tuple[str, float]], int]:
    """The script runs a divlab server logged (``DIVLAB_LOG_RUNS=1``: ``divlab-run page=... seconds=...``)
    from byte ``start`` of its log on, as (page, seconds), and the log's size now."""
    data = log_path.read_bytes()
    runs = []
    for line in data[start:].decode(errors="replace").splitlines():
        if line.startswith("divlab-run "):
            f = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
            try:
                runs.append((f.get("page", "?"), float(f["seconds"])))
            except (KeyError, ValueError):
                continue
    return runs, len(data)
