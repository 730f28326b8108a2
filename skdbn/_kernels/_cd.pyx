"""Contrastive-divergence kernels: one minibatch of RBM math per call.

Conventions
-----------
* ``W`` is ``components_``, row-major of shape (n_hidden, n_visible).
* Gaussian visibles are handled in the scaled space ``u = v / sigma``: the
  hidden input is ``u @ W.T + c`` and the visible mean is ``b / sigma + h @ W``
  (report §1.4.3), so both unit types share the same products. A zero-length
  ``sigma`` means Bernoulli visibles.
* The minibatch lives in the top half of a stacked buffer ``vis`` (2m, V) and
  its reconstruction in the bottom half. In cd_step the hidden layer is
  stored by unit: ``hid`` (H, 2m) holds p0 in columns :m and -pk in m:2m
  (the negative phase negated), and the chain of hidden samples is (H, m).
  The weight gradient ``p0.T @ u0 - pk.T @ uk`` is then one GEMM with inner
  dimension 2m, ``hid @ vis``, and the bias gradients are two GEMVs. Stored
  by unit, every hidden product has W's rows as its first operand, which
  OpenBLAS runs faster at CD's shapes (measured 80 against 74 GFLOP/s per
  core at 100 x 784 x 250), and the gradient needs no transpose.
* Threads: the caller limits BLAS to one thread and the kernels split every
  product into one block of output columns per OpenMP thread, running the
  element-wise work on each block while it is still in cache; the weight
  update is split over rows of ``W``.
* Random numbers come from ``_random.pxd``, keyed by (key, stream, row,
  column): samples do not depend on ``n_threads``.

Layout: one concept per file, included here so that both builds of the
kernels (``_cd_baseline``, ``_cd_avx2``) compile them: ``_units.pxi`` (the
element-wise math of each unit type), ``_blocks.pxi`` (its loops over a
thread's block of a layer), ``_conditionals.pxi`` (one layer given
the other), ``_updates.pxi`` (weight and bias updates), this file (the CD-k
step), ``_ais.pxi``, ``_backprop.pxi`` (the delta rule of up-down) and
``_slices.pxi`` (pieces of the step for a model split across processes).
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdint cimport uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy
from libc.math cimport exp, floor, sqrt, sqrtf

import numpy as np

from ._blas cimport gemm, gemv
from ._math cimport sigmoid, softplus, skdbn_normalf, skdbn_softplusf
from ._parallel cimport bound, effective_threads
from ._random cimport (mix64, row_key, uniform_f, uniform_d, normal, normal_halves,
                      hash32_halves, unit_f, unit_d, batch_key_nogil)


include "_units.pxi"
include "_blocks.pxi"
include "_conditionals.pxi"
include "_updates.pxi"


# --------------------------------------------------------------------------
# One CD-k / PCD step.
# --------------------------------------------------------------------------

cdef double gibbs_chain(const floating *W, Py_ssize_t n_hid, Py_ssize_t n_vis,
                        const floating *b, const floating *c, const floating *sig,
                        floating *v0, floating *h0, Py_ssize_t ldh, floating *ch,
                        Py_ssize_t ldc, Py_ssize_t m, int cd_k, bint persistent,
                        bint sample_visible, bint sampled, uint64_t key,
                        int n_threads, int unit, const Py_ssize_t *groups,
                        Py_ssize_t n_groups) noexcept nogil:
    """Positive phase and k Gibbs steps of the negative phase for m rows.

    ``v0``: (2m, n_vis), the data on top. ``h0``: (n_hid, >= 2m) with stride
    ``ldh``, stored by unit; on return columns :m hold p0 and m:2m -pk.
    ``ch``: the hidden samples, (n_hid, >= m) with stride ``ldc``.
    Streams: hidden samples of step t use stream 2t, visible samples of step
    t stream 2t - 1. ``sampled``: the hidden statistics are samples instead
    of means. ``unit``: the hidden unit type. Returns the squared error of the first
    reconstruction.
    """
    cdef int s, t
    # Two reductions, as OpenMP allows one per variable in a parallel region.
    cdef double err = 0, err_groups = 0
    cdef floating *v1 = v0 + m * n_vis
    # One thread team for all phases: the prange loops below share it and
    # meet at their implicit barriers instead of forking and joining.
    with parallel(num_threads=n_threads):
        if sig != NULL:
            for t in prange(n_threads, schedule='static', chunksize=1):
                scale_block(v0, n_vis, m, bound(n_vis, n_threads, t),
                            bound(n_vis, n_threads, t + 1), sig, True)
        # Positive phase: p0 = E[h | u0], sampled for CD. PCD's
        # chain, not the data, drives the negative phase, so its positive
        # phase waits to share the last step's product.
        if not persistent:
            for t in prange(n_threads, schedule='static', chunksize=1):
                hidden_by_unit_part(v0, m, W, c, h0, ldh, 1, ch, ldc, sampled, m,
                                    n_hid, n_vis, key, 0, t, n_threads, unit)
        for s in range(1, cd_k + 1):
            for t in prange(n_threads, schedule='static', chunksize=1):
                err += visible_part(ch, ldc, True, W, b, sig, v1, sample_visible,
                                    v0 if s == 1 else NULL, m, n_hid, n_vis, key,
                                    2 * s - 1, 0, t, n_threads, groups, n_groups)
            if n_groups:
                for t in prange(n_threads, schedule='static', chunksize=1):
                    err_groups += softmax_groups_rows(v1, n_vis, bound(m, n_threads, t),
                                               bound(m, n_threads, t + 1), b, groups,
                                               n_groups, sample_visible,
                                               v0 if s == 1 else NULL, key, 2 * s - 1)
            # The last step stores -pk for the stacked gradient GEMM, and
            # samples only to advance a persistent chain.
            if s == cd_k and persistent:
                for t in prange(n_threads, schedule='static', chunksize=1):
                    hidden_by_unit_part(v0, 2 * m, W, c, h0, ldh, -1, ch, ldc,
                                        sampled, m, n_hid, n_vis, key, 2 * s, t,
                                        n_threads, unit)
            else:
                for t in prange(n_threads, schedule='static', chunksize=1):
                    hidden_by_unit_part(v1, m, W, c, h0 + m, ldh,
                                        -1 if s == cd_k else 1,
                                        ch if s < cd_k else NULL, ldc, sampled, m,
                                        n_hid, n_vis, key, 2 * s, t, n_threads, unit)
    return err + err_groups


def cd_step(floating[:, ::1] W, floating[::1] b_vis, floating[::1] b_hid,
            floating[:, ::1] W_inc, floating[::1] bv_inc, floating[::1] bh_inc,
            floating[::1] sigma, floating[:, ::1] vis, floating[:, ::1] hid,
            floating[:, ::1] chain, floating[::1] hid_mean, floating[:, ::1] grad,
            Py_ssize_t m, int cd_k=1, bint persistent=False,
            bint sample_visible=True, double learning_rate=0.1,
            double momentum=0.0, double weight_decay=0.0,
            double sparsity_target=0.1, double sparsity_cost=0.0,
            double sigma_learning_rate=0.0, double sigma_min=1e-3,
            bint sampled_statistics=False, uint64_t key=0, int n_threads=1,
            int hidden_unit=BERNOULLI, const Py_ssize_t[:, ::1] groups=None):
    """One CD-k (or PCD) update from the minibatch in ``vis[:m]``.

    Call with BLAS limited to one thread: the kernel parallelises itself.

    Parameters
    ----------
    W, b_vis, b_hid : arrays, updated in place
        Weights (n_hidden, n_visible) and biases.
    W_inc, bv_inc, bh_inc : arrays, updated in place
        Previous increments (momentum). ``W_inc`` is left untouched when
        ``momentum == 0`` and ``weight_decay == 0`` and sigma is fixed (the
        update then goes straight into ``W``).
    sigma : array of shape (n_visible,) or (0,)
        Visible standard deviations (Gaussian units) or empty (Bernoulli).
        Updated in place when ``grad`` is not empty (learned sigma).
    vis : array of shape (>= 2m, n_visible)
        Rows ``:m`` hold the minibatch on entry (v-space); scratch after.
    hid : array of shape (n_hidden, >= 2m)
        Scratch, stored by unit (the transpose of the usual layout).
    chain : array of shape (n_hidden, >= m)
        Hidden samples, stored by unit: ``h_samples_.T``. With
        ``persistent`` the fantasy particles, read and advanced; otherwise
        scratch.
    hid_mean : array of shape (n_hidden,) or (0,)
        Running mean of the hidden probabilities for the sparsity penalty.
    grad : array of shape (n_hidden, n_visible) or (0, 0)
        Scratch for the weight gradient; its presence turns on sigma learning.
    m : int
        Minibatch size.
    sampled_statistics : bool
        Use binary hidden samples instead of probabilities in the gradient.
        With sampled visibles every statistic is then binary, the gradient
        sums are exact integers, and a model split across processes updates
        to bit-identical weights.
    key : int
        ``batch_key(seed, epoch, batch)``: the random numbers of this step.
    n_threads : int
        OpenMP threads.
    hidden_unit : int
        Code of the hidden unit type, a value of ``UNIT_CODES``.
    groups : array of shape (n_groups, 2), default=None
        [start, stop) columns of softmax groups among Bernoulli visibles.

    Returns
    -------
    sq_error : float
        Sum over the minibatch of the squared difference between the data and
        the first negative-phase visibles (the reconstruction for CD).
    """
    cdef Py_ssize_t n_hid = W.shape[0], n_vis = W.shape[1]
    cdef Py_ssize_t i, j, lo, hi
    cdef int t
    cdef bint gaussian = sigma.shape[0] > 0
    cdef bint learn_sigma = grad.shape[0] > 0
    cdef bint sparse = sparsity_cost > 0
    cdef const floating *sig = &sigma[0] if gaussian else NULL
    cdef floating *v0 = &vis[0, 0]
    cdef floating *h0 = &hid[0, 0]
    cdef floating *G = &grad[0, 0] if learn_sigma else NULL
    cdef floating alpha = learning_rate / m
    cdef floating mom = momentum
    cdef floating decay = learning_rate * weight_decay
    cdef bint direct = mom == 0 and decay == 0 and not learn_sigma
    cdef double err = 0, g, d0, d1, mu
    cdef double *wg = NULL
    cdef double *s_data = NULL

    cdef Py_ssize_t ldh = hid.shape[1]
    cdef Py_ssize_t n_groups = 0 if groups is None else groups.shape[0]
    cdef const Py_ssize_t *gp = NULL
    if n_groups:
        check_groups(groups, n_vis, sigma.shape[0])
        gp = &groups[0, 0]
    if vis.shape[0] < 2 * m or hid.shape[1] < 2 * m or chain.shape[1] < m:
        raise ValueError("scratch buffers are smaller than the minibatch")
    if vis.shape[1] != n_vis or hid.shape[0] != n_hid or chain.shape[0] != n_hid:
        raise ValueError("vis, hid and chain do not match the shape of W")
    n_threads = effective_threads(n_threads, m, n_hid, n_vis)
    dtype = np.asarray(W).dtype
    cdef floating[::1] ones = np.ones(2 * m, dtype=dtype)
    cdef floating[::1] gh = np.empty(n_hid, dtype=dtype)
    cdef double[::1] gh_sum = np.empty(n_hid)
    cdef double[::1] gv_sum = np.empty(n_vis)

    with nogil:
        err = gibbs_chain(&W[0, 0], n_hid, n_vis, &b_vis[0], &b_hid[0], sig, v0,
                          h0, ldh, &chain[0, 0], chain.shape[1], m, cd_k,
                          persistent, sample_visible, sampled_statistics, key,
                          n_threads, hidden_unit, gp, n_groups)

        # Sparsity (Hinton's practical guide §11): q <- 0.9 q + 0.1 mean(p0);
        # the penalty (q - target) on each hidden unit's total input is folded
        # into p0, so it reaches the weights through the same GEMM.
        if sparse:
            gemv(n_hid, m, 1, h0, ldh, &ones[0], 0, &gh[0])
            for j in range(n_hid):
                hid_mean[j] = 0.9 * hid_mean[j] + 0.1 * gh[j] / m
                gh[j] = sparsity_cost * (hid_mean[j] - sparsity_target)
                for i in range(m):
                    h0[j * ldh + i] = h0[j * ldh + i] - gh[j]

        if learn_sigma:
            # s_data[i] = sum_rows (u0 - b/sigma)^2 - (uk - b/sigma)^2, and one
            # row of wg per thread for sum_j W_ji G_ji.
            s_data = <double *> calloc(n_vis, sizeof(double))
            wg = <double *> calloc(n_threads * n_vis, sizeof(double))
            for i in range(m):
                for j in range(n_vis):
                    mu = b_vis[j] / sigma[j]
                    d0 = vis[i, j] - mu
                    d1 = vis[m + i, j] - mu
                    s_data[j] += d0 * d0 - d1 * d1
            if not sample_visible:
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
            update_weight_rows(&W[0, 0], &W_inc[0, 0], G, h0, ldh, True, v0, lo, hi,
                               n_vis, 2 * m, alpha, mom, decay, direct,
                               wg + t * n_vis if learn_sigma else NULL)

        for j in range(n_hid):
            update_bias(&b_hid[j], &bh_inc[j], gh_sum[j], learning_rate / m, momentum)
        for i in range(n_vis):
            update_bias(&b_vis[i], &bv_inc[i],
                        gv_sum[i] / sigma[i] if gaussian else gv_sum[i],
                        learning_rate / m, momentum)

        # Learned sigma (report §1.4.3.2), in u-space:
        # dlogp/dsigma_i = [(u0-b/s)^2 - (uk-b/s)^2 - sum_j W_ji G_ji] / sigma_i
        # (the W G term is the data-minus-model u_i (hW)_i of the report).
        if learn_sigma:
            for i in range(n_vis):
                g = s_data[i]
                for t in range(n_threads):
                    g = g - wg[t * n_vis + i]
                g = g / (sigma[i] * m)
                sigma[i] = max(<floating> (sigma[i] + sigma_learning_rate * g),
                               <floating> sigma_min)
            free(s_data)
            free(wg)
    return err



include "_ais.pxi"
include "_backprop.pxi"
include "_slices.pxi"
