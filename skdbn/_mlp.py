"""A backprop classifier initialised from a Deep Belief Network (report §3.2)."""

# SPDX-License-Identifier: BSD-3-Clause

import math
import time
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state, gen_batches
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from . import _streams
from ._dbn import DBNTransformer
from ._kernels import _mlp
from .utils._compat import (
    HasMethods,
    Interval,
    StrOptions,
    _check_sample_weight,
    _fit_context,
    validate_data,
)
from .utils._atomic import atomic_fit
from .utils._threads import kernel_threads
from .utils._validation import check_dtype_range

_CHUNK_ROWS = 4096
# The kernel clamps each probability at 1e-300 (a loss of 690.8 nats); a
# mean loss of half that means the network has stopped predicting.
_MAX_LOSS = -0.5 * np.log(1e-300)
# The "auto" budgets, counted in samples and weight updates rather than
# epochs so that one default serves a thousand digits and sixty thousand
# (see the user guide, "How the defaults were chosen").
_PRETRAIN_SAMPLES = 150_000
_PRETRAIN_MIN_EPOCHS = 10
_FINE_TUNE_UPDATES = 56_000
_FINE_TUNE_EPOCHS = (10, 100)


class _BackpropMixin:
    """Pretraining and backprop fine-tuning shared by the DBN-initialised
    networks: ``coefs_`` / ``intercepts_`` are trained by ``_train_batch``
    (one kernel step per minibatch) and scored by ``_validation_score``."""

    # The fine-tuning parameters, the same for every network trained here.
    _fine_tune_constraints = {
        "solver": [StrOptions({"sgd", "adam"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
    }

    _estimator_type_name = "estimator"

    def _max_loss(self, X):
        """Mean loss above which fine-tuning counts as diverged."""
        return _MAX_LOSS

    def _dropout_keep(self):
        """Dropout's keep probability of each layer's input (float32), or
        None for no dropout (the kernel's ``keep`` argument)."""
        return None

    def _max_iter(self, n_samples, batch_size):
        """Fine-tuning epochs: ``max_iter``, or the "auto" budget of updates."""
        if self.max_iter != "auto":
            return self.max_iter
        lo, hi = _FINE_TUNE_EPOCHS
        updates_per_epoch = math.ceil(n_samples / batch_size)
        return min(hi, max(lo, math.ceil(_FINE_TUNE_UPDATES / updates_per_epoch)))

    def _pretrained_dbn(self, X, rng):
        dbn = self._default_dbn(X.shape[0]) if self.dbn is None else self.dbn
        try:
            check_is_fitted(dbn)
            if dbn.n_features_in_ != X.shape[1]:
                raise ValueError(
                    f"The given dbn was fitted on {dbn.n_features_in_} features, "
                    f"X has {X.shape[1]}."
                )
            return dbn
        except NotFittedError:
            dbn = clone(dbn)
            if dbn.random_state is None:
                dbn.set_params(random_state=rng.randint(np.iinfo(np.int32).max))
            return dbn.fit(X)

    def _scratch(self, m, dtype):
        sizes = [W.shape[0] for W in self.coefs_]
        return [None] + [np.empty((m, n), dtype) for n in sizes]

    def _fine_tune(self, X, y, X_val, y_val, rng, w=None, w_val=None, n_epochs=None,
                   keep_solver_state=None):
        """Backprop epochs; ``y``: targets or None, ``w``: training weights
        (None: all 1), ``w_val``: validation weights. Early stopping keeps
        the weights of the best ``_validation_score``. ``n_epochs``
        overrides ``max_iter``; the optimiser state is kept for the next
        call when ``keep_solver_state`` (default: ``warm_start``)."""
        dtype = self.coefs_[0].dtype
        adam = self.solver == "adam"
        solver_state = getattr(self, "_solver_state", None)
        if solver_state is not None and solver_state[0] == self.solver:
            # A warm start continues the optimiser where it stopped (copies:
            # a failed fit must leave the saved state as it was).
            step = solver_state[1]
            state1, state2, bstate1, bstate2 = ([a.copy() for a in s] for s in solver_state[2:])
        else:
            step = 0
            state1 = [np.zeros_like(W) for W in self.coefs_]
            state2 = [np.zeros_like(W) if adam else np.zeros((1, 1), dtype)
                      for W in self.coefs_]
            bstate1 = [np.zeros_like(b) for b in self.intercepts_]
            bstate2 = [np.zeros_like(b) if adam else np.zeros(1, dtype)
                       for b in self.intercepts_]
        grads = [np.empty_like(W) for W in self.coefs_]
        n_samples = X.shape[0]
        batch_size = min(self.batch_size, n_samples)
        acts, deltas = self._scratch(batch_size, dtype), self._scratch(batch_size, dtype)
        keep = self._dropout_keep()
        dropout, dropout_key = {}, 0
        if keep is not None:
            # Drawn only with dropout on, so that without it the fit's random
            # numbers are those of a network that has no dropout option.
            dropout_seed = _streams.draw_seed(rng)
            if keep[0] < 1:
                acts[0] = np.empty((batch_size, X.shape[1]), dtype)
        best, best_params, stall = -np.inf, None, 0
        with kernel_threads(self.n_jobs) as n_threads:
            if n_epochs is None:
                n_epochs = self._max_iter(n_samples, batch_size)
            for epoch in range(n_epochs):
                begin = time.perf_counter()
                order = rng.permutation(n_samples)
                loss = total = 0.0
                for index, sl in enumerate(gen_batches(n_samples, batch_size)):
                    idx = order[sl]
                    m = idx.size
                    w_batch = None if w is None else w[idx].astype(dtype)
                    weight = m if w is None else float(np.sum(w[idx]))
                    if weight == 0:
                        continue  # zero-weight rows teach nothing
                    step += 1
                    if keep is not None:
                        dropout = dict(keep=keep)
                        dropout_key = _streams.minibatch_key(dropout_seed, self.n_iter_, index)
                    batch_loss = self._train_batch(
                        np.ascontiguousarray(X[idx]), None if y is None else y[idx],
                        ((self.coefs_, self.intercepts_), (state1, state2, bstate1, bstate2),
                         ([None if a is None else a[:m] for a in acts],
                          [None] + [d[:m] for d in deltas[1:]], grads)),
                        dict(adam=adam, learning_rate=self.learning_rate_init,
                             momentum=self.momentum, alpha=self.alpha, beta1=self.beta_1,
                             beta2=self.beta_2, epsilon=self.epsilon, step=step,
                             n_threads=n_threads, key=dropout_key),
                        dict(sample_weight=w_batch, **dropout),
                        rng,
                    )
                    loss += batch_loss * weight
                    total += weight
                loss /= max(total, 1e-300)
                finite = all(np.isfinite(a.min()) and np.isfinite(a.max())
                             for a in self.coefs_ + self.intercepts_)
                if not (finite and np.isfinite(loss) and loss < self._max_loss(X)):
                    raise FloatingPointError(
                        f"Fine-tuning diverged in epoch {epoch + 1} (loss {loss:.6g}"
                        f"{'' if finite else ', non-finite weights'}); use a smaller "
                        f"learning_rate_init (now {self.learning_rate_init}). The "
                        f"{self._estimator_type_name} was left as it was before this call."
                    )
                self.loss_curve_.append(loss)
                self.n_iter_ += 1
                message = f"Epoch {epoch + 1}, loss = {loss:.5f}"
                if X_val is not None:
                    score, text = self._validation_score(X_val, y_val, w_val, n_threads)
                    self.validation_scores_.append(score)
                    message += text
                    if score > best + self.tol:
                        best, stall = score, 0
                        best_params = ([W.copy() for W in self.coefs_],
                                       [b.copy() for b in self.intercepts_])
                    else:
                        stall += 1
                if self.verbose:
                    print(f"[{type(self).__name__}] {message}, "
                          f"time = {time.perf_counter() - begin:.2f}s")
                if X_val is not None and stall >= self.n_iter_no_change:
                    break
        if best_params is not None:
            self.coefs_, self.intercepts_ = best_params
            self.best_validation_score_ = best
        if keep_solver_state is None:
            keep_solver_state = getattr(self, "warm_start", False)
        if keep_solver_state:
            self._solver_state = (self.solver, step, state1, state2, bstate1, bstate2)


class PretrainedMLPClassifier(_BackpropMixin, ClassifierMixin, BaseEstimator):
    """Sigmoid MLP initialised from a DBN and fine-tuned by backpropagation.

    The hidden layers start as the RBMs of a :class:`DBNTransformer`
    (pretrained inside ``fit``, or a given fitted one), and the softmax
    output layer as a multinomial logistic regression trained on the DBN's
    top-layer features, so that before fine-tuning the network predicts
    exactly what that regression predicts (report §3.2). Backprop then
    fine-tunes every layer with minibatch SGD with momentum (or Adam) and
    weight decay, on multithreaded Cython/BLAS kernels, with optional early
    stopping on a validation split.

    The defaults were chosen by a small study on scikit-learn's digits and
    on MNIST (user guide, "How the defaults were chosen"): a DBN of one
    layer of 500 units pretrained by persistent CD, then Adam. Their
    budgets count samples and weight updates, not epochs, so the same
    defaults suit a thousand training samples and sixty thousand.

    Parameters
    ----------
    dbn : DBNTransformer, default=None
        The DBN giving the architecture and the initial hidden weights. An
        unfitted DBN is cloned and pretrained on the training data in
        ``fit``; a fitted one is used as it is (its weights are copied, not
        modified). None means the default DBN:
        ``DBNTransformer(hidden_layer_sizes, learning_rate=0.2,
        persistent=True, momentum=0.0, batch_size=10, n_iter=N)`` with
        ``N = max(10, ceil(150000 / n_samples))`` epochs, i.e. at least
        150 000 training samples visited.
    hidden_layer_sizes : tuple of int, default=(500,)
        Hidden layers of the default DBN; ignored when ``dbn`` is given.
    logistic_C : float, default=1.0
        Inverse regularisation of the logistic regression that initialises
        the output layer.
    solver : {"sgd", "adam"}, default="adam"
        Fine-tuning optimiser.
    learning_rate_init : float, default=1e-3
        Step size (SGD) or Adam's learning rate.
    momentum : float, default=0.9
        SGD momentum.
    alpha : float, default=1e-4
        L2 penalty on the weights, with scikit-learn's meaning: the
        minibatch loss gains ``alpha / (2 batch_size) * ||W||^2``.
    dropout : float in [0, 1), default=0.0
        Dropout of fine-tuning (Srivastava et al. 2014): the probability
        that a hidden unit is left out of a training minibatch's forward and
        backward pass. Kept units are scaled by ``1 / (1 - dropout)``, so
        prediction uses the whole network as it is.
    input_dropout : float in [0, 1), default=0.0
        The same for the input features.
    batch_size : int, default=32
        Minibatch size of fine-tuning.
    max_iter : int or "auto", default="auto"
        Epochs of fine-tuning; 0 keeps the pretrained network. ``"auto"``
        runs enough epochs for 56 000 weight updates, at least 10 and at
        most 100 (100 epochs on 1 500 samples, 30 on 60 000 with the
        default ``batch_size``).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified)
        and keep the weights of the epoch with the best validation accuracy;
        stop after ``n_iter_no_change`` epochs without an improvement of
        ``tol``.
    validation_fraction : float, default=0.1
        Share of the training data held out for early stopping.
    n_iter_no_change : int, default=10
        Patience of early stopping.
    tol : float, default=1e-4
        Minimum improvement of the validation accuracy.
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        Adam's parameters.
    verbose : int, default=0
        Print the loss (and validation accuracy) of every epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds pretraining, the validation split and the minibatch order.
    n_jobs : int, default=None
        Threads of the kernels; None or -1 uses all cores.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    dbn_ : DBNTransformer
        The fitted DBN the network started from.
    coefs_ : list of ndarray
        Weights of each layer, shape (n_out, n_in) (the RBM layout).
    intercepts_ : list of ndarray
        Biases of each layer.
    n_iter_ : int
        Fine-tuning epochs run.
    loss_curve_ : list of float
        Mean training cross-entropy of each epoch.
    validation_scores_ : list of float
        Validation accuracy after each epoch (early stopping only).
    best_validation_score_ : float
        Best validation accuracy (early stopping only).
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`, when they are all strings.

    See Also
    --------
    DBNTransformer : The pretrained feature extractor.
    sklearn.neural_network.MLPClassifier : The same network without
        pretraining.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skdbn import DBNTransformer, PretrainedMLPClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X = (X / 16).astype(np.float32)
    >>> dbn = DBNTransformer(hidden_layer_sizes=(64,), n_iter=3, random_state=0)
    >>> clf = PretrainedMLPClassifier(dbn=dbn, max_iter=5, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 10)
    """

    _parameter_constraints: dict = {
        "dbn": [None, HasMethods(["fit", "transform"])],
        "hidden_layer_sizes": [list, tuple],
        "logistic_C": [Interval(Real, 0, None, closed="neither")],
        **_BackpropMixin._fine_tune_constraints,
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "input_dropout": [Interval(Real, 0, 1, closed="left")],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "n_jobs": [None, Integral],
    }

    def __init__(
        self,
        dbn=None,
        *,
        hidden_layer_sizes=(500,),
        logistic_C=1.0,
        solver="adam",
        learning_rate_init=1e-3,
        momentum=0.9,
        alpha=1e-4,
        dropout=0.0,
        input_dropout=0.0,
        batch_size=32,
        max_iter="auto",
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        verbose=0,
        random_state=None,
        n_jobs=None,
    ):
        self.dbn = dbn
        self.hidden_layer_sizes = hidden_layer_sizes
        self.logistic_C = logistic_C
        self.solver = solver
        self.learning_rate_init = learning_rate_init
        self.momentum = momentum
        self.alpha = alpha
        self.dropout = dropout
        self.input_dropout = input_dropout
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.verbose = verbose
        self.random_state = random_state
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------
    def _default_dbn(self, n_samples):
        sizes = tuple(self.hidden_layer_sizes)
        if not sizes or not all(isinstance(s, Integral) and s >= 1 for s in sizes):
            raise ValueError(
                f"hidden_layer_sizes must be a non-empty sequence of positive integers, "
                f"got {self.hidden_layer_sizes!r}."
            )
        n_iter = max(_PRETRAIN_MIN_EPOCHS, math.ceil(_PRETRAIN_SAMPLES / n_samples))
        return DBNTransformer(sizes, learning_rate=0.2, persistent=True, momentum=0.0,
                              batch_size=10, n_iter=n_iter, n_jobs=self.n_jobs)

    @_fit_context(prefer_skip_nested_validation=False)
    @atomic_fit(fresh=True)
    def fit(self, X, y, sample_weight=None):
        """Pretrain (if needed), initialise the output layer, fine-tune.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (in [0, 1] for a Bernoulli DBN).
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples, as in scikit-learn's ``MLPClassifier``:
            each minibatch's loss and gradient are the weighted mean over its
            rows, the output layer's logistic regression is fitted with the
            weights, and early stopping scores the weighted accuracy. An
            integer weight acts as that many copies of the row in the
            supervised steps. The unsupervised pretraining of the DBN (when
            ``dbn`` is not fitted yet) does not use them.

        Returns
        -------
        self : object
            The fitted classifier.
        """
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32))
        check_classification_targets(y)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                                 ensure_non_negative=True)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        codes = encoder.transform(y).astype(np.int32)
        if self.classes_.size < 2:
            raise ValueError(
                "PretrainedMLPClassifier needs at least 2 classes in y; got 1 class."
            )
        rng = check_random_state(self.random_state)

        self.dbn_ = self._pretrained_dbn(X, rng)
        dtype = self.dbn_.rbms_[0].components_.dtype
        check_dtype_range(X, dtype)
        X = X.astype(dtype, copy=False)
        self._init_layers(X, codes, dtype, sample_weight)

        weights = np.ones(X.shape[0]) if sample_weight is None else sample_weight
        if self.early_stopping and self.max_iter != 0:
            X_train, X_val, y_train, y_val, w_train, w_val = train_test_split(
                X, codes, weights, test_size=self.validation_fraction, stratify=codes,
                random_state=rng.randint(np.iinfo(np.int32).max),
            )
        else:
            X_train, y_train, X_val, y_val, w_train, w_val = X, codes, None, None, weights, None
        if sample_weight is None:
            w_train = None
        self._fine_tune(X_train, y_train, X_val, y_val, rng, w_train, w_val)
        return self

    def _init_layers(self, X, codes, dtype, sample_weight=None):
        """Hidden layers from the DBN, output layer from a logistic regression."""
        self.coefs_ = [rbm.components_.astype(dtype, copy=True) for rbm in self.dbn_.rbms_]
        self.intercepts_ = [rbm.intercept_hidden_.astype(dtype, copy=True)
                            for rbm in self.dbn_.rbms_]
        first = self.dbn_.rbms_[0]
        # The network takes raw v like the DBN does: a Gaussian layer's
        # 1/sigma goes into its weights.
        self.coefs_[0] = first.state_.visible.input_weights(self.coefs_[0]).astype(dtype)
        features = self.dbn_.transform(X)
        logistic = LogisticRegression(C=self.logistic_C, max_iter=1000).fit(
            features, codes, sample_weight=sample_weight)
        if self.classes_.size == 2:
            # Two-class softmax equivalent to the binary logistic model.
            W = np.vstack([np.zeros_like(logistic.coef_), logistic.coef_])
            b = np.array([0.0, logistic.intercept_[0]])
        else:
            W, b = logistic.coef_, logistic.intercept_
        self.coefs_.append(np.ascontiguousarray(W, dtype=dtype))
        self.intercepts_.append(np.ascontiguousarray(b, dtype=dtype))
        self.n_iter_ = 0
        self.loss_curve_ = []
        self.validation_scores_ = []

    _estimator_type_name = "classifier"

    def _dropout_keep(self):
        if self.dropout == 0 and self.input_dropout == 0:
            return None
        keep = np.full(len(self.coefs_), 1 - self.dropout, dtype=np.float32)
        keep[0] = 1 - self.input_dropout
        return keep

    def _train_batch(self, X, y, arrays, options, extra, rng):
        return _mlp.train_step(X, y, *arrays, options, **extra)

    def _validation_score(self, X, y, w, n_threads):
        if w is not None and not np.sum(w) > 0:
            w = None  # all-zero validation weights: plain accuracy
        score = float(np.average(self._predict_codes(X, n_threads) == y, weights=w))
        return score, f", validation accuracy = {score:.4f}"

    # ------------------------------------------------------------------
    def _forward(self, X, n_threads):
        out = np.empty((X.shape[0], self.coefs_[-1].shape[0]), self.coefs_[0].dtype)
        for sl in gen_batches(X.shape[0], _CHUNK_ROWS):
            acts = self._scratch(sl.stop - sl.start, out.dtype)
            acts[-1] = out[sl]
            _mlp.forward(np.ascontiguousarray(X[sl], dtype=out.dtype), self.coefs_,
                         self.intercepts_, acts, n_threads)
        return out

    def _predict_codes(self, X, n_threads):
        return np.argmax(self._forward(X, n_threads), axis=1)

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probability of each class, columns in the order of ``classes_``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        check_dtype_range(X, self.coefs_[0].dtype)
        with kernel_threads(self.n_jobs) as n_threads:
            return self._forward(X, n_threads)

    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log-probability of each class.
        """
        return np.log(self.predict_proba(X))

    def predict(self, X):
        """Most probable class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Predicted labels.
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]
