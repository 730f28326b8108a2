"""MNIST for the benchmarks: the standard 60 000 / 10 000 split, pixels in [0, 1].

``--data`` is either a ``.npz`` file with ``X_train``, ``y_train``, ``X_test``
and ``y_test`` (uint8 pixels 0..255), or the ``data_home`` directory of a
``sklearn.datasets.fetch_openml("mnist_784")`` cache, whose first 60 000 rows
are the training set.
"""

import os
import sys

import numpy as np


def add_data_argument(parser):
    parser.add_argument(
        "--data", required=True, metavar="PATH",
        help="mnist.npz (X_train, y_train, X_test, y_test as uint8) or the "
             "data_home directory of a fetch_openml('mnist_784') cache")


def load_mnist(path):
    """``X_train, y_train, X_test, y_test`` as float32 in [0, 1] and int labels."""
    if os.path.isfile(path):
        with np.load(path) as d:
            arrays = [d[k] for k in ("X_train", "y_train", "X_test", "y_test")]
    elif os.path.isdir(path):
        from sklearn.datasets import fetch_openml
        try:
            X, y = fetch_openml("mnist_784", version=1, data_home=path, as_frame=False,
                                return_X_y=True, download_if_missing=False)
        except OSError as exc:
            sys.exit(f"No fetch_openml('mnist_784') cache under {path!r} ({exc}). Pass "
                     "--data with the path of mnist.npz, or fill the cache once with "
                     "sklearn.datasets.fetch_openml('mnist_784', data_home=PATH).")
        y = y.astype(np.int64)
        arrays = [X[:60000], y[:60000], X[60000:], y[60000:]]
    else:
        sys.exit(f"MNIST not found at {path!r}: pass --data with the path of mnist.npz "
                 "or of a fetch_openml('mnist_784') data_home directory.")
    X_train, y_train, X_test, y_test = arrays
    scale = np.float32(255)
    return (np.asarray(X_train, np.float32) / scale, np.asarray(y_train).astype(np.int64),
            np.asarray(X_test, np.float32) / scale, np.asarray(y_test).astype(np.int64))
