"""The GEMM-only ceilings of the benchmarks (``_ceilings.pyx``), compiled on
first import. They call BLAS exactly as skdbn's kernels do, so a ratio to
them measures the kernels' overhead over their products."""
import os

import numpy as np
import pyximport

import skdbn

# ``cimport skdbn._kernels._blas`` is resolved from the installed package's
# directory: an editable install is not on sys.path as a directory.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(skdbn.__file__)))
pyximport.install(language_level=3, setup_args={"include_dirs": [_ROOT, np.get_include()]})

from _ceilings import gemm_only_ais, gemm_only_cd1  # noqa: E402

__all__ = ["gemm_only_ais", "gemm_only_cd1"]
