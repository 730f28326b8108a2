"""Helpers of the skdbn documentation build (imported by doc/conf.py)."""

import os
import time
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

# Seconds an example may run (acceptance limit of the gallery; override with
# SKDBN_DOCS_EXAMPLE_BUDGET).
DEFAULT_BUDGET = 120.0

_started = {}


def time_example(gallery_conf, fname, when):
    """sphinx-gallery ``reset_modules`` hook: time each example.

    Called before and after each example (``reset_modules_order="both"``).
    Prints the run time, and warns when it exceeds the budget, unless other
    work loaded the machine meanwhile (then it says so and does not check).
    """
    if fname is None:
        return
    name = Path(fname).name
    if when == "before":
        _started[name] = time.perf_counter()
        return
    if name not in _started:
        return
    elapsed = time.perf_counter() - _started.pop(name)
    budget = float(os.environ.get("SKDBN_DOCS_EXAMPLE_BUDGET", DEFAULT_BUDGET))
    # The budget is for a machine that runs only the build: other jobs on the
    # same cores slow the examples' multithreaded kernels many times over.
    n_cpus = os.cpu_count() or 1
    load = os.getloadavg()[0]
    if load > 1.5 * n_cpus:
        logger.info(
            f"[skdbn] {name} ran in {elapsed:.1f} s; NOT checked against the {budget:.0f} s "
            f"budget: the machine is busy (load average {load:.1f} on {n_cpus} CPUs)"
        )
        return
    logger.info(f"[skdbn] {name} ran in {elapsed:.1f} s (budget {budget:.0f} s)")
    if elapsed > budget:
        logger.warning(
            f"gallery example {name} ran in {elapsed:.0f} s, more than its budget "
            f"of {budget:.0f} s: make it faster (smaller data, fewer epochs)"
        )
