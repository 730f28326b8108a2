"""ZCA whitening (report Appendix A and §2.4), fitted from a streamed covariance."""

# SPDX-License-Identifier: BSD-3-Clause

import warnings
from numbers import Integral, Real

import numpy as np
from scipy import linalg
from scipy.linalg.blas import dsyr, dsyrk
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils import gen_batches
from sklearn.utils.validation import check_is_fitted

from .utils._atomic import atomic_fit
from .utils._compat import Interval, _fit_context, validate_data
from .utils._validation import check_dtype_range

# Smallest default chunk: below a few hundred rows the covariance update
# (one BLAS syrk per chunk) runs well under its peak.
_MIN_BATCH_ROWS = 1024


class ZCAWhitener(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Zero-phase (ZCA) whitening, with the least significant directions deleted.

    The whitening matrix of the report's Appendix A is the symmetric
    ``W = C^(-1/2) = P D^(-1/2) P^T``, where ``C = P D P^T`` is the
    eigendecomposition of the covariance of the training data (equivalently
    ``W = sqrt(n - 1) (Xc^T Xc)^(-1/2)`` for the centred data ``Xc``). Unlike
    PCA whitening it rotates back to the input space, so each row of ``W`` is
    a local filter centred on one input pixel (report §1.3) and whitened
    images still look like images. ``transform`` returns
    ``(X - mean_) @ whitening_``: decorrelated features of unit variance.

    As in report §2.4, the ``n_drop`` directions of least variance can be
    deleted: their entries of ``D^(-1/2)`` are set to zero, which removes
    high-frequency noise without visible change to the images.

    The covariance is accumulated in float64 chunk by chunk, merging each
    chunk's mean and scatter matrix with the pairwise update of Chan et al.,
    so ``fit`` reads a large (e.g. memory-mapped) ``X`` one chunk at a time and
    ``partial_fit`` can stream it; memory is ``O(n_features^2)`` plus one
    chunk. Whatever the chunking, the result equals one pass over all of ``X``
    up to rounding.

    Parameters
    ----------
    epsilon : float, default=0.0
        Regularisation added to every eigenvalue of the covariance:
        ``W = P (D + epsilon)^(-1/2) P^T``. 0 is the report's exact whitening;
        a positive value damps the directions of smallest variance (whose
        whitened covariance becomes ``d / (d + epsilon)`` rather than 1) and
        keeps ``W`` defined on rank-deficient data.
    n_drop : int, default=0
        Number of least significant directions of variance (smallest
        eigenvalues) to delete. The report deletes 1000 of the 3072
        directions of 32x32 colour images. Must be smaller than
        ``n_features``.
    batch_size : int, default=None
        Number of rows of ``X`` read, converted to float64 and added to the
        covariance at a time by ``fit`` and ``partial_fit``, and transformed at
        a time by ``transform``. None uses ``max(n_features, 1024)`` rows,
        i.e. a chunk about as large as the covariance matrix itself.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
        Per-feature mean of the training data.
    whitening_ : ndarray of shape (n_features, n_features)
        Symmetric whitening matrix ``W``; each row is the whitening filter of
        one input feature. It is zero on the deleted directions.
    dewhitening_ : ndarray of shape (n_features, n_features)
        Symmetric ``W^(-1) = P (D + epsilon)^(1/2) P^T`` restricted to the kept
        directions: ``dewhitening_ @ whitening_`` is the orthogonal projector
        onto them.
    explained_variance_ : ndarray of shape (n_features,)
        Eigenvalues of the covariance (variance along each principal
        direction), in decreasing order, negative rounding errors clipped
        to 0. ``epsilon`` is not included.
    n_components_ : int
        Number of directions kept (``n_features - n_drop`` unless directions
        of zero variance were deleted too, see Notes).
    n_samples_seen_ : int
        Number of samples the covariance was estimated from.
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`, when they are all strings.

    See Also
    --------
    sklearn.decomposition.PCA : With ``whiten=True``, whitening in the
        rotated (principal component) space rather than the input space.
    sklearn.decomposition.IncrementalPCA : Streaming PCA by merged SVDs.

    Notes
    -----
    **Rank-deficient data.** With ``epsilon=0`` the directions of numerically
    zero variance (eigenvalue at most ``n_features * eps * max eigenvalue``,
    the rank tolerance of :func:`numpy.linalg.matrix_rank`), e.g. constant or
    collinear features or fewer samples than features, cannot be scaled to
    unit variance. They are deleted like the ``n_drop`` directions, and a
    ``UserWarning`` is raised when there are more of them than ``n_drop``.
    The training data have no component along them, so ``inverse_transform``
    still restores the training data. With ``epsilon > 0`` every direction
    is kept and ``W`` is finite and invertible; the zero-variance directions
    are mapped to zero variance.

    The matrices are stored in the dtype of the training data (float32 stays
    float32); the covariance, mean and eigendecomposition are computed in
    float64.

    References
    ----------
    .. [1] Krizhevsky, A. Learning Multiple Layers of Features from Tiny
       Images. Technical report, University of Toronto, 2009, Appendix A and
       §2.4.
    .. [2] Chan, T. F., Golub, G. H. and LeVeque, R. J. Updating Formulae and
       a Pairwise Algorithm for Computing Sample Variances. COMPSTAT 1982.

    Examples
    --------
    >>> import numpy as np
    >>> from skdbn import ZCAWhitener
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(500, 3)) @ [[2, 1, 0], [0, 1, 0], [0, 0, 3]]
    >>> zca = ZCAWhitener().fit(X)
    >>> Xw = zca.transform(X)
    >>> np.allclose(np.cov(Xw, rowvar=False), np.eye(3))
    True
    >>> np.allclose(zca.whitening_, zca.whitening_.T)
    True
    >>> np.allclose(zca.inverse_transform(Xw), X)
    True
    >>> ZCAWhitener(n_drop=1).fit(X).n_components_
    2
    """

    _parameter_constraints: dict = {
        "epsilon": [Interval(Real, 0, None, closed="left")],
        "n_drop": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(self, *, epsilon=0.0, n_drop=0, batch_size=None):
        self.epsilon = epsilon
        self.n_drop = n_drop
        self.batch_size = batch_size

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    @atomic_fit(fresh=True)
    def fit(self, X, y=None):
        """Compute the mean, covariance and whitening matrix of X.

        ``X`` is read ``batch_size`` rows at a time, so a memory-mapped ``X``
        is never loaded whole.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, e.g. flattened images.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted whitener.
        """
        X = validate_data(
            self, X, dtype=(np.float64, np.float32), ensure_min_samples=2, reset=True
        )
        self._check_n_drop()
        self._reset_statistics(X.shape[1])
        self._accumulate(X)
        self._update_whitening(X.dtype)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    @atomic_fit(fresh=False)
    def partial_fit(self, X, y=None):
        """Add a chunk of samples to the covariance and recompute the whitening.

        Calling ``partial_fit`` on consecutive chunks of a data set (e.g. the
        rows of a :class:`numpy.memmap`) gives the same model as ``fit`` on
        the whole set. Each call costs one eigendecomposition of the
        ``(n_features, n_features)`` covariance, so use large chunks.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A chunk of training data.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The updated whitener.
        """
        first = not hasattr(self, "n_samples_seen_")
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=first)
        self._check_n_drop()
        if first:
            self._reset_statistics(X.shape[1])
            dtype = X.dtype
        else:
            dtype = self.whitening_.dtype
            check_dtype_range(X, dtype)
        self._accumulate(X)
        self._update_whitening(dtype)
        return self

    def _batch_rows(self, n_features):
        if self.batch_size is not None:
            return self.batch_size
        return max(n_features, _MIN_BATCH_ROWS)

    def _check_n_drop(self):
        # Before the (possibly long) accumulation, and on every partial_fit
        # since set_params may have changed n_drop.
        if self.n_drop >= self.n_features_in_:
            raise ValueError(
                f"n_drop={self.n_drop} must be smaller than n_features={self.n_features_in_}: "
                "at least one direction has to be kept."
            )

    def _reset_statistics(self, n_features):
        self.n_samples_seen_ = 0
        self._mean = np.zeros(n_features)
        # Scatter matrix sum (x - mean)(x - mean)^T: only its upper triangle
        # is maintained (BLAS syrk/syr), Fortran order so BLAS updates it in place.
        self._scatter = np.zeros((n_features, n_features), order="F")

    def _accumulate(self, X):
        """Merge the rows of X into the running mean and scatter matrix."""
        if not (self._scatter.flags.writeable and self._scatter.flags.f_contiguous):
            # e.g. a model loaded with joblib.load(mmap_mode="r"): BLAS would
            # write through the read-only mapping.
            self._scatter = np.array(self._scatter, order="F")
        if not self._mean.flags.writeable:
            self._mean = np.array(self._mean)
        n_features = X.shape[1]
        rows = self._batch_rows(n_features)
        buffer = np.empty((min(rows, X.shape[0]), n_features))
        for sl in gen_batches(X.shape[0], rows):
            chunk = X[sl]
            m = chunk.shape[0]
            chunk_mean = chunk.mean(axis=0, dtype=np.float64)
            centred = buffer[:m]
            np.subtract(chunk, chunk_mean, out=centred)
            # centred is C-ordered (m, d): its transpose is a Fortran
            # (d, m) matrix, so syrk computes centred^T centred with no copy.
            self._scatter = dsyrk(
                1.0, centred.T, beta=1.0, c=self._scatter, trans=0, lower=0, overwrite_c=1
            )
            # Chan et al.: merging two sets adds n_a n_b / n (mean_b - mean_a)
            # (mean_b - mean_a)^T to the sum of their scatter matrices.
            n_a = self.n_samples_seen_
            n = n_a + m
            delta = chunk_mean - self._mean
            self._scatter = dsyr(n_a * m / n, delta, lower=0, a=self._scatter, overwrite_a=1)
            self._mean += delta * (m / n)
            self.n_samples_seen_ = n
        if not (np.all(np.isfinite(self._mean)) and np.all(np.isfinite(np.diag(self._scatter)))):
            # |S_ij| <= sqrt(S_ii S_jj): a finite diagonal bounds the rest.
            raise ValueError(
                "The covariance of X overflows float64: X has values too large "
                f"(up to {float(np.max(np.abs(X))):.3g}). Scale the data first, e.g. "
                "with sklearn.preprocessing.StandardScaler."
            )

    def _update_whitening(self, dtype):
        """Eigendecompose the covariance and build the whitening matrices."""
        n_features = self._mean.shape[0]
        covariance = self._scatter / max(self.n_samples_seen_ - 1, 1)
        # Divide-and-conquer is several times faster than the default driver
        # at image sizes; eigh reads the upper triangle only.
        # (SciPy 1.11 and 1.12 size evd's workspace wrongly for one feature.)
        eigvals, eigvecs = linalg.eigh(
            covariance, lower=False, driver="evd" if n_features > 1 else None,
            overwrite_a=True, check_finite=False,
        )
        del covariance
        eigvals = np.maximum(eigvals[::-1], 0.0)
        eigvecs = eigvecs[:, ::-1]

        n_keep = n_features - self.n_drop
        if self.epsilon == 0:
            tol = eigvals[0] * n_features * np.finfo(np.float64).eps
            rank = int(np.count_nonzero(eigvals > tol))
            if rank < n_keep:
                warnings.warn(
                    f"The covariance of X has rank {rank} < n_features - n_drop = "
                    f"{n_keep}: {n_features - rank} directions have zero variance and "
                    "cannot be whitened with epsilon=0, so they are deleted too. Set "
                    f"n_drop >= {n_features - rank} to delete them silently, or "
                    "epsilon > 0 to keep them.",
                    UserWarning,
                    stacklevel=5,
                )
                n_keep = rank

        kept = eigvecs[:, :n_keep]
        scale = eigvals[:n_keep] + self.epsilon
        # B B^T with B = P D^(-1/4): numpy computes it with syrk and mirrors
        # the triangle, so W is exactly symmetric.
        half = kept * scale**-0.25
        self.whitening_ = (half @ half.T).astype(dtype, copy=False)
        half = kept * scale**0.25
        self.dewhitening_ = (half @ half.T).astype(dtype, copy=False)
        self.mean_ = self._mean.astype(dtype)
        self.explained_variance_ = eigvals.astype(dtype)
        self.n_components_ = n_keep

    def transform(self, X):
        """Whiten X: ``(X - mean_) @ whitening_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data to whiten.

        Returns
        -------
        X_white : ndarray of shape (n_samples, n_features)
            Whitened data, in the dtype of X (float32 stays float32).
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        return self._affine(X, self.whitening_, before=self.mean_, after=None)

    def inverse_transform(self, X):
        """Map whitened data back: ``X @ dewhitening_ + mean_``.

        The result equals the original data except along the deleted
        directions, whose components are lost.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Whitened data.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            Data in the input space.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        return self._affine(X, self.dewhitening_, before=None, after=self.mean_)

    def _affine(self, X, matrix, before, after):
        """``(X - before) @ matrix + after`` one chunk of rows at a time.

        Chunking bounds the temporary of the centring by one chunk, which
        matters for a memory-mapped X.
        """
        dtype = np.result_type(X.dtype, matrix.dtype)
        out = np.empty(X.shape, dtype=dtype)
        for sl in gen_batches(X.shape[0], self._batch_rows(X.shape[1])):
            chunk = X[sl] if before is None else X[sl] - before
            np.matmul(chunk, matrix, out=out[sl])
            if after is not None:
                out[sl] += after
        if not (np.isfinite(out.min()) and np.isfinite(out.max())) if out.size else False:
            raise ValueError(
                "The result overflows: X has values too large for this whitener. "
                "Scale the data like the training data."
            )
        return out
