"""The Replicated Softmax model of word counts (Salakhutdinov & Hinton, 2009)."""

# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, check_non_negative

from . import _streams
from ._kernels import _inference
from ._rbm import _BaseRBM
from ._state import hidden_unit_code
from ._visible import REPLICATED_SOFTMAX, ReplicatedSoftmaxVisible
from .utils._threads import kernel_threads


# Largest model whose log Z_D is computed exactly (2**20 hidden states);
# beyond it, by AIS with these temperatures (None: metrics.default_betas).
_EXACT_MAX_HIDDEN = 20
_AIS_BETAS = None


class ReplicatedSoftmaxRBM(_BaseRBM):
    """Replicated Softmax: an undirected topic model of word counts.

    Each document is a vector of word counts ``v`` over a vocabulary of
    ``n_features`` words; a document of length ``D = sum(v)`` is ``D`` draws
    from one softmax over the vocabulary with weights shared by every draw,
    and the binary hidden units ("topics") see the counts (Salakhutdinov &
    Hinton, 2009). The energy of a document and hidden state is

    ``E(v, h) = -h^T W v - b^T v - D c^T h``,

    so ``P(h_j = 1 | v) = sigmoid(W_j v + D c_j)`` and ``v | h`` is
    multinomial: ``D`` draws from ``softmax(b + h @ W)``. The hidden biases
    scale with the length, which keeps a long document's topics as sharp as
    a short one's. Trained by CD-k or PCD in the package's kernels, on dense
    or sparse (CSR) counts such as the output of
    :class:`~sklearn.feature_extraction.text.CountVectorizer`.

    Parameters
    ----------
    n_components : int, default=50
        Number of hidden units (topics).
    learning_rate : float, default=0.3
        Learning rate of the weights and biases, per word: a minibatch's
        gradient is divided by its number of words (the sum of its
        documents' lengths), not by its number of documents, so that one
        rate suits short and long documents alike (a document's gradient
        grows with its length).
    batch_size : int, default=100
        Documents per minibatch.
    n_iter : int, default=100
        Passes over the training data.
    verbose : int, default=0
        Print the reconstruction error after each pass.
    random_state : int, RandomState instance or None, default=None
        Seed of the initial weights and of every random draw; the same seed
        gives the same model for any ``n_jobs``.
    cd_k : int, default=1
        Gibbs steps of the negative phase.
    persistent : bool, default=False
        Persistent CD: the negative chains continue from one minibatch to the
        next (their length is that of the minibatch's documents).
    sample_visible : bool, default=True
        Sample the reconstructed counts (``D`` draws) rather than use their
        expectation ``D softmax(b + h W)``.
    sampled_statistics : bool, default=False
        Use binary hidden samples instead of probabilities in the gradient.
    momentum : float in [0, 1) or "schedule", default=0.9
        Momentum of the updates; "schedule" is 0.5 for five epochs, then 0.9.
    weight_decay : float, default=0.0
        L2 penalty on the weights.
    sparsity_target : float in (0, 1), default=0.1
        Target mean activation of the hidden units, with ``sparsity_cost``.
    sparsity_cost : float, default=0.0
        Weight of the sparsity penalty (0: off).
    dtype : {"float32", "float64"} or None, default=None
        Dtype of the model; None follows the data's.
    n_jobs : int, default=None
        Threads of the kernels; None uses the cores available.
    hidden_units : {"bernoulli", "gaussian", "nrelu"}, default="bernoulli"
        Type of the hidden units.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Weights ``W``: row ``j`` says which words topic ``j`` raises.
    intercept_hidden_ : ndarray of shape (n_components,)
        Hidden biases ``c`` (per word of the document).
    intercept_visible_ : ndarray of shape (n_features,)
        Visible biases ``b``: log word frequencies up to a constant.
    n_iter_ : int
        Passes over the data run so far.
    reconstruction_errors_ : list of float
        Mean squared error between the counts and their reconstruction, per
        pass.
    n_features_in_ : int
        Vocabulary size.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features seen during fit, if they were strings.

    See Also
    --------
    sklearn.decomposition.LatentDirichletAllocation : A directed topic model.
    BernoulliRBM : Binary visible units.

    References
    ----------
    R. Salakhutdinov and G. Hinton, "Replicated Softmax: an Undirected Topic
    Model", NIPS 2009.

    Examples
    --------
    >>> import numpy as np
    >>> from skdbn import ReplicatedSoftmaxRBM
    >>> X = np.array([[3, 0, 1, 0], [0, 2, 0, 2], [2, 0, 2, 0], [0, 1, 0, 3]])
    >>> model = ReplicatedSoftmaxRBM(n_components=2, n_iter=5, random_state=0).fit(X)
    >>> model.transform(X).shape
    (4, 2)
    """

    _visible_type = ReplicatedSoftmaxVisible
    _score_name = "log-likelihood"

    _parameter_constraints: dict = {**_BaseRBM._parameter_constraints}

    def __init__(
        self,
        n_components=50,
        *,
        learning_rate=0.3,
        batch_size=100,
        n_iter=100,
        verbose=0,
        random_state=None,
        cd_k=1,
        persistent=False,
        sample_visible=True,
        sampled_statistics=False,
        momentum=0.9,
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
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.sparsity_target = sparsity_target
        self.sparsity_cost = sparsity_cost
        self.dtype = dtype
        self.n_jobs = n_jobs
        self.hidden_units = hidden_units

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        return tags

    def _validate_X(self, X, reset):
        X = super()._validate_X(X, reset)
        check_non_negative(X, f"{type(self).__name__} (X holds word counts)")
        return X

    def _validate_fitted_input(self, X):
        X = super()._validate_fitted_input(X)
        check_non_negative(X, f"{type(self).__name__} (X holds word counts)")
        return X

    def _lengths(self, X):
        return REPLICATED_SOFTMAX.lengths(X, self.components_.dtype)

    def _down_lengths(self, Hs):
        # A top-down pass knows no document: one word, whose mean is the
        # softmax (the word distribution).
        return np.ones(Hs.shape[0], self.components_.dtype)

    def _visible_from_hidden(self, Hs, n_threads, sample=False, key=0, stream=0,
                             lengths=None):
        if lengths is None:
            lengths = self._down_lengths(Hs)
        return super()._visible_from_hidden(Hs, n_threads, sample, key, stream, lengths)

    def _check_distributable(self):
        raise ValueError(
            "DistributedFit does not train ReplicatedSoftmaxRBM: its workers each hold a "
            "block of the vocabulary, and the softmax of a document spans all of it (a "
            "normaliser and D draws across the workers' blocks). Fit it in one process; "
            "the kernels use every core of the machine."
        )

    def score_samples(self, X):
        """Log-probability ``log p(v)`` of each document, in nats.

        ``-F(v) - log Z_D``, with ``Z_D`` the partition function of the
        documents of the same length ``D``: exact for models of at most
        20 hidden units (the hidden layer enumerated), else estimated by
        AIS (:func:`skdbn.metrics.log_partition_ais`: 100 runs for each
        distinct length, all run together, the default temperatures, a seed
        fixed by the model). The probability is that of the sequence of
        ``D`` words, as in the paper.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Word counts.

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
        """
        X = self._validate_fitted_input(X)
        return self._log_probabilities(X)[:, 0]

    def _log_probabilities(self, X):
        """(n_samples, 3): log p(v) and its lower and upper bounds (the AIS
        estimates' +-3 standard-error intervals of log Z_D)."""
        from .metrics import _replicated_softmax_ais, _replicated_softmax_exact

        D = REPLICATED_SOFTMAX.lengths(X, np.float64).round().astype(np.int64)
        lengths = np.unique(D)
        if self.n_components <= _EXACT_MAX_HIDDEN:
            log_z = {d: (z, z, z) for d, z in
                     _replicated_softmax_exact(self, lengths, self.n_jobs).items()}
        else:
            seed = int(self._state.seed % 2**32)
            log_z = {d: (e.log_z, e.lower, e.upper) for d, e in _replicated_softmax_ais(
                self, lengths, betas=_AIS_BETAS, random_state=seed, n_jobs=self.n_jobs).items()}
        z = np.array([log_z[int(d)] for d in D]).reshape(-1, 3)
        neg_f = -self._free_energy(X).astype(np.float64)
        # A larger log Z gives the lower log-probability.
        return neg_f[:, None] - z[:, [0, 2, 1]]

    def perplexity(self, X, return_interval=False):
        """Per-word perplexity ``exp(-sum log p(v) / sum D)`` of the documents X.

        The measure of
        :meth:`sklearn.decomposition.LatentDirichletAllocation.perplexity`:
        lower is better, and a unigram model of the word frequencies is the
        baseline. ``log p(v)`` is :meth:`score_samples`'s.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Word counts (held-out documents).
        return_interval : bool, default=False
            Also return the perplexities at the ends of the AIS estimates'
            +-3 standard-error intervals of every ``log Z_D`` (all at the
            same end: a conservative interval). Exact for small models.

        Returns
        -------
        perplexity : float
        lower, upper : float
            Only with ``return_interval``.
        """
        X = self._validate_fitted_input(X)
        n_words = float(X.sum())
        logp = self._log_probabilities(X).sum(axis=0)
        perplexity, lower, upper = np.exp(-logp / n_words)
        if return_interval:
            return float(perplexity), float(upper), float(lower)
        return float(perplexity)

    def score(self, X, y=None):
        """Total log-likelihood of the documents X, in nats (the convention
        of :meth:`sklearn.decomposition.LatentDirichletAllocation.score`).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Word counts.
        y : None
            Ignored.

        Returns
        -------
        score : float
        """
        return float(self.score_samples(X).sum())

    def sample(self, n_samples=1, length=100, n_gibbs=1000, random_state=None):
        """Documents of ``length`` words drawn from the model by Gibbs sampling.

        Parameters
        ----------
        n_samples : int, default=1
            Number of documents.
        length : int, default=100
            Words per document.
        n_gibbs : int, default=1000
            Gibbs steps from documents drawn from the visible biases alone.
        random_state : int, RandomState instance or None, default=None
            Seed of the draws; None continues the model's own stream.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            Word counts, each row summing to ``length``.
        """
        check_is_fitted(self)
        dtype = self.components_.dtype
        lengths = np.full(n_samples, length, dtype=dtype)
        seed = (None if random_state is None
                else _streams.draw_seed(check_random_state(random_state)))
        # Start from the words' own frequencies: h = 0.
        h = np.zeros((n_samples, self.n_components), dtype=dtype)
        p = np.empty_like(h)
        with kernel_threads(self.n_jobs) as n_threads:
            for step in range(n_gibbs + 1):
                key = (self._next_inference_key() if seed is None
                       else _streams.inference_key(seed, step))
                v = self._visible_from_hidden(h, n_threads, sample=True, key=key,
                                              stream=_streams.GIBBS_VISIBLE, lengths=lengths)
                if step == n_gibbs:
                    return v
                _inference.hidden_given_visible(
                    v, self.components_, self.intercept_hidden_, p, h,
                    (key, _streams.GIBBS_HIDDEN), n_threads, hidden_unit_code(self),
                    lengths=lengths)
