"""Sparse input: a minibatch of CSR rows as the kernels take it.

The kernels read a sparse minibatch by column (``Columns`` in
``skdbn/_kernels/_model.pxd``): each hidden unit's row of the weights is then
read in order, once per product, and a product costs one multiply-add per
nonzero and hidden unit. Building the columns is one pass over the nonzeros
and the features (scipy's CSR to CSC).
"""

# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
import scipy.sparse as sp

from ._visible import BERNOULLI


def columns(X, dtype, visible=BERNOULLI):
    """The nonzeros of the sparse rows X by column: ``(col, start, row, val)``.

    ``col``: the columns holding a nonzero, increasing; column ``col[c]``
    holds entries ``start[c]`` to ``start[c + 1] - 1``, of rows ``row`` and
    values ``val`` (in ``dtype``, in the space the kernels take for the
    ``visible`` unit type, ``skdbn._visible``).
    """
    csc = sp.csc_matrix(X)
    csc.sum_duplicates()  # also sorts each column's rows
    counts = np.diff(csc.indptr)
    col = np.flatnonzero(counts).astype(np.intp)
    start = np.empty(col.size + 1, np.intp)
    start[:-1] = csc.indptr[col]
    start[-1] = csc.indptr[-1]
    val = np.asarray(csc.data, dtype=dtype)
    val = visible.input_values(val, col, counts)
    return col, start, csc.indices.astype(np.intp), np.ascontiguousarray(val, dtype=dtype)
