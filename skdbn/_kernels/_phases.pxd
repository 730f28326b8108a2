# Phases of CD and of inference: the up pass (hidden given visible), the down
# pass (visible given hidden), and the gradient's statistics and updates.
# Each is one thread's share: ``part`` of ``n_parts`` static blocks of its
# output, a product followed by the unit math of _blocks.pxd on the block
# while it is in cache. Splitting output columns rather than rows means each
# thread packs only its share of W. Drivers compose the phases inside one
# thread team (``with parallel`` + ``prange(n_parts)``); call them with BLAS
# limited to one thread.
from cython cimport floating

from skdbn._kernels._blas cimport gemm
from skdbn._kernels._blocks cimport (hidden_block, hidden_block_by_unit, visible_block)
from skdbn._kernels._csr cimport scatter_gradient
from skdbn._kernels._model cimport Draw, Model, Rule, Stats
from skdbn._kernels._parallel cimport bound


cdef inline void up_rows(const floating *U, Py_ssize_t m, const Model *M, floating *out,
                         Draw d, int part, int n_parts) noexcept nogil:
    """Hidden units of block ``part`` for the m rows of U, stored row by row:
    out (m, n_hid) = d.sign * mean(U W^T + c), with the draws of ``d``."""
    cdef Py_ssize_t lo = bound(M.n_hid, n_parts, part)
    cdef Py_ssize_t hi = bound(M.n_hid, n_parts, part + 1)
    if hi > lo:
        gemm(False, True, m, hi - lo, M.n_vis, 1, U, M.n_vis,
             <const floating *> M.W + lo * M.n_vis, M.n_vis, 0, out + lo, M.n_hid)
        hidden_block(out, M.n_hid, m, lo, hi, M, &d)


cdef inline void up_by_unit(const floating *U, Py_ssize_t n_rows, Py_ssize_t m,
                            const Model *M, floating *out, Py_ssize_t ld,
                            Draw d, int part, int n_parts) noexcept nogil:
    """Hidden units of block ``part`` for the ``n_rows`` rows of U, stored by
    unit: out[j, i] = (U W^T)[i, j], then the unit math.

    A block of W's rows times U^T is the faster operand order for OpenBLAS
    at CD's shapes. With ``n_rows == m``: as :func:`up_rows` with ``d``.
    With ``n_rows == 2m`` (PCD) the first m rows are the data (stream 0,
    sign 1, no draws but for sampled statistics) and the last m the chain's
    visibles (``d``): both hidden passes of PCD in one product, which packs
    W once instead of twice.
    """
    cdef Py_ssize_t lo = bound(M.n_hid, n_parts, part)
    cdef Py_ssize_t hi = bound(M.n_hid, n_parts, part + 1)
    cdef Draw data_draw
    if hi <= lo:
        return
    gemm(False, True, hi - lo, n_rows, M.n_vis, 1, <const floating *> M.W + lo * M.n_vis,
         M.n_vis, U, M.n_vis, 0, out + lo * ld, ld)
    if n_rows == 2 * m:
        data_draw = d
        data_draw.stream = 0
        data_draw.sign = 1
        data_draw.samples = NULL
        hidden_block_by_unit(out, ld, m, lo, hi, M, &data_draw)
        hidden_block_by_unit(out + m, ld, m, lo, hi, M, &d)
    else:
        hidden_block_by_unit(out, ld, m, lo, hi, M, &d)


cdef inline double down(const floating *Hs, Py_ssize_t ldh, bint by_unit, Py_ssize_t m,
                        const Model *M, floating *out, const floating *data,
                        Draw d, int part, int n_parts) noexcept nogil:
    """Visible columns of block ``part``: out (m, n_vis) <- the visible states
    given the hidden ones, in u-space; returns the squared error against
    ``data`` (if not NULL).

    ``Hs`` is (m, n_hid) with stride ``ldh``, or (n_hid, m) if ``by_unit``.
    Columns of softmax groups only get their bias: a group may straddle
    blocks, so the driver finishes them (softmax_groups_rows) after a barrier.
    """
    cdef Py_ssize_t lo = bound(M.n_vis, n_parts, part)
    cdef Py_ssize_t hi = bound(M.n_vis, n_parts, part + 1)
    cdef Py_ssize_t a, g, g0, g1, i, j
    cdef const floating *b = <const floating *> M.b
    cdef double err = 0
    if hi <= lo:
        return 0
    gemm(by_unit, False, m, hi - lo, M.n_hid, 1, Hs, ldh, <const floating *> M.W + lo,
         M.n_vis, 0, out + lo, M.n_vis)
    if M.n_groups == 0:
        return visible_block(out, M.n_vis, m, lo, hi, M, &d, data)
    a = lo
    for g in range(M.n_groups):
        g0 = max(M.groups[2 * g], lo)
        g1 = min(M.groups[2 * g + 1], hi)
        if g1 <= g0:
            continue
        if a < g0:
            err += visible_block(out, M.n_vis, m, a, g0, M, &d, data)
        for i in range(m):
            for j in range(g0, g1):
                out[i * M.n_vis + j] = out[i * M.n_vis + j] + b[j]
        a = g1
    if a < hi:
        err += visible_block(out, M.n_vis, m, a, hi, M, &d, data)
    return err


# --------------------------------------------------------------------------
# Statistics and updates.
# --------------------------------------------------------------------------

cdef inline void update_weight_rows(floating *W, floating *W_inc, floating *G,
                                    const Stats *s, Py_ssize_t j0, Py_ssize_t j1,
                                    Py_ssize_t n_vis, const Rule *r,
                                    double *wg) noexcept nogil:
    """Update rows [j0, j1) of W from the stacked gradient hid^T vis.

    ``r.direct`` (no momentum, no decay): W += alpha G in the GEMM itself.
    ``G`` not NULL (learned sigma; dense statistics only): G is formed first
    so that ``wg[i] += sum_j W_ji G_ji`` sees the weights before the update.
    Otherwise the GEMM accumulates into W_inc = momentum W_inc + alpha G.
    A half of the statistics given as Columns (s.pos, s.neg) is added by
    :func:`_csr.scatter_gradient` instead of the GEMM.
    """
    cdef Py_ssize_t rows = j1 - j0, i, j, k
    cdef floating *Wb = W + j0 * n_vis
    cdef floating *Ib = W_inc + j0 * n_vis
    cdef floating *Gb
    cdef floating alpha = <floating> r.alpha
    cdef floating momentum = <floating> r.momentum
    cdef floating decay = <floating> r.decay
    if rows <= 0:
        return
    if r.direct:
        add_gradient(W, s, j0, j1, n_vis, alpha, True)
    elif G != NULL:
        Gb = G + j0 * n_vis
        add_gradient(G, s, j0, j1, n_vis, 1, False)
        for j in range(rows):
            for i in range(n_vis):
                k = j * n_vis + i
                wg[i] += Wb[k] * Gb[k]
                Ib[k] = momentum * Ib[k] + alpha * Gb[k] - decay * Wb[k]
                Wb[k] = Wb[k] + Ib[k]
    else:
        # Scale by the momentum here rather than through GEMM's beta:
        # OpenBLAS's beta path slows every later call when several threads
        # call it at once.
        for k in range(rows * n_vis):
            Ib[k] = momentum * Ib[k]
        add_gradient(W_inc, s, j0, j1, n_vis, alpha, True)
        for k in range(rows * n_vis):
            Ib[k] = Ib[k] - decay * Wb[k]
            Wb[k] = Wb[k] + Ib[k]


cdef inline void add_gradient(floating *T, const Stats *s, Py_ssize_t j0, Py_ssize_t j1,
                              Py_ssize_t n_vis, floating alpha, bint accumulate) noexcept nogil:
    """Rows [j0, j1) of T += alpha * hid^T vis, or T = alpha * hid^T vis
    without ``accumulate`` (dense statistics only)."""
    cdef Py_ssize_t m = s.m2 // 2, r0, r1
    cdef const floating *hid = <const floating *> s.hid
    cdef const floating *vis = <const floating *> s.vis
    # Rows j0:j1 of the gradient need units j0:j1 of hid.
    cdef const floating *hb = hid + j0 * s.ldh if s.by_unit else hid + j0
    cdef Py_ssize_t step = 1 if s.by_unit else s.ldh
    if not accumulate:
        gemm(not s.by_unit, False, j1 - j0, n_vis, s.m2, alpha, hb, s.ldh, vis, n_vis, 0,
             T + j0 * n_vis, n_vis)
        return
    if s.both != NULL:
        scatter_gradient(T, n_vis, hid, s.ldh, s.both, alpha, j0, j1)
        return
    # The dense rows [r0, r1) of the stacked minibatch in one GEMM.
    r0 = m if s.pos != NULL else 0
    r1 = m if s.neg != NULL else s.m2
    if r1 > r0:
        gemm(not s.by_unit, False, j1 - j0, n_vis, r1 - r0, alpha, hb + r0 * step, s.ldh,
             vis + r0 * n_vis, n_vis, 1, T + j0 * n_vis, n_vis)
    if s.pos != NULL:
        scatter_gradient(T, n_vis, hid, s.ldh, s.pos, alpha, j0, j1)
    if s.neg != NULL:
        scatter_gradient(T, n_vis, hid + m, s.ldh, s.neg, alpha, j0, j1)


cdef inline void signed_column_sums(const floating *a, Py_ssize_t ld, Py_ssize_t m,
                                    Py_ssize_t j0, Py_ssize_t j1,
                                    double *out) noexcept nogil:
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


cdef inline void row_sums(const floating *a, Py_ssize_t ld, Py_ssize_t n, Py_ssize_t j0,
                          Py_ssize_t j1, double *out) noexcept nogil:
    """out[j] = sum(a[j, :n]) for rows [j0, j1), in double (see above).

    Element i goes to lane i % LANES, the tail (i >= n - n % LANES) to lane
    i - (n - n % LANES); the distributed bias update sums in the same order.
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


cdef inline void length_weighted_sums(const floating *a, Py_ssize_t ld, Py_ssize_t m,
                                      const floating *lengths, Py_ssize_t j0, Py_ssize_t j1,
                                      double *out) noexcept nogil:
    """out[j] = sum over the 2m stacked columns i of a[j, i] D[i % m], in
    double: the hidden bias gradient of a Replicated Softmax, whose bias
    enters an example of length D as D c."""
    cdef Py_ssize_t i, j
    cdef double acc
    cdef const floating *row
    for j in range(j0, j1):
        row = a + j * ld
        acc = 0
        for i in range(m):
            acc += (<double> row[i] + row[m + i]) * lengths[i]
        out[j] = acc


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


cdef inline void sparsity_step(floating *hid_mean, floating *g, Py_ssize_t n,
                               Py_ssize_t m, double target, double cost) noexcept nogil:
    """The sparsity penalty (Hinton's practical guide, section 11) of n
    hidden units: on entry g[j] is the sum over the m rows of the minibatch
    of p0[j]; the running mean q <- 0.9 q + 0.1 mean(p0) (``hid_mean``), and
    on return g[j] = cost (q[j] - target), the amount the driver subtracts
    from each positive statistic of unit j (so it reaches the weights and
    the hidden bias through the same products)."""
    cdef Py_ssize_t j
    for j in range(n):
        hid_mean[j] = 0.9 * hid_mean[j] + 0.1 * g[j] / m
        g[j] = cost * (hid_mean[j] - target)


# Learned sigma of Gaussian visibles (report section 1.4.3.2), in u-space:
# dlogp/dsigma_i = [(u0-b/s)^2 - (uk-b/s)^2 - sum_j W_ji G_ji] / sigma_i
# (the W G term is the data-minus-model u_i (hW)_i of the report).
cdef inline void sigma_statistics(const floating *vis, Py_ssize_t n_vis, Py_ssize_t m,
                                  const floating *b, const floating *sigma,
                                  bint sample_visible, double *s_data) noexcept nogil:
    """s_data[i] += sum over the m rows of (u0 - b/s)^2 - (uk - b/s)^2, the
    data in rows :m of the stacked visibles and the chain's in m:2m."""
    cdef Py_ssize_t i, j
    cdef double mu, d0, d1
    for i in range(m):
        for j in range(n_vis):
            mu = b[j] / sigma[j]
            d0 = vis[i * n_vis + j] - mu
            d1 = vis[(m + i) * n_vis + j] - mu
            s_data[j] += d0 * d0 - d1 * d1
    if not sample_visible:
        # Mean-field uk: E[(uk - b/s)^2 | h] = (E[uk] - b/s)^2 + 1 in
        # u-space; without the +1 sigma would grow without bound.
        for j in range(n_vis):
            s_data[j] -= m


cdef inline void update_sigma(floating *sigma, const double *s_data, const double *wg,
                              int n_parts, Py_ssize_t n_vis, Py_ssize_t m, double rate,
                              double sigma_min) noexcept nogil:
    """sigma += rate * dlogp/dsigma, floored at sigma_min; ``wg`` holds
    n_parts rows of partial sums of W G (update_weight_rows)."""
    cdef Py_ssize_t i
    cdef int t
    cdef double g
    for i in range(n_vis):
        g = s_data[i]
        for t in range(n_parts):
            g = g - wg[t * n_vis + i]
        g = g / (sigma[i] * m)
        sigma[i] = max(<floating> (sigma[i] + rate * g), <floating> sigma_min)

