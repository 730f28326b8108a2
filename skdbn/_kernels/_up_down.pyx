"""The delta rule of up-down, the generative fine-tuning of a DBN's untied
weights (Hinton, Osindero & Teh 2006)."""
from cython cimport floating
from cython.parallel cimport prange

from skdbn._kernels._blas cimport gemm
from skdbn._kernels._parallel cimport bound, effective_threads


def add_outer(floating[:, ::1] W, const floating[:, ::1] A,
              const floating[:, ::1] B, double alpha, int n_threads=1):
    """``W += alpha * A.T @ B``, rows of ``W`` split over the threads.

    ``A`` is (m, n_out), ``B`` is (m, n_in) and ``W`` is (n_out, n_in). Call
    with BLAS limited to one thread.
    """
    cdef Py_ssize_t m = A.shape[0], n_out = A.shape[1], n_in = B.shape[1]
    cdef Py_ssize_t lo, hi
    cdef int t
    cdef floating a = alpha
    if B.shape[0] != m or W.shape[0] != n_out or W.shape[1] != n_in:
        raise ValueError("add_outer: W, A and B have inconsistent shapes")
    if m == 0:
        return
    n_threads = effective_threads(n_threads, m, n_out, n_in)
    with nogil:
        for t in prange(n_threads, num_threads=n_threads, schedule='static', chunksize=1):
            lo = bound(n_out, n_threads, t)
            hi = bound(n_out, n_threads, t + 1)
            if hi > lo:
                gemm(True, False, hi - lo, n_in, m, a, &A[0, 0] + lo, n_out,
                     &B[0, 0], n_in, 1, &W[lo, 0], n_in)
