"""Retrieval by Hamming distance between binary codes (semantic hashing)."""

# SPDX-License-Identifier: BSD-3-Clause

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import gen_batches
from sklearn.utils.validation import check_array, check_is_fitted

from .utils._compat import Interval, _fit_context, validate_data

__all__ = ["HammingNeighbors"]

# Number of set bits of every byte.
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
# Bytes of XOR-ed codes held at once when comparing a block of queries.
_BLOCK_BYTES = 2**26


class HammingNeighbors(BaseEstimator):
    """Nearest binary codes by Hamming distance: retrieval for semantic hashing.

    The codes of a :class:`~skdbn.DBNAutoencoder` with
    ``code_units="binary"`` (20 to 128 bits) are stored packed, 8 bits to a
    byte; a query is compared with every stored code by XOR and bit count,
    and neighbours come in order of distance, ties by index. This is the
    ranking by which semantic hashing is evaluated (Salakhutdinov & Hinton,
    2009); with short codes, documents within a small Hamming ball of a
    query's code are its retrieved set (:meth:`radius_neighbors`).

    Parameters
    ----------
    n_neighbors : int, default=50
        Neighbours returned by :meth:`kneighbors` by default.

    Attributes
    ----------
    n_features_in_ : int
        Bits per code.
    n_samples_fit_ : int
        Number of stored codes.

    See Also
    --------
    sklearn.neighbors.NearestNeighbors : ``metric="hamming"`` gives the same
        order on unpacked codes, as a fraction of the bits.

    Examples
    --------
    >>> import numpy as np
    >>> from skdbn.neighbors import HammingNeighbors
    >>> codes = np.array([[0, 0, 1, 1], [1, 1, 1, 1], [0, 0, 1, 0]])
    >>> index = HammingNeighbors(n_neighbors=2).fit(codes)
    >>> dist, ind = index.kneighbors([[0, 0, 1, 1]])
    >>> dist.tolist(), ind.tolist()
    ([[0, 1]], [[0, 2]])
    """

    _parameter_constraints: dict = {"n_neighbors": [Interval(Integral, 1, None, closed="left")]}

    def __init__(self, n_neighbors=50):
        self.n_neighbors = n_neighbors

    def _pack(self, X, reset):
        X = validate_data(self, X, dtype=None, reset=reset) if reset is not None else X
        values = np.unique(X)
        if not np.all(np.isin(values, (0, 1))):
            raise ValueError("HammingNeighbors takes binary codes (0/1 values), e.g. the "
                             "transform of DBNAutoencoder(code_units='binary').")
        return np.packbits(X.astype(bool), axis=1)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Store the codes X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_bits)
            Binary codes.
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        self._codes = self._pack(X, reset=True)
        self.n_samples_fit_ = self._codes.shape[0]
        return self

    def _distances(self, Q):
        """(len(Q), n_samples_fit_) Hamming distances of packed queries."""
        per_query = max(1, self._codes.size)
        out = np.empty((Q.shape[0], self.n_samples_fit_), dtype=np.int32)
        for sl in gen_batches(Q.shape[0], max(1, _BLOCK_BYTES // per_query)):
            xor = Q[sl, None, :] ^ self._codes[None, :, :]
            out[sl] = _POPCOUNT[xor].sum(axis=2, dtype=np.int32)
        return out

    def _queries(self, X):
        check_is_fitted(self)
        if X is None:
            return self._codes, True
        X = validate_data(self, X, dtype=None, reset=False)
        return self._pack(X, reset=None), False

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """The stored codes nearest to each query, nearest first.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_bits), default=None
            Query codes; None: the stored codes, each excluded from its own
            neighbours (as in scikit-learn).
        n_neighbors : int, default=None
            Neighbours per query (``self.n_neighbors`` by default).
        return_distance : bool, default=True
            Also return the distances.

        Returns
        -------
        distances : ndarray of shape (n_queries, n_neighbors)
            Hamming distances (numbers of differing bits); only with
            ``return_distance``.
        indices : ndarray of shape (n_queries, n_neighbors)
            Indices of the neighbours among the stored codes.
        """
        Q, itself = self._queries(X)
        k = self.n_neighbors if n_neighbors is None else int(n_neighbors)
        if not 1 <= k <= self.n_samples_fit_ - itself:
            raise ValueError(f"n_neighbors must be between 1 and "
                             f"{self.n_samples_fit_ - itself}, got {k}.")
        dist = self._distances(Q)
        if itself:
            # Beyond every real distance, so a code is never its own neighbour.
            np.fill_diagonal(dist, np.iinfo(np.int32).max)
        ind = np.argsort(dist, axis=1, kind="stable")[:, :k]
        if return_distance:
            return np.take_along_axis(dist, ind, axis=1), ind
        return ind

    def radius_neighbors(self, X=None, radius=2):
        """The stored codes within ``radius`` bits of each query, nearest first.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_bits), default=None
            Query codes; None: the stored codes, each excluded from its own
            neighbours.
        radius : int, default=2
            Largest Hamming distance retrieved.

        Returns
        -------
        distances, indices : ndarray of shape (n_queries,) of arrays
            Each query's distances and neighbour indices.
        """
        Q, itself = self._queries(X)
        dist = self._distances(Q)
        if itself:
            np.fill_diagonal(dist, np.iinfo(np.int32).max)
        distances = np.empty(Q.shape[0], dtype=object)
        indices = np.empty(Q.shape[0], dtype=object)
        for i, row in enumerate(dist):
            ind = np.flatnonzero(row <= radius)
            ind = ind[np.argsort(row[ind], kind="stable")]
            distances[i], indices[i] = row[ind], ind
        return distances, indices
