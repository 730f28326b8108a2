"""The fused CD-k / PCD step: one minibatch of RBM training per call.

Conventions
-----------
* ``W`` is ``components_``, row-major of shape (n_hidden, n_visible).
* Gaussian visibles are handled in the scaled space ``u = v / sigma``: the
  hidden input is ``u @ W.T + c`` and the visible mean is ``b / sigma + h @ W``
  (report §1.4.3), so both unit types share the same products.
* The minibatch lives in the top half of a stacked buffer ``vis`` (2m, V) and
  its reconstruction in the bottom half. The hidden layer is stored by unit:
  ``hid`` (H, 2m) holds p0 in columns :m and -pk in m:2m (the negative phase
  negated), and the chain of hidden samples is (H, m). The weight gradient
  ``p0.T @ u0 - pk.T @ uk`` is then one GEMM with inner dimension 2m,
  ``hid @ vis``, and the bias gradients are two sums. Stored by unit, every
  hidden product has W's rows as its first operand (the faster order for
  OpenBLAS at CD's shapes), and the gradient needs no transpose.
* Threads: the caller limits BLAS to one thread; every phase of the chain
  runs in one OpenMP team (``_phases.pxd``), each thread on a block of
  output columns; the weight update is split over rows of ``W``.
* Random numbers come from ``_random.pxd``, keyed by (key, stream, row,
  column): samples do not depend on the number of threads.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdint cimport uint64_t
from libc.stdlib cimport calloc, free

import numpy as np

from skdbn._kernels._blas cimport gemv
from skdbn._kernels._blocks cimport scale_block
from skdbn._kernels._model cimport (Model, Rule, Stats, StepOptions, hidden_draw,
                                    visible_draw)
from skdbn._kernels._parallel cimport bound, effective_threads
from skdbn._kernels._phases cimport (down, row_sums, signed_column_sums, up_by_unit,
                                     update_bias, update_weight_rows)
from skdbn._kernels._units cimport check_groups, check_hidden_unit, softmax_groups_rows


cdef double gibbs_chain(const Model *M, floating *v0, floating *h0, Py_ssize_t ldh,
                        floating *ch, Py_ssize_t ldc, Py_ssize_t m,
                        const StepOptions *o, int n_threads) noexcept nogil:
    """Positive phase and k Gibbs steps of the negative phase for m rows.

    ``v0``: (2m, n_vis), the data on top. ``h0``: (n_hid, >= 2m) with stride
    ``ldh``, stored by unit; on return columns :m hold p0 and m:2m -pk.
    ``ch``: the hidden samples, (n_hid, >= m) with stride ``ldc``.
    Streams: hidden samples of step t use stream 2t, visible samples of step
    t stream 2t - 1. Returns the squared error of the first reconstruction.
    """
    cdef int s, t
    # Two reductions, as OpenMP allows one per variable in a parallel region.
    cdef double err = 0, err_groups = 0
    cdef floating *v1 = v0 + m * M.n_vis
    cdef const floating *sig = <const floating *> M.sigma
    cdef uint64_t key = o.key
    cdef bint sampled = o.sampled_statistics, sample_vis = o.sample_visible
    cdef bint persistent = o.persistent
    cdef int k = o.cd_k
    # One thread team for all phases: the prange loops below share it and
    # meet at their implicit barriers instead of forking and joining. The
    # statements outside them run in every thread, so the phases' Draws are
    # passed by value, never assigned here.
    with parallel(num_threads=n_threads):
        if sig != NULL:
            for t in prange(n_threads, schedule='static', chunksize=1):
                scale_block(v0, M.n_vis, m, bound(M.n_vis, n_threads, t),
                            bound(M.n_vis, n_threads, t + 1), sig, True)
        # Positive phase: p0 = E[h | u0], sampled for CD. PCD's chain, not the
        # data, drives the negative phase, so its positive phase waits to
        # share the last step's product.
        if not persistent:
            for t in prange(n_threads, schedule='static', chunksize=1):
                up_by_unit(v0, m, m, M, h0, ldh, hidden_draw(key, 0, sampled, 1, ch, ldc),
                           t, n_threads)
        for s in range(1, k + 1):
            for t in prange(n_threads, schedule='static', chunksize=1):
                err += down(ch, ldc, True, m, M, v1, v0 if s == 1 else NULL,
                            visible_draw(key, 2 * s - 1, sample_vis), t, n_threads)
            if M.n_groups:
                for t in prange(n_threads, schedule='static', chunksize=1):
                    err_groups += softmax_groups_rows(
                        v1, M.n_vis, bound(m, n_threads, t), bound(m, n_threads, t + 1),
                        M.groups, M.n_groups, v0 if s == 1 else NULL,
                        visible_draw(key, 2 * s - 1, sample_vis))
            # The last step stores -pk for the stacked gradient GEMM, and
            # samples only to advance a persistent chain.
            if s == k and persistent:
                for t in prange(n_threads, schedule='static', chunksize=1):
                    up_by_unit(v0, 2 * m, m, M, h0, ldh,
                               hidden_draw(key, 2 * s, sampled, -1, ch, ldc), t, n_threads)
            else:
                for t in prange(n_threads, schedule='static', chunksize=1):
                    up_by_unit(v1, m, m, M, h0 + m, ldh,
                               hidden_draw(key, 2 * s, sampled, -1 if s == k else 1,
                                           ch if s < k else NULL, ldc), t, n_threads)
    return err + err_groups


def cd_step(state, scratch, Py_ssize_t m, StepOptions options, groups=None):
    """One CD-k (or PCD) update from the minibatch in ``scratch[0][:m]``.

    Call with BLAS limited to one thread: the kernel parallelises itself.

    Parameters
    ----------
    state : RBMState
        The model, updated in place: weights, biases, their increments
        (momentum), ``sigma`` (updated when learned), ``chains`` (the
        persistent chains, read and advanced with ``persistent``, otherwise
        scratch) and ``hidden_mean`` (the sparsity penalty's running mean).
        ``components_inc`` is left untouched when the update has no momentum,
        no weight decay and a fixed sigma (it then goes straight into W).
    scratch : tuple (vis, hid, grad)
        ``RBMState.buffers``: ``vis`` (>= 2m, n_visible) holds the minibatch
        (v-space) in rows ``:m`` on entry and the negative-phase visibles
        (u-space) in rows ``m:2m`` on return; ``hid`` (n_hidden, >= 2m) is
        the hidden layer stored by unit; ``grad`` (n_hidden, n_visible), or
        (0, 0), is the weight gradient's scratch, whose presence turns on
        sigma learning.
    m : int
        Minibatch size.
    options : dict
        The fields of ``StepOptions`` (``_model.pxd``): ``cd_k``,
        ``persistent``, ``sample_visible``, ``sampled_statistics`` (binary
        hidden samples instead of probabilities in the gradient: with sampled
        visibles every sum is then an exact integer, and a model split across
        processes updates to bit-identical weights), ``learning_rate``,
        ``momentum``, ``weight_decay``, ``sparsity_target``, ``sparsity_cost``,
        ``sigma_learning_rate``, ``sigma_min``, ``key``
        (``batch_key(seed, epoch, batch)``), ``n_threads`` (OpenMP threads)
        and ``hidden_unit`` (a code of ``UNIT_CODES``). Other keys are ignored.
    groups : array of shape (n_groups, 2), default=None
        [start, stop) columns of softmax groups among Bernoulli visibles.

    Returns
    -------
    sq_error : float
        Sum over the minibatch of the squared difference between the data and
        the first negative-phase visibles (the reconstruction for CD).
    """
    check_hidden_unit(options.hidden_unit)
    if options.cd_k < 1:
        raise ValueError(f"cd_k must be at least 1, got {options.cd_k}")
    if state.components.dtype == np.float32:
        return _cd_step[float](state.components, state, scratch, m, &options, groups)
    return _cd_step[double](state.components, state, scratch, m, &options, groups)


cdef double _cd_step(floating[:, ::1] W, state, scratch, Py_ssize_t m,
                     const StepOptions *o, groups) except? -1:
    cdef floating[::1] b_vis = state.intercept_visible
    cdef floating[::1] b_hid = state.intercept_hidden
    cdef floating[:, ::1] W_inc = state.components_inc
    cdef floating[::1] bv_inc = state.visible_inc
    cdef floating[::1] bh_inc = state.hidden_inc
    cdef floating[::1] sigma = state.sigma
    cdef floating[:, ::1] chain = state.chains.T
    cdef floating[:, ::1] vis = scratch[0]
    cdef floating[:, ::1] hid = scratch[1]
    cdef floating[:, ::1] grad = scratch[2]
    cdef floating[::1] hid_mean
    cdef const Py_ssize_t[:, ::1] gp
    cdef Py_ssize_t n_hid = W.shape[0], n_vis = W.shape[1]
    cdef Py_ssize_t i, j, lo, hi
    cdef int t, n_threads
    cdef bint gaussian = sigma.shape[0] > 0
    cdef bint learn_sigma = grad.shape[0] > 0
    cdef bint sparse = o.sparsity_cost > 0
    cdef floating *v0 = &vis[0, 0]
    cdef floating *h0 = &hid[0, 0]
    cdef floating *G = &grad[0, 0] if learn_sigma else NULL
    cdef Rule rule
    cdef Stats stats
    cdef Model M
    cdef double err = 0, g, d0, d1, mu
    cdef double *wg = NULL
    cdef double *s_data = NULL
    cdef Py_ssize_t ldh = hid.shape[1]

    if vis.shape[0] < 2 * m or hid.shape[1] < 2 * m or chain.shape[1] < m:
        raise ValueError("scratch buffers are smaller than the minibatch")
    if vis.shape[1] != n_vis or hid.shape[0] != n_hid or chain.shape[0] != n_hid:
        raise ValueError("vis, hid and chain do not match the shape of W")
    if learn_sigma and (not gaussian or grad.shape[0] != n_hid or grad.shape[1] != n_vis):
        raise ValueError("a learned sigma needs Gaussian visibles and grad shaped like W")
    if sparse:
        hid_mean = state.hidden_mean
        if hid_mean.shape[0] != n_hid:
            raise ValueError("hidden_mean must have one entry per hidden unit")
    M.W, M.b, M.c = &W[0, 0], &b_vis[0], &b_hid[0]
    M.sigma = &sigma[0] if gaussian else NULL
    M.n_hid, M.n_vis, M.hid0, M.vis0 = n_hid, n_vis, 0, 0
    M.hidden_unit = o.hidden_unit
    M.groups, M.n_groups = NULL, 0
    if groups is not None and len(groups):
        gp = groups
        check_groups(gp, n_vis, sigma.shape[0])
        M.groups, M.n_groups = &gp[0, 0], gp.shape[0]
    n_threads = effective_threads(o.n_threads, m, n_hid, n_vis)
    rule.alpha = o.learning_rate / m
    rule.momentum = o.momentum
    rule.decay = o.learning_rate * o.weight_decay
    rule.direct = <floating> rule.momentum == 0 and <floating> rule.decay == 0 \
        and not learn_sigma
    stats.hid, stats.ldh, stats.by_unit, stats.vis, stats.m2 = h0, ldh, True, v0, 2 * m
    dtype = np.asarray(W).dtype
    cdef floating[::1] ones = np.ones(2 * m, dtype=dtype)
    cdef floating[::1] gh = np.empty(n_hid, dtype=dtype)
    cdef double[::1] gh_sum = np.empty(n_hid)
    cdef double[::1] gv_sum = np.empty(n_vis)
    if learn_sigma:
        # s_data[i] = sum_rows (u0 - b/sigma)^2 - (uk - b/sigma)^2, and one
        # row of wg per thread for sum_j W_ji G_ji.
        s_data = <double *> calloc(n_vis, sizeof(double))
        wg = <double *> calloc(n_threads * n_vis, sizeof(double))
        if s_data == NULL or wg == NULL:
            free(s_data)
            free(wg)
            raise MemoryError()

    with nogil:
        err = gibbs_chain(&M, v0, h0, ldh, &chain[0, 0], chain.shape[1], m, o, n_threads)

        # Sparsity (Hinton's practical guide §11): q <- 0.9 q + 0.1 mean(p0);
        # the penalty (q - target) on each hidden unit's total input is folded
        # into p0, so it reaches the weights through the same GEMM.
        if sparse:
            gemv(n_hid, m, 1, h0, ldh, &ones[0], 0, &gh[0])
            for j in range(n_hid):
                hid_mean[j] = 0.9 * hid_mean[j] + 0.1 * gh[j] / m
                gh[j] = o.sparsity_cost * (hid_mean[j] - o.sparsity_target)
                for i in range(m):
                    h0[j * ldh + i] = h0[j * ldh + i] - gh[j]

        if learn_sigma:
            for i in range(m):
                for j in range(n_vis):
                    mu = b_vis[j] / sigma[j]
                    d0 = vis[i, j] - mu
                    d1 = vis[m + i, j] - mu
                    s_data[j] += d0 * d0 - d1 * d1
            if not o.sample_visible:
                # Mean-field uk: E[(uk - b/s)^2 | h] = (E[uk] - b/s)^2 + 1 in
                # u-space; without the +1 sigma would grow without bound.
                for j in range(n_vis):
                    s_data[j] -= m

        # Bias gradients sum(u0) - sum(uk) and sum(p0) - sum(pk) (the rows of
        # -pk are stored negated), then the weights: one GEMM over the
        # stacked minibatch. Each thread takes a block of visible columns
        # and a block of hidden units, i.e. of rows of W.
        for t in prange(n_threads, num_threads=n_threads, schedule='static',
                        chunksize=1):
            lo = bound(n_vis, n_threads, t)
            hi = bound(n_vis, n_threads, t + 1)
            if hi > lo:
                signed_column_sums(v0, n_vis, m, lo, hi, &gv_sum[0])
            lo = bound(n_hid, n_threads, t)
            hi = bound(n_hid, n_threads, t + 1)
            if hi > lo:
                row_sums(h0, ldh, 2 * m, lo, hi, &gh_sum[0])
            update_weight_rows(&W[0, 0], &W_inc[0, 0], G, &stats, lo, hi, n_vis, &rule,
                               wg + t * n_vis if learn_sigma else NULL)

        for j in range(n_hid):
            update_bias(&b_hid[j], &bh_inc[j], gh_sum[j], o.learning_rate / m, o.momentum)
        for i in range(n_vis):
            update_bias(&b_vis[i], &bv_inc[i],
                        gv_sum[i] / sigma[i] if gaussian else gv_sum[i],
                        o.learning_rate / m, o.momentum)

        # Learned sigma (report §1.4.3.2), in u-space:
        # dlogp/dsigma_i = [(u0-b/s)^2 - (uk-b/s)^2 - sum_j W_ji G_ji] / sigma_i
        # (the W G term is the data-minus-model u_i (hW)_i of the report).
        if learn_sigma:
            for i in range(n_vis):
                g = s_data[i]
                for t in range(n_threads):
                    g = g - wg[t * n_vis + i]
                g = g / (sigma[i] * m)
                sigma[i] = max(<floating> (sigma[i] + o.sigma_learning_rate * g),
                               <floating> o.sigma_min)
            free(s_data)
            free(wg)
    return err
