"""Sphinx configuration of the skdbn documentation.

The build is offline: no intersphinx inventories are fetched and nothing is
downloaded. Build it from the root of a clone with::

    python -m sphinx -W -b html doc doc/_build/html

Set ``SKDBN_DOCS_NO_GALLERY=1`` to render the examples without running them
(no figures, no outputs), e.g. for a quick check of the prose.
"""

import os
import re
import shutil
import sys
from pathlib import Path

DOC_DIR = Path(__file__).resolve().parent
ROOT = DOC_DIR.parent
sys.path.insert(0, str(DOC_DIR / "sphinxext"))


def _import_built_skdbn():
    """Import skdbn with its compiled kernels, wherever it is installed.

    ``python -m sphinx`` from the root of a clone puts the source tree first
    on ``sys.path``. After an editable install the extensions sit in it;
    after a regular install (a wheel) they do not, so the source tree is
    dropped from the path and the installed package imported instead.
    """
    import importlib

    try:
        return importlib.import_module("skdbn._kernels._cd") and sys.modules["skdbn"]
    except ImportError:
        pass
    for name in [m for m in sys.modules if m == "skdbn" or m.startswith("skdbn.")]:
        del sys.modules[name]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT]
    return importlib.import_module("skdbn")


skdbn = _import_built_skdbn()

project = "skdbn"
author = "the skdbn developers"
copyright = "the skdbn developers, BSD-3-Clause"
release = skdbn.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    # A copy of MathJax in the built site, so that the formulas render without
    # network access too.
    "sphinx-mathjax-offline",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "sphinxext", "Thumbs.db", ".DS_Store"]
root_doc = "index"
default_role = "literal"
pygments_style = "sphinx"

# -- API reference ------------------------------------------------------------
autosummary_generate = True
# Methods inherited from skdbn's own base classes are documented; those of
# scikit-learn's mixins (fit_transform, get_params, set_output, ...) and the
# set_*_request methods of its metadata routing are documented by
# scikit-learn, and DistributedFit.run_epochs is the hook the RBMs' epoch loop
# calls.
def _scikit_learn_members():
    names = set()
    for name in skdbn.__all__:
        obj = getattr(skdbn, name)
        if not isinstance(obj, type):
            continue
        names.update(m for m in dir(obj) if m.startswith("set_") and m.endswith("_request"))
        for base in obj.__mro__:
            if base.__module__.split(".")[0] == "sklearn":
                names.update(m for m in vars(base) if not m.startswith("_"))
    return sorted(names)


autodoc_default_options = {
    "members": True,
    "inherited-members": True,
    "exclude-members": ",".join(_scikit_learn_members() + ["run_epochs"]),
}
autodoc_typehints = "none"
# Methods are listed by numpydoc from the members autodoc documents; the
# methods inherited from scikit-learn's mixins (fit_transform, get_params,
# set_output, ...) are documented by scikit-learn.
numpydoc_show_class_members = True
# (not the methods a NamedTuple inherits from tuple)
numpydoc_show_inherited_class_members = {"skdbn.metrics.AISEstimate": False}
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
# Structural checks of every docstring rendered (warnings, so errors under
# -W): documented parameters match the signature, sections are known and in
# order, and Returns is not missing.
numpydoc_validation_checks = {"GL06", "GL07", "PR01", "PR02", "PR10", "RT01"}
# A NamedTuple's fields are its parameters; they are documented as Attributes.
numpydoc_validation_exclude = {r"skdbn\.metrics\.AISEstimate$"}

# -- Gallery -----------------------------------------------------------------
# sphinx-gallery reads a gallery header next to the examples; examples/ holds
# only the scripts, so they are staged with the header from doc/sphinxext/.
# Running them in the staging folder also keeps the figures they save out of
# examples/.
GALLERY_SRC = DOC_DIR / "_build" / "gallery_src"


def _stage_examples():
    if GALLERY_SRC.exists():
        shutil.rmtree(GALLERY_SRC)
    shutil.copytree(
        ROOT / "examples",
        GALLERY_SRC,
        ignore=shutil.ignore_patterns("__pycache__", "*.png", "*.npy"),
    )
    shutil.copy2(DOC_DIR / "sphinxext" / "gallery_header.rst", GALLERY_SRC / "GALLERY_HEADER.rst")


_stage_examples()

plot_gallery = os.environ.get("SKDBN_DOCS_NO_GALLERY", "") in ("", "0")
if not plot_gallery:
    print(
        "SKDBN_DOCS_NO_GALLERY is set: the gallery examples are NOT run; their "
        "pages show the code without outputs or figures."
    )

sphinx_gallery_conf = {
    "examples_dirs": os.path.relpath(GALLERY_SRC, DOC_DIR),
    "gallery_dirs": "auto_examples",
    # Every examples/plot_*.py is run and rendered; other files there are
    # helpers, not examples.
    "filename_pattern": r"[\\/]plot_",
    "ignore_pattern": r"[\\/](?!plot_)[^\\/]+\.py$",
    "plot_gallery": plot_gallery,
    "doc_module": ("skdbn",),
    "backreferences_dir": "generated/backreferences",
    "download_all_examples": False,
    "remove_config_comments": True,
    # Times each example and warns (an error under -W) when one runs longer
    # than its budget; matplotlib is reset between examples as by default.
    "reset_modules": ("matplotlib", "skdbn_sphinxext.time_example"),
    "reset_modules_order": "both",
    "min_reported_time": 1,
}

# -- HTML --------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skdbn {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_prev_next": True,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path = []
html_show_sourcelink = False


# -- Checks ------------------------------------------------------------------
def _api_names():
    """Public names that the API reference must document."""
    modules = ("metrics", "neighbors")
    names = [n for n in skdbn.__all__ if n not in modules + ("__version__",)]
    for module in modules:
        names += getattr(skdbn, module).__all__
    return names


def _check_api_reference(app):
    """Warn (an error under -W) for a public name missing from api.rst."""
    from sphinx.util import logging

    text = (DOC_DIR / "api.rst").read_text()
    for name in _api_names():
        if not re.search(rf"^\s+{re.escape(name)}\s*$", text, re.M):
            logging.getLogger(__name__).warning(
                f"{name} is public (in __all__) but not listed in doc/api.rst"
            )


def setup(app):
    app.connect("builder-inited", _check_api_reference)
