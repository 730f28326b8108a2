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
* Sparse minibatches (``data``: Columns, ``_csr.pxd``) replace the data-side
  products by sparse ones; sampled binary (or count) negative visibles
  become Columns too when at most 1 / NEG_SPARSE_RATIO of them are on, and
  stay dense otherwise. The down pass is dense either way.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdint cimport uint64_t
from libc.stdlib cimport calloc, free

import numpy as np

from skdbn._kernels._blas cimport gemv
from skdbn._kernels._blocks cimport scale_block
from skdbn._kernels._chain cimport DOWN, UP_DATA, Phase, chain_phase, n_phases
from skdbn._kernels._csr cimport (ColumnsScratch, add_column_sums, columns_of,
                                  count_block, counted_columns, fill_block,
                                  merge_columns, sq_error_block, up_columns_by_unit)
from skdbn._kernels._model cimport (VISIBLE_BERNOULLI, VISIBLE_GAUSSIAN,
                                    VISIBLE_REPLICATED_SOFTMAX, Columns, Draw, Model,
                                    Rule, Stats, StepOptions, hidden_draw, model_of,
                                    visible_draw)
from skdbn._kernels._parallel cimport bound, effective_threads
from skdbn._kernels._phases cimport (down, length_weighted_sums, row_sums, sigma_statistics,
                                     signed_column_sums, sparsity_step, up_by_unit,
                                     update_bias, update_sigma, update_weight_rows)
from skdbn._kernels._units cimport (check_groups, check_hidden_unit, set_lengths,
                                    softmax_groups_rows,
                                    visible_bias_gradient)


# Sampled negative visibles are kept as Columns when at most 1 in this many
# is on; denser ones cost less through the GEMM (bench_sparse.py).
cdef enum:
    NEG_SPARSE_RATIO = 10


ctypedef struct Chain:
    # The buffers of one step (see cd_step) but the stacked visibles: the
    # hidden statistics by unit (n_hid, >= 2m), the hidden samples
    # (n_hid, >= m), and for a sparse minibatch its Columns and the scratch of
    # the negative visibles' Columns (neg NULL: they stay dense).
    void *hid
    Py_ssize_t ldh
    void *samples
    Py_ssize_t lds
    Py_ssize_t m
    const Columns *data        # NULL: the minibatch is dense, in vis[:m]
    ColumnsScratch *neg


cdef inline Columns no_columns() noexcept nogil:
    cdef Columns X
    X.n_rows, X.n_cols, X.col, X.start, X.row, X.val = 0, 0, NULL, NULL, NULL, NULL
    return X


cdef inline Draw phase_draw(uint64_t key, const Phase *ph, bint sampled, floating *chain,
                            Py_ssize_t ldc) noexcept nogil:
    """The Draw of a hidden phase of the chain: its stream and sign, and
    the chain's samples if it advances the chain."""
    return hidden_draw(key, ph.stream, sampled, ph.sign, chain if ph.advance else NULL, ldc)


cdef double gibbs_chain(floating *v0, const Model *M, const Chain *c,
                        const StepOptions *o, int n_threads) noexcept nogil:
    """The phases of the CD-k / PCD chain (``_chain.pxd``) for m rows.

    ``v0``: the stacked visibles (2m, n_vis), the data on top (unless c.data). ``c.hid``:
    stored by unit; on return columns :m hold p0 and m:2m -pk. ``c.samples``:
    the hidden samples. Returns the squared error of the first
    reconstruction.
    """
    cdef int p, t
    cdef Phase ph
    # Three reductions, as OpenMP allows one per variable in a parallel region.
    cdef double err = 0, err_groups = 0, err_sparse = 0
    cdef Py_ssize_t m = c.m, ldh = c.ldh, ldc = c.lds, V = M.n_vis
    cdef floating *v1 = v0 + m * V
    cdef floating *h0 = <floating *> c.hid
    cdef floating *ch = <floating *> c.samples
    cdef const floating *sig = <const floating *> M.sigma
    cdef const Columns *X0 = c.data
    cdef uint64_t key = o.key
    cdef bint sampled = o.sampled_statistics, sample_vis = o.sample_visible
    # Dense PCD: the last UP_CHAIN computes UP_DATA too, in one product
    # that packs W once (up_by_unit with 2m rows).
    cdef bint joint_pcd = o.persistent and X0 == NULL
    # One thread team for all phases: the prange loops below share it and
    # meet at their implicit barriers instead of forking and joining. The
    # statements outside them run in every thread (each on its own copy of
    # ph), so the phases' Draws are passed by value.
    with parallel(num_threads=n_threads):
        if M.visible_unit == VISIBLE_GAUSSIAN and X0 == NULL:
            for t in prange(n_threads, schedule='static', chunksize=1):
                scale_block(v0, V, m, bound(V, n_threads, t),
                            bound(V, n_threads, t + 1), sig, True)
        for p in range(n_phases(o)):
            ph = chain_phase(o, p)
            if ph.kind == UP_DATA:
                if not joint_pcd:
                    for t in prange(n_threads, schedule='static', chunksize=1):
                        if X0 != NULL:
                            up_columns_by_unit(X0, M, h0, ldh,
                                               phase_draw(key, &ph, sampled, ch, ldc),
                                               t, n_threads)
                        else:
                            up_by_unit(v0, m, m, M, h0, ldh,
                                       phase_draw(key, &ph, sampled, ch, ldc), t, n_threads)
            elif ph.kind == DOWN:
                for t in prange(n_threads, schedule='static', chunksize=1):
                    err += down(ch, ldc, True, m, M, v1, v0 if ph.measure and X0 == NULL else NULL,
                                visible_draw(key, ph.stream, sample_vis), t, n_threads)
                if M.n_groups:
                    for t in prange(n_threads, schedule='static', chunksize=1):
                        err_groups += softmax_groups_rows(
                            v1, V, bound(m, n_threads, t), bound(m, n_threads, t + 1),
                            M, v0 if ph.measure and X0 == NULL else NULL,
                            visible_draw(key, ph.stream, sample_vis))
                if ph.measure and X0 != NULL:
                    for t in prange(n_threads, schedule='static', chunksize=1):
                        err_sparse += sq_error_block(X0, v1, V, M, bound(V, n_threads, t),
                                                     bound(V, n_threads, t + 1))
                # What a thread reads of the others' work is decided inside a
                # prange: each one starts with a barrier (GCC's OpenMP, as its
                # firstprivate needs), and Cython ends them without one.
                if c.neg != NULL:
                    for t in prange(n_threads, schedule='static', chunksize=1):
                        count_block(v1, V, m, bound(V, n_threads, t),
                                    bound(V, n_threads, t + 1), c.neg, t)
                    for t in prange(n_threads, schedule='static', chunksize=1):
                        if counted_columns(c.neg, m, n_threads).n_rows:
                            fill_block(v1, V, m, bound(V, n_threads, t),
                                       bound(V, n_threads, t + 1), c.neg, t, n_threads)
            elif joint_pcd and ph.step == o.cd_k:
                for t in prange(n_threads, schedule='static', chunksize=1):
                    up_by_unit(v0, 2 * m, m, M, h0, ldh, phase_draw(key, &ph, sampled, ch, ldc),
                               t, n_threads)
            else:
                for t in prange(n_threads, schedule='static', chunksize=1):
                    negative_up(M, c.neg, v1, m, h0 + m, ldh,
                                phase_draw(key, &ph, sampled, ch, ldc), t, n_threads)
    return err + err_groups + err_sparse


cdef inline void negative_up(const Model *M, const ColumnsScratch *neg,
                             const floating *v1, Py_ssize_t m, floating *out, Py_ssize_t ldh,
                             Draw d, int part, int n_parts) noexcept nogil:
    """Block ``part`` of the hidden pass of the negative visibles: from the
    Columns built in ``neg`` if they were sparse enough, else from the dense
    rows v1."""
    cdef Columns X = no_columns()
    if neg != NULL:
        X = counted_columns(neg, m, n_parts)
    if X.n_rows:
        up_columns_by_unit(&X, M, out, ldh, d, part, n_parts)
    else:
        up_by_unit(v1, m, m, M, out, ldh, d, part, n_parts)


def cd_step(state, scratch, Py_ssize_t m, StepOptions options, groups=None, data=None,
            lengths=None):
    """One CD-k (or PCD) update from a minibatch of m rows.

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
        (v-space) in rows ``:m`` on entry, unless ``data`` is given, and the
        negative-phase visibles (u-space) in rows ``m:2m`` on return; ``hid``
        (n_hidden, >= 2m) is the hidden layer stored by unit; ``grad``
        (n_hidden, n_visible), or (0, 0), is the weight gradient's scratch,
        whose presence turns on sigma learning (dense minibatches only).
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
    data : tuple (col, start, row, val), default=None
        A sparse minibatch of m rows, its nonzeros by column
        (``skdbn._csr.columns``), values in u-space; None: dense, in ``vis``.
    lengths : array of shape (m,), default=None
        Word counts (Replicated Softmax): each row's length D, the sum of its
        counts, in the model's dtype. The visible layer is then one softmax
        over all units, sampled as D draws, and the hidden biases enter a row
        as D c. Not with ``groups`` or sigma.

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
        return _cd_step[float](state.components, state, scratch, m, &options, groups, data,
                               lengths)
    return _cd_step[double](state.components, state, scratch, m, &options, groups, data,
                            lengths)


cdef double _cd_step(floating[:, ::1] W, state, scratch, Py_ssize_t m,
                     const StepOptions *o, groups, data, lengths) except? -1:
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
    cdef const floating[::1] D
    cdef const Py_ssize_t[:, ::1] gp
    cdef Py_ssize_t n_hid = W.shape[0], n_vis = W.shape[1]
    cdef Py_ssize_t i, j, lo, hi
    cdef int t, n_threads
    cdef bint learn_sigma = grad.shape[0] > 0
    cdef bint sparse = o.sparsity_cost > 0
    cdef floating *v0 = &vis[0, 0]
    cdef floating *h0 = &hid[0, 0]
    cdef floating *G = &grad[0, 0] if learn_sigma else NULL
    cdef Rule rule
    cdef Stats stats
    cdef Model M
    cdef Chain c
    cdef Columns X0, neg, both
    cdef Py_ssize_t[::1] mcol, mstart, mrow
    cdef floating[::1] mval, nval
    cdef ColumnsScratch ns
    cdef double err = 0
    cdef double *wg = NULL
    cdef double *s_data = NULL
    cdef Py_ssize_t ldh = hid.shape[1]
    cdef Py_ssize_t[::1] cnt, col, start, row, totals

    if vis.shape[0] < 2 * m or hid.shape[1] < 2 * m or chain.shape[1] < m:
        raise ValueError("scratch buffers are smaller than the minibatch")
    if vis.shape[1] != n_vis or hid.shape[0] != n_hid or chain.shape[0] != n_hid:
        raise ValueError("vis, hid and chain do not match the shape of W")
    if sigma.shape[0] and sigma.shape[0] != n_vis:
        raise ValueError("sigma must be empty or have one entry per visible unit")
    M = model_of(W, &b_vis[0], &b_hid[0], &sigma[0] if sigma.shape[0] else NULL,
                 o.hidden_unit)
    if learn_sigma and (M.visible_unit != VISIBLE_GAUSSIAN or grad.shape[0] != n_hid
                        or grad.shape[1] != n_vis):
        raise ValueError("a learned sigma needs Gaussian visibles and grad shaped like W")
    if learn_sigma and data is not None:
        raise ValueError("a learned sigma needs a dense minibatch")
    if sparse:
        hid_mean = state.hidden_mean
        if hid_mean.shape[0] != n_hid:
            raise ValueError("hidden_mean must have one entry per hidden unit")
    if groups is not None and len(groups):
        gp = groups
        check_groups(gp, n_vis, M.visible_unit)
        M.groups, M.n_groups = &gp[0, 0], gp.shape[0]
    # The gradient is averaged over the minibatch's examples, or for word
    # counts over its words: a document's gradient grows with its length, and
    # a per-word rate suits short and long documents alike.
    cdef double n_weight = m
    if lengths is not None:
        gp = np.array([[0, n_vis]], dtype=np.intp)
        D = lengths
        set_lengths(&M, D, m, gp)
        n_weight = max(1.0, float(np.sum(lengths[:m], dtype=np.float64)))
    n_threads = effective_threads(o.n_threads, m, n_hid, n_vis)
    rule.alpha = o.learning_rate / n_weight
    rule.momentum = o.momentum
    rule.decay = o.learning_rate * o.weight_decay
    rule.direct = <floating> rule.momentum == 0 and <floating> rule.decay == 0 \
        and not learn_sigma
    c.hid, c.ldh, c.samples, c.lds, c.m = h0, ldh, &chain[0, 0], chain.shape[1], m
    c.data, c.neg = NULL, NULL
    stats.hid, stats.ldh, stats.by_unit, stats.vis, stats.m2 = h0, ldh, True, v0, 2 * m
    stats.pos, stats.neg, stats.both = NULL, NULL, NULL
    if data is not None:
        X0 = columns_of(data, m, n_vis, v0)
        c.data = stats.pos = &X0
        if o.sample_visible and M.visible_unit != VISIBLE_GAUSSIAN:
            # Sampled binary (or count) negative visibles: Columns when
            # sparse enough; counts keep their values.
            cnt = np.empty(n_vis, np.intp)
            col = np.empty(n_vis, np.intp)
            start = np.empty(n_vis + 1, np.intp)
            row = np.empty(max(1, m * n_vis // NEG_SPARSE_RATIO), np.intp)
            totals = np.zeros(2 * n_threads, np.intp)
            ns.cnt, ns.col, ns.start, ns.row = &cnt[0], &col[0], &start[0], &row[0]
            ns.capacity, ns.totals, ns.val = row.shape[0], &totals[0], NULL
            if M.visible_unit == VISIBLE_REPLICATED_SOFTMAX:
                nval = np.empty(row.shape[0], dtype=np.asarray(W).dtype)
                ns.val = &nval[0]
            c.neg = &ns
            # Room for the two halves merged (merge_columns).
            mcol = np.empty(n_vis, np.intp)
            mstart = np.empty(n_vis + 1, np.intp)
            mrow = np.empty(X0.start[X0.n_cols] + row.shape[0], np.intp)
            mval = np.empty(mrow.shape[0], dtype=np.asarray(W).dtype)
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
        err = gibbs_chain(v0, &M, &c, o, n_threads)
        if c.neg != NULL:
            neg = counted_columns(c.neg, m, n_threads)
            if neg.n_rows:
                merge_columns(&X0, &neg, <const floating *> X0.val, &mcol[0], &mstart[0],
                              &mrow[0], &mval[0], &both)
                stats.neg, stats.both = &neg, &both

        # Sparsity (Hinton's practical guide §11): q <- 0.9 q + 0.1 mean(p0);
        # the penalty (q - target) on each hidden unit's total input is folded
        # into p0, so it reaches the weights through the same GEMM.
        if sparse:
            gemv(n_hid, m, 1, h0, ldh, &ones[0], 0, &gh[0])
            sparsity_step(&hid_mean[0], &gh[0], n_hid, m, o.sparsity_target, o.sparsity_cost)
            for j in range(n_hid):
                for i in range(m):
                    h0[j * ldh + i] = h0[j * ldh + i] - gh[j]

        if learn_sigma:
            sigma_statistics(v0, n_vis, m, &b_vis[0], &sigma[0], o.sample_visible, s_data)

        # Bias gradients sum(u0) - sum(uk) and sum(p0) - sum(pk) (the rows of
        # -pk are stored negated), then the weights: one GEMM over the
        # stacked minibatch. Each thread takes a block of visible columns
        # and a block of hidden units, i.e. of rows of W.
        for t in prange(n_threads, num_threads=n_threads, schedule='static',
                        chunksize=1):
            lo = bound(n_vis, n_threads, t)
            hi = bound(n_vis, n_threads, t + 1)
            if hi > lo:
                visible_sums(v0, &stats, n_vis, lo, hi, &gv_sum[0])
            lo = bound(n_hid, n_threads, t)
            hi = bound(n_hid, n_threads, t + 1)
            if hi > lo and M.lengths != NULL:
                length_weighted_sums(h0, ldh, m, <const floating *> M.lengths, lo, hi,
                                     &gh_sum[0])
            elif hi > lo:
                row_sums(h0, ldh, 2 * m, lo, hi, &gh_sum[0])
            update_weight_rows(&W[0, 0], &W_inc[0, 0], G, &stats, lo, hi, n_vis, &rule,
                               wg + t * n_vis if learn_sigma else NULL)

        for j in range(n_hid):
            update_bias(&b_hid[j], &bh_inc[j], gh_sum[j], rule.alpha, o.momentum)
        for i in range(n_vis):
            update_bias(&b_vis[i], &bv_inc[i],
                        visible_bias_gradient(M.visible_unit, gv_sum[i], <floating *> M.sigma, i),
                        rule.alpha, o.momentum)

        # Learned sigma (_phases.pxd), after the bias update that used the
        # old one.
        if learn_sigma:
            update_sigma(&sigma[0], s_data, wg, n_threads, n_vis, m, o.sigma_learning_rate,
                         o.sigma_min)
            free(s_data)
            free(wg)
    return err


cdef inline void visible_sums(const floating *v, const Stats *s, Py_ssize_t n_vis,
                              Py_ssize_t lo, Py_ssize_t hi,
                              double *out) noexcept nogil:
    """out[k] = sum(u0[:, k]) - sum(uk[:, k]) for columns [lo, hi), in double,
    from the dense stacked rows v or Columns (s.pos, s.neg)."""
    cdef Py_ssize_t i, k, m = s.m2 // 2
    cdef const floating *row
    if s.pos == NULL and s.neg == NULL:
        signed_column_sums(v, n_vis, m, lo, hi, out)
        return
    for k in range(lo, hi):
        out[k] = 0
    if s.pos != NULL:
        add_column_sums(s.pos, <const floating *> s.pos.val, 1, lo, hi, out)
    if s.neg != NULL:
        add_column_sums(s.neg, <const floating *> s.neg.val, -1, lo, hi, out)
    else:
        for i in range(m, 2 * m):
            row = v + i * n_vis
            for k in range(lo, hi):
                out[k] -= row[k]
