"""The distributed workers' phases: the pieces of the CD step for a model
split across processes (skdbn.distributed), the same products, unit math and
update rules as the fused step (``_phases.pxd``) on column blocks, with the
workers' exchanges between them. Call with BLAS limited to one thread.
"""
from cython cimport floating
from cython.parallel cimport prange

import numpy as np

from skdbn._kernels._blas cimport gemm
from skdbn._kernels._chain cimport DOWN, UP_DATA, Phase, chain_phase, n_phases
from skdbn._kernels._blocks cimport hidden_block
from skdbn._kernels._model cimport (Draw, Model, Rule, Stats, StepOptions, hidden_draw,
                                    visible_unit_of)
from skdbn._kernels._parallel cimport bound, effective_threads
from skdbn._kernels._phases cimport (LANES, lanes_total, signed_column_sums,
                                     update_bias, update_weight_rows)
from skdbn._kernels._units cimport BERNOULLI, check_hidden_unit, visible_bias_gradient


PHASE_NAMES = {UP_DATA: "up_data", DOWN: "down"}


def chain_phases(StepOptions options):
    """The phases of one minibatch's CD-k / PCD chain (``_chain.pxd``), as
    the fused step runs them: a list of dicts with ``kind`` ("up_data",
    "down" or "up_chain"), ``step``, ``stream``, ``sign``, ``advance`` (its
    hidden samples become the chain), ``statistics`` (its hidden values are
    the gradient's) and ``measure`` (the reconstruction error). ``options``:
    the fields of ``StepOptions``; ``cd_k`` and ``persistent`` are read."""
    cdef Phase ph
    if options.cd_k < 1:
        raise ValueError(f"cd_k must be at least 1, got {options.cd_k}")
    phases = []
    for p in range(n_phases(&options)):
        ph = chain_phase(&options, p)
        phases.append(dict(kind=PHASE_NAMES.get(ph.kind, "up_chain"), step=ph.step,
                           stream=ph.stream, sign=ph.sign, advance=ph.advance,
                           statistics=ph.statistics, measure=ph.measure))
    return phases


def hidden_from_input(floating[:, ::1] act, const floating[::1] c,
                      floating[:, ::1] samples=None, bint sampled=False,
                      double sign=1, draw=(0, 0), Py_ssize_t col0=0,
                      int hidden_unit=BERNOULLI):
    """act <- sign * mean(act + c) (or the sample, ``sampled``), in place;
    ``samples``, if given, <- the draws of ``draw``.

    For hidden inputs summed from the partial products of several processes:
    ``col0`` is the index of the first unit of ``act`` in the whole model.
    """
    cdef Model M
    cdef Py_ssize_t n = act.shape[1]
    cdef void *s = NULL if samples is None else <void *> &samples[0, 0]
    cdef Draw d = hidden_draw(draw[0], draw[1], sampled, sign, s, n)
    check_hidden_unit(hidden_unit)
    if c.shape[0] != n or (samples is not None and (samples.shape[0] != act.shape[0]
                                                    or samples.shape[1] != n)):
        raise ValueError("hidden_from_input: act, c and samples do not match")
    if act.shape[0] == 0:
        return
    M.c, M.hid0, M.hidden_unit = <void *> &c[0], col0, hidden_unit
    with nogil:
        hidden_block(&act[0, 0], n, act.shape[0], 0, n, &M, &d)


def input_product(const floating[:, ::1] U, const floating[:, ::1] W,
                  floating[:, ::1] out, int n_threads=1):
    """out = U @ W.T, output columns split over the threads."""
    cdef Py_ssize_t m = U.shape[0], n_hid = W.shape[0], n_vis = W.shape[1]
    cdef Py_ssize_t lo, hi
    cdef int t
    if U.shape[1] != n_vis or out.shape[0] != m or out.shape[1] != n_hid:
        raise ValueError("input_product: U, W and out do not match")
    if m == 0 or n_hid == 0:
        return
    n_threads = effective_threads(n_threads, m, n_hid, n_vis)
    with nogil:
        for t in prange(n_threads, num_threads=n_threads, schedule='static', chunksize=1):
            lo = bound(n_hid, n_threads, t)
            hi = bound(n_hid, n_threads, t + 1)
            if hi > lo:
                gemm(False, True, m, hi - lo, n_vis, 1, &U[0, 0], n_vis,
                     &W[lo, 0], n_vis, 0, &out[0, lo], n_hid)


def apply_gradient(floating[:, ::1] W, floating[:, ::1] W_inc,
                   const floating[:, ::1] hid, const floating[:, ::1] vis,
                   Py_ssize_t m, double learning_rate, double momentum,
                   double weight_decay, int n_threads=1):
    """The fused step's weight update from the stacked statistics ``hid[:2m]``
    (negative half negated) and ``vis[:2m]``, for any block of W."""
    cdef Py_ssize_t n_hid = W.shape[0], n_vis = W.shape[1], lo, hi
    cdef int t
    cdef Rule rule
    cdef Stats stats
    if hid.shape[1] != n_hid or vis.shape[1] != n_vis or hid.shape[0] < 2 * m \
            or vis.shape[0] < 2 * m or W_inc.shape[0] != n_hid or W_inc.shape[1] != n_vis:
        raise ValueError("apply_gradient: W, hid and vis have inconsistent shapes")
    if n_hid == 0 or n_vis == 0:
        return
    rule.alpha = learning_rate / m
    rule.momentum = momentum
    rule.decay = learning_rate * weight_decay
    rule.direct = <floating> rule.momentum == 0 and <floating> rule.decay == 0
    stats.pos, stats.neg, stats.both = NULL, NULL, NULL
    stats.hid, stats.ldh, stats.by_unit, stats.vis, stats.m2 = &hid[0, 0], n_hid, False, \
        &vis[0, 0], 2 * m
    n_threads = effective_threads(n_threads, 2 * m, n_hid, n_vis)
    with nogil:
        for t in prange(n_threads, num_threads=n_threads, schedule='static', chunksize=1):
            lo = bound(n_hid, n_threads, t)
            hi = bound(n_hid, n_threads, t + 1)
            update_weight_rows(&W[0, 0], &W_inc[0, 0], NULL, &stats, lo, hi, n_vis, &rule,
                               NULL)


def apply_bias_gradient(floating[::1] b, floating[::1] b_inc,
                        const floating[:, ::1] stacked, Py_ssize_t m,
                        bint negate_second_half, const floating[::1] sigma,
                        double learning_rate, double momentum):
    """The fused step's bias update: b_inc = momentum b_inc + lr/m * sum of
    the signed rows of ``stacked[:2m]`` (divided by sigma for Gaussian units)."""
    cdef Py_ssize_t n = b.shape[0], i, j, k, n_full = 2 * m - (2 * m) % LANES
    cdef double[::1] g = np.zeros(n)
    cdef double[:, ::1] lanes = np.zeros((n, LANES))
    cdef const floating *sig = &sigma[0] if sigma.shape[0] else NULL
    cdef int unit = visible_unit_of(sig)
    if stacked.shape[1] != n or stacked.shape[0] < 2 * m or b_inc.shape[0] != n \
            or (sigma.shape[0] and sigma.shape[0] != n):
        raise ValueError("apply_bias_gradient: b and stacked have inconsistent shapes")
    if n == 0:
        return
    with nogil:
        if negate_second_half:
            signed_column_sums(&stacked[0, 0], n, m, 0, n, &g[0])
        else:
            # The hidden units' sums of the fused step (row_sums), lane by lane.
            for i in range(2 * m):
                k = i % LANES if i < n_full else i - n_full
                for j in range(n):
                    lanes[j, k] += stacked[i, j]
            for j in range(n):
                g[j] = lanes_total(&lanes[j, 0])
        for i in range(n):
            update_bias(&b[i], &b_inc[i], visible_bias_gradient(unit, g[i], sig, i),
                        learning_rate / m, momentum)
