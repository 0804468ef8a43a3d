"""The dynamics kernel against a plain NumPy reference (``tests/reference.py``), step for step.

The kernel replays a given selection matrix and noise matrix, so both implementations consume the same
randomness and must agree to round-off (1e-10) over hundreds of steps, for every algorithm variant:
GD, SGD (Bernoulli selection), persistent SGD, Langevin (constant and scheduled temperature), sphere and
ridge, with and without the 1/ell rescaling, phase retrieval and linear regression, float32 storage of
``X``, and a number of samples that is not a multiple of the kernel's 8-row blocks.
"""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import reference_trajectory, temperature_per_step  # noqa: E402

from prcy.kernels import dynamics, losses, switching  # noqa: E402

TOL = 1e-10
OBSERVABLES = ("magnetization", "norm", "train_loss", "test_error")


def _problem(seed, n, m, m_test=50, dtype=np.float64):
    return dynamics.generate(np.random.PCG64(seed), m, n, m_test, dtype=dtype)


def _run_kernel(X, h0, w0, w_init, Xt, h0t, *, loss, eta, rescale_ell, ridge, sphere, n_steps, record_steps,
                temp_starts=(0,), temp_values=(0.0,), selection=None, noise=None, tol=1e-300,
                early_stop=False, check_every=10**9):
    params = dict(eta=eta, grad_scale=1.0 if rescale_ell is None else 1.0 / rescale_ell, ridge=ridge,
                  sphere=sphere, n_steps=n_steps, check_every=check_every, tol=tol, early_stop=early_stop)
    kwargs = {}
    if selection is None:
        kind = "full"
    else:
        kind = "replay"
        kwargs["selection_replay"] = np.ascontiguousarray(selection, dtype=np.uint8)
    if noise is not None:
        kwargs["noise_replay"] = np.ascontiguousarray(noise, dtype=np.float64)
    return dynamics.run_trajectory(
        losses.capsule(loss), X, h0, w0, w_init, Xt, h0t, selection=kind, params=params,
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
    w0, X, h0, Xt, h0t = _problem(seed, n, m, m_test, dtype=dtype)
    assert X.dtype == dtype and Xt.dtype == dtype
    assert X.shape == (m, n) and Xt.shape == (m_test, n) and h0.shape == (m,) and h0t.shape == (m_test,)
    z = np.random.Generator(np.random.PCG64(seed)).standard_normal(n + m * n + m_test * n)
    teacher = z[:n]
    np.testing.assert_allclose(w0, teacher * np.sqrt(n / (teacher @ teacher)), rtol=1e-13, atol=0)
    assert abs(w0 @ w0 - n) <= 1e-12 * n
    np.testing.assert_array_equal(X, z[n:n + m * n].reshape(m, n).astype(dtype))
    np.testing.assert_array_equal(Xt, z[n + m * n:].reshape(m_test, n).astype(dtype))
    # teacher fields from the stored (rounded) inputs
    np.testing.assert_allclose(h0, X.astype(np.float64) @ w0 / np.sqrt(n), rtol=0, atol=1e-12)
    np.testing.assert_allclose(h0t, Xt.astype(np.float64) @ w0 / np.sqrt(n), rtol=0, atol=1e-12)


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


# ------------------------------------------------------------------------------------------------
# trajectories against the reference

K = 240


def _bernoulli(rng, n_steps, m, ell):
    return (rng.random((n_steps, m)) < ell).astype(np.uint8)


def _case(name):
    """Build one scenario: data, initial weights, selection, noise and schedule."""
    c = dict(loss="phase-retrieval", n=60, m=150, dtype=np.float64, eta=0.01, rescale_ell=None, ridge=0.0,
             sphere=True, m0=0.3, temp_starts=(0,), temp_values=(0.0,), selection="ones", ell=1.0, tau=None,
             record="all")
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
    }[name]
    c.update(overrides)
    seed = sum(map(ord, name))  # a fixed seed per scenario: failures are reproducible
    w0, X, h0, Xt, h0t = _problem(seed, c["n"], c["m"], 40, dtype=c["dtype"])
    w_init = dynamics.initial_weights(np.random.PCG64(seed + 1), w0, c["m0"], c["sphere"])
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
    return c, (w0, X, h0, Xt, h0t), w_init, S, Z, rec


CASES = ["gd_sphere", "gd_sphere_m_multiple_of_8", "gd_sphere_m_tail_3", "gd_sphere_m_below_8",
         "sgd_bernoulli_rescaled", "sgd_bernoulli_not_rescaled", "psgd_rescaled", "psgd_not_rescaled_tail",
         "langevin_sphere", "langevin_schedule_T_then_0", "langevin_three_pieces", "ridge_gd",
         "ridge_sgd_rescaled_langevin", "ridge_psgd", "linear_gd_sphere", "linear_ridge_sgd", "float32_gd",
         "float32_psgd_ridge_tail", "sparse_record_grid"]


@pytest.mark.parametrize("name", CASES)
def test_trajectory_matches_reference(name):
    c, (w0, X, h0, Xt, h0t), w_init, S, Z, rec = _case(name)
    T = temperature_per_step(K, c["temp_starts"], c["temp_values"])
    ref = reference_trajectory(X.astype(np.float64), h0, w0, w_init, S, Z, loss=c["loss"], eta=c["eta"],
                               rescale_ell=c["rescale_ell"], ridge=c["ridge"], sphere=c["sphere"],
                               temperatures=T, record_steps=rec, Xt=Xt.astype(np.float64), h0t=h0t)
    # the scenario is not trivial: the weights move, the selection is partial when it should be
    assert np.linalg.norm(ref["w"] - w_init) > 0.1 * np.sqrt(c["n"])
    if c["selection"] != "ones":
        assert 0 < S.mean() < 1
    out = _run_kernel(X, h0, w0, w_init, Xt, h0t, loss=c["loss"], eta=c["eta"], rescale_ell=c["rescale_ell"],
                      ridge=c["ridge"], sphere=c["sphere"], n_steps=K, record_steps=rec,
                      temp_starts=c["temp_starts"], temp_values=c["temp_values"], selection=S, noise=Z)
    assert out["stop_reason"][0] == 0
    assert out["stop_step"][0] == K
    devs = {"w": _max_rel_dev(out["w"], ref["w"])}
    for key in OBSERVABLES:
        assert out[key].shape == (1, len(rec))
        devs[key] = _max_rel_dev(out[key][0], ref[key])
    assert max(devs.values()) <= TOL, devs


def test_full_selection_equals_all_ones_replay():
    """GD through ``selection="full"`` (no replay) = the all-ones replay = the reference."""
    c, (w0, X, h0, Xt, h0t), w_init, S, Z, rec = _case("gd_sphere_m_tail_3")
    kw = dict(loss=c["loss"], eta=c["eta"], rescale_ell=None, ridge=0.0, sphere=True, n_steps=K,
              record_steps=rec)
    full = _run_kernel(X, h0, w0, w_init, Xt, h0t, selection=None, **kw)
    ones = _run_kernel(X, h0, w0, w_init, Xt, h0t, selection=S, **kw)
    ref = reference_trajectory(X, h0, w0, w_init, S, Z, loss=c["loss"], eta=c["eta"], rescale_ell=None,
                               ridge=0.0, sphere=True, temperatures=np.zeros(K), record_steps=rec, Xt=Xt,
                               h0t=h0t)
    assert _max_rel_dev(full["w"], ones["w"]) <= TOL
    assert _max_rel_dev(full["w"], ref["w"]) <= TOL
    for key in OBSERVABLES:
        assert _max_rel_dev(full[key][0], ones[key][0]) <= TOL
        assert _max_rel_dev(full[key][0], ref[key]) <= TOL


def test_noise_matters():
    """A Langevin run with the noise replayed differs from the T = 0 run (the noise is really used)."""
    c, (w0, X, h0, Xt, h0t), w_init, S, Z, rec = _case("langevin_sphere")
    kw = dict(loss=c["loss"], eta=c["eta"], rescale_ell=None, ridge=0.0, sphere=True, n_steps=K,
              record_steps=rec, selection=S, noise=Z)
    hot = _run_kernel(X, h0, w0, w_init, Xt, h0t, temp_values=(0.2,), **kw)
    cold = _run_kernel(X, h0, w0, w_init, Xt, h0t, temp_values=(0.0,), **kw)
    assert np.linalg.norm(hot["w"] - cold["w"]) > 1.0


# ------------------------------------------------------------------------------------------------
# stop bookkeeping


def _converging_problem():
    n, m = 40, 120
    w0, X, h0, Xt, h0t = _problem(31, n, m, 30)
    w_init = dynamics.initial_weights(np.random.PCG64(32), w0, 0.8, True)
    return n, m, (w0, X, h0, Xt, h0t), w_init


@pytest.mark.parametrize("early_stop", [True, False])
def test_solved_step_and_convergence_stop(early_stop):
    n, m, (w0, X, h0, Xt, h0t), w_init = _converging_problem()
    n_steps, eta, tol = 1500, 0.02, 1e-8
    rec = np.arange(0, n_steps + 1, 25, dtype=np.int64)
    ref = reference_trajectory(X, h0, w0, w_init, np.ones((n_steps, m), np.uint8), np.zeros((n_steps, n)),
                               loss="phase-retrieval", eta=eta, rescale_ell=None, ridge=0.0, sphere=True,
                               temperatures=np.zeros(n_steps), record_steps=rec, Xt=Xt, h0t=h0t)
    below = np.flatnonzero(ref["loss_history"] < tol)
    assert below.size and 0 < below[0] < n_steps - 200, "the scenario must converge mid-run"
    first = int(below[0])
    # margins so that round-off cannot move the crossing by a step
    assert ref["loss_history"][first - 1] > tol * (1 + 1e-6) and ref["loss_history"][first] < tol * (1 - 1e-6)
    out = _run_kernel(X, h0, w0, w_init, Xt, h0t, loss="phase-retrieval", eta=eta, rescale_ell=None, ridge=0.0,
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
    final_obs = reference_trajectory(X, h0, w0, ref["weights"][stop], np.ones((0, m), np.uint8),
                                     np.zeros((0, n)), loss="phase-retrieval", eta=eta, rescale_ell=None,
                                     ridge=0.0, sphere=True, temperatures=np.zeros(0),
                                     record_steps=[0], Xt=Xt, h0t=h0t)
    for key in OBSERVABLES:
        got = out[key][0]
        assert _max_rel_dev(got[before], ref[key][before]) <= TOL
        # carried forward: constant, equal to the state at the stop
        assert np.all(got[after] == got[after][0])
        assert _max_rel_dev(got[after], np.full(after.sum(), final_obs[key][0])) <= TOL
    assert np.all(out["train_loss"][0][after] < tol)


@pytest.mark.parametrize("check_every", [1, 7])
def test_solved_step_with_partial_selection(check_every):
    """SGD replay: the loss is checked every ``check_every`` steps and at the recording steps."""
    n, m, (w0, X, h0, Xt, h0t), w_init = _converging_problem()
    n_steps, eta, tol, ell = 1500, 0.02, 1e-8, 0.5
    S = _bernoulli(np.random.Generator(np.random.PCG64(5)), n_steps, m, ell)
    rec = np.arange(0, n_steps + 1, 100, dtype=np.int64)
    ref = reference_trajectory(X, h0, w0, w_init, S, np.zeros((n_steps, n)), loss="phase-retrieval", eta=eta,
                               rescale_ell=ell, ridge=0.0, sphere=True, temperatures=np.zeros(n_steps),
                               record_steps=rec, Xt=Xt, h0t=h0t)
    checked = np.zeros(n_steps + 1, dtype=bool)
    checked[::check_every] = True
    checked[rec] = True
    hits = np.flatnonzero(checked & (ref["loss_history"] < tol))
    assert hits.size and hits[0] < n_steps - 100
    out = _run_kernel(X, h0, w0, w_init, Xt, h0t, loss="phase-retrieval", eta=eta, rescale_ell=ell, ridge=0.0,
                      sphere=True, n_steps=n_steps, record_steps=rec, selection=S, tol=tol,
                      early_stop=False, check_every=check_every)
    assert out["solved_step"][0] == hits[0]
    assert out["stop_reason"][0] == 0


def test_never_solved():
    n, m, (w0, X, h0, Xt, h0t), w_init = _converging_problem()
    rec = np.array([0, 100], dtype=np.int64)
    out = _run_kernel(X, h0, w0, w_init, Xt, h0t, loss="phase-retrieval", eta=0.02, rescale_ell=None, ridge=0.0,
                      sphere=True, n_steps=100, record_steps=rec, tol=1e-8, early_stop=True, check_every=1)
    assert out["stop_reason"][0] == 0 and out["stop_step"][0] == 100
    assert out["solved_step"][0] < 0 or out["solved_step"][0] > 100


def test_divergence_stops_with_nan_records():
    n, m = 40, 100
    w0, X, h0, Xt, h0t = _problem(41, n, m, 30)
    w_init = dynamics.initial_weights(np.random.PCG64(42), w0, 0.2, False)
    n_steps, eta = 60, 50.0
    rec = np.arange(n_steps + 1, dtype=np.int64)
    ones = np.ones((n_steps, m), np.uint8)
    ref = reference_trajectory(X, h0, w0, w_init, ones, np.zeros((n_steps, n)), loss="phase-retrieval",
                               eta=eta, rescale_ell=None, ridge=0.5, sphere=False,
                               temperatures=np.zeros(n_steps), record_steps=rec, Xt=Xt, h0t=h0t)
    finite = np.isfinite(np.sum(ref["weights"] ** 2, axis=1))
    assert not finite.all() and finite[0]
    first_bad = int(np.argmin(finite))          # first state whose |w|^2 is not finite
    out = _run_kernel(X, h0, w0, w_init, Xt, h0t, loss="phase-retrieval", eta=eta, rescale_ell=None,
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
