"""The GEMM-only ceilings of the benchmarks (``_ceilings.pyx``), compiled on
first import. They call BLAS exactly as skdbn's kernels do, so a ratio to
them measures the kernels' overhead over their products."""
import pyximport

pyximport.install(language_level=3)

from _ceilings import gemm_only_ais, gemm_only_cd1  # noqa: E402

__all__ = ["gemm_only_ais", "gemm_only_cd1"]
