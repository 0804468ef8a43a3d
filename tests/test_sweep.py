"""prcy sweep: grids, one labelled dataset, resume after damage or SIGKILL, executors (local pool,
Dask distributed with a worker killed), bad input."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

import prcy
from prcy.cli import app
from prcy.io import open_dataset
from prcy.sweep import PartStore, Sweep, checksum, load_grid_file, parse_option, parse_range, run_sweep

TINY = dict(n=24, alpha=3, m0=0.3, t_max=2, seeds=4, points=12)
quiet = lambda text: None  # noqa: E731


def test_values_ranges_and_lists():
    assert parse_range("1.5:4:0.25")[0] == 1.5 and parse_range("1.5:4:0.25")[-1] == 4.0
    assert len(parse_range("1.5:4:0.25")) == 11
    assert parse_range("1:4:1") == [1, 2, 3, 4] and all(isinstance(v, int) for v in parse_range("1:4:1"))
    assert parse_range("0:0.3:0.1") == [0.0, 0.1, 0.2, 0.3]
    assert parse_option("algorithm", "gd,psgd") == ["gd", "psgd"]
    assert parse_option("lr", "0.1,0.5") == [0.1, 0.5] and parse_option("alpha", "2:3:0.5") == [2.0, 2.5, 3.0]
    assert parse_option("n", "3") == 3 and parse_option("alpha", "3") == 3.0
    assert parse_option("early_stop", "true") is True and parse_option("constraint", "ridge") == "ridge"
    for bad in ("4:1:0.5", "1:4:0", "1:4:-1"):
        with pytest.raises(ValueError, match="range"):
            parse_range(bad)


def test_toml_grid_with_sections(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('[problem]\nalpha = "2:3:0.5"\nn = 32\n[dynamics]\nalgorithm = ["gd", "psgd"]\nlr = 0.01\n'
                    '[run]\nseeds = 5\n')
    options = load_grid_file(grid)
    assert options == {"alpha": [2.0, 2.5, 3.0], "n": 32, "algorithm": ["gd", "psgd"], "lr": 0.01, "seeds": 5}
    grid.write_text("[dynamic]\nlr = 0.1\n")
    with pytest.raises(ValueError, match=r"unknown section \[dynamic\]"):
        load_grid_file(grid)
    grid.write_text("[dynamics]\nalpha = 3\n")
    with pytest.raises(ValueError, match=r"\[dynamics\] has no option 'alpha'"):
        load_grid_file(grid)
    grid.write_text("[dynamics\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_grid_file(grid)


@pytest.mark.parametrize("options,needle", [
    (dict(alpha=[]), "alpha: the grid is empty"),
    (dict(alpha=[2, 2]), "repeats"),
    (dict(t_max=[1, 2]), "t_max: cannot be swept"),
    (dict(seeds=[1, 2]), "seeds: cannot be swept"),
    (dict(algorithm=["gd", "adam"]), "algorithm"),
    (dict(alpha=[2, -1]), "alpha: -1"),
    (dict(colour=[1, 2]), "unknown"),
    (dict(seeds_per_task=0), "seeds_per_task"),
    (dict(algorithm="psgd", persistence=[1, 0.001]), "persistence"),
    (dict(lr=[0.01, 0.003], t_max=1), "lr: 0.003 does not divide"),
    (dict(hessian=1, hessian_density=4, hessian_high=[10, 20]), "hessian_high: cannot be swept"),
    (dict(hessian=[0, 1], hessian_density=4), "hessian_density: 4 needs the Hessian"),
])
def test_bad_grids_fail_before_compute(options, needle):
    with pytest.raises(ValueError, match=needle):
        Sweep.from_options(options)


def _direct(**point):
    return prcy.simulate(**{**TINY, **point})


def test_dataset_is_labelled_and_each_cell_is_the_simulation_at_that_point(tmp_path):
    rest = {k: v for k, v in TINY.items() if k != "alpha"}
    sweep = Sweep.from_options({"algorithm": ["gd", "sgd", "psgd"], "batch_fraction": [0.25, 0.5],
                                "alpha": [2, 3], **rest})
    assert sweep.dims == ("algorithm", "batch_fraction", "alpha")
    assert len(sweep.tasks()) == 2 + 2 * 2 * 2     # gd once per alpha: it has no batch fraction
    ds = run_sweep(sweep, tmp_path / "s.nc", log=quiet)
    plain = xr.open_dataset(tmp_path / "s.nc")
    assert plain.sel(alpha=3, algorithm="psgd").magnetization.dims == ("batch_fraction", "seed", "time")
    cell = plain.sel(alpha=3, algorithm="psgd", batch_fraction=0.25)
    ref = _direct(algorithm="psgd", batch_fraction=0.25, alpha=3)
    np.testing.assert_array_equal(cell.magnetization.values, ref.magnetization.values)
    np.testing.assert_array_equal(cell.solved_time.values, ref.solved_time.values)
    gd = ds.sel(algorithm="gd", alpha=2)
    np.testing.assert_array_equal(gd.magnetization.sel(batch_fraction=0.25).values,
                                  gd.magnetization.sel(batch_fraction=0.5).values)
    np.testing.assert_array_equal(gd.magnetization.sel(batch_fraction=0.25).values,
                                  _direct(algorithm="gd", alpha=2).magnetization.values)
    assert json.loads(ds.attrs["independent_of"]) == {"gd": ["batch_fraction"], "sgd": [], "psgd": []}
    assert ds.attrs["schema"] == "prcy-sweep/1" and ds.attrs["dims_swept"] == "algorithm batch_fraction alpha"
    assert ds.success.dtype == bool and set(np.unique(ds.stop_reason.values)) <= {"max_time", "converged"}
    from prcy.analysis import success_summary
    rows = success_summary(ds)
    assert len(rows) == 2 + 2 * 2 * 2                 # gd once per alpha, listed with batch_fraction "any"
    assert [r["point"]["batch_fraction"] for r in rows if r["point"]["algorithm"] == "gd"] == ["any", "any"]


def test_a_bool_option_is_a_bool_axis(tmp_path):
    """A swept flag (here the velocity projection of momentum on the sphere) merges into a bool axis
    that selects like one, each cell the simulation at that point."""
    sweep = Sweep.from_options({"optimizer": "momentum", "project_velocity": [False, True], **TINY})
    ds = run_sweep(sweep, tmp_path / "s.nc", log=quiet)
    assert ds.project_velocity.dtype == bool and list(ds.project_velocity.values) == [False, True]
    for flag in (False, True):
        ref = _direct(optimizer="momentum", project_velocity=flag)
        np.testing.assert_array_equal(ds.sel(project_velocity=flag).magnetization.values,
                                      ref.magnetization.values)


def test_seed_blocks_and_process_pool_give_the_same_file(tmp_path):
    options = {**TINY, "algorithm": ["gd", "psgd"], "alpha": [2, 3]}
    one = run_sweep(Sweep.from_options(options), tmp_path / "a.nc", processes=1, log=quiet)
    split = run_sweep(Sweep.from_options({**options, "seeds_per_task": 3}), tmp_path / "b.nc", processes=2,
                      threads=1, log=quiet)
    assert len(list((tmp_path / "b.nc.parts").glob("task-*.nc"))) == 2 * 2 * 2
    xr.testing.assert_identical(one.drop_attrs(), split.drop_attrs())


def test_resume_recomputes_only_what_is_missing_or_damaged(tmp_path):
    out = tmp_path / "s.nc"
    sweep = Sweep.from_options({**TINY, "algorithm": ["gd", "psgd"], "alpha": [2, 2.5, 3]})
    first = run_sweep(sweep, out, log=quiet)
    store = PartStore(out)
    tasks = list(sweep.tasks().values())
    os.remove(store.path(tasks[0].key))                                    # lost
    damaged = store.path(tasks[1].key)                                      # damaged on disk: cut short,
    os.truncate(damaged, damaged.stat().st_size // 2)                       # whatever the file's layout
    other = prcy.simulate(**{**TINY, "algorithm": "gd", "alpha": 2, "m0": 0.5})
    with pytest.raises(ValueError, match="another spec"):
        store.write(tasks[2], other)
    other.attrs = {"schema": "prcy-sweep-part/1", "task_key": tasks[2].key, "spec": other.attrs["spec"],
                   "checksum": checksum(other)}
    other.to_netcdf(store.path(tasks[2].key))                               # valid file, wrong content
    (store.folder / "task-0123456789abcdef0123.nc").write_bytes(b"junk")  # foreign
    untouched = store.path(tasks[3].key).stat().st_mtime_ns
    messages = []
    again = run_sweep(sweep, out, overwrite=True, log=messages.append)
    text = "\n".join(messages)
    assert "ignored: task-0123456789abcdef0123.nc" in text
    assert f"part task-{tasks[2].key}.nc: its spec differs" in text
    assert f"task-{tasks[1].key}.nc" in text
    assert store.path(tasks[3].key).stat().st_mtime_ns == untouched        # a good part is not recomputed
    xr.testing.assert_identical(first, again)                              # attrs included


# n = 24: the eigensolver draws random vectors where its Krylov spaces close (docs/engine.md, "The landscape along the
# dynamics: Hessian eigenpairs")
LANDSCAPE = dict(n=24, m0=0.3, t_max=1, points=4, seeds=3, algorithm="gd", label_moments=True)


def _assert_cell(cell, ref):
    """Each variable of the simulation ``ref`` is, bit for bit, the sweep's ``cell`` over ``ref``'s extent
    (the cell may be padded beyond it)."""
    for name in ref.data_vars:
        assert cell[name].dims == ref[name].dims, name
        got = cell[name].values[tuple(slice(0, k) for k in ref[name].shape)]
        np.testing.assert_array_equal(got, ref[name].values, err_msg=name)


def test_a_swept_hessian_merges_each_cell_padded_beyond_its_eigenpairs_and_resumes(tmp_path):
    sweep = Sweep.from_options({**LANDSCAPE, "hessian": [2, 1, 0], "alpha": [2, 3], "seeds_per_task": 2})

    def interrupt(done, total):
        if done == 3:
            raise KeyboardInterrupt
    out = tmp_path / "s.nc"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(sweep, out, processes=1, threads=1, progress=interrupt, log=quiet)
    assert not out.exists() and len(list(PartStore(out).folder.glob("task-*.nc"))) == 3
    ds = run_sweep(sweep, out, processes=1, threads=1, log=quiet)                    # resumed
    clean = run_sweep(sweep, tmp_path / "clean.nc", processes=1, threads=1, log=quiet)
    xr.testing.assert_identical(ds.drop_attrs(), clean.drop_attrs())
    assert ds.hessian_eigenvalues.dims == ("hessian", "alpha", "seed", "time", "eig") and ds.sizes["eig"] == 2
    assert ds.label_moments.dims == ("hessian", "alpha", "seed", "time", "moment")
    assert ds.hessian_products.dims == ("hessian", "alpha", "seed") and ds.hessian_converged.dtype == bool
    for k in (2, 1, 0):
        for alpha in (2, 3):
            ref = _direct(**{**LANDSCAPE, "hessian": k, "alpha": alpha})
            _assert_cell(ds.sel(hessian=k, alpha=alpha), ref)
    np.testing.assert_array_equal(ds.moment.values, ref.moment.values)
    assert bool(ds.hessian_eigenvalues.sel(hessian=1, eig=1).isnull().all())                # beyond K = 1
    assert bool(ds.hessian_teacher_overlap.sel(hessian=1).isel(eig=0).notnull().all())
    none = ds.sel(hessian=0)                                                             # no Hessian at all
    assert bool(none.hessian_eigenvalues.isnull().all()) and bool(none.hessian_bulk_edge.isnull().all())
    assert not none.hessian_converged.any() and (none.hessian_products == 0).all()
    # prcy plot: a curve per eigenpair, labelled by its index (eig has no coordinate)
    from prcy.analysis.plots import plot_curves
    fig = plot_curves(ds, "hessian_eigenvalues", selection={"alpha": "3", "hessian": "2"})
    assert [line.get_label() for line in fig.axes[0].lines] == ["eig=0", "eig=1"]
    for var, select in (("hessian_eigenvalues", "alpha=3"), ("label_moments", "alpha=3,hessian=1")):
        result = CliRunner().invoke(app, ["plot", str(out), "--var", var, "--select", select,
                                          "-o", str(tmp_path / f"{var}.png")])
        assert result.exit_code == 0, result.output


def test_hessian_density_bins_are_one_axis_of_the_sweep(tmp_path):
    point = {**LANDSCAPE, "hessian": 1, "hessian_density": 5, "hessian_low": -2, "hessian_high": 8}
    ds = run_sweep(Sweep.from_options({**point, "alpha": [2, 3], "hessian_every": [1, 2]}), tmp_path / "s.nc",
                   processes=1, threads=1, log=quiet)
    assert ds.hessian_density.dims == ("alpha", "hessian_every", "seed", "time", "bin")
    for alpha in (2, 3):
        for every in (1, 2):
            ref = _direct(**{**point, "alpha": alpha, "hessian_every": every})
            _assert_cell(ds.sel(alpha=alpha, hessian_every=every), ref)          # bin_bounds included
    assert bool(ds.hessian_density.sel(hessian_every=2, time=ds.time[1]).isnull().all())   # no Hessian there
    np.testing.assert_array_equal(ds.bin.values, ref.bin.values)
    with pytest.raises(ValueError, match=r"^hessian_density: cannot be swept \(it shapes an axis all cells share"):
        Sweep.from_options({**point, "hessian_density": [5, 10]})


def test_checksum_catches_a_silent_change(tmp_path):
    out = tmp_path / "s.nc"
    sweep = Sweep.from_options({**TINY, "alpha": [2, 3]})
    run_sweep(sweep, out, log=quiet)
    store = PartStore(out)
    task = next(iter(sweep.tasks().values()))
    part = store.read(task)
    part["magnetization"][0, 0] = 0.5                     # valid NetCDF, keys right, data altered
    part.to_netcdf(store.path(task.key))                  # attrs (old checksum) kept
    with pytest.raises(ValueError, match="checksum"):
        store.read(task)


def test_a_learning_rate_sweep_shares_the_time_axis(tmp_path):
    ds = run_sweep(Sweep.from_options({**TINY, "lr": [0.01, 0.005]}), tmp_path / "s.nc", log=quiet)
    direct = _direct(lr=0.005, times=tuple(ds.time.values))
    np.testing.assert_array_equal(ds.sel(lr=0.005).magnetization.values, direct.magnetization.values)
    assert ds.time.values[-1] == pytest.approx(2.0)


def test_sigkill_midway_then_rerun_gives_the_uninterrupted_file(tmp_path):
    args = [sys.executable, "-m", "prcy", "sweep", "--algorithm", "gd,psgd", "--alpha", "2:3.5:0.25",
            "--n", "120", "--t-max", "30", "--seeds", "4", "--processes", "1", "--threads", "1",
            "--no-progress", "-o"]
    killed = tmp_path / "killed" / "s.nc"
    killed.parent.mkdir()
    proc = subprocess.Popen(args + [str(killed)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    parts = killed.parent / "s.nc.parts"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(parts.glob("task-*.nc"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_done = len(list(parts.glob("task-*.nc")))
    assert 3 <= n_done < 14 and not killed.exists()
    rerun = subprocess.run(args + [str(killed)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    clean = tmp_path / "clean.nc"
    assert subprocess.run(args + [str(clean)], cwd=tmp_path, capture_output=True, timeout=600).returncode == 0
    a, b = open_dataset(killed), open_dataset(clean)
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    assert {k: v for k, v in a.attrs.items() if k != "created"} == {k: v for k, v in b.attrs.items() if k != "created"}
    assert not [p for p in parts.iterdir() if p.suffix == ".part"]       # no partial file left behind


def test_dask_local_cluster_survives_a_killed_worker(tmp_path):
    distributed = pytest.importorskip("distributed")
    sweep = Sweep.from_options({**TINY, "n": 64, "t_max": 10, "algorithm": ["gd", "psgd"],
                                "alpha": [2, 2.5, 3, 3.5]})
    local = run_sweep(sweep, tmp_path / "local.nc", log=quiet)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
        killed = []

        def progress(done, total):
            if done >= 1 and not killed:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
        ds = run_sweep(sweep, tmp_path / "dask.nc", scheduler=cluster.scheduler_address, progress=progress,
                       log=quiet)
    assert killed
    assert len(list((tmp_path / "dask.nc.parts").glob("task-*.nc"))) == len(sweep.tasks())
    xr.testing.assert_identical(local.drop_attrs(), ds.drop_attrs())


def test_unreachable_scheduler_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="cannot reach"):
        run_sweep(Sweep.from_options(TINY), tmp_path / "s.nc", scheduler="tcp://127.0.0.1:9", log=quiet)


def test_cli_sweep_with_grid_file_and_dotted_override(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('[problem]\nalpha = [2, 3]\nn = 24\n[dynamics]\nalgorithm = "gd,psgd"\nlr = 0.02\n'
                    '[recording]\nt_max = 2\npoints = 10\n[run]\nseeds = 3\n')
    out = tmp_path / "s.nc"
    runner = CliRunner()
    result = runner.invoke(app, ["sweep", str(grid), "--dynamics.lr", "0.01", "--m0", "0.4", "--no-progress",
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output
    ds = open_dataset(out)
    assert ds.attrs["lr"] == 0.01 and ds.attrs["m0"] == 0.4 and ds.sizes["alpha"] == 2
    rows = [line for line in result.output.splitlines() if "success" in line]
    assert len(rows) == 4 and rows[0].startswith("alpha=2 gd:")
    again = runner.invoke(app, ["sweep", str(grid), "-o", str(out), "--no-progress"])
    assert again.exit_code == 2 and "--overwrite" in again.output
    for args, needle in [(["--colour", "red"], "--colour is unknown"), (["--alpha", "4:1:1"], "range"),
                         (["--dynamics.alpha", "3"], "--dynamics.alpha is unknown"),
                         (["--alpha", "2,2"], "repeats"), (["stray"], "does not exist")]:
        bad = runner.invoke(app, ["sweep", *args, "-o", str(tmp_path / "x.nc"), "--no-progress"])
        assert bad.exit_code == 2 and needle in bad.output, (args, bad.output)


def test_file_attributes_are_the_ones_every_cell_shares(tmp_path):
    """``m0`` belongs to the warm start only and ``m`` changes with ``alpha``: a sweep over both leaves
    them out; what all cells share (``lr``, ``n``) stays."""
    rest = {k: v for k, v in TINY.items() if k not in ("alpha", "seeds")}
    sweep = Sweep.from_options({**rest, "alpha": [2, 3], "init": ["warm", "random"], "seeds": 2})
    ds = run_sweep(sweep, tmp_path / "s.nc", log=quiet)
    assert "m0" not in ds.attrs and "m" not in ds.attrs and "alpha" not in ds.attrs and "init" not in ds.attrs
    assert ds.attrs["lr"] == prcy.simulate(**{**rest, "seeds": 1}).attrs["lr"] and ds.attrs["n"] == 24
    one = run_sweep(Sweep.from_options({**rest, "alpha": [2, 3], "seeds": 2}), tmp_path / "one.nc", log=quiet)
    assert one.attrs["m0"] == 0.3 and "m" not in one.attrs
