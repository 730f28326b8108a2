"""Timing shared by the benchmark scripts (run them as ``python benchmarks/X.py``)."""

import time


def best_time(fn, repeats, clock=time.perf_counter):
    """Smallest time of ``repeats`` calls of ``fn``: the least disturbed run.

    ``clock=time.process_time`` measures the CPU time of this process
    instead of wall time: for single-threaded runs on a machine shared with
    other work, it does not count the time the process waited for a core.
    """
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return min(times)
