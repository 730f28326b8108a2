"""``skdbn.show_versions()``: what a bug report needs, as ``sklearn.show_versions``."""

# SPDX-License-Identifier: BSD-3-Clause

import platform
import sys
from importlib.metadata import PackageNotFoundError, version

from threadpoolctl import threadpool_info

from .._kernels import _openmp_helpers
from ._compat import _openmp_effective_n_threads
from ._threads import _controller

_DEPENDENCIES = ("pip", "setuptools", "numpy", "scipy", "scikit-learn", "joblib",
                 "threadpoolctl", "Cython", "matplotlib", "mpi4py")


def _dependency_versions():
    versions = {}
    for name in _DEPENDENCIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def _build_info():
    """How skdbn's kernels were built and how many threads they will use."""
    from .._kernels import cd_variant

    openmp = _openmp_helpers.openmp_enabled()
    return {
        "build": "native (-march=native)" if _openmp_helpers.native_build() else "portable",
        "CD kernels (runtime dispatch)": cd_variant(),
        "OpenMP": "enabled" if openmp else "disabled (the kernels run single-threaded)",
        "kernel threads (n_jobs=None)": _openmp_effective_n_threads(None),
    }


def show_versions():
    """Print system information, dependency versions and skdbn's build.

    Like :func:`sklearn.show_versions`: the Python and platform, the versions
    of skdbn's dependencies, how its kernels were built (portable or native,
    with or without OpenMP), which build of the CD kernels this CPU runs
    (``avx2-fma`` or ``baseline``), how many threads they use by default, and the
    BLAS and OpenMP libraries loaded (from threadpoolctl). Paste it into a
    bug report.

    See Also
    --------
    sklearn.show_versions : The same for scikit-learn.

    Examples
    --------
    >>> import skdbn
    >>> skdbn.show_versions()  # doctest: +SKIP
    """
    from .. import __version__

    print("\nSystem:")
    print(f"{'python':>30}: {sys.version.replace(chr(10), ' ')}")
    print(f"{'executable':>30}: {sys.executable}")
    print(f"{'machine':>30}: {platform.platform()}")
    print("\nskdbn:")
    print(f"{'version':>30}: {__version__}")
    for key, value in _build_info().items():
        print(f"{key:>30}: {value}")
    print("\nPython dependencies:")
    for name, ver in _dependency_versions().items():
        print(f"{name:>30}: {ver}")
    # The controller skdbn uses: it sees the BLAS its kernels call.
    _controller()
    print("\nthreadpoolctl info (BLAS and OpenMP libraries loaded):")
    for i, info in enumerate(threadpool_info()):
        if i:
            print()
        for key, value in info.items():
            print(f"{key:>30}: {value}")
