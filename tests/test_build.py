"""The installed package: OpenMP present, public .pxd files shipped and usable from other Cython code,
thread-count handling."""
import os
import subprocess
import sys
import textwrap

import pytest

import prcy
import prcy.analysis
from prcy.kernels import parallel


def test_built_with_openmp():
    """Fails when the build lost OpenMP (seeds would then run on one thread)."""
    assert parallel.openmp_enabled(), parallel.build_info()


def test_thread_count_helper(monkeypatch):
    assert parallel.n_threads(1) == 1 and parallel.n_threads(3) == 3
    assert parallel.n_threads(-1) >= 1 and parallel.n_threads(None) >= 1
    for bad in (0, -2, 1.5, "2", True):
        with pytest.raises(ValueError, match="threads"):
            parallel.n_threads(bad)


def test_public_pxd_files_are_installed():
    folder = os.path.dirname(parallel.__file__)
    for name in ("losses", "switching", "dynamics", "parallel"):
        assert os.path.exists(os.path.join(folder, f"{name}.pxd")), name


def test_third_party_cython_can_cimport_the_kernels(tmp_path):
    """A small downstream module is compiled against the installed prcy: it cimports the Loss struct
    and the row kernel, and its results are checked against NumPy."""
    pytest.importorskip("Cython")
    (tmp_path / "downstream.pyx").write_text(textwrap.dedent("""
        # cython: language_level=3
        from prcy.kernels.losses cimport Loss, loss_from_capsule, phase_retrieval_dv
        from prcy.kernels.dynamics cimport field_dot

        def dv(capsule, double h, double h0):
            cdef const Loss* loss = loss_from_capsule(capsule)
            return loss.dv(h, h0), phase_retrieval_dv(h, h0)

        def dot(double[::1] x, double[::1] w):
            cdef double r
            with nogil:
                r = field_dot(&x[0], &w[0], x.shape[0])
            return r
    """))
    (tmp_path / "setup.py").write_text(textwrap.dedent("""
        import numpy
        from setuptools import setup, Extension
        from Cython.Build import cythonize
        setup(name="downstream", ext_modules=cythonize(
            [Extension("downstream", ["downstream.pyx"], include_dirs=[numpy.get_include()])]))
    """))
    build = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    check = textwrap.dedent("""
        import numpy as np, downstream
        from prcy.kernels import losses
        a, b = downstream.dv(losses.capsule("phase-retrieval"), 0.7, -1.3)
        assert a == b == (0.7**2 - 1.3**2) * 0.7, (a, b)
        x = np.arange(37.0); w = np.linspace(-1, 1, 37)
        assert abs(downstream.dot(x, w) - x @ w) < 1e-12
        print("ok")
    """)
    run = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-3000:]


def test_imports():
    assert prcy.analysis.label_mse(1.0) == pytest.approx(0.0, abs=1e-15)
    assert callable(prcy.simulate)
