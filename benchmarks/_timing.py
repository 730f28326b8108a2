"""Timing shared by the benchmark scripts (run them as ``python benchmarks/X.py``)."""

import time


def best_time(fn, repeats):
    """Smallest wall time of ``repeats`` calls of ``fn``: the least disturbed run."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)
