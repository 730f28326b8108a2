"""Compiled kernels.

Modules by concept, sharing declarations through ``.pxd`` files:

* ``_math``, ``_random``, ``_blas``, ``_parallel``: element-wise math, the
  counter-based generator, row-major BLAS, static work splitting;
* ``_model``: the structs that carry a model, a phase's random numbers and a
  step's options;
* ``_units``: the unit types (conditional mean, sampler, free-energy term);
* ``_blocks``: the unit types applied to a thread's block of a layer;
* ``_phases``: the up and down passes, the gradient's statistics and updates;
* drivers composing them: ``_cd`` (the fused CD-k / PCD step), ``_inference``
  (conditionals and free energies), ``_ais``, ``_up_down`` (delta rule),
  ``_distributed`` (the workers' phases), and ``_mlp`` (backprop).

The drivers are compiled twice on x86-64: with the portable flags
(``_baseline``) and for AVX2 + FMA (``_avx2``, whose element-wise loops run
at full vector width). The build this CPU can run is chosen at import
(runtime dispatch) and its drivers are attributes of this package:
``from skdbn._kernels import _cd``. ``SKDBN_CPU_DISPATCH=0`` forces the
portable build; :func:`driver` loads a driver of either build by name.
"""

import importlib
import os
import sys

from . import _openmp_helpers

#: The drivers built in both variants, loaded at import (``_testing``, the
#: tests' helpers, only on request through :func:`driver`).
DRIVERS = ("_cd", "_inference", "_ais", "_up_down", "_distributed")
#: Codes of the hidden unit types (``_units.pxd``).
UNIT_CODES = {"bernoulli": 0, "gaussian": 1, "nrelu": 2}
_PACKAGES = {"baseline": "_baseline", "avx2-fma": "_avx2"}


def driver(name, variant=None):
    """The driver module ``name`` of the build ``variant`` (``"baseline"`` or
    ``"avx2-fma"``; None: the one this CPU runs, :func:`cd_variant`)."""
    variant = cd_variant() if variant is None else variant
    return importlib.import_module(f"{__name__}.{_PACKAGES[variant]}.{name}")


def _chosen_variant():
    if os.environ.get("SKDBN_CPU_DISPATCH", "1") != "0" and _openmp_helpers.cpu_has_avx2_fma():
        try:
            importlib.import_module(f"{__name__}._avx2._cd")
            return "avx2-fma"
        except ImportError:  # built without it (not x86-64)
            pass
    return "baseline"


_VARIANT = _chosen_variant()


def cd_variant():
    """``"avx2-fma"`` or ``"baseline"``: which build of the kernels runs."""
    return _VARIANT


for _name in DRIVERS:
    _module = driver(_name)
    globals()[_name] = _module
    # ``import skdbn._kernels._cd`` finds the chosen build too.
    sys.modules[f"{__name__}.{_name}"] = _module
del _name, _module
