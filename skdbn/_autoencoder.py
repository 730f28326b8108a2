"""Deep autoencoders: a DBN unrolled into an encoder and a mirrored decoder,
fine-tuned by backpropagation of the reconstruction error (Hinton &
Salakhutdinov 2006)."""

# SPDX-License-Identifier: BSD-3-Clause

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state, gen_batches
from sklearn.utils.validation import check_array, check_is_fitted

from ._dbn import DBNTransformer
from ._kernels import _mlp
from ._mlp import _CHUNK_ROWS, _MAX_LOSS, _BackpropMixin
from .utils._atomic import atomic_fit
from .utils._compat import HasMethods, Interval, StrOptions, _fit_context, validate_data
from .utils._threads import kernel_threads
from .utils._validation import check_dtype_range

_SIGMOID, _LINEAR = _mlp.KIND_CODES["sigmoid"], _mlp.KIND_CODES["linear"]
_SOFTMAX = _mlp.KIND_CODES["softmax"]


class DBNAutoencoder(_BackpropMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin,
                     BaseEstimator):
    """Deep autoencoder: a pretrained DBN unrolled and fine-tuned by backprop.

    A stack of RBMs is pretrained greedily (a :class:`DBNTransformer`), then
    unrolled: the encoder is the DBN's up-pass (weights ``W_l``, hidden
    biases ``c_l``), the decoder its mirrored down-pass (``W_l^T``, visible
    biases ``b_l``). Before fine-tuning, encoding then decoding is exactly
    the DBN's ``transform`` followed by its ``inverse_transform``. All the
    weights, encoder and decoder separately, are then fine-tuned by
    backpropagation of the reconstruction error on the same Cython/BLAS
    kernels as :class:`PretrainedMLPClassifier` (Hinton & Salakhutdinov
    2006; the tutorial's "Deep Autoencoders").

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(128, 64, 10)
        Hidden units of each RBM, bottom to top; the last is the code size.
    visible_units : {"bernoulli", "gaussian", "counts"}, default="bernoulli"
        Data in [0, 1] ("bernoulli": logistic output units, cross-entropy
        loss), standardised data ("gaussian": linear output units, squared
        error) or word counts ("counts", dense or CSR: the bottom RBM is a
        :class:`ReplicatedSoftmaxRBM`; the encoder's first layer sees the
        counts and each document's length ``D``, whose hidden biases are
        ``D c``; the decoder's output is a softmax over the vocabulary
        trained by the multinomial log-likelihood of the counts). With
        ``code_units="binary"`` this is semantic hashing (Salakhutdinov &
        Hinton 2009): retrieve by Hamming distance with
        :class:`skdbn.neighbors.HammingNeighbors`.
    code_units : {"linear", "binary"}, default="linear"
        The code layer. "linear": Gaussian hidden units of unit variance in
        the top RBM, so that the code is the linear input of the top layer
        (the paper's choice, which lets the code use a continuous range).
        "binary": logistic code units with Gaussian noise of standard
        deviation ``code_noise`` added to their input during fine-tuning,
        which drives them to saturate; ``transform`` then returns their 0/1
        states (codes for fast retrieval by Hamming distance).
    code_noise : float, default=4.0
        Standard deviation of the noise on the binary code units' input.
    dbn : DBNTransformer, default=None
        A DBN to unroll instead of the default one: fitted (used as it is,
        its weights copied) or unfitted (cloned and pretrained in ``fit``).
        Its top RBM must have Gaussian hidden units for
        ``code_units="linear"`` and Bernoulli ones for "binary"; the
        ``hidden_layer_sizes``, ``visible_units`` and ``pretrain_*``
        parameters are then ignored.
    pretrain_learning_rate : float, sequence of float or "auto", default="auto"
        Learning rate of each RBM (one value or one per layer). "auto" is
        0.1 for the binary and word-count layers (a Replicated Softmax's
        rate is per word) and 0.001 for a linear code layer, the paper's
        values (Gaussian units need the smaller step).
    pretrain_n_iter : int or sequence of int, default=20
        Pretraining epochs of each RBM.
    pretrain_batch_size : int or sequence of int, default=20
        Minibatch size of each RBM.
    pretrain_momentum : float, "schedule" or sequence, default="schedule"
        Momentum of each RBM (see :class:`BernoulliRBM`).
    pretrain_weight_decay : float or sequence of float, default=2e-4
        L2 penalty of each RBM's weights.
    solver : {"sgd", "adam"}, default="adam"
        Fine-tuning optimiser.
    learning_rate_init : float, default=1e-3
        Step size (SGD) or Adam's learning rate.
    momentum : float, default=0.9
        SGD momentum.
    alpha : float, default=0.0
        L2 penalty on the weights during fine-tuning, with scikit-learn's
        meaning (the minibatch loss gains ``alpha / (2 batch_size) ||W||^2``).
    batch_size : int, default=32
        Minibatch size of fine-tuning.
    max_iter : int or "auto", default="auto"
        Epochs of fine-tuning; 0 keeps the unrolled DBN. "auto" runs enough
        epochs for 56 000 weight updates, at least 10 and at most 100.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data and keep the weights of
        the epoch with the lowest validation reconstruction error; stop
        after ``n_iter_no_change`` epochs without an improvement of ``tol``.
    validation_fraction : float, default=0.1
        Share of the training data held out for early stopping.
    n_iter_no_change : int, default=10
        Patience of early stopping.
    tol : float, default=1e-4
        Minimum improvement of the validation error.
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        Adam's parameters.
    warm_start : bool, default=False
        When the autoencoder is fitted already, ``fit`` continues fine-tuning
        from the current weights and optimiser state for ``max_iter`` more
        epochs (no new pretraining), as scikit-learn's MLP does.
    verbose : int, default=0
        Print the training loss (and the validation error) of every epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds pretraining, the validation split, the minibatch order and
        the code noise.
    n_jobs : int, default=None
        Threads of the kernels; None or -1 uses all cores.

    Attributes
    ----------
    dbn_ : DBNTransformer
        The fitted DBN the network was unrolled from.
    coefs_ : list of ndarray
        Weights of the encoder layers then the decoder layers, each of shape
        (n_out, n_in).
    intercepts_ : list of ndarray
        Biases of each layer.
    n_iter_ : int
        Fine-tuning epochs run.
    loss_curve_ : list of float
        Mean training loss of each epoch (cross-entropy or half the squared
        error, summed over the features).
    validation_scores_ : list of float
        Minus the validation squared reconstruction error after each epoch
        (early stopping only).
    best_validation_score_ : float
        The best of them (early stopping only).
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`, when they are all strings.

    See Also
    --------
    DBNTransformer : The pretrained stack.
    sklearn.decomposition.PCA : The linear counterpart.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skdbn import DBNAutoencoder
    >>> X = (load_digits().data / 16).astype(np.float32)
    >>> ae = DBNAutoencoder((32, 2), code_units="binary", pretrain_n_iter=2,
    ...                     max_iter=2, random_state=0).fit(X)
    >>> ae.transform(X[:3]).shape
    (3, 2)
    >>> ae.inverse_transform(ae.transform(X[:3])).shape
    (3, 64)
    """

    _parameter_constraints: dict = {
        "hidden_layer_sizes": [list, tuple],
        "visible_units": [StrOptions({"bernoulli", "gaussian", "counts"})],
        "code_units": [StrOptions({"linear", "binary"})],
        "code_noise": [Interval(Real, 0, None, closed="left")],
        "dbn": [None, HasMethods(["fit", "transform", "inverse_transform"])],
        "pretrain_learning_rate": [Interval(Real, 0, None, closed="neither"),
                                   StrOptions({"auto"}), list, tuple],
        "pretrain_n_iter": [Interval(Integral, 0, None, closed="left"), list, tuple],
        "pretrain_batch_size": [Interval(Integral, 1, None, closed="left"), list, tuple],
        "pretrain_momentum": [Interval(Real, 0, 1, closed="left"), StrOptions({"schedule"}),
                              list, tuple],
        "pretrain_weight_decay": [Interval(Real, 0, None, closed="left"), list, tuple],
        **_BackpropMixin._fine_tune_constraints,
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "n_jobs": [None, Integral],
    }

    def __init__(
        self,
        hidden_layer_sizes=(128, 64, 10),
        *,
        visible_units="bernoulli",
        code_units="linear",
        code_noise=4.0,
        dbn=None,
        pretrain_learning_rate="auto",
        pretrain_n_iter=20,
        pretrain_batch_size=20,
        pretrain_momentum="schedule",
        pretrain_weight_decay=2e-4,
        solver="adam",
        learning_rate_init=1e-3,
        momentum=0.9,
        alpha=0.0,
        batch_size=32,
        max_iter="auto",
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        warm_start=False,
        verbose=0,
        random_state=None,
        n_jobs=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.visible_units = visible_units
        self.code_units = code_units
        self.code_noise = code_noise
        self.dbn = dbn
        self.pretrain_learning_rate = pretrain_learning_rate
        self.pretrain_n_iter = pretrain_n_iter
        self.pretrain_batch_size = pretrain_batch_size
        self.pretrain_momentum = pretrain_momentum
        self.pretrain_weight_decay = pretrain_weight_decay
        self.solver = solver
        self.learning_rate_init = learning_rate_init
        self.momentum = momentum
        self.alpha = alpha
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.warm_start = warm_start
        self.verbose = verbose
        self.random_state = random_state
        self.n_jobs = n_jobs

    _estimator_type_name = "autoencoder"

    # ------------------------------------------------------------------
    def _default_dbn(self, n_samples):
        sizes = tuple(self.hidden_layer_sizes)
        n_layers = len(sizes)
        linear = self.code_units == "linear"
        learning_rate = self.pretrain_learning_rate
        if learning_rate == "auto":
            # A Replicated Softmax's rate is per word, on the binary RBMs'
            # scale.
            learning_rate = [0.1] * n_layers
            if linear:
                learning_rate[-1] = 0.001
        params = {}
        if linear:
            # Gaussian hidden units of unit variance in the top RBM: its
            # mean-field "probabilities" are the linear input.
            params["hidden_units"] = ["bernoulli"] * (n_layers - 1) + ["gaussian"]
        return DBNTransformer(
            sizes, visible_units=self.visible_units, learning_rate=learning_rate,
            n_iter=self.pretrain_n_iter, batch_size=self.pretrain_batch_size,
            momentum=self.pretrain_momentum, weight_decay=self.pretrain_weight_decay,
            n_jobs=self.n_jobs, **params,
        )

    def _max_loss(self, X):
        # Cross-entropy: every feature at half the kernel's clamp means the
        # network has stopped predicting; squared error: only non-finite.
        if self.visible_units == "counts":
            return _MAX_LOSS  # per word
        return X.shape[1] * _MAX_LOSS if self.visible_units == "bernoulli" else np.inf

    def _check_dbn(self, dbn):
        top = dbn.rbms_[-1]
        gaussian_top = getattr(top, "hidden_units", "bernoulli") == "gaussian"
        if gaussian_top != (self.code_units == "linear"):
            raise ValueError(
                f"code_units={self.code_units!r} needs a DBN whose top RBM has "
                f"{'Gaussian' if self.code_units == 'linear' else 'Bernoulli'} hidden "
                "units; pass a dbn built with hidden_units=[..., "
                f"{'gaussian' if self.code_units == 'linear' else 'bernoulli'}] or change "
                "code_units."
            )
        bottom = dbn.rbms_[0]._visible_type.name
        bottom = {"replicated_softmax": "counts"}.get(bottom, bottom)
        if bottom != self.visible_units:
            raise ValueError(
                f"visible_units={self.visible_units!r} does not match the given dbn's "
                f"bottom RBM ({type(dbn.rbms_[0]).__name__}); set visible_units="
                f"{bottom!r}."
            )

    def _kinds(self, n_layers):
        """Activations of the unrolled layers: sigmoid, then the code layer,
        then sigmoid, then the output units."""
        kinds = np.full(2 * n_layers, _SIGMOID, dtype=np.int32)
        if self.code_units == "linear":
            kinds[n_layers - 1] = _LINEAR
        if self.visible_units == "gaussian":
            kinds[-1] = _LINEAR
        if self.visible_units == "counts":
            kinds[-1] = _SOFTMAX
        return kinds

    def _unroll(self, dtype):
        """Encoder (W_l, c_l) and decoder (W_l^T, b_l) from the DBN."""
        rbms = self.dbn_.rbms_
        coefs = [rbm.components_.astype(dtype, copy=True) for rbm in rbms]
        intercepts = [rbm.intercept_hidden_.astype(dtype, copy=True) for rbm in rbms]
        for layer in reversed(range(len(rbms))):
            W = rbms[layer].components_ if layer == len(rbms) - 1 else \
                self.dbn_.generative_components_[layer]
            b = rbms[layer].intercept_visible_ if layer == len(rbms) - 1 else \
                self.dbn_.generative_intercepts_[layer]
            coefs.append(np.ascontiguousarray(W.T, dtype=dtype))
            intercepts.append(np.array(b, dtype=dtype))
        # The network takes and returns raw v: a Gaussian layer's 1/sigma
        # goes into the first weights and sigma into the output weights (the
        # RBM's visible mean is b + sigma W^T h).
        visible = rbms[0].state_.visible
        coefs[0] = visible.input_weights(coefs[0]).astype(dtype)
        coefs[-1] = visible.output_weights(coefs[-1]).astype(dtype)
        if self.visible_units == "counts":
            # The input's last column is the length D, whose weights are the
            # hidden biases: the first layer's input is W v + D c.
            coefs[0] = np.hstack([coefs[0], intercepts[0][:, None]])
            intercepts[0] = np.zeros_like(intercepts[0])
        self.coefs_, self.intercepts_ = coefs, intercepts
        self._kinds_ = self._kinds(len(rbms))
        self.n_iter_ = 0
        self.loss_curve_ = []
        self.validation_scores_ = []

    @property
    def _n_layers(self):
        return len(self.coefs_) // 2

    @property
    def _n_features_out(self):
        return self.coefs_[self._n_layers - 1].shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    # ------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=False)
    @atomic_fit(fresh=True)
    def fit(self, X, y=None):
        """Pretrain (if needed), unroll and fine-tune.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (in [0, 1] for ``visible_units="bernoulli"``).
        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted autoencoder.
        """
        warm = self.warm_start and hasattr(self, "coefs_")
        X, rng = self._start(X, warm)
        if self.early_stopping and self.max_iter != 0 and X.shape[0] >= 2:
            X_train, X_val = train_test_split(
                X, test_size=self.validation_fraction,
                random_state=rng.randint(np.iinfo(np.int32).max))
        else:
            X_train, X_val = X, None
        self._fine_tune(X_train, None, X_val, None, rng, w=self._row_weights(X_train),
                        w_val=self._row_weights(X_val))
        return self

    @_fit_context(prefer_skip_nested_validation=False)
    @atomic_fit(fresh=True)
    def partial_fit(self, X, y=None):
        """One epoch of fine-tuning on a chunk of data.

        The first call unrolls the DBN: the given fitted ``dbn``, or one
        pretrained on this first chunk. Every call then runs one pass of
        backpropagation over ``X``, continuing the optimiser's state (Adam's
        moments, SGD's velocities) from the previous call, as
        scikit-learn's ``MLPRegressor.partial_fit`` does. Early stopping
        does not apply.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A chunk of training data.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The partially fitted autoencoder.
        """
        X, rng = self._start(X, hasattr(self, "coefs_"))
        if isinstance(self.random_state, Integral):
            # A new minibatch order per call: the seed's, offset by the epoch.
            rng = np.random.RandomState([self.random_state, self.n_iter_])
        self._fine_tune(X, None, None, None, rng, w=self._row_weights(X), n_epochs=1,
                        keep_solver_state=True)
        return self

    def _start(self, X, warm):
        """Validated ``X`` in the network's dtype and the fit's random state;
        a warm start copies the fitted arrays, a cold one pretrains and
        unrolls."""
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=not warm,
                          accept_sparse="csr" if self.visible_units == "counts" else False)
        rng = check_random_state(self.random_state)
        if warm:
            # New arrays: the kernels update in place, and a failed fit must
            # leave the fitted weights as they were.
            self.coefs_ = [W.copy() for W in self.coefs_]
            self.intercepts_ = [b.copy() for b in self.intercepts_]
            self.loss_curve_ = list(self.loss_curve_)
            self.validation_scores_ = list(self.validation_scores_)
        else:
            self.dbn_ = self._pretrained_dbn(X, rng)
            self._check_dbn(self.dbn_)
            self._unroll(self.dbn_.rbms_[0].components_.dtype)
            self._solver_state = None
        dtype = self.coefs_[0].dtype
        check_dtype_range(X, dtype)
        return self._net_input(X, dtype), rng

    def _net_input(self, X, dtype):
        """What the network takes: X in its dtype; for word counts, dense
        counts with each document's length as a last column."""
        if self.visible_units != "counts":
            return X.astype(dtype, copy=False)
        if (X.data if sp.issparse(X) else X).min(initial=0) < 0:
            raise ValueError("DBNAutoencoder(visible_units='counts') takes word counts; "
                             "X has negative values.")
        D = np.asarray(X.sum(axis=1), dtype=dtype).reshape(-1, 1)
        X = X.toarray() if sp.issparse(X) else X
        return np.hstack([X.astype(dtype, copy=False), D])

    def _row_weights(self, X):
        """Fine-tuning weights of the rows of the network's input: for word
        counts the lengths D (the loss is then the counts' log-likelihood),
        else None (all 1)."""
        if X is None or self.visible_units != "counts":
            return None
        return X[:, -1].astype(np.float64)

    def _targets(self, X):
        """The network's targets for its input X: X, or the documents' word
        frequencies (the counts over their lengths)."""
        if self.visible_units != "counts":
            return X
        return np.ascontiguousarray(X[:, :-1] / np.maximum(X[:, -1:], 1))

    def _train_batch(self, X, y, arrays, options, extra, rng):
        noise = None
        if self.code_units == "binary" and self.code_noise > 0:
            k = self._n_layers - 1
            noise = [None] * len(self.coefs_)
            noise[k] = rng.normal(0.0, self.code_noise,
                                  (X.shape[0], self.coefs_[k].shape[0])).astype(X.dtype)
        return _mlp.reconstruction_step(X, self._targets(X), *arrays, self._kinds_, options,
                                        noise, **extra)

    def _validation_score(self, X, y, w, n_threads):
        error = float(np.mean(self._errors(X, n_threads)))
        return -error, f", validation error = {error:.4f}"

    # ------------------------------------------------------------------
    def _run(self, X, first, last, n_threads):
        """Layers [first, last) of the unrolled network on X, by chunks."""
        dtype = self.coefs_[0].dtype
        out = np.empty((X.shape[0], self.coefs_[last - 1].shape[0]), dtype)
        weights, biases = self.coefs_[first:last], self.intercepts_[first:last]
        kinds = self._kinds_[first:last]
        for sl in gen_batches(X.shape[0], _CHUNK_ROWS):
            m = sl.stop - sl.start
            acts = [None] + [np.empty((m, W.shape[0]), dtype) for W in weights[:-1]]
            acts.append(out[sl])
            _mlp.forward(np.ascontiguousarray(X[sl], dtype=dtype), weights, biases, acts,
                         n_threads, kinds)
        return out

    def _encode(self, X, n_threads):
        codes = self._run(X, 0, self._n_layers, n_threads)
        if self.code_units == "binary":
            codes = (codes > 0.5).astype(codes.dtype)
        return codes

    def _decode(self, codes, n_threads):
        return self._run(codes, self._n_layers, len(self.coefs_), n_threads)

    def _errors(self, X, n_threads):
        """Reconstruction error of each row of the network's input X: the
        squared error summed over features, or for word counts the negative
        log-likelihood of the counts under the decoder's word distribution
        (in nats per document)."""
        out = self._decode(self._encode(X, n_threads), n_threads)
        if self.visible_units == "counts":
            return -np.einsum("ij,ij->i", X[:, :-1], np.log(np.maximum(out, 1e-300)),
                              dtype=np.float64)
        diff = out - X
        return np.einsum("ij,ij->i", diff, diff, dtype=np.float64)

    def _validate(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False,
                          accept_sparse="csr" if self.visible_units == "counts" else False)
        check_dtype_range(X, self.coefs_[0].dtype)
        return self._net_input(X, self.coefs_[0].dtype)

    def transform(self, X):
        """Codes of X: the encoder's output.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        codes : ndarray of shape (n_samples, hidden_layer_sizes[-1])
            Linear codes, or 0/1 codes for ``code_units="binary"``.
        """
        X = self._validate(X)
        with kernel_threads(self.n_jobs) as n_threads:
            return self._encode(X, n_threads)

    def inverse_transform(self, X):
        """Reconstructions from codes: the decoder's output.

        Parameters
        ----------
        X : array-like of shape (n_samples, hidden_layer_sizes[-1])
            Codes, as returned by :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, `n_features_in_`)
            Reconstructed data; for word counts, each document's word
            distribution (rows summing to 1).
        """
        check_is_fitted(self)
        codes = check_array(X, dtype=self.coefs_[0].dtype, order="C",
                            input_name="X of inverse_transform")
        if codes.shape[1] != self._n_features_out:
            raise ValueError(
                f"X has shape {codes.shape}; inverse_transform expects "
                f"(n_samples, {self._n_features_out}) codes."
            )
        with kernel_threads(self.n_jobs) as n_threads:
            return self._decode(codes, n_threads)

    def score(self, X, y=None):
        """Minus the mean squared reconstruction error.

        The squared error of each sample is summed over the features and
        averaged over the samples, as the deep-autoencoder papers report it.
        For word counts (``visible_units="counts"``): minus the mean over the
        documents of the negative log-likelihood of their counts under the
        reconstructed word distribution, ``-sum(v * log(p))``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.
        y : None
            Ignored.

        Returns
        -------
        score : float
            ``-mean(sum((inverse_transform(transform(X)) - X) ** 2, axis=1))``.
        """
        X = self._validate(X)
        with kernel_threads(self.n_jobs) as n_threads:
            return -float(np.mean(self._errors(X, n_threads)))
