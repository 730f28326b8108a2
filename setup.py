"""Build the Cython kernels of skdbn (metadata lives in pyproject.toml).

The default build is portable: it runs on any machine of its architecture
(any x86-64, any aarch64), so a wheel built on one machine runs on another.
On x86-64 the kernels' drivers are compiled twice, once for AVX2 + FMA, and
the copy the CPU can run is chosen at import. ``SKDBN_NATIVE_BUILD=1`` adds
``-march=native`` for the build machine only.

OpenMP is used when the compiler supports it (checked by compiling a test
program); otherwise, or with ``SKDBN_NO_OPENMP=1``, the kernels build without
it and run single-threaded (``skdbn.show_versions()`` says which).
"""

import os
import shutil
import sys
import sysconfig
import tempfile
import textwrap

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
}

OPENMP_TEST = textwrap.dedent("""\
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += omp_get_num_threads() > 0;
        return n > 0 ? 0 : 1;
    }
""")


def _flag(name):
    return os.environ.get(name, "") not in ("", "0")


def _openmp_flags(compiler):
    """(compile, link) flags for OpenMP, or None if the compiler has none."""
    if _flag("SKDBN_NO_OPENMP"):
        return None
    if compiler.compiler_type == "msvc":
        return ["/openmp"], []
    candidates = [(["-fopenmp"], ["-fopenmp"]),
                  # Apple clang: the runtime comes from Homebrew's libomp.
                  (["-Xpreprocessor", "-fopenmp"], ["-lomp"])]
    tmp = tempfile.mkdtemp()
    try:
        src = os.path.join(tmp, "openmp_test.c")
        with open(src, "w") as f:
            f.write(OPENMP_TEST)
        for compile_args, link_args in candidates:
            try:
                objects = compiler.compile([src], output_dir=tmp,
                                           extra_postargs=compile_args)
                compiler.link_executable(objects, "openmp_test", output_dir=tmp,
                                         extra_postargs=link_args)
            except Exception:  # CompileError, LinkError: try the next flags
                continue
            return compile_args, link_args
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return None


class BuildExt(build_ext):
    """Compiler flags chosen for the compiler actually used; the extensions
    compile in parallel (each driver is built twice)."""

    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1

    def build_extensions(self):
        if self.compiler.compiler_type == "msvc":
            compile_args = ["/O2"]
        else:
            # -fno-trapping-math lets gcc if-convert, hence vectorise, the
            # comparisons of the sigmoid-and-sample loops; -fno-math-errno
            # lets it turn sqrt into an instruction (no errno is read).
            compile_args = ["-O3", "-fno-trapping-math", "-fno-math-errno"]
            if _flag("SKDBN_NATIVE_BUILD"):
                compile_args.append("-march=native")
        openmp = _openmp_flags(self.compiler)
        link_args = []
        if openmp is None:
            print("skdbn: building WITHOUT OpenMP; the kernels will run single-threaded")
        else:
            compile_args += openmp[0]
            link_args += openmp[1]
        avx2 = ["/arch:AVX2"] if self.compiler.compiler_type == "msvc" else ["-mavx2", "-mfma"]
        for ext in self.extensions:
            ext.extra_compile_args = compile_args
            if "._avx2." in ext.name:
                ext.extra_compile_args = compile_args + avx2
            ext.extra_link_args = link_args
            if _flag("SKDBN_NATIVE_BUILD"):
                ext.define_macros.append(("SKDBN_NATIVE_BUILD", "1"))
        super().build_extensions()


# The drivers (see skdbn/_kernels/__init__.py) are built from the same
# source into two packages: skdbn._kernels._baseline with the portable flags
# and, on x86-64, skdbn._kernels._avx2 for AVX2 + FMA; skdbn._kernels picks
# the one the CPU can run. Unit and phase code lives in .pxd files as
# cdef inline functions, so each build compiles its own copy of the hot
# loops. The two builds translate to separate C files (build_dir).
def _target_is_x86_64():
    # sysconfig follows a cross-compilation's target (_PYTHON_HOST_PLATFORM,
    # as cibuildwheel sets on macOS); ARCHFLAGS may add arm64 to it.
    target = sysconfig.get_platform().lower()
    return (target.endswith(("x86_64", "amd64"))
            and "arm64" not in os.environ.get("ARCHFLAGS", ""))


DRIVERS = ("_cd", "_inference", "_ais", "_up_down", "_distributed", "_testing")
VARIANTS = ("_baseline", "_avx2") if _target_is_x86_64() else ("_baseline",)
MACROS = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
# Cython translates in a process pool on Linux (fork); elsewhere the pool's
# spawned processes would run this script again.
CYTHON_THREADS = (os.cpu_count() or 1) if sys.platform.startswith("linux") else 0


def _extension(name, source):
    # skdbn/_kernels: the C header of _csr.pxd (_simd.h).
    return Extension(name, [source],
                     include_dirs=[np.get_include(), os.path.join("skdbn", "_kernels")],
                     define_macros=list(MACROS))


extensions = cythonize(
    [_extension(f"skdbn._kernels.{name}", f"skdbn/_kernels/{name}.pyx")
     for name in ("_random", "_mlp", "_openmp_helpers")],
    compiler_directives=DIRECTIVES, nthreads=CYTHON_THREADS)
for variant in VARIANTS:
    extensions += cythonize(
        [_extension(f"skdbn._kernels.{variant}.{name}", f"skdbn/_kernels/{name}.pyx")
         for name in DRIVERS],
        compiler_directives=DIRECTIVES, build_dir=os.path.join("build", "cython", variant),
        nthreads=CYTHON_THREADS)

setup(
    ext_modules=extensions,
    cmdclass={"build_ext": BuildExt},
)
