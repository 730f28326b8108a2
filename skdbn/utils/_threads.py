"""BLAS held to one thread while skdbn's kernels run their own threads."""

from functools import cache

from threadpoolctl import ThreadpoolController

# The kernels link scipy's BLAS: importing them first makes sure the
# controller below sees the library they call.
from .._kernels import _cd  # noqa: F401


@cache
def _controller():
    # Building a controller scans the loaded libraries, about 2 ms, which
    # ``threadpool_limits`` repeats on every call (a transform of a few rows
    # paid it each time); one controller, made once, limits in 20 us.
    return ThreadpoolController()


def single_threaded_blas():
    """Context manager: every BLAS loaded at first use limited to one thread.

    The kernels split their products across OpenMP threads themselves, so a
    multithreaded BLAS under them would oversubscribe the cores.
    """
    return _controller().limit(limits=1, user_api="blas")
