"""Input checks shared by the estimators."""

import numpy as np
import scipy.sparse as sp


def check_dtype_range(X, dtype):
    """Refuse values that the cast to the model's ``dtype`` would turn into inf."""
    if X.dtype.itemsize <= np.dtype(dtype).itemsize:
        return
    data = X.data if sp.issparse(X) else X
    if data.size == 0:
        return
    limit = float(np.finfo(dtype).max)
    largest = max(-float(np.min(data)), float(np.max(data)))
    if largest > limit:
        raise ValueError(
            f"X has values up to {largest:.3g}, beyond the range of the model's "
            f"{np.dtype(dtype).name} ({limit:.3g}). Scale the data (e.g. "
            "sklearn.preprocessing.StandardScaler) or fit a float64 model."
        )
