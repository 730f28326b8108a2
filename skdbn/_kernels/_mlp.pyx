"""Sigmoid MLP with a softmax output: forward pass and one training step.

Layer ``l`` has weights ``W[l]`` of shape (n_out, n_in), the layout of an
RBM's ``components_``, so a pretrained DBN is copied in as it is. Products
are split by output columns over OpenMP threads with BLAS held to one thread
by the caller, as in ``_cd.pyx``; the element-wise work follows each block.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, log, sqrt

import numpy as np

from ._blas cimport gemm, weighted_row_sum
from ._math cimport sigmoid
from ._parallel cimport bound, effective_threads


cdef void dense_sigmoid_part(const floating *A, const floating *W, const floating *b,
                             floating *out, Py_ssize_t m, Py_ssize_t n_out,
                             Py_ssize_t n_in, int part, int n_parts) noexcept nogil:
    """Columns of block ``part`` of out = sigmoid(A W^T + b)."""
    cdef Py_ssize_t lo = bound(n_out, n_parts, part)
    cdef Py_ssize_t hi = bound(n_out, n_parts, part + 1)
    cdef Py_ssize_t i, j
    cdef floating *row
    if hi <= lo:
        return
    gemm(False, True, m, hi - lo, n_in, 1, A, n_in, W + lo * n_in, n_in, 0,
         out + lo, n_out)
    for i in range(m):
        row = out + i * n_out
        for j in range(lo, hi):
            row[j] = sigmoid(row[j] + b[j])


cdef void logits_part(const floating *A, const floating *W, const floating *b,
                      floating *out, Py_ssize_t m, Py_ssize_t n_out,
                      Py_ssize_t n_in, int part, int n_parts) noexcept nogil:
    """Columns of block ``part`` of out = A W^T + b."""
    cdef Py_ssize_t lo = bound(n_out, n_parts, part)
    cdef Py_ssize_t hi = bound(n_out, n_parts, part + 1)
    cdef Py_ssize_t i, j
    if hi <= lo:
        return
    gemm(False, True, m, hi - lo, n_in, 1, A, n_in, W + lo * n_in, n_in, 0,
         out + lo, n_out)
    for i in range(m):
        for j in range(lo, hi):
            out[i * n_out + j] += b[j]


cdef void softmax_rows(floating *Z, Py_ssize_t i0, Py_ssize_t i1,
                       Py_ssize_t k) noexcept nogil:
    """Rows [i0, i1) of Z <- softmax(Z), shifted by the row maximum."""
    cdef Py_ssize_t i, j
    cdef floating *row
    cdef double zmax, total
    for i in range(i0, i1):
        row = Z + i * k
        zmax = row[0]
        for j in range(1, k):
            if row[j] > zmax:
                zmax = row[j]
        total = 0
        for j in range(k):
            row[j] = exp(row[j] - zmax)
            total += row[j]
        for j in range(k):
            row[j] = row[j] / total


def forward(const floating[:, ::1] X, list weights, list biases, list acts,
            int n_threads=1):
    """acts[l + 1] = sigmoid(acts[l] W_l^T + b_l); the last layer is softmax.

    ``acts[0]`` is ignored (``X`` is the input); ``acts[-1]`` receives the
    class probabilities. Call with BLAS limited to one thread.
    """
    cdef Py_ssize_t m = X.shape[0], L = len(weights), l, n_out, n_in
    cdef const floating[:, ::1] W
    cdef const floating[::1] b
    cdef floating[:, ::1] A_out
    cdef const floating *a_ptr = &X[0, 0]
    cdef int t, nt
    if m == 0:
        return
    for l in range(L):
        W = weights[l]
        b = biases[l]
        A_out = acts[l + 1]
        n_out, n_in = W.shape[0], W.shape[1]
        nt = effective_threads(n_threads, m, n_out, n_in)
        with nogil:
            for t in prange(nt, num_threads=nt, schedule='static', chunksize=1):
                if l < L - 1:
                    dense_sigmoid_part(a_ptr, &W[0, 0], &b[0], &A_out[0, 0], m,
                                       n_out, n_in, t, nt)
                else:
                    logits_part(a_ptr, &W[0, 0], &b[0], &A_out[0, 0], m, n_out,
                                n_in, t, nt)
            if l == L - 1:
                for t in prange(nt, num_threads=nt, schedule='static', chunksize=1):
                    softmax_rows(&A_out[0, 0], bound(m, nt, t), bound(m, nt, t + 1),
                                 n_out)
        a_ptr = &A_out[0, 0]


cdef void backprop_delta_part(const floating *D, const floating *W, const floating *A,
                              floating *out, Py_ssize_t m, Py_ssize_t n_out,
                              Py_ssize_t n_in, int part, int n_parts) noexcept nogil:
    """Columns of block ``part`` of out = (D W) * A * (1 - A): the delta of a
    sigmoid layer with activations A (m x n_in) from the delta D above it."""
    cdef Py_ssize_t lo = bound(n_in, n_parts, part)
    cdef Py_ssize_t hi = bound(n_in, n_parts, part + 1)
    cdef Py_ssize_t i, j
    cdef floating a
    if hi <= lo:
        return
    gemm(False, False, m, hi - lo, n_out, 1, D, n_out, W + lo, n_in, 0, out + lo, n_in)
    for i in range(m):
        for j in range(lo, hi):
            a = A[i * n_in + j]
            out[i * n_in + j] *= a * (1 - a)


cdef void update_rows(floating *W, floating *G, floating *S1, floating *S2,
                      const floating *D, const floating *A, Py_ssize_t m,
                      Py_ssize_t n_out, Py_ssize_t n_in, int part, int n_parts,
                      bint adam, floating lr, floating momentum, floating decay,
                      floating beta1, floating beta2, floating eps) noexcept nogil:
    """Rows of block ``part`` of W: G = D^T A + decay W, then
    SGD: S1 = momentum S1 - lr G; W += S1.
    Adam: S1 = b1 S1 + (1-b1) G; S2 = b2 S2 + (1-b2) G^2; W -= lr S1 / (sqrt(S2) + eps)
    (``lr`` already carries Adam's bias corrections)."""
    cdef Py_ssize_t lo = bound(n_out, n_parts, part)
    cdef Py_ssize_t hi = bound(n_out, n_parts, part + 1)
    cdef Py_ssize_t k
    cdef floating g
    if hi <= lo:
        return
    gemm(True, False, hi - lo, n_in, m, 1, D + lo, n_out, A, n_in, 0,
         G + lo * n_in, n_in)
    for k in range(lo * n_in, hi * n_in):
        g = G[k] + decay * W[k]
        if adam:
            S1[k] = beta1 * S1[k] + (1 - beta1) * g
            S2[k] = beta2 * S2[k] + (1 - beta2) * g * g
            W[k] = W[k] - lr * S1[k] / (sqrt(S2[k]) + eps)
        else:
            S1[k] = momentum * S1[k] - lr * g
            W[k] = W[k] + S1[k]


cdef double delta_from_probs(floating *P, Py_ssize_t m, Py_ssize_t k,
                              const int *y, const floating *w,
                              double total) noexcept nogil:
    """P <- (P - onehot(y)) * w_i / total in place (w_i = 1 if ``w`` is NULL);
    returns the cross-entropy summed with the weights."""
    cdef Py_ssize_t i, j
    cdef double loss = 0, wi = 1
    cdef floating p, scale
    for i in range(m):
        if w != NULL:
            wi = w[i]
        p = P[i * k + y[i]]
        loss -= wi * log(p if p > 1e-300 else 1e-300)
        P[i * k + y[i]] = p - 1
        scale = wi / total
        for j in range(k):
            P[i * k + j] = P[i * k + j] * scale
    return loss


def train_step(const floating[:, ::1] X, const int[::1] y, list weights, list biases,
               list state1, list state2, list bias_state1, list bias_state2,
               list acts, list deltas, list grads, bint adam=False,
               double learning_rate=0.1, double momentum=0.9, double alpha=0.0,
               double beta1=0.9, double beta2=0.999, double epsilon=1e-8,
               int step=1, int n_threads=1, const floating[::1] sample_weight=None):
    """One minibatch of backprop with softmax cross-entropy; returns the loss.

    Parameters
    ----------
    X : array of shape (m, n_features)
        The minibatch.
    y : int32 array of shape (m,)
        Class indices.
    weights, biases : lists of arrays, updated in place
        ``W[l]`` of shape (n_out, n_in), ``b[l]`` of shape (n_out,).
    state1, state2, bias_state1, bias_state2 : lists of arrays
        Optimiser state (velocity for SGD; first and second moments for
        Adam; ``state2`` unused by SGD).
    acts, deltas : lists of scratch arrays
        ``acts[l]`` and ``deltas[l]`` of shape (m, n_units[l]) for l >= 1
        (index 0 unused; ``deltas[L]`` unused: the output delta overwrites
        ``acts[L]``).
    grads : list of scratch arrays shaped like ``weights``.
    alpha : float
        L2 penalty on the weights, as in scikit-learn's MLP: the loss gains
        ``alpha / (2 m) * ||W||^2``, so the gradient ``alpha / m * W``.
    step : int
        1-based update count, for Adam's bias correction.
    sample_weight : array of shape (m,) or None
        Weights of the rows, as in scikit-learn's MLP: the loss, its
        gradient and the L2 term are divided by their sum instead of m.

    Returns
    -------
    loss : float
        Mean cross-entropy of the minibatch (weighted), before the update.
    """
    cdef Py_ssize_t m = X.shape[0], L = len(weights), l, n_out, n_in, j
    cdef floating[:, ::1] W, G, S1, S2, A_prev, A_out, D, D_prev
    cdef floating[::1] b, bs1, bs2
    cdef floating[::1] ones = np.ones(m, dtype=np.asarray(X).dtype)
    cdef floating[::1] gb
    cdef const floating *a_ptr
    cdef int t, nt
    cdef double loss = 0
    cdef const floating *w = NULL
    cdef double total = m
    if sample_weight is not None:
        if sample_weight.shape[0] != m:
            raise ValueError("train_step: sample_weight does not match X")
        w = &sample_weight[0]
        total = np.sum(sample_weight, dtype=np.float64)
        if not total > 0:
            raise ValueError("train_step: the weights of a minibatch sum to 0")
    cdef floating lr = learning_rate, mom = momentum, decay = alpha / total
    cdef floating b1 = beta1, b2 = beta2, eps = epsilon
    if adam:
        lr = learning_rate * sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
    forward(X, weights, biases, acts, n_threads)

    # The output delta (P - Y) / m replaces the probabilities in acts[L].
    D = acts[L]
    with nogil:
        loss = delta_from_probs(&D[0, 0], m, D.shape[1], &y[0], w, total)
    for l in range(L - 1, -1, -1):
        W = weights[l]
        b = biases[l]
        G = grads[l]
        S1 = state1[l]
        S2 = state2[l]
        bs1 = bias_state1[l]
        bs2 = bias_state2[l]
        if l < L - 1:
            D = deltas[l + 1]
        n_out, n_in = W.shape[0], W.shape[1]
        nt = effective_threads(n_threads, m, n_out, n_in)
        gb = np.empty(n_out, dtype=np.asarray(X).dtype)
        if l == 0:
            a_ptr = &X[0, 0]
        else:
            # The delta below uses W before its update.
            A_prev = acts[l]
            D_prev = deltas[l]
            a_ptr = &A_prev[0, 0]
            with nogil:
                for t in prange(nt, num_threads=nt, schedule='static', chunksize=1):
                    backprop_delta_part(&D[0, 0], &W[0, 0], &A_prev[0, 0],
                                        &D_prev[0, 0], m, n_out, n_in, t, nt)
        with nogil:
            weighted_row_sum(m, n_out, &D[0, 0], n_out, &ones[0], &gb[0])
            for t in prange(nt, num_threads=nt, schedule='static', chunksize=1):
                update_rows(&W[0, 0], &G[0, 0], &S1[0, 0], &S2[0, 0], &D[0, 0],
                            a_ptr, m, n_out, n_in, t, nt, adam, lr, mom, decay,
                            b1, b2, eps)
            for j in range(n_out):
                if adam:
                    bs1[j] = b1 * bs1[j] + (1 - b1) * gb[j]
                    bs2[j] = b2 * bs2[j] + (1 - b2) * gb[j] * gb[j]
                    b[j] = b[j] - lr * bs1[j] / (sqrt(bs2[j]) + eps)
                else:
                    bs1[j] = mom * bs1[j] - lr * gb[j]
                    b[j] = b[j] + bs1[j]
    return loss / total
