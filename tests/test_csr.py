"""Sparse input (skdbn/_csr.py and the kernels' Columns phases): a CSR matrix
trains and infers like its dense copy, at the cost of its nonzeros, and is
never densified beyond a minibatch."""

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from threadpoolctl import threadpool_limits

from kernel_helpers import STEP_DEFAULTS
from skdbn import BernoulliRBM, DBNTransformer, GaussianBernoulliRBM
from skdbn._csr import columns
from skdbn._kernels import _cd, _inference
from skdbn._state import RBMState

# float64 sums of the same terms in another order; float32 additionally
# rounds each update (weights of order 0.1 after a few epochs).
TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}
CASES = {
    "cd1": dict(),
    "pcd": dict(persistent=True),
    "cd2_momentum_decay": dict(cd_k=2, momentum=0.5, weight_decay=1e-3),
    "sampled_statistics": dict(sampled_statistics=True),
    "sparsity": dict(sparsity_cost=0.1, sparsity_target=0.05),
    "mean_field": dict(sample_visible=False, persistent=True),
    "nrelu": dict(hidden_units="nrelu", learning_rate=0.01),
    "centering": dict(centering=True, persistent=True),
    "softmax_groups": dict(softmax_groups=[[0, 4], [10, 16]]),
}


def sparse_data(n=300, V=200, density=0.04, seed=0, dtype=np.float64):
    X = (np.random.RandomState(seed).uniform(size=(n, V)) < density).astype(dtype)
    X[:, 0:4] = np.eye(4)[np.arange(n) % 4]  # one-hot in the softmax groups
    X[:, 10:16] = np.eye(6)[np.arange(n) % 6]
    return X


class GuardedCSR(sp.csr_matrix):
    """A CSR matrix that refuses to become dense beyond ``limit`` rows."""

    limit = 0

    def toarray(self, *args, **kwargs):
        assert self.shape[0] <= self.limit, f"densified {self.shape[0]} rows"
        return super().toarray(*args, **kwargs)

    def __getitem__(self, key):
        out = super().__getitem__(key)
        if sp.issparse(out):
            out = GuardedCSR(out)
        return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", list(CASES))
def test_sparse_fit_matches_dense(dtype, case):
    X = sparse_data(dtype=dtype)
    params = dict(n_components=20, n_iter=3, batch_size=50, random_state=0, n_jobs=2,
                  **CASES[case])
    dense = BernoulliRBM(**params).fit(X)
    sparse = BernoulliRBM(**params).fit(sp.csr_matrix(X))
    for name in ("components_", "intercept_visible_", "intercept_hidden_"):
        assert_allclose(getattr(sparse, name), getattr(dense, name), err_msg=name,
                        **TOL[dtype])
    if CASES[case].get("hidden_units") != "nrelu":
        assert_array_equal(sparse.h_samples_, dense.h_samples_)
    assert_allclose(sparse.reconstruction_errors_, dense.reconstruction_errors_, rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_inference_matches_dense(dtype):
    X = sparse_data(dtype=dtype)
    Xs = sp.csr_matrix(X)
    rbm = BernoulliRBM(n_components=20, n_iter=3, random_state=0).fit(X)
    tol = TOL[dtype]
    assert_allclose(rbm.transform(Xs), rbm.transform(X), **tol)
    # A float32 free energy sums n_components terms of up to ~30.
    assert_allclose(rbm.free_energy(Xs), rbm.free_energy(X),
                    **(dict(rtol=1e-5, atol=2e-5) if dtype is np.float32 else dict(rtol=1e-12)))
    assert_allclose(rbm.reconstruct(Xs), rbm.reconstruct(X), **tol)
    # The pseudo-likelihood multiplies a free-energy difference by n_features.
    assert_allclose(rbm.score_samples(Xs), rbm.score_samples(X),
                    rtol=1e-4 if dtype is np.float32 else 1e-10)
    twin = BernoulliRBM(n_components=20, n_iter=3, random_state=0).fit(X)
    assert_array_equal(rbm.gibbs(Xs), twin.gibbs(X))


def test_sparse_gaussian_visibles_match_dense():
    X = sparse_data() * np.random.RandomState(1).uniform(0.5, 2, 200)
    sigma = np.linspace(0.5, 2, 200)
    params = dict(n_components=10, n_iter=3, random_state=0, learning_rate=0.01, sigma=sigma)
    dense = GaussianBernoulliRBM(**params).fit(X)
    sparse = GaussianBernoulliRBM(**params).fit(sp.csr_matrix(X))
    assert_allclose(sparse.components_, dense.components_, **TOL[np.float64])
    assert_allclose(dense.score_samples(sp.csr_matrix(X)), dense.score_samples(X),
                    rtol=1e-12)
    assert_allclose(dense.transform(sp.csr_matrix(X)), dense.transform(X), rtol=1e-12)


def test_sparse_input_is_never_densified():
    X = GuardedCSR(sparse_data())
    GuardedCSR.limit = 25  # one minibatch: the saturation check reads one
    rbm = BernoulliRBM(n_components=10, n_iter=2, batch_size=25, random_state=0).fit(X)
    rbm.partial_fit(X)
    rbm.transform(X)
    rbm.score_samples(X)
    rbm.free_energy(X)
    rbm.gibbs(X)
    pcd = BernoulliRBM(n_components=10, n_iter=1, batch_size=25, persistent=True,
                       random_state=0).fit(X)
    assert pcd.reconstruction_errors_[0] > 0
    DBNTransformer((10, 5), n_iter=1, batch_size=25, random_state=0).fit(X).transform(X)


def test_negative_visibles_go_sparse_when_the_model_is_sparse():
    # Biases far below zero: the sampled negative visibles are nearly all
    # off, so the kernel keeps them as Columns; the step equals the dense one.
    rng = np.random.RandomState(0)
    m, V, H = 40, 300, 12
    X = (rng.uniform(size=(m, V)) < 0.02).astype(np.float64)
    W = rng.normal(0, 0.01, (H, V))
    b = np.full(V, -6.0)
    results = []
    for data in (None, columns(sp.csr_matrix(X), np.float64)):
        state = RBMState(W.copy(), b.copy(), np.zeros(H), np.zeros(0),
                         np.zeros((m, H), order="F"), seed=0)
        vis, hid = np.zeros((2 * m, V)), np.zeros((H, 2 * m))
        if data is None:
            vis[:m] = X
        with threadpool_limits(limits=1, user_api="blas"):
            err = _cd.cd_step(state, (vis, hid, np.zeros((0, 0))), m,
                              {**STEP_DEFAULTS, "key": 7, "n_threads": 2}, None, data)
        assert 0 < np.count_nonzero(vis[m:]) < m * V / 8  # the sparse case ran
        results.append((err, state.components, state.intercept_visible, vis[m:].copy()))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-12)
    for a, b in zip(results[0][1:], results[1][1:]):
        assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_malformed_columns_are_refused():
    W, c = np.zeros((3, 5)), np.zeros(3)
    out = np.empty((2, 3))
    good = columns(sp.csr_matrix(np.eye(2, 5)), np.float64)
    _inference.hidden_given_visible(good, W, c, out)
    col, start, row, val = good
    for bad in [(col, start, row + 5, val), (np.array([0, 9]), start, row, val),
                (col[::-1].copy(), start, row, val), (col, start[:-1].copy(), row, val)]:
        with pytest.raises(ValueError, match="sparse minibatch"):
            _inference.hidden_given_visible(bad, W, c, out)


def test_count_vectorizer_pipeline():
    # CountVectorizer's CSR goes in as it is and gives the model of its
    # dense copy (float64, so to summation order).
    docs = ["the cat sat on the mat", "the dog sat on the log", "cats and dogs",
            "a mat and a log", "the cat and the dog"] * 20
    y = np.array([0, 1, 2, 3, 4] * 20)
    vectorizer = CountVectorizer(binary=True, dtype=np.float64)
    assert sp.issparse(vectorizer.fit_transform(docs))
    rbm = BernoulliRBM(n_components=16, n_iter=30, learning_rate=0.1, random_state=0)
    pipe = make_pipeline(vectorizer, rbm, LogisticRegression(max_iter=1000)).fit(docs, y)
    dense = make_pipeline(BernoulliRBM(n_components=16, n_iter=30, learning_rate=0.1,
                                       random_state=0),
                          LogisticRegression(max_iter=1000))
    dense.fit(vectorizer.transform(docs).toarray(), y)
    assert_allclose(pipe[1].components_, dense[0].components_, rtol=1e-10, atol=1e-12)
    assert pipe.score(docs, y) == dense.score(vectorizer.transform(docs).toarray(), y)
    assert pipe.score(docs, y) >= 0.8  # chance: 0.2
