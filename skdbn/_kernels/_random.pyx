"""Python access to the counter-based generator of ``_random.pxd``.

The estimators only need :func:`batch_key`; :func:`uniform_array` exists so
that tests can rebuild, in plain numpy, the exact uniforms a kernel drew. The
normals are floating-point arithmetic, which each build of the kernels
compiles its own way (with or without FMA): their test helpers,
``normal_array`` and ``box_muller``, live in ``_testing.pyx``, built with each
variant of the drivers.
"""
from libc.stdint cimport uint64_t

import numpy as np

from cython cimport floating


def batch_key(uint64_t seed, uint64_t epoch, uint64_t batch):
    """Key of one minibatch: a mix of (seed, epoch, minibatch index)."""
    return mix64(mix64(mix64(seed) ^ epoch) + batch)


def uniform_array(uint64_t key, uint64_t stream, Py_ssize_t n_rows, Py_ssize_t n_cols,
            dtype=np.float64, Py_ssize_t col_offset=0):
    """Uniforms in [0, 1) a kernel draws for rows ``0..n_rows-1``."""
    out = np.empty((n_rows, n_cols), dtype=dtype)
    if out.dtype == np.float32:
        _fill_uniform[float](out, key, stream, col_offset)
    else:
        _fill_uniform[double](out, key, stream, col_offset)
    return out


cdef void _fill_uniform(floating[:, ::1] out, uint64_t key, uint64_t stream,
                        Py_ssize_t col_offset):
    cdef Py_ssize_t i, j
    cdef uint64_t rk
    for i in range(out.shape[0]):
        rk = row_key(key, stream, i)
        for j in range(out.shape[1]):
            if floating is float:
                out[i, j] = uniform_f(rk, j + col_offset)
            else:
                out[i, j] = uniform_d(rk, j + col_offset)

