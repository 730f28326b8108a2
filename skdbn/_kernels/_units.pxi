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
    cdef floating sd
    if floating is float:
        sd = sqrtf(sigmoid(x))
    else:
        sd = sqrt(sigmoid(x))
    cdef floating y = x + sd * normal_halves(lo, hi, j)
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


# Softmax groups of visible units: K-way one-hot blocks among Bernoulli
# visibles (e.g. the label units of a generative classifier). Mean: the
# softmax of the block's inputs; sample: a one-hot draw by inverting the
# cumulative probabilities at one uniform per block (keyed by the block's
# first column); free-energy term: none (the visible term b.v is the same).
# ``groups`` holds [start, stop) column pairs, sorted and disjoint.

cdef double softmax_groups_rows(floating *act, Py_ssize_t ld, Py_ssize_t r0,
                                Py_ssize_t r1, const floating *b,
                                const Py_ssize_t *groups, Py_ssize_t n_groups,
                                bint sample, const floating *data, uint64_t key,
                                uint64_t stream) noexcept nogil:
    """Rows [r0, r1): each group's columns hold their input (h W + b) on
    entry, their mean or one-hot sample on return. Returns the squared error
    of those columns against ``data`` (if not NULL)."""
    cdef Py_ssize_t i, j, g, g0, g1, chosen
    cdef uint64_t rk
    cdef double mx, tot, cum, e, d, err = 0
    cdef floating u
    cdef floating *row
    for i in range(r0, r1):
        row = act + i * ld
        rk = row_key(key, stream, i)
        for g in range(n_groups):
            g0 = groups[2 * g]
            g1 = groups[2 * g + 1]
            mx = row[g0]
            for j in range(g0 + 1, g1):
                if row[j] > mx:
                    mx = row[j]
            tot = 0
            for j in range(g0, g1):
                e = exp(row[j] - mx)
                row[j] = <floating> e
                tot = tot + e
            for j in range(g0, g1):
                row[j] = <floating> (row[j] / tot)
            if sample:
                u = draw_uniform_halves(row[g0], <uint32_t> rk, <uint32_t> (rk >> 32),
                                        <uint32_t> g0)
                chosen = g1 - 1
                cum = 0
                for j in range(g0, g1 - 1):
                    cum = cum + row[j]
                    if u < cum:
                        chosen = j
                        break
                for j in range(g0, g1):
                    row[j] = 1 if j == chosen else 0
            if data != NULL:
                for j in range(g0, g1):
                    d = data[i * ld + j] - row[j]
                    err = err + d * d
    return err


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
