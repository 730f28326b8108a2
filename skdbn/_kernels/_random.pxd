# Counter-based random numbers: a sample is a pure function of
# (key, stream, row, column), so it does not depend on the number of threads,
# on the order rows are visited, or on which process owns a column.
#
# ``key`` comes from (random_state, epoch, minibatch) via ``batch_key``;
# ``row_key`` mixes in the stream (which sampling stage) and the row; the
# per-element hash is two rounds of the 32-bit MurmurHash3 finaliser, which is
# cheap enough to sit next to a sigmoid in the inner loop.
from libc.stdint cimport int32_t, uint32_t, uint64_t


cdef inline uint64_t mix64(uint64_t z) noexcept nogil:
    # SplitMix64 finaliser (Steele, Lea & Flood 2014).
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef inline uint32_t fmix32(uint32_t x) noexcept nogil:
    x = x ^ (x >> 16)
    x = x * 0x85EBCA6BU
    x = x ^ (x >> 13)
    x = x * 0xC2B2AE35U
    return x ^ (x >> 16)


cdef inline uint64_t row_key(uint64_t key, uint64_t stream, uint64_t row) noexcept nogil:
    return mix64(key ^ mix64((stream << 40) + row + 0x9E3779B97F4A7C15ULL))


cdef inline uint32_t hash32_halves(uint32_t lo, uint32_t hi, uint32_t col) noexcept nogil:
    # The row key as two 32-bit halves: a loop over rows with the column
    # fixed then vectorises with 32-bit lanes only.
    return fmix32(fmix32((col * 0x9E3779B9U) ^ lo) + hi)


cdef inline uint32_t hash32(uint64_t rkey, uint32_t col) noexcept nogil:
    return hash32_halves(<uint32_t> rkey, <uint32_t> (rkey >> 32), col)


cdef inline float unit_f(uint32_t h) noexcept nogil:
    # 24 random bits: every float in [0, 1) on the 2**-24 grid. The signed
    # conversion vectorises (there is no SSE/AVX2 unsigned one).
    return <float> <int32_t> (h >> 8) * <float> 5.9604644775390625e-08


cdef inline double unit_d(uint32_t h) noexcept nogil:
    return <double> h * 2.3283064365386963e-10


cdef inline float uniform_f(uint64_t rkey, uint32_t col) noexcept nogil:
    return unit_f(hash32(rkey, col))


cdef inline double uniform_d(uint64_t rkey, uint32_t col) noexcept nogil:
    return unit_d(hash32(rkey, col))


cdef extern from *:
    """
    #include <math.h>
    #include <stdint.h>
    #include <string.h>
    /* A standard normal from two 32-bit hashes by Box-Muller,
       sqrt(-2 log u1) cos(2 pi u2), in float arithmetic with polynomials
       instead of libm calls, so that loops of draws vectorise (libm's log
       and cos in double cost about 40 ns per draw, as much as the CD step's
       products at (784, 500, 100)). u1 = (h1 / 4 + 1) / 2^30 lies in
       (0, 1], so draws reach 6.45 standard deviations.
       log u1: u1 = 2^e m with m in [sqrt(1/2), sqrt(2)), log m by the Cephes
       logf polynomial (as in skdbn_softplusf), e ln 2 in two parts.
       cos(2 pi u2) = sin(2 pi b) with b = |u2 - 1/2| - 1/4 in [-1/4, 1/4],
       sin by its Taylor series to y^13 (truncation below 7e-10 on
       [-pi/2, pi/2]). Both are within a few float ulps of the exact
       transform: the draws have the normal distribution to float precision. */
    static inline float skdbn_normalf(uint32_t h1, uint32_t h2) {
        float u1 = (float) (int32_t) ((h1 >> 2) + 1u) * 9.31322574615478515625e-10f;
        int32_t bits;
        memcpy(&bits, &u1, sizeof bits);
        float e = (float) (((bits >> 23) & 0xff) - 127);
        int32_t mbits = (bits & 0x007fffff) | 0x3f800000;
        float m;
        memcpy(&m, &mbits, sizeof m);
        e = m > 1.41421356f ? e + 1.0f : e;
        m = m > 1.41421356f ? 0.5f * m : m;
        float t = m - 1.0f;
        float t2 = t * t;
        float y = 7.0376836292e-2f;
        y = y * t - 1.1514610310e-1f;
        y = y * t + 1.1676998740e-1f;
        y = y * t - 1.2420140846e-1f;
        y = y * t + 1.4249322787e-1f;
        y = y * t - 1.6668057665e-1f;
        y = y * t + 2.0000714765e-1f;
        y = y * t - 2.4999993993e-1f;
        y = y * t + 3.3333331174e-1f;
        y = y * t * t2;
        y += -2.12194440e-4f * e;
        y += -0.5f * t2;
        float log_u1 = t + y + 0.693359375f * e;
        float r = -2.0f * log_u1;
        r = r > 0.0f ? r : 0.0f;  /* u1 = 1 may give -0 */
        float u2 = (float) (int32_t) (h2 >> 8) * 5.9604644775390625e-08f;
        float b = u2 - 0.5f;
        b = (b < 0.0f ? -b : b) - 0.25f;
        float x = 6.28318530717958648f * b;
        float x2 = x * x;
        float s = 1.6059043836821615e-10f;          /*  1 / 13! */
        s = s * x2 - 2.5052108385441720e-08f;       /* -1 / 11! */
        s = s * x2 + 2.7557319223985893e-06f;       /*  1 / 9!  */
        s = s * x2 - 1.9841269841269841e-04f;       /* -1 / 7!  */
        s = s * x2 + 8.3333333333333333e-03f;       /*  1 / 5!  */
        s = s * x2 - 1.6666666666666667e-01f;       /* -1 / 3!  */
        s = s * x2 * x + x;
        return sqrtf(r) * s;
    }
    """
    float skdbn_normalf(uint32_t h1, uint32_t h2) noexcept nogil


cdef inline float normal_halves(uint32_t lo, uint32_t hi, uint32_t col) noexcept nogil:
    # Box-Muller on two hashes of the same element.
    return skdbn_normalf(hash32_halves(lo, hi, 2 * col), hash32_halves(lo, hi, 2 * col + 1))


cdef inline float normal(uint64_t rkey, uint32_t col) noexcept nogil:
    return normal_halves(<uint32_t> rkey, <uint32_t> (rkey >> 32), col)


cdef inline uint64_t batch_key_nogil(uint64_t seed, uint64_t k) noexcept nogil:
    # Same mix as _random.batch_key(seed, k, 0).
    return mix64(mix64(mix64(seed) ^ k) + 0)
