# Static work splitting for the kernels' OpenMP threads.


cdef inline Py_ssize_t bound(Py_ssize_t n, int n_parts, int part) noexcept nogil:
    """Start of block ``part`` of a static split of range(n) in n_parts blocks.

    Returned, not written through a pointer, so that prange makes the
    variable it is assigned to thread-private.
    """
    return (n * part) // n_parts


cdef inline int effective_threads(int n_threads, Py_ssize_t m, Py_ssize_t n_out,
                                  Py_ssize_t n_in) noexcept nogil:
    """``n_threads``, reduced so that each thread gets >= 0.5M multiply-adds
    per (m x n_in) @ (n_in x n_out) product: a parallel region costs
    microseconds (milliseconds when the cores are oversubscribed), more than
    a small product saves."""
    cdef Py_ssize_t by_work = <Py_ssize_t> (<double> m * n_out * n_in / 5e5)
    return <int> max(1, min(<Py_ssize_t> n_threads, by_work))


# Whether this module was compiled with OpenMP. Without it, ``prange`` and
# ``parallel`` run their loops in the calling thread: every kernel stays
# correct and runs single-threaded.
cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define SKDBN_OPENMP 1
    static int skdbn_omp_max_threads(void) { return omp_get_max_threads(); }
    #else
    #define SKDBN_OPENMP 0
    static int skdbn_omp_max_threads(void) { return 1; }
    #endif
    """
    const bint SKDBN_OPENMP
    int skdbn_omp_max_threads() noexcept nogil
