"""Inference with a trained RBM: one layer given the other, and free energies.

For ``transform``, ``gibbs``, ``reconstruct``, ``free_energy``, the DBN's
passes and generation, the exact partition function and the distributed
workers' phases. Each call is one thread team over the phases of
``_phases.pxd``; call with BLAS limited to one thread. ``draw`` arguments
are ``(key, stream)`` pairs of the counter-based generator (``_random.pxd``).
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport uint64_t

import numpy as np

from skdbn._kernels._blas cimport gemm
from skdbn._kernels._blocks cimport hidden_block, scale_block
from skdbn._kernels._csr cimport columns_of, product_by_unit
from skdbn._kernels._math cimport softplus
from skdbn._kernels._model cimport (VISIBLE_GAUSSIAN, Columns, Draw, Model, hidden_draw,
                                    model_of, visible_draw)
from skdbn._kernels._parallel cimport bound, effective_threads
from skdbn._kernels._phases cimport down, up_rows
from skdbn._kernels._units cimport (BERNOULLI, check_groups, check_hidden_unit, set_lengths,
                                    hidden_term, softmax_groups_rows)


def hidden_given_visible(U, const floating[:, ::1] W, const floating[::1] c,
                         floating[:, ::1] out, floating[:, ::1] samples=None, draw=(0, 0),
                         int n_threads=1, int hidden_unit=BERNOULLI, lengths=None):
    """out = E[h | U] (sigmoid(U @ W.T + c) for Bernoulli units); ``samples``,
    if given, ~ p(h | U) with the random numbers of ``draw``.

    ``U``: an array, v-space for Bernoulli visibles and ``v / sigma`` for
    Gaussian, or a sparse block's Columns (``skdbn._csr.columns``).
    ``hidden_unit``: a code of ``UNIT_CODES``. ``lengths``: each row's
    length D (a Replicated Softmax, whose hidden biases enter as D c).
    """
    cdef Py_ssize_t m = out.shape[0]
    cdef int t
    cdef Model M = model_of(W, NULL, &c[0], NULL, hidden_unit)
    cdef uint64_t key = draw[0], stream = draw[1]
    cdef const Py_ssize_t[:, ::1] whole = np.array([[0, M.n_vis]], dtype=np.intp)
    cdef const floating[::1] D
    if lengths is not None:
        D = lengths
        set_lengths(&M, D, m, whole)
    cdef void *s = NULL if samples is None else <void *> &samples[0, 0]
    cdef const floating[:, ::1] dense
    check_hidden_unit(hidden_unit)
    if c.shape[0] != M.n_hid or out.shape[1] != M.n_hid or (samples is not None and (
            samples.shape[0] != m or samples.shape[1] != M.n_hid)):
        raise ValueError("hidden_given_visible: W, c, out and samples do not match")
    if isinstance(U, tuple):
        sparse_input(U, W, out, n_threads)
        if m == 0:
            return
        n_threads = effective_threads(n_threads, m, M.n_hid, M.n_vis)
        with nogil:
            for t in prange(n_threads, num_threads=n_threads, schedule='static',
                            chunksize=1):
                block_of_units(&out[0, 0], m, &M,
                               hidden_draw(key, stream, False, 1, s, M.n_hid), t, n_threads)
        return
    dense = U
    if dense.shape[0] != m or dense.shape[1] != M.n_vis:
        raise ValueError("hidden_given_visible: U does not match W and out")
    if m == 0:
        return
    n_threads = effective_threads(n_threads, m, M.n_hid, M.n_vis)
    with nogil:
        for t in prange(n_threads, num_threads=n_threads, schedule='static', chunksize=1):
            up_rows(&dense[0, 0], m, &M, &out[0, 0],
                    hidden_draw(key, stream, False, 1, s, M.n_hid), t, n_threads)


cdef inline void block_of_units(floating *act, Py_ssize_t m, const Model *M, Draw d,
                                int part, int n_parts) noexcept nogil:
    """The unit math of the hidden units of block ``part`` on their inputs
    in act (m, n_hid): what :func:`_phases.up_rows` does after its product."""
    cdef Py_ssize_t lo = bound(M.n_hid, n_parts, part)
    cdef Py_ssize_t hi = bound(M.n_hid, n_parts, part + 1)
    if hi > lo:
        hidden_block(act, M.n_hid, m, lo, hi, M, &d)


def sparse_input(X, const floating[:, ::1] W, floating[:, ::1] out, int n_threads=1):
    """out = X @ W.T for a sparse block X given by its Columns
    (``skdbn._csr.columns``), m = out.shape[0] rows: the product stored by
    unit, one row of W at a time, then transposed."""
    cdef Py_ssize_t m = out.shape[0], n_hid = W.shape[0], n_vis = W.shape[1]
    cdef Py_ssize_t i, j, lo, hi
    cdef int t
    cdef Columns cols = columns_of(X, m, n_vis, &W[0, 0])
    if out.shape[1] != n_hid:
        raise ValueError("sparse_input: W and out do not match")
    if m == 0:
        return
    cdef floating[:, ::1] by_unit = np.empty((n_hid, m), dtype=np.asarray(W).dtype)
    n_threads = effective_threads(n_threads, m, n_hid, n_vis)
    with nogil:
        for t in prange(n_threads, num_threads=n_threads, schedule='static', chunksize=1):
            product_by_unit(&cols, &W[0, 0], n_vis, &by_unit[0, 0], m,
                            bound(n_hid, n_threads, t), bound(n_hid, n_threads, t + 1))
        for t in prange(n_threads, num_threads=n_threads, schedule='static', chunksize=1):
            lo = bound(m, n_threads, t)
            hi = bound(m, n_threads, t + 1)
            for i in range(lo, hi):
                for j in range(n_hid):
                    out[i, j] = by_unit[j, i]


def visible_given_hidden(const floating[:, ::1] Hs, const floating[:, ::1] W,
                         const floating[::1] b, const floating[::1] sigma,
                         floating[:, ::1] out, draw=None, int n_threads=1,
                         Py_ssize_t col0=0, bint u_space=False,
                         const Py_ssize_t[:, ::1] groups=None, lengths=None):
    """out = visible means given hidden states, in v-space; samples with the
    random numbers of ``draw`` if it is not None.

    ``sigma``: the Gaussian visibles' standard deviations, or empty for
    Bernoulli visibles. ``u_space``: leave Gaussian visibles in
    u = v / sigma. ``col0``: index of the first visible unit of ``W`` in the
    whole model. ``groups``: (n_groups, 2) [start, stop) columns of softmax
    groups among Bernoulli visibles. ``lengths``: each row's length D (a
    Replicated Softmax: the counts of D draws, or D times the softmax).
    """
    cdef Py_ssize_t m = Hs.shape[0], n_vis = W.shape[1]
    cdef int t
    cdef const floating *sig = NULL if sigma.shape[0] == 0 else &sigma[0]
    cdef Model M = model_of(W, &b[0], NULL, sig, BERNOULLI)
    cdef bint sample = draw is not None
    cdef uint64_t key = draw[0] if sample else 0
    cdef uint64_t stream = draw[1] if sample else 0
    if Hs.shape[1] != M.n_hid or b.shape[0] != n_vis or out.shape[0] != m \
            or out.shape[1] != n_vis or (sig != NULL and sigma.shape[0] != n_vis):
        raise ValueError("visible_given_hidden: Hs, W, b, sigma and out do not match")
    M.vis0 = col0
    if groups is not None and groups.shape[0]:
        check_groups(groups, n_vis, M.visible_unit, col0)
        M.groups, M.n_groups = &groups[0, 0], groups.shape[0]
    cdef const Py_ssize_t[:, ::1] whole = np.array([[0, n_vis]], dtype=np.intp)
    cdef const floating[::1] D
    if lengths is not None:
        if col0:
            raise ValueError("a Replicated Softmax's visible layer is not split")
        D = lengths
        set_lengths(&M, D, m, whole)
    if m == 0:
        return
    n_threads = effective_threads(n_threads, m, M.n_hid, n_vis)
    with nogil:
        for t in prange(n_threads, num_threads=n_threads, schedule='static', chunksize=1):
            down(&Hs[0, 0], M.n_hid, False, m, &M, &out[0, 0], NULL,
                 visible_draw(key, stream, sample), t, n_threads)
            if M.visible_unit == VISIBLE_GAUSSIAN and not u_space:
                scale_block(&out[0, 0], n_vis, m, bound(n_vis, n_threads, t),
                            bound(n_vis, n_threads, t + 1), sig, False)
        if M.n_groups:
            for t in prange(n_threads, num_threads=n_threads, schedule='static',
                            chunksize=1):
                softmax_groups_rows(&out[0, 0], n_vis, bound(m, n_threads, t),
                                    bound(m, n_threads, t + 1), &M, NULL,
                                    visible_draw(key, stream, sample))


def hidden_free_energy(U, const floating[:, ::1] W, const floating[::1] c,
                       floating[::1] out, int n_threads=1, int hidden_unit=BERNOULLI,
                       lengths=None):
    """out[i] = sum_j term(U[i] @ W[j] + c[j]), the hidden part of -F(v): the
    free-energy term of the unit type (``_units.pxd``), log(1 + exp(x)) for
    Bernoulli units. ``U``: an array or a sparse block's Columns.
    ``lengths``: each row's length D, whose hidden biases are D c (a
    Replicated Softmax)."""
    cdef Py_ssize_t m = out.shape[0], n_hid = W.shape[0], n_vis = W.shape[1]
    cdef Py_ssize_t i, j, lo, hi
    cdef int t
    cdef double acc
    cdef const floating[:, ::1] dense
    cdef bint sparse = isinstance(U, tuple)
    cdef const floating[::1] D
    cdef const floating *Dp = NULL
    check_hidden_unit(hidden_unit)
    if c.shape[0] != n_hid:
        raise ValueError("hidden_free_energy: W and c do not match")
    if lengths is not None:
        D = lengths
        if D.shape[0] != m:
            raise ValueError("hidden_free_energy: one length per row")
        if m:
            Dp = &D[0]
    if not sparse:
        dense = U
        if dense.shape[0] != m or dense.shape[1] != n_vis:
            raise ValueError("hidden_free_energy: U, W and out do not match")
    if m == 0:
        return
    n_threads = effective_threads(n_threads, m, n_hid, n_vis)
    cdef floating[:, ::1] act = np.empty((m, n_hid), dtype=np.asarray(W).dtype)
    if sparse:
        sparse_input(U, W, act, n_threads)
    with nogil:
        # Rows, not columns: each output is a sum over all hidden units.
        for t in prange(n_threads, num_threads=n_threads, schedule='static', chunksize=1):
            lo = bound(m, n_threads, t)
            hi = bound(m, n_threads, t + 1)
            if hi > lo:
                if not sparse:
                    gemm(False, True, hi - lo, n_hid, n_vis, 1, &dense[lo, 0], n_vis,
                         &W[0, 0], n_vis, 0, &act[lo, 0], n_hid)
                for i in range(lo, hi):
                    acc = 0
                    if Dp != NULL:
                        for j in range(n_hid):
                            act[i, j] = act[i, j] + (Dp[i] - 1) * c[j]
                    if hidden_unit == BERNOULLI:
                        for j in range(n_hid):
                            acc = acc + softplus(act[i, j] + c[j])
                    else:
                        for j in range(n_hid):
                            acc = acc + hidden_term(hidden_unit, act[i, j] + c[j])
                    out[i] = acc


def hidden_free_term(int hidden_unit, double x):
    """The free-energy term of one hidden unit of type ``hidden_unit`` at input ``x``."""
    check_hidden_unit(hidden_unit)
    return hidden_term(hidden_unit, x)
