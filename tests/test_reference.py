"""The same seeds give the same models, bit for bit, as the recorded ones.

``tests/reference/reference.npz`` holds the learned arrays (and drawn
samples) of tiny models over a matrix of configurations: both visible types,
CD-k and PCD, momentum, weight decay, sparsity, learned sigma, centring,
float32 and float64, one and two threads, DBN stacking and up-down, patch
merging, and DistributedFit with two workers and both strategies. They were
recorded by ``tests/reference/record.py`` before the engine was
restructured; a change that alters any of them must re-record them on
purpose and say why. Re-recorded once since: when the kernels' normal draws
moved from libm's log and cos in double to float polynomials (so that the
loops of Gaussian and NReLU samples vectorise), the ten single-process
Gaussian-visible cases, which sample their visibles, changed by at most
4.7e-7 of each array's largest magnitude (each draw moved by at most
2.5e-7 of its value); every other case stayed bit for bit.

Bit for bit holds in the environment the fixture was recorded in (the same
BLAS build and kernel, CPU variant of the CD kernels, numpy and scipy; see
``record.environment``). Elsewhere the BLAS sums in another order, so the
models are compared to the rounding that order explains: within 5e-3 (float32)
or 1e-9 (float64) of each array's largest magnitude. With numpy 1.25 and
scipy 1.11 (another OpenBLAS) the largest difference measured was 6.2e-4 for
float32, in a momentum increment, and 4.6e-13 for float64.
"""

import json
import os
import sys
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference"))
import record  # noqa: E402

REFERENCE = np.load(record.FIXTURE)
SAME_ENVIRONMENT = (json.loads(str(REFERENCE[record.ENVIRONMENT_KEY]))
                    == record.environment())
# Of each array's largest magnitude, when the environment differs (see above),
# by the dtype of the model (a float32 model's errors are float64 sums of
# float32 terms).
SCALED_TOLERANCE = {"f32": 5e-3, "f64": 1e-9}


def expected(name):
    prefix = name + "/"
    return {k[len(prefix):]: REFERENCE[k] for k in REFERENCE.files if k.startswith(prefix)}


def assert_same_array(value, want, model_dtype, err_msg):
    if SAME_ENVIRONMENT or want.dtype.kind != "f":
        assert_array_equal(value, want, err_msg=err_msg, strict=True)
        return
    assert value.shape == want.shape, err_msg
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    atol = SCALED_TOLERANCE[model_dtype] * scale
    np.testing.assert_allclose(value, want, rtol=0, atol=atol, err_msg=err_msg)


def assert_same_arrays(name, got):
    want = expected(name)
    assert want, f"no reference recorded for {name}"
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        assert got[key].dtype == value.dtype, f"{name}/{key}"
        assert_same_array(got[key], value, name.rsplit("_", 1)[-1], err_msg=f"{name}/{key}")


@pytest.mark.parametrize("name, case", record.local_cases(), ids=lambda x: x
                         if isinstance(x, str) else "")
def test_single_process_models_are_unchanged(name, case):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = case()
    assert_same_arrays(name, got)


@pytest.fixture(scope="module")
def backend():
    with record.distributed_backend() as fit:
        yield fit


@pytest.mark.parametrize("name, case", record.distributed_cases(), ids=lambda x: x
                         if isinstance(x, str) else "")
def test_distributed_models_are_unchanged(backend, name, case):
    assert_same_arrays(name, case(backend))


def test_every_recorded_case_is_checked():
    names = {n for n, _ in record.local_cases() + record.distributed_cases()}
    assert {k.split("/")[0] for k in REFERENCE.files
            if k != record.ENVIRONMENT_KEY} == names
