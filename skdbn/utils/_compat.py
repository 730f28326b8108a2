"""The one place where skdbn imports scikit-learn's private helpers.

A scikit-learn upgrade that moves any of these touches this file only.
"""

from sklearn.base import _fit_context
from sklearn.feature_extraction.image import _extract_patches
from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    InvalidParameterError,
    StrOptions,
    validate_params,
)
from sklearn.utils.validation import validate_data

__all__ = [
    "HasMethods",
    "Interval",
    "InvalidParameterError",
    "StrOptions",
    "_extract_patches",
    "_fit_context",
    "_openmp_effective_n_threads",
    "validate_data",
    "validate_params",
]
