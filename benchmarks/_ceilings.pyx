# cython: language_level=3, boundscheck=False, wraparound=False
"""GEMM-only ceilings of the benchmarks: the products of a kernel through the
same BLAS calls as skdbn's kernels, and nothing else.

Compiled on first import by ``pyximport`` (``ceilings.py``); not part of the
package.
"""
from cython cimport floating

from skdbn._kernels._blas cimport gemm


def gemm_only_cd1(const floating[:, ::1] W, floating[:, ::1] vis,
                  floating[:, ::1] hid, floating[:, ::1] grad, Py_ssize_t m):
    """The five matrix products of a textbook CD-1 step and nothing else.

    ``v0 W^T``, ``h0 W``, ``v1 W^T``, ``h0^T v0`` and ``h1^T v1`` with the
    shapes of :func:`cd_step`, each one BLAS call (BLAS threads its own
    work): the ceiling of an implementation that does its products one by
    one. For benchmarks only.
    """
    cdef Py_ssize_t n_hid = W.shape[0], n_vis = W.shape[1]
    cdef floating *v0 = &vis[0, 0]
    cdef floating *v1 = &vis[m, 0]
    cdef floating *h0 = &hid[0, 0]
    cdef floating *h1 = &hid[m, 0]
    with nogil:
        gemm(False, True, m, n_hid, n_vis, 1, v0, n_vis, &W[0, 0], n_vis, 0, h0, n_hid)
        gemm(False, False, m, n_vis, n_hid, 1, h0, n_hid, &W[0, 0], n_vis, 0, v1, n_vis)
        gemm(False, True, m, n_hid, n_vis, 1, v1, n_vis, &W[0, 0], n_vis, 0, h1, n_hid)
        gemm(True, False, n_hid, n_vis, m, 1, h0, n_hid, v0, n_vis, 1, &grad[0, 0], n_vis)
        gemm(True, False, n_hid, n_vis, m, -1, h1, n_hid, v1, n_vis, 1, &grad[0, 0], n_vis)



def gemm_only_ais(const floating[:, ::1] W, floating[:, ::1] v, floating[:, ::1] h,
                  Py_ssize_t n_temperatures):
    """The two products per temperature of :func:`ais_run`, and nothing else:
    the GEMM ceiling of AIS (BLAS threads its own work). For benchmarks."""
    cdef Py_ssize_t m = v.shape[0], n_hid = W.shape[0], n_vis = W.shape[1], k
    with nogil:
        for k in range(n_temperatures):
            gemm(False, True, m, n_hid, n_vis, 1, &v[0, 0], n_vis, &W[0, 0], n_vis,
                 0, &h[0, 0], n_hid)
            gemm(False, False, m, n_vis, n_hid, 1, &h[0, 0], n_hid, &W[0, 0], n_vis,
                 0, &v[0, 0], n_vis)

