# How the kernels see an RBM: the structs that carry a model, the random
# numbers of one phase, and the options of a training step, so that no phase
# or driver takes more than about ten arguments.
#
# Arrays travel as ``void *`` because a struct cannot be fused: each phase is
# fused over ``floating`` through its own typed arguments and reads the
# model's arrays in that type (they always share the dtype of the data).
from cython cimport floating
from libc.stdint cimport uint64_t


# Visible unit types: their math is in _units.pxd, their Python side in
# skdbn/_visible.py. A driver's ``sigma`` argument selects Gaussian units
# (the kernels then work in u = v / sigma); empty, Bernoulli.
cdef enum:
    VISIBLE_BERNOULLI = 0
    VISIBLE_GAUSSIAN = 1
    # Word counts (Replicated Softmax): an example of length D is D draws
    # from one softmax over all visible units, and its hidden biases are
    # D c. The drivers take each example's D (``Model.lengths``).
    VISIBLE_REPLICATED_SOFTMAX = 2


cdef inline int visible_unit_of(const void *sigma) noexcept nogil:
    """The visible unit type a model's sigma pointer (NULL: none) selects:
    the one place that reads the type from sigma."""
    return VISIBLE_BERNOULLI if sigma == NULL else VISIBLE_GAUSSIAN


ctypedef struct Model:
    # An RBM, or one process's block of it (skdbn.distributed).
    void *W                    # (n_hid, n_vis) weights, row-major: components_
    void *b                    # (n_vis,) visible biases
    void *c                    # (n_hid,) hidden biases
    void *sigma                # (n_vis,) std of Gaussian visibles; NULL otherwise
    int visible_unit           # VISIBLE_BERNOULLI or VISIBLE_GAUSSIAN, from sigma
    Py_ssize_t n_hid
    Py_ssize_t n_vis
    Py_ssize_t hid0            # index of unit 0 of this block in the whole model:
    Py_ssize_t vis0            #   the random numbers follow the global index
    int hidden_unit            # hidden unit type (_units.pxd)
    const Py_ssize_t *groups   # [start, stop) column pairs of softmax groups
    Py_ssize_t n_groups
    const void *lengths        # Replicated Softmax: (rows,) each example's length D,
                               # in the model's dtype; NULL for other visibles


ctypedef struct Draw:
    # The random numbers of one phase, and what it writes.
    uint64_t key               # the minibatch's key (_random.batch_key)
    uint64_t stream            # the sampling stage (skdbn._streams)
    bint sample                # visible phases: write samples, not means
    bint sampled               # hidden phases: the statistics are the samples
    double sign                # hidden phases: factor of the statistics written
    void *samples              # hidden phases: where draws go, or NULL (none)
    Py_ssize_t lds             # their stride (same layout as the statistics)


ctypedef struct StepOptions:
    # One CD-k / PCD update; built by Cython from a dict of these names.
    int cd_k
    bint persistent
    bint sample_visible
    bint sampled_statistics
    double learning_rate
    double momentum
    double weight_decay
    double sparsity_target
    double sparsity_cost       # 0: no sparsity penalty
    double sigma_learning_rate
    double sigma_min
    uint64_t key
    int n_threads
    int hidden_unit


ctypedef struct Rule:
    # The weight update of a step: W_inc = momentum W_inc + alpha G - decay W.
    double alpha               # learning rate / examples (or words) in the minibatch
    double momentum
    double decay               # learning rate * weight decay
    bint direct                # no momentum, no decay: W += alpha G in the GEMM


ctypedef struct Columns:
    # The nonzeros of n_rows rows by column: column col[c] holds entries
    # start[c] .. start[c + 1] - 1, of rows row[e] (increasing) and values
    # val[e] (NULL: all 1, sampled binary units).
    Py_ssize_t n_rows
    Py_ssize_t n_cols          # columns with a nonzero
    const Py_ssize_t *col      # their indices, increasing
    const Py_ssize_t *start
    const Py_ssize_t *row
    const void *val


ctypedef struct Stats:
    # The stacked statistics of the gradient G = hid^T vis over 2m rows
    # (the negative half negated): hid is (2m, n_hid), or (n_hid, 2m) by unit.
    const void *hid
    Py_ssize_t ldh
    bint by_unit
    const void *vis            # (2m, n_vis), row-major
    Py_ssize_t m2
    const Columns *pos         # the data (first m rows) as Columns, or NULL: in vis
    const Columns *neg         # the negative visibles as Columns, or NULL: in vis
    const Columns *both        # pos and neg merged (rows m:2m the negative), or NULL


cdef inline Model model_of(const floating[:, ::1] W, const floating *b, const floating *c,
                           const floating *sigma, int hidden_unit) noexcept:
    """The Model of a whole RBM: W (n_hid, n_vis) and its biases (NULL where
    a driver does not use them), no softmax groups."""
    cdef Model M
    M.W, M.b, M.c, M.sigma = <void *> &W[0, 0], <void *> b, <void *> c, <void *> sigma
    M.n_hid, M.n_vis, M.hid0, M.vis0 = W.shape[0], W.shape[1], 0, 0
    M.hidden_unit = hidden_unit
    M.visible_unit = visible_unit_of(sigma)
    M.groups, M.n_groups = NULL, 0
    M.lengths = NULL
    return M


cdef inline Draw hidden_draw(uint64_t key, uint64_t stream, bint sampled, double sign,
                             void *samples, Py_ssize_t lds) noexcept nogil:
    """A hidden phase: statistics ``sign`` * means (samples if ``sampled``),
    draws into ``samples`` (stride ``lds``) unless NULL."""
    cdef Draw d
    d.key = key
    d.stream = stream
    d.sample = False
    d.sampled = sampled
    d.sign = sign
    d.samples = samples
    d.lds = lds
    return d


cdef inline Draw visible_draw(uint64_t key, uint64_t stream, bint sample) noexcept nogil:
    """A visible phase: samples if ``sample``, else means."""
    cdef Draw d = hidden_draw(key, stream, False, 1, NULL, 0)
    d.sample = sample
    return d
