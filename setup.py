"""Build prcy: Cython kernels with OpenMP (probed) and numpy's random C library.

Environment switches (all optional):
  PRCY_MARCH=native|x86-64-v3|...|none   instruction set for the kernels (default: native; use a
                                          portable level when the build machine is not the compute machine)
  PRCY_BOUNDSCHECK=1                      turn Cython bounds/wraparound checks back on (debug runs)
  PRCY_NO_OPENMP=1                        build without OpenMP (seeds then run on one thread)
"""
import os
import shutil
import sys
import tempfile
import textwrap
import warnings

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _compiles(compiler, code, extra_compile_args=(), extra_link_args=()):
    """True when `code` compiles and links with the given flags."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(code)
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=list(extra_compile_args))
            compiler.link_executable(objs, os.path.join(tmp, "probe"), extra_postargs=list(extra_link_args))
        except Exception:  # any compiler or linker failure means "no"
            return False
    return True


OPENMP_PROBE = textwrap.dedent("""
    #include <omp.h>
    int main(void) { int n = 0;
    #pragma omp parallel reduction(+:n)
      n += 1;
      return n > 0 ? 0 : 1; }
""")


class BuildExt(build_ext):
    """Probe OpenMP and the instruction-set flag once, then add them to every kernel."""

    def build_extensions(self):
        cc = self.compiler
        compile_args = ["-O3", "-fno-math-errno", "-fassociative-math", "-fno-signed-zeros",
                        "-fno-trapping-math"]
        link_args = []
        march = os.environ.get("PRCY_MARCH", "native")
        if march != "none":
            flag = f"-march={march}"
            if _compiles(cc, "int main(void){return 0;}", [flag]):
                compile_args.append(flag)
            else:
                warnings.warn(f"prcy: the compiler rejects {flag}; building for its default instruction set")
                march = "default"
        openmp = False
        if not os.environ.get("PRCY_NO_OPENMP"):
            openmp = _compiles(cc, OPENMP_PROBE, ["-fopenmp"], ["-fopenmp"])
        if openmp:
            compile_args.append("-fopenmp")
            link_args.append("-fopenmp")
        else:
            banner = "#" * 78
            print(f"\n{banner}\n# prcy: building WITHOUT OpenMP: seeds will run on one thread only.\n"
                  f"# Install a compiler with OpenMP support (gcc, or clang + libomp) and rebuild.\n"
                  f"{banner}\n", file=sys.stderr)
            warnings.warn("prcy: OpenMP not available, kernels are single-threaded")
        for ext in self.extensions:
            ext.extra_compile_args = compile_args + ext.extra_compile_args
            ext.extra_link_args = link_args + ext.extra_link_args
            ext.define_macros += [("PRCY_MARCH", f'"{march}"'), ("PRCY_OPENMP", str(int(openmp)))]
        super().build_extensions()


NPY_RANDOM_LIB = os.path.join(os.path.dirname(numpy.__file__), "random", "lib")
KERNELS = ["losses", "problems", "optimizers", "switching", "dynamics", "parallel", "dmft"]

extensions = [
    Extension(
        f"prcy.kernels.{name}",
        [f"kernels/{name}.pyx"],
        include_dirs=[numpy.get_include()],
        library_dirs=[NPY_RANDOM_LIB],
        libraries=["npyrandom", "m"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    for name in KERNELS
]

def _cython_include_dir():
    """A tree in which the kernels' .pxd files sit at prcy/kernels/, as they do once installed, so
    that `cimport prcy.kernels.X` resolves at build time exactly as it does for third-party code."""
    root = os.path.join("build", "cython_include")
    dst = os.path.join(root, "prcy", "kernels")
    os.makedirs(dst, exist_ok=True)
    open(os.path.join(root, "prcy", "__init__.pxd"), "w").close()
    open(os.path.join(dst, "__init__.pxd"), "w").close()
    for name in os.listdir("kernels"):
        if name.endswith(".pxd"):
            shutil.copyfile(os.path.join("kernels", name), os.path.join(dst, name))
    return root


checks = bool(os.environ.get("PRCY_BOUNDSCHECK"))
directives = {
    "language_level": 3,
    "boundscheck": checks,
    "wraparound": checks,
    "initializedcheck": checks,
    "cdivision": True,
    "embedsignature": True,
}

setup(
    packages=["prcy", "prcy.kernels", "prcy.analysis"],
    package_dir={"prcy": "prcy", "prcy.kernels": "kernels", "prcy.analysis": "analysis"},
    package_data={"prcy.kernels": ["*.pxd", "*.pyx"]},
    ext_modules=cythonize(extensions, compiler_directives=directives,
                          include_path=[_cython_include_dir()]),
    cmdclass={"build_ext": BuildExt},
    zip_safe=False,
)
