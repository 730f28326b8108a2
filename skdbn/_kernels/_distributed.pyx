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
from skdbn._kernels._csr cimport add_column_sums, columns_of
from skdbn._kernels._model cimport (Columns, Draw, Model, Rule, Stats, StepOptions,
                                    hidden_draw, visible_unit_of)
from skdbn._kernels._parallel cimport bound, effective_threads
from skdbn._kernels._phases cimport (LANES, lanes_total, sigma_statistics, signed_column_sums,
                                     sparsity_step, update_bias, update_sigma,
                                     update_weight_rows)
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
    M.c, M.hid0, M.hidden_unit, M.lengths = <void *> &c[0], col0, hidden_unit, NULL
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
                   Py_ssize_t m, StepOptions options, floating[:, ::1] grad=None,
                   double[:, ::1] wg=None, pos=None):
    """The fused step's weight update from the stacked statistics ``hid[:2m]``
    (negative half negated) and ``vis[:2m]``, for any block of W.

    ``pos``: the data (the first m rows of the visibles) as Columns
    (``skdbn._csr.columns``) instead of ``vis[:m]``, whose products are then
    sparse (``_csr.scatter_gradient``); not with ``grad``.

    ``options``: the fields of ``StepOptions``; ``learning_rate``,
    ``momentum``, ``weight_decay`` and ``n_threads`` are read. With ``grad``
    (shaped like W) and ``wg`` (>= n_threads rows of W's width, zeroed), the
    update of a learned sigma: the gradient is formed in ``grad`` first and
    each row of ``wg`` receives a thread's partial sums of W * grad over the
    hidden units (``update_sigma``).
    """
    cdef Py_ssize_t n_hid = W.shape[0], n_vis = W.shape[1], lo, hi
    cdef int t, n_threads
    cdef Rule rule
    cdef Stats stats
    cdef floating *G = NULL
    cdef double *wgp = NULL
    cdef Columns X0
    cdef const floating[:, ::1] by_unit
    if hid.shape[1] != n_hid or vis.shape[1] != n_vis or hid.shape[0] < 2 * m \
            or vis.shape[0] < 2 * m or W_inc.shape[0] != n_hid or W_inc.shape[1] != n_vis:
        raise ValueError("apply_gradient: W, hid and vis have inconsistent shapes")
    n_threads = effective_threads(options.n_threads, 2 * m, n_hid, n_vis)
    if grad is not None:
        if grad.shape[0] != n_hid or grad.shape[1] != n_vis or wg is None \
                or wg.shape[0] < n_threads or wg.shape[1] != n_vis:
            raise ValueError("apply_gradient: grad must be shaped like W and wg (n_threads, "
                             "n_visible)")
    if n_hid == 0 or n_vis == 0:
        return
    if grad is not None:
        G, wgp = &grad[0, 0], &wg[0, 0]
    rule.alpha = options.learning_rate / m
    rule.momentum = options.momentum
    rule.decay = options.learning_rate * options.weight_decay
    rule.direct = <floating> rule.momentum == 0 and <floating> rule.decay == 0 and G == NULL
    stats.pos, stats.neg, stats.both = NULL, NULL, NULL
    stats.hid, stats.ldh, stats.by_unit, stats.vis, stats.m2 = &hid[0, 0], n_hid, False, \
        &vis[0, 0], 2 * m
    if pos is not None:
        if G != NULL:
            raise ValueError("apply_gradient: a learned sigma needs dense data")
        X0 = columns_of(pos, m, n_vis, &W[0, 0])
        stats.pos = &X0
        # The sparse products read the statistics unit by unit.
        by_unit = np.ascontiguousarray(np.asarray(hid[:2 * m]).T)
        stats.hid, stats.ldh, stats.by_unit = &by_unit[0, 0], 2 * m, True
    with nogil:
        for t in prange(n_threads, num_threads=n_threads, schedule='static', chunksize=1):
            lo = bound(n_hid, n_threads, t)
            hi = bound(n_hid, n_threads, t + 1)
            update_weight_rows(&W[0, 0], &W_inc[0, 0], G, &stats, lo, hi, n_vis, &rule,
                               wgp + t * n_vis if G != NULL else NULL)


def sigma_gradient_parts(const floating[:, ::1] vis, Py_ssize_t m, const floating[::1] b,
                         const floating[::1] sigma, bint sample_visible,
                         double[::1] s_data):
    """s_data (zeroed) <- the data-minus-chain term of a learned sigma's
    gradient over the stacked visibles ``vis[:2m]`` (u-space), as the fused
    step computes it (``_phases.sigma_statistics``)."""
    cdef Py_ssize_t n = vis.shape[1]
    if vis.shape[0] < 2 * m or b.shape[0] != n or sigma.shape[0] != n \
            or s_data.shape[0] != n:
        raise ValueError("sigma_gradient_parts: vis, b, sigma and s_data do not match")
    if n == 0:
        return
    with nogil:
        sigma_statistics(&vis[0, 0], n, m, &b[0], &sigma[0], sample_visible, &s_data[0])


def apply_sigma_gradient(floating[::1] sigma, const double[::1] s_data,
                         const double[:, ::1] wg, Py_ssize_t m, StepOptions options):
    """The fused step's update of a learned sigma (``_phases.update_sigma``)
    from :func:`sigma_gradient_parts` and the ``wg`` of :func:`apply_gradient`
    (all its rows); ``options``: ``sigma_learning_rate`` and ``sigma_min``."""
    cdef Py_ssize_t n = sigma.shape[0]
    if s_data.shape[0] != n or wg.shape[1] != n:
        raise ValueError("apply_sigma_gradient: sigma, s_data and wg do not match")
    if n == 0:
        return
    with nogil:
        update_sigma(&sigma[0], &s_data[0], &wg[0, 0], wg.shape[0], n, m,
                     options.sigma_learning_rate, options.sigma_min)


def apply_bias_gradient(floating[::1] b, floating[::1] b_inc,
                        const floating[:, ::1] stacked, Py_ssize_t m,
                        bint negate_second_half, const floating[::1] sigma,
                        double learning_rate, double momentum, pos=None):
    """The fused step's bias update: b_inc = momentum b_inc + lr/m * sum of
    the signed rows of ``stacked[:2m]`` (divided by sigma for Gaussian units).
    ``pos``: the first m rows as Columns instead (visible biases only)."""
    cdef Columns X0
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
    if pos is not None:
        if not negate_second_half:
            raise ValueError("apply_bias_gradient: sparse rows are visibles")
        X0 = columns_of(pos, m, n, &b[0])
    with nogil:
        if pos is not None:
            add_column_sums(&X0, <const floating *> X0.val, 1, 0, n, &g[0])
            for i in range(m, 2 * m):
                for j in range(n):
                    g[j] -= stacked[i, j]
        elif negate_second_half:
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


def sparsity_penalty(floating[:, ::1] stats, floating[::1] hid_mean, double target,
                     double cost):
    """The fused step's sparsity penalty on positive statistics ``stats``
    (m, n_hid) of every hidden unit: the running means ``hid_mean`` move
    (``_phases.sparsity_step``) and each column loses its unit's penalty.
    Every worker holds all the statistics, so each computes the same."""
    cdef Py_ssize_t m = stats.shape[0], n = stats.shape[1], i, j
    cdef floating[::1] g = np.zeros(n, dtype=np.asarray(hid_mean).dtype)
    if hid_mean.shape[0] != n:
        raise ValueError("sparsity_penalty: hid_mean needs one entry per hidden unit")
    if m == 0:
        return
    with nogil:
        for i in range(m):
            for j in range(n):
                g[j] += stats[i, j]
        sparsity_step(&hid_mean[0], &g[0], n, m, target, cost)
        for i in range(m):
            for j in range(n):
                stats[i, j] -= g[j]

