"""Restricted Boltzmann Machines trained by contrastive divergence.

The estimators own validation, parameters and the epoch / minibatch loop; all
per-minibatch math runs in the compiled kernels (:mod:`skdbn._kernels`).
"""

# SPDX-License-Identifier: BSD-3-Clause

import time
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state, gen_batches
from sklearn.utils.validation import check_is_fitted

from . import _streams
from ._csr import columns
from ._kernels import UNIT_CODES, _inference
from ._state import (
    SIGMA_MIN,
    CDParams,
    RBMState,
    hidden_unit_code,
    momentum_at,
    softmax_groups_array,
    train_epochs,
)
from ._visible import BernoulliVisible, GaussianVisible
from .distributed._backend import active_backend
from .utils._compat import (
    Interval,
    StrOptions,
    _fit_context,
    validate_data,
)
from .utils._atomic import atomic_fit
from .utils._threads import kernel_threads
from .utils._validation import check_dtype_range

# Rows per block in transform-like methods: bounds the scratch memory of a
# call on a large (e.g. memory-mapped) input.
_CHUNK_ROWS = 4096
# Attributes of the state in pickles of the estimators before RBMState.
_PICKLED_STATE = ("components_", "intercept_visible_", "intercept_hidden_", "_sigma",
                  "h_samples_", "_seed", "_components_inc", "_visible_inc", "_hidden_inc",
                  "_hidden_mean", "_hidden_offsets", "_n_inference_calls")


def _state_array(name):
    """A fitted attribute that reads and writes the state's array ``name``."""
    return property(lambda self: getattr(self._state, name),
                    lambda self, value: setattr(self._state, name, value))


class _BaseRBM(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Shared training loop and inference of the RBM estimators.

    Subclasses set ``_visible_type`` (``skdbn._visible``) and implement
    ``_initial_sigma``.
    """

    _visible_type = BernoulliVisible
    # What score_samples measures, as the verbose lines name it.
    _score_name = "pseudo-likelihood"

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "n_iter": [Interval(Integral, 0, None, closed="left")],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "cd_k": [Interval(Integral, 1, None, closed="left")],
        "persistent": ["boolean"],
        "sample_visible": ["boolean"],
        "sampled_statistics": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="left"), StrOptions({"schedule"})],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "sparsity_target": [Interval(Real, 0, 1, closed="neither")],
        "sparsity_cost": [Interval(Real, 0, None, closed="left")],
        "dtype": [None, StrOptions({"float32", "float64"}), type],
        "n_jobs": [None, Integral],
        # One name per unit type of the kernels (skdbn/_kernels/_units.pxd).
        "hidden_units": [StrOptions({"bernoulli", "gaussian", "nrelu"})],
    }

    # ------------------------------------------------------------------
    # Validation helpers
    # ------------------------------------------------------------------
    def _validate_X(self, X, reset):
        X = validate_data(
            self,
            X,
            accept_sparse="csr",
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        self._visible_type.check_support(X, type(self).__name__)
        check_dtype_range(X, self._model_dtype(X) if reset else self.components_.dtype)
        return X

    def _validate_fitted_input(self, X):
        """check_is_fitted + validation of X for the inference methods."""
        check_is_fitted(self)
        X = validate_data(
            self, X, accept_sparse="csr", dtype=(np.float64, np.float32), reset=False
        )
        check_dtype_range(X, self.components_.dtype)
        return X

    def _model_dtype(self, X):
        if self.dtype is None:
            return X.dtype
        dtype = np.dtype(self.dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}.")
        return dtype

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    # ------------------------------------------------------------------
    # Fitting
    # ------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    @atomic_fit(fresh=True)
    def fit(self, X, y=None):
        """Fit the model to the data X by ``n_iter`` passes of CD-k / PCD.

        Minibatches are contiguous slices of ``X`` visited in a shuffled
        order, so a memory-mapped ``X`` is read one minibatch at a time and
        never copied whole.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted model.
        """
        X = self._validate_X(X, reset=True)
        self._initialize(X)
        self._accumulate_means(X, first=True)
        self._run_epochs(X, self.n_iter)
        self._check_saturation(X)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    @atomic_fit(fresh=False)
    def partial_fit(self, X, y=None):
        """Fit the model on one chunk of data: one pass over its minibatches.

        Unlike scikit-learn's ``BernoulliRBM.partial_fit``, which takes a
        single gradient step whatever the chunk size, this learns from every
        ``batch_size`` minibatch of the chunk.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A chunk of training data.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The partially fitted model.
        """
        first = not hasattr(self, "components_")
        X = self._validate_X(X, reset=first)
        if first:
            self._initialize(X)
        self._accumulate_means(X, first=first)
        self._run_epochs(X, 1)
        self._check_saturation(X)
        return self

    def _initialize(self, X):
        n_features = X.shape[1]
        dtype = self._model_dtype(X)
        rng = check_random_state(self.random_state)
        # One chain per row of the largest minibatch this data can give.
        self._state = RBMState.initial(
            self.n_components, n_features, dtype, rng,
            n_chains=min(self.batch_size, X.shape[0]),
            sigma=self._initial_sigma(n_features), sparsity_target=self.sparsity_target)
        self.n_iter_ = 0
        self.reconstruction_errors_ = []
        self.visible_means_ = np.zeros(n_features)
        self.n_samples_seen_ = 0

    # The learned arrays live in the state; these are their public names.
    @property
    def state_(self):
        """The learned state (:class:`skdbn._state.RBMState`): weights, biases,
        sigma, increments, chains and the seed of the random streams."""
        return self._state

    components_ = _state_array("components")
    intercept_hidden_ = _state_array("intercept_hidden")
    intercept_visible_ = _state_array("intercept_visible")
    h_samples_ = _state_array("chains")

    def __setstate__(self, state):
        if "components_" in state and "_state" not in state:
            # Pickled by an skdbn that kept the arrays on the estimator.
            old = {name: state.pop(name, None) for name in _PICKLED_STATE}
            model = RBMState(
                old["components_"], old["intercept_visible_"], old["intercept_hidden_"],
                old["_sigma"], old["h_samples_"], old["_seed"],
                components_inc=old["_components_inc"], visible_inc=old["_visible_inc"],
                hidden_inc=old["_hidden_inc"], hidden_mean=old["_hidden_mean"],
                hidden_offsets=old["_hidden_offsets"])
            model.n_inference_calls = old["_n_inference_calls"] or 0
            state["_state"] = model
        super().__setstate__(state)

    def _accumulate_means(self, X, first):
        """Running mean of each feature over all the training data seen.

        AIS starts from a base model with these means (metrics), and the
        centred gradient uses them as the visible offsets.
        """
        if not hasattr(self, "n_samples_seen_"):
            # Assembled from parts (merge_patch_rbms) or unpickled from an
            # older skdbn: the means start with this chunk.
            self.visible_means_ = np.zeros(X.shape[1])
            self.n_samples_seen_ = 0
        sums = np.asarray(X.sum(axis=0, dtype=np.float64)).ravel()
        self.n_samples_seen_ += X.shape[0]
        self.visible_means_ += (sums - X.shape[0] * self.visible_means_) / self.n_samples_seen_
        if self._centering() and first:
            self._state.start_centring(self.visible_means_)

    def _centering(self):
        return False

    def _initial_sigma(self, n_features):
        return np.zeros(0)

    def _learn_sigma(self):
        return False

    def _run_epochs(self, X, n_epochs):
        """``n_epochs`` passes over X, one kernel call per minibatch."""
        backend = active_backend()
        if backend is not None:
            # Inside ``with DistributedFit(...)``: the workers run the epochs.
            self._check_distributable()
            backend.run_epochs(self, X, n_epochs)
            return
        state = self._state
        n_samples = X.shape[0]
        params = CDParams.of(self)
        buffers = state.buffers(min(self.batch_size, n_samples), params)
        vis = buffers[0]

        with kernel_threads(self.n_jobs) as n_threads:
            begin = time.perf_counter()

            def begin_epoch(epoch):
                nonlocal begin
                begin = time.perf_counter()
                momentum = momentum_at(self.momentum, epoch)
                state.start_epoch(momentum, self.weight_decay)
                return momentum

            def step(batch, epoch, index, momentum):
                m = batch.shape[0]
                data = None
                if sp.issparse(batch) and not params.learn_sigma:
                    # Sparse minibatches reach the kernel as columns of
                    # nonzeros, in u-space; a learned sigma needs the dense
                    # data (centred real values are not sparse anyway).
                    data = columns(batch, vis.dtype, state.visible)
                else:
                    if sp.issparse(batch):
                        batch = batch.toarray()
                    np.copyto(vis[:m], batch, casting="same_kind")
                err = state.step(buffers, m, params, momentum,
                                 _streams.minibatch_key(state.seed, epoch, index), n_threads,
                                 self.visible_means_, data, self._lengths(batch))
                if not np.isfinite(err):
                    self._diverged(epoch)
                return err

            def end_epoch(epoch, sq_error, last):
                if not self._parameters_finite():
                    self._diverged(epoch)
                self.n_iter_ += 1
                if self.persistent:
                    # The kernel's error compares data with fantasy particles;
                    # report a real reconstruction of the last minibatch.
                    # The kernels directly: X is validated already, and
                    # reconstruct() would re-check its feature names.
                    recon = self._visible_from_hidden(
                        self._hidden_probs(last, n_threads), n_threads,
                        lengths=self._lengths(last))
                    diff = (last.toarray() if sp.issparse(last) else last) - recon
                    error = float(np.sum(diff.astype(np.float64) ** 2)) / last.shape[0]
                else:
                    error = sq_error / n_samples
                self.reconstruction_errors_.append(error)
                if self.verbose:
                    # scikit-learn's line (scripts parse it), then ours.
                    seconds = time.perf_counter() - begin
                    print(
                        f"[{type(self).__name__}] Iteration {self.n_iter_}, "
                        f"{self._score_name} = {self._score_samples(X).mean():.2f}, "
                        f"time = {seconds:.2f}s, reconstruction error = {error:.4f}"
                    )

            train_epochs(X, n_epochs, seed=state.seed, first_epoch=self.n_iter_,
                         batch_size=self.batch_size, begin_epoch=begin_epoch, step=step,
                         end_epoch=end_epoch)

    def _lengths(self, X):
        """Each row's length for the kernels (word counts), or None."""
        return None

    def _down_lengths(self, Hs):
        """The lengths a top-down pass from hidden states Hs gives the
        kernels (a DBN's generative pass), or None."""
        return None

    def _check_distributable(self):
        """Raise if DistributedFit cannot train this model."""

    def _parameters_finite(self):
        return self._state.divergence() is None

    def _diverged(self, epoch):
        reason = self._state.divergence() or "the reconstruction error became non-finite"
        hint = f"a smaller learning_rate (now {self.learning_rate})"
        if self._learn_sigma():
            hint += f" or sigma_learning_rate (now {self.sigma_learning_rate})"
        raise FloatingPointError(
            f"{type(self).__name__} diverged during epoch {epoch + 1}: {reason}. Use "
            f"{hint} and check that the data are scaled; the model was left as it "
            "was before this call."
        )

    def _check_saturation(self, X):
        """Warn when the fitted model is useless on the first minibatch of X."""
        batch = X[: min(self.batch_size, X.shape[0])]
        if sp.issparse(batch):
            batch = batch.toarray()
        batch = np.asarray(batch)
        name = type(self).__name__
        # Saturation is a property of Bernoulli (logistic) hidden units.
        if batch.shape[0] >= 2 and hidden_unit_code(self) == UNIT_CODES["bernoulli"]:
            with kernel_threads(self.n_jobs) as n_threads:
                probs = self._hidden_probs(batch, n_threads)
            constant = np.all(probs < 1e-3, axis=0) | np.all(probs > 1 - 1e-3, axis=0)
            if np.all(constant):
                warnings.warn(
                    f"{name} is saturated: every hidden unit is always on or always off "
                    "on the training data, so transform gives constant features. Use a "
                    f"smaller learning_rate (now {self.learning_rate}) and check that "
                    "the data are scaled.",
                    UserWarning,
                    stacklevel=5,
                )
        if self._learn_sigma():
            spread = float(np.max(batch) - np.min(batch)) if batch.size else 0.0
            if float(self._state.sigma.max()) > 10 * max(spread, SIGMA_MIN):
                warnings.warn(
                    f"{name} learned a visible standard deviation of "
                    f"{float(self._state.sigma.max()):.3g}, far beyond the spread of the data "
                    f"({spread:.3g}): the model ignores its input. Use a smaller "
                    f"sigma_learning_rate (now {self.sigma_learning_rate}) and "
                    "standardise the data.",
                    UserWarning,
                    stacklevel=5,
                )

    # ------------------------------------------------------------------
    # Inference
    # ------------------------------------------------------------------
    def _scaled_block(self, X, sl):
        """Rows ``sl`` of X in u = v / sigma, in the model's dtype: a
        C-contiguous array, or the nonzeros by column of sparse rows
        (``skdbn._csr.columns``), which the kernels take as they are."""
        block = X[sl]
        if sp.issparse(block):
            return columns(block, self.components_.dtype, self._state.visible)
        block = np.ascontiguousarray(block, dtype=self.components_.dtype)
        return self._state.visible.to_input(block)

    def _hidden_probs(self, X, n_threads):
        out = np.empty((X.shape[0], self.n_components), dtype=self.components_.dtype)
        for sl in gen_batches(X.shape[0], _CHUNK_ROWS):
            _inference.hidden_given_visible(
                self._scaled_block(X, sl),
                self.components_,
                self.intercept_hidden_,
                out[sl],
                n_threads=n_threads,
                hidden_unit=hidden_unit_code(self),
                lengths=self._lengths(X[sl]),
            )
        return out

    def _visible_from_hidden(self, Hs, n_threads, sample=False, key=0, stream=0,
                             lengths=None):
        Hs = np.ascontiguousarray(Hs, dtype=self.components_.dtype)
        out = np.empty((Hs.shape[0], self.components_.shape[1]), dtype=Hs.dtype)
        _inference.visible_given_hidden(
            Hs,
            self.components_,
            self.intercept_visible_,
            self._state.sigma,
            out,
            (key, stream) if sample else None,
            n_threads,
            groups=softmax_groups_array(self),
            lengths=lengths,
        )
        return out

    def transform(self, X):
        """Hidden conditional means ``E[h | v=X]``: ``P(h=1 | v=X)`` for
        Bernoulli hidden units, the linear input for Gaussian ones.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The data to be transformed.

        Returns
        -------
        h : ndarray of shape (n_samples, n_components)
            Latent representations of the data, in the model's dtype.
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        with kernel_threads(self.n_jobs) as n_threads:
            return self._hidden_probs(X, n_threads)

    def reconstruct(self, X):
        """Mean-field reconstruction ``E[v | h = E[h | v=X]]``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Visible data.

        Returns
        -------
        X_rec : ndarray of shape (n_samples, n_features)
            The reconstruction, in the model's dtype.
        """
        X = self._validate_fitted_input(X)
        with kernel_threads(self.n_jobs) as n_threads:
            return self._visible_from_hidden(self._hidden_probs(X, n_threads), n_threads,
                                             lengths=self._lengths(X))

    def _next_inference_key(self):
        return self._state.next_inference_key()

    def gibbs(self, v):
        """Perform one Gibbs sampling step ``v -> h -> v'``.

        Each call draws fresh random numbers (successive calls continue one
        reproducible stream determined by ``random_state``).

        Parameters
        ----------
        v : {array-like, sparse matrix} of shape (n_samples, n_features)
            Values of the visible layer to start from.

        Returns
        -------
        v_new : ndarray of shape (n_samples, n_features)
            Values of the visible layer after one Gibbs step, in the model's
            dtype (0/1 for Bernoulli visibles).
        """
        v = self._validate_fitted_input(v)
        dtype = self.components_.dtype
        h = np.empty((v.shape[0], self.n_components), dtype=dtype)
        out = np.empty((v.shape[0], self.components_.shape[1]), dtype=dtype)
        with kernel_threads(self.n_jobs) as n_threads:
            # Rows are keyed per block so that any v.shape[0] works.
            for sl in gen_batches(v.shape[0], _CHUNK_ROWS):
                key = self._next_inference_key()
                p = np.empty((sl.stop - sl.start, self.n_components), dtype=dtype)
                lengths = self._lengths(v[sl])
                _inference.hidden_given_visible(
                    self._scaled_block(v, sl),
                    self.components_,
                    self.intercept_hidden_,
                    p,
                    h[sl],
                    (key, _streams.GIBBS_HIDDEN),
                    n_threads,
                    hidden_unit_code(self),
                    lengths=lengths,
                )
                out[sl] = self._visible_from_hidden(
                    h[sl], n_threads, sample=True, key=key, stream=_streams.GIBBS_VISIBLE,
                    lengths=lengths,
                )
        return out

    def free_energy(self, X):
        """Free energy ``F(v) = -log sum_h exp(-E(v, h))`` of each sample.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Visible data.

        Returns
        -------
        free_energy : ndarray of shape (n_samples,)
            ``-log p(v) - log Z``: lower means more probable under the model.
        """
        X = self._validate_fitted_input(X)
        return self._free_energy(X)

    def _free_energy(self, X):
        out = np.empty(X.shape[0], dtype=self.components_.dtype)
        with kernel_threads(self.n_jobs) as n_threads:
            for sl in gen_batches(X.shape[0], _CHUNK_ROWS):
                _inference.hidden_free_energy(
                    self._scaled_block(X, sl),
                    self.components_,
                    self.intercept_hidden_,
                    out[sl],
                    n_threads=n_threads,
                    hidden_unit=hidden_unit_code(self),
                    lengths=self._lengths(X[sl]),
                )
        out = self._state.visible.energy(X, self.intercept_visible_) - out
        if not np.all(np.isfinite(out)):
            raise ValueError(
                "The free energy of X overflows: X has values too large for this model "
                "(e.g. far beyond the spread of the training data). Scale the data like "
                "the training data."
            )
        return out


class BernoulliRBM(_BaseRBM):
    """Bernoulli Restricted Boltzmann Machine trained by CD-k or PCD.

    A drop-in replacement for :class:`sklearn.neural_network.BernoulliRBM`:
    the same constructor parameters with the same defaults (persistent
    contrastive divergence, sampled visible reconstructions), the same fitted
    attributes and the same meaning of ``transform``, ``gibbs`` and
    ``score_samples``. Each minibatch runs in one multithreaded Cython/BLAS
    kernel, in float32 when the data are float32.

    The energy is ``E(v, h) = -v^T W^T h - b^T v - c^T h`` with binary ``v``
    and ``h`` (report §1.4, eq. 1.1); visible values in [0, 1] are read as
    probabilities.

    Parameters
    ----------
    n_components : int, default=256
        Number of binary hidden units.
    learning_rate : float, default=0.1
        Learning rate for the weights and biases. The gradient is averaged
        over the minibatch.
    batch_size : int, default=10
        Number of examples per minibatch.
    n_iter : int, default=10
        Number of passes over the training data (epochs).
    verbose : int, default=0
        Print one line per epoch, scikit-learn's
        ``[BernoulliRBM] Iteration %d, pseudo-likelihood = %.2f, time = %.2fs``
        (the mean of :meth:`score_samples` over X, computed after the epoch's
        time is taken) followed by ``, reconstruction error = %.4f``.
    random_state : int, RandomState instance or None, default=None
        Determines the initial weights and every random sample. The same seed
        gives the same samples whatever ``n_jobs``.
    cd_k : int, default=1
        Number of Gibbs steps of the negative phase (CD-k).
    persistent : bool, default=True
        Persistent contrastive divergence (the negative chain continues from
        ``h_samples_`` across minibatches, as in scikit-learn); if False,
        plain CD-k restarting from the data.
    sample_visible : bool, default=True
        Sample the negative-phase visible states; if False, use their
        probabilities (mean-field reconstructions).
    sampled_statistics : bool, default=False
        Use binary hidden samples instead of hidden probabilities in the
        gradient. Noisier, but with sampled visibles every statistic is
        binary and the gradient sums are exact: :class:`skdbn.DistributedFit`
        then reproduces single-process training bit for bit, and sends only
        bits (report §4.4.1).
    momentum : float in [0, 1) or "schedule", default=0.0
        Momentum of the parameter updates. ``"schedule"`` uses 0.5 for the
        first 5 epochs and 0.9 after (each ``partial_fit`` call is an epoch).
    weight_decay : float, default=0.0
        L2 penalty on the weights: each update subtracts
        ``learning_rate * weight_decay * W``.
    sparsity_target : float in (0, 1), default=0.1
        Target mean activation of the hidden units for the sparsity penalty.
    sparsity_cost : float, default=0.0
        Strength of the sparsity penalty; 0 disables it. The penalty is
        ``sparsity_cost * (q - sparsity_target)`` on every hidden unit's total
        input, where ``q`` is a running mean of its activation.
    centering : bool, default=False
        Centred gradient (Montavon & Mueller, 2012; Melchior, Fischer &
        Wiskott, 2016): the statistics are taken around offsets, the
        training data's feature means for the visible units and a moving
        average of the data's hidden probabilities for the hidden units,
        which conditions the gradient better (a higher log-likelihood for
        the same training time). The visible biases then start at the
        log-odds of the feature means. The model keeps the usual
        parametrisation, so every other method is unchanged.
    dtype : {None, "float32", "float64"}, default=None
        Floating type of the model. None follows the input (float32 stays
        float32, anything else becomes float64).
    n_jobs : int, default=None
        Number of threads for the kernels and BLAS. None or -1 uses all the
        cores available.

    hidden_units : {"bernoulli", "gaussian", "nrelu"}, default="bernoulli"
        Type of the hidden units. ``"bernoulli"``: binary logistic units,
        ``transform`` gives ``P(h=1 | v)``. ``"gaussian"``: linear units with
        unit-variance Gaussian noise, ``h | v ~ N(c + W u, 1)``;
        ``transform`` gives their input (the code layer of a deep
        autoencoder). ``"nrelu"``: noisy rectified linear units,
        ``max(0, x + N(0, sigmoid(x)))`` with ``x = c + W u``; ``transform``
        gives ``max(0, x)``, and their free energy is an approximation, which
        :mod:`skdbn.metrics` refuses. See :ref:`rbm_units`.

    softmax_groups : array-like of shape (n_groups, 2), default=None
        ``(start, stop)`` column ranges of groups of softmax visible units
        among the Bernoulli ones: each group is a K-way one-hot block (e.g.
        the 10 label units a generative classifier joins to its top RBM),
        whose mean given the hidden units is the softmax of its inputs and
        whose sample is one-hot. Ranges must be sorted, disjoint and at least
        2 wide. :mod:`skdbn.metrics` and :class:`~skdbn.DistributedFit` do
        not handle them.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Weight matrix ``W``.
    intercept_hidden_ : ndarray of shape (n_components,)
        Biases of the hidden units.
    intercept_visible_ : ndarray of shape (n_features,)
        Biases of the visible units.
    h_samples_ : ndarray of shape (min(batch_size, n_samples), n_components)
        Hidden states of the negative chain (the fantasy particles for PCD).
    state_ : RBMState
        The learned state as one object: the arrays above, sigma, the
        momentum increments, the chains and the seed of the random streams,
        with the methods that train it (one CD step, snapshot / restore,
        the blocks :class:`skdbn.DistributedFit` exchanges).
    n_iter_ : int
        Number of epochs run (``partial_fit`` calls count one each).
    reconstruction_errors_ : list of float
        Mean squared reconstruction error per sample, one per epoch.
    visible_means_ : ndarray of shape (n_features,)
        Mean of each feature over all the training data (every
        ``partial_fit`` chunk): the base model of
        :func:`skdbn.metrics.log_partition_ais`.
    n_samples_seen_ : int
        Number of training samples seen.
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`, when they are all strings.

    See Also
    --------
    GaussianBernoulliRBM : RBM with real-valued Gaussian visible units.
    sklearn.neural_network.BernoulliRBM : The scikit-learn estimator this replaces.

    References
    ----------
    .. [1] Krizhevsky, A. Learning Multiple Layers of Features from Tiny
       Images. Technical report, University of Toronto, 2009.
    .. [2] Tieleman, T. Training Restricted Boltzmann Machines using
       Approximations to the Likelihood Gradient. ICML 2008.
    .. [3] Hinton, G. A Practical Guide to Training Restricted Boltzmann
       Machines. UTML TR 2010-003.

    Examples
    --------
    >>> import numpy as np
    >>> from skdbn import BernoulliRBM
    >>> X = np.array([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=np.float32)
    >>> model = BernoulliRBM(n_components=2, random_state=0).fit(X)
    >>> model.transform(X).shape
    (4, 2)
    >>> model.transform(X).dtype
    dtype('float32')
    """

    def __init__(
        self,
        n_components=256,
        *,
        learning_rate=0.1,
        batch_size=10,
        n_iter=10,
        verbose=0,
        random_state=None,
        cd_k=1,
        persistent=True,
        sample_visible=True,
        sampled_statistics=False,
        momentum=0.0,
        weight_decay=0.0,
        sparsity_target=0.1,
        sparsity_cost=0.0,
        centering=False,
        dtype=None,
        n_jobs=None,
        hidden_units="bernoulli",
        softmax_groups=None,
    ):
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.verbose = verbose
        self.random_state = random_state
        self.cd_k = cd_k
        self.persistent = persistent
        self.sample_visible = sample_visible
        self.sampled_statistics = sampled_statistics
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.sparsity_target = sparsity_target
        self.sparsity_cost = sparsity_cost
        self.centering = centering
        self.dtype = dtype
        self.n_jobs = n_jobs
        self.hidden_units = hidden_units
        self.softmax_groups = softmax_groups

    _parameter_constraints: dict = {
        **_BaseRBM._parameter_constraints,
        "centering": ["boolean"],
        "softmax_groups": [None, "array-like"],
    }

    def _centering(self):
        return self.centering

    def score_samples(self, X):
        """Pseudo-likelihood of X, as in scikit-learn's BernoulliRBM.

        The free energy of each sample is compared with that of a copy with
        one randomly chosen feature flipped; the log-logistic of the
        difference, times ``n_features``, estimates ``log p(v)``. The flipped
        feature is drawn from ``random_state``, so a model with an integer
        seed scores the same data the same way every call.

        This is scikit-learn's meaning, kept for a drop-in replacement. It
        needs no partition function; for the log-likelihood itself use
        :func:`skdbn.metrics.log_likelihood`.
        :meth:`GaussianBernoulliRBM.score_samples` differs: a flipped bit has
        no meaning for real-valued visibles.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Binary visible data.

        Returns
        -------
        pseudo_likelihood : ndarray of shape (n_samples,)
            Pseudo-likelihood of each sample (proxy for the log-likelihood).
        """
        return self._score_samples(self._validate_fitted_input(X))

    def _score_samples(self, v):
        rng = check_random_state(self.random_state)
        ind = (np.arange(v.shape[0]), rng.randint(0, v.shape[1], v.shape[0]))
        if sp.issparse(v):
            flip = sp.csr_matrix(
                (-2 * np.asarray(v[ind]).ravel() + 1, ind), shape=v.shape
            )
            v_ = v + flip
        else:
            v_ = v.copy()
            v_[ind] = 1 - v_[ind]
        fe = self._free_energy(v)
        fe_ = self._free_energy(v_)
        return -v.shape[1] * np.logaddexp(0, -(fe_ - fe))


class GaussianBernoulliRBM(_BaseRBM):
    """RBM with Gaussian visible units and (by default) binary hidden units.

    The energy (report §1.4.3, eq. 1.8) is
    ``E(v, h) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - c^T h
    - sum_ij (v_i / sigma_i) h_j W_ji``: the hidden input is
    ``(v / sigma) @ W.T + c`` and ``v | h`` is Gaussian with mean
    ``b + sigma * (h @ W)`` and standard deviation ``sigma``. ``sigma`` is
    fixed or learned by the rule of §1.4.3.2.

    Parameters
    ----------
    n_components : int, default=256
        Number of binary hidden units.
    learning_rate : float, default=0.01
        Learning rate for the weights and biases (Gaussian visibles want a
        smaller rate than binary ones).
    batch_size : int, default=10
        Number of examples per minibatch.
    n_iter : int, default=10
        Number of passes over the training data (epochs).
    verbose : int, default=0
        Print one line per epoch:
        ``[GaussianBernoulliRBM] Iteration %d, -free energy = %.2f, time = %.2fs,
        reconstruction error = %.4f``, where -free energy is the mean of
        :meth:`score_samples` over X.
    random_state : int, RandomState instance or None, default=None
        Determines the initial weights and every random sample.
    cd_k : int, default=1
        Number of Gibbs steps of the negative phase (CD-k).
    persistent : bool, default=False
        Persistent contrastive divergence instead of CD-k.
    sample_visible : bool, default=False
        Add Gaussian noise to the negative-phase visibles; by default they
        are the conditional means (mean-field reconstructions).
    sampled_statistics : bool, default=False
        Use binary hidden samples instead of hidden probabilities in the
        gradient. Noisier; under :class:`skdbn.DistributedFit` the hidden
        activities then travel as bits (report §4.4.1).
    sigma : float, array-like of shape (n_features,) or "learn", default=1.0
        Standard deviation of the visible units: one value, one per feature,
        or ``"learn"`` to learn one per feature starting from 1 (data are
        expected to be standardised or whitened).
    sigma_learning_rate : float, default=1e-3
        Learning rate of ``sigma`` when ``sigma="learn"``.
    momentum : float in [0, 1) or "schedule", default=0.0
        Momentum of the parameter updates; ``"schedule"`` is 0.5 for five
        epochs then 0.9.
    weight_decay : float, default=0.0
        L2 penalty on the weights.
    sparsity_target : float in (0, 1), default=0.1
        Target mean activation of the hidden units.
    sparsity_cost : float, default=0.0
        Strength of the sparsity penalty; 0 disables it.
    dtype : {None, "float32", "float64"}, default=None
        Floating type of the model; None follows the input.
    n_jobs : int, default=None
        Number of threads; None or -1 uses all the cores available.

    hidden_units : {"bernoulli", "gaussian", "nrelu"}, default="bernoulli"
        Type of the hidden units. ``"bernoulli"``: binary logistic units,
        ``transform`` gives ``P(h=1 | v)``. ``"gaussian"``: linear units with
        unit-variance Gaussian noise, ``h | v ~ N(c + W u, 1)``;
        ``transform`` gives their input (the code layer of a deep
        autoencoder). ``"nrelu"``: noisy rectified linear units,
        ``max(0, x + N(0, sigmoid(x)))`` with ``x = c + W u``; ``transform``
        gives ``max(0, x)``, and their free energy is an approximation, which
        :mod:`skdbn.metrics` refuses. See :ref:`rbm_units`.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Weight matrix ``W`` (acting on ``v / sigma``).
    intercept_hidden_ : ndarray of shape (n_components,)
        Biases of the hidden units.
    intercept_visible_ : ndarray of shape (n_features,)
        Means of the visible units when all hidden units are off.
    sigma_ : ndarray of shape (n_features,)
        Standard deviation of each visible unit (fixed or learned).
    h_samples_ : ndarray of shape (min(batch_size, n_samples), n_components)
        Hidden states of the negative chain.
    state_ : RBMState
        The learned state as one object: the arrays above, sigma, the
        momentum increments, the chains and the seed of the random streams,
        with the methods that train it (one CD step, snapshot / restore,
        the blocks :class:`skdbn.DistributedFit` exchanges).
    n_iter_ : int
        Number of epochs run.
    reconstruction_errors_ : list of float
        Mean squared reconstruction error per sample, one per epoch.
    visible_means_ : ndarray of shape (n_features,)
        Mean of each feature over all the training data (every
        ``partial_fit`` chunk).
    n_samples_seen_ : int
        Number of training samples seen.
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`, when they are all strings.

    See Also
    --------
    BernoulliRBM : RBM with binary visible units.

    References
    ----------
    .. [1] Krizhevsky, A. Learning Multiple Layers of Features from Tiny
       Images. Technical report, University of Toronto, 2009, §1.4.3.

    Examples
    --------
    >>> import numpy as np
    >>> from skdbn import GaussianBernoulliRBM
    >>> X = np.random.RandomState(0).normal(size=(100, 5))
    >>> model = GaussianBernoulliRBM(n_components=3, sigma="learn", random_state=0)
    >>> model.fit(X).sigma_.shape
    (5,)
    """

    _visible_type = GaussianVisible
    _score_name = "-free energy"

    _parameter_constraints: dict = {
        **_BaseRBM._parameter_constraints,
        "sigma": [Interval(Real, 0, None, closed="neither"), "array-like", StrOptions({"learn"})],
        "sigma_learning_rate": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_components=256,
        *,
        learning_rate=0.01,
        batch_size=10,
        n_iter=10,
        verbose=0,
        random_state=None,
        cd_k=1,
        persistent=False,
        sample_visible=False,
        sampled_statistics=False,
        sigma=1.0,
        sigma_learning_rate=1e-3,
        momentum=0.0,
        weight_decay=0.0,
        sparsity_target=0.1,
        sparsity_cost=0.0,
        dtype=None,
        n_jobs=None,
        hidden_units="bernoulli",
    ):
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.verbose = verbose
        self.random_state = random_state
        self.cd_k = cd_k
        self.persistent = persistent
        self.sample_visible = sample_visible
        self.sampled_statistics = sampled_statistics
        self.sigma = sigma
        self.sigma_learning_rate = sigma_learning_rate
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.sparsity_target = sparsity_target
        self.sparsity_cost = sparsity_cost
        self.dtype = dtype
        self.n_jobs = n_jobs
        self.hidden_units = hidden_units

    def _learn_sigma(self):
        return isinstance(self.sigma, str)

    def _initial_sigma(self, n_features):
        if self._learn_sigma():
            sigma = np.ones(n_features)
        else:
            sigma = np.asarray(self.sigma, dtype=np.float64)
            if sigma.ndim == 0:
                sigma = np.full(n_features, float(sigma))
            if sigma.shape != (n_features,):
                raise ValueError(
                    f"sigma has shape {sigma.shape}; expected a scalar or an array of "
                    f"shape ({n_features},), one value per feature."
                )
            if not np.all(np.isfinite(sigma)) or np.any(sigma <= 0):
                raise ValueError("sigma must be finite and strictly positive.")
        return sigma

    @property
    def sigma_(self):
        """Standard deviation of each visible unit."""
        return self._state.sigma

    def score_samples(self, X):
        """Unnormalised log-density ``-F(v)`` of each sample.

        ``-F(v) = log p(v) + log Z``: differences between samples are exact
        log-probability ratios, and adding ``-log Z``
        (:func:`skdbn.metrics.log_partition_ais`) gives the log-density.
        Unlike :meth:`BernoulliRBM.score_samples` this is not a
        pseudo-likelihood, which flips one binary feature: real-valued
        visibles have nothing to flip, and their free energy is exact and
        deterministic.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Visible data.

        Returns
        -------
        score : ndarray of shape (n_samples,)
            Negative free energy of each sample.
        """
        return -self.free_energy(X)

    def _score_samples(self, X):
        return -self._free_energy(X)
