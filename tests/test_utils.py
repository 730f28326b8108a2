"""skdbn.utils: show_versions, the thread count without OpenMP, and the
runtime dispatch between the two builds of the CD kernels."""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose

import skdbn
from skdbn import BernoulliRBM
from skdbn._kernels import _openmp_helpers, cd_variant
from skdbn.utils import _compat


def test_show_versions_reports_build_threads_and_blas(capsys):
    skdbn.show_versions()
    out = capsys.readouterr().out
    openmp = "enabled" if _openmp_helpers.openmp_enabled() else "disabled"
    assert f"OpenMP: {openmp}" in out
    assert f"version: {skdbn.__version__}" in out
    assert f"CD kernels (runtime dispatch): {cd_variant()}" in out
    assert "build: portable" in out or "build: native" in out
    threads = _compat._openmp_effective_n_threads(None)
    assert f"kernel threads (n_jobs=None): {threads}" in out
    for name in ("numpy", "scipy", "scikit-learn", "threadpoolctl"):
        assert f"{name}: " in out
    assert "user_api: blas" in out


def test_without_openmp_one_thread_and_one_warning(monkeypatch):
    monkeypatch.setattr(_compat, "openmp_enabled", lambda: False)
    monkeypatch.setattr(_compat, "_warned_no_openmp", False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _compat._openmp_effective_n_threads(None) == 1  # the default: silent
        assert _compat._openmp_effective_n_threads(1) == 1
    with pytest.warns(UserWarning, match="built without OpenMP"):
        assert _compat._openmp_effective_n_threads(4) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per process
        assert _compat._openmp_effective_n_threads(-1) == 1


def test_zero_n_jobs_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="use None, -1 or a positive integer"):
        _compat._openmp_effective_n_threads(0)


@pytest.mark.skipif(cd_variant() == "baseline", reason="this CPU runs the baseline kernels")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avx2_and_baseline_kernels_agree(dtype, monkeypatch):
    # The two builds of one source differ only in rounding (FMA contraction,
    # vector widths): the samples are the same, the parameters agree.
    import skdbn._rbm
    import skdbn._state
    from skdbn._kernels import driver

    X = (np.random.RandomState(0).rand(60, 12) > 0.5).astype(dtype)
    params = dict(n_components=7, n_iter=3, batch_size=10, random_state=0)
    dispatched = BernoulliRBM(**params).fit(X)
    assert skdbn._state._cd is driver("_cd", "avx2-fma")
    monkeypatch.setattr(skdbn._state, "_cd", driver("_cd", "baseline"))
    monkeypatch.setattr(skdbn._rbm, "_inference", driver("_inference", "baseline"))
    base = BernoulliRBM(**params).fit(X)
    tol = dict(rtol=1e-4, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    assert_allclose(dispatched.components_, base.components_, **tol)
    assert_allclose(dispatched.intercept_visible_, base.intercept_visible_, **tol)
    assert_allclose(dispatched.transform(X), base.transform(X), **tol)


def test_dispatch_can_be_turned_off():
    code = "from skdbn._kernels import cd_variant, _cd; print(cd_variant(), _cd.__name__)"
    env = dict(os.environ, SKDBN_CPU_DISPATCH="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["baseline", "skdbn._kernels._baseline._cd"]


def test_test_helpers_are_not_imported_by_the_package():
    code = ("import json, sys, skdbn, skdbn.metrics, skdbn.distributed; "
            "print(json.dumps([m for m in sys.modules if m.startswith('skdbn._kernels.')]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    loaded = json.loads(out)
    assert loaded and not [m for m in loaded if m.endswith("._testing")]


def test_dispatch_picks_the_build_the_cpu_runs():
    import platform

    x86 = platform.machine().lower() in ("x86_64", "amd64")
    expected = "avx2-fma" if x86 and _openmp_helpers.cpu_has_avx2_fma() else "baseline"
    assert cd_variant() == expected
