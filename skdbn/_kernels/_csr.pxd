# Sparse input: the data-side phases for a minibatch given by its nonzeros,
# beside the dense ones of _phases.pxd. A minibatch of CSR rows becomes
# ``Columns`` (its nonzeros grouped by column, skdbn/_csr.py), so that a
# hidden unit's row of W is read in order: the products cost one multiply-add
# per nonzero and hidden unit, against one per element of the minibatch for
# the dense GEMM. The products that need every visible unit's input (the down
# pass) stay dense. Sampled binary negative visibles become Columns too
# (``count_block`` / ``fill_block``) when they are sparse enough.
from cython cimport floating
from libc.stdlib cimport free, malloc

from skdbn._kernels._blocks cimport hidden_block_by_unit
from skdbn._kernels._model cimport VISIBLE_BERNOULLI, Columns, Draw, Model
from skdbn._kernels._parallel cimport bound
from skdbn._kernels._units cimport visible_scale


cdef inline Columns columns_of(data, Py_ssize_t m, Py_ssize_t n_vis, const floating *like) except *:
    """The Columns of a sparse minibatch (col, start, row, val), checked."""
    cdef const Py_ssize_t[::1] col = data[0]
    cdef const Py_ssize_t[::1] start = data[1]
    cdef const Py_ssize_t[::1] row = data[2]
    cdef const floating[::1] val = data[3]
    cdef Columns X
    if start.shape[0] != col.shape[0] + 1 or row.shape[0] != val.shape[0] \
            or start[0] != 0 or start[col.shape[0]] != row.shape[0]:
        raise ValueError("sparse minibatch: inconsistent col, start, row and val")
    cdef Py_ssize_t c, e
    for c in range(col.shape[0]):
        if col[c] < 0 or col[c] >= n_vis or (c and col[c] <= col[c - 1]) \
                or start[c + 1] < start[c]:
            raise ValueError("sparse minibatch: columns out of range or order")
    for e in range(row.shape[0]):
        if not 0 <= row[e] < m:
            raise ValueError("sparse minibatch: a row index is out of range")
    X.n_rows, X.n_cols = m, col.shape[0]
    X.col = &col[0] if col.shape[0] else NULL
    X.start = &start[0]
    X.row = &row[0] if row.shape[0] else NULL
    X.val = &val[0] if val.shape[0] else NULL
    if val.shape[0] == 0:
        X.val = <const void *> like  # no entries: never read, but not "all ones"
    return X


cdef inline Py_ssize_t first_column(const Columns *X, Py_ssize_t k) noexcept nogil:
    """Position in X.col of the first column >= k (binary search)."""
    cdef Py_ssize_t lo = 0, hi = X.n_cols, mid
    while lo < hi:
        mid = (lo + hi) // 2
        if X.col[mid] < k:
            lo = mid + 1
        else:
            hi = mid
    return lo


# Hidden units handled together by the products: their weights of one
# column are gathered once, and the work on each nonzero is a vector of them
# (``axpy_block``, a loop in C that the compiler vectorises).
cdef extern from "_simd.h" nogil:
    enum: UNIT_BLOCK "SKDBN_UNIT_BLOCK"
    void axpy_block_f "skdbn_axpy_block_f"(float *a, float x, const float *w)
    void axpy_block_d "skdbn_axpy_block_d"(double *a, double x, const double *w)
    bint any_nonzero_f "skdbn_any_nonzero_f"(const float *r)
    bint any_nonzero_d "skdbn_any_nonzero_d"(const double *r)
    double sum_squares_f "skdbn_sum_squares_f"(const float *r, const float *s, Py_ssize_t n)
    double sum_squares_d "skdbn_sum_squares_d"(const double *r, const double *s, Py_ssize_t n)


cdef inline void axpy_block(floating *a, floating x, const floating *w) noexcept nogil:
    """a[j] += x * w[j] for the UNIT_BLOCK units of a block."""
    if floating is float:
        axpy_block_f(a, x, w)
    else:
        axpy_block_d(a, x, w)


cdef inline bint any_nonzero(const floating *r) noexcept nogil:
    """Whether any of the UNIT_BLOCK values at r is nonzero."""
    if floating is float:
        return any_nonzero_f(r)
    else:
        return any_nonzero_d(r)


cdef inline double sum_squares(const floating *r, const floating *s, Py_ssize_t n) noexcept nogil:
    """sum((r[k] s[k])^2) over k < n, in double (s NULL: all 1)."""
    if floating is float:
        return sum_squares_f(r, s, n)
    else:
        return sum_squares_d(r, s, n)


cdef inline void product_by_unit(const Columns *X, const floating *W, Py_ssize_t n_vis,
                                 floating *out, Py_ssize_t ld, Py_ssize_t j0,
                                 Py_ssize_t j1) noexcept nogil:
    """out[j, i] = (X W^T)[i, j] for units [j0, j1), stored by unit (stride
    ``ld``). Units go UNIT_BLOCK at a time: for each nonempty column their
    weights are gathered (each unit's row of W read in order), then every
    nonzero adds x * those weights to its row of a (rows, UNIT_BLOCK) block
    in cache, which is finally stored by unit."""
    cdef Py_ssize_t jb, j, nb, c, e, i
    cdef floating w[UNIT_BLOCK]
    cdef floating *acc
    cdef floating *a
    cdef const floating *val = <const floating *> X.val
    cdef Py_ssize_t m = X.n_rows
    acc = <floating *> malloc(m * UNIT_BLOCK * sizeof(floating))
    if acc == NULL:  # no memory for the block: one unit at a time
        for j in range(j0, j1):
            a = out + j * ld
            for i in range(m):
                a[i] = 0
            for c in range(X.n_cols):
                w[0] = W[j * n_vis + X.col[c]]
                for e in range(X.start[c], X.start[c + 1]):
                    a[X.row[e]] += w[0] * (1 if val == NULL else val[e])
        return
    jb = j0
    while jb < j1:
        nb = min(<Py_ssize_t> UNIT_BLOCK, j1 - jb)
        for i in range(m * UNIT_BLOCK):
            acc[i] = 0
        for c in range(X.n_cols):
            for j in range(UNIT_BLOCK):
                w[j] = W[(jb + j) * n_vis + X.col[c]] if j < nb else 0
            for e in range(X.start[c], X.start[c + 1]):
                axpy_block(acc + X.row[e] * UNIT_BLOCK, 1 if val == NULL else val[e], w)
        for j in range(nb):
            for i in range(m):
                out[(jb + j) * ld + i] = acc[i * UNIT_BLOCK + j]
        jb += nb
    free(acc)


cdef inline void up_columns_by_unit(const Columns *X, const Model *M, floating *out,
                                    Py_ssize_t ld, Draw d, int part,
                                    int n_parts) noexcept nogil:
    """:func:`_phases.up_by_unit` for sparse rows: the hidden units of block
    ``part`` for the X.n_rows rows of X, stored by unit, with the draws of d."""
    cdef Py_ssize_t lo = bound(M.n_hid, n_parts, part)
    cdef Py_ssize_t hi = bound(M.n_hid, n_parts, part + 1)
    if hi <= lo:
        return
    product_by_unit(X, <const floating *> M.W, M.n_vis, out, ld, lo, hi)
    hidden_block_by_unit(out, ld, X.n_rows, lo, hi, M, &d)


cdef inline void scatter_gradient(floating *T, Py_ssize_t n_vis, const floating *hid,
                                  Py_ssize_t ldh, const Columns *X, floating alpha,
                                  Py_ssize_t j0, Py_ssize_t j1) noexcept nogil:
    """T[j, k] += alpha * (hid X)[j, k] for rows [j0, j1) of T (n_hid, n_vis):
    the gradient's share of sparse visibles, hid (n_hid, X.n_rows) stored by
    unit with stride ``ldh``. Units go UNIT_BLOCK at a time, their statistics
    transposed into a (rows, UNIT_BLOCK) block, so that each nonzero adds a
    vector, and the sums of a column are scattered to their rows of T."""
    cdef Py_ssize_t jb, j, nb, c, e, i
    cdef floating g[UNIT_BLOCK]
    cdef floating *hb
    cdef const floating *h
    cdef const floating *val = <const floating *> X.val
    cdef Py_ssize_t m = X.n_rows
    hb = <floating *> malloc(m * UNIT_BLOCK * sizeof(floating))
    if hb == NULL:  # no memory for the block: one unit at a time
        for j in range(j0, j1):
            h = hid + j * ldh
            for c in range(X.n_cols):
                g[0] = 0
                for e in range(X.start[c], X.start[c + 1]):
                    g[0] += h[X.row[e]] * (1 if val == NULL else val[e])
                T[j * n_vis + X.col[c]] += alpha * <floating> g[0]
        return
    jb = j0
    while jb < j1:
        nb = min(<Py_ssize_t> UNIT_BLOCK, j1 - jb)
        for i in range(m):
            for j in range(UNIT_BLOCK):
                hb[i * UNIT_BLOCK + j] = hid[(jb + j) * ldh + i] if j < nb else 0
        for c in range(X.n_cols):
            for j in range(UNIT_BLOCK):
                g[j] = 0
            for e in range(X.start[c], X.start[c + 1]):
                axpy_block(g, 1 if val == NULL else val[e], hb + X.row[e] * UNIT_BLOCK)
            for j in range(nb):
                T[(jb + j) * n_vis + X.col[c]] += alpha * g[j]
        jb += nb
    free(hb)


cdef inline void add_column_sums(const Columns *X, const floating *val, double sign,
                                 Py_ssize_t k0, Py_ssize_t k1, double *out) noexcept nogil:
    """out[k] += sign * sum of column k of X, for columns [k0, k1); ``val``
    is X.val in the kernel's dtype."""
    cdef Py_ssize_t c, e
    cdef double s
    for c in range(first_column(X, k0), X.n_cols):
        if X.col[c] >= k1:
            break
        s = 0
        if val == NULL:
            s = X.start[c + 1] - X.start[c]
        else:
            for e in range(X.start[c], X.start[c + 1]):
                s += val[e]
        out[X.col[c]] += sign * s


cdef inline double sq_error_block(const Columns *X, const floating *v1, Py_ssize_t ld,
                                  const Model *M, Py_ssize_t k0,
                                  Py_ssize_t k1) noexcept nogil:
    """Squared error, in v-space, between the sparse rows X and the dense
    rows v1 (both in u-space), over columns [k0, k1): the sum of v1^2 plus,
    at each nonzero x, (x - v1)^2 - v1^2 (times the visible unit's scale
    squared, v = s u)."""
    cdef Py_ssize_t i, k, c, e
    cdef double err = 0, u, x, s2
    cdef const floating *val = <const floating *> X.val
    cdef const floating *sigma = <const floating *> M.sigma
    for i in range(X.n_rows):
        err += sum_squares(v1 + i * ld + k0, sigma + k0 if sigma != NULL else NULL, k1 - k0)
    for c in range(first_column(X, k0), X.n_cols):
        k = X.col[c]
        if k >= k1:
            break
        s2 = visible_scale(M.visible_unit, sigma, k)
        s2 = s2 * s2
        for e in range(X.start[c], X.start[c + 1]):
            x = 1 if val == NULL else val[e]
            u = v1[X.row[e] * ld + k]
            err += ((x - u) * (x - u) - u * u) * s2
    return err


ctypedef struct ColumnsScratch:
    # Where count_block and fill_block build the Columns of binary rows.
    Py_ssize_t *cnt            # (n_vis,) per column, then its next free entry
    Py_ssize_t *col            # (n_vis,)
    Py_ssize_t *start          # (n_vis + 1,)
    Py_ssize_t *row            # (capacity,)
    void *val                  # (capacity,) their values (counts), or NULL: binary
    Py_ssize_t capacity        # entries: more stay dense
    Py_ssize_t *totals         # (2 n_blocks,): each block's (entries, columns)


cdef inline void count_block(const floating *v, Py_ssize_t ld, Py_ssize_t m,
                             Py_ssize_t k0, Py_ssize_t k1, ColumnsScratch *w,
                             int block) noexcept nogil:
    """w.cnt[k] = nonzeros of column k of the m rows of v, for the columns
    [k0, k1) of ``block``, whose (entries, nonempty columns) go to w.totals."""
    cdef Py_ssize_t i, k, kk, nnz = 0, n_cols = 0
    cdef Py_ssize_t *cnt = w.cnt
    cdef const floating *r
    for k in range(k0, k1):
        cnt[k] = 0
    for i in range(m):
        r = v + i * ld
        k = k0
        while k < k1:
            if k + UNIT_BLOCK > k1 or any_nonzero(r + k):
                for kk in range(k, min(k + UNIT_BLOCK, k1)):
                    cnt[kk] += r[kk] != 0
            k += UNIT_BLOCK
    for k in range(k0, k1):
        nnz += cnt[k]
        n_cols += cnt[k] > 0
    w.totals[2 * block] = nnz
    w.totals[2 * block + 1] = n_cols


cdef inline Columns counted_columns(const ColumnsScratch *w, Py_ssize_t m,
                                    int n_blocks) noexcept nogil:
    """The Columns that fill_block makes of what count_block counted, or
    n_rows = 0 if they have more than w.capacity entries (keep them dense)."""
    cdef Columns X
    cdef Py_ssize_t b, nnz = 0, n_cols = 0
    for b in range(n_blocks):
        nnz += w.totals[2 * b]
        n_cols += w.totals[2 * b + 1]
    X.n_rows = m if nnz <= w.capacity else 0
    X.n_cols, X.col, X.start, X.row, X.val = n_cols, w.col, w.start, w.row, w.val
    return X


cdef inline void fill_block(const floating *v, Py_ssize_t ld, Py_ssize_t m,
                            Py_ssize_t k0, Py_ssize_t k1, const ColumnsScratch *w,
                            int block, int n_blocks) noexcept nogil:
    """The Columns of the m rows of v over the columns [k0, k1) of
    ``block``, counted by :func:`count_block`; w.cnt becomes each column's
    next free entry. The last block also closes w.start. Values are kept
    in w.val unless it is NULL (v binary)."""
    cdef Py_ssize_t i, k, kk, b, n, e = 0, c = 0
    cdef Py_ssize_t *cnt = w.cnt
    cdef floating *val = <floating *> w.val
    cdef const floating *r
    for b in range(block):
        e += w.totals[2 * b]
        c += w.totals[2 * b + 1]
    for k in range(k0, k1):
        n = cnt[k]
        if n:
            w.col[c] = k
            w.start[c] = e
            cnt[k] = e
            e += n
            c += 1
    if block == n_blocks - 1:
        w.start[c] = e
    for i in range(m):
        r = v + i * ld
        k = k0
        while k < k1:
            if k + UNIT_BLOCK > k1 or any_nonzero(r + k):
                for kk in range(k, min(k + UNIT_BLOCK, k1)):
                    if r[kk] != 0:
                        w.row[cnt[kk]] = i
                        if val != NULL:
                            val[cnt[kk]] = r[kk]
                        cnt[kk] += 1
            k += UNIT_BLOCK


cdef inline void merge_columns(const Columns *P, const Columns *N, const floating *pval,
                               Py_ssize_t *col, Py_ssize_t *start, Py_ssize_t *row,
                               floating *val, Columns *out) noexcept nogil:
    """out = the rows of P then those of N (rows offset by P.n_rows; N's
    values, 1 if it has none) as one Columns, in the arrays given (room for
    both): the gradient's two halves then read each unit's row of W once."""
    cdef Py_ssize_t a = 0, b = 0, c = 0, e = 0, k, f, m = P.n_rows
    cdef const floating *nval = <const floating *> N.val
    while a < P.n_cols or b < N.n_cols:
        if b >= N.n_cols or (a < P.n_cols and P.col[a] <= N.col[b]):
            k = P.col[a]
        else:
            k = N.col[b]
        col[c] = k
        start[c] = e
        if a < P.n_cols and P.col[a] == k:
            for f in range(P.start[a], P.start[a + 1]):
                row[e] = P.row[f]
                val[e] = pval[f]
                e += 1
            a += 1
        if b < N.n_cols and N.col[b] == k:
            for f in range(N.start[b], N.start[b + 1]):
                row[e] = N.row[f] + m
                val[e] = 1 if nval == NULL else nval[f]
                e += 1
            b += 1
        c += 1
    start[c] = e
    out.n_rows, out.n_cols = m + N.n_rows, c
    out.col, out.start, out.row, out.val = col, start, row, val
