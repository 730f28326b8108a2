# The CD-k / PCD chain of one minibatch as a sequence of phases, defined
# once: the fused step (_cd.pyx) runs them in one thread team, the
# distributed workers (skdbn/distributed/_worker.py, via
# _distributed.chain_phases) run the same phases with their exchanges in
# between. Streams follow skdbn._streams (cd_hidden(s) = 2s, cd_visible(s) =
# 2s - 1).
#
# CD-k:  UP_DATA, then for s = 1..k: DOWN(s), UP_CHAIN(s).
# PCD-k: for s = 1..k: DOWN(s), UP_CHAIN(s), then UP_DATA (the chain, not
#        the data, drives the negative phase; the fused step computes the
#        last two in one product).
from libc.stdint cimport uint64_t

from skdbn._kernels._model cimport StepOptions


cdef enum:
    UP_DATA = 0     # hidden units given the data: the positive statistics
    DOWN = 1        # visible units given the chain's hidden samples
    UP_CHAIN = 2    # hidden units given the negative visibles


ctypedef struct Phase:
    int kind
    int step                   # Gibbs step s of DOWN and UP_CHAIN; 0 for UP_DATA
    uint64_t stream            # its random numbers (skdbn._streams)
    double sign                # of the statistics it stores: -1 for the last
                               #   negative hidden statistics, else 1
    bint advance               # its hidden samples become the chain's
    bint statistics            # its hidden values are the gradient's statistics
    bint measure               # DOWN of step 1: the reconstruction error


cdef inline int n_phases(const StepOptions *o) noexcept nogil:
    return 2 * o.cd_k + 1


cdef inline Phase chain_phase(const StepOptions *o, int p) noexcept nogil:
    """Phase p of the chain, 0 <= p < n_phases(o)."""
    cdef Phase ph
    cdef int q = p if o.persistent else p - 1   # position after UP_DATA (CD)
    ph.sign, ph.advance, ph.statistics, ph.measure = 1, False, False, False
    if (o.persistent and p == 2 * o.cd_k) or (not o.persistent and p == 0):
        ph.kind, ph.step, ph.stream = UP_DATA, 0, 0
        ph.advance = not o.persistent
        ph.statistics = True
        return ph
    ph.step = q // 2 + 1
    if q % 2 == 0:
        ph.kind, ph.stream = DOWN, 2 * ph.step - 1
        ph.measure = ph.step == 1
    else:
        ph.kind, ph.stream = UP_CHAIN, 2 * ph.step
        if ph.step == o.cd_k:
            ph.sign = -1
            ph.statistics = True
        ph.advance = o.persistent or ph.step < o.cd_k
    return ph
