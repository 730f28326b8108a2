"""The visible unit types (skdbn/_visible.py) against brute force."""

import itertools
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.integrate import quad
from scipy.special import logsumexp

from skdbn import BernoulliRBM, GaussianBernoulliRBM
from skdbn._csr import columns
from skdbn._visible import BERNOULLI, BernoulliVisible, GaussianVisible, visible_units

SIGMA = np.array([0.5, 1.0, 2.0])


def _model(rng, n_hidden=2, n_visible=3):
    return (rng.normal(0, 0.7, (n_hidden, n_visible)), rng.normal(0, 0.5, n_visible),
            rng.normal(0, 0.5, n_hidden))


def _energy(visible, v, h, W, b, c):
    """E(v, h) written out for each unit type."""
    u = visible.to_input(v)
    if isinstance(visible, GaussianVisible):
        return np.sum((v - b) ** 2 / (2 * visible.sigma**2)) - c @ h - h @ W @ u
    return -b @ v - c @ h - h @ W @ v


def _hidden_states(n):
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def test_the_type_follows_sigma():
    assert visible_units(np.zeros(0)) is BERNOULLI
    unit = visible_units(SIGMA)
    assert isinstance(unit, GaussianVisible) and unit.sigma is SIGMA
    assert BERNOULLI.binary and BERNOULLI.enumerable and BERNOULLI.bounded_biases
    assert not (unit.binary or unit.enumerable or unit.bounded_biases)


@pytest.mark.parametrize("visible", [BERNOULLI, GaussianVisible(SIGMA)], ids=["bernoulli",
                                                                           "gaussian"])
def test_energy_is_the_free_energy_visible_term(visible):
    # F(v) = energy(v) - sum_j softplus(c_j + (W u)_j) for Bernoulli hidden
    # units: check it against -log sum_h exp(-E(v, h)).
    rng = np.random.default_rng(0)
    W, b, c = _model(rng)
    X = rng.uniform(0, 1, (5, 3)) if visible.enumerable else rng.normal(0, 2, (5, 3))
    H = _hidden_states(2)
    for v in X:
        brute = -logsumexp([-_energy(visible, v, h, W, b, c) for h in H])
        hidden = np.logaddexp(0, c + W @ visible.to_input(v)).sum()
        assert visible.energy(v[None], b)[0] - hidden == pytest.approx(brute, abs=1e-12)
    # Sparse rows give the dense energies.
    X[X < 0.5] = 0
    np.testing.assert_allclose(visible.energy(sp.csr_matrix(X), b), visible.energy(X, b),
                               rtol=1e-12, atol=1e-12)


def test_bernoulli_sum_out_enumerates_the_visibles():
    rng = np.random.default_rng(1)
    W, b, c = _model(rng)
    H = _hidden_states(2)
    V = _hidden_states(3)
    got = BERNOULLI.sum_out(H, W, b, n_threads=1) + BERNOULLI.log_normaliser()
    for h, value in zip(H, got):
        brute = logsumexp([-_energy(BERNOULLI, v, h, W, b, c) - c @ h for v in V])
        assert value == pytest.approx(brute, abs=1e-12)


def test_gaussian_sum_out_integrates_the_visibles():
    rng = np.random.default_rng(2)
    W, b, c = _model(rng)
    unit = GaussianVisible(SIGMA)
    H = _hidden_states(2)
    got = unit.sum_out(H, W, b, n_threads=1) + unit.log_normaliser()
    for h, value in zip(H, got):
        # The units are independent given h: one integral per unit.
        a = h @ W
        logs = [np.log(quad(lambda x, i=i: np.exp(-(x - b[i]) ** 2 / (2 * SIGMA[i] ** 2)
                                                  + x / SIGMA[i] * a[i]), -60, 60)[0])
                for i in range(3)]
        assert value == pytest.approx(sum(logs), abs=1e-8)


@pytest.mark.parametrize("visible", [BERNOULLI, GaussianVisible(SIGMA)], ids=["bernoulli",
                                                                           "gaussian"])
def test_base_model_log_partition(visible):
    # With no weights the visible units are independent: log Z of the base
    # model's visible part against enumeration / integration.
    b = np.array([0.3, -1.0, 2.0])
    sums, n = np.array([3.0, 0.0, 10.0]), 10
    b_base, log_z = visible.base_model(b, sums, n)
    if visible.enumerable:
        np.testing.assert_allclose(1 / (1 + np.exp(-b_base)), (sums + 1) / (n + 2))
        brute = logsumexp([b_base @ v for v in _hidden_states(3)])
    else:
        np.testing.assert_array_equal(b_base, b)
        brute = sum(np.log(quad(lambda x, i=i: np.exp(-(x - b[i]) ** 2 / (2 * SIGMA[i] ** 2)),
                                -60, 60)[0]) for i in range(3))
    assert log_z == pytest.approx(brute, abs=1e-8)


def test_input_space_round_trips_and_sparse_values():
    unit = GaussianVisible(SIGMA)
    X = np.array([[0.0, 2.0, 0.0], [1.5, 0.0, 4.0]])
    np.testing.assert_allclose(unit.from_input(unit.to_input(X)), X)
    np.testing.assert_allclose(unit.to_input(X), X / SIGMA)
    col, start, row, val = columns(sp.csr_matrix(X), np.float64, unit)
    dense = np.zeros_like(X)
    for k, c0, c1 in zip(col, start[:-1], start[1:]):
        dense[row[c0:c1], k] = val[c0:c1]
    np.testing.assert_allclose(dense, unit.to_input(X))
    W = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(unit.input_weights(W) @ X[0], W @ unit.to_input(X[0]))
    np.testing.assert_allclose(unit.output_weights(W.T), W.T * SIGMA[:, None])
    assert BERNOULLI.to_input(X) is X


def test_generative_step_is_the_log_likelihood_gradient():
    # d/d(a, b) of log N(v; b + sigma a, sigma^2) and of the Bernoulli
    # log-probability, against central differences.
    rng = np.random.default_rng(3)
    v, a, b = rng.uniform(0, 1, 3), rng.normal(size=3), rng.normal(size=3)

    def log_p(visible, a, b):
        if isinstance(visible, GaussianVisible):
            mean = b + SIGMA * a
            return np.sum(-(v - mean) ** 2 / (2 * SIGMA**2))
        p = 1 / (1 + np.exp(-(a + b)))
        return np.sum(v * np.log(p) + (1 - v) * np.log1p(-p))

    for visible in (BERNOULLI, GaussianVisible(SIGMA)):
        if isinstance(visible, GaussianVisible):
            mean = b + SIGMA * a
        else:
            mean = 1 / (1 + np.exp(-(a + b)))
        d_a, d_b = visible.generative_step((v - mean)[None])
        eps = 1e-6
        for i in range(3):
            e = np.eye(3)[i] * eps
            assert d_a[0, i] == pytest.approx(
                (log_p(visible, a + e, b) - log_p(visible, a - e, b)) / (2 * eps), rel=1e-5)
            assert d_b[i] == pytest.approx(
                (log_p(visible, a, b + e) - log_p(visible, a, b - e)) / (2 * eps), rel=1e-5)


def test_support_is_checked_by_type():
    X = np.array([[0.0, 3.0]])
    with pytest.warns(UserWarning, match="MinMaxScaler"):
        BernoulliVisible.check_support(X, "BernoulliRBM")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GaussianVisible.check_support(X, "GaussianBernoulliRBM")
        BernoulliVisible.check_support(sp.csr_matrix((1, 2)), "BernoulliRBM")


def test_estimators_carry_their_type():
    X = np.random.default_rng(4).uniform(0, 1, (20, 3))
    assert BernoulliRBM(2, n_iter=1, random_state=0).fit(X).state_.visible is BERNOULLI
    g = GaussianBernoulliRBM(2, n_iter=1, sigma=SIGMA, random_state=0).fit(X)
    assert isinstance(g.state_.visible, GaussianVisible)
    np.testing.assert_array_equal(g.state_.visible.sigma, SIGMA)
