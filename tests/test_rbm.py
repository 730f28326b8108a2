"""Behaviour of BernoulliRBM and GaussianBernoulliRBM as estimators."""

import itertools
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import logsumexp
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import BernoulliRBM as SkBernoulliRBM
from sklearn.pipeline import make_pipeline

from skdbn import BernoulliRBM, GaussianBernoulliRBM


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32), y


def bars_and_stripes(n=4):
    """The 30 distinct n x n bars-and-stripes images."""
    images = []
    for bits in itertools.product([0, 1], repeat=n):
        img = np.repeat(np.array(bits)[:, None], n, axis=1)
        images += [img.ravel(), img.T.ravel()]
    return np.unique(np.array(images, dtype=np.float64), axis=0)


def exact_log_likelihood(rbm, X):
    """Mean log p(x) by enumerating the hidden layer (report eq. 1.3)."""
    W = rbm.components_.astype(np.float64)
    b = rbm.intercept_visible_.astype(np.float64)
    c = rbm.intercept_hidden_.astype(np.float64)
    Hs = np.array(list(itertools.product([0, 1], repeat=W.shape[0])), dtype=np.float64)
    log_z = logsumexp(Hs @ c + np.logaddexp(0, Hs @ W + b).sum(1))
    return np.mean(X @ b + np.logaddexp(0, X @ W.T + c).sum(1)) - log_z


# ---------------------------------------------------------------------------
# Learning
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, level",
    [(dict(persistent=False, cd_k=10), -5.0), (dict(persistent=False, cd_k=1), -5.5)],
)
def test_exact_log_likelihood_rises_on_bars_and_stripes(params, level):
    # 30 equiprobable patterns: the best possible mean log-likelihood is
    # -log(30) = -3.40; an untrained RBM gives about -16 log 2 = -11.1.
    X = bars_and_stripes()
    data = np.tile(X, (20, 1))
    rbm = BernoulliRBM(12, learning_rate=0.05, batch_size=10, n_iter=0, momentum=0.5,
                       random_state=0, **params).fit(data)
    curve = [exact_log_likelihood(rbm, X)]
    for _ in range(60):
        curve.append(exact_log_likelihood(rbm.partial_fit(data), X))
    assert curve[0] < -10.5
    assert curve[-1] > level
    assert max(curve[-10:]) <= -np.log(len(X)) + 1e-9
    # Rises overall, not just at the end.
    assert curve[20] > curve[0] + 1 and curve[-1] > curve[20]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_centred_step_is_the_plain_step_reparametrised(digits, dtype):
    # One minibatch, same seed, same start: the kernel draws the same samples
    # for both models, so the centred step must be the plain step's
    # statistics with the offsets removed (Melchior et al. 2016, Alg. 1).
    X = (digits[0][:200] > 0.5).astype(dtype)
    centred = BernoulliRBM(12, n_iter=0, batch_size=200, learning_rate=0.1, centering=True,
                           random_state=0).fit(X)
    plain = BernoulliRBM(12, n_iter=0, batch_size=200, learning_rate=0.1,
                         random_state=0).fit(X)
    W0, b0, c0 = (centred.components_.copy(), centred.intercept_visible_.copy(),
                  centred.intercept_hidden_.copy())
    plain.intercept_visible_[:] = b0
    mu, lam = X.mean(0).astype(np.float64), np.full(12, 0.5)
    assert_allclose(centred.visible_means_, mu, rtol=1e-6)
    assert_allclose(b0, np.log(np.clip(mu, 1e-3, 1 - 1e-3) / (1 - np.clip(mu, 1e-3, 1 - 1e-3))),
                    rtol=1e-5)
    centred.partial_fit(X)
    plain.partial_fit(X)
    dW, db, dc = (plain.components_ - W0, plain.intercept_visible_ - b0,
                  plain.intercept_hidden_ - c0)
    # Centred parameters: biases b + W^T lambda, c + W mu; weight gradient
    # <(h - lambda)(v - mu)^T>, i.e. the plain one minus dc mu^T + lambda db^T.
    W1 = W0 + dW - np.outer(dc, mu) - np.outer(lam, db)
    b1 = (b0 + W0.T @ lam + db) - W1.T @ lam
    c1 = (c0 + W0 @ mu + dc) - W1 @ mu
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    assert_allclose(centred.components_, W1, **tol)
    assert_allclose(centred.intercept_visible_, b1, **tol)
    assert_allclose(centred.intercept_hidden_, c1, **tol)
    # The hidden offsets move towards the data's hidden probabilities.
    p = 1 / (1 + np.exp(-(X @ W0.T + c0)))
    assert_allclose(centred.state_.hidden_offsets, lam + 0.01 * (p.mean(0) - lam), rtol=1e-5)


def test_centering_raises_the_log_likelihood(digits):
    X = (digits[0] > 0.5).astype(np.float64)
    scores = [exact_log_likelihood(
        BernoulliRBM(16, learning_rate=0.05, n_iter=20, batch_size=20, centering=centering,
                     random_state=0).fit(X), X) for centering in (False, True)]
    assert scores[1] > scores[0] + 0.3, scores


def test_learned_sigma_converges_to_data_scale():
    rng = np.random.RandomState(0)
    scale = np.r_[np.full(5, 0.3), np.full(5, 2.0)]
    X = rng.normal(0, 1, (2000, 10)) * scale + 1.0
    rbm = GaussianBernoulliRBM(4, sigma="learn", sigma_learning_rate=0.01,
                               learning_rate=0.001, n_iter=30, batch_size=20,
                               random_state=0).fit(X)
    # SGD noise of sigma with sigma_learning_rate=0.01 is about 5%.
    assert_allclose(rbm.sigma_, scale, rtol=0.15)
    assert_allclose(rbm.reconstruct(X).mean(0), 1.0, atol=0.2)


@pytest.mark.parametrize("sample_visible", [False, True])
def test_learned_sigma_with_sampled_or_mean_field_negatives(sample_visible):
    rng = np.random.RandomState(1)
    X = rng.normal(0, 0.5, (1000, 6))
    rbm = GaussianBernoulliRBM(3, sigma="learn", sigma_learning_rate=0.01,
                               learning_rate=0.001, n_iter=30, batch_size=20,
                               sample_visible=sample_visible, random_state=0).fit(X)
    assert_allclose(rbm.sigma_, 0.5, rtol=0.15)


def test_rbm_features_classify_digits(digits):
    X, y = digits
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, stratify=y,
                                              random_state=0)
    raw = LogisticRegression(max_iter=2000).fit(X_tr, y_tr).score(X_te, y_te)
    pipe = make_pipeline(
        BernoulliRBM(n_components=200, learning_rate=0.05, n_iter=15, batch_size=10,
                     random_state=0),
        LogisticRegression(C=100, max_iter=5000),
    )
    rbm_score = pipe.fit(X_tr, y_tr).score(X_te, y_te)
    # scikit-learn's RBM + logistic pipeline reaches about 0.94 on this split;
    # raw pixels give 0.967 with a tuned logistic regression.
    assert rbm_score >= 0.93 and raw > 0.95


def test_reconstruction_error_falls(digits):
    X, _ = digits
    rbm = BernoulliRBM(64, learning_rate=0.05, n_iter=8, persistent=False,
                       random_state=0).fit(X)
    errors = rbm.reconstruction_errors_
    assert len(errors) == 8 == rbm.n_iter_
    assert errors[-1] < 0.8 * errors[0]
    assert np.mean((rbm.reconstruct(X) - X) ** 2) * X.shape[1] < errors[0]


# ---------------------------------------------------------------------------
# Drop-in compatibility with scikit-learn's BernoulliRBM
# ---------------------------------------------------------------------------


def test_same_parameters_and_defaults_as_sklearn():
    ours, theirs = BernoulliRBM().get_params(), SkBernoulliRBM().get_params()
    for name, value in theirs.items():
        assert ours[name] == value, name


def test_same_fitted_attributes_as_sklearn(digits):
    X, _ = digits
    ours = BernoulliRBM(16, n_iter=2, random_state=0).fit(X)
    theirs = SkBernoulliRBM(16, n_iter=2, random_state=0).fit(X)
    for name in ("components_", "intercept_hidden_", "intercept_visible_", "h_samples_"):
        assert getattr(ours, name).shape == getattr(theirs, name).shape, name
    assert ours.transform(X).shape == theirs.transform(X).shape
    assert ours.score_samples(X).shape == theirs.score_samples(X).shape
    assert ours.gibbs(X[:5]).shape == (5, 64)
    assert_array_equal(ours.get_feature_names_out(), theirs.get_feature_names_out())


def test_transform_is_hidden_probability(digits):
    X, _ = digits
    rbm = BernoulliRBM(8, n_iter=1, random_state=0, dtype="float64").fit(X)
    expected = 1 / (1 + np.exp(-(X @ rbm.components_.T + rbm.intercept_hidden_)))
    assert_allclose(rbm.transform(X), expected, rtol=1e-12)


def test_score_samples_is_pseudo_likelihood_as_in_sklearn(digits):
    X, _ = digits
    X = (X[:200] > 0.5).astype(np.float64)
    ours = BernoulliRBM(8, n_iter=2, random_state=0).fit(X)
    theirs = SkBernoulliRBM(8, n_iter=0, random_state=0).fit(X)
    for name in ("components_", "intercept_hidden_", "intercept_visible_"):
        setattr(theirs, name, getattr(ours, name))
    assert_allclose(ours.score_samples(X), theirs.score_samples(X), rtol=1e-10)


def test_free_energy_matches_definition():
    rng = np.random.RandomState(0)
    X = rng.normal(0, 1, (20, 5))
    rbm = GaussianBernoulliRBM(3, sigma=[0.5, 1, 2, 1, 1], n_iter=2, random_state=0).fit(X)
    W, b, c, s = rbm.components_, rbm.intercept_visible_, rbm.intercept_hidden_, rbm.sigma_
    expected = ((X - b) ** 2 / (2 * s**2)).sum(1) - np.logaddexp(0, (X / s) @ W.T + c).sum(1)
    assert_allclose(rbm.free_energy(X), expected, rtol=1e-10)
    assert_allclose(rbm.score_samples(X), -expected, rtol=1e-10)


def test_gibbs_gives_binary_samples_and_advances(digits):
    X, _ = digits
    rbm = BernoulliRBM(16, n_iter=1, random_state=0).fit(X)
    a, b = rbm.gibbs(X[:50]), rbm.gibbs(X[:50])
    assert set(np.unique(a)) <= {0, 1}
    assert not np.array_equal(a, b)
    again = BernoulliRBM(16, n_iter=1, random_state=0).fit(X)
    assert_array_equal(again.gibbs(X[:50]), a)


def test_partial_fit_learns_every_minibatch_and_returns_self(digits):
    X, _ = digits
    chunked = BernoulliRBM(16, n_iter=1, random_state=0)
    assert chunked.partial_fit(X) is chunked
    whole = BernoulliRBM(16, n_iter=1, random_state=0).fit(X)
    # One partial_fit over a chunk is one epoch over its minibatches.
    assert_allclose(chunked.components_, whole.components_, rtol=1e-6)
    sk = SkBernoulliRBM(16, random_state=0)
    sk.partial_fit(X)
    moved_ours = np.abs(chunked.components_).mean()
    moved_sklearn = np.abs(sk.components_).mean()
    assert moved_ours > 5 * moved_sklearn


def test_dense_and_sparse_input_agree(digits):
    # Sparse products sum in another order: float32 rounding (the tests of
    # the sparse path, test_csr.py, hold float64 to 1e-12).
    X, _ = digits
    dense = BernoulliRBM(16, n_iter=2, random_state=0).fit(X)
    sparse = BernoulliRBM(16, n_iter=2, random_state=0).fit(sp.csr_matrix(X))
    assert_allclose(sparse.components_, dense.components_, rtol=1e-5, atol=1e-5)
    assert_allclose(sparse.transform(sp.csr_matrix(X)), dense.transform(X), rtol=1e-5,
                    atol=1e-6)


# ---------------------------------------------------------------------------
# Determinism, dtypes, threads
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("Estimator", [BernoulliRBM, GaussianBernoulliRBM])
def test_same_model_for_any_n_jobs(Estimator, digits):
    X, _ = digits
    fits = [
        Estimator(128, n_iter=2, batch_size=100, random_state=0, n_jobs=n,
                  dtype="float64").fit(X)
        for n in (1, 2)
    ]
    assert_array_equal(fits[0].h_samples_, fits[1].h_samples_)
    assert_allclose(fits[0].components_, fits[1].components_, rtol=1e-10, atol=1e-13)
    assert_array_equal(fits[0].gibbs(X[:300]), fits[1].gibbs(X[:300]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("Estimator", [BernoulliRBM, GaussianBernoulliRBM])
def test_dtype_is_preserved(Estimator, dtype, digits):
    X = digits[0].astype(dtype)
    rbm = Estimator(8, n_iter=1, random_state=0).fit(X)
    for name in ("components_", "intercept_hidden_", "intercept_visible_", "h_samples_"):
        assert getattr(rbm, name).dtype == dtype, name
    for method in ("transform", "reconstruct", "gibbs", "free_energy"):
        assert getattr(rbm, method)(X).dtype == dtype, method


def test_dtype_parameter_and_integer_input(digits):
    X = digits[0]
    assert BernoulliRBM(4, n_iter=1, dtype="float32").fit(X.astype(np.float64)).components_.dtype == np.float32
    assert BernoulliRBM(4, n_iter=1).fit((X > 0.5).astype(np.int64)).components_.dtype == np.float64


def test_float32_and_float64_agree(digits):
    X = digits[0][:400]
    params = dict(n_components=16, n_iter=3, random_state=0, persistent=False,
                  sample_visible=False)
    r32 = BernoulliRBM(**params).fit(X.astype(np.float32))
    r64 = BernoulliRBM(**params).fit(X.astype(np.float64))
    assert_allclose(r32.transform(X), r64.transform(X), atol=1e-3)


@pytest.mark.parametrize(
    "rbm", [BernoulliRBM(8, n_iter=1), GaussianBernoulliRBM(8, n_iter=1, sigma="learn")]
)
def test_fit_does_not_modify_X(rbm, digits):
    X = digits[0].copy()
    rbm.fit(X)
    rbm.partial_fit(X)
    rbm.transform(X)
    assert_array_equal(X, digits[0])


# ---------------------------------------------------------------------------
# Larger than memory
# ---------------------------------------------------------------------------


def test_fit_on_memmap_reads_one_minibatch_at_a_time(tmp_path):
    n, d = 100_000, 784  # 314 MB of float32
    X = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float32,
                                  shape=(n, d))
    rng = np.random.default_rng(0)
    for start in range(0, n, 10_000):
        X[start : start + 10_000] = rng.random((10_000, d), dtype=np.float32) < 0.2
    X.flush()
    X = np.load(tmp_path / "X.npy", mmap_mode="r")

    rbm = BernoulliRBM(16, batch_size=100, n_iter=1, persistent=False, random_state=0)
    tracemalloc.start()
    rbm.fit(X)
    rbm.partial_fit(X)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    model_and_batch = (16 * d * 4) * 4 + 2 * 100 * d * 4
    assert peak < model_and_batch + 2_000_000, peak
    assert peak < X.nbytes / 50
    assert rbm.n_iter_ == 2

    in_memory = BernoulliRBM(16, batch_size=100, n_iter=1, persistent=False,
                             random_state=0).fit(np.asarray(X[:20_000]))
    on_disk = BernoulliRBM(16, batch_size=100, n_iter=1, persistent=False,
                           random_state=0).fit(X[:20_000])
    assert_array_equal(in_memory.components_, on_disk.components_)


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("Estimator", [BernoulliRBM, GaussianBernoulliRBM])
@pytest.mark.parametrize("value, word", [(np.nan, "NaN"), (np.inf, "infinity")])
def test_non_finite_input_is_rejected(Estimator, value, word):
    X = np.random.RandomState(0).uniform(size=(20, 4))
    X[3, 2] = value
    with pytest.raises(ValueError, match=word):
        Estimator(2).fit(X)
    rbm = Estimator(2, n_iter=1).fit(np.nan_to_num(X, posinf=1))
    with pytest.raises(ValueError, match=word):
        rbm.transform(X)


@pytest.mark.parametrize("Estimator", [BernoulliRBM, GaussianBernoulliRBM])
def test_wrong_shapes_are_rejected(Estimator):
    X = np.random.RandomState(0).uniform(size=(20, 4))
    rbm = Estimator(2, n_iter=1).fit(X)
    with pytest.raises(ValueError, match="4 features"):
        rbm.transform(X[:, :3])
    with pytest.raises(ValueError, match="4 features"):
        rbm.partial_fit(X[:, :3])
    with pytest.raises(ValueError, match="0 sample"):
        Estimator(2).fit(X[:0])
    with pytest.raises(ValueError, match="2D array"):
        Estimator(2).fit(X[0])


@pytest.mark.parametrize(
    "params",
    [dict(n_components=0), dict(cd_k=0), dict(momentum="fast"), dict(momentum=1.0),
     dict(learning_rate=-1), dict(sparsity_target=1.5), dict(batch_size=0)],
)
def test_invalid_parameters_are_rejected(params):
    with pytest.raises(ValueError, match=next(iter(params))):
        BernoulliRBM(**params).fit(np.zeros((4, 3)))


def test_invalid_sigma_and_dtype_are_rejected():
    X = np.zeros((4, 3))
    with pytest.raises(ValueError, match="shape"):
        GaussianBernoulliRBM(2, sigma=[1.0, 2.0]).fit(X)
    with pytest.raises(ValueError, match="positive"):
        GaussianBernoulliRBM(2, sigma=[1.0, 0.0, 2.0]).fit(X)
    with pytest.raises(ValueError, match="sigma"):
        GaussianBernoulliRBM(2, sigma="guess").fit(X)
    with pytest.raises(ValueError, match="dtype"):
        BernoulliRBM(2, dtype=np.int32).fit(X)


def test_values_outside_unit_interval_warn_with_a_fix(digits):
    X = digits[0] * 16  # unscaled pixel intensities
    with pytest.warns(UserWarning, match=r"\[0, 16\].*MinMaxScaler"):
        BernoulliRBM(4, n_iter=1).fit(X)


def test_diverging_fit_raises_and_leaves_no_nan_model():
    X = np.random.RandomState(0).normal(0, 50, (200, 20))
    rbm = GaussianBernoulliRBM(50, learning_rate=10.0, n_iter=20, random_state=0)
    with pytest.raises(FloatingPointError, match="smaller learning_rate"):
        rbm.fit(X)
    assert not hasattr(rbm, "components_")
    with pytest.raises(NotFittedError):
        rbm.transform(X)
