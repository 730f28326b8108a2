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
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdint cimport uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy

import numpy as np

from ._blas cimport gemm, gemv
from ._math cimport sigmoid, softplus, skdbn_softplusf
from ._parallel cimport bound, effective_threads
from ._random cimport (mix64, row_key, uniform_f, uniform_d, normal, hash32_halves,
                      unit_f, unit_d)


cdef inline floating draw_uniform(floating like, uint64_t rk, Py_ssize_t j) noexcept nogil:
    if floating is float:
        return uniform_f(rk, <unsigned int> j)
    else:
        return uniform_d(rk, <unsigned int> j)


# Examples per chunk of precomputed row keys in hidden_block_by_unit.
cdef enum:
    KEY_CHUNK = 256


cdef inline floating draw_uniform_halves(floating like, uint32_t lo, uint32_t hi,
                                         uint32_t j) noexcept nogil:
    if floating is float:
        return unit_f(hash32_halves(lo, hi, j))
    else:
        return unit_d(hash32_halves(lo, hi, j))


# --------------------------------------------------------------------------
# Products split by output columns, one block per thread, each followed by
# its element-wise work while the block is in cache. Splitting columns rather
# than rows means each thread packs only its share of W (measured at
# (100 x 784) @ (784 x 500) on 2 cores: 145 GFLOP/s against 128 for rows).
# ``act`` points at row 0, column 0 of a row-major matrix with ``ld`` columns;
# the random numbers of element (i, j) are keyed by (key, stream, i, j).
# --------------------------------------------------------------------------

cdef void hidden_block(floating *act, Py_ssize_t ld, Py_ssize_t rows,
                       Py_ssize_t j0, Py_ssize_t j1, const floating *c,
                       floating sign, floating *samples, bint sampled,
                       uint64_t key, uint64_t stream, Py_ssize_t col0) noexcept nogil:
    """act <- sign * sigmoid(act + c); samples <- Bernoulli(sigmoid(act + c)).

    ``sampled``: act <- sign * the binary sample instead (sampled statistics).
    Column j draws the random numbers of unit ``col0 + j``, so a model split
    by columns across processes draws what the whole model would.
    """
    cdef Py_ssize_t i, j
    cdef uint64_t rk
    cdef floating p, x
    cdef floating *row
    cdef floating *srow
    for i in range(rows):
        row = act + i * ld
        rk = row_key(key, stream, i)
        if sampled:
            for j in range(j0, j1):
                p = sigmoid(row[j] + c[j])
                x = draw_uniform(p, rk, j + col0) < p
                row[j] = sign * x
                if samples != NULL:
                    samples[i * ld + j] = x
        elif samples == NULL:
            for j in range(j0, j1):
                row[j] = sign * sigmoid(row[j] + c[j])
        else:
            srow = samples + i * ld
            for j in range(j0, j1):
                p = sigmoid(row[j] + c[j])
                row[j] = sign * p
                srow[j] = draw_uniform(p, rk, j + col0) < p


cdef double visible_block(floating *act, Py_ssize_t ld, Py_ssize_t rows,
                          Py_ssize_t j0, Py_ssize_t j1, const floating *b,
                          const floating *sigma, bint sample, const floating *data,
                          uint64_t key, uint64_t stream, Py_ssize_t col0) noexcept nogil:
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
    for i in range(rows):
        row = act + i * ld
        rk = row_key(key, stream, i)
        # One loop per case: a branch inside the loop stops gcc vectorising.
        if sigma == NULL and sample:
            for j in range(j0, j1):
                x = sigmoid(row[j] + b[j])
                row[j] = draw_uniform(x, rk, j + col0) < x
        elif sigma == NULL:
            for j in range(j0, j1):
                row[j] = sigmoid(row[j] + b[j])
        elif sample:
            for j in range(j0, j1):
                row[j] = (row[j] + b[j] / sigma[j]
                          + <floating> normal(rk, <unsigned int> (j + col0)))
        else:
            for j in range(j0, j1):
                row[j] = row[j] + b[j] / sigma[j]
        if data != NULL:
            drow = data + i * ld
            if sigma == NULL:
                for j in range(j0, j1):
                    d = drow[j] - row[j]
                    err += d * d
            else:
                for j in range(j0, j1):
                    d = (drow[j] - row[j]) * sigma[j]
                    err += d * d
    return err


cdef void hidden_block_by_unit(floating *act, Py_ssize_t ld, Py_ssize_t cols,
                               Py_ssize_t j0, Py_ssize_t j1, const floating *c,
                               floating sign, floating *samples, Py_ssize_t lds,
                               bint sampled, uint64_t key,
                               uint64_t stream) noexcept nogil:
    """:func:`hidden_block` for a hidden layer stored unit by unit.

    Row j of ``act`` (stride ``ld``) holds unit j for examples 0..cols-1;
    ``samples`` likewise with stride ``lds``. Units [j0, j1) are done, and
    each element draws the same random number as in :func:`hidden_block`.
    Examples go in chunks whose row keys are split into 32-bit halves first,
    so that the loop over examples vectorises.
    """
    cdef Py_ssize_t i, j, i0, n
    cdef uint64_t rk
    cdef floating p, x, cj
    cdef floating *row
    cdef floating *srow
    cdef uint32_t klo[KEY_CHUNK]
    cdef uint32_t khi[KEY_CHUNK]
    i0 = 0
    while i0 < cols:
        n = cols - i0
        if n > KEY_CHUNK:
            n = KEY_CHUNK
        for i in range(n):
            rk = row_key(key, stream, i0 + i)
            klo[i] = <uint32_t> rk
            khi[i] = <uint32_t> (rk >> 32)
        for j in range(j0, j1):
            row = act + j * ld + i0
            srow = samples + j * lds + i0 if samples != NULL else NULL
            cj = c[j]
            if sampled:
                for i in range(n):
                    p = sigmoid(row[i] + cj)
                    x = draw_uniform_halves(p, klo[i], khi[i], <uint32_t> j) < p
                    row[i] = sign * x
                    if srow != NULL:
                        srow[i] = x
            elif srow == NULL:
                for i in range(n):
                    row[i] = sign * sigmoid(row[i] + cj)
            else:
                for i in range(n):
                    p = sigmoid(row[i] + cj)
                    row[i] = sign * p
                    srow[i] = draw_uniform_halves(p, klo[i], khi[i], <uint32_t> j) < p
        i0 += n


cdef void scale_block(floating *a, Py_ssize_t ld, Py_ssize_t rows, Py_ssize_t j0,
                      Py_ssize_t j1, const floating *sigma, bint divide) noexcept nogil:
    """a[i, j] /= sigma[j] (or *=) on columns [j0, j1)."""
    cdef Py_ssize_t i, j
    for i in range(rows):
        for j in range(j0, j1):
            if divide:
                a[i * ld + j] = a[i * ld + j] / sigma[j]
            else:
                a[i * ld + j] = a[i * ld + j] * sigma[j]


cdef void hidden_part(const floating *U, const floating *W, const floating *c,
                      floating *out, floating sign, floating *samples,
                      bint sampled, Py_ssize_t m, Py_ssize_t n_hid, Py_ssize_t n_vis,
                      uint64_t key, uint64_t stream, Py_ssize_t col0, int part,
                      int n_parts) noexcept nogil:
    """Hidden columns of block ``part``: out = sign * sigmoid(U W^T + c)."""
    cdef Py_ssize_t lo = bound(n_hid, n_parts, part)
    cdef Py_ssize_t hi = bound(n_hid, n_parts, part + 1)
    if hi > lo:
        gemm(False, True, m, hi - lo, n_vis, 1, U, n_vis, W + lo * n_vis, n_vis,
             0, out + lo, n_hid)
        hidden_block(out, n_hid, m, lo, hi, c, sign, samples, sampled, key, stream, col0)


cdef double visible_part(const floating *Hs, Py_ssize_t ldh, bint by_unit,
                         const floating *W, const floating *b,
                         const floating *sigma, floating *out, bint sample,
                         const floating *data, Py_ssize_t m, Py_ssize_t n_hid,
                         Py_ssize_t n_vis, uint64_t key, uint64_t stream,
                         Py_ssize_t col0, int part, int n_parts) noexcept nogil:
    """Visible columns of block ``part``, in u-space; returns the squared error.

    ``Hs`` is (m, n_hid) with stride ``ldh``, or (n_hid, m) if ``by_unit``.
    """
    cdef Py_ssize_t lo = bound(n_vis, n_parts, part)
    cdef Py_ssize_t hi = bound(n_vis, n_parts, part + 1)
    if hi <= lo:
        return 0
    gemm(by_unit, False, m, hi - lo, n_hid, 1, Hs, ldh, W + lo, n_vis, 0,
         out + lo, n_vis)
    return visible_block(out, n_vis, m, lo, hi, b, sigma, sample, data, key, stream, col0)


cdef void hidden_by_unit_part(const floating *U, Py_ssize_t n_rows,
                              const floating *W, const floating *c, floating *out,
                              Py_ssize_t ld, floating sign, floating *samples,
                              Py_ssize_t lds, bint sampled, Py_ssize_t m, Py_ssize_t n_hid,
                              Py_ssize_t n_vis, uint64_t key, uint64_t stream,
                              int part, int n_parts) noexcept nogil:
    """Units of block ``part`` for the ``n_rows`` rows of U, stored by unit.

    out[j, i] = (U W^T)[i, j]: a block of W's rows times U^T, the faster
    operand order for OpenBLAS at CD's shapes (8 % at 100 x 784 x 250).
    With ``n_rows == m``: ``sign`` * sigmoid, and samples from stream
    ``stream``. With ``n_rows == 2m`` (PCD) the first m rows are the data
    (stream 0, sign 1, samples only for sampled statistics) and the last m
    the chain's visibles (``stream``, ``sign``, ``samples``): both hidden
    passes of PCD in one product, which packs W once instead of twice.
    """
    cdef Py_ssize_t lo = bound(n_hid, n_parts, part)
    cdef Py_ssize_t hi = bound(n_hid, n_parts, part + 1)
    if hi <= lo:
        return
    gemm(False, True, hi - lo, n_rows, n_vis, 1, W + lo * n_vis, n_vis, U, n_vis,
         0, out + lo * ld, ld)
    if n_rows == 2 * m:
        hidden_block_by_unit(out, ld, m, lo, hi, c, 1, NULL, lds, sampled, key, 0)
        hidden_block_by_unit(out + m, ld, m, lo, hi, c, sign, samples, lds, sampled,
                             key, stream)
    else:
        hidden_block_by_unit(out, ld, m, lo, hi, c, sign, samples, lds, sampled, key,
                             stream)


# --------------------------------------------------------------------------
# Conditionals, for transform / gibbs / reconstruct / free energy / AIS.
# --------------------------------------------------------------------------

def hidden_given_visible(const floating[:, ::1] U, const floating[:, ::1] W,
                         const floating[::1] c, floating[:, ::1] out,
                         floating[:, ::1] samples=None, uint64_t key=0,
                         uint64_t stream=0, int n_threads=1, Py_ssize_t col0=0):
    """out = sigmoid(U @ W.T + c); optionally ``samples`` ~ Bernoulli(out).

    ``U`` is v-space for Bernoulli visibles and ``v / sigma`` for Gaussian.
    ``col0``: index of the first hidden unit of ``W`` in the whole model
    (the random numbers follow it). Call with BLAS limited to one thread.
    """
    cdef Py_ssize_t m = U.shape[0], n_hid = W.shape[0], n_vis = W.shape[1]
    cdef int t
    cdef floating *s = NULL if samples is None else &samples[0, 0]
    if m == 0:
        return
    n_threads = effective_threads(n_threads, m, n_hid, n_vis)
    with nogil:
        for t in prange(n_threads, num_threads=n_threads, schedule='static', chunksize=1):
            hidden_part(&U[0, 0], &W[0, 0], &c[0], &out[0, 0], 1, s, False, m, n_hid,
                        n_vis, key, stream, col0, t, n_threads)


def visible_given_hidden(const floating[:, ::1] Hs, const floating[:, ::1] W,
                         const floating[::1] b, const floating[::1] sigma,
                         floating[:, ::1] out, bint sample=False, uint64_t key=0,
                         uint64_t stream=0, int n_threads=1, Py_ssize_t col0=0,
                         bint u_space=False):
    """out = visible mean (or sample) given hidden states, in v-space.

    ``u_space``: leave Gaussian visibles in u = v / sigma. ``col0``: index
    of the first visible unit of ``W`` in the whole model. Call with BLAS
    limited to one thread.
    """
    cdef Py_ssize_t m = Hs.shape[0], n_hid = W.shape[0], n_vis = W.shape[1]
    cdef int t
    cdef const floating *sig = NULL if sigma.shape[0] == 0 else &sigma[0]
    if m == 0:
        return
    n_threads = effective_threads(n_threads, m, n_hid, n_vis)
    with nogil:
        for t in prange(n_threads, num_threads=n_threads, schedule='static', chunksize=1):
            visible_part(&Hs[0, 0], n_hid, False, &W[0, 0], &b[0], sig, &out[0, 0],
                         sample, NULL,
                         m, n_hid, n_vis, key, stream, col0, t, n_threads)
            if sig != NULL and not u_space:
                scale_block(&out[0, 0], n_vis, m, bound(n_vis, n_threads, t),
                            bound(n_vis, n_threads, t + 1), sig, False)


def softplus_sum(const floating[:, ::1] U, const floating[:, ::1] W,
                 const floating[::1] c, floating[::1] out, int n_threads=1):
    """out[i] = sum_j log(1 + exp(U[i] @ W[j] + c[j])), the hidden part of -F(v)."""
    cdef Py_ssize_t m = U.shape[0], n_hid = W.shape[0], n_vis = W.shape[1]
    cdef Py_ssize_t i, j, lo, hi
    cdef int t
    cdef double acc
    if m == 0:
        return
    n_threads = effective_threads(n_threads, m, n_hid, n_vis)
    cdef floating[:, ::1] act = np.empty((m, n_hid), dtype=np.asarray(W).dtype)
    with nogil:
        # Rows, not columns: each output is a sum over all hidden units.
        for t in prange(n_threads, num_threads=n_threads, schedule='static', chunksize=1):
            lo = bound(m, n_threads, t)
            hi = bound(m, n_threads, t + 1)
            if hi > lo:
                gemm(False, True, hi - lo, n_hid, n_vis, 1, &U[lo, 0], n_vis,
                     &W[0, 0], n_vis, 0, &act[lo, 0], n_hid)
                for i in range(lo, hi):
                    acc = 0
                    for j in range(n_hid):
                        acc = acc + softplus(act[i, j] + c[j])
                    out[i] = acc


# --------------------------------------------------------------------------
# One CD-k / PCD step.
# --------------------------------------------------------------------------

cdef double gibbs_chain(const floating *W, Py_ssize_t n_hid, Py_ssize_t n_vis,
                        const floating *b, const floating *c, const floating *sig,
                        floating *v0, floating *h0, Py_ssize_t ldh, floating *ch,
                        Py_ssize_t ldc, Py_ssize_t m, int cd_k, bint persistent,
                        bint sample_visible, bint sampled, uint64_t key,
                        int n_threads) noexcept nogil:
    """Positive phase and k Gibbs steps of the negative phase for m rows.

    ``v0``: (2m, n_vis), the data on top. ``h0``: (n_hid, >= 2m) with stride
    ``ldh``, stored by unit; on return columns :m hold p0 and m:2m -pk.
    ``ch``: the hidden samples, (n_hid, >= m) with stride ``ldc``.
    Streams: hidden samples of step t use stream 2t, visible samples of step
    t stream 2t - 1. ``sampled``: the hidden statistics are binary samples
    instead of probabilities. Returns the squared error of the first
    reconstruction.
    """
    cdef int s, t
    cdef double err = 0
    cdef floating *v1 = v0 + m * n_vis
    # One thread team for all phases: the prange loops below share it and
    # meet at their implicit barriers instead of forking and joining.
    with parallel(num_threads=n_threads):
        if sig != NULL:
            for t in prange(n_threads, schedule='static', chunksize=1):
                scale_block(v0, n_vis, m, bound(n_vis, n_threads, t),
                            bound(n_vis, n_threads, t + 1), sig, True)
        # Positive phase: p0 = sigmoid(u0 W^T + c), sampled for CD. PCD's
        # chain, not the data, drives the negative phase, so its positive
        # phase waits to share the last step's product.
        if not persistent:
            for t in prange(n_threads, schedule='static', chunksize=1):
                hidden_by_unit_part(v0, m, W, c, h0, ldh, 1, ch, ldc, sampled, m,
                                    n_hid, n_vis, key, 0, t, n_threads)
        for s in range(1, cd_k + 1):
            for t in prange(n_threads, schedule='static', chunksize=1):
                err += visible_part(ch, ldc, True, W, b, sig, v1, sample_visible,
                                    v0 if s == 1 else NULL, m, n_hid, n_vis, key,
                                    2 * s - 1, 0, t, n_threads)
            # The last step stores -pk for the stacked gradient GEMM, and
            # samples only to advance a persistent chain.
            if s == cd_k and persistent:
                for t in prange(n_threads, schedule='static', chunksize=1):
                    hidden_by_unit_part(v0, 2 * m, W, c, h0, ldh, -1, ch, ldc,
                                        sampled, m, n_hid, n_vis, key, 2 * s, t,
                                        n_threads)
            else:
                for t in prange(n_threads, schedule='static', chunksize=1):
                    hidden_by_unit_part(v1, m, W, c, h0 + m, ldh,
                                        -1 if s == cd_k else 1,
                                        ch if s < cd_k else NULL, ldc, sampled, m,
                                        n_hid, n_vis, key, 2 * s, t, n_threads)
    return err


cdef void update_weight_rows(floating *W, floating *W_inc, floating *G,
                             const floating *hid, Py_ssize_t ldh, bint by_unit,
                             const floating *vis, Py_ssize_t j0, Py_ssize_t j1,
                             Py_ssize_t n_vis, Py_ssize_t m2, floating alpha,
                             floating momentum, floating decay, bint direct,
                             double *wg) noexcept nogil:
    """Update rows [j0, j1) of W from the stacked gradient hid^T vis.

    ``hid`` is (m2, n_hid) with stride ``ldh``, or (n_hid, m2) if ``by_unit``.

    ``direct`` (no momentum, no decay): W += alpha G in the GEMM itself.
    ``G`` not NULL (learned sigma): G is formed first so that
    ``wg[i] += sum_j W_ji G_ji`` sees the weights before the update.
    Otherwise the GEMM accumulates into W_inc = momentum W_inc + alpha G.
    """
    cdef Py_ssize_t rows = j1 - j0, i, j, k
    cdef floating *Wb = W + j0 * n_vis
    cdef floating *Ib = W_inc + j0 * n_vis
    cdef floating *Gb
    # Rows j0:j1 of the gradient need units j0:j1 of hid.
    cdef const floating *hb = hid + j0 * ldh if by_unit else hid + j0
    cdef bint tr = not by_unit
    if rows <= 0:
        return
    if direct:
        gemm(tr, False, rows, n_vis, m2, alpha, hb, ldh, vis, n_vis,
             1, Wb, n_vis)
    elif G != NULL:
        Gb = G + j0 * n_vis
        gemm(tr, False, rows, n_vis, m2, 1, hb, ldh, vis, n_vis,
             0, Gb, n_vis)
        for j in range(rows):
            for i in range(n_vis):
                k = j * n_vis + i
                wg[i] += Wb[k] * Gb[k]
                Ib[k] = momentum * Ib[k] + alpha * Gb[k] - decay * Wb[k]
                Wb[k] = Wb[k] + Ib[k]
    else:
        # Scale by the momentum here rather than through GEMM's beta:
        # OpenBLAS's beta path slows every later call when several threads
        # call it at once (measured: 100x on a 12 x 16 model, 2 threads).
        for k in range(rows * n_vis):
            Ib[k] = momentum * Ib[k]
        gemm(tr, False, rows, n_vis, m2, alpha, hb, ldh, vis, n_vis,
             1, Ib, n_vis)
        for k in range(rows * n_vis):
            Ib[k] = Ib[k] - decay * Wb[k]
            Wb[k] = Wb[k] + Ib[k]


cdef void signed_column_sums(const floating *a, Py_ssize_t ld, Py_ssize_t m,
                             Py_ssize_t j0, Py_ssize_t j1, double *out) noexcept nogil:
    """out[j] = sum(a[:m, j]) - sum(a[m:2m, j]) for columns [j0, j1), in double.

    A float32 sum of 2m terms loses digits the float64 model keeps; the
    biases' gradients are O(m (V + H)) work against the GEMMs' O(m V H), so
    summing them in double costs nothing measurable.
    """
    cdef Py_ssize_t i, j
    cdef const floating *row
    for j in range(j0, j1):
        out[j] = 0
    for i in range(2 * m):
        row = a + i * ld
        if i < m:
            for j in range(j0, j1):
                out[j] += row[j]
        else:
            for j in range(j0, j1):
                out[j] -= row[j]


# Partial sums per row in row_sums: independent lanes that vectorise, in an
# order fixed by the row length alone (never by the thread count).
cdef enum:
    LANES = 8


cdef inline double lanes_total(const double *acc) noexcept nogil:
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))


cdef void row_sums(const floating *a, Py_ssize_t ld, Py_ssize_t n, Py_ssize_t j0,
                   Py_ssize_t j1, double *out) noexcept nogil:
    """out[j] = sum(a[j, :n]) for rows [j0, j1), in double (see above).

    Element i goes to lane i % LANES, the tail (i >= n - n % LANES) to lane
    i - (n - n % LANES); :func:`apply_bias_gradient` sums in the same order.
    """
    cdef Py_ssize_t i, j, k, n_full = n - n % LANES
    cdef double acc[LANES]
    cdef const floating *row
    for j in range(j0, j1):
        row = a + j * ld
        for k in range(LANES):
            acc[k] = 0
        for i in range(n_full // LANES):
            for k in range(LANES):
                acc[k] += row[i * LANES + k]
        for i in range(n_full, n):
            acc[i - n_full] += row[i]
        out[j] = lanes_total(acc)


cdef inline void update_bias(floating *b, floating *b_inc, double g, double alpha,
                             double momentum) noexcept nogil:
    """b_inc <- momentum b_inc + alpha g; b <- b + b_inc.

    Computed in double and rounded once to the model's dtype, so that a
    float32 model follows its float64 twin to float32 precision (a float32
    alpha = lr / m alone is off by up to 6e-8 relative, at every step).
    """
    cdef double inc = momentum * b_inc[0] + alpha * g
    b_inc[0] = <floating> inc
    b[0] = <floating> (b[0] + inc)


def cd_step(floating[:, ::1] W, floating[::1] b_vis, floating[::1] b_hid,
            floating[:, ::1] W_inc, floating[::1] bv_inc, floating[::1] bh_inc,
            floating[::1] sigma, floating[:, ::1] vis, floating[:, ::1] hid,
            floating[:, ::1] chain, floating[::1] hid_mean, floating[:, ::1] grad,
            Py_ssize_t m, int cd_k=1, bint persistent=False,
            bint sample_visible=True, double learning_rate=0.1,
            double momentum=0.0, double weight_decay=0.0,
            double sparsity_target=0.1, double sparsity_cost=0.0,
            double sigma_learning_rate=0.0, double sigma_min=1e-3,
            bint sampled_statistics=False, uint64_t key=0, int n_threads=1):
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
                          n_threads)

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


def gemm_only_cd1(const floating[:, ::1] W, floating[:, ::1] vis,
                  floating[:, ::1] hid, floating[:, ::1] grad, Py_ssize_t m):
    """The five matrix products of a textbook CD-1 step and nothing else.

    ``v0 W^T``, ``h0 W``, ``v1 W^T``, ``h0^T v0`` and ``h1^T v1`` with the
    shapes of :func:`cd_step`, each one BLAS call (BLAS threads its own
    work): the ceiling of an implementation that does its products one by
    one. For benchmarks only.
    """
    cdef Py_ssize_t n_hid = W.shape[0], n_vis = W.shape[1]
    cdef floating *v0 = &vis[0, 0]
    cdef floating *v1 = &vis[m, 0]
    cdef floating *h0 = &hid[0, 0]
    cdef floating *h1 = &hid[m, 0]
    with nogil:
        gemm(False, True, m, n_hid, n_vis, 1, v0, n_vis, &W[0, 0], n_vis, 0, h0, n_hid)
        gemm(False, False, m, n_vis, n_hid, 1, h0, n_hid, &W[0, 0], n_vis, 0, v1, n_vis)
        gemm(False, True, m, n_hid, n_vis, 1, v1, n_vis, &W[0, 0], n_vis, 0, h1, n_hid)
        gemm(True, False, n_hid, n_vis, m, 1, h0, n_hid, v0, n_vis, 1, &grad[0, 0], n_vis)
        gemm(True, False, n_hid, n_vis, m, -1, h1, n_hid, v1, n_vis, 1, &grad[0, 0], n_vis)


cdef inline uint64_t batch_key_nogil(uint64_t seed, uint64_t k) noexcept nogil:
    # Same mix as _random.batch_key(seed, k, 0).
    return mix64(mix64(mix64(seed) ^ k) + 0)


# --------------------------------------------------------------------------
# Annealed importance sampling (Salakhutdinov & Murray 2008).
# --------------------------------------------------------------------------

cdef inline floating softplus_fast(floating x) noexcept nogil:
    if floating is float:
        return skdbn_softplusf(x)
    else:
        return softplus(x)


cdef void ais_hidden_block(floating *act, Py_ssize_t ld, Py_ssize_t rows,
                           Py_ssize_t j0, Py_ssize_t j1, const floating *c,
                           floating beta, floating beta_prev, floating *samples,
                           const floating *ones, floating *log_w_part,
                           uint64_t key) noexcept nogil:
    """log_w_part[i] = sum_j softplus(beta a_ij) - softplus(beta_prev a_ij),
    a = act + c; samples <- Bernoulli(sigmoid(beta a)) unless NULL.

    The element-wise loop has no reduction, so it vectorises; the row sums
    are then one GEMV over the block (``act`` is overwritten).
    """
    cdef Py_ssize_t i, j
    cdef uint64_t rk
    cdef floating a, p
    cdef floating *row
    cdef floating *srow
    for i in range(rows):
        row = act + i * ld
        if samples != NULL:
            srow = samples + i * ld
            rk = row_key(key, 0, i)
            for j in range(j0, j1):
                a = row[j] + c[j]
                p = sigmoid(beta * a)
                srow[j] = draw_uniform(p, rk, j) < p
                row[j] = softplus_fast(beta * a) - softplus_fast(beta_prev * a)
        else:
            for j in range(j0, j1):
                a = row[j] + c[j]
                row[j] = softplus_fast(beta * a) - softplus_fast(beta_prev * a)
    gemv(rows, j1 - j0, 1, act + j0, ld, ones, 0, log_w_part)


cdef void ais_visible_block(floating *act, Py_ssize_t ld, Py_ssize_t rows,
                            Py_ssize_t j0, Py_ssize_t j1, const floating *b,
                            const floating *b_base, const floating *b_diff,
                            const floating *sigma, floating beta,
                            floating *dot_part, uint64_t key) noexcept nogil:
    """act (= beta h W) <- visible samples at inverse temperature beta.

    Bernoulli: sigmoid(act + (1 - beta) b_base + beta b), and
    dot_part[i] = v_i . (b - b_base) over the block, for the next weight.
    Gaussian (u-space, base model sharing b and sigma): act + b / sigma + noise.
    """
    cdef Py_ssize_t i, j
    cdef uint64_t rk
    cdef floating x
    cdef floating *row
    for i in range(rows):
        row = act + i * ld
        rk = row_key(key, 1, i)
        if sigma == NULL:
            for j in range(j0, j1):
                x = sigmoid(row[j] + (1 - beta) * b_base[j] + beta * b[j])
                row[j] = draw_uniform(x, rk, j) < x
        else:
            for j in range(j0, j1):
                row[j] = row[j] + b[j] / sigma[j] + <floating> normal(rk, <unsigned int> j)
    if sigma == NULL:
        gemv(rows, j1 - j0, 1, act + j0, ld, b_diff + j0, 0, dot_part)


def ais_run(const floating[:, ::1] W, const floating[::1] b, const floating[::1] c,
            const floating[::1] b_base, const floating[::1] sigma,
            const double[::1] betas, double[::1] log_w, uint64_t seed,
            int n_threads=1, const floating[:, ::1] v_init=None):
    """Run AIS chains from the base model to the RBM; returns log weights.

    Each temperature costs one product ``v W^T`` (serving both the importance
    weight and the hidden sample) and one product ``h W`` (the visible
    sample). Gaussian chains run in u = v / sigma, with a base model that
    shares the RBM's visible biases and sigma. Call with BLAS limited to one
    thread.

    Parameters
    ----------
    W, b, c : arrays
        The RBM (components_, visible and hidden biases).
    b_base : array of shape (n_visible,)
        Visible biases of the base-rate model (Bernoulli; ignored otherwise).
    sigma : array of shape (n_visible,) or (0,)
        Visible standard deviations (Gaussian) or empty (Bernoulli).
    betas : array of shape (K + 1,)
        Inverse temperatures, increasing from 0 to 1.
    log_w : array of shape (n_runs,), output
        Log importance weights, ``log Z / Z_base`` estimates.
    seed : int
        Seed of the counter-based generator.
    v_init : array of shape (n_runs, n_visible), default=None
        Start of the chains (Bernoulli) instead of a sample of the base
        model: reverse AIS runs from data with ``betas`` decreasing.
    """
    cdef Py_ssize_t n_runs = log_w.shape[0], n_hid = W.shape[0], n_vis = W.shape[1]
    cdef Py_ssize_t K = betas.shape[0] - 1, k, r, lo, hi
    cdef int t, nt
    cdef const floating *sig = NULL if sigma.shape[0] == 0 else &sigma[0]
    cdef floating beta, beta_prev
    if K < 1 or n_runs == 0:
        raise ValueError("AIS needs at least two temperatures and one run")
    if v_init is not None and (v_init.shape[0] != n_runs or v_init.shape[1] != n_vis
                               or sigma.shape[0] != 0):
        raise ValueError("v_init must be (n_runs, n_visible), for Bernoulli visibles")
    dtype = np.asarray(W).dtype
    nt = effective_threads(n_threads, n_runs, n_hid, n_vis)
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

    with nogil:
        for r in range(n_runs):
            log_w[r] = 0
        if v_init is None:
            # v_1 ~ base model: the visible block on a zero input at beta = 0.
            for t in prange(nt, num_threads=nt, schedule='static', chunksize=1):
                ais_visible_block(v0, n_vis, n_runs, bound(n_vis, nt, t),
                                  bound(n_vis, nt, t + 1), &b[0], &b_base[0],
                                  &b_diff[0], sig, 0, &dots[t, 0],
                                  batch_key_nogil(seed, 0))
        else:
            memcpy(v0, &v_init[0, 0], n_runs * n_vis * sizeof(floating))
            gemv(n_runs, n_vis, 1, v0, n_vis, &b_diff[0], 0, &dots[0, 0])
        with parallel(num_threads=nt):
            for k in range(1, K + 1):
                beta = betas[k]
                beta_prev = betas[k - 1]
                # log w += log p*_k(v) - log p*_{k-1}(v); then h ~ p_k(h | v).
                for t in prange(nt, schedule='static', chunksize=1):
                    lo = bound(n_hid, nt, t)
                    hi = bound(n_hid, nt, t + 1)
                    if hi > lo:
                        gemm(False, True, n_runs, hi - lo, n_vis, 1, v0, n_vis,
                             &W[lo, 0], n_vis, 0, a0 + lo, n_hid)
                        ais_hidden_block(a0, n_hid, n_runs, lo, hi, &c[0], beta,
                                         beta_prev, h0 if k < K else NULL,
                                         &ones[0], &part[t, 0],
                                         batch_key_nogil(seed, k))
                for r in prange(n_runs, schedule='static'):
                    for t in range(nt):
                        log_w[r] += part[t, r] + (beta - beta_prev) * dots[t, r]
                if k < K:
                    # v ~ p_k(v | h): the product is scaled by beta.
                    for t in prange(nt, schedule='static', chunksize=1):
                        lo = bound(n_vis, nt, t)
                        hi = bound(n_vis, nt, t + 1)
                        if hi > lo:
                            gemm(False, False, n_runs, hi - lo, n_hid, beta, h0,
                                 n_hid, &W[0, lo], n_vis, 0, v0 + lo, n_vis)
                            ais_visible_block(v0, n_vis, n_runs, lo, hi, &b[0],
                                              &b_base[0], &b_diff[0], sig, beta,
                                              &dots[t, 0], batch_key_nogil(seed, k))
    return np.asarray(log_w)


def gemm_only_ais(const floating[:, ::1] W, floating[:, ::1] v, floating[:, ::1] h,
                  Py_ssize_t n_temperatures):
    """The two products per temperature of :func:`ais_run`, and nothing else:
    the GEMM ceiling of AIS (BLAS threads its own work). For benchmarks."""
    cdef Py_ssize_t m = v.shape[0], n_hid = W.shape[0], n_vis = W.shape[1], k
    with nogil:
        for k in range(n_temperatures):
            gemm(False, True, m, n_hid, n_vis, 1, &v[0, 0], n_vis, &W[0, 0], n_vis,
                 0, &h[0, 0], n_hid)
            gemm(False, False, m, n_vis, n_hid, 1, &h[0, 0], n_hid, &W[0, 0], n_vis,
                 0, &v[0, 0], n_vis)


# --------------------------------------------------------------------------
# Delta rule, for the up-down fine-tuning of a DBN's untied weights.
# --------------------------------------------------------------------------

def add_outer(floating[:, ::1] W, const floating[:, ::1] A,
              const floating[:, ::1] B, double alpha, int n_threads=1):
    """``W += alpha * A.T @ B``, rows of ``W`` split over the threads.

    ``A`` is (m, n_out), ``B`` is (m, n_in) and ``W`` is (n_out, n_in). Call
    with BLAS limited to one thread.
    """
    cdef Py_ssize_t m = A.shape[0], n_out = A.shape[1], n_in = B.shape[1]
    cdef Py_ssize_t lo, hi
    cdef int t
    cdef floating a = alpha
    if B.shape[0] != m or W.shape[0] != n_out or W.shape[1] != n_in:
        raise ValueError("add_outer: W, A and B have inconsistent shapes")
    if m == 0:
        return
    n_threads = effective_threads(n_threads, m, n_out, n_in)
    with nogil:
        for t in prange(n_threads, num_threads=n_threads, schedule='static', chunksize=1):
            lo = bound(n_out, n_threads, t)
            hi = bound(n_out, n_threads, t + 1)
            if hi > lo:
                gemm(True, False, hi - lo, n_in, m, a, &A[0, 0] + lo, n_out,
                     &B[0, 0], n_in, 1, &W[lo, 0], n_in)



# --------------------------------------------------------------------------
# Pieces of cd_step for a model split across processes (skdbn.distributed):
# the same products, element-wise work and update rules on column slices.
# --------------------------------------------------------------------------

def hidden_from_input(floating[:, ::1] act, const floating[::1] c,
                      floating[:, ::1] samples=None, bint sampled=False,
                      floating sign=1, uint64_t key=0, uint64_t stream=0,
                      Py_ssize_t col0=0):
    """act <- sign * sigmoid(act + c) (or the sample, ``sampled``), in place.

    For hidden inputs summed from partial products of several processes.
    """
    cdef Py_ssize_t n = act.shape[1]
    cdef floating *s = NULL if samples is None else &samples[0, 0]
    if act.shape[0] == 0:
        return
    with nogil:
        hidden_block(&act[0, 0], n, act.shape[0], 0, n, &c[0], sign, s, sampled,
                     key, stream, col0)


def input_product(const floating[:, ::1] U, const floating[:, ::1] W,
                  floating[:, ::1] out, int n_threads=1):
    """out = U @ W.T, output columns split over the threads."""
    cdef Py_ssize_t m = U.shape[0], n_hid = W.shape[0], n_vis = W.shape[1]
    cdef Py_ssize_t lo, hi
    cdef int t
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
    """cd_step's weight update from the stacked statistics ``hid[:2m]``
    (negative half negated) and ``vis[:2m]``, for any block of W."""
    cdef Py_ssize_t n_hid = W.shape[0], n_vis = W.shape[1], lo, hi
    cdef int t
    cdef floating alpha = learning_rate / m
    cdef floating mom = momentum
    cdef floating decay = learning_rate * weight_decay
    cdef bint direct = mom == 0 and decay == 0
    if hid.shape[1] != n_hid or vis.shape[1] != n_vis or hid.shape[0] < 2 * m \
            or vis.shape[0] < 2 * m:
        raise ValueError("apply_gradient: W, hid and vis have inconsistent shapes")
    if n_hid == 0 or n_vis == 0:
        return
    n_threads = effective_threads(n_threads, 2 * m, n_hid, n_vis)
    with nogil:
        for t in prange(n_threads, num_threads=n_threads, schedule='static', chunksize=1):
            lo = bound(n_hid, n_threads, t)
            hi = bound(n_hid, n_threads, t + 1)
            update_weight_rows(&W[0, 0], &W_inc[0, 0], NULL, &hid[0, 0], n_hid, False,
                               &vis[0, 0], lo, hi, n_vis, 2 * m, alpha, mom, decay,
                               direct, NULL)


def apply_bias_gradient(floating[::1] b, floating[::1] b_inc,
                        const floating[:, ::1] stacked, Py_ssize_t m,
                        bint negate_second_half, const floating[::1] sigma,
                        double learning_rate, double momentum):
    """cd_step's bias update: b_inc = momentum b_inc + lr/m * sum of the
    signed rows of ``stacked[:2m]`` (divided by sigma for Gaussian units)."""
    cdef Py_ssize_t n = b.shape[0], i, j, k, n_full = 2 * m - (2 * m) % LANES
    cdef double[::1] g = np.zeros(n)
    cdef double[:, ::1] lanes = np.zeros((n, LANES))
    if stacked.shape[1] != n or stacked.shape[0] < 2 * m:
        raise ValueError("apply_bias_gradient: b and stacked have inconsistent shapes")
    if n == 0:
        return
    with nogil:
        if negate_second_half:
            signed_column_sums(&stacked[0, 0], n, m, 0, n, &g[0])
        else:
            # The hidden units' sums of cd_step (row_sums), lane by lane.
            for i in range(2 * m):
                k = i % LANES if i < n_full else i - n_full
                for j in range(n):
                    lanes[j, k] += stacked[i, j]
            for j in range(n):
                g[j] = lanes_total(&lanes[j, 0])
        for i in range(n):
            update_bias(&b[i], &b_inc[i],
                        g[i] / sigma[i] if sigma.shape[0] > 0 else g[i],
                        learning_rate / m, momentum)
