"""The dynamics kernel against a plain NumPy reference (``tests/reference.py``), step for step.

The kernel replays a given selection matrix and noise matrix, so both implementations consume the same
randomness and must agree to round-off (1e-10) over hundreds of steps, for every algorithm variant:
GD, SGD (Bernoulli selection), persistent SGD, Langevin (constant and scheduled temperature), sphere and
ridge, with and without the 1/ell rescaling, each update rule (plain, momentum, Nesterov, Adam; with and
without the velocity projected on the sphere), phase retrieval, linear regression and the symmetric door
with each loss (quartic, square, absolute, door square and logistic), float32 storage of ``X``, and a
number of samples that is not a multiple of the kernel's 8-row blocks.
"""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import observables, reference_trajectory, temperature_per_step  # noqa: E402

from prcy.kernels import dynamics, losses, switching  # noqa: E402

TOL = 1e-10
OBSERVABLES = ("magnetization", "norm", "train_loss", "test_error", "train_error")


def _problem(seed, n, m, m_test=50, dtype=np.float64, **kw):
    return dynamics.generate(np.random.PCG64(seed), m, n, m_test, dtype=dtype, **kw)


def _capsule(loss, theta=()):
    """The built-in ``loss`` with parameters ``theta`` (in the order of ``losses.PARAMETERS``)."""
    return losses.capsule(loss, **dict(zip(losses.PARAMETERS[loss], theta)))


def _run_kernel(X, y, w0, w_init, Xt, yt, *, loss, eta, rescale_ell, ridge, sphere, n_steps, record_steps,
                temp_starts=(0,), temp_values=(0.0,), selection=None, noise=None, tol=1e-300,
                early_stop=False, check_every=10**9, theta=(), optimizer="plain", momentum=0.0, beta1=0.9,
                beta2=0.999, adam_eps=1e-8, project_velocity=False, grad_tol=0.0):
    params = dict(eta=eta, grad_scale=1.0 if rescale_ell is None else 1.0 / rescale_ell, ridge=ridge,
                  sphere=sphere, n_steps=n_steps, check_every=check_every, tol=tol, early_stop=early_stop,
                  grad_tol=grad_tol, optimizer=optimizer, momentum=momentum, beta1=beta1, beta2=beta2,
                  adam_eps=adam_eps, project_velocity=project_velocity)
    kwargs = {}
    if selection is None:
        kind = "full"
    else:
        kind = "replay"
        kwargs["selection_replay"] = np.ascontiguousarray(selection, dtype=np.uint8)
    if noise is not None:
        kwargs["noise_replay"] = np.ascontiguousarray(noise, dtype=np.float64)
    return dynamics.run_trajectory(
        _capsule(loss, theta), X, y, w0, w_init, Xt, yt, selection=kind, params=params,
        record_steps=np.asarray(record_steps, dtype=np.int64),
        temp_starts=np.asarray(temp_starts, dtype=np.int64),
        temp_values=np.asarray(temp_values, dtype=np.float64), **kwargs)


def _max_rel_dev(got, ref):
    got = np.asarray(got, dtype=np.float64).ravel()
    ref = np.asarray(ref, dtype=np.float64).ravel()
    assert got.shape == ref.shape
    return float(np.max(np.abs(got - ref) / np.maximum(1.0, np.abs(ref))))


# ------------------------------------------------------------------------------------------------
# the data and initialization draws


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_generate_matches_documented_draw_order(dtype):
    n, m, m_test, seed = 37, 83, 21, 1234
    w0, X, y, Xt, yt = _problem(seed, n, m, m_test, dtype=dtype)
    assert X.dtype == dtype and Xt.dtype == dtype
    assert X.shape == (m, n) and Xt.shape == (m_test, n) and y.shape == (m,) and yt.shape == (m_test,)
    z = np.random.Generator(np.random.PCG64(seed)).standard_normal(n + m * n + m_test * n)
    teacher = z[:n]
    np.testing.assert_allclose(w0, teacher * np.sqrt(n / (teacher @ teacher)), rtol=1e-13, atol=0)
    assert abs(w0 @ w0 - n) <= 1e-12 * n
    np.testing.assert_array_equal(X, z[n:n + m * n].reshape(m, n).astype(dtype))
    np.testing.assert_array_equal(Xt, z[n + m * n:].reshape(m_test, n).astype(dtype))
    # labels |h0| of the teacher fields of the stored (rounded) inputs
    np.testing.assert_allclose(y, np.abs(X.astype(np.float64) @ w0 / np.sqrt(n)), rtol=0, atol=1e-12)
    np.testing.assert_allclose(yt, np.abs(Xt.astype(np.float64) @ w0 / np.sqrt(n)), rtol=0, atol=1e-12)


def test_door_labels_and_rademacher_teacher():
    """The door's labels sign(|h0| - K) from the signs of the same normals (Dmitriev 2021, section 2.3.2):
    the inputs are those of the Gaussian teacher's draw, the labels are balanced at K = 0.67449."""
    n, m, K = 64, 4000, 0.67449
    w0g, Xg, _, _, _ = _problem(5, n, m, 0)
    w0, X, y, _, _ = _problem(5, n, m, 0, problem="door", teacher="rademacher", onset=K)
    z = np.random.Generator(np.random.PCG64(5)).standard_normal(n)
    np.testing.assert_array_equal(w0, np.where(z >= 0, 1.0, -1.0))
    np.testing.assert_array_equal(X, Xg)
    np.testing.assert_array_equal(y, np.where(np.abs(X @ w0 / np.sqrt(n)) > K, 1.0, -1.0))
    assert abs(y.mean()) < 4 / np.sqrt(m)                      # P(|h0| > K) = 1/2
    with pytest.raises(ValueError, match="onset"):
        _problem(5, n, 10, 0, problem="door", onset=0.0)
    with pytest.raises(ValueError, match="teacher"):
        _problem(5, n, 10, 0, teacher="binary")


@pytest.mark.parametrize("clusters", [2, 3])
def test_mixture_data(clusters):
    """Gaussian mixtures (Mignacco et al. 2020, eqs 1-3): x = c v*/sqrt(n) + sqrt(Delta) z with the
    cluster law and labels of the paper; v* is the Gaussian teacher's draw (|v*|^2 = n)."""
    n, m, delta = 50, 6000, 0.01
    w0g = _problem(9, n, 10, 0)[0]
    w0, X, y, Xt, yt = _problem(9, n, m, 2000, problem=f"mixture-{clusters}", delta=delta)
    np.testing.assert_array_equal(w0, w0g)
    s = X @ w0 / np.sqrt(n)                        # = c + sqrt(delta) g: the cluster, read back
    c = np.round(s)
    assert np.max(np.abs(s - c)) < 0.45
    counts = np.array([np.mean(c == v) for v in (-1, 0, 1)])
    expected = np.array([0.5, 0, 0.5]) if clusters == 2 else np.array([0.25, 0.5, 0.25])
    assert np.all(np.abs(counts - expected) < 4 * np.sqrt(0.25 / m))
    np.testing.assert_array_equal(y, c if clusters == 2 else np.where(c == 0, -1.0, 1.0))
    z = (X - c[:, None] * w0 / np.sqrt(n)) / np.sqrt(delta)      # the noise: i.i.d. N(0, 1)
    assert abs(z.mean()) < 4 / np.sqrt(z.size) and abs(z.var() - 1) < 4 * np.sqrt(2 / z.size)
    assert set(np.unique(yt)) == {-1.0, 1.0}
    with pytest.raises(ValueError, match="delta"):
        _problem(9, n, 10, 0, problem="mixture-2", delta=0.0)


def test_generate_seeds_differ():
    a = _problem(1, 20, 40)
    b = _problem(2, 20, 40)
    assert not np.array_equal(a[1], b[1])


@pytest.mark.parametrize("m0", [0.0, 0.2, 0.9])
def test_initial_weights_sphere(m0):
    n, seed = 53, 99
    w0 = _problem(7, n, 10)[0]
    w = dynamics.initial_weights(np.random.PCG64(seed), w0, m0, True)
    assert abs(w @ w0 / n - m0) <= 1e-12
    assert abs(w @ w - n) <= 1e-12 * n
    # eq 11 from the same normals: w = m0 w0 + c z_perp, |w|^2 = n
    z = np.random.Generator(np.random.PCG64(seed)).standard_normal(n)
    z_perp = z - (z @ w0 / n) * w0
    expected = m0 * w0 + np.sqrt((1.0 - m0 ** 2) * n / (z_perp @ z_perp)) * z_perp
    np.testing.assert_allclose(w, expected, rtol=0, atol=1e-12)


def test_initial_weights_ridge():
    n, seed, m0 = 53, 99, 0.3
    w0 = _problem(7, n, 10)[0]
    w = dynamics.initial_weights(np.random.PCG64(seed), w0, m0, False)
    z = np.random.Generator(np.random.PCG64(seed)).standard_normal(n)
    np.testing.assert_allclose(w, m0 * w0 + z, rtol=0, atol=1e-14)


def test_random_start_is_independent_of_the_teacher():
    """Sphere: z sqrt(n)/|z|, so m(0) = w.w0/n has variance 1/n over seeds; ridge: sqrt(R) z."""
    n = 400
    w0 = _problem(7, n, 10)[0]
    z = np.random.Generator(np.random.PCG64(3)).standard_normal(n)
    w = dynamics.initial_weights(np.random.PCG64(3), w0, 0.9, True, init="random")
    np.testing.assert_allclose(w, z * np.sqrt(n / (z @ z)), rtol=0, atol=1e-13)
    w = dynamics.initial_weights(np.random.PCG64(3), w0, 0.9, False, init="random", init_variance=0.25)
    np.testing.assert_allclose(w, 0.5 * z, rtol=0, atol=1e-15)
    seeds = np.random.SeedSequence(11).spawn(400)          # streams unrelated to the teacher's (PCG64(7))
    m = [dynamics.initial_weights(np.random.PCG64(s), w0, 0.0, True, init="random") @ w0 / n for s in seeds]
    assert abs(np.mean(m)) < 4 / np.sqrt(400 * n) and 0.8 < np.var(m) * n < 1.2


# ------------------------------------------------------------------------------------------------
# trajectories against the reference

K = 240


def _bernoulli(rng, n_steps, m, ell):
    return (rng.random((n_steps, m)) < ell).astype(np.uint8)


def _case(name):
    """Build one scenario: data, initial weights, selection, noise and schedule."""
    c = dict(loss="phase-retrieval", n=60, m=150, dtype=np.float64, eta=0.01, rescale_ell=None, ridge=0.0,
             sphere=True, m0=0.3, temp_starts=(0,), temp_values=(0.0,), selection="ones", ell=1.0, tau=None,
             record="all", problem="phase-retrieval", teacher="gaussian", onset=0.0, delta=1.0, theta=(),
             optimizer={}, init="warm", variance=1.0)
    overrides = {
        "gd_sphere": dict(),
        "gd_sphere_m_multiple_of_8": dict(n=40, m=120),
        "gd_sphere_m_tail_3": dict(n=41, m=107),                     # 13 blocks of 8 + a tail of 3
        "gd_sphere_m_below_8": dict(n=20, m=5, m0=0.5),              # tail only
        "sgd_bernoulli_rescaled": dict(selection="bernoulli", ell=0.5, rescale_ell=0.5),
        "sgd_bernoulli_not_rescaled": dict(selection="bernoulli", ell=0.3, rescale_ell=None, eta=0.02),
        "psgd_rescaled": dict(selection="persistent", ell=0.5, tau=0.2, rescale_ell=0.5, eta=0.01),
        "psgd_not_rescaled_tail": dict(selection="persistent", ell=0.4, tau=0.1, n=50, m=131, eta=0.02),
        "langevin_sphere": dict(temp_values=(0.2,)),
        "langevin_schedule_T_then_0": dict(temp_starts=(0, 120), temp_values=(0.3, 0.0)),
        "langevin_three_pieces": dict(temp_starts=(0, 50, 170), temp_values=(0.3, 0.0, 0.1),
                                      selection="bernoulli", ell=0.5, rescale_ell=0.5),
        "ridge_gd": dict(sphere=False, ridge=0.5),
        "ridge_sgd_rescaled_langevin": dict(sphere=False, ridge=0.5, selection="bernoulli", ell=0.5,
                                            rescale_ell=0.5, temp_values=(0.05,)),
        "ridge_psgd": dict(sphere=False, ridge=0.5, selection="persistent", ell=0.5, tau=0.2, rescale_ell=0.5),
        "linear_gd_sphere": dict(loss="linear-regression"),
        "linear_ridge_sgd": dict(loss="linear-regression", sphere=False, ridge=0.5, selection="bernoulli",
                                 ell=0.5, rescale_ell=0.5, eta=0.05),
        "float32_gd": dict(dtype=np.float32),
        "float32_psgd_ridge_tail": dict(dtype=np.float32, n=45, m=117, sphere=False, ridge=0.5,
                                        selection="persistent", ell=0.5, tau=0.2, rescale_ell=0.5,
                                        temp_values=(0.02,)),
        "sparse_record_grid": dict(record="sparse", selection="bernoulli", ell=0.5, rescale_ell=0.5),
        # losses and problems of Dmitriev 2021 (eqs 2.6-2.8)
        "absolute_loss_psgd": dict(loss="absolute", theta=(1e-3,), selection="persistent", ell=0.5, tau=0.2,
                                   rescale_ell=0.5),
        "door_square_rademacher": dict(problem="door", teacher="rademacher", onset=0.67449, loss="door-square",
                                       theta=(1e-4, 0.67449), eta=0.005),
        "door_logistic_sgd_ridge": dict(problem="door", onset=0.5, loss="door-logistic", theta=(1e-2, 0.5),
                                        sphere=False, ridge=0.1, selection="bernoulli", ell=0.5, rescale_ell=0.5,
                                        eta=0.05),
        # Gaussian mixtures of Mignacco et al. 2020: no rescaling, ridge, random start N(0, R I)
        "mixture2_logistic_gd": dict(problem="mixture-2", delta=0.5, loss="logistic", sphere=False, ridge=0.0,
                                     init="random", variance=0.01, eta=0.2),
        "mixture2_logistic_psgd_ridge": dict(problem="mixture-2", delta=0.5, loss="logistic", sphere=False,
                                             ridge=0.1, init="random", variance=0.01, eta=0.2, selection="persistent",
                                             ell=0.3, tau=1 / 0.6),
        "mixture2_square_sgd_float32": dict(problem="mixture-2", delta=0.5, loss="square", sphere=False, ridge=0.1,
                                            init="random", variance=1.0, eta=0.02, selection="bernoulli", ell=0.3,
                                            dtype=np.float32, n=45, m=117),
        "mixture2_hinge_gd": dict(problem="mixture-2", delta=0.5, loss="hinge", sphere=False, ridge=0.05,
                                  init="random", variance=1.0, eta=0.05),
        "mixture3_quadratic_logistic_gd": dict(problem="mixture-3", delta=0.05, loss="quadratic-logistic",
                                               theta=(0.7,), sphere=False, ridge=0.1, init="random", variance=1.0,
                                               eta=0.05),
        "mixture3_quadratic_square_psgd": dict(problem="mixture-3", delta=0.05, loss="quadratic-square",
                                               theta=(0.7,), sphere=False, ridge=0.1, init="random", variance=0.5,
                                               eta=0.01, selection="persistent", ell=0.3, tau=0.3),
        "mixture3_quadratic_hinge_adam_sphere": dict(problem="mixture-3", delta=0.1, loss="quadratic-hinge",
                                                     theta=(0.7,), eta=0.01, optimizer=dict(
                                                         optimizer="adam", beta1=0.9, beta2=0.999, adam_eps=1e-8)),
        "mixture2_logistic_nesterov_sgd": dict(problem="mixture-2", delta=0.5, loss="logistic", sphere=False,
                                               ridge=0.0, init="random", variance=0.01, eta=0.05, selection="bernoulli",
                                               ell=0.5, optimizer=dict(optimizer="nesterov", momentum=0.8)),
    }
    for opt in ("momentum", "nesterov", "adam"):          # every update rule x selection x constraint
        for sel in ("ones", "bernoulli", "persistent"):
            for sphere in (True, False):
                settings = dict(optimizer="momentum", momentum=0.9) if opt == "momentum" else \
                    dict(optimizer="nesterov", momentum=0.8) if opt == "nesterov" else \
                    dict(optimizer="adam", beta1=0.8, beta2=0.99, adam_eps=1e-6)
                overrides[f"{opt}_{sel}_{'sphere' if sphere else 'ridge'}"] = dict(
                    optimizer=settings, selection=sel, ell=1.0 if sel == "ones" else 0.5, tau=0.2,
                    rescale_ell=None if sel == "ones" else 0.5, sphere=sphere, ridge=0.0 if sphere else 0.3,
                    eta=0.002 if opt != "adam" else 0.01)
    overrides["momentum_projected_velocity_langevin"] = dict(
        optimizer=dict(optimizer="momentum", momentum=0.9, project_velocity=True), temp_values=(0.05,), eta=0.002)
    overrides["adam_projected_float32_tail"] = dict(
        optimizer=dict(optimizer="adam", beta1=0.9, beta2=0.999, adam_eps=1e-8, project_velocity=True),
        dtype=np.float32, n=45, m=117, eta=0.01)
    overrides = overrides[name]
    c.update(overrides)
    seed = sum(map(ord, name))  # a fixed seed per scenario: failures are reproducible
    w0, X, y, Xt, yt = _problem(seed, c["n"], c["m"], 40, dtype=c["dtype"], problem=c["problem"],
                                teacher=c["teacher"], onset=c["onset"], delta=c["delta"])
    w_init = dynamics.initial_weights(np.random.PCG64(seed + 1), w0, c["m0"], c["sphere"], init=c["init"],
                                      init_variance=c["variance"])
    rng = np.random.Generator(np.random.PCG64(seed + 2))
    if c["selection"] == "ones":
        S = np.ones((K, c["m"]), dtype=np.uint8)
    elif c["selection"] == "bernoulli":
        S = _bernoulli(rng, K, c["m"], c["ell"])
    else:
        S = switching.sample("persistent", c["m"], K, c["ell"], c["tau"], c["eta"], np.random.PCG64(seed + 3))
    Z = rng.standard_normal((K, c["n"]))
    if c["record"] == "all":
        rec = np.arange(K + 1, dtype=np.int64)
    else:
        rec = np.array([0, 1, 7, 8, 50, 51, 199, K], dtype=np.int64)
    return c, (w0, X, y, Xt, yt), w_init, S, Z, rec


CASES = ["gd_sphere", "gd_sphere_m_multiple_of_8", "gd_sphere_m_tail_3", "gd_sphere_m_below_8",
         "sgd_bernoulli_rescaled", "sgd_bernoulli_not_rescaled", "psgd_rescaled", "psgd_not_rescaled_tail",
         "langevin_sphere", "langevin_schedule_T_then_0", "langevin_three_pieces", "ridge_gd",
         "ridge_sgd_rescaled_langevin", "ridge_psgd", "linear_gd_sphere", "linear_ridge_sgd", "float32_gd",
         "float32_psgd_ridge_tail", "sparse_record_grid", "absolute_loss_psgd", "door_square_rademacher",
         "door_logistic_sgd_ridge", "momentum_projected_velocity_langevin", "adam_projected_float32_tail",
         "mixture2_logistic_gd", "mixture2_logistic_psgd_ridge", "mixture2_square_sgd_float32", "mixture2_hinge_gd",
         "mixture3_quadratic_logistic_gd", "mixture3_quadratic_square_psgd", "mixture3_quadratic_hinge_adam_sphere",
         "mixture2_logistic_nesterov_sgd"]
CASES += [f"{opt}_{sel}_{con}" for opt in ("momentum", "nesterov", "adam") for sel in ("ones", "bernoulli", "persistent")
          for con in ("sphere", "ridge")]


@pytest.mark.parametrize("name", CASES)
def test_trajectory_matches_reference(name):
    c, (w0, X, y, Xt, yt), w_init, S, Z, rec = _case(name)
    T = temperature_per_step(K, c["temp_starts"], c["temp_values"])
    ref = reference_trajectory(X.astype(np.float64), y, w0, w_init, S, Z, loss=c["loss"], eta=c["eta"],
                               rescale_ell=c["rescale_ell"], ridge=c["ridge"], sphere=c["sphere"],
                               temperatures=T, record_steps=rec, Xt=Xt.astype(np.float64), yt=yt,
                               theta=c["theta"], **c["optimizer"])
    # the scenario is not trivial: the weights move, the selection is partial when it should be
    assert np.linalg.norm(ref["w"] - w_init) > 0.1 * np.sqrt(c["n"])
    if c["selection"] != "ones":
        assert 0 < S.mean() < 1
    out = _run_kernel(X, y, w0, w_init, Xt, yt, loss=c["loss"], eta=c["eta"], rescale_ell=c["rescale_ell"],
                      ridge=c["ridge"], sphere=c["sphere"], n_steps=K, record_steps=rec,
                      temp_starts=c["temp_starts"], temp_values=c["temp_values"], selection=S, noise=Z,
                      theta=c["theta"], **c["optimizer"])
    assert out["stop_reason"][0] == 0
    assert out["stop_step"][0] == K
    devs = {"w": _max_rel_dev(out["w"], ref["w"])}
    for key in OBSERVABLES:
        assert out[key].shape == (1, len(rec))
        devs[key] = _max_rel_dev(out[key][0], ref[key])
    assert max(devs.values()) <= TOL, devs


def test_full_selection_equals_all_ones_replay():
    """GD through ``selection="full"`` (no replay) = the all-ones replay = the reference."""
    c, (w0, X, y, Xt, yt), w_init, S, Z, rec = _case("gd_sphere_m_tail_3")
    kw = dict(loss=c["loss"], eta=c["eta"], rescale_ell=None, ridge=0.0, sphere=True, n_steps=K,
              record_steps=rec)
    full = _run_kernel(X, y, w0, w_init, Xt, yt, selection=None, **kw)
    ones = _run_kernel(X, y, w0, w_init, Xt, yt, selection=S, **kw)
    ref = reference_trajectory(X, y, w0, w_init, S, Z, loss=c["loss"], eta=c["eta"], rescale_ell=None,
                               ridge=0.0, sphere=True, temperatures=np.zeros(K), record_steps=rec, Xt=Xt,
                               yt=yt)
    assert _max_rel_dev(full["w"], ones["w"]) <= TOL
    assert _max_rel_dev(full["w"], ref["w"]) <= TOL
    for key in OBSERVABLES:
        assert _max_rel_dev(full[key][0], ones[key][0]) <= TOL
        assert _max_rel_dev(full[key][0], ref[key]) <= TOL


def test_noise_matters():
    """A Langevin run with the noise replayed differs from the T = 0 run (the noise is really used)."""
    c, (w0, X, y, Xt, yt), w_init, S, Z, rec = _case("langevin_sphere")
    kw = dict(loss=c["loss"], eta=c["eta"], rescale_ell=None, ridge=0.0, sphere=True, n_steps=K,
              record_steps=rec, selection=S, noise=Z)
    hot = _run_kernel(X, y, w0, w_init, Xt, yt, temp_values=(0.2,), **kw)
    cold = _run_kernel(X, y, w0, w_init, Xt, yt, temp_values=(0.0,), **kw)
    assert np.linalg.norm(hot["w"] - cold["w"]) > 1.0


# ------------------------------------------------------------------------------------------------
# stop bookkeeping


def _converging_problem():
    n, m = 40, 120
    w0, X, y, Xt, yt = _problem(31, n, m, 30)
    w_init = dynamics.initial_weights(np.random.PCG64(32), w0, 0.8, True)
    return n, m, (w0, X, y, Xt, yt), w_init


@pytest.mark.parametrize("early_stop", [True, False])
def test_solved_step_and_convergence_stop(early_stop):
    n, m, (w0, X, y, Xt, yt), w_init = _converging_problem()
    n_steps, eta, tol = 1500, 0.02, 1e-8
    rec = np.arange(0, n_steps + 1, 25, dtype=np.int64)
    ref = reference_trajectory(X, y, w0, w_init, np.ones((n_steps, m), np.uint8), np.zeros((n_steps, n)),
                               loss="phase-retrieval", eta=eta, rescale_ell=None, ridge=0.0, sphere=True,
                               temperatures=np.zeros(n_steps), record_steps=rec, Xt=Xt, yt=yt)
    below = np.flatnonzero(ref["loss_history"] < tol)
    assert below.size and 0 < below[0] < n_steps - 200, "the scenario must converge mid-run"
    first = int(below[0])
    # margins so that round-off cannot move the crossing by a step
    assert ref["loss_history"][first - 1] > tol * (1 + 1e-6) and ref["loss_history"][first] < tol * (1 - 1e-6)
    out = _run_kernel(X, y, w0, w_init, Xt, yt, loss="phase-retrieval", eta=eta, rescale_ell=None, ridge=0.0,
                      sphere=True, n_steps=n_steps, record_steps=rec, selection=None, tol=tol,
                      early_stop=early_stop, check_every=1)
    assert out["solved_step"][0] == first
    if not early_stop:
        assert out["stop_reason"][0] == 0 and out["stop_step"][0] == n_steps
        for key in OBSERVABLES:
            assert _max_rel_dev(out[key][0], ref[key]) <= TOL
        assert _max_rel_dev(out["w"], ref["w"]) <= TOL
        return
    assert out["stop_reason"][0] == 1
    stop = int(out["stop_step"][0])
    assert stop == first
    # the final weights are the state in which convergence was detected (before that step's update)
    assert _max_rel_dev(out["w"], ref["weights"][stop]) <= TOL
    before = rec <= stop
    after = rec > stop
    assert before.sum() > 2 and after.sum() > 2
    final_obs = reference_trajectory(X, y, w0, ref["weights"][stop], np.ones((0, m), np.uint8),
                                     np.zeros((0, n)), loss="phase-retrieval", eta=eta, rescale_ell=None,
                                     ridge=0.0, sphere=True, temperatures=np.zeros(0),
                                     record_steps=[0], Xt=Xt, yt=yt)
    for key in OBSERVABLES:
        got = out[key][0]
        assert _max_rel_dev(got[before], ref[key][before]) <= TOL
        # carried forward: constant, equal to the state at the stop
        assert np.all(got[after] == got[after][0])
        assert _max_rel_dev(got[after], np.full(after.sum(), final_obs[key][0])) <= TOL
    assert np.all(out["train_loss"][0][after] < tol)


@pytest.mark.parametrize("loss, theta, problem, eta", [("logistic", (), dict(problem="mixture-2"), 2.0),
                                                        ("quadratic-logistic", (0.7,),
                                                         dict(problem="mixture-3", onset=0.7), 0.5)])
def test_full_batch_success_of_a_logistic_loss_is_decided_on_the_exact_loss(loss, theta, problem, eta):
    """A full-batch step bounds a logistic loss's sum without its log and takes the exact sum only where
    the bounds straddle ``tol m``: a threshold a relative 1e-12 above or below the exact loss of one step
    (inside the bounds, whose relative width is ~1e-7 for the separable two clusters, ~1e-2 for the
    three) gives the step of the exact comparison."""
    n, m, n_steps = 40, 60, 200
    w0, X, y, Xt, yt = _problem(3, n, m, 10, delta=0.05, **problem)
    kw = dict(loss=loss, theta=theta, eta=eta, rescale_ell=None, ridge=0.0, sphere=False, n_steps=n_steps,
              record_steps=np.arange(n_steps + 1), check_every=1)
    w_init = np.full(n, 0.01)
    exact = _run_kernel(X, y, w0, w_init, Xt, yt, **kw)["train_loss"][0]          # loss_pass / m per step
    assert np.all(np.diff(exact)[140:160] < -1e-9 * exact[141:161])
    for factor, solved in ((1 + 1e-12, 150), (1 - 1e-12, 151)):
        out = _run_kernel(X, y, w0, w_init, Xt, yt, tol=exact[150] * factor, **kw)
        assert out["solved_step"][0] == solved


@pytest.mark.parametrize("check_every", [1, 7])
def test_solved_step_with_partial_selection(check_every):
    """SGD replay: the loss is checked every ``check_every`` steps and at the recording steps."""
    n, m, (w0, X, y, Xt, yt), w_init = _converging_problem()
    n_steps, eta, tol, ell = 1500, 0.02, 1e-8, 0.5
    S = _bernoulli(np.random.Generator(np.random.PCG64(5)), n_steps, m, ell)
    rec = np.arange(0, n_steps + 1, 100, dtype=np.int64)
    ref = reference_trajectory(X, y, w0, w_init, S, np.zeros((n_steps, n)), loss="phase-retrieval", eta=eta,
                               rescale_ell=ell, ridge=0.0, sphere=True, temperatures=np.zeros(n_steps),
                               record_steps=rec, Xt=Xt, yt=yt)
    checked = np.zeros(n_steps + 1, dtype=bool)
    checked[::check_every] = True
    checked[rec] = True
    hits = np.flatnonzero(checked & (ref["loss_history"] < tol))
    assert hits.size and hits[0] < n_steps - 100
    out = _run_kernel(X, y, w0, w_init, Xt, yt, loss="phase-retrieval", eta=eta, rescale_ell=ell, ridge=0.0,
                      sphere=True, n_steps=n_steps, record_steps=rec, selection=S, tol=tol,
                      early_stop=False, check_every=check_every)
    assert out["solved_step"][0] == hits[0]
    assert out["stop_reason"][0] == 0


def test_never_solved():
    n, m, (w0, X, y, Xt, yt), w_init = _converging_problem()
    rec = np.array([0, 100], dtype=np.int64)
    out = _run_kernel(X, y, w0, w_init, Xt, yt, loss="phase-retrieval", eta=0.02, rescale_ell=None, ridge=0.0,
                      sphere=True, n_steps=100, record_steps=rec, tol=1e-8, early_stop=True, check_every=1)
    assert out["stop_reason"][0] == 0 and out["stop_step"][0] == 100
    assert out["solved_step"][0] < 0 or out["solved_step"][0] > 100


def test_divergence_stops_with_nan_records():
    n, m = 40, 100
    w0, X, y, Xt, yt = _problem(41, n, m, 30)
    w_init = dynamics.initial_weights(np.random.PCG64(42), w0, 0.2, False)
    n_steps, eta = 60, 50.0
    rec = np.arange(n_steps + 1, dtype=np.int64)
    ones = np.ones((n_steps, m), np.uint8)
    ref = reference_trajectory(X, y, w0, w_init, ones, np.zeros((n_steps, n)), loss="phase-retrieval",
                               eta=eta, rescale_ell=None, ridge=0.5, sphere=False,
                               temperatures=np.zeros(n_steps), record_steps=rec, Xt=Xt, yt=yt)
    finite = np.isfinite(np.sum(ref["weights"] ** 2, axis=1))
    assert not finite.all() and finite[0]
    first_bad = int(np.argmin(finite))          # first state whose |w|^2 is not finite
    out = _run_kernel(X, y, w0, w_init, Xt, yt, loss="phase-retrieval", eta=eta, rescale_ell=None,
                      ridge=0.5, sphere=False, n_steps=n_steps, record_steps=rec, selection=None,
                      tol=1e-300, early_stop=True, check_every=1)
    assert out["stop_reason"][0] == 2
    assert out["solved_step"][0] < 0
    stop = int(out["stop_step"][0])
    assert first_bad - 1 <= stop <= first_bad
    for key in OBSERVABLES:
        got = out[key][0]
        assert np.all(np.isnan(got[rec > stop])), (key, got)
        ok = rec < first_bad                     # |w|^2 finite (up to ~1e221; the loss may overflow to inf)
        assert ok.sum() >= 3 and np.all(np.isfinite(ref[key][rec < first_bad - 1]))
        np.testing.assert_allclose(got[ok], ref[key][ok], rtol=1e-9, atol=0)


@pytest.mark.parametrize("problem, sphere", [("linear-regression", False), ("phase-retrieval", True)])
def test_stationary_stop(problem, sphere):
    """``grad_tol``: a seed stops at the first step whose gradient (tangent to the sphere there) has
    ``max |G_j| < grad_tol`` (Dmitriev 2021, ch. 3), with its state carried forward, like the reference."""
    n, m = 40, 120
    w0, X, y, Xt, yt = _problem(31, n, m, 30, problem=problem)
    w_init = dynamics.initial_weights(np.random.PCG64(32), w0, 0.8, sphere)
    n_steps, eta, grad_tol, ridge = 3000, 0.02, 1e-7, 0.0 if sphere else 0.3
    rec = np.arange(0, n_steps + 1, 50, dtype=np.int64)
    kw = dict(loss=problem, eta=eta, rescale_ell=None, ridge=ridge, sphere=sphere, record_steps=rec)
    ref = reference_trajectory(X, y, w0, w_init, np.ones((n_steps, m), np.uint8), np.zeros((n_steps, n)),
                               temperatures=np.zeros(n_steps), Xt=Xt, yt=yt, grad_tol=grad_tol, **kw)
    stop = ref["stop_step"]
    assert 100 < stop < n_steps - 200, "the scenario must become stationary mid-run"
    out = _run_kernel(X, y, w0, w_init, Xt, yt, n_steps=n_steps, grad_tol=grad_tol, **kw)
    assert out["stop_reason"][0] == 4 and out["stop_step"][0] == stop
    assert dynamics.STOP_REASONS[4] == "stationary"
    assert _max_rel_dev(out["w"], ref["weights"][stop]) <= TOL
    before = rec <= stop
    final = observables(ref["weights"][stop], w0, X, y, Xt, yt, problem)
    for key, value in zip(OBSERVABLES, final):
        got = out[key][0]
        assert _max_rel_dev(got[before], ref[key]) <= TOL
        assert _max_rel_dev(got[~before], np.full((~before).sum(), value)) <= TOL
