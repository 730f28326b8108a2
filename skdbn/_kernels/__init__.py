"""Compiled kernels.

The CD kernels (source ``_cd.pyx``) are compiled twice on x86-64: with the
portable flags (``_cd_baseline``) and for AVX2 + FMA (``_cd_avx2``, four
times faster element-wise loops than SSE2). ``_cd`` is the one chosen at
import (runtime dispatch): ``_cd_avx2`` on a CPU with AVX2 and FMA,
``_cd_baseline`` elsewhere or with ``SKDBN_CPU_DISPATCH=0``. Import it as
``from skdbn._kernels import _cd``; ``skdbn._kernels._cd`` names the same
module.
"""

import os
import sys

from . import _openmp_helpers

_cd = None
if os.environ.get("SKDBN_CPU_DISPATCH", "1") != "0" and _openmp_helpers.cpu_has_avx2_fma():
    try:
        from . import _cd_avx2 as _cd
    except ImportError:  # built without it (not x86-64)
        _cd = None
if _cd is None:
    from . import _cd_baseline as _cd
# ``import skdbn._kernels._cd`` then finds the chosen module too.
sys.modules[__name__ + "._cd"] = _cd


def cd_variant():
    """``"avx2-fma"`` or ``"baseline"``: which build of the CD kernels runs."""
    return "avx2-fma" if _cd.__name__.endswith("_avx2") else "baseline"
