# Included by _cd.pyx. Update rules shared by cd_step and the distributed
# slices: the weight update from the stacked gradient GEMM, bias sums.

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
