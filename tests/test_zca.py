"""ZCAWhitener: the whitening of report Appendix A / §2.4, fitted in chunks."""

import tracemalloc
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import linalg
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from skdbn import ZCAWhitener

DTYPES = [np.float32, np.float64]
# Agreement expected of the whitened statistics: float32 stores W to ~1e-7
# relative, and the test data have a condition number of about 1e3.
RTOL = {np.float32: 1e-4, np.float64: 1e-10}


def correlated_data(n=600, d=10, dtype=np.float64, seed=0):
    """Rows with a decaying spectrum (variances from 100 to 0.1) and an offset."""
    rng = np.random.default_rng(seed)
    rotation = linalg.qr(rng.normal(size=(d, d)))[0]
    scales = np.logspace(1, -0.5, d)
    return (rng.normal(size=(n, d)) * scales @ rotation.T + 5).astype(dtype)


def covariance(X):
    return np.cov(X.astype(np.float64), rowvar=False)


def eigen(X):
    """Reference eigenvalues (descending) and eigenvectors of the covariance."""
    values, vectors = np.linalg.eigh(covariance(X))
    return values[::-1], vectors[:, ::-1]


@pytest.mark.parametrize("dtype", DTYPES)
def test_whitening_is_the_inverse_square_root_of_the_covariance(dtype):
    X = correlated_data(dtype=dtype)
    zca = ZCAWhitener().fit(X)
    Xc = X.astype(np.float64) - X.astype(np.float64).mean(axis=0)
    # W = sqrt(n - 1) (Xc^T Xc)^(-1/2), by a matrix square root, not an eigh.
    expected = np.sqrt(len(X) - 1) * linalg.inv(linalg.sqrtm(Xc.T @ Xc))
    assert_allclose(zca.whitening_, expected, rtol=RTOL[dtype], atol=RTOL[dtype] * 1e-2)
    assert_allclose(zca.mean_, X.mean(axis=0, dtype=np.float64), rtol=RTOL[dtype])
    assert_allclose(zca.explained_variance_, eigen(X)[0], rtol=RTOL[dtype])
    assert np.all(np.diff(zca.explained_variance_) <= 0)
    assert zca.n_components_ == X.shape[1]
    assert zca.n_samples_seen_ == len(X)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_drop", [0, 3])
def test_whitened_covariance_is_identity_on_kept_directions(dtype, n_drop):
    X = correlated_data(dtype=dtype)
    zca = ZCAWhitener(n_drop=n_drop).fit(X)
    _, vectors = eigen(X)
    kept = vectors[:, : X.shape[1] - n_drop]
    # Identity on the kept principal directions, zero on the deleted ones.
    assert_allclose(covariance(zca.transform(X)), kept @ kept.T, atol=RTOL[dtype])
    assert_allclose(zca.whitening_ @ vectors[:, X.shape[1] - n_drop :], 0, atol=RTOL[dtype])
    assert zca.n_components_ == X.shape[1] - n_drop


@pytest.mark.parametrize("dtype", DTYPES)
def test_whitening_and_dewhitening_are_symmetric(dtype):
    zca = ZCAWhitener(n_drop=2).fit(correlated_data(dtype=dtype))
    assert_array_equal(zca.whitening_, zca.whitening_.T)
    assert_array_equal(zca.dewhitening_, zca.dewhitening_.T)


@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_is_exact_without_deletion(dtype):
    X = correlated_data(dtype=dtype)
    zca = ZCAWhitener().fit(X)
    assert_allclose(zca.inverse_transform(zca.transform(X)), X, rtol=RTOL[dtype], atol=RTOL[dtype])
    assert_allclose(zca.dewhitening_ @ zca.whitening_, np.eye(X.shape[1]), atol=RTOL[dtype])
    X_new = correlated_data(n=50, dtype=dtype, seed=1)
    assert_allclose(zca.inverse_transform(zca.transform(X_new)), X_new, rtol=RTOL[dtype],
                    atol=RTOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_is_exact_up_to_the_deleted_directions(dtype):
    X = correlated_data(dtype=dtype)
    n_drop = 4
    zca = ZCAWhitener(n_drop=n_drop).fit(X)
    _, vectors = eigen(X)
    deleted = vectors[:, X.shape[1] - n_drop :]
    X_new = correlated_data(n=50, dtype=dtype, seed=1).astype(np.float64)
    expected = X_new - (X_new - zca.mean_) @ deleted @ deleted.T
    restored = zca.inverse_transform(zca.transform(X_new))
    assert_allclose(restored, expected, rtol=RTOL[dtype], atol=RTOL[dtype])
    # The deleted components are really lost: restoring is not the identity.
    assert np.abs(restored - X_new).max() > 100 * RTOL[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
def test_epsilon_is_added_to_the_eigenvalues(dtype):
    X = correlated_data(dtype=dtype)
    epsilon = 0.5
    zca = ZCAWhitener(epsilon=epsilon).fit(X)
    values, vectors = eigen(X)
    expected = vectors @ np.diag(values / (values + epsilon)) @ vectors.T
    assert_allclose(covariance(zca.transform(X)), expected, atol=RTOL[dtype])
    assert_allclose(zca.inverse_transform(zca.transform(X)), X, rtol=RTOL[dtype], atol=RTOL[dtype])


# ---------------------------------------------------------------------------
# Rank-deficient data
# ---------------------------------------------------------------------------


def rank_deficient_data(dtype):
    """12 features of rank 8: a constant column and three linear combinations."""
    X = correlated_data(n=300, d=8, dtype=np.float64)
    X = np.hstack([X, X[:, :2] - X[:, 2:4], X[:, [5]] * 2, np.full((300, 1), 3.0)])
    return X.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rank_deficient_data_deletes_null_directions_with_a_warning(dtype):
    X = rank_deficient_data(dtype)
    with pytest.warns(UserWarning, match="rank 8 < n_features - n_drop = 12"):
        zca = ZCAWhitener().fit(X)
    assert zca.n_components_ == 8
    assert np.all(np.isfinite(zca.whitening_))
    # Identity on the span of the data, zero on the null directions.
    _, vectors = eigen(X)
    span = vectors[:, :8]
    assert_allclose(covariance(zca.transform(X)), span @ span.T, atol=RTOL[dtype])
    # The training data lie in the span, so they are restored exactly.
    assert_allclose(zca.inverse_transform(zca.transform(X)), X, rtol=RTOL[dtype], atol=1e-4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fewer_samples_than_features_is_rank_deficient(dtype):
    X = correlated_data(n=5, d=10, dtype=dtype)
    with pytest.warns(UserWarning, match="rank 4"):
        zca = ZCAWhitener().fit(X)
    assert zca.n_components_ == 4


@pytest.mark.parametrize("dtype", DTYPES)
def test_rank_deficiency_is_silent_when_n_drop_or_epsilon_covers_it(dtype):
    X = rank_deficient_data(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dropped = ZCAWhitener(n_drop=5).fit(X)
        regularised = ZCAWhitener(epsilon=1e-2).fit(X)
    assert dropped.n_components_ == 7
    # With epsilon > 0 every direction is kept: W is invertible, even off
    # the span of the training data.
    assert regularised.n_components_ == 12
    assert np.all(np.isfinite(regularised.whitening_))
    X_new = np.random.default_rng(1).normal(size=(20, 12)).astype(dtype)
    restored = regularised.inverse_transform(regularised.transform(X_new))
    assert_allclose(restored, X_new, atol=1e3 * RTOL[dtype])


def test_constant_data_keeps_nothing():
    with pytest.warns(UserWarning, match="rank 0"):
        zca = ZCAWhitener().fit(np.ones((10, 3)))
    assert zca.n_components_ == 0
    assert_array_equal(zca.transform(np.ones((2, 3))), 0)
    assert_array_equal(zca.inverse_transform(np.zeros((2, 3))), 1)


# ---------------------------------------------------------------------------
# Streaming
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_partial_fit_on_memmap_chunks_equals_fit(dtype, tmp_path):
    X = correlated_data(n=1000, dtype=dtype)
    path = tmp_path / "X.npy"
    np.save(path, X)
    X_map = np.load(path, mmap_mode="r")
    full = ZCAWhitener(n_drop=2).fit(X)
    streamed = ZCAWhitener(n_drop=2)
    # Uneven chunks, including a single row.
    for start, stop in [(0, 1), (1, 300), (300, 301), (301, 777), (777, 1000)]:
        streamed.partial_fit(X_map[start:stop])
    assert streamed.n_samples_seen_ == full.n_samples_seen_ == 1000
    tight = 1e-6 if dtype == np.float32 else 1e-12
    for name in ("whitening_", "dewhitening_", "mean_", "explained_variance_"):
        assert getattr(streamed, name).dtype == dtype
        assert_allclose(getattr(streamed, name), getattr(full, name), rtol=tight, atol=tight)
    # fit itself reads the data in chunks of batch_size rows.
    chunked = ZCAWhitener(n_drop=2, batch_size=64).fit(X_map)
    assert_allclose(chunked.whitening_, full.whitening_, rtol=tight, atol=tight)


def test_chunked_covariance_is_stable_under_a_large_offset():
    # Raw sums of squares would lose the unit-scale covariance of data that
    # sit at 1e6 (cancellation of 1e12-sized terms); merging centred chunks
    # by Chan et al.'s update does not.
    X = correlated_data(n=1000)
    reference = ZCAWhitener().fit(X)
    shifted = ZCAWhitener(batch_size=100).fit(X + 1e6)
    assert_allclose(shifted.whitening_, reference.whitening_, rtol=1e-7, atol=1e-9)
    assert_allclose(shifted.mean_, reference.mean_ + 1e6, rtol=1e-14)


def test_fit_on_memmap_holds_one_chunk_and_the_covariance(tmp_path):
    n, d = 40_000, 40  # 6.4 MB of float32
    rng = np.random.default_rng(0)
    X = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float32,
                                  shape=(n, d))
    X[:] = rng.normal(size=(n, d))
    X.flush()
    X = np.load(tmp_path / "X.npy", mmap_mode="r")
    zca = ZCAWhitener(batch_size=1000)
    tracemalloc.start()
    zca.fit(X)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    chunk_and_matrices = 1000 * d * 8 + 10 * d * d * 8
    assert peak < chunk_and_matrices + 200_000, peak
    assert peak < X.nbytes / 10


@pytest.mark.parametrize("dtype", DTYPES)
def test_transform_in_chunks_equals_one_product(dtype):
    X = correlated_data(dtype=dtype)
    zca = ZCAWhitener(batch_size=7).fit(X)
    expected = (X - zca.mean_) @ zca.whitening_
    assert_allclose(zca.transform(X), expected, rtol=RTOL[dtype], atol=RTOL[dtype])


# ---------------------------------------------------------------------------
# Dtypes and input handling
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_is_preserved(dtype):
    X = correlated_data(dtype=dtype)
    zca = ZCAWhitener(n_drop=1).fit(X)
    for name in ("whitening_", "dewhitening_", "mean_", "explained_variance_"):
        assert getattr(zca, name).dtype == dtype
    assert zca.transform(X).dtype == dtype
    assert zca.inverse_transform(X).dtype == dtype


def test_float32_and_float64_agree():
    X = correlated_data()
    z64 = ZCAWhitener(n_drop=2).fit(X)
    z32 = ZCAWhitener(n_drop=2).fit(X.astype(np.float32))
    assert_allclose(z32.whitening_, z64.whitening_, rtol=1e-4, atol=1e-6)
    assert_allclose(z32.transform(X.astype(np.float32)), z64.transform(X), atol=1e-4)


def test_integer_input_is_whitened_in_float64():
    X = np.round(correlated_data() * 10).astype(np.int64)
    zca = ZCAWhitener().fit(X)
    assert zca.whitening_.dtype == np.float64
    assert_allclose(covariance(zca.transform(X)), np.eye(10), atol=1e-10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_X_is_not_modified(dtype):
    X = correlated_data(dtype=dtype)
    X_before = X.copy()
    zca = ZCAWhitener(n_drop=1, batch_size=100).fit(X)
    zca.partial_fit(X)
    zca.transform(X)
    zca.inverse_transform(X)
    assert_array_equal(X, X_before)


def test_bad_input():
    X = correlated_data()
    with pytest.raises(ValueError, match="NaN"):
        ZCAWhitener().fit(np.where(X > 6, np.nan, X))
    with pytest.raises(ValueError, match="n_drop=10 must be smaller than n_features=10"):
        ZCAWhitener(n_drop=10).fit(X)
    with pytest.raises(InvalidParameterError):
        ZCAWhitener(n_drop=-1).fit(X)
    with pytest.raises(InvalidParameterError):
        ZCAWhitener(epsilon=-1.0).fit(X)
    with pytest.raises(ValueError, match="minimum of 2 is required"):
        ZCAWhitener().fit(X[:1])
    with pytest.raises(NotFittedError):
        ZCAWhitener().transform(X)
    zca = ZCAWhitener().fit(X)
    with pytest.raises(ValueError, match="n_drop=10 must be smaller"):
        zca.set_params(n_drop=10).partial_fit(X)
    zca.set_params(n_drop=0)
    for method in (zca.transform, zca.inverse_transform, zca.partial_fit):
        with pytest.raises(ValueError, match="10 features"):
            method(X[:, :9])
