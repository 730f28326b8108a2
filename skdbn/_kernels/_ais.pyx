"""Annealed importance sampling (Salakhutdinov & Murray 2008): the chains of
every run advance together, one product ``v W^T`` and one ``h W`` per
temperature, in one thread team. Call with BLAS limited to one thread.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy

import numpy as np

from skdbn._kernels._blas cimport gemm, gemv
from skdbn._kernels._math cimport sigmoid, softplus, skdbn_softplusf
from skdbn._kernels._blocks cimport add_length_bias
from skdbn._kernels._model cimport VISIBLE_BERNOULLI, Model, model_of, visible_draw
from skdbn._kernels._parallel cimport bound, effective_threads
from skdbn._kernels._random cimport batch_key_nogil, normal, row_key
from skdbn._kernels._units cimport (BERNOULLI, NRELU, check_hidden_unit, draw_uniform,
                                    hidden_mean, hidden_sample, hidden_term, set_lengths,
                                    softmax_groups_rows)


ctypedef struct Anneal:
    # One temperature of the chains.
    double beta                # this inverse temperature
    double beta_prev           # the previous one
    uint64_t key               # the temperature's random numbers
    const void *b_base         # visible biases of the base-rate model
    const void *b_diff         # b - b_base


ctypedef struct AISOptions:
    # Built by Cython from a dict of these names.
    uint64_t seed
    int n_threads
    int hidden_unit


cdef inline Anneal anneal(double beta, double beta_prev, uint64_t key,
                          const void *b_base, const void *b_diff) noexcept nogil:
    cdef Anneal a
    a.beta, a.beta_prev, a.key, a.b_base, a.b_diff = beta, beta_prev, key, b_base, b_diff
    return a


cdef inline floating softplus_fast(floating x) noexcept nogil:
    if floating is float:
        return skdbn_softplusf(x)
    else:
        return softplus(x)


cdef void ais_hidden_block(floating *act, Py_ssize_t ld, Py_ssize_t rows,
                           Py_ssize_t j0, Py_ssize_t j1, const Model *M, Anneal a,
                           floating *samples, const floating *ones,
                           floating *log_w_part) noexcept nogil:
    """log_w_part[i] = sum_j term(beta a_ij) - term(beta_prev a_ij),
    a = act + c; samples <- p(h | beta a) unless NULL.

    The free-energy term and sampler are the unit type's (``_units.pxd``);
    a unit's own energy (h^2 / 2 for Gaussian units) is not annealed, so
    every intermediate model is proper. Bernoulli, the fast path, uses the
    vectorised float softplus. The element-wise loop has no reduction, so it
    vectorises; the row sums are then one GEMV over the block (``act`` is
    overwritten).
    """
    cdef Py_ssize_t i, j
    cdef uint64_t rk
    cdef floating x, p
    cdef floating *row
    cdef floating *srow
    cdef const floating *c = <const floating *> M.c
    cdef floating beta = <floating> a.beta, beta_prev = <floating> a.beta_prev
    cdef int unit = M.hidden_unit
    if M.lengths != NULL:  # Replicated Softmax: the biases of a run of length D are D c
        add_length_bias(act, ld, False, rows, j0, j1, M)
    if unit != BERNOULLI:
        for i in range(rows):
            row = act + i * ld
            rk = row_key(a.key, 0, i)
            for j in range(j0, j1):
                x = row[j] + c[j]
                if samples != NULL:
                    p = hidden_mean(unit, beta * x)
                    samples[i * ld + j] = hidden_sample(unit, beta * x, p, <uint32_t> rk,
                                                        <uint32_t> (rk >> 32), <uint32_t> j)
                row[j] = <floating> (hidden_term(unit, beta * x)
                                     - hidden_term(unit, beta_prev * x))
        gemv(rows, j1 - j0, 1, act + j0, ld, ones, 0, log_w_part)
        return
    for i in range(rows):
        row = act + i * ld
        if samples != NULL:
            srow = samples + i * ld
            rk = row_key(a.key, 0, i)
            for j in range(j0, j1):
                x = row[j] + c[j]
                p = sigmoid(beta * x)
                srow[j] = draw_uniform(p, rk, j) < p
                row[j] = softplus_fast(beta * x) - softplus_fast(beta_prev * x)
        else:
            for j in range(j0, j1):
                x = row[j] + c[j]
                row[j] = softplus_fast(beta * x) - softplus_fast(beta_prev * x)
    gemv(rows, j1 - j0, 1, act + j0, ld, ones, 0, log_w_part)


cdef void ais_visible_block(floating *act, Py_ssize_t ld, Py_ssize_t rows,
                            Py_ssize_t j0, Py_ssize_t j1, const Model *M, Anneal a,
                            floating *dot_part) noexcept nogil:
    """act (= beta h W) <- visible samples at inverse temperature beta.

    Bernoulli: sigmoid(act + (1 - beta) b_base + beta b), and
    dot_part[i] = v_i . (b - b_base) over the block, for the next weight.
    Gaussian (u-space, base model sharing b and sigma): act + b / sigma + noise.
    Replicated Softmax: act + (1 - beta) b_base + beta b only, the input of
    the softmax over the whole row that :func:`ais_counts` samples after a
    barrier.
    """
    cdef Py_ssize_t i, j
    cdef uint64_t rk
    cdef floating x
    cdef floating *row
    cdef const floating *b = <const floating *> M.b
    cdef const floating *sigma = <const floating *> M.sigma
    cdef const floating *b_base = <const floating *> a.b_base
    cdef floating beta = <floating> a.beta
    for i in range(rows):
        row = act + i * ld
        rk = row_key(a.key, 1, i)
        if M.lengths != NULL:
            for j in range(j0, j1):
                row[j] = row[j] + (1 - beta) * b_base[j] + beta * b[j]
        elif M.visible_unit == VISIBLE_BERNOULLI:
            for j in range(j0, j1):
                x = sigmoid(row[j] + (1 - beta) * b_base[j] + beta * b[j])
                row[j] = draw_uniform(x, rk, j) < x
        else:
            for j in range(j0, j1):
                row[j] = row[j] + b[j] / sigma[j] + <floating> normal(rk, <unsigned int> j)
    if M.visible_unit == VISIBLE_BERNOULLI:
        gemv(rows, j1 - j0, 1, act + j0, ld, <const floating *> a.b_diff + j0, 0, dot_part)


cdef void ais_counts(floating *v, Py_ssize_t r0, Py_ssize_t r1, const Model *M, Anneal a,
                     floating *dots, Py_ssize_t ldd, int n_parts) noexcept nogil:
    """Replicated Softmax runs [r0, r1): v's rows hold the softmax inputs
    (:func:`ais_visible_block`) on entry, the counts of each run's D draws on
    return; dots[0, r] <- v_r . (b - b_base), the other parts' 0."""
    cdef Py_ssize_t r, t
    cdef Py_ssize_t n = M.n_vis
    softmax_groups_rows(v, n, r0, r1, M, NULL, visible_draw(a.key, 1, True))
    for r in range(r0, r1):
        for t in range(1, n_parts):
            dots[t * ldd + r] = 0
    if r1 > r0:
        gemv(r1 - r0, n, 1, v + r0 * n, n, <const floating *> a.b_diff, 0, dots + r0)


def ais_run(const floating[:, ::1] W, const floating[::1] b, const floating[::1] c,
            const floating[::1] sigma, const floating[::1] b_base,
            const double[::1] betas, double[::1] log_w, AISOptions options,
            const floating[:, ::1] v_init=None, lengths=None):
    """Run AIS chains from the base model to the RBM; returns log weights.

    Each temperature costs one product ``v W^T`` (serving both the importance
    weight and the hidden sample) and one product ``h W`` (the visible
    sample). Gaussian chains run in u = v / sigma, with a base model that
    shares the RBM's visible biases and sigma.

    Parameters
    ----------
    W, b, c : arrays
        The RBM (components_, visible and hidden biases).
    sigma : array of shape (n_visible,) or (0,)
        Visible standard deviations (Gaussian) or empty (Bernoulli).
    b_base : array of shape (n_visible,)
        Visible biases of the base-rate model (Bernoulli; ignored otherwise).
    betas : array of shape (K + 1,)
        Inverse temperatures, increasing from 0 to 1.
    log_w : array of shape (n_runs,), output
        Log importance weights, ``log Z / Z_base`` estimates.
    options : dict
        ``seed`` (of the counter-based generator), ``n_threads`` and
        ``hidden_unit`` (a code of ``UNIT_CODES``; not NReLU, whose free
        energy is an approximation).
    v_init : array of shape (n_runs, n_visible), default=None
        Start of the chains (Bernoulli) instead of a sample of the base
        model: reverse AIS runs from data with ``betas`` decreasing.
    lengths : array of shape (n_runs,), default=None
        A Replicated Softmax: each run's document length D (its partition
        function is Z_D); the base model's documents are D draws from
        softmax(b_base).
    """
    cdef Py_ssize_t n_runs = log_w.shape[0], n_hid = W.shape[0], n_vis = W.shape[1]
    cdef Py_ssize_t K = betas.shape[0] - 1, k, r, lo, hi
    cdef int t, nt
    cdef uint64_t seed = options.seed
    cdef const floating *sig = NULL if sigma.shape[0] == 0 else &sigma[0]
    cdef Model M
    check_hidden_unit(options.hidden_unit)
    if options.hidden_unit == NRELU:
        raise ValueError("AIS needs a unit type with an exact free energy, not NReLU")
    if K < 1 or n_runs == 0:
        raise ValueError("AIS needs at least two temperatures and one run")
    if b.shape[0] != n_vis or c.shape[0] != n_hid or b_base.shape[0] != n_vis \
            or (sig != NULL and sigma.shape[0] != n_vis):
        raise ValueError("ais_run: W, b, c, sigma and b_base do not match")
    if v_init is not None and (v_init.shape[0] != n_runs or v_init.shape[1] != n_vis
                               or sigma.shape[0] != 0):
        raise ValueError("v_init must be (n_runs, n_visible), for Bernoulli visibles")
    M = model_of(W, &b[0], &c[0], sig, options.hidden_unit)
    cdef const Py_ssize_t[:, ::1] whole = np.array([[0, n_vis]], dtype=np.intp)
    cdef const floating[::1] D
    if lengths is not None:
        D = lengths
        set_lengths(&M, D, n_runs, whole)
    dtype = np.asarray(W).dtype
    nt = effective_threads(options.n_threads, n_runs, n_hid, n_vis)
    cdef floating[:, ::1] v = np.zeros((n_runs, n_vis), dtype=dtype)
    cdef floating[:, ::1] act = np.empty((n_runs, n_hid), dtype=dtype)
    cdef floating[:, ::1] h = np.empty((n_runs, n_hid), dtype=dtype)
    cdef floating[:, ::1] part = np.zeros((nt, n_runs), dtype=dtype)
    cdef floating[:, ::1] dots = np.zeros((nt, n_runs), dtype=dtype)
    cdef floating[::1] ones = np.ones(n_hid, dtype=dtype)
    cdef floating[::1] b_diff = np.subtract(b, b_base, dtype=dtype)
    cdef floating *v0 = &v[0, 0]
    cdef floating *a0 = &act[0, 0]
    cdef floating *h0 = &h[0, 0]
    cdef const void *bb = &b_base[0]
    cdef const void *bd = &b_diff[0]

    with nogil:
        for r in range(n_runs):
            log_w[r] = 0
        if v_init is None:
            # v_1 ~ base model: the visible block on a zero input at beta = 0.
            for t in prange(nt, num_threads=nt, schedule='static', chunksize=1):
                ais_visible_block(v0, n_vis, n_runs, bound(n_vis, nt, t),
                                  bound(n_vis, nt, t + 1), &M,
                                  anneal(0, 0, batch_key_nogil(seed, 0), bb, bd),
                                  &dots[t, 0])
            if M.lengths != NULL:
                for t in prange(nt, num_threads=nt, schedule='static', chunksize=1):
                    ais_counts(v0, bound(n_runs, nt, t), bound(n_runs, nt, t + 1), &M,
                               anneal(0, 0, batch_key_nogil(seed, 0), bb, bd), &dots[0, 0],
                               n_runs, nt)
        else:
            memcpy(v0, &v_init[0, 0], n_runs * n_vis * sizeof(floating))
            gemv(n_runs, n_vis, 1, v0, n_vis, &b_diff[0], 0, &dots[0, 0])
        with parallel(num_threads=nt):
            for k in range(1, K + 1):
                # log w += log p*_k(v) - log p*_{k-1}(v); then h ~ p_k(h | v).
                for t in prange(nt, schedule='static', chunksize=1):
                    lo = bound(n_hid, nt, t)
                    hi = bound(n_hid, nt, t + 1)
                    if hi > lo:
                        gemm(False, True, n_runs, hi - lo, n_vis, 1, v0, n_vis,
                             &W[lo, 0], n_vis, 0, a0 + lo, n_hid)
                        ais_hidden_block(a0, n_hid, n_runs, lo, hi, &M,
                                         anneal(betas[k], betas[k - 1],
                                                batch_key_nogil(seed, k), bb, bd),
                                         h0 if k < K else NULL, &ones[0], &part[t, 0])
                for r in prange(n_runs, schedule='static'):
                    for t in range(nt):
                        log_w[r] += part[t, r] + (<floating> betas[k]
                                                  - <floating> betas[k - 1]) * dots[t, r]
                if k < K:
                    # v ~ p_k(v | h): the product is scaled by beta.
                    for t in prange(nt, schedule='static', chunksize=1):
                        lo = bound(n_vis, nt, t)
                        hi = bound(n_vis, nt, t + 1)
                        if hi > lo:
                            gemm(False, False, n_runs, hi - lo, n_hid, <floating> betas[k],
                                 h0, n_hid, &W[0, lo], n_vis, 0, v0 + lo, n_vis)
                            ais_visible_block(v0, n_vis, n_runs, lo, hi, &M,
                                              anneal(betas[k], betas[k - 1],
                                                     batch_key_nogil(seed, k), bb, bd),
                                              &dots[t, 0])
                    if M.lengths != NULL:
                        for t in prange(nt, schedule='static', chunksize=1):
                            ais_counts(v0, bound(n_runs, nt, t), bound(n_runs, nt, t + 1),
                                       &M, anneal(betas[k], betas[k - 1],
                                                  batch_key_nogil(seed, k), bb, bd),
                                       &dots[0, 0], n_runs, nt)
    return np.asarray(log_w)
