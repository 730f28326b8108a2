# Included by _cd.pyx. Unit types: the element-wise math of each layer
# (conditional mean and sampler) on blocks of a layer's activations.

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
