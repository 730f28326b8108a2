"""merge_patch_rbms: one RBM over whole images from patch RBMs (report §2.5.1)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.image import extract_patches_2d

from skdbn import BernoulliRBM, GaussianBernoulliRBM, merge_patch_rbms

DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 1e-5, np.float64: 1e-12}


def grid(image_shape, patch_shape, stride):
    """Top-left corners of the tiling, row by row."""
    (height, width), (ph, pw), (sy, sx) = image_shape[:2], patch_shape, stride
    return [(y, x) for y in range(0, height - ph + 1, sy) for x in range(0, width - pw + 1, sx)]


def tiled_patches(images, patch_shape, stride):
    """Flattened patches at each corner of the tiling, by extract_patches_2d."""
    width = images.shape[2]
    n_cols = width - patch_shape[1] + 1  # extract_patches_2d's positions per row
    every = np.stack([extract_patches_2d(image, patch_shape) for image in images])
    return [
        every[:, y * n_cols + x].reshape(len(images), -1)
        for y, x in grid(images.shape[1:], patch_shape, stride)
    ]


def subsample(images, patch_shape):
    n, height, width, channels = images.shape
    ph, pw = patch_shape
    blocks = images.reshape(n, ph, height // ph, pw, width // pw, channels)
    return blocks.mean(axis=(2, 4)).reshape(n, -1)


def small_rbm(X, n_components, seed, **params):
    """A fitted GaussianBernoulliRBM with distinct biases and standard deviations.

    Random biases and sigmas (not learned ones) make every averaging and
    rescaling of the merge visible in the tests.
    """
    rng = np.random.default_rng(seed)
    d = X.shape[1]
    params.setdefault("sigma", rng.uniform(0.5, 2.0, d))
    rbm = GaussianBernoulliRBM(n_components, n_iter=1, batch_size=10, random_state=seed,
                               **params).fit(X)
    rbm.components_[:] = rng.normal(0, 0.5, rbm.components_.shape)
    rbm.intercept_visible_[:] = rng.normal(0, 1, d)
    rbm.intercept_hidden_[:] = rng.normal(0, 1, n_components)
    return rbm


def images_and_rbms(image_shape, patch_shape, stride, dtype, subsampled=False, n=20, **params):
    rng = np.random.default_rng(0)
    images = rng.normal(size=(n, *image_shape)).astype(dtype)
    patches = tiled_patches(images, patch_shape, stride)
    rbms = [small_rbm(p, 3, seed=k, **params) for k, p in enumerate(patches)]
    sub = None
    if subsampled:
        sub = small_rbm(subsample(images, patch_shape), 5, seed=99, **params)
    return images, patches, rbms, sub


# ---------------------------------------------------------------------------
# The merged RBM computes what the small RBMs computed
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "image_shape, patch_shape, stride",
    [((12, 12, 3), (4, 4), (4, 4)), ((12, 12, 3), (4, 4), (2, 2)), ((10, 7), (4, 3), (3, 2))],
)
def test_hidden_activations_equal_the_patch_rbms(dtype, image_shape, patch_shape, stride):
    images, patches, rbms, _ = images_and_rbms(image_shape, patch_shape, stride, dtype)
    merged = merge_patch_rbms(rbms, image_shape, patch_shape=patch_shape, stride=stride)
    h = merged.transform(images.reshape(len(images), -1))
    assert h.dtype == dtype
    for k, (rbm, patch) in enumerate(zip(rbms, patches)):
        expected = rbm.transform(patch)
        assert_allclose(h[:, 3 * k : 3 * k + 3], expected, rtol=RTOL[dtype], atol=RTOL[dtype])
        # A test that can fail: the activations do depend on the patch.
        assert np.ptp(expected) > 0.5


@pytest.mark.parametrize("dtype", DTYPES)
def test_subsampled_rbm_units_see_the_block_averaged_image(dtype):
    image_shape, patch_shape = (16, 16, 3), (4, 4)
    images, patches, rbms, sub = images_and_rbms(image_shape, patch_shape, (4, 4), dtype,
                                                 subsampled=True)
    merged = merge_patch_rbms(rbms, image_shape, patch_shape=patch_shape, subsampled_rbm=sub)
    assert merged.n_components == 16 * 3 + 5
    h = merged.transform(images.reshape(len(images), -1))
    expected = sub.transform(subsample(images, patch_shape))
    assert_allclose(h[:, 48:], expected, rtol=RTOL[dtype], atol=RTOL[dtype])
    assert_allclose(h[:, :3], rbms[0].transform(patches[0]), rtol=RTOL[dtype], atol=RTOL[dtype])


def test_weights_copied_zero_elsewhere_and_subsampled_duplicated_over_16():
    # Equal standard deviations, as in the report: weights are copied as is
    # and each subsampled weight becomes 16 weights of w / 16 (Fig. 2.7).
    image_shape, patch_shape, stride = (16, 16, 3), (4, 4), (4, 4)
    _, _, rbms, sub = images_and_rbms(image_shape, patch_shape, stride, np.float64,
                                      subsampled=True, sigma=1.0)
    merged = merge_patch_rbms(rbms, image_shape, patch_shape=patch_shape, subsampled_rbm=sub)
    W = merged.components_.reshape(-1, *image_shape)
    for k, (y, x) in enumerate(grid(image_shape, patch_shape, stride)):
        rows = W[3 * k : 3 * k + 3]
        assert_array_equal(rows[:, y : y + 4, x : x + 4], rbms[k].components_.reshape(3, 4, 4, 3))
        outside = rows.copy()
        outside[:, y : y + 4, x : x + 4] = 0
        assert_array_equal(outside, 0)
    small = sub.components_.reshape(5, 4, 4, 3)
    for y in range(16):
        for x in range(16):
            assert_array_equal(W[48:, y, x], small[:, y // 4, x // 4] / 16)
    assert_array_equal(merged.intercept_hidden_,
                       np.concatenate([r.intercept_hidden_ for r in [*rbms, sub]]))
    assert_array_equal(merged.sigma_, 1.0)


@pytest.mark.parametrize("with_subsampled", [False, True])
def test_visible_biases_and_sigma_are_averaged_over_the_covering_rbms(with_subsampled):
    # The report's geometry: 32x32 colour images, 25 8x8 patches at stride 6
    # (pixels covered by 1, 2 or 4 patches) and the subsampled 26th patch.
    image_shape, patch_shape, stride = (32, 32, 3), (8, 8), (6, 6)
    _, _, rbms, sub = images_and_rbms(image_shape, patch_shape, stride, np.float64,
                                      subsampled=with_subsampled, n=12)
    merged = merge_patch_rbms(rbms, image_shape, patch_shape=patch_shape, stride=stride,
                              subsampled_rbm=sub)
    assert merged.components_.shape == (3 * 25 + 5 * with_subsampled, 32 * 32 * 3)
    bias = merged.intercept_visible_.reshape(image_shape)
    sigma = merged.sigma_.reshape(image_shape)
    corners = grid(image_shape, patch_shape, stride)
    for y in range(32):
        for x in range(32):
            covering = [(k, y - cy, x - cx) for k, (cy, cx) in enumerate(corners)
                        if 0 <= y - cy < 8 and 0 <= x - cx < 8]
            assert len(covering) in (1, 2, 4)
            biases = [rbms[k].intercept_visible_.reshape(8, 8, 3)[i, j] for k, i, j in covering]
            sigmas = [rbms[k].sigma_.reshape(8, 8, 3)[i, j] for k, i, j in covering]
            if with_subsampled:
                biases.append(sub.intercept_visible_.reshape(8, 8, 3)[y // 4, x // 4])
            assert_allclose(bias[y, x], np.mean(biases, axis=0), rtol=1e-12)
            assert_allclose(sigma[y, x], np.mean(sigmas, axis=0), rtol=1e-12)


# ---------------------------------------------------------------------------
# Continuing to train
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sigma", [1.0, "learn"])
def test_merged_rbm_continues_training_with_partial_fit(dtype, sigma):
    image_shape, patch_shape = (8, 8, 3), (4, 4)
    images, _, rbms, sub = images_and_rbms(image_shape, patch_shape, (2, 2), dtype,
                                           subsampled=True, sigma=sigma, persistent=True)
    merged = merge_patch_rbms(rbms, image_shape, patch_shape=patch_shape, stride=2,
                              subsampled_rbm=sub, learning_rate=1e-3, random_state=0)
    assert merged.learning_rate == 1e-3 and merged.persistent
    assert merged.n_components == 9 * 3 + 5
    assert merged.sigma == "learn" if sigma == "learn" else merged.sigma.shape == (192,)
    assert merged.n_iter_ == 0 and merged.reconstruction_errors_ == []
    X = images.reshape(len(images), -1)
    before = merged.components_.copy()
    sigma_before = merged.sigma_.copy()
    merged.partial_fit(X)
    merged.partial_fit(X)
    assert merged.n_iter_ == 2 and len(merged.reconstruction_errors_) == 2
    for attr in ("components_", "intercept_visible_", "intercept_hidden_", "sigma_"):
        assert getattr(merged, attr).dtype == dtype
        assert np.all(np.isfinite(getattr(merged, attr)))
    assert np.abs(merged.components_ - before).max() > 0
    assert (np.abs(merged.sigma_ - sigma_before).max() > 0) == (sigma == "learn")
    assert merged.reconstruct(X).shape == X.shape
    assert merged.h_samples_.shape == (10, merged.n_components)


def test_merge_does_not_modify_the_small_rbms():
    _, _, rbms, sub = images_and_rbms((8, 8, 3), (4, 4), (4, 4), np.float64, subsampled=True)
    before = [(r.components_.copy(), r.intercept_visible_.copy(), r.sigma_.copy())
              for r in [*rbms, sub]]
    merge_patch_rbms(rbms, (8, 8, 3), patch_shape=(4, 4), subsampled_rbm=sub)
    for r, (W, b, s) in zip([*rbms, sub], before):
        assert_array_equal(r.components_, W)
        assert_array_equal(r.intercept_visible_, b)
        assert_array_equal(r.sigma_, s)


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


def test_bad_input():
    image_shape, patch_shape = (8, 8, 3), (4, 4)
    _, _, rbms, _ = images_and_rbms(image_shape, patch_shape, (4, 4), np.float64)
    with pytest.raises(ValueError, match="has 4 patches, but 3 RBMs were given"):
        merge_patch_rbms(rbms[:3], image_shape, patch_shape=patch_shape)
    with pytest.raises(ValueError, match="do not cover"):
        merge_patch_rbms(rbms, image_shape, patch_shape=patch_shape, stride=3)
    with pytest.raises(ValueError, match="do not cover"):
        merge_patch_rbms(rbms, image_shape, patch_shape=(3, 3), stride=4)
    with pytest.raises(ValueError, match="48 visible units; the patches have 16"):
        merge_patch_rbms(rbms, (8, 8), patch_shape=patch_shape)
    with pytest.raises(TypeError, match="BernoulliRBM, not a GaussianBernoulliRBM"):
        merge_patch_rbms([*rbms[:3], BernoulliRBM(2)], image_shape, patch_shape=patch_shape)
    with pytest.raises(NotFittedError):
        merge_patch_rbms([*rbms[:3], GaussianBernoulliRBM(2)], image_shape,
                         patch_shape=patch_shape)
    with pytest.raises(TypeError, match="n_components of the merged RBM is set by the merge"):
        merge_patch_rbms(rbms, image_shape, patch_shape=patch_shape, n_components=5)
    with pytest.raises(ValueError, match="multiples of the patch shape"):
        merge_patch_rbms(rbms[:2], (6, 4, 3), patch_shape=patch_shape, stride=2,
                         subsampled_rbm=rbms[0])
