"""BLAS held to one thread while skdbn's kernels run their own threads."""

import threading
from contextlib import contextmanager
from functools import cache

from threadpoolctl import ThreadpoolController

# The kernels link scipy's BLAS: importing them first makes sure the
# controller below sees the library they call.
from .._kernels import _cd  # noqa: F401
from ._compat import _openmp_effective_n_threads


@cache
def _controller():
    # Building a controller scans the loaded libraries, which
    # ``threadpool_limits`` repeats on every call (a transform of a few rows
    # paid it each time, a hundred times the cost of the limit itself); one
    # controller, made once.
    return ThreadpoolController()


# The BLAS thread count is process-wide, but calls come from many Python
# threads whose limits end in any order: each restoring the count it saw on
# entry would leave the one of an overlapping call (1) behind. The first
# caller in limits and remembers the original; the last one out restores it.
_lock = threading.Lock()
_holders = 0
_limiter = None


@contextmanager
def single_threaded_blas():
    """Context manager: every BLAS loaded at first use limited to one thread.

    The kernels split their products across OpenMP threads themselves, so a
    multithreaded BLAS under them would oversubscribe the cores. Safe to
    enter from several threads at once and to nest.
    """
    global _holders, _limiter
    with _lock:
        if _holders == 0:
            _limiter = _controller().limit(limits=1, user_api="blas")
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                _limiter.restore_original_limits()
                _limiter = None


@contextmanager
def kernel_threads(n_jobs):
    """Context manager yielding the kernels' thread count for ``n_jobs``,
    with BLAS held to one thread meanwhile.

    The kernels split their products across OpenMP threads themselves; a
    multithreaded BLAS under them would oversubscribe the cores.
    """
    n_threads = _openmp_effective_n_threads(n_jobs, only_physical_cores=False)
    with single_threaded_blas():
        yield n_threads
