"""Committee machines (a student with K hidden units, Dmitriev 2021 eq 2.3) against the plain NumPy
reference (``tests/reference.py``, ``committee=True``), step for step over 200 steps, for K = 1, 2, 7 and
64, every selection and update rule, the sphere (per unit) and the ridge, Langevin noise, float32 storage
and both row paths of the kernel (blocks of eight rows; ``dgemm`` on row blocks); K = 1 against the
single-unit kernel; the committee losses against their reference; the closed-form test error of the
quadratic network against held-out samples."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import COMMITTEE_LOSSES, committee_gradient, reference_trajectory  # noqa: E402

from prcy.kernels import dynamics, losses, switching  # noqa: E402

TOL = 1e-10
STEPS = 200
OBSERVABLES = ("magnetization", "norm", "train_loss", "train_error", "test_error", "unit_magnetization",
               "a_square")
OPTIMIZERS = {"plain": dict(optimizer="plain"), "momentum": dict(optimizer="momentum", momentum=0.9),
              "nesterov": dict(optimizer="nesterov", momentum=0.8),
              "adam": dict(optimizer="adam", beta1=0.8, beta2=0.99, adam_eps=1e-6)}


def _params(eta, ridge, sphere, ell=None, optimizer="plain", momentum=0.0, beta1=0.9, beta2=0.999, adam_eps=1e-8,
            grad_tol=0.0, n_steps=STEPS):
    return dict(eta=eta, grad_scale=1.0 if ell is None else 1.0 / ell, ridge=ridge, sphere=sphere, n_steps=n_steps,
                check_every=10 ** 9, tol=1e-300, early_stop=False, grad_tol=grad_tol, optimizer=optimizer,
                momentum=momentum, beta1=beta1, beta2=beta2, adam_eps=adam_eps, project_velocity=False)


def _case(k, optimizer, selection, sphere, *, n=40, m=117, loss="phase-retrieval", theta=(), dtype=np.float64,
          temperature=0.0, block=None, problem="phase-retrieval", seed=0):
    """Run the kernel and the reference on one scenario; returns their maximal relative deviation."""
    w0, X, y, Xt, yt = dynamics.generate(np.random.PCG64(seed), m, n, 30, dtype=dtype, problem=problem,
                                         teacher="rademacher" if problem == "door" else "gaussian",
                                         onset=theta[1] if problem == "door" else 0.0)
    init = np.random.PCG64(seed + 1)
    W = np.array([dynamics.initial_weights(init, w0, 0.3, sphere, init="warm") for _ in range(k)])
    rng = np.random.Generator(np.random.PCG64(seed + 2))
    ell = None if selection == "full" else 0.5
    S = (np.ones((STEPS, m), np.uint8) if selection == "full"
         else switching.sample(selection, m, STEPS, 0.5, 0.2, 0.01, np.random.PCG64(seed + 3)))
    Z = rng.standard_normal((STEPS, k * n))
    opt = OPTIMIZERS[optimizer]
    eta = 0.01 if optimizer == "adam" else 0.002 * max(1, k // 8)      # the gradient of a unit is O(1/K)
    ridge = 0.0 if sphere else 0.3
    rec = np.array([0, 1, 7, 50, 199, STEPS], dtype=np.int64)
    ref = reference_trajectory(X.astype(np.float64), y, w0, W, S, Z, loss=loss, eta=eta, rescale_ell=ell,
                               ridge=ridge, sphere=sphere, temperatures=np.full(STEPS, temperature),
                               record_steps=rec, Xt=Xt.astype(np.float64), yt=yt, theta=theta, committee=True, **opt)
    assert np.linalg.norm(ref["w"] - W) > 0.05 * np.sqrt(k * n)          # the weights move
    cap = losses.committee_capsule(loss, **dict(zip(losses.PARAMETERS[loss], theta)))
    out = dynamics.run_trajectory(
        cap, X, y, w0, W.ravel(), Xt, yt, selection="replay", selection_replay=S, noise_replay=Z,
        params=_params(eta, ridge, sphere, ell, **opt), record_steps=rec, temp_starts=np.zeros(1, np.int64),
        temp_values=np.array([temperature]), block=(0 if k < 8 else 32) if block is None else block)
    assert out["stop_reason"][0] == 0 and out["stop_step"][0] == STEPS
    devs = {"w": _dev(out["w"], ref["w"])}
    for key in OBSERVABLES:
        devs[key] = _dev(out[key][0], ref[key])
    devs["overlap"] = _dev(out["overlap"][0], ref["overlap"])
    return devs


def _dev(got, ref):
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    return float(np.max(np.abs(got - ref) / np.maximum(1.0, np.abs(ref))))


@pytest.mark.parametrize("k", [1, 2, 7])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("selection", ["full", "bernoulli", "persistent"])
def test_small_committees_match_the_reference(k, optimizer, selection):
    sphere = (k + len(optimizer) + len(selection)) % 2 == 0          # each K meets the sphere and the ridge
    devs = _case(k, optimizer, selection, sphere, seed=k)
    assert max(devs.values()) <= TOL, devs


@pytest.mark.parametrize("optimizer, selection, sphere, extra", [
    ("plain", "full", True, {}),
    ("adam", "persistent", False, {}),
    ("momentum", "bernoulli", True, dict(temperature=0.02)),                   # Langevin noise
    ("nesterov", "full", False, dict(block=0)),                                # the 8-row path at K = 64
])
def test_wide_committee_matches_the_reference(optimizer, selection, sphere, extra):
    devs = _case(64, optimizer, selection, sphere, n=48, m=100, seed=64, **extra)
    assert max(devs.values()) <= TOL, devs


@pytest.mark.parametrize("k, extra", [
    (7, dict(dtype=np.float32)),                                               # float32 storage, 8-row path
    (7, dict(dtype=np.float32, block=5)),                                      # float32, dgemm with a tail block
    (2, dict(block=3)),                                                        # dgemm at small K
    (2, dict(loss="door-logistic", theta=(1e-3, 0.67449), problem="door")),
    (7, dict(loss="door-square", theta=(1e-3, 0.67449), problem="door", block=16)),
    (2, dict(loss="absolute", theta=(1e-3,))),
])
def test_losses_precision_and_row_paths_match_the_reference(k, extra):
    devs = _case(k, "momentum", "persistent", True, seed=11, **extra)
    assert max(devs.values()) <= TOL, devs


def test_one_unit_is_the_single_unit_kernel():
    """K = 1 through the committee kernel (both row paths) equals the single-unit kernel to rounding."""
    n, m = 48, 150
    w0, X, y, Xt, yt = dynamics.generate(np.random.PCG64(1), m, n, 30)
    w = dynamics.initial_weights(np.random.PCG64(2), w0, 0.2, True)
    S = switching.sample("persistent", m, STEPS, 0.5, 0.2, 0.01, np.random.PCG64(3))
    kw = dict(selection="replay", selection_replay=S, params=_params(0.02, 0.0, True, 0.5, **OPTIMIZERS["adam"]),
              record_steps=np.array([0, 10, 100, STEPS]), temp_starts=np.zeros(1, np.int64),
              temp_values=np.zeros(1))
    single = dynamics.run_trajectory(losses.capsule("phase-retrieval"), X, y, w0, w, Xt, yt, **kw)
    for block in (0, 7):
        one = dynamics.run_trajectory(losses.committee_capsule("phase-retrieval"), X, y, w0, w, Xt, yt,
                                      block=block, **kw)
        assert np.max(np.abs(one["w"][0] - single["w"])) <= 1e-12
        for key in ("magnetization", "norm", "train_loss"):
            np.testing.assert_allclose(one[key], single[key], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(one["unit_magnetization"][..., 0], single["magnetization"], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name, theta", [("phase-retrieval", ()), ("absolute", (1e-3,)),
                                         ("door-square", (1e-3, 0.67449)), ("door-logistic", (1e-3, 0.67449))])
def test_committee_losses_match_the_reference(name, theta):
    rng = np.random.default_rng(4)
    H = rng.standard_normal((50, 3))
    y = np.abs(rng.standard_normal(50)) if name in ("phase-retrieval", "absolute") else rng.choice([-1.0, 1.0], 50)
    cap = losses.committee_capsule(name, **dict(zip(losses.PARAMETERS[name], theta)))
    value, grad, err = losses.committee_evaluate(cap, H, y)
    lam, ref_err = COMMITTEE_LOSSES[name]
    np.testing.assert_allclose(value, lam(H, y, theta), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grad, committee_gradient(lam)(H, y, theta), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(err, ref_err(H, y, theta), rtol=1e-12, atol=1e-14)
    # one unit: the single-unit loss of the same name
    single = losses.capsule(name, **dict(zip(losses.PARAMETERS[name], theta)))
    v1, g1, _ = losses.committee_evaluate(cap, H[:, :1], y)
    np.testing.assert_allclose(v1, losses.value(single, H[:, 0], y), rtol=1e-13)
    np.testing.assert_allclose(g1[:, 0], losses.derivative(single, H[:, 0], y), rtol=1e-12, atol=1e-15)


def test_capsules_are_checked():
    with pytest.raises(TypeError, match="single-unit loss"):
        losses.committee_evaluate(losses.capsule("phase-retrieval"), np.ones((2, 2)), np.ones(2))
    with pytest.raises(ValueError, match="unknown name 'logistic'"):
        losses.committee_capsule("logistic")
    with pytest.raises(ValueError, match="w_init: 6 entries"):
        dynamics.run_trajectory(losses.committee_capsule("phase-retrieval"), np.ones((8, 4)), np.ones(8),
                                np.ones(4), np.ones(6), np.ones((0, 4)), np.ones(0), selection="full",
                                params=_params(0.01, 0.0, True), record_steps=np.array([0, 1]),
                                temp_starts=np.zeros(1, np.int64), temp_values=np.zeros(1))


# ------------------------------------------------------------------------------------------------
# the driver: options, dataset, closed-form test error, refusals


def test_docs_example_runs():
    from docs_examples import run_section

    failed, attempted = run_section("engine.md", "## Committee machines")
    assert attempted >= 3 and failed == 0


def test_one_unit_files_are_unchanged():
    import prcy

    kw = dict(n=40, alpha=3, algorithm="psgd", t_max=1, points=5, seeds=2, n_test=20)
    a, b = prcy.simulate(**kw), prcy.simulate(hidden=1, **kw)
    assert set(a.dims) == set(b.dims) == {"seed", "time"} and "hidden" not in b.attrs
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values)


def test_committee_dataset_and_closed_form_test_error():
    """Along a run of K = 3 units: the records against each other; the quadratic network's error in closed
    form (prcy.analysis.quadratic_network_error) against the overlaps; the held-out label error against
    the law of the fields, (h0, h_1..h_K) Gaussian with covariance [[1, M^T], [M, Q]]."""
    import prcy
    from prcy.analysis import a_distance, quadratic_network_error

    ds = prcy.simulate(hidden=3, n=40, alpha=4, algorithm="gd", lr=0.05, t_max=3, points=6, seeds=2, n_test=40000,
                       init="random")
    assert ds.unit_magnetization.dims == ("seed", "time", "unit") and ds.sizes["unit"] == 3
    assert ds.overlap.dims == ("seed", "time", "unit", "unit2")
    Q = ds.overlap.values
    np.testing.assert_allclose(ds.norm, np.trace(Q, axis1=-2, axis2=-1) / 3, rtol=1e-12)
    np.testing.assert_allclose(ds.a_teacher, (ds.unit_magnetization ** 2).sum("unit") / 3, rtol=1e-12)
    np.testing.assert_allclose(ds.magnetization ** 2, ds.a_teacher, rtol=1e-12)
    np.testing.assert_allclose(ds.a_distance, a_distance(ds.a_teacher, (Q ** 2).sum(axis=(-2, -1)) / 9), atol=1e-12)
    np.testing.assert_allclose(ds.quadratic_error, quadratic_network_error(ds.norm, ds.a_teacher,
                                                                           (Q ** 2).sum(axis=(-2, -1)) / 9), atol=1e-12)
    assert float(ds.quadratic_error[:, -1].max()) < float(ds.quadratic_error[:, 0].min())          # it learns
    np.testing.assert_array_equal(ds.test_error, ds.test_error_empirical)
    # 40000 held-out samples against 400000 draws of the fields: E(|h0| - (sum_k h_k^2 / K)^(1/2))^2
    rng = np.random.default_rng(1)
    for s in range(2):
        for t in (0, -1):
            M = ds.unit_magnetization.values[s, t]
            cov = np.block([[np.ones((1, 1)), M[None, :]], [M[:, None], Q[s, t]]])
            h = rng.multivariate_normal(np.zeros(4), cov, size=400000)
            law = np.mean((np.abs(h[:, 0]) - np.sqrt(np.mean(h[:, 1:] ** 2, axis=1))) ** 2)
            assert abs(float(ds.test_error[s, t]) - law) < 0.05 * law


def test_overlap_matrix_of_a_wide_committee_on_request():
    """The overlap matrix is recorded up to ``overlap_units`` hidden units (16 by default); asking for more
    adds it and changes nothing else."""
    import prcy

    kw = dict(hidden=20, n=24, alpha=3, algorithm="gd", lr=0.05, t_max=1, points=4, seeds=2, n_test=100)
    plain, asked = prcy.simulate(**kw), prcy.simulate(overlap_units=20, **kw)
    assert "overlap" not in plain and "unit2" not in plain.dims
    assert asked.overlap.dims == ("seed", "time", "unit", "unit2") and asked.sizes["unit2"] == 20
    for name in plain.data_vars:
        np.testing.assert_array_equal(asked[name], plain[name])
    np.testing.assert_allclose(asked.norm, np.trace(asked.overlap.values, axis1=-2, axis2=-1) / 20, rtol=1e-12)
    assert "overlap" not in prcy.simulate(overlap_units=19, **kw)


def test_wick_formula_against_monte_carlo():
    from prcy.analysis import quadratic_network_error

    rng = np.random.default_rng(0)
    n, k = 6, 4
    w0 = rng.standard_normal(n)
    w0 *= np.sqrt(n) / np.linalg.norm(w0)
    W = rng.standard_normal((k, n))
    x = rng.standard_normal((400000, n))
    mc = np.mean(((x @ w0) ** 2 / n - np.mean((x @ W.T) ** 2, axis=1) / n) ** 2)
    M, Q = W @ w0 / n, W @ W.T / n
    exact = quadratic_network_error(np.trace(Q) / k, np.sum(M * M) / k, np.sum(Q * Q) / k ** 2)
    assert abs(mc - exact) < 0.02 * exact


def test_door_committee():
    import prcy

    ds = prcy.simulate(problem="door", teacher="rademacher", hidden=2, n=40, alpha=3, algorithm="sgd", t_max=1,
                       points=4, seeds=2, n_test=200, init="random")
    np.testing.assert_array_equal(ds.test_error, ds.test_error_empirical)
    assert ds.attrs["loss"] == "door-square" and ds.attrs["hidden"] == 2


@pytest.mark.parametrize("options, match", [
    (dict(hidden=0), "hidden: 0 is not allowed; allowed: an integer >= 1"),
    (dict(hidden=-3), "hidden: -3 is not allowed"),
    (dict(hidden=10 ** 6, n=10 ** 6, n_test=1), "hidden: 1000000 is not allowed with n = 1000000"),
    (dict(hidden=2, problem="mixture-2"), "hidden: 2 does not apply to problem mixture-2"),
    (dict(hidden=2, problem="linear-regression"), "hidden: 2 does not apply to problem linear-regression"),
    (dict(hidden=2, algorithm="amp", init="random"), "hidden: 2 does not apply to algorithm amp"),
    (dict(hidden=2, init="spectral"), "init: 'spectral' is not allowed with hidden = 2"),
    (dict(hidden=2, hessian=2), "hessian: 2 is not allowed with hidden = 2"),
    (dict(hidden=2, label_moments=True, n_test=10), "label_moments: True is not allowed with hidden = 2"),
    (dict(hidden=2, loss="linear-regression", n_test=10), "loss: 'linear-regression' has no committee form"),
    (dict(hidden=2, problem="door"), "n_test: 0 is not allowed with hidden = 2"),
    (dict(hidden=2), "n_test: 0 is not allowed with hidden = 2"),
    (dict(hidden=2, n_test=10, overlap_units=-1), "overlap_units: -1"),
    (dict(overlap_units=4, problem="mixture-2"), "overlap_units: 4 does not apply to problem mixture-2"),
])
def test_bad_committees_are_refused_before_compute(options, match):
    import prcy

    with pytest.raises(ValueError, match=match):
        prcy.simulate(**{"n": 40, "t_max": 1, "seeds": 1, **options})


def test_dmft_refuses_hidden_units():
    from prcy import dmft

    with pytest.raises(ValueError, match="hidden: 2 is not allowed in the DMFT: the DMFT of committee machines"):
        dmft.solve(hidden=2, t_max=1)


def test_loss_capsules_must_fit_the_student():
    import prcy

    with pytest.raises(TypeError, match="single-unit loss"):
        prcy.simulate(loss=losses.capsule("phase-retrieval"), hidden=2, n=40, t_max=1, seeds=1, n_test=10)
    with pytest.raises(TypeError, match="prcy.Loss.v2"):
        prcy.simulate(loss=losses.committee_capsule("phase-retrieval"), n=40, t_max=1, seeds=1)


def test_option_table_and_kernel_agree_on_committee_losses():
    from prcy.options import COMMITTEE_LOSSES

    assert COMMITTEE_LOSSES == losses.COMMITTEE_NAMES


def test_sweep_over_hidden_units(tmp_path):
    from prcy.sweep import Sweep, run_sweep

    import prcy

    point = dict(n=40, alpha=3, algorithm="gd", t_max=1, points=4, seeds=2, n_test=20)
    sweep = Sweep.from_options(dict(hidden=[1, 3, 2], **point))
    ds = run_sweep(sweep, tmp_path / "s.nc", processes=1, threads=1)
    assert ds.magnetization.dims == ("hidden", "seed", "time")
    assert bool(ds.a_teacher.sel(hidden=1).isnull().all()) and bool(ds.a_teacher.sel(hidden=3).notnull().all())
    assert "committee_meaning" in ds.test_error.attrs
    # the per-unit variables over the widest cell's units, NaN beyond a cell's own
    assert ds.unit_magnetization.dims == ("hidden", "seed", "time", "unit") and ds.sizes["unit"] == 3
    assert ds.overlap.dims == ("hidden", "seed", "time", "unit", "unit2") and ds.sizes["unit2"] == 3
    two = prcy.simulate(hidden=2, **point)
    np.testing.assert_array_equal(ds.unit_magnetization.sel(hidden=2).isel(unit=slice(0, 2)).values,
                                  two.unit_magnetization.values)
    np.testing.assert_array_equal(ds.overlap.sel(hidden=2).isel(unit=slice(0, 2), unit2=slice(0, 2)).values,
                                  two.overlap.values)
    assert bool(ds.unit_magnetization.sel(hidden=2, unit=2).isnull().all())
    assert bool(ds.overlap.sel(hidden=1).isnull().all()) and bool(ds.unit_magnetization.sel(hidden=1).isnull().all())


def test_cli_hidden(tmp_path):
    from typer.testing import CliRunner

    from prcy.cli import app

    out = tmp_path / "c.nc"
    result = CliRunner().invoke(app, ["simulate", "--hidden", "2", "--n-test", "20", "--n", "40", "--algorithm", "gd", "--t-max", "1",
                                      "--seeds", "2", "-o", str(out)])
    assert result.exit_code == 0, result.output
    info = CliRunner().invoke(app, ["info", str(out)])
    assert "hidden=2" in info.output and "unit=2" in info.output
    bad = CliRunner().invoke(app, ["simulate", "--hidden", "0", "-o", str(tmp_path / "x.nc")])
    assert bad.exit_code != 0 and "hidden: 0 is not allowed" in bad.output
    for var in ("unit_magnetization", "quadratic_error"):          # any variable of the file over time
        plot = CliRunner().invoke(app, ["plot", str(out), "--var", var, "-o", str(tmp_path / f"{var}.png")])
        assert plot.exit_code == 0, plot.output
    plot = CliRunner().invoke(app, ["plot", str(out), "--var", "overlap_typo", "-o", str(tmp_path / "x.png")])
    assert plot.exit_code == 2 and "var: no variable 'overlap_typo'" in plot.output
    assert not (tmp_path / "x.png").exists()


USER_LOSS = '''
"""A downstream committee loss: the quadratic network's loss written as a user would (yhat the mean of
h_k^2, Lambda = (yhat - y^2)^2 / 4), published as a loss factory."""
from cpython.pycapsule cimport PyCapsule_New
from libc.math cimport fabs, sqrt
from prcy.kernels.losses cimport CommitteeLoss, committee_loss_init
from prcy.problems import loss_factory

cdef double quad_v(const double* h, Py_ssize_t k, double y, const double* theta, double* dv) noexcept nogil:
    cdef double s = 0.0, r
    cdef Py_ssize_t j
    for j in range(k):
        s += h[j] * h[j]
    r = s / k - y * y
    if dv != NULL:
        for j in range(k):
            dv[j] = r * h[j] / k
    return 0.25 * r * r

cdef double quad_err(const double* h, Py_ssize_t k, double y, const double* theta) noexcept nogil:
    cdef double s = 0.0
    cdef Py_ssize_t j
    for j in range(k):
        s += h[j] * h[j]
    s = fabs(y) - sqrt(s / k)
    return s * s

cdef CommitteeLoss QUAD
committee_loss_init(&QUAD, quad_v, quad_err)

@loss_factory
def capsule():
    return PyCapsule_New(<void*>&QUAD, b"prcy.CommitteeLoss.v1", NULL)
'''


def test_user_committee_loss_capsule(tmp_path):
    """A package built against the installed prcy defines a committee loss in Cython; prcy runs it as a
    capsule and by reference, with the numbers of the built-in loss it transcribes."""
    import subprocess
    import textwrap

    pytest.importorskip("Cython")
    (tmp_path / "userquad.pyx").write_text(USER_LOSS)
    (tmp_path / "setup.py").write_text(textwrap.dedent("""
        import numpy, prcy
        from setuptools import setup, Extension
        from Cython.Build import cythonize
        setup(name="userquad", ext_modules=cythonize(
            [Extension("userquad", ["userquad.pyx"], include_dirs=[numpy.get_include()])],
            include_path=[prcy.get_include()]))
    """))
    build = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    check = textwrap.dedent("""
        import numpy as np, prcy, userquad
        kw = dict(hidden=3, algorithm="psgd", n=40, alpha=3, lr=0.05, t_max=2, points=6, seeds=2, n_test=50)
        user = prcy.simulate(loss=userquad.capsule(), **kw)
        assert user.attrs["loss"] == "user capsule"
        builtin = prcy.simulate(**kw)
        for name in ("magnetization", "train_loss", "test_error_empirical", "unit_magnetization"):
            np.testing.assert_allclose(user[name], builtin[name], rtol=1e-10, atol=1e-12)
        by_name = prcy.simulate(loss="userquad:capsule", **kw)
        np.testing.assert_array_equal(by_name.magnetization.values, user.magnetization.values)
        from prcy.sweep import Sweep, run_sweep
        grid = Sweep.from_options({**kw, "hidden": [2, 3], "loss": "userquad:capsule"})
        swept = run_sweep(grid, "s.nc", processes=1, threads=1, log=lambda line: None)
        np.testing.assert_array_equal(swept.magnetization.sel(hidden=3).values, user.magnetization.values)
        print("ok")
    """)
    run = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-3000:]


def test_gradient_tolerance_stops_where_the_reference_does():
    """``grad_tol``: the max over units of each unit's gradient tangent to its sphere, as the reference."""
    n, m, k = 24, 90, 3
    w0, X, y, Xt, yt = dynamics.generate(np.random.PCG64(5), m, n, 0)
    init = np.random.PCG64(6)
    W = np.array([dynamics.initial_weights(init, w0, 0.9, True) for _ in range(k)])
    ones = np.ones((STEPS, m), np.uint8)
    ref = reference_trajectory(X, y, w0, W, ones, np.zeros((STEPS, k * n)), loss="phase-retrieval", eta=0.05,
                               rescale_ell=None, ridge=0.0, sphere=True, temperatures=np.zeros(STEPS),
                               record_steps=[0, STEPS], committee=True, grad_tol=0.02)
    assert 0 < ref["stop_step"] < STEPS
    out = dynamics.run_trajectory(losses.committee_capsule("phase-retrieval"), X, y, w0, W.ravel(), Xt, yt,
                                  selection="full", params=_params(0.05, 0.0, True, grad_tol=0.02),
                                  record_steps=np.array([0, STEPS]), temp_starts=np.zeros(1, np.int64),
                                  temp_values=np.zeros(1))
    assert out["stop_reason"][0] == dynamics.STOP_REASONS.index("stationary")
    assert out["stop_step"][0] == ref["stop_step"]
    assert _dev(out["w"], ref["weights"][ref["stop_step"]]) <= TOL


def test_given_data_refuses_hidden_units():
    from prcy.data import simulate_data

    X = np.random.default_rng(0).standard_normal((60, 20))
    with pytest.raises(ValueError, match="hidden: 2 is not allowed on given data"):
        simulate_data(X, teacher=np.ones(20), hidden=2, t_max=1, seeds=1)


def test_sweep_refuses_absurd_hidden_before_running(tmp_path):
    from prcy.sweep import Sweep, run_sweep

    sweep = Sweep.from_options(dict(hidden=[1, 10 ** 6], n=10 ** 6, alpha=3, algorithm="gd", t_max=1, seeds=1, n_test=1))
    with pytest.raises(ValueError, match="hidden: 1000000 is not allowed with n = 1000000"):
        run_sweep(sweep, tmp_path / "s.nc", processes=1, threads=1)
    assert not (tmp_path / "s.nc.parts").exists() or not any((tmp_path / "s.nc.parts").glob("task-*.nc"))
