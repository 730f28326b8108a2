"""Exact and AIS log partition functions, and log-likelihoods."""

import itertools

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.integrate import quad
from scipy.special import logsumexp
from sklearn.datasets import load_digits

from skdbn import BernoulliRBM, GaussianBernoulliRBM
from skdbn.metrics import (
    default_betas,
    log_likelihood,
    log_partition_ais,
    log_partition_exact,
    log_partition_reverse_ais,
)


def random_rbm(Estimator, n_visible, n_hidden, scale, dtype=np.float64, seed=0):
    rng = np.random.RandomState(seed)
    # Fitted on one row of 0.5: the AIS base model stays uniform.
    rbm = Estimator(n_hidden, n_iter=0, dtype=dtype).fit(np.full((1, n_visible), 0.5))
    rbm.components_[:] = rng.normal(0, scale, (n_hidden, n_visible))
    rbm.intercept_visible_[:] = rng.normal(0, 0.5, n_visible)
    rbm.intercept_hidden_[:] = rng.normal(0, 0.5, n_hidden)
    return rbm


def brute_force_log_z(rbm):
    """Sum over every joint binary state (tiny Bernoulli models only)."""
    W, b, c = rbm.components_, rbm.intercept_visible_, rbm.intercept_hidden_
    V = np.array(list(itertools.product([0, 1], repeat=W.shape[1])), dtype=float)
    Hs = np.array(list(itertools.product([0, 1], repeat=W.shape[0])), dtype=float)
    energies = V @ W.T @ Hs.T + (V @ b)[:, None] + (Hs @ c)[None, :]
    return logsumexp(energies)


@pytest.fixture(scope="module")
def digits():
    X = load_digits().data / 16
    return (X > 0.5).astype(np.float64)


# ---------------------------------------------------------------------------
# Exact
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("n_jobs", [None, 1, 2])
@pytest.mark.parametrize("shape", [(5, 7), (8, 3)])  # enumerate hidden / visible
def test_exact_log_z_matches_brute_force(shape, n_jobs):
    rbm = random_rbm(BernoulliRBM, *shape, scale=1.0)
    assert log_partition_exact(rbm, n_jobs=n_jobs) == pytest.approx(
        brute_force_log_z(rbm), rel=1e-12)


def test_exact_log_z_rejects_zero_n_jobs():
    rbm = random_rbm(BernoulliRBM, 4, 3, scale=1.0)
    with pytest.raises(ValueError, match="n_jobs == 0 is invalid"):
        log_partition_exact(rbm, n_jobs=0)


def test_exact_log_z_gaussian_matches_numerical_integration():
    rbm = random_rbm(GaussianBernoulliRBM, 1, 3, scale=0.8)
    rbm.state_.sigma[:] = 0.7
    W, b, c, s = rbm.components_, rbm.intercept_visible_, rbm.intercept_hidden_, 0.7
    Hs = np.array(list(itertools.product([0, 1], repeat=3)), dtype=float)

    def unnormalised(v):
        return np.sum(np.exp(-((v - b[0]) ** 2) / (2 * s**2) + (v / s) * (Hs @ W[:, 0]) + Hs @ c))

    z, _ = quad(unnormalised, -30, 30, limit=200)
    assert log_partition_exact(rbm) == pytest.approx(np.log(z), rel=1e-9)


def test_exact_refuses_large_models():
    rbm = random_rbm(BernoulliRBM, 30, 30, scale=0.1)
    with pytest.raises(ValueError, match="log_partition_ais"):
        log_partition_exact(rbm)


def test_log_likelihood_of_a_normalised_model_sums_to_one():
    rbm = random_rbm(BernoulliRBM, 6, 4, scale=1.0)
    V = np.array(list(itertools.product([0, 1], repeat=6)), dtype=float)
    log_p = np.array([log_likelihood(rbm, v[None]) for v in V])
    assert logsumexp(log_p) == pytest.approx(0, abs=1e-10)


# ---------------------------------------------------------------------------
# AIS against exact
# ---------------------------------------------------------------------------


def test_default_schedule():
    betas = default_betas()
    assert betas.size == 14501 and betas[0] == 0 and betas[-1] == 1
    assert np.all(np.diff(betas) > 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "Estimator, n_visible, n_hidden, scale",
    [
        (BernoulliRBM, 20, 10, 0.3),
        (BernoulliRBM, 784, 8, 0.05),
        (GaussianBernoulliRBM, 30, 12, 0.15),
        (GaussianBernoulliRBM, 200, 6, 0.05),
    ],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_ais_matches_exact_on_random_models(Estimator, n_visible, n_hidden, scale,
                                            dtype, seed):
    rbm = random_rbm(Estimator, n_visible, n_hidden, scale, dtype, seed)
    exact = log_partition_exact(rbm)
    est = log_partition_ais(rbm, n_runs=100, betas=np.linspace(0, 1, 2001),
                            random_state=seed)
    assert abs(est.log_z - exact) < 0.1
    assert est.lower <= exact <= est.upper


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ais_matches_exact_on_trained_models(digits, dtype):
    X = digits.astype(dtype)
    for n_hidden, persistent in [(10, False), (20, True)]:
        rbm = BernoulliRBM(n_hidden, learning_rate=0.05, n_iter=5, persistent=persistent,
                           random_state=0).fit(X)
        exact = log_partition_exact(rbm)
        est = log_partition_ais(rbm, n_runs=100, X=X, random_state=0)
        assert abs(est.log_z - exact) < 0.1, (n_hidden, est, exact)
        assert est.lower <= exact <= est.upper


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ais_trained_gaussian_model(dtype):
    rng = np.random.RandomState(0)
    X = (rng.normal(0, 1, (500, 16)) @ rng.normal(0, 0.5, (16, 16))).astype(dtype)
    rbm = GaussianBernoulliRBM(12, learning_rate=0.005, n_iter=10, random_state=0).fit(X)
    exact = log_partition_exact(rbm)
    est = log_partition_ais(rbm, random_state=0)
    assert abs(est.log_z - exact) < 0.1
    assert est.lower <= exact <= est.upper


def test_ais_is_reproducible_and_validates_input():
    rbm = random_rbm(BernoulliRBM, 10, 5, scale=0.5)
    betas = np.linspace(0, 1, 101)
    a = log_partition_ais(rbm, n_runs=10, betas=betas, random_state=3)
    b = log_partition_ais(rbm, n_runs=10, betas=betas, random_state=3, n_jobs=1)
    assert_allclose(a.log_weights, b.log_weights, rtol=1e-12)
    with pytest.raises(ValueError, match="betas"):
        log_partition_ais(rbm, betas=[0, 0.5, 0.4, 1])
    with pytest.raises(ValueError, match="n_runs"):
        log_partition_ais(rbm, n_runs=1)
    with pytest.raises(ValueError, match="shape"):
        log_partition_ais(rbm, X=np.zeros((3, 4)))


# ---------------------------------------------------------------------------
# The base model, the unbounded-interval warning and reverse AIS
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(digits):
    """A model on binarised digits whose log Z is exact (20 hidden units)."""
    rbm = BernoulliRBM(20, learning_rate=0.05, n_iter=10, random_state=0).fit(digits)
    return rbm, log_partition_exact(rbm)


def test_default_base_model_is_the_training_data(digits, trained):
    rbm, _ = trained
    default = log_partition_ais(rbm, n_runs=20, betas=np.linspace(0, 1, 201), random_state=0)
    given = log_partition_ais(rbm, n_runs=20, betas=np.linspace(0, 1, 201), X=digits,
                              random_state=0)
    assert_allclose(default.log_weights, given.log_weights, rtol=1e-12)
    # partial_fit over chunks keeps the means of all the data seen.
    chunked = BernoulliRBM(20, n_iter=0, random_state=0)
    for chunk in np.array_split(digits, 3):
        chunked.partial_fit(chunk)
    assert chunked.n_samples_seen_ == digits.shape[0]
    assert_allclose(chunked.visible_means_, digits.mean(0), atol=1e-12)


def test_default_base_model_beats_the_uniform_one(digits, trained):
    rbm, exact = trained
    betas = np.linspace(0, 1, 501)
    uniform = log_partition_ais(rbm, betas=betas, X=np.full((1, 64), 0.5), random_state=0)
    default = log_partition_ais(rbm, betas=betas, random_state=0)
    assert np.std(default.log_weights) < 0.5 * np.std(uniform.log_weights)
    assert abs(default.log_z - exact) < abs(uniform.log_z - exact)
    assert default.lower <= exact <= default.upper


def test_unbounded_interval_warns(trained):
    rbm, _ = trained
    with pytest.warns(UserWarning, match="n_runs or more temperatures") as record:
        est = log_partition_ais(rbm, n_runs=5, betas=[0, 0.5, 1], X=np.full((1, 64), 0.5),
                                random_state=0)
    assert est.lower == -np.inf
    assert "standard deviation" in str(record[0].message)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reverse_ais_matches_exact_and_brackets_with_forward(digits, dtype):
    X = digits.astype(dtype)
    for n_hidden, persistent in [(10, False), (20, True)]:
        rbm = BernoulliRBM(n_hidden, learning_rate=0.05, n_iter=5, persistent=persistent,
                           random_state=0).fit(X)
        exact = log_partition_exact(rbm)
        forward = log_partition_ais(rbm, random_state=0)
        reverse = log_partition_reverse_ais(rbm, X, random_state=0)
        assert abs(reverse.log_z - exact) < 0.1, (n_hidden, reverse, exact)
        assert reverse.lower <= exact <= reverse.upper
        # The two estimates of the log-likelihood bracket the exact one.
        ll = log_likelihood(rbm, X)
        assert (log_likelihood(rbm, X, reverse.log_z) - 0.02 <= ll
                <= log_likelihood(rbm, X, forward.log_z) + 0.02)


def test_reverse_ais_with_few_temperatures_is_conservative(trained, digits):
    # Short annealing: forward AIS underestimates log Z, reverse AIS
    # overestimates it, as their theory says.
    rbm, exact = trained
    betas = np.linspace(0, 1, 21)
    forward = log_partition_ais(rbm, betas=betas, random_state=0)
    reverse = log_partition_reverse_ais(rbm, digits, betas=betas, random_state=0)
    assert forward.log_z < exact < reverse.log_z


def test_reverse_ais_is_reproducible_and_validates_input(digits, trained):
    rbm, _ = trained
    betas = np.linspace(0, 1, 101)
    a = log_partition_reverse_ais(rbm, digits, n_runs=10, betas=betas, random_state=3)
    b = log_partition_reverse_ais(rbm, digits, n_runs=10, betas=betas, random_state=3,
                                  n_jobs=1)
    assert_allclose(a.log_weights, b.log_weights, rtol=1e-12)
    assert a.lower < a.log_z < a.upper
    with pytest.raises(ValueError, match="shape"):
        log_partition_reverse_ais(rbm, np.zeros((3, 4)))
    with pytest.raises(ValueError, match="betas"):
        log_partition_reverse_ais(rbm, digits, betas=[0, 0.5, 0.4, 1])
    gaussian = random_rbm(GaussianBernoulliRBM, 4, 3, scale=0.5)
    with pytest.raises(ValueError, match="Bernoulli"):
        log_partition_reverse_ais(gaussian, np.zeros((3, 4)))


def test_log_likelihood_improves_with_training(digits):
    rbm = BernoulliRBM(16, learning_rate=0.05, n_iter=0, persistent=False,
                       random_state=0).fit(digits)
    before = log_likelihood(rbm, digits)
    rbm.set_params(n_iter=10).fit(digits)
    after = log_likelihood(rbm, digits)
    assert before < -40 and after > before + 10
