"""How skdbn's kernels were built (they all share the same flags)."""
from ._parallel cimport SKDBN_OPENMP, skdbn_omp_max_threads


def openmp_enabled():
    """True if the kernels were compiled with OpenMP support."""
    return bool(SKDBN_OPENMP)


def openmp_max_threads():
    """OpenMP's default team size (``OMP_NUM_THREADS`` or the cores); 1 without OpenMP."""
    return skdbn_omp_max_threads()


cdef extern from *:
    """
    #ifdef SKDBN_NATIVE_BUILD
    #define SKDBN_NATIVE 1
    #else
    #define SKDBN_NATIVE 0
    #endif
    """
    const bint SKDBN_NATIVE


def native_build():
    """True if built with ``SKDBN_NATIVE_BUILD=1`` (-march=native: runs only
    on CPUs like the build machine's)."""
    return bool(SKDBN_NATIVE)


cdef extern from *:
    """
    #if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    static int skdbn_cpu_avx2_fma(void) {
        __builtin_cpu_init();
        /* libgcc also checks that the OS saves the AVX registers. */
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    #else
    static int skdbn_cpu_avx2_fma(void) { return 0; }
    #endif
    """
    int skdbn_cpu_avx2_fma() noexcept nogil


def cpu_has_avx2_fma():
    """True on an x86-64 CPU (and OS) with AVX2 and FMA."""
    return bool(skdbn_cpu_avx2_fma())
