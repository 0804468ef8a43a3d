"""The driver: the paper's claim at a small size, thread-count independence, reproducibility,
shared data, stopping rules, per-seed fault isolation, interruption, NetCDF round trip."""
import numpy as np
import pytest
import xarray as xr
from scipy.stats import fisher_exact

import prcy
from prcy.io import open_dataset, write_dataset
from prcy.kernels import dynamics, losses
from prcy.simulate import kernel_parameters, seed_streams
from prcy.specs import SimulationSpec

SMALL = dict(n=40, alpha=3, m0=0.2, t_max=5, seeds=6, points=20)


def test_persistent_sgd_solves_more_seeds_than_gd():
    """(c) Mignacco et al. 2021, fig 2 (alpha = 3, m0 = 0.2, ell = 0.5, tau = 1): persistent SGD
    reaches training loss < 1e-7 on a clearly larger fraction of seeds than GD. At N = 192 and
    t = 100 the fractions are about 0.25 (GD) and 0.75 (P-SGD), 5 standard errors apart."""
    ds = prcy.simulate(algorithm=["gd", "psgd"], n=192, alpha=3, m0=0.2, lr=0.01, batch_fraction=0.5,
                       persistence=1.0, t_max=100, seeds=64, early_stop=True, seed=2021)
    k_gd = int(ds.success.sel(algorithm="gd").sum())
    k_psgd = int(ds.success.sel(algorithm="psgd").sum())
    assert k_psgd / 64 - k_gd / 64 > 0.25, (k_gd, k_psgd)
    _, p_value = fisher_exact([[k_psgd, 64 - k_psgd], [k_gd, 64 - k_gd]], alternative="greater")
    assert p_value < 1e-3
    solved = ds.sel(algorithm="psgd").where(ds.success.sel(algorithm="psgd"), drop=True)
    assert (solved.train_loss.isel(time=-1) < 1e-7).all()          # carried forward after early stop
    assert (solved.stop_reason == "converged").all()


@pytest.mark.parametrize("algorithm,extra", [("gd", {}), ("sgd", {}), ("psgd", {}),
                                             ("langevin", dict(temperature_schedule=((0, 0.5), (2, 0.0))))])
def test_results_are_bitwise_identical_for_any_thread_count(algorithm, extra):
    """(d) one RNG stream per seed: 1 and 2 threads give the same bits."""
    runs = [prcy.simulate(algorithm=algorithm, threads=t, **SMALL, **extra) for t in (1, 2)]
    for name in ("magnetization", "norm", "train_loss", "solved_time", "stop_time"):
        np.testing.assert_array_equal(runs[0][name].values, runs[1][name].values)
    assert runs[0].attrs["threads"] == 1 and runs[1].attrs["threads"] == 2


def test_anneal_at_equals_the_explicit_schedule():
    a = prcy.simulate(algorithm="langevin", temperature=0.5, anneal_at=2.0, **SMALL)
    b = prcy.simulate(algorithm="langevin", temperature_schedule=((0, 0.5), (2.0, 0.0)), **SMALL)
    np.testing.assert_array_equal(a.magnetization.values, b.magnetization.values)
    c = prcy.simulate(algorithm="langevin", temperature=0.5, **SMALL)
    assert not np.array_equal(a.magnetization.values, c.magnetization.values)


def test_a_seed_does_not_depend_on_the_others():
    full = prcy.simulate(algorithm="psgd", **{**SMALL, "seeds": 6})
    part = prcy.simulate(algorithm="psgd", **{**SMALL, "seeds": 2}, first_seed=3)
    np.testing.assert_array_equal(part.seed.values, [3, 4])
    np.testing.assert_array_equal(full.magnetization.sel(seed=[3, 4]).values, part.magnetization.values)
    other_root = prcy.simulate(algorithm="psgd", **SMALL, seed=1)
    assert not np.array_equal(other_root.magnetization.values, full.magnetization.values)


def test_simulate_matches_the_kernel_twin_on_the_documented_streams():
    """A seed of prcy.simulate equals run_trajectory fed with that seed's data, init and dynamics
    streams: the RNG provenance recorded in the file is the one used."""
    spec = SimulationSpec.from_flat(algorithm="psgd", **SMALL)
    ds = prcy.simulate(spec)
    streams = seed_streams(spec)
    s = 4
    w0, X, y, Xt, yt = dynamics.generate(streams["data"][s], spec.problem.m, spec.problem.n)
    w = dynamics.initial_weights(streams["init"][s], w0, spec.init.m0, True)
    p_on, p_off = spec.algorithm.switching_probabilities()
    params = kernel_parameters(spec)
    assert (params["eta"], params["grad_scale"], params["n_steps"], params["check_every"]) == (0.01, 2.0, 500, 100)
    out = dynamics.run_trajectory(
        losses.capsule("phase-retrieval"), X, y, w0, w, Xt, yt, selection="persistent", ell=0.5,
        p_on=p_on, p_off=p_off, rng=streams["dynamics"][s], params=params,
        record_steps=spec.recording.steps(0.01), temp_starts=np.array([0]), temp_values=np.array([0.0]))
    np.testing.assert_array_equal(ds.magnetization.sel(seed=s).values, out["magnetization"][0])
    np.testing.assert_array_equal(ds.train_loss.sel(seed=s).values, out["train_loss"][0])


def test_shared_data_varies_only_initialization_and_noise():
    spec = SimulationSpec.from_flat(algorithm="sgd", share_data=True, **SMALL)
    ds = prcy.simulate(spec)
    streams = seed_streams(spec)
    w0, X, y, Xt, yt = dynamics.generate(streams["data"][0], spec.problem.m, spec.problem.n)
    for s in (0, 3):   # every seed sees seed 0's dataset, with its own init and dynamics streams
        w = dynamics.initial_weights(streams["init"][s], w0, spec.init.m0, True)
        out = dynamics.run_trajectory(
            losses.capsule("phase-retrieval"), X, y, w0, w, Xt, yt, selection="bernoulli", ell=0.5,
            p_on=0.5, p_off=0.5, rng=streams["dynamics"][s], params=kernel_parameters(spec),
            record_steps=spec.recording.steps(0.01), temp_starts=np.array([0]), temp_values=np.array([0.0]))
        np.testing.assert_array_equal(ds.magnetization.sel(seed=s).values, out["magnetization"][0])
    own = prcy.simulate(algorithm="sgd", **SMALL)
    np.testing.assert_array_equal(own.magnetization.sel(seed=0).values, ds.magnetization.sel(seed=0).values)
    assert not np.array_equal(own.magnetization.sel(seed=3).values, ds.magnetization.sel(seed=3).values)


def test_several_algorithms_share_seeds_and_stack():
    ds = prcy.simulate(algorithm=["gd", "sgd", "psgd", "langevin"], temperature=0.1, **SMALL)
    assert ds.magnetization.dims == ("algorithm", "seed", "time")
    assert list(ds.algorithm.values) == ["gd", "sgd", "psgd", "langevin"]
    # same teacher, data and initialization seed by seed: identical state at t = 0
    t0 = ds.isel(time=0)
    assert float(abs(t0.train_loss - t0.train_loss.sel(algorithm="gd")).max()) == 0.0
    assert ds.time.values[0] == 0.0 and ds.time.values[-1] == pytest.approx(5.0)
    np.testing.assert_array_equal(ds.step.values, np.rint(ds.time.values / 0.01))


def test_gd_on_the_sphere_keeps_the_norm_and_improves_the_loss():
    ds = prcy.simulate(algorithm="gd", **SMALL)
    np.testing.assert_allclose(ds.norm.values, 1.0, atol=1e-12)
    np.testing.assert_allclose(ds.magnetization.isel(time=0).values, 0.2, atol=1e-12)
    assert (ds.train_loss.isel(time=-1) < ds.train_loss.isel(time=0)).all()
    from prcy.analysis import label_mse
    np.testing.assert_allclose(ds.test_error.values, label_mse(ds.magnetization.values, ds.norm.values))


def test_empirical_test_error_tracks_the_formula():
    ds = prcy.simulate(algorithm="gd", n=200, alpha=3, m0=0.5, t_max=3, seeds=2, n_test=20000, points=5)
    emp, formula = ds.test_error_empirical.values, ds.test_error.values
    # 20000 held-out samples: the standard error of the mean label MSE is about 1% of its value
    np.testing.assert_allclose(emp, formula, rtol=0.06)


def test_float32_storage_runs_and_stays_close_to_float64():
    a = prcy.simulate(algorithm="gd", precision="float64", **SMALL)
    b = prcy.simulate(algorithm="gd", precision="float32", **SMALL)
    assert b.attrs["precision"] == "float32"
    # the dataset is the float32-rounded one: close to, not equal to, the float64 run over t <= 5
    diff = float(abs(a.magnetization - b.magnetization).max())
    assert 0 < diff < 1e-3


def test_early_stop_carries_the_final_state_forward():
    ds = prcy.simulate(algorithm="gd", n=40, alpha=3, m0=0.9, t_max=50, seeds=4, tol=1e-4, early_stop=True)
    assert ds.success.all() and (ds.stop_reason == "converged").all()
    for s in ds.seed.values:
        one = ds.sel(seed=s)
        stop = float(one.stop_time)
        assert stop == float(one.solved_time) < 50
        curves = one[["magnetization", "train_loss"]]
        after = curves.where(one.time >= stop, drop=True)
        assert after.sizes["time"] >= 2
        assert np.all(after.magnetization.values == after.magnetization.values[-1])
        assert after.train_loss.values[-1] < 1e-4
        before = curves.where(one.time < stop, drop=True)
        assert np.all(before.train_loss.values >= 1e-4)   # not solved before solved_time


def test_without_early_stop_the_run_continues_after_success():
    ds = prcy.simulate(algorithm="gd", n=40, alpha=3, m0=0.9, t_max=50, seeds=2, tol=1e-4)
    assert ds.success.all() and (ds.stop_reason == "max_time").all()
    assert (ds.stop_time == 50).all()
    assert (ds.train_loss.isel(time=-1) < 1e-8).all()


def test_a_diverging_seed_is_isolated():
    """Ridge, no projection, a learning rate at the edge of stability: some seeds blow up, the others
    are kept intact and equal to their values in a run where they are alone."""
    opts = dict(algorithm="gd", constraint="ridge", ridge=0.0, n=10, alpha=2, m0=0.0, lr=0.15, t_max=30,
                points=10)
    ds = prcy.simulate(seeds=16, **opts)
    reasons = ds.stop_reason.values
    assert 0 < (reasons == "diverged").sum() < reasons.size
    bad = ds.seed.values[reasons == "diverged"]
    good = ds.seed.values[reasons != "diverged"]
    for s in bad:
        one = ds.sel(seed=s)
        after = one.magnetization.where(one.time >= one.stop_time, drop=True)
        assert after.size and np.isnan(after.values).all()
    g = int(good[0])
    alone = prcy.simulate(seeds=1, first_seed=g, **opts)
    np.testing.assert_array_equal(alone.magnetization.values[0], ds.magnetization.sel(seed=g).values)
    assert np.isfinite(ds.magnetization.sel(seed=good).values).all()


def test_ctrl_c_stops_the_kernels_and_returns_nothing():
    calls = []

    def progress(done, total):
        calls.append(done)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prcy.simulate(algorithm="gd", n=300, alpha=3, t_max=1000, seeds=2, progress=progress)
    assert calls and calls[0] < 2 * 100000


def test_an_error_in_the_progress_callback_stops_the_kernels():
    import threading

    def progress(done, total):
        raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError, match="callback failed"):
        prcy.simulate(algorithm="gd", n=300, alpha=3, t_max=1000, seeds=2, progress=progress)
    assert not [t for t in threading.enumerate() if t.name == "prcy-kernels"]


def test_progress_callback_reaches_the_total():
    seen = []
    prcy.simulate(algorithm=["gd", "psgd"], progress=lambda done, total: seen.append((done, total)), **SMALL)
    assert seen[-1] == (2 * 6 * 500, 2 * 6 * 500)
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))


def test_netcdf_round_trip(tmp_path):
    """(e) write, read back: same values, same labels, the spec and the RNG provenance."""
    ds = prcy.simulate(algorithm=["gd", "psgd"], n_test=50, **SMALL)
    path = write_dataset(ds, tmp_path / "run.nc")
    back = open_dataset(path)
    xr.testing.assert_identical(back.drop_attrs(), ds.drop_attrs())
    assert back.success.dtype == bool
    for key in ("spec", "rng_generator", "rng_root_seed", "rng_spawn_keys", "numpy_version",
                "prcy_version", "Conventions", "created"):
        assert back.attrs[key] == ds.attrs[key]
    specs = prcy.io.specs(back)
    assert [s["algorithm"]["name"] for s in specs] == ["gd", "psgd"]
    assert SimulationSpec.from_dict(specs[1]).algorithm.persistence == 1.0
    assert back.sel(algorithm="psgd").magnetization.dims == ("seed", "time")
    assert back.magnetization.attrs["long_name"].startswith("magnetization")
    assert back.time.attrs["units"] == "steps * lr"


def test_writes_are_atomic_and_never_clobber(tmp_path, monkeypatch):
    ds = prcy.simulate(algorithm="gd", **SMALL)
    path = tmp_path / "run.nc"
    write_dataset(ds, path)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite"):
        write_dataset(ds, path)

    def crash(self, target, *args, **kwargs):
        with open(target, "wb") as f:
            f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.Dataset, "to_netcdf", crash)
    with pytest.raises(KeyboardInterrupt):
        write_dataset(ds, path, overwrite=True)
    assert path.read_bytes() == before                  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.nc"]   # no partial file left
    with pytest.raises(KeyboardInterrupt):
        write_dataset(ds, tmp_path / "new.nc")
    assert not (tmp_path / "new.nc").exists()


def test_reading_a_foreign_file_fails_clearly(tmp_path):
    foreign = tmp_path / "foreign.nc"
    xr.Dataset({"x": ("t", np.arange(3.0))}).to_netcdf(foreign)
    with pytest.raises(ValueError, match="schema"):
        open_dataset(foreign)
    junk = tmp_path / "junk.nc"
    junk.write_bytes(b"not a netcdf file")
    with pytest.raises(ValueError, match="not a readable NetCDF"):
        open_dataset(junk)


def _teacher_draws(bitgen, m, n, m_test):
    """NumPy's draws of a phase-retrieval seed's data stream: ``(generator after them, w0, X, Xt)``."""
    g = np.random.Generator(bitgen)
    z = g.standard_normal(n)
    return g, z * np.sqrt(n) / np.linalg.norm(z), g.standard_normal((m, n)), g.standard_normal((m_test, n))


def test_random_labels_are_the_teacher_labels_reshuffled():
    """labels="random": the training labels are permuted among the samples by the Fisher-Yates draws of
    numpy's Generator.shuffle, after the teacher, X and held-out draws of the same stream."""
    m, n, m_test = 37, 11, 5
    w0, X, y, Xt, yt = dynamics.generate(np.random.PCG64(3), m, n, m_test, labels="random")
    g, w0_ref, X_ref, Xt_ref = _teacher_draws(np.random.PCG64(3), m, n, m_test)
    y_ref = np.abs(X_ref @ w0_ref / np.sqrt(n))
    g.shuffle(y_ref)
    np.testing.assert_allclose(y, y_ref, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(yt, np.abs(Xt_ref @ w0_ref / np.sqrt(n)), rtol=1e-13, atol=1e-13)
    assert not np.allclose(y, np.abs(X @ w0 / np.sqrt(n)))
    ds = prcy.simulate(algorithm="gd", labels="random", **SMALL)
    assert ds.attrs["labels"] == "random"
    teacher = prcy.simulate(algorithm="gd", **SMALL)
    # same X, teacher and start; reshuffled labels make the landscape at t = 0 look different
    assert not np.array_equal(ds.train_loss.isel(time=0).values, teacher.train_loss.isel(time=0).values)
    np.testing.assert_array_equal(ds.magnetization.isel(time=0).values, teacher.magnetization.isel(time=0).values)


def test_fresh_labels_are_the_label_law_of_fresh_normals():
    """labels="fresh": the training labels are |z| for m fresh normals drawn after the teacher, X and held-out
    draws of the same stream (the teacher's field law: |w0|^2 = n); refused on the mixtures."""
    m, n, m_test = 37, 11, 5
    w0, X, y, Xt, yt = dynamics.generate(np.random.PCG64(3), m, n, m_test, labels="fresh")
    g, w0_ref, X_ref, Xt_ref = _teacher_draws(np.random.PCG64(3), m, n, m_test)
    np.testing.assert_allclose(X, X_ref, rtol=0, atol=0)
    np.testing.assert_allclose(y, np.abs(g.standard_normal(m)), rtol=1e-15)
    np.testing.assert_allclose(yt, np.abs(Xt_ref @ w0_ref / np.sqrt(n)), rtol=1e-13, atol=1e-13)
    ds = prcy.simulate(algorithm="gd", labels="fresh", **SMALL)
    assert ds.attrs["labels"] == "fresh"
    with pytest.raises(ValueError, match="labels: 'fresh' does not apply to problem mixture-2"):
        prcy.simulate(problem="mixture-2", labels="fresh", n=20, t_max=0.1, seeds=1)


@pytest.mark.parametrize("options", [
    dict(algorithm="psgd", optimizer="nesterov", momentum=0.8, init="random", grad_tol=1e-9),
    dict(algorithm="sgd", optimizer="adam", beta1=0.8, beta2=0.99, adam_eps=1e-7, constraint="ridge", ridge=0.1,
         init="random", init_variance=0.5),
    dict(algorithm="gd", optimizer="momentum", momentum=0.5, project_velocity=True, problem="door",
         teacher="rademacher", onset=0.6, loss="door-logistic", smoothing=1e-3),
    dict(algorithm="psgd", loss="absolute", smoothing=1e-2),
])
def test_engine_v2_options_reach_the_kernels(options):
    """A seed of prcy.simulate with the Engine v2 options equals the kernel twin fed with the documented
    streams, the options' problem, loss, start and update rule: nothing is dropped on the way."""
    from prcy.kernels import problems
    from prcy.problems import resolve_loss
    base = {k: v for k, v in SMALL.items() if not (k == "m0" and options.get("init") == "random")}
    spec = SimulationSpec.from_flat(**base, **options)
    ds = prcy.simulate(spec)
    p = spec.problem
    streams = seed_streams(spec)
    s = 2
    w0, X, y, Xt, yt = dynamics.generate(streams["data"][s], p.m, p.n, problem=p.name, teacher=p.teacher,
                                         onset=p.onset)
    if p.teacher == "rademacher":
        assert set(np.unique(w0)) == {-1.0, 1.0}
    np.testing.assert_allclose(y, problems.labels(p.name, X @ w0 / np.sqrt(p.n), p.onset), rtol=1e-12, atol=1e-14)
    w = dynamics.initial_weights(streams["init"][s], w0, spec.init.m0, spec.constraint.kind == "sphere",
                                 init=spec.init.kind, init_variance=spec.init.variance)
    p_on, p_off = spec.algorithm.switching_probabilities()
    capsule, _ = resolve_loss(p.name, p.loss, smoothing=p.smoothing, onset=p.onset)
    out = dynamics.run_trajectory(
        capsule, X, y, w0, w, Xt, yt, selection=spec.algorithm.selection, ell=spec.algorithm.batch_fraction,
        p_on=p_on, p_off=p_off, rng=streams["dynamics"][s], params=kernel_parameters(spec),
        record_steps=spec.recording.steps(spec.algorithm.lr), temp_starts=np.array([0]),
        temp_values=np.array([0.0]))
    np.testing.assert_array_equal(ds.magnetization.sel(seed=s).values, out["magnetization"][0])
    np.testing.assert_array_equal(ds.train_loss.sel(seed=s).values, out["train_loss"][0])
    plain = prcy.simulate(**{**SMALL, "algorithm": options["algorithm"]})
    assert not np.array_equal(plain.magnetization.values, ds.magnetization.values)
    if spec.init.kind == "random":
        assert np.all(np.abs(ds.magnetization.isel(time=0).values) < 4 / np.sqrt(p.n))


def test_success_by_test_error():
    """success = final test error (formula) < error_tol; solved_time = first recording below it."""
    from prcy.analysis import test_error
    ds = prcy.simulate(**{**SMALL, "m0": 0.9, "algorithm": "gd", "t_max": 10.0, "success": "test-error",
                          "error_tol": 0.05})
    err = test_error("phase-retrieval", ds.magnetization.values, ds.norm.values)
    np.testing.assert_array_equal(ds.test_error.values, err)
    np.testing.assert_array_equal(ds.success.values, err[:, -1] < 0.05)
    assert ds.success.values.any()
    for s in range(ds.sizes["seed"]):
        below = np.flatnonzero(err[s] < 0.05)
        expected = ds.time.values[below[0]] if below.size else np.nan
        np.testing.assert_equal(ds.solved_time.values[s], expected)
    assert ds.attrs["success"] == "test-error" and ds.attrs["error_tol"] == 0.05
    assert "error_tol" in ds.success.attrs["long_name"]
