"""The learned state of an RBM, and the epoch loop every trainer runs.

:class:`RBMState` holds everything CD changes: weights, biases, sigma, the
momentum increments, the persistent chains, the sparsity and centring
statistics, and the seed and counter of the model's random streams. The
estimators, the DBN, patch merging and DistributedFit work on it through its
methods; :func:`train_epochs` is the one epoch loop of single-process
training, the DBN's up-down fine-tuning and the distributed workers.
"""

# SPDX-License-Identifier: BSD-3-Clause

from collections import namedtuple

import numpy as np
from scipy.linalg import blas as _scipy_blas
from sklearn.utils import gen_batches, gen_even_slices

from . import _streams
from ._kernels import UNIT_CODES, _cd
from ._visible import visible_units

# Rate of the moving average of the hidden offsets of the centred gradient
# (Melchior, Fischer & Wiskott 2016 use 0.01).
_OFFSET_RATE = 0.01
# Floor of a learned visible standard deviation (data are expected to be
# standardised or whitened, so sigma lives near 1).
SIGMA_MIN = 1e-3
# Weights or hidden biases beyond this put every sigmoid input far past
# saturation and no update at a sane learning rate brings them back: the
# fit diverged even though the numbers are still finite.
MAX_PARAMETER = 1e6
# Values of the float64 random draw per block when initialising the
# weights (8 MB), so that a model never holds a float64 copy of itself.
_INIT_BLOCK = 2**20


class CDParams(namedtuple("CDParams", [
        "cd_k", "persistent", "sample_visible", "sampled_statistics", "learning_rate",
        "weight_decay", "sparsity_target", "sparsity_cost", "sigma_learning_rate",
        "centering", "learn_sigma", "hidden_unit", "groups"])):
    """The hyper-parameters of one CD step, read from an RBM estimator."""

    __slots__ = ()

    @classmethod
    def of(cls, rbm, learning_rate=None):
        """The step of ``rbm``'s parameters; ``learning_rate`` overrides its own
        (the DBN's up-down fine-tuning has one)."""
        learn_sigma = isinstance(getattr(rbm, "sigma", None), str)
        return cls(
            cd_k=rbm.cd_k,
            persistent=rbm.persistent,
            sample_visible=rbm.sample_visible,
            sampled_statistics=rbm.sampled_statistics,
            learning_rate=rbm.learning_rate if learning_rate is None else learning_rate,
            weight_decay=rbm.weight_decay,
            sparsity_target=rbm.sparsity_target,
            sparsity_cost=rbm.sparsity_cost,
            sigma_learning_rate=rbm.sigma_learning_rate if learn_sigma else 0.0,
            centering=bool(getattr(rbm, "centering", False)),
            learn_sigma=learn_sigma,
            hidden_unit=hidden_unit_code(rbm),
            groups=softmax_groups_array(rbm),
        )

    def step_options(self, *, momentum, key, n_threads):
        """The kernel's ``StepOptions`` (``skdbn/_kernels/_model.pxd``) of one
        minibatch: these parameters and the minibatch's momentum, key and
        thread count."""
        return dict(self._asdict(), momentum=momentum, key=key, n_threads=n_threads,
                    sigma_min=SIGMA_MIN)


def hidden_unit_code(rbm):
    """Kernel code of ``rbm.hidden_units`` (models pickled before it: Bernoulli)."""
    return UNIT_CODES[getattr(rbm, "hidden_units", "bernoulli")]


def softmax_groups_array(rbm):
    """``rbm.softmax_groups`` as the kernels' (n_groups, 2) array, or None."""
    groups = getattr(rbm, "softmax_groups", None)
    if groups is None or len(groups) == 0:
        return None
    return np.ascontiguousarray(np.asarray(groups, dtype=np.intp).reshape(-1, 2))


def visible_blocks(n_visible, size, groups=None):
    """Bounds of the ``size`` workers' visible blocks: :func:`blocks`, with
    a bound that would split a softmax group ((n, 2) [start, stop) pairs)
    moved to the group's start, so that each group lives on one worker."""
    bounds = blocks(n_visible, size)
    for start, stop in ([] if groups is None else groups):
        for k in range(1, size):
            if start < bounds[k] < stop:
                # To the start, unless that empties the block before.
                bounds[k] = int(start) if start > bounds[k - 1] else int(stop)
    return bounds


def momentum_at(momentum, epoch):
    """Momentum of ``epoch`` for the estimators' ``momentum`` parameter."""
    if momentum == "schedule":
        return 0.5 if epoch < 5 else 0.9
    return float(momentum)


def blocks(n, size):
    """Bounds of the ``size`` contiguous blocks of range(n) (DistributedFit's
    split of the units among its workers)."""
    return [(n * k) // size for k in range(size + 1)]


class RBMState:
    """Everything an RBM learns, with the seed of its random streams.

    Parameters
    ----------
    components : ndarray of shape (n_hidden, n_visible)
        Weights.
    intercept_visible, intercept_hidden : ndarray
        Biases.
    sigma : ndarray of shape (n_visible,) or (0,)
        Standard deviations of Gaussian visibles; empty for binary ones.
    chains : ndarray of shape (n_chains, n_hidden)
        Hidden states of the negative chains (PCD's fantasy particles).
    seed : int
        Seed of every random draw of training and inference.
    components_inc, visible_inc, hidden_inc : ndarray, default=zeros
        Momentum increments.
    hidden_mean : ndarray of shape (n_hidden,), default=empty
        Running mean of the hidden probabilities (the sparsity penalty).
    hidden_offsets : ndarray of shape (n_hidden,), default=None
        Hidden offsets of the centred gradient, if it is used.
    """

    #: The arrays a DistributedFit worker starts from, in the order they travel.
    ARRAYS = ("components", "components_inc", "intercept_visible", "visible_inc",
              "intercept_hidden", "hidden_inc", "sigma", "chains", "hidden_mean",
              "hidden_offsets")
    #: What travels to a worker: the arrays, then the estimator's visible
    #: means (the visible offsets of the centred gradient).
    WIRE = ARRAYS + ("visible_means",)
    #: The arrays a worker owns a block of and sends back.
    BLOCKS = ("components", "components_inc", "intercept_visible", "visible_inc",
              "intercept_hidden", "hidden_inc", "chains", "sigma", "hidden_mean",
              "hidden_offsets")

    def __init__(self, components, intercept_visible, intercept_hidden, sigma, chains, seed,
                 *, components_inc=None, visible_inc=None, hidden_inc=None, hidden_mean=None,
                 hidden_offsets=None):
        dtype = components.dtype
        self.components = components
        self.intercept_visible = intercept_visible
        self.intercept_hidden = intercept_hidden
        self.sigma = sigma
        self.chains = chains
        self.seed = int(seed)
        # np.zeros, not zeros_like: calloc'd pages that plain CD never
        # writes cost no memory.
        self.components_inc = (np.zeros(components.shape, dtype=dtype)
                               if components_inc is None else components_inc)
        self.visible_inc = (np.zeros_like(intercept_visible)
                            if visible_inc is None else visible_inc)
        self.hidden_inc = np.zeros_like(intercept_hidden) if hidden_inc is None else hidden_inc
        self.hidden_mean = np.zeros(0, dtype) if hidden_mean is None else hidden_mean
        self.hidden_offsets = hidden_offsets
        # Inference blocks drawn so far: each gets its own key.
        self.n_inference_calls = 0

    @classmethod
    def initial(cls, n_hidden, n_visible, dtype, rng, n_chains, sigma, sparsity_target):
        """A new model: small random weights, zero biases, chains at zero."""
        # Drawn block by block straight into the model's dtype: memory stays
        # the model's size (the same numbers as one draw of the whole).
        W = np.empty((n_hidden, n_visible), dtype=dtype)
        for rows in gen_batches(n_hidden, max(1, _INIT_BLOCK // n_visible)):
            W[rows] = rng.normal(0, 0.01, (rows.stop - rows.start, n_visible))
        # The kernel keeps the hidden layer unit by unit: the chains are the
        # transpose of its array, so Fortran-ordered.
        chains = np.zeros((n_chains, n_hidden), dtype=dtype, order="F")
        return cls(W, np.zeros(n_visible, dtype=dtype), np.zeros(n_hidden, dtype=dtype),
                   np.ascontiguousarray(sigma, dtype=dtype), chains, _streams.draw_seed(rng),
                   hidden_mean=np.full(n_hidden, sparsity_target, dtype=dtype))

    @property
    def dtype(self):
        return self.components.dtype

    @property
    def visible(self):
        """The visible unit type (``skdbn._visible``): Gaussian with this
        ``sigma``, or Bernoulli when it is empty."""
        return visible_units(self.sigma)

    # -- arrays ------------------------------------------------------------
    def arrays(self):
        """The learned arrays by name."""
        names = ("components", "intercept_visible", "intercept_hidden", "sigma", "chains",
                 "components_inc", "visible_inc", "hidden_inc", "hidden_mean")
        out = {name: getattr(self, name) for name in names}
        if self.hidden_offsets is not None:
            out["hidden_offsets"] = self.hidden_offsets
        return out

    def snapshot(self):
        """A copy of the state from which :meth:`restore` puts it back."""
        attributes = dict(vars(self))
        copies = {k: v.copy() for k, v in attributes.items()
                  if isinstance(v, np.ndarray) and v.flags.writeable}
        return attributes, copies

    def restore(self, snapshot):
        """Put the state back as it was at :meth:`snapshot`, into the same
        arrays (references held elsewhere stay valid)."""
        attributes, copies = snapshot
        vars(self).clear()
        vars(self).update(attributes)
        for name, saved in copies.items():
            np.copyto(attributes[name], saved)

    # -- training ----------------------------------------------------------
    def buffers(self, batch_size, params):
        """Scratch arrays of :meth:`step` for minibatches of ``batch_size``;
        grows the chains to ``batch_size`` rows if needed."""
        n_hidden, n_visible = self.components.shape
        if self.chains.shape[0] < batch_size:
            self.chains = np.resize(self.chains, (batch_size, n_hidden))
        self.chains = np.asfortranarray(self.chains)
        return (
            np.empty((2 * batch_size, n_visible), dtype=self.dtype),
            np.empty((n_hidden, 2 * batch_size), dtype=self.dtype),
            np.empty((n_hidden, n_visible) if params.learn_sigma else (0, 0), self.dtype),
        )

    def start_epoch(self, momentum, weight_decay):
        """Clears stale increments when the epoch's update uses none."""
        if momentum == 0 and weight_decay == 0 and self.components_inc.any():
            # The kernel then writes straight into W; stale increments must
            # not leak into a later momentum step. (Only if there are any:
            # filling untouched zero pages would make them resident.)
            self.components_inc.fill(0)

    def step(self, buffers, m, params, momentum, key, n_threads, visible_means=None,
             data=None, lengths=None):
        """One CD-k / PCD update on the minibatch in ``buffers[0][:m]``, or
        on the sparse minibatch ``data`` (``skdbn._csr.columns``).

        Afterwards ``buffers[0][m:2m]`` holds the negative-phase visibles
        (u-space). ``visible_means`` are the visible offsets of the centred
        gradient (``params.centering``); ``lengths``, each row's length for
        word counts (a Replicated Softmax). Returns the kernel's squared
        reconstruction error.
        """
        if params.centering:
            return self._centred_step(buffers, m, params, momentum, key, n_threads,
                                      visible_means, data)
        return self._kernel_step(buffers, m, params, momentum, key, n_threads, data, lengths)

    def _kernel_step(self, buffers, m, p, momentum, key, n_threads, data=None, lengths=None):
        options = p.step_options(momentum=momentum, key=key, n_threads=n_threads)
        return _cd.cd_step(self, buffers, m, options, p.groups, data, lengths)

    def start_centring(self, visible_means):
        """Visible biases at the log-odds of the data means and hidden
        offsets at 0.5: the centred model's usual start."""
        p = np.clip(visible_means, 1e-3, 1 - 1e-3)
        self.intercept_visible[:] = np.log(p) - np.log1p(-p)
        self.hidden_offsets = np.full(self.components.shape[0], 0.5, self.dtype)

    def _centred_step(self, buffers, m, p, momentum, key, n_threads, visible_means,
                      data=None):
        """CD step with the centred gradient (Montavon & Mueller 2012).

        With offsets mu (visible) and lambda (hidden), the centred weight
        gradient is the plain one minus ``dc mu^T + lambda db^T``, where
        ``db``, ``dc`` are the plain bias steps, and the biases absorb the
        offsets' share of the weight step. The parameters stay in the plain
        parametrisation, so the offsets can move without changing the model.
        """
        W, b, c = self.components, self.intercept_visible, self.intercept_hidden
        mu = visible_means.astype(W.dtype)
        if self.hidden_offsets is None:
            self.hidden_offsets = np.full(W.shape[0], 0.5, W.dtype)
        lam = self.hidden_offsets
        b0, c0, W_mu, lam_W = b.copy(), c.copy(), W @ mu, lam @ W
        err = self._kernel_step(buffers, m, p, momentum, key, n_threads, data)
        db, dc = b - b0, c - c0
        # W -= dc mu^T + lambda db^T, as two in-place rank-1 updates of W^T.
        ger = _scipy_blas.sger if W.dtype == np.float32 else _scipy_blas.dger
        ger(-1.0, mu, dc, a=W.T, overwrite_a=True)
        ger(-1.0, db, lam, a=W.T, overwrite_a=True)
        b -= lam @ W - lam_W
        c -= W @ mu - W_mu
        # lambda follows the mean hidden probability of the data (the first
        # m columns of the kernel's hidden scratch).
        lam += _OFFSET_RATE * (buffers[1][:, :m].mean(axis=1) - lam)
        return err

    def divergence(self):
        """Why the parameters show a diverged fit, or None if they do not.

        min / max rather than abs: no temporary the size of the model.
        """
        # Visible biases and sigma of Gaussian units follow the data's scale.
        bounded = (True, True, self.visible.bounded_biases, False)
        arrays = (self.components, self.intercept_hidden, self.intercept_visible, self.sigma)
        reason = None
        for a, bound in zip(arrays, bounded):
            if not a.size:
                continue
            lo, hi = float(a.min()), float(a.max())
            if not (np.isfinite(lo) and np.isfinite(hi)):
                return "the parameters became non-finite"
            if bound and max(-lo, hi) > MAX_PARAMETER:
                reason = (f"the weights grew beyond {MAX_PARAMETER:g}, where every "
                          "hidden unit is saturated")
        return reason

    def next_inference_key(self):
        """Key of the next block of inference draws (gibbs)."""
        call = self.n_inference_calls
        self.n_inference_calls = call + 1
        return _streams.inference_key(self.seed, call)

    # -- DistributedFit ------------------------------------------------------
    def wire_arrays(self, visible_means):
        """The arrays a worker starts from, in the order of :attr:`WIRE`
        (hidden offsets not in use travel empty)."""
        arrays = [getattr(self, name) for name in self.ARRAYS]
        if self.hidden_offsets is None:
            arrays[-1] = np.zeros(0, self.dtype)
        return arrays + [np.asarray(visible_means, dtype=np.float64)]

    @classmethod
    def from_wire(cls, arrays, seed):
        """The state a worker rebuilds from :meth:`wire_arrays` and the seed,
        and the visible means."""
        named = dict(zip(cls.WIRE, arrays))
        visible_means = named.pop("visible_means")
        if not named["hidden_offsets"].size:
            named["hidden_offsets"] = None
        return cls(**named, seed=seed), visible_means

    def _offsets_shape(self):
        return (0,) if self.hidden_offsets is None else self.hidden_offsets.shape

    def _bounds(self, rank, n_workers, groups):
        n_hid, n_vis = self.components.shape
        hb, vb = blocks(n_hid, n_workers), visible_blocks(n_vis, n_workers, groups)
        return slice(vb[rank], vb[rank + 1]), slice(hb[rank], hb[rank + 1])

    def block_shapes(self, rank, n_workers, chain_rows, groups=None):
        """Shapes of worker ``rank``'s blocks, in the order of :attr:`BLOCKS`;
        ``groups``: the model's softmax groups (:func:`visible_blocks`)."""
        n_hid = self.components.shape[0]
        vs, hs = self._bounds(rank, n_workers, groups)
        nv, nh = vs.stop - vs.start, hs.stop - hs.start
        return [(n_hid, nv), (n_hid, nv), (nv,), (nv,), (nh,), (nh,), (chain_rows, n_hid),
                self.sigma[vs].shape, self.hidden_mean.shape, self._offsets_shape()]

    def set_blocks(self, rank, n_workers, parts, groups=None):
        """Write worker ``rank``'s blocks (in the order of :attr:`BLOCKS`): the
        visible columns of the weights, its visible and hidden biases and
        sigma; the chains, the sparsity's running means and the hidden
        offsets, which every worker holds whole, from worker 0."""
        vs, hs = self._bounds(rank, n_workers, groups)
        parts = dict(zip(self.BLOCKS, parts))
        self.components[:, vs] = parts["components"]
        self.components_inc[:, vs] = parts["components_inc"]
        self.intercept_visible[vs] = parts["intercept_visible"]
        self.visible_inc[vs] = parts["visible_inc"]
        self.intercept_hidden[hs] = parts["intercept_hidden"]
        self.hidden_inc[hs] = parts["hidden_inc"]
        self.sigma[vs] = parts["sigma"]
        if rank == 0:
            self.chains = parts["chains"]
            self.hidden_mean = parts["hidden_mean"]
            if self.hidden_offsets is not None:
                self.hidden_offsets = parts["hidden_offsets"]


def train_epochs(X, n_epochs, *, seed, first_epoch, batch_size, begin_epoch, step, end_epoch):
    """The epoch loop: ``n_epochs`` passes over the rows of X in minibatches.

    Minibatches are contiguous, even slices of X visited in the order of
    :func:`skdbn._streams.epoch_order`, so a memory-mapped X is read one
    minibatch at a time. Per epoch: ``momentum = begin_epoch(epoch)``, then
    ``step(batch, epoch, index, momentum)`` for each minibatch (it returns a
    squared error), then ``end_epoch(epoch, summed error, last minibatch)``.
    """
    n_samples = X.shape[0]
    batch_size = min(batch_size, n_samples)
    n_batches = int(np.ceil(n_samples / batch_size))
    slices = list(gen_even_slices(n_samples, n_batches))
    for epoch in range(first_epoch, first_epoch + n_epochs):
        momentum = begin_epoch(epoch)
        order = _streams.epoch_order(seed, epoch, n_batches)
        sq_error = 0.0
        for b in order:
            sq_error += step(X[slices[b]], epoch, int(b), momentum)
        end_epoch(epoch, sq_error, X[slices[order[-1]]])
