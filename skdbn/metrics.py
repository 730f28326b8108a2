"""Log-likelihood of RBMs: exact partition functions and AIS estimates.

Reconstruction error says little about how well an RBM models its data
(report §1.4.4). The log-likelihood does, once the partition function ``Z``
is known: exactly, by summing over the smaller layer of a small model, or by
Annealed Importance Sampling (Salakhutdinov & Murray, 2008) for any model.
"""

# SPDX-License-Identifier: BSD-3-Clause

from typing import NamedTuple

import numpy as np
from scipy.special import logsumexp
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted

from ._kernels import _cd
from ._rbm import GaussianBernoulliRBM
from .utils._compat import _openmp_effective_n_threads
from .utils._threads import single_threaded_blas

__all__ = ["AISEstimate", "default_betas", "log_likelihood", "log_partition_ais",
           "log_partition_exact"]

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
    W = np.asarray(rbm.components_, dtype=np.float64)
    b = np.asarray(rbm.intercept_visible_, dtype=np.float64)
    c = np.asarray(rbm.intercept_hidden_, dtype=np.float64)
    sigma = np.asarray(rbm.sigma_, dtype=np.float64) if isinstance(rbm, GaussianBernoulliRBM) else None
    return W, b, c, sigma


def _binary_configurations(n):
    """All 2**n binary vectors, in chunks."""
    total = 2**n
    bits = np.arange(n)
    for start in range(0, total, _ENUMERATION_CHUNK):
        codes = np.arange(start, min(start + _ENUMERATION_CHUNK, total))
        yield ((codes[:, None] >> bits) & 1).astype(np.float64)


def log_partition_exact(rbm, n_jobs=None):
    """Exact ``log Z`` of a small RBM.

    Sums analytically over one layer and enumerates the other: the smaller
    one for Bernoulli visibles, the hidden one for Gaussian visibles (whose
    integral over ``v`` is Gaussian). Practical up to 25 enumerated units.

    Parameters
    ----------
    rbm : BernoulliRBM or GaussianBernoulliRBM
        A fitted model.
    n_jobs : int, default=None
        Threads of the enumeration (the result does not depend on them);
        None or -1 uses all the cores available.

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
    W, b, c, sigma = _parameters(rbm)
    n_hidden, n_visible = W.shape
    enumerate_hidden = sigma is not None or n_hidden <= n_visible
    n = n_hidden if enumerate_hidden else n_visible
    if n > MAX_ENUMERATED_UNITS:
        layer = "hidden" if enumerate_hidden else "visible"
        raise ValueError(
            f"log_partition_exact enumerates the {layer} layer, which has {n} units: "
            f"2**{n} states is too many (at most {MAX_ENUMERATED_UNITS} units). "
            "Use log_partition_ais for this model."
        )
    terms = []
    n_threads = _openmp_effective_n_threads(n_jobs, only_physical_cores=False)
    with single_threaded_blas():
        for states in _binary_configurations(n):
            out = np.empty(states.shape[0])
            if sigma is not None:
                a = states @ W
                terms.append(states @ c + (a * (b / sigma) + 0.5 * a**2).sum(1))
            elif enumerate_hidden:
                _cd.softplus_sum(states, np.ascontiguousarray(W.T), b, out, n_threads)
                terms.append(states @ c + out)
            else:
                _cd.softplus_sum(states, W, c, out, n_threads)
                terms.append(states @ b + out)
    log_z = logsumexp(np.concatenate(terms))
    if sigma is not None:
        log_z += np.sum(np.log(sigma * np.sqrt(2 * np.pi)))
    return float(log_z)


def log_partition_ais(rbm, n_runs=100, betas=None, X=None, random_state=None,
                      n_jobs=None):
    """Estimate ``log Z`` by Annealed Importance Sampling.

    The chains start from a base-rate model with no weights (for Bernoulli
    visibles, visible biases fitted to ``X`` when given, else zero; for
    Gaussian visibles, the RBM's own visible biases and ``sigma``) and move
    through the geometric path of inverse temperatures ``betas`` with one
    Gibbs sweep each, on the same kernels as training. The estimate is
    unbiased for ``Z`` and, in expectation, an underestimate of ``log Z``.

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
        Data for the base-rate model of Bernoulli visibles: its biases are
        the smoothed log-odds of each feature's mean. A base model close to
        the data makes the estimate much more accurate.
    random_state : int, RandomState instance or None, default=None
        Seed of the chains.
    n_jobs : int, default=None
        Threads; None or -1 uses all the cores available.

    Returns
    -------
    estimate : AISEstimate
        ``log_z`` with its ±3 standard-error interval ``lower``, ``upper``.

    See Also
    --------
    log_partition_exact : Exact value for small models.
    log_likelihood : Mean log-probability of data.

    Examples
    --------
    >>> import numpy as np
    >>> from skdbn import BernoulliRBM
    >>> from skdbn.metrics import log_partition_ais, log_partition_exact
    >>> X = (np.random.RandomState(0).uniform(size=(200, 12)) < 0.3).astype(float)
    >>> rbm = BernoulliRBM(n_components=8, n_iter=5, random_state=0).fit(X)
    >>> est = log_partition_ais(rbm, X=X, random_state=0)
    >>> bool(abs(est.log_z - log_partition_exact(rbm)) < 0.1)
    True
    """
    W, b, c, sigma = _parameters(rbm)
    dtype = rbm.components_.dtype
    betas = default_betas() if betas is None else np.asarray(betas, dtype=np.float64)
    if (betas.ndim != 1 or betas.size < 2 or betas[0] != 0 or betas[-1] != 1
            or not np.all(np.diff(betas) > 0)):
        raise ValueError("betas must increase strictly from 0 to 1.")
    if int(n_runs) < 2:
        raise ValueError(f"n_runs must be at least 2, got {n_runs}.")
    n_hidden, n_visible = W.shape
    if sigma is None:
        if X is None:
            b_base = np.zeros(n_visible)
        else:
            X = check_array(X, dtype=np.float64, input_name="X")
            if X.shape[1] != n_visible:
                raise ValueError(f"X must have shape (n_samples, {n_visible}).")
            p = (X.sum(0) + 1) / (X.shape[0] + 2)
            b_base = np.log(p) - np.log1p(-p)
        log_z_base = n_hidden * np.log(2) + np.logaddexp(0, b_base).sum()
        sig = np.zeros(0, dtype)
    else:
        b_base = b
        log_z_base = n_hidden * np.log(2) + np.sum(np.log(sigma * np.sqrt(2 * np.pi)))
        sig = rbm.sigma_
    seed = int(check_random_state(random_state).randint(np.iinfo(np.int64).max))
    n_threads = _openmp_effective_n_threads(n_jobs, only_physical_cores=False)
    log_w = np.empty(int(n_runs))
    with single_threaded_blas():
        _cd.ais_run(rbm.components_, rbm.intercept_visible_, rbm.intercept_hidden_,
                    b_base.astype(dtype), sig, betas, log_w, seed, n_threads)
    log_w += log_z_base
    return _summarise(log_w)


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
