"""The generative DBN of images and labels (Hinton, Osindero & Teh 2006)."""

# SPDX-License-Identifier: BSD-3-Clause

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, log_softmax
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.utils import check_random_state, check_scalar, gen_batches
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from . import _streams
from ._dbn import DBNTransformer
from ._rbm import BernoulliRBM
from ._up_down import UpDownMixin
from .utils._atomic import atomic_fit
from .utils._compat import (
    Interval,
    InvalidParameterError,
    StrOptions,
    _fit_context,
    validate_data,
)

# Parameters given once for all layers or once per layer (the top RBM last).
_PER_LAYER = ("learning_rate", "n_iter", "batch_size", "cd_k", "persistent",
              "sample_visible", "momentum", "weight_decay")
# Rows of the class posterior computed at once (bounds its temporaries).
_CHUNK_ROWS = 4096


def _scalar_or_per_layer(kind):
    return [kind, list, tuple]


class DBNClassifier(UpDownMixin, ClassifierMixin, TransformerMixin, BaseEstimator):
    """Deep Belief Network of images and labels, classifying by free energy.

    The generative model of Hinton, Osindero & Teh (2006): RBMs stacked
    greedily on the data without labels, then a top RBM whose visible layer
    is the last of those feature layers joined with one softmax group of
    label units (one unit per class). A test image is recognised by a
    deterministic up-pass to the top RBM's visible features ``h``, then the
    exact class posterior ``p(y | h) ∝ exp(-F(h, y))`` from the top RBM's
    free energies, without sampling. Optionally the whole network is
    fine-tuned as a generative model by the up-down algorithm (contrastive
    wake-sleep) with the labels clamped in the wake phase and sampled in the
    top RBM's negative phase. :meth:`sample` generates images of chosen
    classes by Gibbs sampling in the top RBM with the label clamped, then a
    top-down pass.

    Read more in the :ref:`User Guide <dbn_classifier>`.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(500, 500, 2000)
        Number of hidden units of each RBM, bottom to top; the last is the
        hidden layer of the top RBM, the one that sees the labels. A single
        value gives one RBM on [pixels, labels].
    learning_rate : float or sequence of float, default=0.05
        Learning rate of each RBM's greedy training: one value for all
        layers or one per layer (the top RBM last). Likewise ``n_iter``,
        ``batch_size``, ``cd_k``, ``persistent``, ``sample_visible``,
        ``momentum`` and ``weight_decay`` (see :class:`BernoulliRBM`).
    n_iter : int or sequence of int, default=10
        Epochs of each RBM.
    batch_size : int or sequence of int, default=10
        Minibatch size of each RBM; the bottom one's is also up-down's.
    cd_k : int or sequence of int, default=1
        Gibbs steps of each RBM's negative phase; the top RBM's is also
        used during up-down.
    persistent : bool or sequence of bool, default=False
        Persistent contrastive divergence for each RBM.
    sample_visible : bool or sequence of bool, default=False
        Sample the negative-phase visibles of each RBM (mean-field if False).
    momentum : float, "schedule" or sequence, default=0.5
        Momentum of each RBM.
    weight_decay : float or sequence of float, default=0.0
        L2 penalty of each RBM's weights.
    up_down_iter : int, default=0
        Epochs of up-down fine-tuning after the greedy training. It unties
        the recognition weights (``rbms_[:-1]``, used by :meth:`predict`)
        from the generative weights (``generative_components_``, used by
        :meth:`sample`) of the lower layers; the top RBM is trained by its
        CD-k on [wake features, clamped label], the wake features being the
        up-pass probabilities that recognition uses (not binary samples).
        :meth:`partial_fit` runs the epochs one call at a time.
    up_down_learning_rate : float, default=0.01
        Learning rate of every weight during up-down fine-tuning.
    verbose : int, default=0
        Print each RBM's progress and each up-down epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds every layer's initialisation and samples.
    dtype : {None, "float32", "float64"}, default=None
        Floating type of the model; None follows the input.
    n_jobs : int, default=None
        Threads of the kernels; None or -1 uses all cores.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels, sorted; any label type.
    rbms_ : list of BernoulliRBM
        The fitted RBMs, bottom first. The last is the top RBM: its visible
        units are the features of the layer below followed by one softmax
        group of ``n_classes`` label units (``softmax_groups``). The others'
        ``components_`` and ``intercept_hidden_`` are the recognition weights.
    generative_components_ : list of ndarray
        Top-down weights of each layer below the top RBM, of shape
        (n_hidden, n_visible): copies of the RBMs' weights after greedy
        training, fine-tuned separately by up-down.
    generative_intercepts_ : list of ndarray
        Visible biases of each layer below the top RBM, for the top-down pass.
    up_down_errors_ : list of float
        For each up-down epoch, the mean squared error of the data against
        its top-down prediction from the sampled first hidden layer (with a
        single RBM, its reconstruction error).
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`, when they are all strings.

    See Also
    --------
    DBNTransformer : The unsupervised DBN.
    PretrainedMLPClassifier : A discriminative classifier initialised from a DBN.

    References
    ----------
    .. [1] Hinton, G. E., Osindero, S. and Teh, Y. A fast learning algorithm
       for deep belief nets. Neural Computation 18, 2006.

    Examples
    --------
    >>> import numpy as np
    >>> from skdbn import DBNClassifier
    >>> rng = np.random.RandomState(0)
    >>> y = np.arange(60) % 2
    >>> X = (rng.uniform(size=(60, 16)) < 0.2 + 0.6 * y[:, None]).astype(np.float32)
    >>> clf = DBNClassifier(hidden_layer_sizes=(16,), n_iter=20, random_state=0)
    >>> clf.fit(X, y).score(X, y) > 0.9
    True
    >>> clf.sample(2, y=1, n_gibbs=10, random_state=0).shape
    (2, 16)
    """

    _parameter_constraints: dict = {
        "hidden_layer_sizes": [list, tuple],
        "learning_rate": _scalar_or_per_layer(Interval(Real, 0, None, closed="neither")),
        "n_iter": _scalar_or_per_layer(Interval(Integral, 0, None, closed="left")),
        "batch_size": _scalar_or_per_layer(Interval(Integral, 1, None, closed="left")),
        "cd_k": _scalar_or_per_layer(Interval(Integral, 1, None, closed="left")),
        "persistent": _scalar_or_per_layer("boolean"),
        "sample_visible": _scalar_or_per_layer("boolean"),
        "momentum": [Interval(Real, 0, 1, closed="left"), StrOptions({"schedule"}), list, tuple],
        "weight_decay": _scalar_or_per_layer(Interval(Real, 0, None, closed="left")),
        "up_down_iter": [Interval(Integral, 0, None, closed="left")],
        "up_down_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "dtype": DBNTransformer._parameter_constraints["dtype"],
        "n_jobs": [None, Integral],
    }

    def __init__(
        self,
        hidden_layer_sizes=(500, 500, 2000),
        *,
        learning_rate=0.05,
        n_iter=10,
        batch_size=10,
        cd_k=1,
        persistent=False,
        sample_visible=False,
        momentum=0.5,
        weight_decay=0.0,
        up_down_iter=0,
        up_down_learning_rate=0.01,
        verbose=0,
        random_state=None,
        dtype=None,
        n_jobs=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.learning_rate = learning_rate
        self.n_iter = n_iter
        self.batch_size = batch_size
        self.cd_k = cd_k
        self.persistent = persistent
        self.sample_visible = sample_visible
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.up_down_iter = up_down_iter
        self.up_down_learning_rate = up_down_learning_rate
        self.verbose = verbose
        self.random_state = random_state
        self.dtype = dtype
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------
    def _sizes(self):
        sizes = tuple(self.hidden_layer_sizes)
        if not sizes or not all(isinstance(s, Integral) and s >= 1 for s in sizes):
            raise ValueError(
                f"hidden_layer_sizes must be a non-empty sequence of positive integers, "
                f"got {self.hidden_layer_sizes!r}."
            )
        return sizes

    def _per_layer(self):
        """``_PER_LAYER`` values as one list per parameter, one value per layer."""
        n_layers = len(self._sizes())
        values = {}
        for name in _PER_LAYER:
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                if len(value) != n_layers:
                    raise ValueError(
                        f"{name} has {len(value)} values for {n_layers} layers; give one "
                        "value for all layers or one per layer (the top RBM last)."
                    )
                values[name] = list(value)
            else:
                values[name] = [value] * n_layers
        return values

    def _top_rbm(self, values, n_features, n_classes, seed):
        top = BernoulliRBM(
            n_components=self._sizes()[-1],
            softmax_groups=[[n_features, n_features + n_classes]],
            verbose=self.verbose, random_state=seed, dtype=self.dtype, n_jobs=self.n_jobs,
            **{name: v[-1] for name, v in values.items()},
        )
        try:
            top._validate_params()
        except InvalidParameterError as exc:
            raise InvalidParameterError(
                f"The top RBM of {type(self).__name__} got an invalid value: {exc} Give one "
                "valid value for all layers or one valid value per layer."
            ) from None
        return top

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        # A generative model of data in [0, 1]: on the checks' standardised
        # blobs (negative values) its accuracy is not a classifier's measure.
        tags.classifier_tags.poor_score = True
        return tags

    # ------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    @atomic_fit(fresh=True)
    def fit(self, X, y):
        """Train the RBMs greedily, the labels joined at the top, then up-down.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data, in [0, 1].
        y : array-like of shape (n_samples,)
            Class labels, of any type.

        Returns
        -------
        self : object
            The fitted classifier.
        """
        X, y = self._validate(X, y, reset=True)
        classes, y_index = np.unique(y, return_inverse=True)
        rng = check_random_state(self.random_state)
        self._fit_greedy(X, y_index, classes, rng)
        if self.up_down_iter > 0:
            self._up_down(self._joined_data(X, y_index), self.up_down_iter, rng,
                          n_clamped=len(classes), mean_field_top=True)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    @atomic_fit(fresh=False)
    def partial_fit(self, X, y, classes=None):
        """Greedy training on the first call, one up-down epoch on each later one.

        The first call trains the RBMs greedily on the chunk, as :meth:`fit`
        does (``up_down_iter`` is not used); every later call runs one epoch
        of up-down fine-tuning on its chunk. With an integer
        ``random_state``, ``fit`` with ``up_down_iter=n`` and one call of
        ``partial_fit`` followed by ``n`` more on the same data give the
        same model: the epochs are numbered on (``len(up_down_errors_)``)
        and draw the same streams. This makes long fine-tuning resumable
        from a pickled model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A chunk of training data, in [0, 1].
        y : array-like of shape (n_samples,)
            Class labels of the chunk, from ``classes``.
        classes : array-like of shape (n_classes,), default=None
            Every class of all calls. Required on the first call, and
            ignored (if equal) on later ones.

        Returns
        -------
        self : object
            The partially fitted classifier.
        """
        first = not hasattr(self, "classes_")
        X, y = self._validate(X, y, reset=first)
        if first:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            classes = np.unique(np.asarray(classes))
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(
                f"classes={np.unique(classes)!r} is not the same as on the first call to "
                f"partial_fit, {self.classes_!r}."
            )
        else:
            classes = self.classes_
        y_index = self._label_index(classes, y, X.shape[0])
        rng = check_random_state(self.random_state)
        if first:
            self._fit_greedy(X, y_index, classes, rng)
        else:
            self._greedy_seeds(rng)  # the up-down seeds follow them, as in fit
            self._up_down(self._joined_data(X, y_index), 1, rng, n_clamped=len(classes),
                          mean_field_top=True)
        return self

    def _validate(self, X, y, reset):
        X, y = validate_data(self, X, y, accept_sparse="csr",
                             dtype=(np.float64, np.float32), reset=reset)
        check_classification_targets(y)
        return X, y

    @staticmethod
    def _greedy_seeds(rng):
        """Seeds of the layers below the labels and of the top RBM."""
        return rng.randint(np.iinfo(np.int32).max, size=2)

    def _fit_greedy(self, X, y_index, classes, rng):
        """The RBMs trained greedily, the labels joined at the top."""
        if len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes; got one "
                f"class, {classes[0]!r}."
            )
        sizes, values = self._sizes(), self._per_layer()
        lower_seed, top_seed = self._greedy_seeds(rng)
        rbms, features = [], X
        if len(sizes) > 1:
            # The layers below the labels: an unsupervised DBN, trained greedily.
            dbn = DBNTransformer(
                sizes[:-1], verbose=self.verbose, random_state=lower_seed, dtype=self.dtype,
                n_jobs=self.n_jobs, **{name: v[:-1] for name, v in values.items()},
            ).fit(X)
            rbms, features = list(dbn.rbms_), dbn.transform(X)
        top = self._top_rbm(values, features.shape[1], len(classes), top_seed)
        top.fit(self._join_labels(features, y_index, len(classes)))
        self.classes_ = classes
        self.rbms_ = rbms + [top]
        self._tie_generative_weights()

    def _joined_data(self, X, y_index):
        """[X, one-hot labels] in the model's dtype: up-down's training rows."""
        dtype = self.rbms_[-1].components_.dtype
        return self._join_labels(X.astype(dtype, copy=False), y_index, len(self.classes_))

    @staticmethod
    def _onehot(y_index, n_classes, dtype):
        onehot = np.zeros((len(y_index), n_classes), dtype)
        onehot[np.arange(len(y_index)), y_index] = 1
        return onehot

    @classmethod
    def _join_labels(cls, features, y_index, n_classes):
        """[features, one-hot labels] in the features' dtype (and sparsity)."""
        dtype = features.dtype
        onehot = cls._onehot(y_index, n_classes, dtype)
        if sp.issparse(features):
            return sp.hstack([features, sp.csr_matrix(onehot)], format="csr", dtype=dtype)
        return np.hstack([features, onehot])

    @staticmethod
    def _label_index(classes, y, n_samples):
        """Positions in ``classes`` of the labels ``y`` (one label or one per
        sample); unknown labels raise."""
        y = np.asarray(y)
        if y.ndim == 0:
            y = np.full(n_samples, y)
        if y.shape != (n_samples,):
            raise ValueError(
                f"y must be one label or {n_samples} labels (one per sample), got an array "
                f"of shape {y.shape}."
            )
        index = np.minimum(np.searchsorted(classes, y), len(classes) - 1)
        unknown = classes[index] != y
        if np.any(unknown):
            raise ValueError(
                f"y contains labels that are not among the classes {list(classes)}: "
                f"{list(np.unique(y[unknown]))}."
            )
        return index

    # -- recognition -------------------------------------------------------------
    def _up_pass(self, X):
        """Deterministic up-pass to the top RBM's visible features."""
        check_is_fitted(self)
        data = validate_data(self, X, accept_sparse="csr", dtype=(np.float64, np.float32),
                             reset=False)
        for rbm in self.rbms_[:-1]:
            data = rbm.transform(data)
        if sp.issparse(data):
            data = data.toarray()
        with np.errstate(over="ignore"):
            data = np.ascontiguousarray(data, dtype=self.rbms_[-1].components_.dtype)
        if not np.all(np.isfinite(data)):
            raise ValueError(
                "The free energies of X overflow: X has values too large for this model "
                "(its inputs are expected in [0, 1])."
            )
        return data

    def _label_inputs(self, H):
        """Per chunk of rows: the top hidden units' input from the features,
        ``H W_f^T + c`` (n, n_hidden), and ``-F(h, y) + h . b_f`` for each class
        (n, n_classes), in float64."""
        top = self.rbms_[-1]
        n_features = H.shape[1]
        W_f, W_y = top.components_[:, :n_features], top.components_[:, n_features:]
        b_y = top.intercept_visible_[n_features:]
        for rows in gen_batches(H.shape[0], _CHUNK_ROWS):
            A = H[rows] @ W_f.T + top.intercept_hidden_
            # -F(h, y) = h . b_f + b_y + sum_j softplus(A_j + W_jy); the
            # h . b_f term is the same for every class and cancels.
            neg_F = np.stack([np.logaddexp(0, A + W_y[:, k]).sum(axis=1, dtype=np.float64)
                              for k in range(W_y.shape[1])], axis=1) + b_y
            if not np.all(np.isfinite(neg_F)):
                raise ValueError(
                    "The free energies of X overflow: X has values too large for this "
                    "model (its inputs are expected in [0, 1])."
                )
            yield rows, A, W_y, neg_F

    def predict_log_proba(self, X):
        """Log of the class posterior ``p(y | h)`` of the top RBM.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            ``-F(h, y) - logsumexp_y' -F(h, y')`` for the up-pass features
            ``h`` of each sample, columns in the order of ``classes_``.
        """
        H = self._up_pass(X)
        out = np.empty((H.shape[0], len(self.classes_)))
        for rows, _, _, neg_F in self._label_inputs(H):
            out[rows] = log_softmax(neg_F, axis=1)
        return out

    def predict_proba(self, X):
        """Exact class posterior ``p(y | h) ∝ exp(-F(h, y))`` of the top RBM.

        ``h`` is the deterministic up-pass of X to the top RBM's visible
        features and ``F(h, y)`` the top RBM's free energy with the label
        units set to the one-hot code of ``y``; no sampling.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Class probabilities, columns in the order of ``classes_``.
        """
        return np.exp(self.predict_log_proba(X))

    def predict(self, X):
        """The class of lowest free energy in the top RBM.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Predicted labels.
        """
        log_proba = self.predict_log_proba(X)
        return self.classes_[np.argmax(log_proba, axis=1)]

    def transform(self, X):
        """Top features: ``E[h_top | x]`` with the label marginalised.

        The expected hidden activations of the top RBM given the up-pass
        features ``h`` of X, averaged over the labels with their exact
        posterior: ``sum_y p(y | h) sigmoid(c + W_f h + W_y)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data.

        Returns
        -------
        H : ndarray of shape (n_samples, hidden_layer_sizes[-1])
            Expected activations of the top hidden layer.
        """
        H = self._up_pass(X)
        top = self.rbms_[-1]
        out = np.zeros((H.shape[0], top.n_components), top.components_.dtype)
        for rows, A, W_y, neg_F in self._label_inputs(H):
            proba = np.exp(log_softmax(neg_F, axis=1)).astype(out.dtype)
            for k in range(W_y.shape[1]):
                out[rows] += proba[:, k:k + 1] * expit(A + W_y[:, k])
        return out

    # -- generation ----------------------------------------------------------------
    def sample(self, n_samples=1, y=None, n_gibbs=1000, random_state=None):
        """Generate images, of given classes or of the model's own choice.

        Alternating Gibbs sampling in the top RBM for ``n_gibbs`` steps from
        random hidden states, with the label units clamped to ``y`` (or
        sampled with the features if ``y`` is None), then a top-down pass
        with the generative weights: binary samples of each lower hidden
        layer and the mean of the data layer.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples (independent chains).
        y : label, array-like of shape (n_samples,) or None, default=None
            Class of each sample (one label for all of them), from
            ``classes_``; None lets the chains sample the labels.
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
        onehot = None
        if y is not None:
            onehot = self._onehot(self._label_index(self.classes_, y, n_samples),
                                  len(self.classes_), self.rbms_[-1].components_.dtype)
        seed = _streams.draw_seed(check_random_state(random_state))
        return self._dream(n_samples, n_gibbs, seed, n_clamped=len(self.classes_),
                           clamped=onehot)
