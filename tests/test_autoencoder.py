"""DBNAutoencoder and the reconstruction kernel of _mlp."""

import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import expit
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import skdbn
from skdbn import DBNAutoencoder, DBNTransformer
from kernel_helpers import reconstruction_step
from skdbn._kernels import _mlp

TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-9, atol=1e-12)}
SIGMOID, LINEAR = _mlp.KIND_CODES["sigmoid"], _mlp.KIND_CODES["linear"]


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def small(**params):
    """A quick autoencoder for the structural tests."""
    base = dict(hidden_layer_sizes=(24, 4), pretrain_n_iter=2, max_iter=3, random_state=0)
    return DBNAutoencoder(**{**base, **params})


# ---------------------------------------------------------------------------
# The kernel against numpy.
def reference_sgd_step(X, weights, biases, kinds, noise, lr):
    """Plain SGD on the reconstruction loss, by numpy backprop."""
    acts = [X]
    for W, b, kind, n in zip(weights, biases, kinds, noise):
        z = acts[-1] @ W.T + b + (0 if n is None else n)
        acts.append(expit(z) if kind == SIGMOID else z)
    out, m = acts[-1], X.shape[0]
    if kinds[-1] == SIGMOID:
        loss = -np.sum(X * np.log(out) + (1 - X) * np.log(1 - out)) / m
    else:
        loss = 0.5 * np.sum((out - X) ** 2) / m
    D = (out - X) / m
    for l in range(len(weights) - 1, -1, -1):
        G, gb = D.T @ acts[l], D.sum(0)
        if l > 0:
            D = D @ weights[l]
            if kinds[l - 1] == SIGMOID:
                D = D * acts[l] * (1 - acts[l])
        weights[l] -= lr * G
        biases[l] -= lr * gb
    return loss


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("output", [SIGMOID, LINEAR])
@pytest.mark.parametrize("code", [SIGMOID, LINEAR])
def test_reconstruction_step_matches_numpy(dtype, output, code):
    rng = np.random.RandomState(0)
    sizes = [7, 5, 3, 5, 7]
    X = rng.uniform(size=(6, 7)).astype(dtype)
    weights = [rng.normal(0, 0.5, (o, i)).astype(dtype) for i, o in zip(sizes, sizes[1:])]
    biases = [rng.normal(0, 0.5, o).astype(dtype) for o in sizes[1:]]
    kinds = np.array([SIGMOID, code, SIGMOID, output], dtype=np.int32)
    noise = [None, rng.normal(size=(6, 3)).astype(dtype), None, None]
    ref_w = [W.astype(np.float64) for W in weights]
    ref_b = [b.astype(np.float64) for b in biases]
    ref_loss = reference_sgd_step(X.astype(np.float64), ref_w, ref_b, kinds, noise, lr=0.3)

    zeros = [[np.zeros_like(a) for a in arrays] for arrays in (weights, weights, biases, biases)]
    acts = [None] + [np.empty((6, n), dtype) for n in sizes[1:]]
    deltas = [None] + [np.empty((6, n), dtype) for n in sizes[1:]]
    grads = [np.empty_like(W) for W in weights]
    loss = reconstruction_step(X, X, weights, biases, *zeros, acts, deltas, grads,
                               kinds, noise, learning_rate=0.3, momentum=0.0)
    assert_allclose(loss, ref_loss, rtol=1e-5 if dtype is np.float32 else 1e-10)
    for got, want in zip(weights + biases, ref_w + ref_b):
        assert_allclose(got, want, **TOL[dtype])


# ---------------------------------------------------------------------------
# Unrolling.
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("visible_units", ["bernoulli", "gaussian"])
def test_unrolled_linear_code_equals_dbn_passes(digits, dtype, visible_units):
    """Before fine-tuning: codes = the DBN's up-pass (the linear input of the
    Gaussian top units), reconstructions = its down-pass."""
    X = digits[0].astype(dtype)
    if visible_units == "gaussian":
        X = StandardScaler().fit_transform(X).astype(dtype)
    ae = small(visible_units=visible_units, max_iter=0,
               pretrain_learning_rate=[0.01, 0.001]).fit(X)
    dbn = ae.dbn_
    assert dbn.rbms_[-1].hidden_units == "gaussian"
    codes = ae.transform(X)
    assert codes.dtype == dtype
    assert_allclose(codes, dbn.transform(X), **TOL[dtype])
    # Linear codes take any real value, not probabilities.
    assert codes.min() < 0 or codes.max() > 1
    assert_allclose(ae.inverse_transform(codes), dbn.inverse_transform(codes), **TOL[dtype])


@pytest.mark.parametrize("up_down_iter", [0, 2])
def test_unrolled_binary_code_equals_dbn_passes(digits, up_down_iter):
    """The decoder is the DBN's down-pass, with its generative weights once
    up-down fine-tuning has untied them."""
    X = digits[0]
    dbn = DBNTransformer((24, 6), n_iter=2, up_down_iter=up_down_iter, random_state=0).fit(X)
    ae = DBNAutoencoder(dbn=dbn, code_units="binary", max_iter=0).fit(X)
    assert_array_equal(ae.transform(X), (dbn.transform(X) > 0.5).astype(np.float32))
    codes = ae.transform(X)
    assert_allclose(ae.inverse_transform(codes), dbn.inverse_transform(codes), **TOL[np.float32])
    # A fitted dbn is copied, not modified, by fine-tuning.
    weights = [rbm.components_.copy() for rbm in dbn.rbms_]
    tuned = clone(ae).set_params(max_iter=2).fit(X)
    assert not np.array_equal(tuned.coefs_[0], weights[0])
    for rbm, W in zip(dbn.rbms_, weights):
        assert_array_equal(rbm.components_, W)


@pytest.mark.parametrize("sigma", [2.0, "learn"])
def test_unrolled_gaussian_visibles_take_raw_data(digits, sigma):
    """The visible sigma is folded into the first and last weights: the
    network maps raw data to the DBN's v-space reconstruction."""
    X = StandardScaler().fit_transform(digits[0])
    dbn = DBNTransformer((24, 6), visible_units="gaussian", sigma=sigma, learning_rate=0.01,
                         n_iter=2, random_state=0).fit(X)
    assert np.ptp(dbn.rbms_[0].state_.sigma) > 0 or dbn.rbms_[0].state_.sigma[0] == 2.0
    ae = DBNAutoencoder(dbn=dbn, visible_units="gaussian", code_units="binary",
                        max_iter=0).fit(X)
    codes = ae.transform(X)
    assert_array_equal(codes, (dbn.transform(X) > 0.5).astype(codes.dtype))
    expected = dbn.inverse_transform(codes)
    assert_allclose(ae.inverse_transform(codes), expected, rtol=1e-5,
                    atol=1e-6 * np.abs(expected).max())


def test_given_dbn_must_match_code_units(digits):
    dbn = DBNTransformer((8, 4), n_iter=1, random_state=0).fit(digits[0])
    with pytest.raises(ValueError, match="hidden_units"):
        DBNAutoencoder(dbn=dbn, code_units="linear").fit(digits[0])
    with pytest.raises(ValueError, match="visible_units='bernoulli'"):
        DBNAutoencoder(dbn=dbn, code_units="binary", visible_units="gaussian").fit(digits[0])


# ---------------------------------------------------------------------------
# Fine-tuning.
@pytest.mark.parametrize("code_units", ["linear", "binary"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_fine_tuning_lowers_training_error(digits, code_units, solver):
    X = digits[0]
    lr = 0.01 if solver == "adam" else 0.1
    before = small(code_units=code_units, max_iter=0).fit(X)
    after = small(code_units=code_units, max_iter=10, solver=solver,
                  learning_rate_init=lr).fit(X)
    assert after.n_iter_ == 10
    # Measured: the loss falls by 20-25 % (5 % through the noise of 4-bit
    # binary codes), the squared error per digit from 4.7 to 2.1-2.4 (4.1).
    loss_ratio, gain = {"linear": (0.9, 1.5), "binary": (0.97, 0.3)}[code_units]
    assert after.loss_curve_[-1] < loss_ratio * after.loss_curve_[0]
    assert after.score(X) > before.score(X) + gain


def test_linear_codes_beat_pca_on_held_out_digits(digits):
    """10-D linear codes reconstruct held-out digits with at least 40 % less
    squared error than PCA(10) (measured: 0.58 against PCA's 1.26)."""
    X_train, X_test = digits[0], digits[1]
    ae = DBNAutoencoder((128, 64, 10), pretrain_n_iter=20, learning_rate_init=3e-3,
                        max_iter=100, random_state=0).fit(X_train)
    pca = PCA(10).fit(X_train)
    pca_error = np.mean(np.sum((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2, 1))
    assert -ae.score(X_test) < 0.6 * pca_error


def test_binary_codes_retrieve_same_class(digits):
    """Codes are exactly 0/1, and the nearest training code by Hamming
    distance has the query's class for far more test digits than the 10 %
    of chance (measured: 0.89)."""
    X_train, X_test, y_train, y_test = digits
    ae = DBNAutoencoder((128, 64, 16), code_units="binary", pretrain_n_iter=20,
                        learning_rate_init=3e-3, max_iter=60,
                        random_state=0).fit(X_train)
    train_codes, test_codes = ae.transform(X_train), ae.transform(X_test)
    assert set(np.unique(train_codes)) <= {0.0, 1.0}
    assert len(np.unique(train_codes, axis=0)) > 50
    hamming = (test_codes[:, None, :] != train_codes[None, :, :]).sum(axis=2)
    # Ties: the first training row among the nearest.
    nearest = np.argmin(hamming, axis=1)
    assert np.mean(y_train[nearest] == y_test) > 0.7


def test_early_stopping_keeps_best_epoch(digits):
    ae = small(code_units="binary", max_iter=8, early_stopping=True, n_iter_no_change=2,
               learning_rate_init=0.01).fit(digits[0])
    assert len(ae.validation_scores_) == ae.n_iter_
    assert ae.best_validation_score_ == max(ae.validation_scores_)
    assert all(s < 0 for s in ae.validation_scores_)


def test_warm_start_continues_fine_tuning(digits):
    X = digits[0]
    ae = small(code_units="binary", warm_start=True).fit(X)
    dbn, first = ae.dbn_, ae.coefs_[0].copy()
    ae.fit(X)
    assert ae.n_iter_ == 6 and len(ae.loss_curve_) == 6
    assert ae.dbn_ is dbn  # no new pretraining
    assert not np.array_equal(first, ae.coefs_[0])


def test_partial_fit_streams_chunks_one_epoch_each(digits):
    X_train, X_test = digits[0], digits[1]
    dbn = DBNTransformer((24, 4), n_iter=2, hidden_units=["bernoulli", "gaussian"],
                         random_state=0).fit(X_train)
    params = dict(dbn=dbn, learning_rate_init=0.01)
    unrolled = small(**params, max_iter=0).fit(X_train)
    two_epochs = small(**params, max_iter=2).fit(X_train)
    ae = small(**params)
    for epoch in range(2):
        for chunk in np.array_split(X_train, 3):
            ae.partial_fit(chunk)
    assert ae.n_iter_ == 6 and len(ae.loss_curve_) == 6
    assert ae.dbn_ is dbn  # the given fitted DBN, no pretraining
    # Two passes over the data in chunks fine-tune as two epochs of fit do
    # (measured: 3.48 against 3.46 per digit, from the unrolled DBN's 4.44).
    assert ae.score(X_test) > 0.85 * unrolled.score(X_test)
    assert ae.score(X_test) > 1.05 * two_epochs.score(X_test)
    # Adam's state carries over: its step count is that of all minibatches.
    n_batches = sum(-(-len(c) // ae.batch_size) for c in np.array_split(X_train, 3))
    assert ae._solver_state[1] == 2 * n_batches
    # Reproducible from the seed.
    again = small(**params)
    for epoch in range(2):
        for chunk in np.array_split(X_train, 3):
            again.partial_fit(chunk)
    for got, want in zip(again.coefs_, ae.coefs_):
        assert_array_equal(got, want)


def test_partial_fit_first_call_pretrains_on_its_chunk(digits):
    ae = small(code_units="binary").partial_fit(digits[0][:300])
    assert ae.n_iter_ == 1
    assert ae.dbn_.rbms_[0].n_iter_ == 2  # pretrain_n_iter epochs
    with pytest.raises(ValueError, match="features"):
        ae.partial_fit(digits[0][:10, :32])


def test_verbose_prints_train_and_validation_error(digits, capsys):
    small(code_units="binary", max_iter=2, early_stopping=True, verbose=1).fit(digits[0])
    out = capsys.readouterr().out
    assert "[DBNAutoencoder] Epoch 2, loss = " in out
    assert "validation error = " in out


# ---------------------------------------------------------------------------
# API.
def test_score_is_minus_mean_squared_error(digits):
    X = digits[1]
    ae = small(code_units="binary").fit(digits[0])
    rec = ae.inverse_transform(ae.transform(X))
    assert_allclose(ae.score(X), -np.mean(np.sum((rec - X) ** 2, axis=1)), rtol=1e-6)


def test_feature_names_out(digits):
    ae = small(code_units="binary").fit(digits[0])
    assert_array_equal(ae.get_feature_names_out(),
                       [f"dbnautoencoder{i}" for i in range(4)])


@pytest.mark.parametrize("code_units", ["linear", "binary"])
def test_pickle_round_trip(digits, code_units):
    X = digits[1]
    ae = small(code_units=code_units).fit(digits[0])
    clone_ = pickle.loads(pickle.dumps(ae))
    assert_array_equal(clone_.transform(X), ae.transform(X))
    assert_array_equal(clone_.inverse_transform(ae.transform(X)),
                       ae.inverse_transform(ae.transform(X)))


def test_inverse_transform_checks_code_size(digits):
    ae = small(code_units="binary").fit(digits[0])
    with pytest.raises(ValueError, match=r"\(n_samples, 4\) codes"):
        ae.inverse_transform(np.zeros((2, 5)))


def test_divergence_raises_and_leaves_estimator_unchanged(digits):
    X = StandardScaler().fit_transform(digits[0])
    dbn = DBNTransformer((24, 4), visible_units="gaussian", learning_rate=0.01, n_iter=1,
                         random_state=0).fit(X)
    ae = DBNAutoencoder(dbn=dbn, visible_units="gaussian", code_units="binary",
                        solver="sgd", learning_rate_init=1e3, max_iter=5)
    with pytest.raises(FloatingPointError, match="smaller learning_rate_init"):
        ae.fit(X)
    assert not hasattr(ae, "coefs_")


@pytest.mark.parametrize("warm", [False, True])
def test_fault_in_fine_tuning_leaves_estimator_unchanged(digits, monkeypatch, warm):
    X = digits[0]
    ae = small(code_units="binary", warm_start=warm).fit(X)
    before = ([W.copy() for W in ae.coefs_], ae.n_iter_, list(ae.loss_curve_))
    coefs = ae.coefs_
    original, calls = _mlp.reconstruction_step, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 20:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(_mlp, "reconstruction_step", failing)
    with pytest.raises(KeyboardInterrupt):
        ae.fit(X)
    assert len(calls) == 20
    assert ae.coefs_ is coefs
    for got, want in zip(ae.coefs_, before[0]):
        assert_array_equal(got, want)
    assert (ae.n_iter_, ae.loss_curve_) == before[1:]


def test_exported():
    assert "DBNAutoencoder" in skdbn.__all__
