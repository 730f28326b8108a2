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


def best_times(fns, repeats, clock=time.perf_counter, pause=0.3):
    """:func:`best_time` of each of the ``fns`` (a dict), run in turns.

    Each round times every function once, so a slow spell of a shared
    machine (another tenant, a frequency drop) falls on all of them rather
    than on all the repeats of one, and the ratios between them hold.
    ``pause`` seconds between calls let the previous peer's idle threads
    stop spinning (OpenBLAS's busy-wait after a product otherwise slows
    whichever OpenMP code runs next).
    """
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            time.sleep(pause)
            t0 = clock()
            fn()
            times[name].append(clock() - t0)
    return {name: min(t) for name, t in times.items()}
