"""Build the Cython kernels of skdbn (metadata lives in pyproject.toml)."""

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

OPENMP = ["-fopenmp"]
DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
}

extensions = [
    Extension(
        f"skdbn._kernels.{name}",
        [f"skdbn/_kernels/{name}.pyx"],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3", *OPENMP],
        extra_link_args=OPENMP,
    )
    for name in ("_random", "_cd")
]

setup(ext_modules=cythonize(extensions, compiler_directives=DIRECTIVES))
