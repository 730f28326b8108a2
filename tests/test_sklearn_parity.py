"""BernoulliRBM as a drop-in for sklearn.neural_network.BernoulliRBM.

The same input through both estimators, with the same parameters, must give
what scikit-learn documents: the same transform, score_samples, gibbs and
feature names, the same verbose line, and float32 fits that follow float64
ones as closely as scikit-learn's do (its test_convergence_dtype_consistency).
"""

import re

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits
from sklearn.neural_network import BernoulliRBM as SkBernoulliRBM

from skdbn import BernoulliRBM, GaussianBernoulliRBM

X_DIGITS, _ = load_digits(return_X_y=True)
X_DIGITS = X_DIGITS / 16.0  # [0, 1], as scikit-learn's own RBM tests scale it


def assert_float32_follows_float64(a64, a32, rtol=1e-5):
    """``rtol``, and two float32 ulps of the array's scale.

    An element that nears zero by cancellation keeps only the absolute
    precision of the float32 numbers it was computed from, in any float32
    implementation (scikit-learn's needs the same slack on other seeds).
    """
    a64 = np.asarray(a64, dtype=np.float64)
    atol = 2 * np.finfo(np.float32).eps * np.abs(a64).max()
    assert_allclose(a32, a64, rtol=rtol, atol=atol)


# The weights sum float32 products in BLAS, whose rounding varies with the
# BLAS build: scikit-learn's own test holds components_ to rtol 1e-3 (and
# its RBM needs it); every other attribute and transform to 1e-5 or less.
RTOL = {"components_": 1e-3}


FITTED = ["components_", "intercept_hidden_", "intercept_visible_", "h_samples_"]


@pytest.mark.parametrize("estimator", [BernoulliRBM, SkBernoulliRBM],
                         ids=["skdbn", "sklearn"])
@pytest.mark.parametrize("seed", [0, 42])
def test_float32_fit_follows_float64(estimator, seed):
    # scikit-learn's test_convergence_dtype_consistency, with the same
    # tolerances for every fitted attribute and transform; scikit-learn's
    # RBM is held to them too, so that the bar is the one a drop-in meets.
    params = dict(n_components=16, batch_size=5, n_iter=5, random_state=seed)
    X = X_DIGITS[:100]
    rbm_64 = estimator(**params)
    Xt_64 = rbm_64.fit_transform(X.astype(np.float64))
    rbm_32 = estimator(**params)
    Xt_32 = rbm_32.fit_transform(X.astype(np.float32))
    assert Xt_32.dtype == np.float32
    assert_float32_follows_float64(Xt_64, Xt_32)
    for name in FITTED:
        assert getattr(rbm_32, name).dtype == np.float32
        assert_float32_follows_float64(getattr(rbm_64, name), getattr(rbm_32, name),
                                       RTOL.get(name, 1e-5))


@pytest.mark.parametrize("params", [
    dict(persistent=False, momentum=0.5, weight_decay=1e-3),
    dict(sample_visible=False, cd_k=2, sparsity_cost=0.1),
], ids=["cd-momentum-decay", "meanfield-cd2-sparse"])
def test_float32_fit_follows_float64_with_skdbn_options(params):
    X = X_DIGITS[:100]
    fits = [BernoulliRBM(n_components=16, batch_size=5, n_iter=5, random_state=0,
                         **params).fit(X.astype(dtype)) for dtype in (np.float64, np.float32)]
    for name in FITTED:
        assert_float32_follows_float64(getattr(fits[0], name), getattr(fits[1], name),
                                       RTOL.get(name, 1e-5))
    assert_float32_follows_float64(fits[0].transform(X), fits[1].transform(X))


def _sklearn_twin(rbm):
    """A scikit-learn BernoulliRBM holding ``rbm``'s parameters."""
    twin = SkBernoulliRBM(n_components=rbm.n_components, random_state=rbm.random_state)
    twin.components_ = rbm.components_.copy()
    twin.intercept_hidden_ = rbm.intercept_hidden_.copy()
    twin.intercept_visible_ = rbm.intercept_visible_.copy()
    twin.h_samples_ = np.asarray(rbm.h_samples_).copy()
    twin.n_features_in_ = rbm.n_features_in_
    twin._n_features_out = rbm.n_components
    return twin


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_methods_match_sklearn_on_the_same_model(dtype, sparse):
    X = X_DIGITS[:50].astype(dtype)
    rbm = BernoulliRBM(n_components=12, n_iter=3, random_state=0).fit(X)
    twin = _sklearn_twin(rbm)
    Xin = sp.csr_matrix(X) if sparse else X
    rtol = 1e-5 if dtype == np.float32 else 1e-12

    # transform: P(h = 1 | v), in the input's dtype.
    assert rbm.transform(Xin).dtype == twin.transform(Xin).dtype == dtype
    assert_allclose(rbm.transform(Xin), twin.transform(Xin), rtol=rtol)
    # score_samples: the pseudo-likelihood, flipping the same features (both
    # draw them from random_state the same way).
    assert_allclose(rbm.score_samples(Xin), twin.score_samples(Xin), rtol=rtol * 10)
    # Feature names: "bernoullirbm0", ...
    assert_array_equal(rbm.get_feature_names_out(), twin.get_feature_names_out())


def test_gibbs_matches_sklearn_when_deterministic():
    # With saturated conditionals a Gibbs step is deterministic, so both
    # implementations must land on the same visible states.
    rng = np.random.RandomState(0)
    X = (rng.rand(20, 6) > 0.5).astype(np.float64)
    rbm = BernoulliRBM(n_components=5, n_iter=0, random_state=0).fit(X)
    # Total inputs are multiples of 50 plus +-25.5: never within 24 of zero.
    rbm.components_[:] = 50 * np.sign(rng.randn(5, 6))
    rbm.intercept_hidden_[:] = 25.5 * np.sign(rng.randn(5))
    rbm.intercept_visible_[:] = 25.5 * np.sign(rng.randn(6))
    twin = _sklearn_twin(rbm)
    ours, theirs = rbm.gibbs(X), twin.gibbs(X)
    assert ours.shape == theirs.shape == X.shape
    assert_array_equal(ours, theirs.astype(ours.dtype))
    assert set(np.unique(ours)) == {0, 1}


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_fit_and_partial_fit_return_self_with_sklearn_attributes(method):
    X = X_DIGITS[:40]
    ours = BernoulliRBM(n_components=5, random_state=0)
    theirs = SkBernoulliRBM(n_components=5, random_state=0)
    # (scikit-learn's partial_fit returns None; returning self is the
    # scikit-learn convention skdbn follows for both.)
    assert getattr(ours, method)(X) is ours
    getattr(theirs, method)(X)
    for name in FITTED + ["n_features_in_"]:
        assert np.shape(getattr(ours, name)) == np.shape(getattr(theirs, name)), name


SKLEARN_LINE = re.compile(
    r"\[BernoulliRBM\] Iteration \d+, pseudo-likelihood = -?\d+\.\d\d, time = \d+\.\d\ds"
)
VERBOSE_LINE = re.compile(
    r"^\[(?P<name>\w+)\] Iteration (?P<it>\d+), (?P<score>pseudo-likelihood|-free energy) "
    r"= (?P<value>-?\d+\.\d\d), time = \d+\.\d\ds, reconstruction error = \d+\.\d{4}$"
)


def test_verbose_prints_sklearns_line(capsys):
    X = X_DIGITS[:60].astype(np.float32)
    rbm = BernoulliRBM(n_components=8, n_iter=2, random_state=0, verbose=1).fit(X)
    lines = capsys.readouterr().out.splitlines()
    matches = [VERBOSE_LINE.match(line) for line in lines]
    assert len(lines) == 2 and all(matches), lines
    assert [m["it"] for m in matches] == ["1", "2"]
    assert {m["name"] for m in matches} == {"BernoulliRBM"}
    assert {m["score"] for m in matches} == {"pseudo-likelihood"}
    # scikit-learn's format, checked on scikit-learn's own output, starts
    # every line; the figure is the mean score_samples of the model.
    SkBernoulliRBM(n_components=8, n_iter=1, random_state=0, verbose=1).fit(X)
    (sk_line,) = capsys.readouterr().out.splitlines()
    assert SKLEARN_LINE.fullmatch(sk_line), sk_line
    assert all(SKLEARN_LINE.match(line) for line in lines)
    assert float(matches[-1]["value"]) == pytest.approx(rbm.score_samples(X).mean(), abs=0.006)


def test_verbose_gaussian_names_its_score(capsys):
    X = np.random.RandomState(0).normal(size=(50, 4))
    rbm = GaussianBernoulliRBM(n_components=3, n_iter=1, random_state=0, verbose=1).fit(X)
    (line,) = capsys.readouterr().out.splitlines()
    match = VERBOSE_LINE.match(line)
    assert match and match["name"] == "GaussianBernoulliRBM"
    assert match["score"] == "-free energy"
    assert float(match["value"]) == pytest.approx(rbm.score_samples(X).mean(), abs=0.006)
