# Unit types: each states here, and nowhere else, its conditional mean given
# its total input x, its sampler, and its term of the free energy, which is
# log sum_h exp(x h - e(h)) for its own energy e (so -F(v) is the visible
# term plus the sum over hidden units of this term at x_j). The statistics of
# the gradient are the means (or the samples, for sampled statistics).
# _blocks.pxd applies them to a thread's block of a layer; loops choose the
# type once, outside their inner loop. The codes are skdbn._kernels.UNIT_CODES.
from cython cimport floating
from libc.math cimport exp, floor, log, sqrt, sqrtf
from libc.stdint cimport uint32_t, uint64_t

from skdbn._kernels._math cimport sigmoid, skdbn_exp, skdbn_expf, softplus
from skdbn._kernels._model cimport (VISIBLE_BERNOULLI, VISIBLE_GAUSSIAN,
                                    VISIBLE_REPLICATED_SOFTMAX, Draw, Model)
from skdbn._kernels._random cimport (hash32_halves, normal_halves, row_key, uniform_d,
                                     uniform_f, unit_d, unit_f)


cdef enum:
    BERNOULLI = 0
    GAUSSIAN = 1  # hidden: unit variance; visible: sigma, in u = v / sigma
    NRELU = 2
    N_HIDDEN_UNITS = 3

# Examples per chunk of precomputed row keys in the by-unit loops.
cdef enum:
    KEY_CHUNK = 256

cdef inline int check_hidden_unit(int unit) except -1:
    """Raise ValueError unless ``unit`` is the code of a hidden unit type:
    every kernel checks before its loops, which cannot raise."""
    if not 0 <= unit < N_HIDDEN_UNITS:
        raise ValueError(f"unknown hidden unit code {unit}; see skdbn._kernels.UNIT_CODES")
    return 0


cdef inline int check_groups(const Py_ssize_t[:, ::1] groups, Py_ssize_t n_vis,
                            int visible_unit, Py_ssize_t col0=0) except -1:
    """Raise ValueError unless ``groups`` are sorted, disjoint [start, stop)
    column ranges of at least 2 units within the n_vis Bernoulli visibles
    (numbered from the block's first column, col0 of the whole model)."""
    cdef Py_ssize_t g, prev = 0
    if groups.shape[1] != 2:
        raise ValueError("softmax groups must be (start, stop) pairs")
    if visible_unit != VISIBLE_BERNOULLI or col0 < 0:
        raise ValueError("softmax groups need Bernoulli visibles")
    for g in range(groups.shape[0]):
        if groups[g, 0] < prev or groups[g, 1] - groups[g, 0] < 2 or groups[g, 1] > n_vis:
            pairs = [[groups[i, 0], groups[i, 1]] for i in range(groups.shape[0])]
            raise ValueError(
                f"softmax groups must be sorted, disjoint (start, stop) ranges of at "
                f"least 2 of the {n_vis} visible units; got {pairs}")
        prev = groups[g, 1]
    return 0


cdef inline int set_lengths(Model *M, const floating[::1] lengths, Py_ssize_t rows,
                            const Py_ssize_t[:, ::1] whole) except -1:
    """Make M a Replicated Softmax for ``rows`` examples of the given
    lengths: its visible layer one softmax group, ``whole`` = [[0, n_vis]]
    (kept alive by the caller)."""
    cdef Py_ssize_t i
    if lengths.shape[0] < rows or M.n_groups or M.visible_unit != VISIBLE_BERNOULLI:
        raise ValueError("lengths: one per example, and neither softmax groups nor sigma")
    if whole.shape[0] != 1 or whole[0, 0] != 0 or whole[0, 1] != M.n_vis:
        raise ValueError("whole must be [[0, n_visible]]")
    for i in range(rows):
        if not lengths[i] >= 0:
            raise ValueError("lengths must be nonnegative counts")
    M.groups, M.n_groups = &whole[0, 0], 1
    M.lengths, M.visible_unit = &lengths[0] if rows else NULL, VISIBLE_REPLICATED_SOFTMAX
    return 0


cdef inline floating draw_uniform(floating like, uint64_t rk, Py_ssize_t j) noexcept nogil:
    if floating is float:
        return uniform_f(rk, <unsigned int> j)
    else:
        return uniform_d(rk, <unsigned int> j)


cdef inline floating draw_uniform_halves(floating like, uint32_t lo, uint32_t hi,
                                         uint32_t j) noexcept nogil:
    if floating is float:
        return unit_f(hash32_halves(lo, hi, j))
    else:
        return unit_d(hash32_halves(lo, hi, j))


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
    return 0.5 * x * x + 0.9189385332046728  # log sqrt(2 pi)


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


# Dispatch on the code, for the loops that are not the vectorised fast paths.
# Codes were checked on entry (check_hidden_unit), so Bernoulli is the rest.
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


cdef inline void hidden_run(int unit, floating *row, floating *srow, Py_ssize_t n,
                            floating cj, const Draw *d, const uint32_t *klo,
                            const uint32_t *khi, uint32_t j) noexcept nogil:
    """Unit j of examples 0..n-1 (contiguous in ``row`` and ``srow``) for a
    Gaussian or NReLU unit: one loop per type and case, so that each
    vectorises. ``row`` holds the input less cj and receives d.sign times
    the mean (the sample if d.sampled); ``srow``, if not NULL, the draws."""
    cdef Py_ssize_t i
    cdef floating x, s
    cdef floating sign = <floating> d.sign
    if unit == GAUSSIAN:
        if d.sampled:
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
    elif unit == NRELU:
        if d.sampled:
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


# Visible units, in the space u the weights act on. Bernoulli: u = v, mean
# sigmoid(x + b), sampled like a Bernoulli hidden unit. Gaussian: u = v /
# sigma, mean x + b / sigma, sample mean + N(0, 1), v = sigma u; the bias
# gradient of the energy in u-space is divided by sigma. (_blocks.pxd's
# visible_block holds their vectorised loops; the free energy is in
# skdbn/_visible.py.)
cdef inline double visible_bias_gradient(int visible_unit, double total,
                                         const floating *sigma,
                                         Py_ssize_t j) noexcept nogil:
    """The gradient of visible bias j from ``total`` = sum(u0 - uk)."""
    if visible_unit == VISIBLE_GAUSSIAN:
        return total / sigma[j]
    return total


cdef inline floating visible_scale(int visible_unit, const floating *sigma,
                                   Py_ssize_t j) noexcept nogil:
    """s_j with v_j = s_j u_j."""
    if visible_unit == VISIBLE_GAUSSIAN:
        return sigma[j]
    return 1


# Softmax groups of visible units: K-way one-hot blocks among Bernoulli
# visibles (e.g. the label units of a generative classifier). Mean: the
# softmax of the block's inputs; sample: a one-hot draw by inverting the
# cumulative probabilities at one uniform per block (keyed by the block's
# first column); free-energy term: none (the visible term b.v is the same).
# ``groups`` holds [start, stop) column pairs, sorted and disjoint.

cdef extern from "_simd.h" nogil:
    double sum_f "skdbn_sum_f"(const float *r, Py_ssize_t n)
    double sum_d "skdbn_sum_d"(const double *r, Py_ssize_t n)


cdef inline double exp_shifted(floating *row, Py_ssize_t g0, Py_ssize_t g1, double mx,
                               bint vectorised) noexcept nogil:
    """row[j] <- exp(row[j] - mx) on [g0, g1); returns their sum, in double.
    ``vectorised``: the vectorised exp of the row's type and a sum in lanes,
    for a softmax over a whole vocabulary; else libm's exp in double and a
    serial sum (softmax groups, whose results this keeps as they were)."""
    cdef Py_ssize_t j
    cdef double e, tot = 0
    cdef float shift
    if vectorised:
        if floating is float:
            shift = <float> mx
            for j in range(g0, g1):
                row[j] = skdbn_expf(row[j] - shift)
            return sum_f(row + g0, g1 - g0)
        else:
            for j in range(g0, g1):
                row[j] = skdbn_exp(row[j] - mx)
            return sum_d(row + g0, g1 - g0)
    for j in range(g0, g1):
        e = exp(row[j] - mx)
        row[j] = <floating> e
        tot = tot + e
    return tot


# Replicated Softmax (word counts): the visible layer is one group over all
# units whose sample is the counts of D draws (D the example's length,
# M.lengths) and whose mean is D times the softmax.
cdef inline void multinomial_counts(floating *row, Py_ssize_t g0, Py_ssize_t g1,
                                    Py_ssize_t n_draws, uint32_t lo,
                                    uint32_t hi) noexcept nogil:
    """row[g0:g1] holds probabilities on entry and the counts of ``n_draws``
    draws from them on return. The draws are the sorted uniforms of the
    exponential spacings (the partial sums of n_draws + 1 exponentials over
    their total, element t keyed by t), read against the cumulative
    probabilities in one pass: O(n_draws + g1 - g0) with no scratch."""
    cdef Py_ssize_t t, k = g0
    cdef double total = 0, acc = 0, cum, x
    cdef floating count = 0
    for t in range(n_draws + 1):
        total = total - log(1 - unit_d(hash32_halves(lo, hi, <uint32_t> t)))
    cum = row[g0]
    for t in range(n_draws):
        acc = acc - log(1 - unit_d(hash32_halves(lo, hi, <uint32_t> t)))
        x = acc / total
        while x >= cum and k < g1 - 1:
            row[k] = count
            count = 0
            k = k + 1
            cum = cum + row[k]
        count = count + 1
    row[k] = count
    for t in range(k + 1, g1):
        row[t] = 0


cdef inline double softmax_groups_rows(floating *act, Py_ssize_t ld, Py_ssize_t r0,
                                       Py_ssize_t r1, const Model *M, const floating *data,
                                       Draw d) noexcept nogil:
    """Rows [r0, r1): each of M's groups' columns hold their input (h W + b)
    on entry, their mean or one-hot sample (``d.sample``) on return; the
    draw of a group follows its first column in the whole model (M.vis0 on).
    Returns the squared error of those columns against ``data`` (if not
    NULL). With M.lengths (Replicated Softmax) a group's sample is the
    counts of D draws (:func:`multinomial_counts`) and its mean D times the
    softmax."""
    cdef const Py_ssize_t *groups = M.groups
    cdef const floating *lengths = <const floating *> M.lengths
    cdef Py_ssize_t n_draws
    cdef Py_ssize_t n_groups = M.n_groups
    cdef Py_ssize_t i, j, g, g0, g1, chosen
    cdef uint64_t rk
    cdef double mx, tot, cum, e, dd, err = 0
    cdef floating u
    cdef floating *row
    for i in range(r0, r1):
        row = act + i * ld
        rk = row_key(d.key, d.stream, i)
        for g in range(n_groups):
            g0 = groups[2 * g]
            g1 = groups[2 * g + 1]
            mx = row[g0]
            for j in range(g0 + 1, g1):
                if row[j] > mx:
                    mx = row[j]
            tot = exp_shifted(row, g0, g1, mx, lengths != NULL)
            for j in range(g0, g1):
                row[j] = <floating> (row[j] / tot)
            if lengths != NULL:
                n_draws = <Py_ssize_t> (lengths[i] + 0.5)
                if d.sample:
                    multinomial_counts(row, g0, g1, n_draws, <uint32_t> rk,
                                       <uint32_t> (rk >> 32))
                else:
                    for j in range(g0, g1):
                        row[j] = row[j] * lengths[i]
            elif d.sample:
                u = draw_uniform_halves(row[g0], <uint32_t> rk, <uint32_t> (rk >> 32),
                                        <uint32_t> (g0 + M.vis0))
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
                    dd = data[i * ld + j] - row[j]
                    err = err + dd * dd
    return err
