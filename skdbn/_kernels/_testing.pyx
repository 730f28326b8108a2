"""Test helpers: the normals of this build of the kernels. The Box-Muller
polynomials round differently with and without FMA contraction, so a test
rebuilding a kernel's draws takes them from the build the kernel runs. Not
imported by skdbn itself."""
from libc.stdint cimport uint32_t, uint64_t

import numpy as np

from skdbn._kernels._math cimport skdbn_exp, skdbn_normalf
from skdbn._kernels._random cimport normal, row_key


def normal_array(uint64_t key, uint64_t stream, Py_ssize_t n_rows, Py_ssize_t n_cols,
                 Py_ssize_t col_offset=0):
    """Standard normals a kernel draws for rows ``0..n_rows-1`` (float64)."""
    cdef double[:, ::1] out = np.empty((n_rows, n_cols))
    cdef Py_ssize_t i, j
    cdef uint64_t rk
    for i in range(n_rows):
        rk = row_key(key, stream, i)
        for j in range(n_cols):
            out[i, j] = normal(rk, j + col_offset)
    return np.asarray(out)


def box_muller(const uint32_t[::1] h1, const uint32_t[::1] h2):
    """The kernels' standard normals from given pairs of 32-bit hashes."""
    cdef float[::1] out = np.empty(h1.shape[0], dtype=np.float32)
    cdef Py_ssize_t i
    for i in range(h1.shape[0]):
        out[i] = skdbn_normalf(h1[i], h2[i])
    return np.asarray(out)


def exp_array(const double[::1] x):
    """The kernels' vectorisable double-precision exp of each of ``x``."""
    cdef double[::1] out = np.empty(x.shape[0])
    cdef Py_ssize_t i
    for i in range(x.shape[0]):
        out[i] = skdbn_exp(x[i])
    return np.asarray(out)
