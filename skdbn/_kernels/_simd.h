/* Small loops over a block of hidden units, as C so that they stay loops.
 *
 * GCC unrolls a loop of a constant 16 iterations completely before its loop
 * vectoriser runs, and the straight-line code it leaves does not vectorise
 * either (scalar loads, multiplies and adds per unit). "GCC unroll 1" keeps
 * the loop, which then becomes two AVX (four SSE) fused multiply-adds.
 * Cython cannot place a pragma, hence this header (cimported by _csr.pxd).
 */
#ifndef SKDBN_SIMD_H
#define SKDBN_SIMD_H

#include <stddef.h>

/* Hidden units handled together by the sparse products (_csr.pxd). */
#define SKDBN_UNIT_BLOCK 16

#if defined(__GNUC__) && !defined(__clang__)
#define SKDBN_KEEP_LOOP _Pragma("GCC unroll 1")
#else
#define SKDBN_KEEP_LOOP
#endif

/* MSVC's C compiler spells inline __inline before C11. */
#if defined(_MSC_VER) && !defined(__cplusplus)
#define SKDBN_INLINE static __inline
#else
#define SKDBN_INLINE static inline
#endif

/* a[j] += x * w[j] for the SKDBN_UNIT_BLOCK units of a block. The pragma
 * goes right before the loop it keeps. */
SKDBN_INLINE void skdbn_axpy_block_f(float *a, float x, const float *w)
{
    int j;
    SKDBN_KEEP_LOOP
    for (j = 0; j < SKDBN_UNIT_BLOCK; j++)
        a[j] += x * w[j];
}

SKDBN_INLINE void skdbn_axpy_block_d(double *a, double x, const double *w)
{
    int j;
    SKDBN_KEEP_LOOP
    for (j = 0; j < SKDBN_UNIT_BLOCK; j++)
        a[j] += x * w[j];
}


/* Whether any of the SKDBN_UNIT_BLOCK values at r is nonzero: a test of a
 * whole block that skips the zeros of sparse sampled visibles (_csr.pxd).
 * The comparisons OR-ed together vectorise; -0.0 counts as zero. */
SKDBN_INLINE int skdbn_any_nonzero_f(const float *r)
{
    int j, any = 0;
    SKDBN_KEEP_LOOP
    for (j = 0; j < SKDBN_UNIT_BLOCK; j++)
        any |= r[j] != 0;
    return any;
}

SKDBN_INLINE int skdbn_any_nonzero_d(const double *r)
{
    int j, any = 0;
    SKDBN_KEEP_LOOP
    for (j = 0; j < SKDBN_UNIT_BLOCK; j++)
        any |= r[j] != 0;
    return any;
}

/* sum_k (r[k] s[k])^2 over k < n in double (s NULL: all 1), in
 * SKDBN_LANES independent partial sums (element k to lane k % SKDBN_LANES,
 * the tail to lane 0): a serial sum waits four cycles per element on its
 * addition. */
#define SKDBN_LANES 8

#define SKDBN_SUM_SQUARES(r, s, n)                                            \
    double acc[SKDBN_LANES] = {0};                                          \
    ptrdiff_t i, n_full = (n) - (n) % SKDBN_LANES;                          \
    int k;                                                                  \
    if ((s) == NULL) {                                                      \
        for (i = 0; i < n_full; i += SKDBN_LANES) {                         \
            SKDBN_KEEP_LOOP                                                 \
            for (k = 0; k < SKDBN_LANES; k++)                               \
                acc[k] += (double) (r)[i + k] * (r)[i + k];                 \
        }                                                                   \
        for (; i < (n); i++)                                                \
            acc[0] += (double) (r)[i] * (r)[i];                             \
    } else {                                                                \
        for (i = 0; i < n_full; i += SKDBN_LANES) {                         \
            SKDBN_KEEP_LOOP                                                 \
            for (k = 0; k < SKDBN_LANES; k++) {                             \
                double d = (double) (r)[i + k] * (s)[i + k];                \
                acc[k] += d * d;                                            \
            }                                                               \
        }                                                                   \
        for (; i < (n); i++) {                                              \
            double d = (double) (r)[i] * (s)[i];                            \
            acc[0] += d * d;                                                \
        }                                                                   \
    }                                                                       \
    return ((acc[0] + acc[1]) + (acc[2] + acc[3]))                          \
        + ((acc[4] + acc[5]) + (acc[6] + acc[7]));

/* sum_k r[k] in double, in SKDBN_LANES partial sums as above. */
#define SKDBN_SUM(r, n)                                                     \
    double acc[SKDBN_LANES] = {0};                                          \
    ptrdiff_t i, n_full = (n) - (n) % SKDBN_LANES;                          \
    int k;                                                                  \
    for (i = 0; i < n_full; i += SKDBN_LANES) {                             \
        SKDBN_KEEP_LOOP                                                     \
        for (k = 0; k < SKDBN_LANES; k++)                                   \
            acc[k] += (double) (r)[i + k];                                  \
    }                                                                       \
    for (; i < (n); i++)                                                    \
        acc[0] += (double) (r)[i];                                          \
    return ((acc[0] + acc[1]) + (acc[2] + acc[3]))                          \
        + ((acc[4] + acc[5]) + (acc[6] + acc[7]));

SKDBN_INLINE double skdbn_sum_f(const float *r, ptrdiff_t n)
{
    SKDBN_SUM(r, n)
}

SKDBN_INLINE double skdbn_sum_d(const double *r, ptrdiff_t n)
{
    SKDBN_SUM(r, n)
}

SKDBN_INLINE double skdbn_sum_squares_f(const float *r, const float *s, ptrdiff_t n)
{
    SKDBN_SUM_SQUARES(r, s, n)
}

SKDBN_INLINE double skdbn_sum_squares_d(const double *r, const double *s, ptrdiff_t n)
{
    SKDBN_SUM_SQUARES(r, s, n)
}

#endif
