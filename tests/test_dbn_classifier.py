"""DBNClassifier: the class posterior, digits accuracy, samples, faults."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import softmax
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from skdbn import DBNClassifier


def _toy(dtype=np.float32, n=80, n_features=12, seed=0):
    rng = np.random.RandomState(seed)
    y = np.array(["a", "b", "c", "d"])[np.arange(n) % 4]
    index = np.searchsorted(np.unique(y), y)
    # Each class switches on its own block of features.
    p = np.full((n, n_features), 0.1)
    for k in range(4):
        p[index == k, 3 * k:3 * k + 3] = 0.9
    return (rng.uniform(size=p.shape) < p).astype(dtype), y


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    return train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sizes", [(6,), (8, 6)])
def test_predict_proba_is_the_free_energy_posterior(dtype, sizes):
    X, y = _toy(dtype)
    clf = DBNClassifier(sizes, n_iter=5, up_down_iter=2, random_state=0, n_jobs=1).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (X.shape[0], 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-10)
    # Brute force: the top RBM's own free energy of [h, one-hot y] per class.
    top = clf.rbms_[-1]
    H = X
    for rbm in clf.rbms_[:-1]:
        H = rbm.transform(H)
    energies = np.stack([
        top.free_energy(np.hstack([H, np.tile(np.eye(4, dtype=dtype)[k], (len(H), 1))]))
        for k in range(4)], axis=1)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(proba, softmax(-energies.astype(np.float64), axis=1),
                               rtol=tol, atol=tol)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[np.argmax(-energies, axis=1)])
    assert clf.transform(X).shape == (X.shape[0], sizes[-1])
    assert clf.transform(X).dtype == dtype


def test_classes_of_any_type():
    X, y = _toy()
    for labels in (y, np.searchsorted(np.unique(y), y) * 10 - 5, (y == "a")):
        clf = DBNClassifier((8,), n_iter=20, learning_rate=0.1, random_state=0,
                            n_jobs=1).fit(X, labels)
        np.testing.assert_array_equal(clf.classes_, np.unique(labels))
        assert set(clf.predict(X)) <= set(np.unique(labels))
        assert clf.score(X, labels) > 0.8


@pytest.fixture(scope="module")
def logistic_regression_score(digits):
    X_train, X_test, y_train, y_test = digits
    score = LogisticRegression(max_iter=2000).fit(X_train, y_train).score(X_test, y_test)
    assert score == pytest.approx(348 / 360)  # the 0.967
    return score


def test_digits_greedy_model_beats_logistic_regression(digits, logistic_regression_score):
    # The greedy model alone: one RBM on [pixels, one-hot label], classifying
    # by free energy. Measured with seeds 0, 1, 2, 3: 0.975, 0.975, 0.972,
    # 0.983, i.e. 2 to 6 of the 360 test digits better than logistic
    # regression on the pixels (0.967); the margin asserted is 2 digits.
    X_train, X_test, y_train, y_test = digits
    greedy = DBNClassifier(hidden_layer_sizes=(1000,), n_iter=200, momentum="schedule",
                           learning_rate=0.05, n_jobs=1, random_state=0).fit(X_train, y_train)
    assert greedy.score(X_test, y_test) >= logistic_regression_score + 2 / 360 - 1e-9


def test_digits_up_down_improves_the_greedy_model(digits, logistic_regression_score):
    # A 64-300-800 network with the labels at the top. Measured with seeds
    # 0, 1, 2, 3: greedy 0.972, 0.961, 0.967, 0.961; after 40 up-down epochs
    # (learning rate 0.01, CD-3 in the top RBM) 0.983, 0.986, 0.981, 0.981,
    # i.e. 4 to 9 test digits better, and 5 or more better than logistic
    # regression. The margins asserted are 2 digits over each.
    X_train, X_test, y_train, y_test = digits
    clf = DBNClassifier(hidden_layer_sizes=(300, 800), n_iter=[20, 80], momentum="schedule",
                        learning_rate=0.05, up_down_learning_rate=0.01, n_jobs=1,
                        random_state=0).fit(X_train, y_train)
    greedy_score = clf.score(X_test, y_test)
    clf.rbms_[-1].set_params(cd_k=3)
    for _ in range(40):
        clf.partial_fit(X_train, y_train)
    assert len(clf.up_down_errors_) == 40
    assert clf.up_down_errors_[-1] < clf.up_down_errors_[0]
    # Up-down unties the generative weights from the recognition weights.
    assert not np.allclose(clf.generative_components_[0], clf.rbms_[0].components_)
    score = clf.score(X_test, y_test)
    assert score >= greedy_score + 2 / 360 - 1e-9
    assert score >= logistic_regression_score + 2 / 360 - 1e-9


def test_samples_with_a_clamped_label_look_like_that_label():
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    clf = DBNClassifier((500,), n_iter=30, momentum="schedule", random_state=0,
                        n_jobs=1).fit(X, y)
    judge = LogisticRegression(max_iter=2000).fit(X, y)
    labels = np.repeat(np.arange(10), 10)
    samples = clf.sample(len(labels), y=labels, n_gibbs=200, random_state=0)
    assert samples.shape == (100, 64) and samples.dtype == np.float32
    assert np.all((samples >= 0) & (samples <= 1))
    # Chance is 0.1; measured 0.86 (seed 0) and 0.83 (seed 1).
    assert np.mean(judge.predict(samples) == labels) > 0.6
    # One label for all samples; the same seed, the same samples.
    a = clf.sample(5, y=3, n_gibbs=20, random_state=1)
    np.testing.assert_array_equal(a, clf.sample(5, y=[3] * 5, n_gibbs=20, random_state=1))
    assert clf.sample(4, n_gibbs=5, random_state=0).shape == (4, 64)


def test_sample_through_lower_layers():
    X, y = _toy()
    clf = DBNClassifier((10, 8), n_iter=3, up_down_iter=1, random_state=0, n_jobs=1).fit(X, y)
    out = clf.sample(3, y="b", n_gibbs=5, random_state=0)
    assert out.shape == (3, X.shape[1]) and np.all(np.isfinite(out))


def test_sparse_input_matches_dense():
    X, y = _toy(np.float64)
    dense = DBNClassifier((8, 6), n_iter=3, up_down_iter=1, random_state=0, n_jobs=1).fit(X, y)
    sparse = DBNClassifier((8, 6), n_iter=3, up_down_iter=1, random_state=0,
                           n_jobs=1).fit(sp.csr_matrix(X), y)
    np.testing.assert_allclose(sparse.predict_proba(sp.csr_matrix(X)), dense.predict_proba(X),
                               rtol=1e-8)


def test_pickle_round_trip():
    X, y = _toy()
    clf = DBNClassifier((8, 6), n_iter=3, up_down_iter=1, random_state=0, n_jobs=1).fit(X, y)
    back = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(back.sample(3, y="a", n_gibbs=5, random_state=0),
                                  clf.sample(3, y="a", n_gibbs=5, random_state=0))


def test_bad_labels_and_inputs():
    X, y = _toy()
    clf = DBNClassifier((6,), n_iter=1, random_state=0, n_jobs=1)
    with pytest.raises(ValueError, match="at least 2 classes"):
        clf.fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="Unknown label type"):
        clf.fit(X, np.linspace(0, 1, len(X)))
    with pytest.raises(NotFittedError):
        clf.predict(X)
    with pytest.raises(ValueError, match="per layer"):
        DBNClassifier((6, 4), n_iter=[1, 2, 3]).fit(X, y)
    clf.fit(X, y)
    with pytest.raises(ValueError, match="not among the classes"):
        clf.sample(2, y="z", n_gibbs=1)
    with pytest.raises(ValueError, match="one per sample"):
        clf.sample(2, y=["a", "b", "c"], n_gibbs=1)
    with pytest.raises(ValueError, match="overflow"):
        clf.predict_proba(X.astype(np.float64) * 1e300)


@pytest.mark.parametrize("sizes", [(8,), (10, 8)])
def test_partial_fit_continues_fit(sizes):
    # Greedy training on the first call, then one up-down epoch per call,
    # numbered on: the same model as fit with up_down_iter, even through a
    # pickle (a resumed run), and the same streams as one uninterrupted fit.
    X, y = _toy()
    params = dict(n_iter=3, up_down_learning_rate=0.05, random_state=0, n_jobs=1)
    whole = DBNClassifier(sizes, up_down_iter=3, **params).fit(X, y)
    parts = DBNClassifier(sizes, **params).partial_fit(X, y, classes=np.unique(y))
    assert parts.up_down_errors_ == []
    parts.partial_fit(X, y)
    parts = pickle.loads(pickle.dumps(parts))
    parts.partial_fit(X, y, classes=np.unique(y)).partial_fit(X, y)
    assert parts.up_down_errors_ == whole.up_down_errors_
    for a, b in zip(parts.rbms_, whole.rbms_):
        np.testing.assert_array_equal(a.components_, b.components_)
    for a, b in zip(parts.generative_components_, whole.generative_components_):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(parts.predict_proba(X), whole.predict_proba(X))
    # A chunk with some of the classes only.
    parts.partial_fit(X[y == "a"], y[y == "a"])
    assert len(parts.up_down_errors_) == 4


def test_partial_fit_bad_calls():
    X, y = _toy()
    clf = DBNClassifier((6,), n_iter=1, random_state=0, n_jobs=1)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    with pytest.raises(ValueError, match="not among the classes"):
        clf.partial_fit(X, y, classes=["a", "b"])
    assert not hasattr(clf, "classes_")
    clf.partial_fit(X, y, classes=["a", "b", "c", "d", "e"])
    assert list(clf.classes_) == ["a", "b", "c", "d", "e"]
    with pytest.raises(ValueError, match="not the same as on the first call"):
        clf.partial_fit(X, y, classes=["a", "b"])
    with pytest.raises(ValueError, match="not among the classes"):
        clf.partial_fit(X, np.where(y == "a", "z", y))
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:, :5], y)
    assert clf.up_down_errors_ == []


def test_divergence_raises_and_leaves_the_model():
    X, y = _toy()
    clf = DBNClassifier((8, 6), n_iter=2, random_state=0, n_jobs=1).fit(X, y)
    before = [a.copy() for a in clf.generative_components_]
    clf.set_params(up_down_iter=3, up_down_learning_rate=1e30)
    with pytest.raises(FloatingPointError, match="up_down_learning_rate"):
        clf.fit(X, y)
    for a, b in zip(clf.generative_components_, before):
        np.testing.assert_array_equal(a, b)
    # partial_fit updates in place: on divergence every array is put back.
    arrays = [a.copy() for a in clf.generative_components_ + [r.components_ for r in clf.rbms_]]
    with pytest.raises(FloatingPointError, match="up_down_learning_rate"):
        clf.partial_fit(X, y)
    after = clf.generative_components_ + [r.components_ for r in clf.rbms_]
    for a, b in zip(after, arrays):
        np.testing.assert_array_equal(a, b)
    assert clf.up_down_errors_ == []
