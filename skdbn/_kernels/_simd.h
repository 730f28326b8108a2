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

#endif
