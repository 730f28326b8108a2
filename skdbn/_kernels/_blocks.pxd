# The loops that apply the unit types of _units.pxd to one thread's block of
# a layer's activations, while the block of the product is still in cache.
# ``act`` points at row 0, column 0 of a row-major matrix with ``ld``
# columns; element (i, j) draws the random numbers of (d.key, d.stream, row i,
# unit index j + the block's offset in the whole model), so a model split by
# columns across processes draws what the whole model would.
from cython cimport floating
from libc.stdint cimport uint32_t, uint64_t

from skdbn._kernels._model cimport VISIBLE_BERNOULLI, Draw, Model
from skdbn._kernels._random cimport row_key
from skdbn._kernels._units cimport (BERNOULLI, KEY_CHUNK, bernoulli_mean, bernoulli_sample,
                                    gaussian_sample, hidden_mean, hidden_run,
                                    hidden_sample)


cdef inline void row_keys(uint64_t key, uint64_t stream, Py_ssize_t i0, Py_ssize_t n,
                          uint32_t *klo, uint32_t *khi) noexcept nogil:
    """The keys of rows i0..i0+n-1 split into 32-bit halves, so that a loop
    over rows with the column fixed vectorises with 32-bit lanes."""
    cdef Py_ssize_t i
    cdef uint64_t rk
    for i in range(n):
        rk = row_key(key, stream, i0 + i)
        klo[i] = <uint32_t> rk
        khi[i] = <uint32_t> (rk >> 32)


cdef inline void add_length_bias(floating *act, Py_ssize_t ld, bint by_unit, Py_ssize_t rows,
                                 Py_ssize_t j0, Py_ssize_t j1, const Model *M) noexcept nogil:
    """Replicated Softmax: the hidden bias of an example of length D is D c.
    The unit loops add c, so this adds (D - 1) c to the inputs of units
    [j0, j1) of examples 0..rows-1 first (``act`` by unit or by row)."""
    cdef Py_ssize_t i, j
    cdef const floating *c = <const floating *> M.c
    cdef const floating *D = <const floating *> M.lengths
    if by_unit:
        for j in range(j0, j1):
            for i in range(rows):
                act[j * ld + i] += (D[i] - 1) * c[j]
    else:
        for i in range(rows):
            for j in range(j0, j1):
                act[i * ld + j] += (D[i] - 1) * c[j]


cdef inline void hidden_other(floating *act, Py_ssize_t ld, Py_ssize_t rows,
                              Py_ssize_t j0, Py_ssize_t j1, const Model *M,
                              const Draw *d, const uint32_t *klo,
                              const uint32_t *khi) noexcept nogil:
    """:func:`hidden_block` for a unit type other than Bernoulli, rows keyed
    by (klo[i], khi[i])."""
    cdef Py_ssize_t i, j
    cdef floating x, p, s
    cdef const floating *c = <const floating *> M.c
    cdef floating *samples = <floating *> d.samples
    cdef floating sign = <floating> d.sign
    cdef int unit = M.hidden_unit
    for i in range(rows):
        for j in range(j0, j1):
            x = act[i * ld + j] + c[j]
            p = hidden_mean(unit, x)
            if d.sampled or samples != NULL:
                s = hidden_sample(unit, x, p, klo[i], khi[i], <uint32_t> (j + M.hid0))
                if samples != NULL:
                    samples[i * d.lds + j] = s
                if d.sampled:
                    p = s
            act[i * ld + j] = sign * p


cdef inline void hidden_block(floating *act, Py_ssize_t ld, Py_ssize_t rows,
                              Py_ssize_t j0, Py_ssize_t j1, const Model *M,
                              const Draw *d) noexcept nogil:
    """Hidden units [j0, j1) of ``rows`` examples stored row by row:
    act <- d.sign * mean(act + c) (the sample if d.sampled); d.samples (row
    stride d.lds), if not NULL, <- a draw given act + c. Bernoulli, the fast
    path, has its own loops."""
    cdef Py_ssize_t i, j, i0, n
    cdef uint64_t rk
    cdef uint32_t lo, hi
    cdef floating p, x
    cdef floating *row
    cdef floating *srow
    cdef const floating *c = <const floating *> M.c
    cdef floating *samples = <floating *> d.samples
    cdef floating sign = <floating> d.sign
    cdef Py_ssize_t col0 = M.hid0
    cdef uint32_t klo[KEY_CHUNK]
    cdef uint32_t khi[KEY_CHUNK]
    cdef Draw sub
    if M.lengths != NULL:
        add_length_bias(act, ld, False, rows, j0, j1, M)
    if M.hidden_unit != BERNOULLI:
        i0 = 0
        while i0 < rows:
            n = min(rows - i0, <Py_ssize_t> KEY_CHUNK)
            row_keys(d.key, d.stream, i0, n, klo, khi)
            sub = d[0]
            if samples != NULL:
                sub.samples = <void *> (samples + i0 * d.lds)
            hidden_other(act + i0 * ld, ld, n, j0, j1, M, &sub, klo, khi)
            i0 += n
        return
    for i in range(rows):
        row = act + i * ld
        rk = row_key(d.key, d.stream, i)
        lo = <uint32_t> rk
        hi = <uint32_t> (rk >> 32)
        if d.sampled:
            for j in range(j0, j1):
                p = bernoulli_mean(row[j] + c[j])
                x = bernoulli_sample(p, lo, hi, <uint32_t> (j + col0))
                row[j] = sign * x
                if samples != NULL:
                    samples[i * d.lds + j] = x
        elif samples == NULL:
            for j in range(j0, j1):
                row[j] = sign * bernoulli_mean(row[j] + c[j])
        else:
            srow = samples + i * d.lds
            for j in range(j0, j1):
                p = bernoulli_mean(row[j] + c[j])
                row[j] = sign * p
                srow[j] = bernoulli_sample(p, lo, hi, <uint32_t> (j + col0))


cdef inline double visible_block(floating *act, Py_ssize_t ld, Py_ssize_t rows,
                                 Py_ssize_t j0, Py_ssize_t j1, const Model *M,
                                 const Draw *d, const floating *data) noexcept nogil:
    """Visible units [j0, j1): act (= h @ W) <- their states, in u-space.

    The visible unit types of _units.pxd: Bernoulli, sigmoid(act + b),
    sampled if d.sample; Gaussian, act + b / sigma, plus unit normal noise
    if d.sample. When ``data`` is given, returns the squared reconstruction
    error in v-space.
    """
    cdef Py_ssize_t i, j
    cdef uint64_t rk
    cdef uint32_t lo, hi
    cdef floating x, e
    cdef floating *row
    cdef const floating *drow
    cdef const floating *b = <const floating *> M.b
    cdef const floating *sigma = <const floating *> M.sigma
    cdef bint bernoulli = M.visible_unit == VISIBLE_BERNOULLI
    cdef Py_ssize_t col0 = M.vis0
    cdef double err = 0
    for i in range(rows):
        row = act + i * ld
        rk = row_key(d.key, d.stream, i)
        lo = <uint32_t> rk
        hi = <uint32_t> (rk >> 32)
        # One loop per case: a branch inside the loop stops gcc vectorising.
        if bernoulli and d.sample:
            for j in range(j0, j1):
                x = bernoulli_mean(row[j] + b[j])
                row[j] = bernoulli_sample(x, lo, hi, <uint32_t> (j + col0))
        elif bernoulli:
            for j in range(j0, j1):
                row[j] = bernoulli_mean(row[j] + b[j])
        elif d.sample:
            for j in range(j0, j1):
                row[j] = gaussian_sample(row[j] + b[j] / sigma[j], lo, hi,
                                         <uint32_t> (j + col0))
        else:
            for j in range(j0, j1):
                row[j] = row[j] + b[j] / sigma[j]
        if data != NULL:
            drow = data + i * ld
            if bernoulli:
                for j in range(j0, j1):
                    e = drow[j] - row[j]
                    err += e * e
            else:
                for j in range(j0, j1):
                    e = (drow[j] - row[j]) * sigma[j]
                    err += e * e
    return err


cdef inline void hidden_block_by_unit(floating *act, Py_ssize_t ld, Py_ssize_t cols,
                                      Py_ssize_t j0, Py_ssize_t j1, const Model *M,
                                      const Draw *d) noexcept nogil:
    """:func:`hidden_block` for a hidden layer stored unit by unit.

    Row j of ``act`` (stride ``ld``) holds unit j for examples 0..cols-1;
    d.samples likewise with stride d.lds. Each element draws the same random
    number as in :func:`hidden_block`. Examples go in chunks whose row keys
    are split into 32-bit halves first, so that the loop over examples
    vectorises.
    """
    cdef Py_ssize_t i, j, i0, n
    cdef floating p, x, cj
    cdef floating *row
    cdef floating *srow
    cdef const floating *c = <const floating *> M.c
    cdef floating *samples = <floating *> d.samples
    cdef floating sign = <floating> d.sign
    cdef uint32_t u
    cdef uint32_t klo[KEY_CHUNK]
    cdef uint32_t khi[KEY_CHUNK]
    if M.lengths != NULL:
        add_length_bias(act, ld, True, cols, j0, j1, M)
    i0 = 0
    while i0 < cols:
        n = cols - i0
        if n > KEY_CHUNK:
            n = KEY_CHUNK
        row_keys(d.key, d.stream, i0, n, klo, khi)
        for j in range(j0, j1):
            row = act + j * ld + i0
            srow = samples + j * d.lds + i0 if samples != NULL else NULL
            cj = c[j]
            u = <uint32_t> (j + M.hid0)
            if M.hidden_unit != BERNOULLI:
                hidden_run(M.hidden_unit, row, srow, n, cj, d, klo, khi, u)
            elif d.sampled:
                for i in range(n):
                    p = bernoulli_mean(row[i] + cj)
                    x = bernoulli_sample(p, klo[i], khi[i], u)
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
                    srow[i] = bernoulli_sample(p, klo[i], khi[i], u)
        i0 += n


cdef inline void scale_block(floating *a, Py_ssize_t ld, Py_ssize_t rows, Py_ssize_t j0,
                             Py_ssize_t j1, const floating *sigma,
                             bint divide) noexcept nogil:
    """a[i, j] /= sigma[j] (or *=) on columns [j0, j1)."""
    cdef Py_ssize_t i, j
    for i in range(rows):
        for j in range(j0, j1):
            if divide:
                a[i * ld + j] = a[i * ld + j] / sigma[j]
            else:
                a[i * ld + j] = a[i * ld + j] * sigma[j]
