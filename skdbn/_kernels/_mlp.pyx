"""Feed-forward networks of sigmoid, linear and softmax layers: forward pass
and one training step (softmax classifier, or reconstruction targets).

Layer ``l`` has weights ``W[l]`` of shape (n_out, n_in), the layout of an
RBM's ``components_``, so a pretrained DBN is copied in as it is. Products
are split by output columns over OpenMP threads with BLAS held to one thread
by the caller, as in ``_cd.pyx``; the element-wise work follows each block.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, log, sqrt
from libc.stdint cimport uint64_t

import numpy as np

from ._blas cimport gemm, weighted_row_sum
from ._math cimport sigmoid
from ._parallel cimport bound, effective_threads
from ._random cimport hash32, row_key, unit_f


# Activation of a layer's units: the ``kinds`` argument of the functions below.
cdef enum:
    SIGMOID = 0
    LINEAR = 1
    SOFTMAX = 2
    N_KINDS = 3

KIND_CODES = {"sigmoid": SIGMOID, "linear": LINEAR, "softmax": SOFTMAX}


ctypedef struct Layer:
    # One layer's weights (n_out, n_in) and biases, in the kernel's dtype.
    void *W
    const void *b
    Py_ssize_t n_out
    Py_ssize_t n_in
    int kind


ctypedef struct Dropout:
    # Inverted dropout of a layer's units: kept with probability ``keep``,
    # by the uniforms of (key, stream, row, column).
    float keep
    uint64_t key
    uint64_t stream


ctypedef struct TrainOptions:
    # One backprop step; built by Cython from a dict of these names.
    bint adam
    double learning_rate
    double momentum
    double alpha                # L2 penalty, as scikit-learn's MLP
    double beta1
    double beta2
    double epsilon
    int step                    # 1-based update count (Adam's bias correction)
    int n_threads
    uint64_t key                # the minibatch's dropout masks


ctypedef struct Update:
    # The coefficients of one layer update (update_rows), in double; the
    # kernel rounds them to its dtype once.
    bint adam
    double lr                   # Adam: with its bias corrections
    double momentum
    double decay
    double beta1
    double beta2
    double eps


cdef inline Layer layer_of(floating[:, ::1] W, const floating[::1] b, int kind):
    cdef Layer L
    L.W, L.b, L.n_out, L.n_in, L.kind = &W[0, 0], &b[0], W.shape[0], W.shape[1], kind
    return L


cdef inline Dropout dropout_of(float keep, uint64_t key, uint64_t stream) noexcept nogil:
    cdef Dropout d
    d.keep, d.key, d.stream = keep, key, stream
    return d


cdef void dense_part(const floating *A, const Layer *L, const floating *noise,
                     floating *out, Py_ssize_t m, Dropout drop, int part,
                     int n_parts) noexcept nogil:
    """Columns of block ``part`` of out = f(A W^T + b + noise): f is the
    sigmoid for SIGMOID units, the identity otherwise (softmax rows are
    normalised afterwards); ``noise`` (m x n_out) may be NULL. With
    ``drop.keep`` < 1 the sigmoid outputs are dropped out (:func:`drop_rows`)."""
    cdef Py_ssize_t n_out = L.n_out, n_in = L.n_in
    cdef Py_ssize_t lo = bound(n_out, n_parts, part)
    cdef Py_ssize_t hi = bound(n_out, n_parts, part + 1)
    cdef Py_ssize_t i, j
    cdef floating *row
    cdef const floating *W = <const floating *> L.W
    cdef const floating *b = <const floating *> L.b
    cdef int kind = L.kind
    if hi <= lo:
        return
    gemm(False, True, m, hi - lo, n_in, 1, A, n_in, W + lo * n_in, n_in, 0,
         out + lo, n_out)
    for i in range(m):
        row = out + i * n_out
        if noise != NULL:
            for j in range(lo, hi):
                row[j] += noise[i * n_out + j]
        if kind == SIGMOID:
            for j in range(lo, hi):
                row[j] = sigmoid(row[j] + b[j])
        else:
            for j in range(lo, hi):
                row[j] += b[j]
    if drop.keep < 1:
        drop_rows(out, out, 0, m, n_out, lo, hi, drop)


cdef void drop_rows(const floating *A, floating *out, Py_ssize_t i0, Py_ssize_t i1,
                    Py_ssize_t n, Py_ssize_t lo, Py_ssize_t hi, Dropout d) noexcept nogil:
    """Inverted dropout of rows [i0, i1), columns [lo, hi) of A (n columns)
    into ``out`` (may be A): a unit is kept, scaled by 1 / keep, where the
    uniform of (key, stream, row, column) is below ``keep``, else zeroed.
    Prediction then needs no rescaling. The uniforms are 24-bit floats in
    both precisions, so float32 and float64 drop the same units."""
    cdef Py_ssize_t i, j
    cdef uint64_t rk
    cdef float keep = d.keep
    cdef floating scale = 1 / (<floating> keep)
    for i in range(i0, i1):
        rk = row_key(d.key, d.stream, i)
        for j in range(lo, hi):
            out[i * n + j] = (A[i * n + j] * scale if unit_f(hash32(rk, j)) < keep
                              else 0)


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


cdef check_keep(const float[::1] keep, const int[::1] kinds):
    """Dropout needs one keep probability in (0, 1] per layer, and sigmoid
    units wherever one is below 1 (the delta of a dropped-out sigmoid unit
    is recovered from its scaled output; see :func:`backprop_delta_part`)."""
    cdef Py_ssize_t l
    if keep.shape[0] != kinds.shape[0]:
        raise ValueError("dropout: keep needs one entry per layer")
    for l in range(keep.shape[0]):
        if not 0 < keep[l] <= 1:
            raise ValueError(f"dropout: keep probabilities must lie in (0, 1], got {keep[l]}")
        if l >= 1 and keep[l] < 1 and kinds[l - 1] != SIGMOID:
            raise ValueError("dropout: only sigmoid hidden layers can be dropped out")


def default_kinds(Py_ssize_t n_layers):
    """Kinds of the classifier: sigmoid hidden layers, a softmax output."""
    kinds = np.full(n_layers, SIGMOID, dtype=np.int32)
    kinds[n_layers - 1] = SOFTMAX
    return kinds


def forward(const floating[:, ::1] X, list weights, list biases, list acts,
            int n_threads=1, const int[::1] kinds=None, list noise=None,
            const float[::1] keep=None, uint64_t key=0):
    """acts[l + 1] = f_l(acts[l] W_l^T + b_l).

    ``acts[0]`` is ignored (``X`` is the input) unless the input is dropped
    out; ``acts[-1]`` receives the output. ``kinds[l]`` is the activation of
    layer ``l`` (``KIND_CODES``; None: sigmoid hidden layers and a softmax
    output); ``noise[l]``, when given and not None, is added to the input of
    layer ``l``'s units (the Gaussian noise that drives binary codes).

    ``keep[l]``, when ``keep`` is given, is the probability that a unit of
    layer ``l``'s input is kept by dropout (``keep[0]``: the features of X,
    written to ``acts[0]``; ``keep[l]``, l >= 1: the sigmoid units of
    ``acts[l]``); the uniforms deciding it come from ``key`` and stream
    ``l`` (``_streams.dropout_mask``). Call with BLAS limited to one thread.
    """
    cdef Py_ssize_t m = X.shape[0], L = len(weights), l, n_out, n_in
    cdef const floating[:, ::1] W
    cdef const floating[::1] b
    cdef const floating[:, ::1] N
    cdef floating[:, ::1] A_out
    cdef const floating *a_ptr = &X[0, 0]
    cdef const floating *n_ptr
    cdef int t, nt, kind
    cdef float keep_out = 1
    cdef Layer lay
    if m == 0:
        return
    if kinds is None:
        kinds = default_kinds(L)
    if kinds.shape[0] != L:
        raise ValueError("forward: kinds needs one entry per layer")
    for l in range(L):
        if not 0 <= kinds[l] < N_KINDS:
            raise ValueError(f"forward: unknown activation code {kinds[l]}; see KIND_CODES")
    if keep is not None:
        check_keep(keep, kinds)
        if keep[0] < 1:
            A_out = acts[0]
            if A_out.shape[0] != m or A_out.shape[1] != X.shape[1]:
                raise ValueError("forward: input dropout needs acts[0] shaped like X")
            nt = effective_threads(n_threads, m, X.shape[1], 1)
            with nogil:
                for t in prange(nt, num_threads=nt, schedule='static', chunksize=1):
                    drop_rows(&X[0, 0], &A_out[0, 0], bound(m, nt, t), bound(m, nt, t + 1),
                              X.shape[1], 0, X.shape[1], dropout_of(keep[0], key, 0))
            a_ptr = &A_out[0, 0]
    for l in range(L):
        W = weights[l]
        b = biases[l]
        A_out = acts[l + 1]
        kind = kinds[l]
        n_ptr = NULL
        if noise is not None and noise[l] is not None:
            N = noise[l]
            n_ptr = &N[0, 0]
        n_out, n_in = W.shape[0], W.shape[1]
        nt = effective_threads(n_threads, m, n_out, n_in)
        keep_out = 1 if keep is None or l == L - 1 else keep[l + 1]
        lay.W, lay.b, lay.n_out, lay.n_in, lay.kind = <void *> &W[0, 0], &b[0], n_out, n_in, kind
        with nogil:
            for t in prange(nt, num_threads=nt, schedule='static', chunksize=1):
                dense_part(a_ptr, &lay, n_ptr, &A_out[0, 0], m,
                           dropout_of(keep_out, key, l + 1), t, nt)
            if kind == SOFTMAX:
                for t in prange(nt, num_threads=nt, schedule='static', chunksize=1):
                    softmax_rows(&A_out[0, 0], bound(m, nt, t), bound(m, nt, t + 1),
                                 n_out)
        a_ptr = &A_out[0, 0]


cdef void backprop_delta_part(const floating *D, const Layer *L, const floating *A,
                              floating *out, Py_ssize_t m, bint linear, floating keep,
                              int part, int n_parts) noexcept nogil:
    """Columns of block ``part`` of out = (D W) * A * (1 - keep A): the delta
    of a sigmoid layer with activations A (m x n_in) from the delta D above
    it; out = D W for a linear layer. With dropout, A holds mask * s / keep
    for the sigmoid s, whose derivative mask * s (1 - s) / keep is then
    A (1 - keep A): zero where dropped, no mask to keep."""
    cdef Py_ssize_t n_out = L.n_out, n_in = L.n_in
    cdef Py_ssize_t lo = bound(n_in, n_parts, part)
    cdef Py_ssize_t hi = bound(n_in, n_parts, part + 1)
    cdef Py_ssize_t i, j
    cdef floating a
    cdef const floating *W = <const floating *> L.W
    if hi <= lo:
        return
    gemm(False, False, m, hi - lo, n_out, 1, D, n_out, W + lo, n_in, 0, out + lo, n_in)
    if linear:
        return
    for i in range(m):
        for j in range(lo, hi):
            a = A[i * n_in + j]
            out[i * n_in + j] *= a * (1 - keep * a)


cdef void update_rows(const Layer *L, floating *G, floating *S1, floating *S2,
                      const floating *D, const floating *A, Py_ssize_t m, const Update *u,
                      int part, int n_parts) noexcept nogil:
    """Rows of block ``part`` of W: G = D^T A + decay W, then
    SGD: S1 = momentum S1 - lr G; W += S1.
    Adam: S1 = b1 S1 + (1-b1) G; S2 = b2 S2 + (1-b2) G^2; W -= lr S1 / (sqrt(S2) + eps)
    (``u.lr`` already carries Adam's bias corrections)."""
    cdef Py_ssize_t n_out = L.n_out, n_in = L.n_in
    cdef Py_ssize_t lo = bound(n_out, n_parts, part)
    cdef Py_ssize_t hi = bound(n_out, n_parts, part + 1)
    cdef Py_ssize_t k
    cdef floating g
    cdef floating *W = <floating *> L.W
    cdef bint adam = u.adam
    cdef floating lr = <floating> u.lr, momentum = <floating> u.momentum
    cdef floating decay = <floating> u.decay, beta1 = <floating> u.beta1
    cdef floating beta2 = <floating> u.beta2, eps = <floating> u.eps
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


cdef double delta_from_targets(floating *P, const floating *T, Py_ssize_t m,
                               Py_ssize_t k, int kind, const floating *w,
                               double total) noexcept nogil:
    """P <- (P - T) * w_i / total in place; returns the loss summed over the
    features and the rows (weights w_i, 1 if ``w`` is NULL): the
    cross-entropy of sigmoid outputs against targets in [0, 1], that of a
    softmax against target distributions (rows summing to 1), or half the
    squared error of linear outputs. Each loss has the gradient P - T with
    respect to the output units' input."""
    cdef Py_ssize_t i, j
    cdef double loss = 0, row_loss, wi = 1, p, t
    cdef floating scale
    for i in range(m):
        if w != NULL:
            wi = w[i]
        row_loss = 0
        for j in range(k):
            p = P[i * k + j]
            t = T[i * k + j]
            if kind == SIGMOID:
                row_loss -= (t * log(p if p > 1e-300 else 1e-300)
                             + (1 - t) * log(1 - p if 1 - p > 1e-300 else 1e-300))
            elif kind == SOFTMAX:
                if t != 0:
                    row_loss -= t * log(p if p > 1e-300 else 1e-300)
            else:
                row_loss += 0.5 * (p - t) * (p - t)
        loss += wi * row_loss
        scale = wi / total
        for j in range(k):
            P[i * k + j] = (P[i * k + j] - T[i * k + j]) * scale
    return loss


cdef double weight_total(const floating[::1] sample_weight, Py_ssize_t m) except -1:
    if sample_weight is None:
        return m
    if sample_weight.shape[0] != m:
        raise ValueError("train_step: sample_weight does not match X")
    total = np.sum(sample_weight, dtype=np.float64)
    if not total > 0:
        raise ValueError("train_step: the weights of a minibatch sum to 0")
    return total


def train_step(const floating[:, ::1] X, const int[::1] y, net, optimizer, scratch,
               TrainOptions options, const floating[::1] sample_weight=None,
               const float[::1] keep=None):
    """One minibatch of backprop with softmax cross-entropy; returns the loss.

    Parameters
    ----------
    X : array of shape (m, n_features)
        The minibatch.
    y : int32 array of shape (m,)
        Class indices.
    net : (weights, biases), lists of arrays updated in place
        ``W[l]`` of shape (n_out, n_in), ``b[l]`` of shape (n_out,).
    optimizer : (state1, state2, bias_state1, bias_state2), lists of arrays
        Optimiser state (velocity for SGD; first and second moments for
        Adam; ``state2`` unused by SGD).
    scratch : (acts, deltas, grads), lists of arrays
        ``acts[l]`` and ``deltas[l]`` of shape (m, n_units[l]) for l >= 1
        (index 0 unused; ``deltas[L]`` unused: the output delta overwrites
        ``acts[L]``); ``grads`` shaped like the weights.
    options : dict
        The fields of ``TrainOptions``: ``adam``, ``learning_rate``,
        ``momentum``, ``alpha`` (L2 penalty, as in scikit-learn's MLP: the
        loss gains ``alpha / (2 m) * ||W||^2``), ``beta1``, ``beta2``,
        ``epsilon``, ``step`` (1-based update count, for Adam's bias
        correction), ``n_threads`` and ``key`` (of the dropout masks).
    sample_weight : array of shape (m,) or None
        Weights of the rows, as in scikit-learn's MLP: the loss, its
        gradient and the L2 term are divided by their sum instead of m.
    keep : float32 array of shape (L,) or None
        Dropout's keep probabilities, as in :func:`forward` (``acts[0]``
        shaped like X when ``keep[0]`` < 1); None: no dropout.

    Returns
    -------
    loss : float
        Mean cross-entropy of the minibatch (weighted), before the update.
    """
    weights, biases = net
    acts = scratch[0]
    cdef Py_ssize_t m = X.shape[0], L = len(weights)
    cdef floating[:, ::1] D
    cdef const floating *w = NULL if sample_weight is None else &sample_weight[0]
    cdef double total = weight_total(sample_weight, m)
    cdef double loss
    cdef const int[::1] kinds = default_kinds(L)
    if y.shape[0] != m:
        raise ValueError("train_step: y does not match X")
    forward(X, weights, biases, acts, options.n_threads, kinds, None, keep, options.key)
    # The output delta (P - Y) / m replaces the probabilities in acts[L].
    D = acts[L]
    with nogil:
        loss = delta_from_probs(&D[0, 0], m, D.shape[1], &y[0], w, total)
    backward(X, net, optimizer, scratch, kinds, &options, options.alpha / total, keep)
    return loss / total


def reconstruction_step(const floating[:, ::1] X, const floating[:, ::1] T, net,
                        optimizer, scratch, const int[::1] kinds, TrainOptions options,
                        list noise=None, const floating[::1] sample_weight=None):
    """One minibatch of backprop towards real-valued targets ``T``.

    As :func:`train_step`, with the layers' activations given by ``kinds``
    and ``noise`` as in :func:`forward` (``options.key`` unused: no
    dropout). A sigmoid output layer is trained by cross-entropy (targets in
    [0, 1]), a softmax one by cross-entropy against target distributions
    (word frequencies, weighted by the documents' lengths: the multinomial
    log-likelihood of the counts), a linear one by half the squared error.
    Returns the loss summed over the features, mean over the rows
    (weighted), before the update.
    """
    weights, biases = net
    acts = scratch[0]
    cdef Py_ssize_t m = X.shape[0], L = len(weights)
    cdef floating[:, ::1] D
    cdef const floating *w = NULL if sample_weight is None else &sample_weight[0]
    cdef double total = weight_total(sample_weight, m)
    cdef double loss
    cdef int out_kind = kinds[L - 1]
    if T.shape[0] != m or T.shape[1] != (<object> weights[L - 1]).shape[0]:
        raise ValueError("reconstruction_step: T does not match the output layer")
    forward(X, weights, biases, acts, options.n_threads, kinds, noise)
    D = acts[L]
    with nogil:
        loss = delta_from_targets(&D[0, 0], &T[0, 0], m, D.shape[1], out_kind, w, total)
    backward(X, net, optimizer, scratch, kinds, &options, options.alpha / total, NO_KEEP)
    return loss / total


# No dropout in backward (its ``keep``): a typed None.
cdef const float[::1] NO_KEEP = None


cdef backward(const floating[:, ::1] X, net, optimizer, scratch, const int[::1] kinds,
              const TrainOptions *o, double decay, const float[::1] keep):
    """Backpropagate the output delta held in ``acts[L]`` and update every
    layer (the arguments of :func:`train_step`; ``decay`` is the L2
    coefficient of the gradient; ``keep``: the dropout of the forward pass,
    whose dropped-out input is ``acts[0]``)."""
    weights, biases = net
    state1, state2, bias_state1, bias_state2 = optimizer
    acts, deltas, grads = scratch
    cdef Py_ssize_t m = X.shape[0], L = len(weights), l, n_out, n_in, j
    cdef floating[:, ::1] W, G, S1, S2, A_prev, D, D_prev
    cdef floating[::1] b, bs1, bs2
    cdef floating[::1] ones = np.ones(m, dtype=np.asarray(X).dtype)
    cdef floating[::1] gb
    cdef const floating *a_ptr
    cdef int t, nt, n_threads = o.n_threads
    cdef Update u
    cdef Layer lay
    cdef floating lr, mom = o.momentum
    cdef floating b1 = o.beta1, b2 = o.beta2, eps = o.epsilon
    cdef bint linear, adam = o.adam
    cdef floating keep_l = 1
    u.adam, u.lr, u.momentum, u.decay = adam, o.learning_rate, o.momentum, decay
    u.beta1, u.beta2, u.eps = o.beta1, o.beta2, o.epsilon
    if adam:
        u.lr = o.learning_rate * sqrt(1 - o.beta2 ** o.step) / (1 - o.beta1 ** o.step)
    lr = u.lr
    D = acts[L]
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
        lay = layer_of(W, b, kinds[l])
        nt = effective_threads(n_threads, m, n_out, n_in)
        gb = np.empty(n_out, dtype=np.asarray(X).dtype)
        if l == 0:
            a_ptr = &X[0, 0]
            if keep is not None and keep[0] < 1:
                A_prev = acts[0]
                a_ptr = &A_prev[0, 0]
        else:
            # The delta below uses W before its update.
            A_prev = acts[l]
            D_prev = deltas[l]
            a_ptr = &A_prev[0, 0]
            linear = kinds[l - 1] == LINEAR
            keep_l = 1 if keep is None else keep[l]
            with nogil:
                for t in prange(nt, num_threads=nt, schedule='static', chunksize=1):
                    backprop_delta_part(&D[0, 0], &lay, &A_prev[0, 0], &D_prev[0, 0], m,
                                        linear, keep_l, t, nt)
        with nogil:
            weighted_row_sum(m, n_out, &D[0, 0], n_out, &ones[0], &gb[0])
            for t in prange(nt, num_threads=nt, schedule='static', chunksize=1):
                update_rows(&lay, &G[0, 0], &S1[0, 0], &S2[0, 0], &D[0, 0], a_ptr, m, &u,
                            t, nt)
            for j in range(n_out):
                if adam:
                    bs1[j] = b1 * bs1[j] + (1 - b1) * gb[j]
                    bs2[j] = b2 * bs2[j] + (1 - b2) * gb[j] * gb[j]
                    b[j] = b[j] - lr * bs1[j] / (sqrt(bs2[j]) + eps)
                else:
                    bs1[j] = mom * bs1[j] - lr * gb[j]
                    b[j] = b[j] + bs1[j]
