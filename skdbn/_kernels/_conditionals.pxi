# Included by _cd.pyx. Conditionals of one layer given the other: a product
# split by output columns, then the unit math of _units.pxi on each block.

cdef void hidden_part(const floating *U, const floating *W, const floating *c,
                      floating *out, floating sign, floating *samples,
                      bint sampled, Py_ssize_t m, Py_ssize_t n_hid, Py_ssize_t n_vis,
                      uint64_t key, uint64_t stream, Py_ssize_t col0, int part,
                      int n_parts, int unit) noexcept nogil:
    """Hidden columns of block ``part``: out = sign * mean(U W^T + c)."""
    cdef Py_ssize_t lo = bound(n_hid, n_parts, part)
    cdef Py_ssize_t hi = bound(n_hid, n_parts, part + 1)
    if hi > lo:
        gemm(False, True, m, hi - lo, n_vis, 1, U, n_vis, W + lo * n_vis, n_vis,
             0, out + lo, n_hid)
        hidden_block(out, n_hid, m, lo, hi, c, sign, samples, sampled, key, stream, col0,
                     unit)


cdef double visible_part(const floating *Hs, Py_ssize_t ldh, bint by_unit,
                         const floating *W, const floating *b,
                         const floating *sigma, floating *out, bint sample,
                         const floating *data, Py_ssize_t m, Py_ssize_t n_hid,
                         Py_ssize_t n_vis, uint64_t key, uint64_t stream,
                         Py_ssize_t col0, int part, int n_parts,
                         const Py_ssize_t *groups, Py_ssize_t n_groups) noexcept nogil:
    """Visible columns of block ``part``, in u-space; returns the squared error.

    ``Hs`` is (m, n_hid) with stride ``ldh``, or (n_hid, m) if ``by_unit``.
    Columns of softmax ``groups`` only get their bias: a group may straddle
    blocks, so :func:`softmax_groups_rows` finishes them after a barrier.
    """
    cdef Py_ssize_t lo = bound(n_vis, n_parts, part)
    cdef Py_ssize_t hi = bound(n_vis, n_parts, part + 1)
    cdef Py_ssize_t a, g, g0, g1, i, j
    cdef double err = 0
    if hi <= lo:
        return 0
    gemm(by_unit, False, m, hi - lo, n_hid, 1, Hs, ldh, W + lo, n_vis, 0,
         out + lo, n_vis)
    if n_groups == 0:
        return visible_block(out, n_vis, m, lo, hi, b, sigma, sample, data, key, stream,
                             col0)
    a = lo
    for g in range(n_groups):
        g0 = max(groups[2 * g], lo)
        g1 = min(groups[2 * g + 1], hi)
        if g1 <= g0:
            continue
        if a < g0:
            err += visible_block(out, n_vis, m, a, g0, b, sigma, sample, data, key,
                                 stream, col0)
        for i in range(m):
            for j in range(g0, g1):
                out[i * n_vis + j] = out[i * n_vis + j] + b[j]
        a = g1
    if a < hi:
        err += visible_block(out, n_vis, m, a, hi, b, sigma, sample, data, key, stream,
                             col0)
    return err


cdef void hidden_by_unit_part(const floating *U, Py_ssize_t n_rows,
                              const floating *W, const floating *c, floating *out,
                              Py_ssize_t ld, floating sign, floating *samples,
                              Py_ssize_t lds, bint sampled, Py_ssize_t m, Py_ssize_t n_hid,
                              Py_ssize_t n_vis, uint64_t key, uint64_t stream,
                              int part, int n_parts, int unit) noexcept nogil:
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
        hidden_block_by_unit(out, ld, m, lo, hi, c, 1, NULL, lds, sampled, key, 0, unit)
        hidden_block_by_unit(out + m, ld, m, lo, hi, c, sign, samples, lds, sampled,
                             key, stream, unit)
    else:
        hidden_block_by_unit(out, ld, m, lo, hi, c, sign, samples, lds, sampled, key,
                             stream, unit)


# --------------------------------------------------------------------------
# Conditionals, for transform / gibbs / reconstruct / free energy / AIS.
# --------------------------------------------------------------------------

def hidden_given_visible(const floating[:, ::1] U, const floating[:, ::1] W,
                         const floating[::1] c, floating[:, ::1] out,
                         floating[:, ::1] samples=None, uint64_t key=0,
                         uint64_t stream=0, int n_threads=1, Py_ssize_t col0=0,
                         int hidden_unit=BERNOULLI):
    """out = E[h | U] (sigmoid(U @ W.T + c) for Bernoulli units); optionally
    ``samples`` ~ p(h | U). ``hidden_unit``: a code of ``UNIT_CODES``.

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
                        n_vis, key, stream, col0, t, n_threads, hidden_unit)


def visible_given_hidden(const floating[:, ::1] Hs, const floating[:, ::1] W,
                         const floating[::1] b, const floating[::1] sigma,
                         floating[:, ::1] out, bint sample=False, uint64_t key=0,
                         uint64_t stream=0, int n_threads=1, Py_ssize_t col0=0,
                         bint u_space=False, const Py_ssize_t[:, ::1] groups=None):
    """out = visible mean (or sample) given hidden states, in v-space.

    ``u_space``: leave Gaussian visibles in u = v / sigma. ``col0``: index
    of the first visible unit of ``W`` in the whole model. ``groups``:
    (n_groups, 2) [start, stop) columns of softmax groups among Bernoulli
    visibles. Call with BLAS limited to one thread.
    """
    cdef Py_ssize_t m = Hs.shape[0], n_hid = W.shape[0], n_vis = W.shape[1]
    cdef int t
    cdef const floating *sig = NULL if sigma.shape[0] == 0 else &sigma[0]
    cdef Py_ssize_t n_groups = 0 if groups is None else groups.shape[0]
    cdef const Py_ssize_t *gp = NULL
    if n_groups:
        check_groups(groups, n_vis, sigma.shape[0], col0)
        gp = &groups[0, 0]
    if m == 0:
        return
    n_threads = effective_threads(n_threads, m, n_hid, n_vis)
    with nogil:
        for t in prange(n_threads, num_threads=n_threads, schedule='static', chunksize=1):
            visible_part(&Hs[0, 0], n_hid, False, &W[0, 0], &b[0], sig, &out[0, 0],
                         sample, NULL,
                         m, n_hid, n_vis, key, stream, col0, t, n_threads, gp, n_groups)
            if sig != NULL and not u_space:
                scale_block(&out[0, 0], n_vis, m, bound(n_vis, n_threads, t),
                            bound(n_vis, n_threads, t + 1), sig, False)
        if n_groups:
            for t in prange(n_threads, num_threads=n_threads, schedule='static',
                            chunksize=1):
                softmax_groups_rows(&out[0, 0], n_vis, bound(m, n_threads, t),
                                    bound(m, n_threads, t + 1), &b[0], gp, n_groups,
                                    sample, NULL, key, stream)


def check_groups(const Py_ssize_t[:, ::1] groups, Py_ssize_t n_vis, Py_ssize_t n_sigma,
                 Py_ssize_t col0=0):
    """Raise ValueError unless ``groups`` are sorted, disjoint [start, stop)
    column ranges of at least 2 units within the n_vis Bernoulli visibles."""
    cdef Py_ssize_t g, prev = 0
    if groups.shape[1] != 2:
        raise ValueError("softmax groups must be (start, stop) pairs")
    if n_sigma or col0:
        raise ValueError("softmax groups need Bernoulli visibles in one process")
    for g in range(groups.shape[0]):
        if groups[g, 0] < prev or groups[g, 1] - groups[g, 0] < 2 or groups[g, 1] > n_vis:
            raise ValueError(
                f"softmax groups must be sorted, disjoint (start, stop) ranges of at "
                f"least 2 of the {n_vis} visible units; got {np.asarray(groups).tolist()}")
        prev = groups[g, 1]


def softplus_sum(const floating[:, ::1] U, const floating[:, ::1] W,
                 const floating[::1] c, floating[::1] out, int n_threads=1,
                 int hidden_unit=BERNOULLI):
    """out[i] = sum_j term(U[i] @ W[j] + c[j]), the hidden part of -F(v): the
    term of the unit type (``_units.pxi``), log(1 + exp(x)) for Bernoulli."""
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
                    if hidden_unit == BERNOULLI:
                        for j in range(n_hid):
                            acc = acc + softplus(act[i, j] + c[j])
                    else:
                        for j in range(n_hid):
                            acc = acc + hidden_term(hidden_unit, act[i, j] + c[j])
                    out[i] = acc


# --------------------------------------------------------------------------
# The normals of this build, for tests: the Box-Muller polynomials round
# differently with and without FMA contraction, so a test rebuilding a
# kernel's draws must take them from the same build as the kernel.
# --------------------------------------------------------------------------

def normal_array(uint64_t key, uint64_t stream, Py_ssize_t n_rows, Py_ssize_t n_cols,
           Py_ssize_t col_offset=0):
    """Standard normals a kernel draws for rows ``0..n_rows-1`` (float64)."""
    cdef double[:, ::1] out = np.empty((n_rows, n_cols))
    cdef Py_ssize_t i, j
    cdef uint64_t rk
    for i in range(n_rows):
        rk = row_key(key, stream, i)
        for j in range(n_cols):
            out[i, j] = normal(rk, j + col_offset)
    return np.asarray(out)


def box_muller(const uint32_t[::1] h1, const uint32_t[::1] h2):
    """The kernels' standard normals from given pairs of 32-bit hashes."""
    cdef float[::1] out = np.empty(h1.shape[0], dtype=np.float32)
    cdef Py_ssize_t i
    for i in range(h1.shape[0]):
        out[i] = skdbn_normalf(h1[i], h2[i])
    return np.asarray(out)
