# Row-major BLAS on top of scipy.linalg.cython_blas, fused over float/double.
#
# BLAS is column-major; a row-major C = op(A) op(B) is the column-major
# product C^T = op(B)^T op(A)^T, so the operands are swapped, never copied.
from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm, sgemv, dgemv


cdef inline void gemm(bint trans_a, bint trans_b, int m, int n, int k,
                      floating alpha, const floating *a, int lda,
                      const floating *b, int ldb, floating beta,
                      floating *c, int ldc) noexcept nogil:
    """Row-major ``C[m, n] = alpha * op(A) @ op(B) + beta * C``."""
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float *> b, &ldb,
              <float *> a, &lda, &beta, c, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double *> b, &ldb,
              <double *> a, &lda, &beta, c, &ldc)


cdef inline void weighted_row_sum(int m, int n, const floating *a, int lda,
                                  const floating *w, floating *out) noexcept nogil:
    """``out[n] = w[m] @ A[m, n]`` for a row-major A: a weighted sum of rows."""
    cdef char t = b'N'
    cdef int one = 1
    cdef floating alpha = 1, beta = 0
    if floating is float:
        sgemv(&t, &n, &m, &alpha, <float *> a, &lda, <float *> w, &one,
              &beta, out, &one)
    else:
        dgemv(&t, &n, &m, &alpha, <double *> a, &lda, <double *> w, &one,
              &beta, out, &one)


cdef inline void gemv(int m, int n, floating alpha, const floating *a, int lda,
                      const floating *x, floating beta, floating *y) noexcept nogil:
    """Row-major ``y[m] = alpha * A[m, n] @ x[n] + beta * y``."""
    cdef char t = b'T'
    cdef int one = 1
    if floating is float:
        sgemv(&t, &n, &m, &alpha, <float *> a, &lda, <float *> x, &one,
              &beta, y, &one)
    else:
        dgemv(&t, &n, &m, &alpha, <double *> a, &lda, <double *> x, &one,
              &beta, y, &one)
