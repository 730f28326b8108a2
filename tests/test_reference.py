"""The same seeds give the same models, bit for bit, as the recorded ones.

``tests/reference/reference.npz`` holds the learned arrays (and drawn
samples) of tiny models over a matrix of configurations: both visible types,
CD-k and PCD, momentum, weight decay, sparsity, learned sigma, centring,
float32 and float64, one and two threads, DBN stacking and up-down, patch
merging, and DistributedFit with two workers and both strategies. They were
recorded by ``tests/reference/record.py`` before the engine was
restructured; a change that alters any of them must re-record them on
purpose and say why.
"""

import os
import sys
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference"))
import record  # noqa: E402

REFERENCE = np.load(record.FIXTURE)


def expected(name):
    prefix = name + "/"
    return {k[len(prefix):]: REFERENCE[k] for k in REFERENCE.files if k.startswith(prefix)}


def assert_same_arrays(name, got):
    want = expected(name)
    assert want, f"no reference recorded for {name}"
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        assert got[key].dtype == value.dtype, f"{name}/{key}"
        assert_array_equal(got[key], value, err_msg=f"{name}/{key}", strict=True)


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
    assert {k.split("/")[0] for k in REFERENCE.files} == names
