"""The public docstrings are complete numpydoc, and their Examples run."""

import doctest
import importlib
import inspect
import re

import pytest

import skdbn
import skdbn.metrics
import skdbn.neighbors

MODULES = [
    "skdbn._rbm",
    "skdbn._dbn",
    "skdbn._mlp",
    "skdbn.metrics",
    "skdbn.neighbors",
    "skdbn._replicated_softmax",
    "skdbn._zca",
    "skdbn._patches",
    "skdbn.distributed._backend",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0


def _public_objects():
    objects = [
        (f"skdbn.{name}", getattr(skdbn, name))
        for name in skdbn.__all__
        if name not in ("metrics", "neighbors", "__version__")
    ]
    for module in (skdbn.metrics, skdbn.neighbors):
        objects += [(f"{module.__name__}.{name}", getattr(module, name))
                    for name in module.__all__]
    return objects


def _is_namedtuple(obj):
    return inspect.isclass(obj) and issubclass(obj, tuple) and hasattr(obj, "_fields")


def _sections(obj):
    """Titles of the numpydoc sections of obj's docstring."""
    doc = inspect.getdoc(obj) or ""
    return set(re.findall(r"^([A-Z][A-Za-z ]+)\n-{3,}$", doc, flags=re.M))


@pytest.mark.parametrize("name, obj", _public_objects(), ids=lambda x: x if isinstance(x, str) else "")
def test_public_docstring_sections(name, obj):
    # What the documentation promises of every public class and function:
    # Parameters (when there are any; a NamedTuple's fields are its
    # Attributes), Attributes for classes, See Also and Examples.
    required = {"See Also", "Examples"}
    if inspect.isclass(obj):
        required.add("Attributes")
    if inspect.signature(obj).parameters and not _is_namedtuple(obj):
        required.add("Parameters")
    missing = sorted(required - _sections(obj))
    assert not missing, f"{name} has no {', '.join(missing)} section in its docstring"
