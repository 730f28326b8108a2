"""Compiled kernels.

``_cd`` is chosen at import (runtime dispatch): on an x86-64 CPU with AVX2
and FMA, the copy of the CD kernels compiled for them (``_cd_avx2``, four
times faster element-wise loops than SSE2); elsewhere, or with
``SKDBN_CPU_DISPATCH=0``, the portable build. Import it as
``from skdbn._kernels import _cd``.
"""

import os

from . import _openmp_helpers

_cd = None
if os.environ.get("SKDBN_CPU_DISPATCH", "1") != "0" and _openmp_helpers.cpu_has_avx2_fma():
    try:
        from . import _cd_avx2 as _cd
    except ImportError:  # built without it (not x86-64, or MSVC)
        _cd = None
if _cd is None:
    from . import _cd


def cd_variant():
    """``"avx2-fma"`` or ``"baseline"``: which build of the CD kernels runs."""
    return "avx2-fma" if _cd.__name__.endswith("_avx2") else "baseline"
