"""Deep Belief Networks: greedy layer-wise stacking of RBMs."""

# SPDX-License-Identifier: BSD-3-Clause

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state, check_scalar
from sklearn.utils.validation import check_array, check_is_fitted

from . import _streams
from ._rbm import BernoulliRBM, GaussianBernoulliRBM
from ._replicated_softmax import ReplicatedSoftmaxRBM
from ._up_down import UpDownMixin
from .utils._atomic import atomic_fit
from .utils._threads import kernel_threads
from .utils._compat import (
    Interval,
    InvalidParameterError,
    StrOptions,
    _fit_context,
    validate_data,
)

# Parameters that may be given once for all layers or once per layer.
_PER_LAYER = ("learning_rate", "n_iter", "batch_size", "cd_k", "persistent",
              "sample_visible", "momentum", "weight_decay", "sparsity_target",
              "sparsity_cost", "hidden_units")


def _scalar_or_per_layer(kind):
    # A scalar constraint, or a list/tuple checked in _layer_params.
    return [kind, list, tuple]


class DBNTransformer(UpDownMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin,
                     BaseEstimator):
    """Deep Belief Network trained greedily, one RBM per layer.

    Each RBM learns from the hidden activation probabilities of the one
    below it (report §1.4.2; Hinton, Osindero & Teh 2006), keeping the lower
    layers fixed. ``transform`` is the deterministic up-pass,
    ``inverse_transform`` the mean-field down-pass, and ``sample`` generates
    by alternating Gibbs sampling in the top RBM followed by a top-down pass.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(256, 256)
        Number of hidden units of each RBM, bottom to top.
    visible_units : {"bernoulli", "gaussian", "counts"}, default="bernoulli"
        Type of the bottom RBM's visible units: :class:`BernoulliRBM` for
        data in [0, 1], :class:`GaussianBernoulliRBM` for standardised or
        whitened real-valued data, :class:`ReplicatedSoftmaxRBM` for word
        counts (``inverse_transform`` then gives word distributions). An upper RBM has Bernoulli visibles, or
        unit-variance Gaussian ones above a layer of Gaussian hidden units.
    learning_rate : float or sequence of float, default=0.05
        Learning rate of each RBM: one value for all layers or one per layer.
        Likewise for ``n_iter``, ``batch_size``, ``cd_k``, ``persistent``,
        ``sample_visible``, ``momentum``, ``weight_decay``, ``sparsity_target`` and
        ``sparsity_cost`` (see :class:`BernoulliRBM`).
    n_iter : int or sequence of int, default=10
        Epochs of each RBM.
    batch_size : int or sequence of int, default=10
        Minibatch size of each RBM.
    cd_k : int or sequence of int, default=1
        Gibbs steps of each RBM's negative phase.
    persistent : bool or sequence of bool, default=False
        Persistent contrastive divergence for each RBM.
    sample_visible : bool or sequence of bool, default=False
        Sample the negative-phase visibles of each RBM; by default they are
        mean-field (their probabilities), which on digits gives better
        features for a classifier.
    momentum : float, "schedule" or sequence, default=0.5
        Momentum of each RBM.
    weight_decay : float or sequence of float, default=0.0
        L2 penalty of each RBM's weights.
    sparsity_target : float or sequence of float, default=0.1
        Target mean activation of each RBM's hidden units.
    sparsity_cost : float or sequence of float, default=0.0
        Strength of each RBM's sparsity penalty.
    sigma : float, array-like or "learn", default=1.0
        Visible standard deviations of a Gaussian bottom RBM.
    up_down_iter : int, default=0
        Epochs of generative fine-tuning after the greedy training, with the
        up-down algorithm (contrastive wake-sleep; Hinton, Osindero & Teh
        2006). It unties the recognition weights (``rbms_``, used by
        ``transform``) from the generative weights of the lower layers
        (``generative_components_``, used by ``inverse_transform`` and
        ``sample``); the top RBM stays an undirected associative memory,
        trained by the top RBM's own CD-k / PCD. 0 keeps the tied weights of
        the greedy training.
    up_down_learning_rate : float, default=0.01
        Learning rate of every weight during up-down fine-tuning.
    verbose : int, default=0
        Print each RBM's progress.
    random_state : int, RandomState instance or None, default=None
        Seeds every layer's initialisation and samples.
    dtype : {None, "float32", "float64"}, default=None
        Floating type of the model; None follows the input.
    n_jobs : int, default=None
        Threads of the kernels; None or -1 uses all cores.

    hidden_units : {"bernoulli", "gaussian", "nrelu"} or sequence, default="bernoulli"
        Hidden unit type of each RBM (one value for all layers or one per
        layer; see :class:`BernoulliRBM`). ``"gaussian"`` on the top layer
        gives the linear code layer of a deep autoencoder.

    Attributes
    ----------
    rbms_ : list of BernoulliRBM or GaussianBernoulliRBM
        The fitted RBMs, bottom first; ordinary skdbn estimators. Their
        ``components_`` and ``intercept_hidden_`` are the recognition
        (bottom-up) weights.
    generative_components_ : list of ndarray
        Top-down weights of each layer below the top RBM, of shape
        (n_hidden, n_visible) like ``components_``: copies of the RBMs'
        weights after greedy training, fine-tuned separately by up-down.
    generative_intercepts_ : list of ndarray
        Visible biases of each layer below the top RBM, for the top-down pass.
    up_down_errors_ : list of float
        For each up-down epoch, the mean squared error of the data against
        its top-down prediction from the sampled first hidden layer (the
        generative term up-down improves).
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`, when they are all strings.

    See Also
    --------
    BernoulliRBM, GaussianBernoulliRBM : The layers.
    PretrainedMLPClassifier : A classifier initialised from a DBN.

    Examples
    --------
    >>> import numpy as np
    >>> from skdbn import DBNTransformer
    >>> X = (np.random.RandomState(0).uniform(size=(100, 16)) < 0.3).astype(np.float32)
    >>> dbn = DBNTransformer(hidden_layer_sizes=(8, 4), n_iter=2, random_state=0).fit(X)
    >>> dbn.transform(X).shape
    (100, 4)
    >>> dbn.sample(3, n_gibbs=10, random_state=0).shape
    (3, 16)
    """

    _parameter_constraints: dict = {
        "hidden_layer_sizes": [list, tuple],
        "visible_units": [StrOptions({"bernoulli", "gaussian", "counts"})],
        "learning_rate": _scalar_or_per_layer(Interval(Real, 0, None, closed="neither")),
        "n_iter": _scalar_or_per_layer(Interval(Integral, 0, None, closed="left")),
        "batch_size": _scalar_or_per_layer(Interval(Integral, 1, None, closed="left")),
        "cd_k": _scalar_or_per_layer(Interval(Integral, 1, None, closed="left")),
        "persistent": _scalar_or_per_layer("boolean"),
        "sample_visible": _scalar_or_per_layer("boolean"),
        "momentum": [Interval(Real, 0, 1, closed="left"), StrOptions({"schedule"}), list, tuple],
        "weight_decay": _scalar_or_per_layer(Interval(Real, 0, None, closed="left")),
        "sparsity_target": _scalar_or_per_layer(Interval(Real, 0, 1, closed="neither")),
        "sparsity_cost": _scalar_or_per_layer(Interval(Real, 0, None, closed="left")),
        "hidden_units": _scalar_or_per_layer(StrOptions({"bernoulli", "gaussian", "nrelu"})),
        "sigma": [Interval(Real, 0, None, closed="neither"), "array-like", StrOptions({"learn"})],
        "up_down_iter": [Interval(Integral, 0, None, closed="left")],
        "up_down_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "dtype": [None, StrOptions({"float32", "float64"}), type],
        "n_jobs": [None, Integral],
    }

    def __init__(
        self,
        hidden_layer_sizes=(256, 256),
        *,
        visible_units="bernoulli",
        learning_rate=0.05,
        n_iter=10,
        batch_size=10,
        cd_k=1,
        persistent=False,
        sample_visible=False,
        momentum=0.5,
        weight_decay=0.0,
        sparsity_target=0.1,
        sparsity_cost=0.0,
        sigma=1.0,
        up_down_iter=0,
        up_down_learning_rate=0.01,
        verbose=0,
        random_state=None,
        dtype=None,
        n_jobs=None,
        hidden_units="bernoulli",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.visible_units = visible_units
        self.learning_rate = learning_rate
        self.n_iter = n_iter
        self.batch_size = batch_size
        self.cd_k = cd_k
        self.persistent = persistent
        self.sample_visible = sample_visible
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.sparsity_target = sparsity_target
        self.sparsity_cost = sparsity_cost
        self.sigma = sigma
        self.up_down_iter = up_down_iter
        self.up_down_learning_rate = up_down_learning_rate
        self.verbose = verbose
        self.random_state = random_state
        self.dtype = dtype
        self.n_jobs = n_jobs
        self.hidden_units = hidden_units

    # ------------------------------------------------------------------
    def _layer_params(self, layer):
        """Constructor arguments of RBM number ``layer``."""
        sizes = self._sizes()
        params = {}
        for name in _PER_LAYER:
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                if len(value) != len(sizes):
                    raise ValueError(
                        f"{name} has {len(value)} values for {len(sizes)} layers; give "
                        "one value for all layers or one per layer."
                    )
                value = value[layer]
            params[name] = value
        params.update(n_components=sizes[layer], verbose=self.verbose,
                      dtype=self.dtype, n_jobs=self.n_jobs)
        if layer == 0 and self.visible_units == "gaussian":
            return GaussianBernoulliRBM(sigma=self.sigma, **params)
        if layer == 0 and self.visible_units == "counts":
            return ReplicatedSoftmaxRBM(**params)
        if layer > 0 and self._layer_params(layer - 1).hidden_units != "bernoulli":
            # Real-valued units below: unit-variance Gaussian visibles.
            return GaussianBernoulliRBM(sigma=1.0, **params)
        return BernoulliRBM(**params)

    def _layers(self, rng):
        """Unfitted RBMs of every layer, each validated before any is fitted.

        A list gives one value per layer, which ``_parameter_constraints``
        cannot check: each layer's RBM checks its own.
        """
        rbms = []
        for layer in range(len(self._sizes())):
            rbm = self._layer_params(layer)
            try:
                rbm._validate_params()
            except InvalidParameterError as exc:
                raise InvalidParameterError(
                    f"Layer {layer} of {type(self).__name__} (hidden_layer_sizes"
                    f"[{layer}]) got an invalid value: {exc} Give one valid value for "
                    "all layers or one valid value per layer."
                ) from None
            rbms.append(rbm.set_params(random_state=rng.randint(np.iinfo(np.int32).max)))
        return rbms

    def _sizes(self):
        sizes = tuple(self.hidden_layer_sizes)
        if not sizes or not all(isinstance(s, Integral) and s >= 1 for s in sizes):
            raise ValueError(
                f"hidden_layer_sizes must be a non-empty sequence of positive integers, "
                f"got {self.hidden_layer_sizes!r}."
            )
        return sizes

    def _validate(self, X, reset):
        return validate_data(self, X, accept_sparse="csr",
                             dtype=(np.float64, np.float32), reset=reset)

    @property
    def _n_features_out(self):
        return self.rbms_[-1].n_components

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    # ------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    @atomic_fit(fresh=True)
    def fit(self, X, y=None):
        """Train the RBMs greedily, bottom to top.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted DBN.
        """
        X = self._validate(X, reset=True)
        if self.up_down_iter > 0 and self.visible_units == "counts":
            raise ValueError(
                "up_down_iter > 0 is not supported with visible_units='counts': the "
                "up-down delta rules model binary or Gaussian visibles, not the word counts "
                "of a Replicated Softmax. Use up_down_iter=0, or fine-tune the stack as a "
                "DBNAutoencoder(visible_units='counts').")
        rng = check_random_state(self.random_state)
        rbms = self._layers(rng)
        self.rbms_ = []
        data = X
        for layer, rbm in enumerate(rbms):
            rbm.fit(data)
            self.rbms_.append(rbm)
            if layer < len(rbms) - 1:
                data = rbm.transform(data)
        self._tie_generative_weights()
        if self.up_down_iter > 0:
            self._up_down(X, self.up_down_iter, rng)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    @atomic_fit(fresh=False)
    def partial_fit(self, X, y=None):
        """One epoch of every layer on a chunk, bottom to top.

        Each RBM learns from the up-pass of the chunk through the layers
        below it, as they are after their own update on this chunk. This is
        greedy training only: the generative weights are tied to the RBMs
        again afterwards (up-down fine-tuning is part of :meth:`fit`).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A chunk of training data.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The partially fitted DBN.
        """
        first = not hasattr(self, "rbms_")
        X = self._validate(X, reset=first)
        layers = self._layers(check_random_state(self.random_state))
        if first:
            self.rbms_ = layers
        else:
            # The current per-layer values apply, as set_params on an RBM
            # would; the fitted RBMs keep their seeds.
            if [r.n_components for r in layers] != [r.n_components for r in self.rbms_]:
                raise ValueError(
                    f"hidden_layer_sizes={tuple(self.hidden_layer_sizes)} differs from the "
                    f"fitted layers {tuple(r.n_components for r in self.rbms_)}; call fit "
                    "to train a DBN of another shape."
                )
            for rbm, layer in zip(self.rbms_, layers):
                rbm.set_params(**{k: v for k, v in layer.get_params().items()
                                  if k != "random_state"})
        data = X
        for layer, rbm in enumerate(self.rbms_):
            rbm.partial_fit(data)
            if layer < len(self.rbms_) - 1:
                data = rbm.transform(data)
        self._tie_generative_weights()
        return self

    def transform(self, X):
        """Deterministic up-pass: top-layer hidden probabilities.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data.

        Returns
        -------
        H : ndarray of shape (n_samples, hidden_layer_sizes[-1])
            Activation probabilities of the top hidden layer.
        """
        check_is_fitted(self)
        data = self._validate(X, reset=False)
        for rbm in self.rbms_:
            data = rbm.transform(data)
        return data

    def inverse_transform(self, X):
        """Mean-field down-pass from the top hidden layer to the data space.

        Uses the top RBM's weights, then the generative weights of the lower
        layers (equal to the RBMs' own unless up-down fine-tuning untied them).

        Parameters
        ----------
        X : array-like of shape (n_samples, hidden_layer_sizes[-1])
            Top-layer hidden states or probabilities.

        Returns
        -------
        X_original : ndarray of shape (n_samples, `n_features_in_`)
            Expected visible values, layer by layer.
        """
        check_is_fitted(self)
        top = self.rbms_[-1]
        data = check_array(X, dtype=top.components_.dtype, order="C",
                           input_name="X of inverse_transform")
        if data.shape[1] != top.n_components:
            raise ValueError(
                f"X has shape {data.shape}; inverse_transform expects "
                f"(n_samples, {top.n_components}) top-layer activations."
            )
        with kernel_threads(top.n_jobs) as n_threads:
            data = top._visible_from_hidden(data, n_threads)
            for layer in reversed(range(len(self.rbms_) - 1)):
                data = self._generate(layer, data, sample=False, key=0, stream=0,
                                      n_threads=n_threads)
        return data

    def sample(self, n_samples=1, n_gibbs=1000, random_state=None):
        """Generate data from the DBN.

        Alternating Gibbs sampling in the top RBM for ``n_gibbs`` steps from
        random states, then a top-down pass: binary samples of each lower
        hidden layer and the mean of the visible layer.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples (independent chains).
        n_gibbs : int, default=1000
            Gibbs steps in the top RBM.
        random_state : int, RandomState instance or None, default=None
            Seed of the chains.

        Returns
        -------
        X : ndarray of shape (n_samples, `n_features_in_`)
            Generated data (visible means).
        """
        check_is_fitted(self)
        n_samples = check_scalar(n_samples, "n_samples", Integral, min_val=1)
        n_gibbs = check_scalar(n_gibbs, "n_gibbs", Integral, min_val=0)
        seed = _streams.draw_seed(check_random_state(random_state))
        return self._dream(n_samples, n_gibbs, seed)
