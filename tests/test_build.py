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
    for name in ("losses", "problems", "optimizers", "switching", "dynamics", "parallel", "dmft"):
        assert os.path.exists(os.path.join(folder, f"{name}.pxd")), name
    assert os.path.exists(os.path.join(prcy.get_include(), "prcy", "kernels", "losses.pxd"))


def test_third_party_cython_can_cimport_the_kernels(tmp_path):
    """A small downstream module is compiled against the installed prcy: it cimports the Loss struct
    and the row kernel, and its results are checked against NumPy."""
    pytest.importorskip("Cython")
    (tmp_path / "downstream.pyx").write_text(textwrap.dedent("""
        # cython: language_level=3
        from prcy.kernels.losses cimport Loss, loss_from_capsule, phase_retrieval_dv
        from prcy.kernels.dynamics cimport field_dot

        def dv(capsule, double h, double y):
            cdef const Loss* loss = loss_from_capsule(capsule)
            return loss.dv(h, y, loss.theta), phase_retrieval_dv(h, y, NULL)

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
        a, b = downstream.dv(losses.capsule("phase-retrieval"), 0.7, 1.3)
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


DOWNSTREAM = '''
# cython: language_level=3, boundscheck=False, wraparound=False
"""A downstream package: its own loss (the smoothed absolute loss of Dmitriev's thesis,
v = (y - sqrt(h^2 + eps))^2 with eps a parameter) and a persistent-SGD run through prcy's nogil kernels."""
from libc.math cimport sqrt, fabs
from libc.stdint cimport int64_t
from libc.stdlib cimport malloc, free
from cpython.pycapsule cimport PyCapsule_New, PyCapsule_GetPointer
from numpy.random cimport bitgen_t
from prcy.kernels.losses cimport Loss, loss_init
from prcy.kernels.optimizers cimport optimizer_init
from prcy.kernels.problems cimport Problem, problem_init
from prcy.kernels.switching cimport Switching, SELECT_PERSISTENT, switching_init
from prcy.kernels.dynamics cimport (Dynamics, Record, Scratch, INIT_WARM, generate_data, init_weights,
                                    trajectory)
import numpy as np
from prcy.problems import loss_factory

cdef double smooth_v(double h, double y, const double* theta) noexcept nogil:
    cdef double d = y - sqrt(h * h + theta[0])
    return d * d

cdef double smooth_dv(double h, double y, const double* theta) noexcept nogil:
    cdef double r = sqrt(h * h + theta[0])
    return -2.0 * (y - r) * h / r

cdef double smooth_d2v(double h, double y, const double* theta) noexcept nogil:
    cdef double r = sqrt(h * h + theta[0])
    return 2.0 * h * h / (r * r) - 2.0 * (y - r) * theta[0] / (r * r * r)

cdef double smooth_err(double h, double y, const double* theta) noexcept nogil:
    cdef double d = y - fabs(h)
    return d * d

cdef Loss SMOOTH
loss_init(&SMOOTH, smooth_v, smooth_dv, smooth_d2v, smooth_err)
SMOOTH.theta[0] = 1e-2

@loss_factory
def capsule():
    return PyCapsule_New(<void*>&SMOOTH, b"prcy.Loss.v2", NULL)

cdef bitgen_t* _gen(g):
    return <bitgen_t*>PyCapsule_GetPointer(g.capsule, "BitGenerator")

def psgd(Py_ssize_t m, Py_ssize_t n, double m0, double eta, double ell, double tau, int64_t n_steps,
         int64_t check_every, double tol, const int64_t[::1] record_steps, data_rng, init_rng, dyn_rng):
    """One persistent-SGD seed on the sphere with the smoothed absolute loss; returns m(t)."""
    cdef double[::1] w0 = np.empty(n), w = np.empty(n), y = np.empty(m), yt = np.empty(1)
    cdef double[:, ::1] X = np.empty((m, n)), Xt = np.empty((1, n))
    out = {k: np.full(record_steps.shape[0], np.nan) for k in ("m", "q", "loss", "error", "test")}
    cdef double[::1] om = out["m"], oq = out["q"], ol = out["loss"], oe = out["error"], ot = out["test"]
    cdef int64_t t0 = 0, progress = 0
    cdef double T0 = 0.0
    cdef int abort = 0
    cdef Dynamics d
    cdef Record rec
    cdef Scratch work
    cdef Switching sw
    cdef Problem problem
    problem_init(&problem, "phase-retrieval", "gaussian", 0.0)
    optimizer_init(&d.opt, "plain", 0.0, 0.0, 0.0, 0.0, False)
    cdef bitgen_t* gd = _gen(data_rng)
    cdef bitgen_t* gi = _gen(init_rng)
    cdef bitgen_t* gy = _gen(dyn_rng)
    d.loss = &SMOOTH; d.m = m; d.n = n; d.m_test = 0; d.eta = eta; d.grad_scale = 1.0 / ell
    d.ridge = 0.0; d.sphere = 1; d.n_steps = n_steps; d.check_every = check_every; d.tol = tol
    d.early_stop = 0; d.grad_tol = 0.0; d.record_steps = &record_steps[0]; d.n_record = record_steps.shape[0]
    d.temp_starts = &t0; d.temp_values = &T0; d.n_temp = 1; d.abort = &abort
    rec.magnetization = &om[0]; rec.norm = &oq[0]; rec.train_loss = &ol[0]; rec.train_error = &oe[0]
    rec.test_error = &ot[0]; rec.weights = NULL
    work.g = <double*>malloc(n * sizeof(double))
    work.opt_state = NULL
    work.active = <Py_ssize_t*>malloc(m * sizeof(Py_ssize_t))
    work.state = <unsigned char*>malloc(m)
    work.next_flip = <int64_t*>malloc(m * sizeof(int64_t))
    with nogil:
        generate_data(gd, &problem, m, n, 0, &w0[0], &X[0, 0], &y[0], &Xt[0, 0], &yt[0], 0)
        init_weights(gi, &w0[0], n, INIT_WARM, m0, 0.0, 1, &w[0])
        switching_init(&sw, SELECT_PERSISTENT, m, ell, eta / tau, (1 - ell) * eta / (ell * tau),
                       work.state, work.next_flip, NULL)
        trajectory(&d, &X[0, 0], &y[0], &Xt[0, 0], &yt[0], &w0[0], &w[0], &sw, &work, gy,
                   NULL, &rec, &progress)
    free(work.g); free(work.active); free(work.state); free(work.next_flip)
    return out
'''


def test_downstream_package_with_its_own_loss_matches_the_python_api(tmp_path):
    """A package built against the installed prcy (``prcy.get_include()``) defines the
    smoothed absolute loss in Cython, runs persistent SGD through prcy's nogil kernels, and gets
    bitwise the numbers that ``prcy.simulate(loss=its capsule)`` gives; the DMFT takes the loss too."""
    pytest.importorskip("Cython")
    (tmp_path / "smoothabs.pyx").write_text(DOWNSTREAM)
    (tmp_path / "setup.py").write_text(textwrap.dedent("""
        import numpy, prcy
        from setuptools import setup, Extension
        from Cython.Build import cythonize
        setup(name="smoothabs", ext_modules=cythonize(
            [Extension("smoothabs", ["smoothabs.pyx"], include_dirs=[numpy.get_include()])],
            include_path=[prcy.get_include()]))
    """))
    build = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    check = textwrap.dedent("""
        import numpy as np, prcy, smoothabs
        from prcy import dmft
        from prcy.kernels import losses
        kw = dict(algorithm="psgd", alpha=2.0, n=60, m0=0.3, lr=0.02, batch_fraction=0.5, persistence=0.5,
                  t_max=4, grid="linear", points=11, seeds=1, seed=7)
        cap = smoothabs.capsule()
        ds = prcy.simulate(loss=cap, **kw)
        assert ds.attrs["loss"] == "user capsule"
        spec = prcy.SimulationSpec.from_flat(**kw)
        g = lambda k: np.random.PCG64(np.random.SeedSequence(7, spawn_key=(0, k)))
        out = smoothabs.psgd(spec.problem.m, 60, 0.3, 0.02, 0.5, 0.5, spec.recording.n_steps(0.02),
                             spec.stopping.check_every(0.02), spec.stopping.tol, spec.recording.steps(0.02),
                             g(0), g(1), g(2))
        np.testing.assert_array_equal(out["m"], ds.magnetization.values[0])
        np.testing.assert_array_equal(out["loss"], ds.train_loss.values[0])
        builtin = prcy.simulate(**kw)
        assert not np.array_equal(builtin.magnetization.values, ds.magnetization.values)
        h = np.linspace(-2, 2, 9)
        np.testing.assert_allclose(losses.value(cap, h, 0.7), (0.7 - np.sqrt(h**2 + 1e-2))**2)
        th = dmft.solve(loss=cap, alpha=2.0, algorithm="gd", m0=0.5, dt=0.05, t_max=1, samples=200)
        assert th.attrs["status"] == "converged" and th.attrs["loss"] == "user capsule"
        by_name = prcy.simulate(loss="smoothabs:capsule", **kw)          # importable by sweep workers too
        np.testing.assert_array_equal(by_name.magnetization.values, ds.magnetization.values)
        assert by_name.attrs["loss"] == "smoothabs:capsule"
        th2 = dmft.solve(loss="smoothabs:capsule", alpha=2.0, algorithm="gd", m0=0.5, dt=0.05, t_max=1, samples=200)
        np.testing.assert_array_equal(th2.magnetization.values, th.magnetization.values)
        print("ok")
    """)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env=env)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-3000:]
    sweep = subprocess.run([sys.executable, "-m", "prcy", "sweep", "--loss", "smoothabs:capsule", "--algorithm", "psgd",
                            "--alpha", "2", "--n", "60", "--m0", "0.3", "--lr", "0.02", "--batch-fraction", "0.5",
                            "--persistence", "0.5", "--t-max", "4", "--grid", "linear", "--points", "11",
                            "--seeds", "1", "--seed", "7", "--processes", "1", "--no-progress", "-o", "sw.nc"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    compare = textwrap.dedent("""
        import numpy as np, prcy, xarray as xr
        sw = xr.open_dataset("sw.nc")
        ds = prcy.simulate(loss="smoothabs:capsule", algorithm="psgd", alpha=2.0, n=60, m0=0.3, lr=0.02,
                           batch_fraction=0.5, persistence=0.5, t_max=4, grid="linear", points=11, seeds=1, seed=7)
        np.testing.assert_array_equal(sw.magnetization.values.reshape(-1), ds.magnetization.values.reshape(-1))
        print("ok")
    """)
    run = subprocess.run([sys.executable, "-c", compare], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300, env=env)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-3000:]


def test_bad_loss_is_named():
    with pytest.raises(TypeError, match="loss"):
        prcy.simulate(loss=object(), n=8, seeds=1, t_max=0.1)


@pytest.mark.parametrize("loss, error, match", [
    ("no_such_module_xyz:capsule", ValueError,
     "loss: 'no_such_module_xyz:capsule' could not be loaded \\(ModuleNotFoundError"),
    ("not a reference", ValueError, "loss: 'not a reference' is not allowed"),
    ("math:sqrt", ValueError, "loss: 'math:sqrt' is a builtin_function_or_method; allowed: a prcy.Loss.v2 capsule"),
    ("math:pi", ValueError, "loss: 'math:pi' is a float"),
    ("builtins:object", ValueError, "loss: 'builtins:object' is a type"),
])
def test_bad_loss_reference_is_named(loss, error, match):
    with pytest.raises(error, match=match):
        prcy.simulate(loss=loss, n=8, seeds=1, t_max=0.1)
