"""Log-likelihood of RBMs: exact partition functions and AIS estimates.

Reconstruction error says little about how well an RBM models its data
(report §1.4.4). The log-likelihood does, once the partition function ``Z``
is known: exactly, by summing over the smaller layer of a small model, or by
Annealed Importance Sampling (Salakhutdinov & Murray, 2008) for any model.
"""

# SPDX-License-Identifier: BSD-3-Clause

import warnings
from typing import NamedTuple

import numpy as np
from scipy.special import logsumexp
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted

from . import _streams
from ._kernels import UNIT_CODES, _ais, _inference
from ._state import hidden_unit_code, softmax_groups_array
from ._visible import REPLICATED_SOFTMAX, ReplicatedSoftmaxVisible, visible_units
from .utils._threads import kernel_threads

__all__ = ["AISEstimate", "default_betas", "log_likelihood", "log_partition_ais",
           "log_partition_exact", "log_partition_reverse_ais"]

# Largest layer log_partition_exact enumerates (2**25 configurations).
MAX_ENUMERATED_UNITS = 25
_ENUMERATION_CHUNK = 2**14


class AISEstimate(NamedTuple):
    """Result of :func:`log_partition_ais`.

    Attributes
    ----------
    log_z : float
        Estimate of ``log Z`` (log of the mean importance weight).
    lower, upper : float
        ``log(mean(w) -/+ 3 std(mean(w)))``: the ±3 standard-error interval
        of the estimate of ``Z``, on the log scale (``lower`` is ``-inf``
        when the interval reaches zero).
    log_weights : ndarray of shape (n_runs,)
        ``log Z_base`` plus the log importance weight of each run.

    See Also
    --------
    log_partition_ais : The function that returns it.
    log_likelihood : Takes ``log_z`` for models too large to enumerate.

    Examples
    --------
    >>> import numpy as np
    >>> from skdbn import BernoulliRBM
    >>> from skdbn.metrics import log_partition_ais
    >>> X = (np.random.RandomState(0).uniform(size=(100, 6)) < 0.5).astype(float)
    >>> rbm = BernoulliRBM(n_components=4, n_iter=2, random_state=0).fit(X)
    >>> est = log_partition_ais(rbm, n_runs=20, betas=np.linspace(0, 1, 101),
    ...                         X=X, random_state=0)
    >>> bool(est.lower <= est.log_z <= est.upper), est.log_weights.shape
    (True, (20,))
    """

    log_z: float
    lower: float
    upper: float
    log_weights: np.ndarray


def default_betas():
    """The customary schedule of 14 501 inverse temperatures.

    500 steps of 1e-3 up to 0.5, 4 000 of 1e-4 up to 0.9 and 10 000 of 1e-5
    up to 1 (Salakhutdinov & Murray, 2008).

    Returns
    -------
    betas : ndarray of shape (14501,)
        Increasing from 0 to 1.

    See Also
    --------
    log_partition_ais : Uses this schedule unless given ``betas``.

    Examples
    --------
    >>> from skdbn.metrics import default_betas
    >>> betas = default_betas()
    >>> betas.shape, float(betas[0]), float(betas[-1])
    ((14501,), 0.0, 1.0)
    """
    return np.concatenate([
        np.linspace(0, 0.5, 501)[:-1],
        np.linspace(0.5, 0.9, 4001)[:-1],
        np.linspace(0.9, 1.0, 10001),
    ])


def _parameters(rbm):
    check_is_fitted(rbm)
    _check_hidden_units(rbm)
    W = np.asarray(rbm.components_, dtype=np.float64)
    b = np.asarray(rbm.intercept_visible_, dtype=np.float64)
    c = np.asarray(rbm.intercept_hidden_, dtype=np.float64)
    if getattr(rbm, "_visible_type", None) is ReplicatedSoftmaxVisible:
        return W, b, c, REPLICATED_SOFTMAX
    visible = visible_units(np.asarray(rbm.state_.sigma, dtype=np.float64))
    return W, b, c, visible


def _check_hidden_units(rbm):
    if softmax_groups_array(rbm) is not None:
        raise ValueError("skdbn.metrics does not handle softmax visible groups "
                         "(softmax_groups); use a model without them.")
    units = getattr(rbm, "hidden_units", "bernoulli")
    if units not in ("bernoulli", "gaussian"):
        raise ValueError(
            f"skdbn.metrics needs hidden units with an exact free energy; this model "
            f"has hidden_units={units!r}, whose free energy is an approximation. Use "
            "hidden_units='bernoulli' or 'gaussian' to measure the log-likelihood."
        )


def _hidden_term(rbm, x):
    """The hidden units' free-energy term (skdbn/_kernels/_units.pxd) at x."""
    return _inference.hidden_free_term(hidden_unit_code(rbm), float(x))


def _log_partition_gaussian_gaussian(W, b, c, sigma):
    """log Z of Gaussian visibles with Gaussian hidden units: a Gaussian
    integral over u = v / sigma of exp(-|u - b/sigma|^2 / 2 + |W u + c|^2 / 2)
    (times the hidden units' sqrt(2 pi)), finite when I - W^T W is positive
    definite."""
    n_hidden, n_visible = W.shape
    A = np.eye(n_visible) - W.T @ W
    eig = np.linalg.eigvalsh(A)
    if eig.min() <= 0:
        raise ValueError(
            "This RBM with Gaussian visible and hidden units has no finite partition "
            "function: its weights have a singular value of at least 1 (the joint "
            "density is not normalisable). Use a smaller learning_rate or more "
            "weight_decay."
        )
    mu = b / sigma
    beta = mu + W.T @ c
    return float(np.sum(np.log(sigma)) + 0.5 * (n_hidden + n_visible) * np.log(2 * np.pi)
                 - 0.5 * np.sum(np.log(eig)) + 0.5 * beta @ np.linalg.solve(A, beta)
                 - 0.5 * mu @ mu + 0.5 * c @ c)


def _binary_configurations(n):
    """All 2**n binary vectors, in chunks."""
    total = 2**n
    bits = np.arange(n)
    for start in range(0, total, _ENUMERATION_CHUNK):
        codes = np.arange(start, min(start + _ENUMERATION_CHUNK, total))
        yield ((codes[:, None] >> bits) & 1).astype(np.float64)


def log_partition_exact(rbm, n_jobs=None, length=None):
    """Exact ``log Z`` of a small RBM.

    Sums analytically over one layer and enumerates the other: the smaller
    one for Bernoulli visibles, the hidden one for Gaussian visibles (whose
    integral over ``v`` is Gaussian). Gaussian hidden units are integrated
    in closed form: the visibles are enumerated, or with Gaussian visibles
    too ``log Z`` is one Gaussian integral (finite only while ``I - W^T W``
    is positive definite). Practical up to 25 enumerated units. Models with
    NReLU hidden units or softmax visible groups are refused.

    Parameters
    ----------
    rbm : BernoulliRBM or GaussianBernoulliRBM
        A fitted model.
    n_jobs : int, default=None
        Threads of the enumeration (the result does not depend on them);
        None or -1 uses all the cores available.
    length : int, default=None
        For a :class:`~skdbn.ReplicatedSoftmaxRBM`, the document length
        ``D`` whose partition function ``Z_D`` is wanted (required); the
        hidden layer is enumerated and the words summed out analytically.

    Returns
    -------
    log_z : float
        The log partition function.

    Raises
    ------
    ValueError
        If the enumerated layer has more than 25 units.

    See Also
    --------
    log_partition_ais : Estimate for models of any size.

    Examples
    --------
    >>> import numpy as np
    >>> from skdbn import BernoulliRBM
    >>> from skdbn.metrics import log_partition_exact
    >>> rbm = BernoulliRBM(n_components=3, n_iter=0).fit(np.zeros((1, 2)))
    >>> rbm.components_[:] = 0
    >>> print(round(log_partition_exact(rbm) / np.log(2), 6))  # 2**5 equal states
    5.0
    """
    W, b, c, visible = _parameters(rbm)
    n_hidden, n_visible = W.shape
    bernoulli_hidden = hidden_unit_code(rbm) == UNIT_CODES["bernoulli"]
    if visible is REPLICATED_SOFTMAX:
        _check_length(length)
        return _replicated_softmax_exact(rbm, [length], n_jobs)[int(length)]
    if not bernoulli_hidden and not visible.enumerable:
        return _log_partition_gaussian_gaussian(W, b, c, visible.sigma)
    # Gaussian hidden units integrate in closed form: enumerate the visibles.
    enumerate_hidden = bernoulli_hidden and (not visible.enumerable or n_hidden <= n_visible)
    n = n_hidden if enumerate_hidden else n_visible
    if n > MAX_ENUMERATED_UNITS:
        layer = "hidden" if enumerate_hidden else "visible"
        raise ValueError(
            f"log_partition_exact enumerates the {layer} layer, which has {n} units: "
            f"2**{n} states is too many (at most {MAX_ENUMERATED_UNITS} units). "
            "Use log_partition_ais for this model."
        )
    terms = []
    with kernel_threads(n_jobs) as n_threads:
        for states in _binary_configurations(n):
            if enumerate_hidden:
                terms.append(states @ c + visible.sum_out(states, W, b, n_threads))
            else:
                out = np.empty(states.shape[0])
                _inference.hidden_free_energy(states, W, c, out, n_threads,
                                              hidden_unit_code(rbm))
                terms.append(states @ b + out)
    return float(logsumexp(np.concatenate(terms)) + visible.log_normaliser())


def _replicated_softmax_exact(rbm, lengths, n_jobs=None):
    """``{D: log Z_D}``: the hidden layer enumerated once; the sequences of D
    words sum out analytically, so ``log Z_D = logsumexp_h D s(h)`` with
    ``s(h) = c.h + logsumexp(b + h W)`` for every length at once."""
    W, b, c, _ = _parameters(rbm)
    if hidden_unit_code(rbm) != UNIT_CODES["bernoulli"]:
        raise ValueError("log_partition_exact of a Replicated Softmax enumerates its "
                         "hidden layer: it needs hidden_units='bernoulli'.")
    n_hidden = W.shape[0]
    if n_hidden > MAX_ENUMERATED_UNITS:
        raise ValueError(
            f"log_partition_exact enumerates the hidden layer, which has {n_hidden} units: "
            f"2**{n_hidden} states is too many (at most {MAX_ENUMERATED_UNITS} units). Use "
            "log_partition_ais with length=D.")
    with kernel_threads(n_jobs) as n_threads:
        s = np.concatenate([states @ c + REPLICATED_SOFTMAX.sum_out(states, W, b, n_threads, 1)
                            for states in _binary_configurations(n_hidden)])
    return {int(d): float(logsumexp(int(d) * s)) for d in lengths}


def log_partition_ais(rbm, n_runs=100, betas=None, X=None, random_state=None,
                      n_jobs=None, length=None):
    """Estimate ``log Z`` by Annealed Importance Sampling.

    The chains start from a base-rate model with no weights and move
    through the geometric path of inverse temperatures ``betas`` with one
    Gibbs sweep each, on the same kernels as training. For Bernoulli
    visibles the base model's biases are the smoothed log-odds of the
    training data's feature means, which the fitted model keeps
    (``visible_means_``), or of the means of ``X`` when given; for Gaussian
    visibles it shares the RBM's own visible biases and ``sigma``. The
    estimate is unbiased for ``Z``; in expectation it underestimates
    ``log Z``, so the log-likelihood it gives is optimistic (an upper
    estimate): :func:`log_partition_reverse_ais` gives the matching lower
    one.

    Parameters
    ----------
    rbm : BernoulliRBM or GaussianBernoulliRBM
        A fitted model.
    n_runs : int, default=100
        Number of independent AIS chains, run together.
    betas : array-like of shape (K + 1,), default=None
        Inverse temperatures increasing from 0 to 1; the default is
        :func:`default_betas` (14 501 temperatures).
    X : array-like of shape (n_samples, n_features), default=None
        Data for the base-rate model of Bernoulli visibles, instead of the
        training data's means kept by the model. A base model close to the
        data makes the estimate much more accurate: a uniform one (a model
        fitted before skdbn kept the means) can be off by nats.
    random_state : int, RandomState instance or None, default=None
        Seed of the chains.
    n_jobs : int, default=None
        Threads; None or -1 uses all the cores available.
    length : int, default=None
        For a :class:`~skdbn.ReplicatedSoftmaxRBM`, the document length
        ``D`` of the partition function ``Z_D`` (required). Its base model
        draws the words from their smoothed training frequencies.

    Returns
    -------
    estimate : AISEstimate
        ``log_z`` with its ±3 standard-error interval ``lower``, ``upper``.

    Warns
    -----
    UserWarning
        When the ±3 standard-error interval of ``Z`` reaches zero
        (``lower`` is ``-inf``): the estimate is then unreliable.

    See Also
    --------
    log_partition_reverse_ais : The conservative estimate, from the data.
    log_partition_exact : Exact value for small models.
    log_likelihood : Mean log-probability of data.

    Examples
    --------
    >>> import numpy as np
    >>> from skdbn import BernoulliRBM
    >>> from skdbn.metrics import log_partition_ais, log_partition_exact
    >>> X = (np.random.RandomState(0).uniform(size=(200, 12)) < 0.3).astype(float)
    >>> rbm = BernoulliRBM(n_components=8, n_iter=5, random_state=0).fit(X)
    >>> est = log_partition_ais(rbm, random_state=0)
    >>> bool(abs(est.log_z - log_partition_exact(rbm)) < 0.1)
    True
    """
    W, b, c, visible = _parameters(rbm)
    if visible is REPLICATED_SOFTMAX:
        _check_length(length)
        estimate = _replicated_softmax_ais(rbm, [length], n_runs, betas, X, random_state,
                                           n_jobs)[length]
    else:
        betas = _check_betas(betas, n_runs)
        b_base, log_z_hidden, log_z_visible = _base_model(rbm, W, b, visible, X)
        log_w = _run_chains(rbm, b_base, betas, int(n_runs), random_state, n_jobs)
        estimate = _summarise(log_w + log_z_hidden + log_z_visible)
    if estimate.lower == -np.inf:
        warnings.warn(
            f"The AIS estimate of log Z is unreliable: its log-weights have a standard "
            f"deviation of {np.std(estimate.log_weights):.2f} nats and the ±3 "
            f"standard-error interval of Z reaches zero (lower = -inf). Use more "
            "n_runs or more temperatures (betas), and a base model close to the "
            "data (X).",
            UserWarning,
            stacklevel=2,
        )
    return estimate


def log_partition_reverse_ais(rbm, X, n_runs=100, betas=None, random_state=None,
                              n_jobs=None):
    """Conservative estimate of ``log Z`` by reverse AIS, from data.

    Reverse annealing (RAISE; Burda, Grosse & Salakhutdinov, 2015): each
    chain starts at a row of ``X``, drawn at random, and anneals from the
    RBM down to the base model of :func:`log_partition_ais` along the same
    temperatures in reverse. ``-F(v) - log_z_r`` of run ``r`` started at
    ``v`` is then a stochastic lower bound of ``log p(v)`` (under the model
    defined by the annealing, which approaches the RBM as the temperatures
    get denser). ``log_z`` is the mean of the runs' values, so
    ``log_likelihood(rbm, X, log_z)`` is a lower estimate of the mean
    log-likelihood of ``X`` where :func:`log_partition_ais` gives an upper
    one; their gap shows how far either can be trusted.

    Parameters
    ----------
    rbm : BernoulliRBM
        A fitted model with Bernoulli visibles.
    X : array-like of shape (n_samples, n_features)
        The data whose log-likelihood is estimated, e.g. the test set; the
        chains start from ``n_runs`` of its rows (without replacement when
        there are enough).
    n_runs : int, default=100
        Number of reverse chains, run together.
    betas : array-like of shape (K + 1,), default=None
        Inverse temperatures increasing from 0 to 1 (run from 1 down to 0);
        the default is :func:`default_betas`.
    random_state : int, RandomState instance or None, default=None
        Seed of the choice of rows and of the chains.
    n_jobs : int, default=None
        Threads; None or -1 uses all the cores available.

    Returns
    -------
    estimate : AISEstimate
        ``log_z``, the mean of the runs' ``log_weights``, with the ±3
        standard-error interval of that mean.

    See Also
    --------
    log_partition_ais : The forward estimate (an upper log-likelihood).
    log_likelihood : Takes either estimate's ``log_z``.

    Examples
    --------
    >>> import numpy as np
    >>> from skdbn import BernoulliRBM
    >>> from skdbn.metrics import log_partition_exact, log_partition_reverse_ais
    >>> X = (np.random.RandomState(0).uniform(size=(200, 12)) < 0.3).astype(float)
    >>> rbm = BernoulliRBM(n_components=8, n_iter=5, random_state=0).fit(X)
    >>> est = log_partition_reverse_ais(rbm, X, random_state=0)
    >>> bool(abs(est.log_z - log_partition_exact(rbm)) < 0.1)
    True
    """
    W, b, c, visible = _parameters(rbm)
    if not visible.enumerable:
        raise ValueError("log_partition_reverse_ais needs Bernoulli visible units; "
                         "for a GaussianBernoulliRBM use log_partition_ais.")
    betas = _check_betas(betas, n_runs)
    n_runs = int(n_runs)
    X = _check_X(X, W.shape[1])
    rng = check_random_state(random_state)
    rows = rng.choice(X.shape[0], n_runs, replace=n_runs > X.shape[0])
    b_base, log_z_hidden, log_z_visible = _base_model(rbm, W, b, visible, None)
    log_z_base = log_z_hidden + log_z_visible
    # From the data, one Gibbs sweep at beta = 1 (the repeated 1 weighs
    # nothing), then down to the base model; the kernel's log-weights are
    # then minus the reverse chain's.
    reverse = np.concatenate([[1.0], betas[::-1]])
    v_init = np.ascontiguousarray(X[rows], dtype=rbm.components_.dtype)
    log_w = _run_chains(rbm, b_base, reverse, n_runs, rng, n_jobs, v_init=v_init)
    log_z = log_z_base - log_w
    mean = float(np.mean(log_z))
    half = 3 * float(np.std(log_z, ddof=1)) / np.sqrt(n_runs)
    return AISEstimate(mean, mean - half, mean + half, log_z)


def _check_betas(betas, n_runs):
    betas = default_betas() if betas is None else np.asarray(betas, dtype=np.float64)
    if (betas.ndim != 1 or betas.size < 2 or betas[0] != 0 or betas[-1] != 1
            or not np.all(np.diff(betas) > 0)):
        raise ValueError("betas must increase strictly from 0 to 1.")
    if int(n_runs) < 2:
        raise ValueError(f"n_runs must be at least 2, got {n_runs}.")
    return betas


def _check_X(X, n_visible):
    X = check_array(X, dtype=np.float64, input_name="X")
    if X.shape[1] != n_visible:
        raise ValueError(f"X must have shape (n_samples, {n_visible}).")
    return X


def _base_model(rbm, W, b, visible, X):
    """Visible biases and ``log Z`` of the AIS base model (no weights)."""
    n_hidden, n_visible = W.shape
    # At beta = 0 each hidden unit is free: its free-energy term at 0.
    log_z_hidden = n_hidden * _hidden_term(rbm, 0.0)
    if X is not None:
        X = _check_X(X, n_visible)
        n, sums = X.shape[0], X.sum(0)
    elif getattr(rbm, "n_samples_seen_", 0) > 0:
        n = rbm.n_samples_seen_
        sums = n * np.asarray(rbm.visible_means_, dtype=np.float64)
    else:
        n, sums = 0, np.zeros(n_visible)
    b_base, log_z_visible = visible.base_model(b, sums, n)
    return b_base, log_z_hidden, log_z_visible


def _check_length(length):
    if length is None or int(length) != length or length < 0:
        raise ValueError("The partition function of a Replicated Softmax depends on the "
                         f"document length: pass length=D (a nonnegative int), got {length!r}.")


def _replicated_softmax_ais(rbm, lengths, n_runs=100, betas=None, X=None, random_state=None,
                            n_jobs=None):
    """``{D: AISEstimate of log Z_D}`` for each of ``lengths``: ``n_runs``
    chains per length, all advancing together in one kernel call. The base
    model has no weights and draws words from their smoothed frequencies, so
    ``log Z_D`` of the base is the hidden units' term plus ``D`` times that
    of one word."""
    W, b, c, visible = _parameters(rbm)
    lengths = [int(d) for d in lengths]
    for d in lengths:
        _check_length(d)
    betas = _check_betas(betas, n_runs)
    n_runs = int(n_runs)
    b_base, log_z_hidden, log_z_word = _base_model(rbm, W, b, visible, X)
    D = np.repeat(np.asarray(lengths, dtype=rbm.components_.dtype), n_runs)
    log_w = _run_chains(rbm, b_base, betas, D.size, random_state, n_jobs, lengths=D)
    return {d: _summarise(log_w[i * n_runs:(i + 1) * n_runs] + log_z_hidden + d * log_z_word)
            for i, d in enumerate(lengths)}


def _run_chains(rbm, b_base, betas, n_runs, random_state, n_jobs, v_init=None,
                lengths=None):
    dtype = rbm.components_.dtype
    sig = np.asarray(rbm.state_.visible.sigma, dtype)
    seed = _streams.draw_seed(check_random_state(random_state))
    log_w = np.empty(n_runs)
    with kernel_threads(n_jobs) as n_threads:
        options = dict(seed=seed, n_threads=n_threads, hidden_unit=hidden_unit_code(rbm))
        _ais.ais_run(rbm.components_, rbm.intercept_visible_, rbm.intercept_hidden_, sig,
                     np.asarray(b_base, dtype), betas, log_w, options, v_init, lengths)
    return log_w


def _summarise(log_w):
    n = log_w.size
    log_mean = logsumexp(log_w) - np.log(n)
    # Standard error of the mean weight, relative to the mean, computed on
    # rescaled weights to stay finite.
    w = np.exp(log_w - log_mean)
    rel_se = np.std(w, ddof=1) / np.sqrt(n)
    upper = log_mean + np.log1p(3 * rel_se)
    lower = log_mean + np.log1p(-3 * rel_se) if 3 * rel_se < 1 else -np.inf
    return AISEstimate(float(log_mean), float(lower), float(upper), log_w)


def log_likelihood(rbm, X, log_z=None):
    """Mean log-probability of the rows of X under the RBM.

    ``mean(-F(x)) - log Z``, with the free energy ``F`` of the model.

    Parameters
    ----------
    rbm : BernoulliRBM or GaussianBernoulliRBM
        A fitted model.
    X : array-like of shape (n_samples, n_features)
        Data.
    log_z : float, default=None
        ``log Z``; by default the exact value, which needs a small model
        (see :func:`log_partition_exact`; use :func:`log_partition_ais` for
        larger ones and pass its ``log_z``).

    Returns
    -------
    log_likelihood : float
        Mean log-probability (log-density for Gaussian visibles), in nats.

    See Also
    --------
    log_partition_ais, log_partition_exact

    Examples
    --------
    >>> import numpy as np
    >>> from skdbn import BernoulliRBM
    >>> from skdbn.metrics import log_likelihood
    >>> X = np.array([[0, 1], [1, 0]], dtype=float)
    >>> rbm = BernoulliRBM(n_components=2, n_iter=0).fit(X)
    >>> rbm.components_[:] = 0
    >>> round(log_likelihood(rbm, X), 4)  # 4 equiprobable states: log(1/4)
    -1.3863
    """
    if log_z is None:
        log_z = log_partition_exact(rbm)
    return float(np.mean(-rbm.free_energy(X).astype(np.float64)) - log_z)
