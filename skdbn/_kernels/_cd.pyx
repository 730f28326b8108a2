"""Contrastive-divergence kernels: one minibatch of RBM math per call.

Conventions
-----------
* ``W`` is ``components_``, row-major of shape (n_hidden, n_visible).
* Gaussian visibles are handled in the scaled space ``u = v / sigma``: the
  hidden input is ``u @ W.T + c`` and the visible mean is ``b / sigma + h @ W``
  (report §1.4.3), so both unit types share the same products. A zero-length
  ``sigma`` means Bernoulli visibles.
* The minibatch lives in the top half of a stacked buffer ``vis`` (2m, V) and
  its reconstruction in the bottom half; hidden probabilities likewise in
  ``hid`` (2m, H) with the negative phase stored negated. The weight gradient
  ``p0.T @ u0 - pk.T @ uk`` is then one GEMM with inner dimension 2m,
  ``hid.T @ vis``, and the bias gradients are two GEMVs.
* Random numbers come from ``_random.pxd``, keyed by (key, stream, row,
  column): samples do not depend on ``n_threads``.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, expf, log1p, log1pf, fabs, fabsf, sqrt
from libc.stdint cimport uint64_t

import numpy as np

from ._blas cimport gemm, weighted_row_sum
from ._random cimport row_key, uniform_f, uniform_d, normal

# Columns per task in the column-blocked passes (learned sigma): one block of
# every row is a contiguous 256-512 byte run, and blocks never share a cache
# line between threads.
cdef enum:
    COL_BLOCK = 64


cdef inline floating sigmoid(floating x) noexcept nogil:
    if floating is float:
        return 1.0 / (1.0 + expf(-x))
    else:
        return 1.0 / (1.0 + exp(-x))


cdef inline floating softplus(floating x) noexcept nogil:
    # log(1 + e^x) without overflow.
    if floating is float:
        return (x if x > 0 else 0) + log1pf(expf(-fabsf(x)))
    else:
        return (x if x > 0 else 0) + log1p(exp(-fabs(x)))


cdef inline floating draw_uniform(floating like, uint64_t rk, Py_ssize_t j) noexcept nogil:
    if floating is float:
        return uniform_f(rk, <unsigned int> j)
    else:
        return uniform_d(rk, <unsigned int> j)


# --------------------------------------------------------------------------
# Element-wise passes over a block of rows, parallel over rows.
# --------------------------------------------------------------------------

cdef void hidden_rows(floating *act, Py_ssize_t m, Py_ssize_t n_hid,
                      const floating *c, floating sign, floating *samples,
                      uint64_t key, uint64_t stream, int n_threads) noexcept nogil:
    """act <- sign * sigmoid(act + c); samples <- Bernoulli(sigmoid(act + c))."""
    cdef Py_ssize_t i, j
    cdef uint64_t rk
    cdef floating p
    cdef floating *row
    cdef floating *srow
    for i in prange(m, num_threads=n_threads, schedule='static'):
        row = act + i * n_hid
        if samples == NULL:
            for j in range(n_hid):
                row[j] = sign * sigmoid(row[j] + c[j])
        else:
            srow = samples + i * n_hid
            rk = row_key(key, stream, i)
            for j in range(n_hid):
                p = sigmoid(row[j] + c[j])
                row[j] = sign * p
                srow[j] = draw_uniform(p, rk, j) < p


cdef double visible_rows(floating *act, Py_ssize_t m, Py_ssize_t n_vis,
                         const floating *b, const floating *sigma, bint sample,
                         const floating *data, uint64_t key, uint64_t stream,
                         int n_threads) noexcept nogil:
    """act (= h @ W) <- visible states given the hidden layer, in u-space.

    Bernoulli: sigmoid(act + b), sampled or not. Gaussian (``sigma`` not
    NULL): act + b / sigma, plus unit normal noise when sampled. When ``data``
    is given, returns the squared reconstruction error in v-space.
    """
    cdef Py_ssize_t i, j
    cdef uint64_t rk
    cdef floating x, d
    cdef floating *row
    cdef const floating *drow
    cdef double err = 0
    for i in prange(m, num_threads=n_threads, schedule='static'):
        row = act + i * n_vis
        rk = row_key(key, stream, i)
        for j in range(n_vis):
            if sigma == NULL:
                x = sigmoid(row[j] + b[j])
                if sample:
                    x = draw_uniform(x, rk, j) < x
            else:
                x = row[j] + b[j] / sigma[j]
                if sample:
                    x = x + <floating> normal(rk, <unsigned int> j)
            row[j] = x
        if data != NULL:
            drow = data + i * n_vis
            for j in range(n_vis):
                d = drow[j] - row[j]
                if sigma != NULL:
                    d = d * sigma[j]
                err += d * d
    return err


cdef void scale_columns(floating *a, Py_ssize_t m, Py_ssize_t n,
                        const floating *sigma, bint divide, int n_threads) noexcept nogil:
    cdef Py_ssize_t i, j
    for i in prange(m, num_threads=n_threads, schedule='static'):
        for j in range(n):
            if divide:
                a[i * n + j] = a[i * n + j] / sigma[j]
            else:
                a[i * n + j] = a[i * n + j] * sigma[j]


# --------------------------------------------------------------------------
# Conditionals, for transform / gibbs / reconstruct / free energy / AIS.
# --------------------------------------------------------------------------

def hidden_given_visible(const floating[:, ::1] U, const floating[:, ::1] W,
                         const floating[::1] c, floating[:, ::1] out,
                         floating[:, ::1] samples=None, uint64_t key=0,
                         uint64_t stream=0, int n_threads=1):
    """out = sigmoid(U @ W.T + c); optionally ``samples`` ~ Bernoulli(out)."""
    cdef Py_ssize_t m = U.shape[0], n_hid = W.shape[0], n_vis = W.shape[1]
    cdef floating *s = NULL if samples is None else &samples[0, 0]
    if m == 0:
        return
    with nogil:
        gemm(False, True, m, n_hid, n_vis, 1, &U[0, 0], n_vis, &W[0, 0], n_vis,
             0, &out[0, 0], n_hid)
        hidden_rows(&out[0, 0], m, n_hid, &c[0], 1, s, key, stream, n_threads)


def visible_given_hidden(const floating[:, ::1] Hs, const floating[:, ::1] W,
                         const floating[::1] b, const floating[::1] sigma,
                         floating[:, ::1] out, bint sample=False, uint64_t key=0,
                         uint64_t stream=0, int n_threads=1):
    """out = visible mean (or sample) given hidden states, in v-space."""
    cdef Py_ssize_t m = Hs.shape[0], n_hid = W.shape[0], n_vis = W.shape[1]
    cdef const floating *sig = NULL if sigma.shape[0] == 0 else &sigma[0]
    if m == 0:
        return
    with nogil:
        gemm(False, False, m, n_vis, n_hid, 1, &Hs[0, 0], n_hid, &W[0, 0], n_vis,
             0, &out[0, 0], n_vis)
        visible_rows(&out[0, 0], m, n_vis, &b[0], sig, sample, NULL, key, stream,
                     n_threads)
        if sig != NULL:
            scale_columns(&out[0, 0], m, n_vis, sig, False, n_threads)


def softplus_sum(const floating[:, ::1] U, const floating[:, ::1] W,
                 const floating[::1] c, floating[::1] out, int n_threads=1):
    """out[i] = sum_j log(1 + exp(U[i] @ W[j] + c[j])), the hidden part of -F(v)."""
    cdef Py_ssize_t m = U.shape[0], n_hid = W.shape[0], n_vis = W.shape[1]
    cdef Py_ssize_t i, j
    cdef double acc
    if m == 0:
        return
    cdef floating[:, ::1] act = np.empty((m, n_hid), dtype=np.asarray(W).dtype)
    with nogil:
        gemm(False, True, m, n_hid, n_vis, 1, &U[0, 0], n_vis, &W[0, 0], n_vis,
             0, &act[0, 0], n_hid)
        for i in prange(m, num_threads=n_threads, schedule='static'):
            acc = 0
            for j in range(n_hid):
                acc = acc + softplus(act[i, j] + c[j])
            out[i] = acc


# --------------------------------------------------------------------------
# One CD-k / PCD step.
# --------------------------------------------------------------------------

cdef void sigma_statistics(const floating *vis, Py_ssize_t m, Py_ssize_t n_vis,
                           const floating *b, const floating *sigma,
                           double *out, int n_threads) noexcept nogil:
    """out[i] = sum_rows (u0 - b/sigma)^2 - (uk - b/sigma)^2, column-parallel."""
    cdef Py_ssize_t blk, i, r, lo, hi
    cdef Py_ssize_t n_blocks = (n_vis + COL_BLOCK - 1) // COL_BLOCK
    cdef double d0, d1, mu
    for blk in prange(n_blocks, num_threads=n_threads, schedule='static'):
        lo = blk * COL_BLOCK
        hi = min(lo + COL_BLOCK, n_vis)
        for i in range(lo, hi):
            out[i] = 0
        for r in range(m):
            for i in range(lo, hi):
                mu = b[i] / sigma[i]
                d0 = vis[r * n_vis + i] - mu
                d1 = vis[(r + m) * n_vis + i] - mu
                out[i] += d0 * d0 - d1 * d1


cdef void update_weights_blocked(floating *W, floating *W_inc, const floating *G,
                                 Py_ssize_t n_hid, Py_ssize_t n_vis,
                                 floating alpha, floating momentum, floating decay,
                                 double *wg, int n_threads) noexcept nogil:
    """W_inc = momentum W_inc + alpha G - decay W; W += W_inc; wg[i] = sum_j W G.

    Column-blocked so that the per-visible reduction ``wg`` (needed for the
    learned-sigma gradient, with the weights before the update) has a single
    writer per column.
    """
    cdef Py_ssize_t blk, i, j, lo, hi, k
    cdef Py_ssize_t n_blocks = (n_vis + COL_BLOCK - 1) // COL_BLOCK
    for blk in prange(n_blocks, num_threads=n_threads, schedule='static'):
        lo = blk * COL_BLOCK
        hi = min(lo + COL_BLOCK, n_vis)
        for i in range(lo, hi):
            wg[i] = 0
        for j in range(n_hid):
            for i in range(lo, hi):
                k = j * n_vis + i
                wg[i] += W[k] * G[k]
                W_inc[k] = momentum * W_inc[k] + alpha * G[k] - decay * W[k]
                W[k] = W[k] + W_inc[k]


cdef void apply_increment(floating *W, floating *W_inc, Py_ssize_t n,
                          floating decay, int n_threads) noexcept nogil:
    """W_inc -= decay W; W += W_inc (W_inc already holds momentum + gradient)."""
    cdef Py_ssize_t k
    for k in prange(n, num_threads=n_threads, schedule='static'):
        W_inc[k] = W_inc[k] - decay * W[k]
        W[k] = W[k] + W_inc[k]


def cd_step(floating[:, ::1] W, floating[::1] b_vis, floating[::1] b_hid,
            floating[:, ::1] W_inc, floating[::1] bv_inc, floating[::1] bh_inc,
            floating[::1] sigma, floating[:, ::1] vis, floating[:, ::1] hid,
            floating[:, ::1] chain, floating[::1] hid_mean, floating[:, ::1] grad,
            Py_ssize_t m, int cd_k=1, bint persistent=False,
            bint sample_visible=True, double learning_rate=0.1,
            double momentum=0.0, double weight_decay=0.0,
            double sparsity_target=0.1, double sparsity_cost=0.0,
            double sigma_learning_rate=0.0, double sigma_min=1e-3,
            uint64_t key=0, int n_threads=1):
    """One CD-k (or PCD) update from the minibatch in ``vis[:m]``.

    Parameters
    ----------
    W, b_vis, b_hid : arrays, updated in place
        Weights (n_hidden, n_visible) and biases.
    W_inc, bv_inc, bh_inc : arrays, updated in place
        Previous increments (momentum). Ignored when ``momentum == 0`` and
        ``weight_decay == 0`` (the update then goes straight into ``W``).
    sigma : array of shape (n_visible,) or (0,)
        Visible standard deviations (Gaussian units) or empty (Bernoulli).
        Updated in place when ``grad`` is not empty (learned sigma).
    vis : array of shape (>= 2m, n_visible)
        Rows ``:m`` hold the minibatch on entry (v-space); scratch after.
    hid : array of shape (>= 2m, n_hidden)
        Scratch.
    chain : array of shape (>= m, n_hidden)
        Hidden samples. With ``persistent`` the fantasy particles, read and
        advanced; otherwise scratch.
    hid_mean : array of shape (n_hidden,) or (0,)
        Running mean of the hidden probabilities for the sparsity penalty.
    grad : array of shape (n_hidden, n_visible) or (0, 0)
        Scratch for the weight gradient; its presence turns on sigma learning.
    m : int
        Minibatch size.
    key : int
        ``batch_key(seed, epoch, batch)``: the random numbers of this step.

    Returns
    -------
    sq_error : float
        Sum over the minibatch of the squared difference between the data and
        the first negative-phase visibles (the reconstruction for CD).
    """
    cdef Py_ssize_t n_hid = W.shape[0], n_vis = W.shape[1]
    cdef Py_ssize_t i, j, t
    cdef bint gaussian = sigma.shape[0] > 0
    cdef bint learn_sigma = grad.shape[0] > 0
    cdef bint sparse = sparsity_cost > 0
    cdef const floating *sig = &sigma[0] if gaussian else NULL
    cdef floating *v0 = &vis[0, 0]
    cdef floating *v1 = &vis[m, 0]
    cdef floating *h0 = &hid[0, 0]
    cdef floating *h1 = &hid[m, 0]
    cdef floating *ch = &chain[0, 0]
    cdef floating alpha = learning_rate / m
    cdef floating mom = momentum
    cdef floating decay = learning_rate * weight_decay
    cdef double err = 0, g
    cdef bint last

    dtype = np.asarray(W).dtype
    cdef floating[::1] signs = np.ones(2 * m, dtype=dtype)
    cdef floating[::1] gh = np.empty(n_hid, dtype=dtype)
    cdef floating[::1] gv = np.empty(n_vis, dtype=dtype)
    cdef double[::1] s_data = np.zeros(n_vis if learn_sigma else 1)
    cdef double[::1] s_wg = np.zeros(n_vis if learn_sigma else 1)

    with nogil:
        if gaussian:
            scale_columns(v0, m, n_vis, sig, True, n_threads)

        # Positive phase: p0 = sigmoid(u0 W^T + c), sampled unless PCD (the
        # chain, not the data, drives the negative phase).
        gemm(False, True, m, n_hid, n_vis, 1, v0, n_vis, &W[0, 0], n_vis, 0, h0, n_hid)
        hidden_rows(h0, m, n_hid, &b_hid[0], 1, NULL if persistent else ch,
                    key, 0, n_threads)

        # Negative phase: k alternating Gibbs steps from the chain.
        for t in range(1, cd_k + 1):
            last = t == cd_k
            gemm(False, False, m, n_vis, n_hid, 1, ch, n_hid, &W[0, 0], n_vis,
                 0, v1, n_vis)
            g = visible_rows(v1, m, n_vis, &b_vis[0], sig, sample_visible,
                             v0 if t == 1 else NULL, key, 2 * t - 1, n_threads)
            if t == 1:
                err = g
            gemm(False, True, m, n_hid, n_vis, 1, v1, n_vis, &W[0, 0], n_vis,
                 0, h1, n_hid)
            hidden_rows(h1, m, n_hid, &b_hid[0], -1 if last else 1,
                        ch if (persistent or not last) else NULL,
                        key, 2 * t, n_threads)

        # Sparsity (Hinton's practical guide §11): q <- 0.9 q + 0.1 mean(p0);
        # the penalty (q - target) on each hidden unit's total input is folded
        # into p0, so it reaches the weights through the same GEMM.
        if sparse:
            for i in range(m, 2 * m):
                signs[i] = 0
            weighted_row_sum(2 * m, n_hid, h0, n_hid, &signs[0], &gh[0])
            for j in range(n_hid):
                hid_mean[j] = 0.9 * hid_mean[j] + 0.1 * gh[j] / m
                gh[j] = sparsity_cost * (hid_mean[j] - sparsity_target)
            for i in prange(m, num_threads=n_threads, schedule='static'):
                for j in range(n_hid):
                    h0[i * n_hid + j] = h0[i * n_hid + j] - gh[j]

        # Bias gradients: sum(p0) - sum(pk) and sum(u0) - sum(uk).
        for i in range(2 * m):
            signs[i] = 1 if i < m else -1
        weighted_row_sum(2 * m, n_vis, v0, n_vis, &signs[0], &gv[0])
        for i in range(m, 2 * m):
            signs[i] = 1
        weighted_row_sum(2 * m, n_hid, h0, n_hid, &signs[0], &gh[0])

        if learn_sigma:
            sigma_statistics(v0, m, n_vis, &b_vis[0], sig, &s_data[0], n_threads)

        # Weights: one GEMM over the stacked minibatch.
        if learn_sigma:
            gemm(True, False, n_hid, n_vis, 2 * m, 1, h0, n_hid, v0, n_vis,
                 0, &grad[0, 0], n_vis)
            update_weights_blocked(&W[0, 0], &W_inc[0, 0], &grad[0, 0], n_hid,
                                   n_vis, alpha, mom, decay, &s_wg[0], n_threads)
        elif mom == 0 and decay == 0:
            gemm(True, False, n_hid, n_vis, 2 * m, alpha, h0, n_hid, v0, n_vis,
                 1, &W[0, 0], n_vis)
        else:
            gemm(True, False, n_hid, n_vis, 2 * m, alpha, h0, n_hid, v0, n_vis,
                 mom, &W_inc[0, 0], n_vis)
            apply_increment(&W[0, 0], &W_inc[0, 0], n_hid * n_vis, decay, n_threads)

        for j in range(n_hid):
            bh_inc[j] = mom * bh_inc[j] + alpha * gh[j]
            b_hid[j] += bh_inc[j]
        for i in range(n_vis):
            if gaussian:
                gv[i] = gv[i] / sigma[i]
            bv_inc[i] = mom * bv_inc[i] + alpha * gv[i]
            b_vis[i] += bv_inc[i]

        # Learned sigma (report §1.4.3.2), in u-space:
        # dlogp/dsigma_i = [(u0-b/s)^2 - (uk-b/s)^2 - sum_j W_ji G_ji] / sigma_i.
        if learn_sigma:
            for i in range(n_vis):
                g = (s_data[i] - s_wg[i]) / (sigma[i] * m)
                sigma[i] = max(<floating> (sigma[i] + sigma_learning_rate * g),
                               <floating> sigma_min)
    return err
