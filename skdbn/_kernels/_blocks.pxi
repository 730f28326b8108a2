# Included by _cd.pyx. The loops that apply the unit types of _units.pxi to
# blocks of a layer's activations: one thread's share of a product, while
# it is still in cache, with the random numbers keyed by (row, column).

cdef void hidden_other(floating *act, Py_ssize_t ld, Py_ssize_t rows, Py_ssize_t j0,
                       Py_ssize_t j1, const floating *c, floating sign,
                       floating *samples, bint sampled, const uint32_t *klo,
                       const uint32_t *khi, Py_ssize_t col0, int unit) noexcept nogil:
    """:func:`hidden_block` for a unit type other than Bernoulli: element
    (i, j) is act[i * ld + j] and draws with the row key (klo[i], khi[i])
    and column col0 + j."""
    cdef Py_ssize_t i, j
    cdef floating x, p, s
    for i in range(rows):
        for j in range(j0, j1):
            x = act[i * ld + j] + c[j]
            p = hidden_mean(unit, x)
            if sampled or samples != NULL:
                s = hidden_sample(unit, x, p, klo[i], khi[i], <uint32_t> (j + col0))
                if samples != NULL:
                    samples[i * ld + j] = s
                if sampled:
                    p = s
            act[i * ld + j] = sign * p


cdef inline void hidden_run(int unit, floating *row, floating *srow, Py_ssize_t n,
                            floating cj, floating sign, bint sampled,
                            const uint32_t *klo, const uint32_t *khi,
                            uint32_t j) noexcept nogil:
    """Unit j of examples 0..n-1 (contiguous in ``row`` and ``srow``) for a
    unit type other than Bernoulli: the loops of :func:`hidden_other`, one
    per type and case, so that each vectorises."""
    cdef Py_ssize_t i
    cdef floating x, s
    if unit == GAUSSIAN:
        if sampled:
            for i in range(n):
                s = gaussian_sample(row[i] + cj, klo[i], khi[i], j)
                row[i] = sign * s
                if srow != NULL:
                    srow[i] = s
        elif srow == NULL:
            for i in range(n):
                row[i] = sign * (row[i] + cj)
        else:
            for i in range(n):
                x = row[i] + cj
                row[i] = sign * x
                srow[i] = gaussian_sample(x, klo[i], khi[i], j)
    else:
        if sampled:
            for i in range(n):
                s = nrelu_sample(row[i] + cj, klo[i], khi[i], j)
                row[i] = sign * s
                if srow != NULL:
                    srow[i] = s
        elif srow == NULL:
            for i in range(n):
                row[i] = sign * nrelu_mean(row[i] + cj)
        else:
            for i in range(n):
                x = row[i] + cj
                row[i] = sign * nrelu_mean(x)
                srow[i] = nrelu_sample(x, klo[i], khi[i], j)


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
                       uint64_t key, uint64_t stream, Py_ssize_t col0,
                       int unit) noexcept nogil:
    """act <- sign * mean(act + c); samples <- a draw given act + c.

    ``sampled``: act <- sign * the sample instead (sampled statistics).
    Column j draws the random numbers of unit ``col0 + j``, so a model split
    by columns across processes draws what the whole model would. ``unit``:
    the hidden unit type; Bernoulli, the fast path, has its own loops.
    """
    cdef Py_ssize_t i, j, i0, n
    cdef uint64_t rk
    cdef uint32_t lo, hi
    cdef floating p, x
    cdef floating *row
    cdef floating *srow
    cdef uint32_t klo[KEY_CHUNK]
    cdef uint32_t khi[KEY_CHUNK]
    if unit != BERNOULLI:
        i0 = 0
        while i0 < rows:
            n = min(rows - i0, <Py_ssize_t> KEY_CHUNK)
            for i in range(n):
                rk = row_key(key, stream, i0 + i)
                klo[i] = <uint32_t> rk
                khi[i] = <uint32_t> (rk >> 32)
            hidden_other(act + i0 * ld, ld, n, j0, j1, c, sign,
                         samples + i0 * ld if samples != NULL else NULL, sampled,
                         klo, khi, col0, unit)
            i0 += n
        return
    for i in range(rows):
        row = act + i * ld
        rk = row_key(key, stream, i)
        lo = <uint32_t> rk
        hi = <uint32_t> (rk >> 32)
        if sampled:
            for j in range(j0, j1):
                p = bernoulli_mean(row[j] + c[j])
                x = bernoulli_sample(p, lo, hi, <uint32_t> (j + col0))
                row[j] = sign * x
                if samples != NULL:
                    samples[i * ld + j] = x
        elif samples == NULL:
            for j in range(j0, j1):
                row[j] = sign * bernoulli_mean(row[j] + c[j])
        else:
            srow = samples + i * ld
            for j in range(j0, j1):
                p = bernoulli_mean(row[j] + c[j])
                row[j] = sign * p
                srow[j] = bernoulli_sample(p, lo, hi, <uint32_t> (j + col0))


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
    cdef uint32_t lo, hi
    cdef floating x, d
    cdef floating *row
    cdef const floating *drow
    cdef double err = 0
    for i in range(rows):
        row = act + i * ld
        rk = row_key(key, stream, i)
        lo = <uint32_t> rk
        hi = <uint32_t> (rk >> 32)
        # One loop per case: a branch inside the loop stops gcc vectorising.
        if sigma == NULL and sample:
            for j in range(j0, j1):
                x = bernoulli_mean(row[j] + b[j])
                row[j] = bernoulli_sample(x, lo, hi, <uint32_t> (j + col0))
        elif sigma == NULL:
            for j in range(j0, j1):
                row[j] = bernoulli_mean(row[j] + b[j])
        elif sample:
            for j in range(j0, j1):
                row[j] = gaussian_sample(row[j] + b[j] / sigma[j], lo, hi,
                                         <uint32_t> (j + col0))
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
                               uint64_t stream, int unit) noexcept nogil:
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
            if unit != BERNOULLI:
                hidden_run(unit, row, srow, n, cj, sign, sampled, klo, khi, <uint32_t> j)
            elif sampled:
                for i in range(n):
                    p = bernoulli_mean(row[i] + cj)
                    x = bernoulli_sample(p, klo[i], khi[i], <uint32_t> j)
                    row[i] = sign * x
                    if srow != NULL:
                        srow[i] = x
            elif srow == NULL:
                for i in range(n):
                    row[i] = sign * bernoulli_mean(row[i] + cj)
            else:
                for i in range(n):
                    p = bernoulli_mean(row[i] + cj)
                    row[i] = sign * p
                    srow[i] = bernoulli_sample(p, klo[i], khi[i], <uint32_t> j)
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
