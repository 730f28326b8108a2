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
# Unit types: each states here, and nowhere else, its conditional mean given
# its total input x, its sampler, and its term of the free energy, which is
# log sum_h exp(x h - e(h)) for its own energy e (so -F(v) is the visible
# term plus the sum over hidden units of this term at x_j). The statistics of
# the gradient are the means (or the samples, for sampled statistics). Loops
# choose the type once, outside their inner loop. Codes as in UNIT_CODES.
# --------------------------------------------------------------------------

cdef enum:
    BERNOULLI = 0
    GAUSSIAN = 1  # hidden: unit variance; visible: sigma, in u = v / sigma
    NRELU = 2

UNIT_CODES = {"bernoulli": BERNOULLI, "gaussian": GAUSSIAN, "nrelu": NRELU}

cdef double HALF_LOG_2PI = 0.9189385332046728


# Bernoulli (logistic): mean sigmoid(x), sample 1[u < mean], term softplus(x).
cdef inline floating bernoulli_mean(floating x) noexcept nogil:
    return sigmoid(x)


cdef inline floating bernoulli_sample(floating mean, uint32_t lo, uint32_t hi,
                                      uint32_t j) noexcept nogil:
    return draw_uniform_halves(mean, lo, hi, j) < mean


# Gaussian with unit variance (a linear unit): mean x, sample x + N(0, 1),
# term x^2 / 2 + log sqrt(2 pi) (the Gaussian integral).
cdef inline floating gaussian_sample(floating mean, uint32_t lo, uint32_t hi,
                                     uint32_t j) noexcept nogil:
    return mean + <floating> normal_halves(lo, hi, j)


cdef inline double gaussian_term(double x) noexcept nogil:
    return 0.5 * x * x + HALF_LOG_2PI


cdef inline double softplus_d(double x) noexcept nogil:
    return softplus(x)


cdef inline double stepped_sigmoid_term(double x) noexcept nogil:
    """sum_{n >= 1} softplus(x - n + 1/2): the free-energy term of infinitely
    many tied Bernoulli copies with offset biases (Nair & Hinton, 2010), the
    model that NReLU units approximate. Terms above 36 are linear to double
    precision and summed in closed form, terms below -37 as a geometric tail."""
    cdef double t = x - 0.5, acc = 0, k
    if t > 36:
        k = floor(t - 36) + 1
        acc = k * t - 0.5 * k * (k - 1)
        t = t - k
    while t > -37:
        acc = acc + softplus_d(t)
        t = t - 1
    return acc + exp(t) / (1 - exp(-1.0))


# Noisy rectified linear (Nair & Hinton, 2010): mean max(0, x), sample
# max(0, x + N(0, sigmoid(x))), term of the stepped sigmoid units.
cdef inline floating nrelu_mean(floating x) noexcept nogil:
    return x if x > 0 else 0


cdef inline floating nrelu_sample(floating x, uint32_t lo, uint32_t hi,
                                  uint32_t j) noexcept nogil:
    cdef floating y = x + <floating> (sqrt(<double> sigmoid(x)) * normal_halves(lo, hi, j))
    return y if y > 0 else 0


cdef inline floating hidden_mean(int unit, floating x) noexcept nogil:
    if unit == GAUSSIAN:
        return x
    if unit == NRELU:
        return nrelu_mean(x)
    return bernoulli_mean(x)


cdef inline floating hidden_sample(int unit, floating x, floating mean, uint32_t lo,
                                   uint32_t hi, uint32_t j) noexcept nogil:
    """A draw of h given its input x and mean, with the random numbers of
    element j of the row whose key is (lo, hi)."""
    if unit == GAUSSIAN:
        return gaussian_sample(x, lo, hi, j)
    if unit == NRELU:
        return nrelu_sample(x, lo, hi, j)
    return bernoulli_sample(mean, lo, hi, j)


cdef inline double hidden_term(int unit, double x) noexcept nogil:
    if unit == GAUSSIAN:
        return gaussian_term(x)
    if unit == NRELU:
        return stepped_sigmoid_term(x)
    return softplus_d(x)


def hidden_free_term(int unit, double x):
    """The free-energy term of one hidden unit of type ``unit`` at input ``x``."""
    return hidden_term(unit, x)


cdef void hidden_other(floating *act, Py_ssize_t ld, Py_ssize_t rows, Py_ssize_t j0,
                       Py_ssize_t j1, const floating *c, floating sign,
                       floating *samples, Py_ssize_t lds, bint sampled,
                       const uint32_t *klo, const uint32_t *khi, bint by_unit,
                       Py_ssize_t col0, int unit) noexcept nogil:
    """The hidden blocks below for a unit type other than Bernoulli.

    Element (i, j) is at act[i * ld + j] (act[j * ld + i] if ``by_unit``),
    and draws with the row key (klo[i], khi[i]) and column col0 + j.
    """
    cdef Py_ssize_t i, j, k
    cdef floating x, p, s
    for i in range(rows):
        for j in range(j0, j1):
            k = j * ld + i if by_unit else i * ld + j
            x = act[k] + c[j]
            p = hidden_mean(unit, x)
            if sampled or samples != NULL:
                s = hidden_sample(unit, x, p, klo[i], khi[i], <uint32_t> (j + col0))
                if samples != NULL:
                    samples[j * lds + i if by_unit else i * lds + j] = s
                if sampled:
                    p = s
            act[k] = sign * p


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
                         samples + i0 * ld if samples != NULL else NULL, ld, sampled,
                         klo, khi, False, col0, unit)
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
        if unit != BERNOULLI:
            hidden_other(act + i0, ld, n, j0, j1, c, sign,
                         samples + i0 if samples != NULL else NULL, lds, sampled,
                         klo, khi, True, 0, unit)
            i0 += n
            continue
        for j in range(j0, j1):
            row = act + j * ld + i0
            srow = samples + j * lds + i0 if samples != NULL else NULL
            cj = c[j]
            if sampled:
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
