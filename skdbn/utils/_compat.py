"""The one place where skdbn imports scikit-learn's private helpers.

A scikit-learn upgrade that moves any of these touches this file only.
"""

import warnings

from sklearn.base import _fit_context
from sklearn.feature_extraction.image import _extract_patches
from sklearn.utils._openmp_helpers import (
    _openmp_effective_n_threads as _sklearn_openmp_effective_n_threads,
)
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    InvalidParameterError,
    StrOptions,
    validate_params,
)
from sklearn.utils.validation import _check_sample_weight, validate_data

from .._kernels._openmp_helpers import openmp_enabled

_warned_no_openmp = False


def _openmp_effective_n_threads(n_threads=None, only_physical_cores=False):
    """scikit-learn's thread count for ``n_jobs``; 1 if skdbn has no OpenMP.

    A build without OpenMP runs its kernels in the calling thread: asking
    for more threads then warns, once per process.
    """
    global _warned_no_openmp
    if n_threads == 0:
        raise ValueError("n_jobs == 0 is invalid; use None, -1 or a positive integer.")
    n = _sklearn_openmp_effective_n_threads(n_threads, only_physical_cores=only_physical_cores)
    if openmp_enabled():
        return n
    if n_threads not in (None, 1) and not _warned_no_openmp:
        _warned_no_openmp = True
        warnings.warn(
            f"n_jobs={n_threads} is ignored: skdbn was built without OpenMP, so its "
            "kernels run single-threaded (skdbn.show_versions() shows the build). "
            "Rebuild skdbn with an OpenMP-capable compiler for threads.",
            UserWarning,
            stacklevel=3,
        )
    return 1


__all__ = [
    "HasMethods",
    "Interval",
    "InvalidParameterError",
    "StrOptions",
    "_check_sample_weight",
    "_extract_patches",
    "_fit_context",
    "_openmp_effective_n_threads",
    "validate_data",
    "validate_params",
]
