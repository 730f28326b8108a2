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


from skdbn._kernels._math cimport skdbn_normalf


cdef inline float normal_halves(uint32_t lo, uint32_t hi, uint32_t col) noexcept nogil:
    # Box-Muller on two hashes of the same element.
    return skdbn_normalf(hash32_halves(lo, hi, 2 * col), hash32_halves(lo, hi, 2 * col + 1))


cdef inline float normal(uint64_t rkey, uint32_t col) noexcept nogil:
    return normal_halves(<uint32_t> rkey, <uint32_t> (rkey >> 32), col)


cdef inline uint64_t batch_key_nogil(uint64_t seed, uint64_t k) noexcept nogil:
    # Same mix as _random.batch_key(seed, k, 0).
    return mix64(mix64(mix64(seed) ^ k) + 0)
