"""One RBM over whole images from RBMs trained on their patches (report §2.5.1)."""

# SPDX-License-Identifier: BSD-3-Clause

from numbers import Integral

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._rbm import GaussianBernoulliRBM
from ._state import RBMState
from ._streams import draw_seed
from .utils._compat import Interval, _extract_patches, validate_params


@validate_params(
    {
        "rbms": [list, tuple],
        "image_shape": [tuple, list],
        "patch_shape": [tuple, list],
        "stride": [Interval(Integral, 1, None, closed="left"), tuple, list, None],
        "subsampled_rbm": [GaussianBernoulliRBM, None],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def merge_patch_rbms(
    rbms,
    image_shape,
    *,
    patch_shape=(8, 8),
    stride=None,
    subsampled_rbm=None,
    random_state=None,
    **params,
):
    """Merge RBMs trained on image patches into one RBM over the whole image.

    Implements the initialisation of report §2.5.1 (Fig. 2.7). The image is
    tiled by patches of ``patch_shape`` placed every ``stride`` pixels; one
    :class:`GaussianBernoulliRBM` was trained on each patch (and optionally
    one on the whole image subsampled to ``patch_shape``). The merged RBM
    has all their hidden units, connected to every pixel:

    - the hidden units of patch ``k`` keep their weights to the pixels of
      that patch and their biases; their weights to the other pixels are 0;
    - each weight ``w`` of the subsampled RBM, from a subsampled pixel that
      averages an ``fy x fx`` block of the image, is duplicated onto the
      ``fy * fx`` pixels of the block and divided by ``fy * fx`` (16 for the
      report's 32x32 images and 8x8 patches);
    - the bias of each visible unit is the average of the biases it has in
      the RBMs that cover it (the subsampled RBM covers every pixel), and
      its standard deviation the average over the patch RBMs that cover it
      (a subsampled pixel, a block mean, has a smaller spread than a pixel).

    Weights act on ``v / sigma``, so each copied weight is also multiplied
    by ``sigma_merged / sigma_small`` of its pixel: then every hidden unit
    receives exactly the input it had in its small RBM (on the patch, or on
    the block-averaged image), whatever the standard deviations. With equal
    standard deviations, as in the report, the weights are copied as they are.

    The merged RBM is fitted: continue training it on whole images with
    ``partial_fit`` (each call is one epoch), which keeps this
    initialisation; ``fit`` would start again from random weights.

    **Pixel layout.** An image of ``image_shape = (height, width, channels)``
    (or ``(height, width)`` for one channel) is a row of length
    ``height * width * channels`` in C order: ``images.reshape(n_samples,
    -1)`` for an array of shape ``(n_samples, height, width, channels)``, the
    layout of :func:`sklearn.feature_extraction.image.extract_patches_2d`.
    (CIFAR-10 rows are channel-first: use ``X.reshape(-1, 3, 32,
    32).transpose(0, 2, 3, 1)``.) Patches are numbered row by row: patch
    ``k = i * n_cols + j`` is ``images[:, i * sy : i * sy + ph, j * sx : j *
    sx + pw].reshape(n_samples, -1)``, where ``(sy, sx)`` is the stride and
    ``(ph, pw)`` the patch shape; ``rbms[k]`` must have been trained on it.
    The subsampled image is the block mean ``images.reshape(n_samples, ph,
    fy, pw, fx, channels).mean(axis=(2, 4)).reshape(n_samples, -1)`` with
    ``fy = height // ph``, ``fx = width // pw``.

    Parameters
    ----------
    rbms : list of GaussianBernoulliRBM
        Fitted RBMs, one per patch of the tiling, in the order above.
    image_shape : tuple of int
        ``(height, width)`` or ``(height, width, channels)``.
    patch_shape : tuple of int, default=(8, 8)
        ``(patch_height, patch_width)``.
    stride : int or tuple of int, default=None
        Distance between the top-left corners of neighbouring patches,
        ``(row_stride, col_stride)`` or one int for both. None means
        ``patch_shape`` (non-overlapping patches). The patches must cover the
        image: the report tiles 32x32 images with 8x8 patches at stride 6
        (25 overlapping patches).
    subsampled_rbm : GaussianBernoulliRBM, default=None
        Fitted RBM trained on the whole images subsampled (block-averaged)
        to ``patch_shape``; its hidden units come last in the merged RBM.
        ``height`` and ``width`` must be multiples of the patch shape.
    random_state : int, RandomState instance or None, default=None
        Seeds the merged RBM's random numbers (its sampling stream); when
        None, the ``random_state`` of ``rbms[0]`` is used.
    **params
        Other constructor parameters of the merged RBM (e.g.
        ``learning_rate``, ``batch_size``); those not given are copied from
        ``rbms[0]``. ``n_components`` and ``sigma`` are set by the merge.

    Returns
    -------
    merged : GaussianBernoulliRBM
        Fitted RBM over ``height * width * channels`` visible units with the
        hidden units of ``rbms`` (in order) followed by those of
        ``subsampled_rbm``. ``sigma`` is ``"learn"`` if ``rbms[0]`` learns
        its standard deviations, otherwise the merged array. ``n_iter_`` is 0,
        the momentum increments are zero and the negative chains continue
        from the small RBMs' chains.

    See Also
    --------
    GaussianBernoulliRBM : The RBM trained on each patch and on the image.
    sklearn.feature_extraction.image.extract_patches_2d : Patches of an image
        in the same pixel layout.

    References
    ----------
    .. [1] Krizhevsky, A. Learning Multiple Layers of Features from Tiny
       Images. Technical report, University of Toronto, 2009, §2.5.

    Examples
    --------
    >>> import numpy as np
    >>> from skdbn import GaussianBernoulliRBM, merge_patch_rbms
    >>> images = np.random.RandomState(0).normal(size=(50, 16, 16, 3))
    >>> patches = [images[:, y:y + 8, x:x + 8].reshape(50, -1)
    ...            for y in (0, 8) for x in (0, 8)]
    >>> rbms = [GaussianBernoulliRBM(n_components=4, n_iter=1, random_state=0).fit(p)
    ...         for p in patches]
    >>> merged = merge_patch_rbms(rbms, image_shape=(16, 16, 3))
    >>> merged.components_.shape
    (16, 768)
    >>> X = images.reshape(50, -1)
    >>> np.allclose(merged.transform(X)[:, 4:8], rbms[1].transform(patches[1]))
    True
    >>> merged = merged.partial_fit(X)  # one epoch on whole images
    """
    for name in ("n_components", "sigma"):
        if name in params:
            raise TypeError(f"{name} of the merged RBM is set by the merge, not by a parameter.")
    image_shape, patch_shape, stride = _check_geometry(image_shape, patch_shape, stride)
    height, width, channels = image_shape
    patch_features = patch_shape[0] * patch_shape[1] * channels
    index_image = np.arange(height * width * channels).reshape(image_shape)
    # Row k: the indices, in a flattened image, of the pixels of patch k.
    tiling = _extract_patches(
        index_image,
        patch_shape=(*patch_shape, channels),
        extraction_step=(*stride, channels),
    ).reshape(-1, patch_features)

    if len(rbms) != tiling.shape[0]:
        raise ValueError(
            f"The tiling of a {height}x{width} image by {patch_shape[0]}x{patch_shape[1]} "
            f"patches with stride {stride} has {tiling.shape[0]} patches, but "
            f"{len(rbms)} RBMs were given."
        )
    small = list(zip(rbms, tiling))
    every = [*rbms] if subsampled_rbm is None else [*rbms, subsampled_rbm]
    for k, rbm in enumerate(every):
        _check_small_rbm(rbm, k, patch_features)
    if subsampled_rbm is not None:
        if (height % patch_shape[0]) or (width % patch_shape[1]):
            raise ValueError(
                f"A subsampled RBM needs image sides that are multiples of the patch "
                f"shape; got image {height}x{width} and patch {patch_shape}."
            )
        fy, fx = height // patch_shape[0], width // patch_shape[1]
        # For each pixel of the image, the subsampled pixel its block averages into.
        block = np.arange(patch_features).reshape(*patch_shape, channels)
        block = block.repeat(fy, axis=0).repeat(fx, axis=1).ravel()
    dtype = np.result_type(*(rbm.components_.dtype for rbm in every))
    n_features = height * width * channels

    # Visible units: average bias over the RBMs covering each pixel, average
    # sigma over the patch RBMs covering it.
    bias = np.zeros(n_features)
    sigma = np.zeros(n_features)
    coverage = np.zeros(n_features)
    for rbm, pixels in small:
        bias[pixels] += rbm.intercept_visible_
        sigma[pixels] += rbm.sigma_
        coverage[pixels] += 1
    sigma /= coverage
    if subsampled_rbm is not None:
        bias += subsampled_rbm.intercept_visible_[block]
        coverage += 1
    bias /= coverage

    # Hidden units: one block of rows per small RBM. W_ji / sigma_i is kept,
    # so each hidden unit's input is unchanged under the merged sigma.
    rows = []
    for rbm, pixels in small:
        weights = np.zeros((rbm.n_components, n_features))
        weights[:, pixels] = rbm.components_ * (sigma[pixels] / rbm.sigma_)
        rows.append(weights)
    if subsampled_rbm is not None:
        scale = sigma / (fy * fx * subsampled_rbm.sigma_[block])
        rows.append(subsampled_rbm.components_[:, block] * scale)

    first = rbms[0]
    params = {**first.get_params(), **params}
    if random_state is not None:
        params["random_state"] = random_state
    merged = GaussianBernoulliRBM(
        **{**params, "n_components": sum(r.n_components for r in every)}
    )
    merged.set_params(sigma="learn" if isinstance(first.sigma, str) else sigma.astype(dtype))
    merged._validate_params()

    n_chains = min(r.h_samples_.shape[0] for r in every)
    merged._state = RBMState(
        components=np.concatenate(rows).astype(dtype),
        intercept_visible=bias.astype(dtype),
        intercept_hidden=np.concatenate([r.intercept_hidden_ for r in every]).astype(dtype),
        sigma=sigma.astype(dtype),
        chains=np.concatenate([r.h_samples_[:n_chains] for r in every], axis=1).astype(dtype),
        seed=draw_seed(check_random_state(merged.random_state)),
        hidden_mean=np.concatenate([r.state_.hidden_mean for r in every]).astype(dtype),
    )
    merged.n_iter_ = 0
    merged.reconstruction_errors_ = []
    merged.n_features_in_ = n_features
    return merged


def _check_small_rbm(rbm, k, n_features):
    if not isinstance(rbm, GaussianBernoulliRBM):
        raise TypeError(f"RBM {k} is a {type(rbm).__name__}, not a GaussianBernoulliRBM.")
    check_is_fitted(rbm)
    if rbm.n_features_in_ != n_features:
        raise ValueError(
            f"RBM {k} has {rbm.n_features_in_} visible units; the patches have {n_features}."
        )


def _check_geometry(image_shape, patch_shape, stride):
    """Validated ``(height, width, channels)``, patch shape and stride."""
    image_shape = tuple(int(s) for s in image_shape)
    if len(image_shape) == 2:
        image_shape = (*image_shape, 1)
    if len(image_shape) != 3 or min(image_shape) < 1:
        raise ValueError(
            f"image_shape must be (height, width) or (height, width, channels) of "
            f"positive ints, got {image_shape}."
        )
    patch_shape = tuple(int(s) for s in patch_shape)
    if len(patch_shape) != 2 or min(patch_shape) < 1:
        raise ValueError(f"patch_shape must be two positive ints, got {patch_shape}.")
    if stride is None:
        stride = patch_shape
    elif isinstance(stride, Integral):
        stride = (int(stride), int(stride))
    stride = tuple(int(s) for s in stride)
    if len(stride) != 2 or min(stride) < 1:
        raise ValueError(f"stride must be a positive int or two of them, got {stride}.")
    for axis, side, patch, step in zip(("height", "width"), image_shape, patch_shape, stride):
        if patch > side:
            raise ValueError(f"The patch {axis} {patch} exceeds the image {axis} {side}.")
        if step > patch or (side - patch) % step:
            raise ValueError(
                f"Patches of {axis} {patch} every {step} pixels do not cover an image of "
                f"{axis} {side}: the stride must not exceed the patch and must divide "
                f"{side} - {patch}."
            )
    return image_shape, patch_shape, stride
