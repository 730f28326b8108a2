"""Visible unit types of the RBMs, each defined once.

The kernels keep the hidden unit types in ``skdbn/_kernels/_units.pxd``; the
visible ones are defined here for everything the Python side computes: the
input the kernels take, the visible term of the free energy, the sum over
the visible layer (exact partition functions), the base model of AIS, and
what the support of the data must be. An RBM's visible type follows from
its state (``RBMState.visible``): its kernels read the same choice from
``sigma`` (empty: Bernoulli), and softmax groups are Bernoulli visibles with
one-hot blocks (``softmax_groups``), whose free energy is the Bernoulli one.

Gaussian units are handled in the scaled space ``u = v / sigma`` (report
§1.4.3): the hidden input is ``u @ W.T + c``, ``v | h`` is Gaussian with mean
``b + sigma * (h @ W)`` and standard deviation ``sigma``.

A new visible type (for example the word counts of a Replicated Softmax
model) is one more class with these methods and one more kernel code.
"""

# SPDX-License-Identifier: BSD-3-Clause

import warnings

import numpy as np
import scipy.sparse as sp

from ._kernels import _inference


class BernoulliVisible:
    """Binary (logistic) visible units; values in [0, 1] are probabilities.

    Energy ``-b^T v``; given the top-down input ``a = h @ W`` each unit is on
    with probability ``sigmoid(a + b)``.
    """

    name = "bernoulli"
    #: Standard deviations the kernels take: none.
    sigma = np.zeros(0)
    #: Whether sampled states are binary (the kernels keep sparse ones as
    #: index lists; a distributed worker sends them as bits).
    binary = True
    #: Whether the biases are bounded like the weights (the divergence
    #: check): log-odds are, a Gaussian mean follows the data's scale.
    bounded_biases = True
    #: Whether an exact partition function may enumerate this layer.
    enumerable = True

    def to_input(self, v):
        """What the kernels multiply by the weights: ``v`` itself."""
        return v

    def from_input(self, u):
        """``v`` from the kernels' visible space: ``u`` itself."""
        return u

    def input_weights(self, W):
        """Weights acting on raw ``v`` (an unrolled network's first layer)."""
        return W

    def output_weights(self, W_T):
        """Decoder weights (n_hidden, n_visible) giving the mean in v-space
        before the output units' bias."""
        return W_T

    def generative_step(self, diff):
        """Gradients of ``log p(v | h)`` with respect to the top-down input
        and the biases, from ``diff = v - mean``: ``(diff, diff.sum(0))``."""
        return diff, diff.sum(axis=0)

    def input_values(self, values, col, counts):
        """:meth:`to_input` of the nonzeros of a sparse matrix by column:
        ``counts[k]`` values in each column ``col[k]``, in order."""
        return values

    def energy(self, X, b):
        """The visible term of the free energy of each row of X: ``-X @ b``."""
        return -np.asarray(X @ b).ravel()

    def sum_out(self, H, W, b, n_threads):
        """``log sum_v exp(-E(v, h))`` without the hidden bias term, for each
        row h of H: the visible layer summed out analytically (an exact
        partition function enumerates the hidden layer). Bernoulli: the
        softplus of each unit's input, by the kernels' Bernoulli term."""
        out = np.empty(H.shape[0])
        _inference.hidden_free_energy(H, np.ascontiguousarray(W.T), b, out, n_threads)
        return out

    def log_normaliser(self):
        """The constant the sum over the visible layer adds: none."""
        return 0.0

    def base_model(self, b, sums, n):
        """AIS base model (no weights): biases at the smoothed log-odds of the
        feature ``sums`` of ``n`` samples, and its ``log Z`` (visible part)."""
        p = (sums + 1) / (n + 2)
        b_base = np.log(p) - np.log1p(-p)
        return b_base, np.logaddexp(0, b_base).sum()

    @classmethod
    def check_support(cls, X, name):
        """Warn when X has values outside [0, 1], with how to fix the data."""
        data = X.data if sp.issparse(X) else X
        if data.size == 0:
            return
        lo, hi = float(np.min(data)), float(np.max(data))
        if lo < 0 or hi > 1:
            warnings.warn(
                f"{name} expects features in [0, 1] (probabilities of binary units), "
                f"but X ranges over [{lo:.3g}, {hi:.3g}]. Scale the data first, e.g. "
                "divide 8-bit pixel intensities by 255 or use "
                "sklearn.preprocessing.MinMaxScaler; for real-valued data use "
                "GaussianBernoulliRBM.",
                UserWarning,
                stacklevel=3,
            )


class GaussianVisible(BernoulliVisible):
    """Gaussian visible units of standard deviation ``sigma`` (one per unit).

    Energy ``sum_i (v_i - b_i)^2 / (2 sigma_i^2)``, with the weights acting
    on ``u = v / sigma``.
    """

    name = "gaussian"
    binary = False
    bounded_biases = False
    enumerable = False

    def __init__(self, sigma):
        self.sigma = sigma

    def to_input(self, v):
        return v / self.sigma

    def from_input(self, u):
        return u * self.sigma

    def input_weights(self, W):
        return W / self.sigma

    def output_weights(self, W_T):
        return W_T * self.sigma[:, None]

    def input_values(self, values, col, counts):
        return values / np.repeat(self.sigma[col], counts[col]).astype(values.dtype)

    def generative_step(self, diff):
        # d log p / d(h W) = (v - mean) / sigma, and / sigma^2 for the bias.
        diff = diff / self.sigma
        return diff, diff.sum(axis=0) / self.sigma

    def energy(self, X, b):
        sigma = self.sigma
        if sp.issparse(X):
            # sum_i ((v_i - b_i) / s_i)^2 = sum_i (b_i / s_i)^2 over all
            # features, plus (v_i / s_i)^2 - 2 v_i b_i / s_i^2 at the nonzeros.
            Z = sp.csr_matrix(X).multiply(1 / sigma).tocsr()
            sq = np.asarray(Z.multiply(Z).sum(axis=1)).ravel()
            cross = np.asarray(Z @ (b / sigma)).ravel()
            out = sq - 2 * cross + np.sum((b / sigma) ** 2, dtype=np.float64)
            return 0.5 * out.astype(b.dtype)
        z = (X - b) / sigma
        return 0.5 * np.einsum("ij,ij->i", z, z).astype(b.dtype)

    def sum_out(self, H, W, b, n_threads):
        # The Gaussian integral over u of exp(-(u - b/s)^2 / 2 + u a), a = h W
        # (with the Jacobian s of v = s u, added once in log_partition).
        a = H @ W
        return (a * (b / self.sigma) + 0.5 * a**2).sum(1)

    def log_normaliser(self):
        """``sum_i log(sigma_i sqrt(2 pi))``: the Gaussian integrals' constant."""
        return np.sum(np.log(self.sigma * np.sqrt(2 * np.pi)))

    def base_model(self, b, sums, n):
        """AIS base model: the RBM's own biases and sigma, without weights."""
        return b, self.log_normaliser()

    @classmethod
    def check_support(cls, X, name):
        """Any real value is in the support."""


class ReplicatedSoftmaxVisible(BernoulliVisible):
    """Word counts: the visible layer of a Replicated Softmax model
    (Salakhutdinov & Hinton, 2009).

    A document of length ``D = sum_k v_k`` is ``D`` draws from one softmax
    over the vocabulary with shared weights: energy ``-b^T v - D c^T h -
    h^T W v``, so ``v | h`` is multinomial with ``D`` draws from
    ``softmax(b + h @ W)`` and the hidden biases of a document are ``D c``.
    The kernels take each row's ``D`` (``lengths``). The free energy, sum
    and partition function are those of the ordered sequence of ``D``
    words, as in the paper, so ``log p(v)`` is per sequence.
    """

    name = "replicated_softmax"
    binary = False
    bounded_biases = True
    # The hidden layer is enumerated (the sum over documents is analytic).
    enumerable = False

    @staticmethod
    def lengths(X, dtype):
        """Each row's length ``D``, the sum of its counts, in ``dtype``."""
        return np.asarray(X.sum(axis=1), dtype=dtype).ravel()

    def sum_out(self, H, W, b, n_threads, length):
        """``log sum_v exp(-E(v, h))`` over the sequences of ``length``
        words, without the hidden bias term: ``D logsumexp(b + h W)``."""
        a = H @ W + b
        top = a.max(axis=1)
        return length * (top + np.log(np.exp(a - top[:, None]).sum(axis=1)))

    def base_model(self, b, sums, n):
        """AIS base model (no weights): biases at the smoothed log word
        frequencies of the feature ``sums``, and the log partition function of
        one word (times ``D`` for a document of length ``D``)."""
        b_base = np.log((sums + 1) / (sums.sum() + sums.size))
        return b_base, float(np.log(np.exp(b_base).sum()))

    @classmethod
    def check_support(cls, X, name):
        """Warn when X is not made of integer counts (negative values are
        refused by the estimator's validation)."""
        data = X.data if sp.issparse(X) else np.asarray(X)
        if data.size == 0:
            return
        fractional = data != np.round(data)
        if np.any(fractional):
            warnings.warn(
                f"{name} models word counts: nonnegative integers (a document of length "
                f"D is D draws of a word), but X has values such as "
                f"{float(data[fractional].flat[0]):.3g}. Pass "
                "raw counts, e.g. sklearn.feature_extraction.text.CountVectorizer's "
                "output, not tf-idf or normalised frequencies.",
                UserWarning,
                stacklevel=3,
            )


BERNOULLI = BernoulliVisible()
REPLICATED_SOFTMAX = ReplicatedSoftmaxVisible()


def visible_units(sigma):
    """The visible unit type of a model whose kernels take ``sigma``: the
    one place that reads the type from it (empty: Bernoulli)."""
    return GaussianVisible(sigma) if np.size(sigma) else BERNOULLI
