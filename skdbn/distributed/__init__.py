"""Model-parallel RBM training across processes and machines (report ch. 4)."""

from ._backend import DistributedFit

__all__ = ["DistributedFit"]
