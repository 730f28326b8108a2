# Included by _cd.pyx.

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
                           uint64_t key, int unit) noexcept nogil:
    """log_w_part[i] = sum_j term(beta a_ij) - term(beta_prev a_ij),
    a = act + c; samples <- p(h | beta a) unless NULL.

    The free-energy term and sampler are the unit type's (``_units.pxi``);
    a unit's own energy (h^2 / 2 for Gaussian units) is not annealed, so
    every intermediate model is proper. Bernoulli, the fast path, uses the
    vectorised float softplus. The element-wise loop has no reduction, so it
    vectorises; the row sums are then one GEMV over the block (``act`` is
    overwritten).
    """
    cdef Py_ssize_t i, j
    cdef uint64_t rk
    cdef floating a, p
    cdef floating *row
    cdef floating *srow
    if unit != BERNOULLI:
        for i in range(rows):
            row = act + i * ld
            rk = row_key(key, 0, i)
            for j in range(j0, j1):
                a = row[j] + c[j]
                if samples != NULL:
                    p = hidden_mean(unit, beta * a)
                    samples[i * ld + j] = hidden_sample(unit, beta * a, p, <uint32_t> rk,
                                                        <uint32_t> (rk >> 32), <uint32_t> j)
                row[j] = <floating> (hidden_term(unit, beta * a)
                                     - hidden_term(unit, beta_prev * a))
        gemv(rows, j1 - j0, 1, act + j0, ld, ones, 0, log_w_part)
        return
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
            int n_threads=1, const floating[:, ::1] v_init=None,
            int hidden_unit=BERNOULLI):
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
    hidden_unit : int
        Code of the hidden unit type (``UNIT_CODES``); not NReLU, whose
        free energy is an approximation.
    """
    cdef Py_ssize_t n_runs = log_w.shape[0], n_hid = W.shape[0], n_vis = W.shape[1]
    cdef Py_ssize_t K = betas.shape[0] - 1, k, r, lo, hi
    cdef int t, nt
    cdef const floating *sig = NULL if sigma.shape[0] == 0 else &sigma[0]
    cdef floating beta, beta_prev
    if hidden_unit == NRELU:
        raise ValueError("AIS needs a unit type with an exact free energy, not NReLU")
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
                                         batch_key_nogil(seed, k), hidden_unit)
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
