"""The Examples sections of the public docstrings run and print what they say."""

import doctest
import importlib

import pytest

MODULES = ["skdbn._rbm", "skdbn.metrics", "skdbn._zca", "skdbn._patches"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
