"""The shipped examples stay valid: grids parse and expand into tasks (no compute); scripts run at toy size."""
from pathlib import Path

import pytest

from prcy.sweep import Sweep, load_grid_file

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").rglob("*.toml"))


def test_examples_exist():
    names = {p.stem for p in EXAMPLES}
    assert {"fig2", "fig2-laptop", "fig4-batch", "fig4-persistence", "fig4-temperature", "fig7",
            "success-vs-alpha"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_grid_is_valid(path):
    sweep = Sweep.from_options(load_grid_file(path))
    assert sweep.dims and len(sweep.tasks()) >= 3


def test_dmft_ensemble_example_runs(tmp_path):
    """examples/dmft_ensemble.py (docs/validation.md 7) at a toy size."""
    import subprocess
    import sys

    script = Path(__file__).resolve().parent.parent / "examples" / "dmft_ensemble.py"
    out = tmp_path / "fig.png"
    args = [sys.executable, str(script), "--replicas", "2", "--samples", "64", "--n", "64", "--seeds", "3",
            "--points", "5", "--dt", "0.05", "--t-max", "0.4", "--dir", str(tmp_path / "runs"), "-o", str(out)]
    run = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert out.exists() and "max |z|" in run.stdout
    kept = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert "dmft_psgd_S64.nc" in kept and "sim_langevin_n64.nc" in kept
    rerun = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)  # reads the files
    summary = [line for line in run.stdout.splitlines() if "iteration" not in line]
    assert "iteration" not in rerun.stdout and rerun.stdout.splitlines() == summary


def _run_script(name, args, cwd):
    import subprocess
    import sys

    script = Path(__file__).resolve().parent.parent / "examples" / name
    run = subprocess.run([sys.executable, str(script), *args], cwd=cwd, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


def test_table_scripts_run(tmp_path):
    """examples/fig7_table.py and examples/thesis/tables.py on toy sweeps: their CSVs hold what the
    sweep files hold (medians of |m|, solved counts, success counts)."""
    import numpy as np
    import pandas as pd

    from prcy.io import open_dataset
    from prcy.sweep import run_sweep

    common = {"n": [32, 48], "algorithm": ["gd", "psgd"], "init": "random", "t_max": 2.0, "points": 5,
              "seeds": 4}
    run_sweep(Sweep.from_options(common), tmp_path / "fig7.nc", processes=1, threads=1, log=lambda _: None)
    _run_script("fig7_table.py", ["fig7.nc", "fig7.csv", "--times", "0,2"], tmp_path)
    ds = open_dataset(tmp_path / "fig7.nc")
    row = pd.read_csv(tmp_path / "fig7.csv").set_index(["n", "algorithm"]).loc[(48, "psgd")]
    cell = ds.sel(n=48, algorithm="psgd")
    assert row.median_abs_m_t2 == pytest.approx(float(np.abs(cell.magnetization.isel(time=-1)).median()),
                                                rel=1e-3)
    assert row.solved == int(cell.success.sum()) and row.seeds == 4

    warm = {**common, "init": "warm", "m0": 0.8, "t_max": 10.0}      # some seeds solve: epochs are checked
    sweep = Sweep.from_options({**warm, "alpha": [2.0, 4.0]})
    run_sweep(sweep, tmp_path / "alpha.nc", processes=1, threads=1, log=lambda _: None)
    _run_script("thesis/tables.py", ["alpha.nc", "toy", "--bootstrap", "50"], tmp_path)
    ds = open_dataset(tmp_path / "alpha.nc")
    success = pd.read_csv(tmp_path / "toy-success.csv")
    got = success[(success.n == 32) & (success.algorithm == "gd")].sort_values("alpha").successes.values
    assert np.array_equal(got, ds.success.sum("seed").sel(n=32, algorithm="gd").values)
    assert {"threshold", "ci_low", "ci_high"} <= set(pd.read_csv(tmp_path / "toy-threshold.csv").columns)
    solved = pd.read_csv(tmp_path / "toy-solved.csv").set_index(["n", "alpha", "algorithm"])
    assert solved.solved.sum() > 0
    for (n, alpha, algorithm), row in solved.iterrows():
        cell = ds.sel(n=n, alpha=alpha, algorithm=algorithm)
        times = cell.solved_time.values[cell.success.values]
        assert row.solved == len(times)
        assert row.final_test_error_median == pytest.approx(float(cell.test_error.isel(time=-1).median()),
                                                          rel=1e-3)  # the CSV has 4 digits
        if len(times):
            steps_per_epoch = 1 if algorithm == "gd" else 1 / 0.5      # the default batch fraction
            assert row.epochs_max == pytest.approx(times.max() / 0.01 / steps_per_epoch, rel=1e-3)


def test_plateau_tables_script_runs(tmp_path):
    """examples/plateau_tables.py (docs/validation.md 5a, 10d) on a toy run: the CSVs hold the file's numbers."""
    import numpy as np
    import pandas as pd

    import prcy

    ds = prcy.simulate(algorithm="gd", labels="random", m0=0.0, alpha=4, n=40, lr=0.02, t_max=12, points=8, seeds=3,
                       hessian=2, hessian_every=100, label_moments=True)
    path = tmp_path / "run.nc"
    ds.to_netcdf(path)
    _run_script("plateau_tables.py", ["gap", "gap.csv", str(path)], tmp_path)
    gap = pd.read_csv(tmp_path / "gap.csv")
    assert list(gap.time) == [float(ds.time.values[np.argmin(np.abs(ds.time.values - t))]) for t in (1, 10)]
    assert gap.train_loss_mean.iloc[-1] == pytest.approx(float(ds.train_loss.sel(time=gap.time.iloc[-1]).mean()),
                                                         abs=1e-5)
    _run_script("plateau_tables.py", ["end", "end.csv", str(path)], tmp_path)
    end = pd.read_csv(tmp_path / "end.csv")
    last = ds.isel(time=-1)
    assert end.lambda1_min[0] == pytest.approx(float(last.hessian_eigenvalues.isel(eig=0).min()), abs=1e-4)
    assert end.h2y2[0] == pytest.approx(float(last.label_moments.sel(moment="h2y2").mean()), abs=1e-4)


def test_committee_table_script_runs(tmp_path):
    """examples/committee/tables.py on a toy committee sweep beside a single unit: its CSVs hold what the
    sweep file holds (success counts, per-seed first times of the quadratic error below a level) and the
    quadratic error for every K."""
    import numpy as np
    import pandas as pd

    from prcy.io import open_dataset
    from prcy.sweep import run_sweep

    grid = {"hidden": [1, 2], "alpha": [2.0, 4.0], "n": 32, "n_test": 200, "init": "warm", "m0": 0.8, "algorithm": "gd",
            "lr": 0.05, "t_max": 10.0, "points": 12, "seeds": 4, "success": "test-error", "error_tol": 5e-3}
    run_sweep(Sweep.from_options(grid), tmp_path / "c.nc", processes=1, threads=1, log=lambda _: None)
    _run_script("committee/tables.py", ["c.nc", "toy", "--bootstrap", "20", "--success-below", "0.5",
                                        "--slope-below", "1", "--reach", "0.1", "--at", "5"], tmp_path)
    ds = open_dataset(tmp_path / "c.nc")
    success = pd.read_csv(tmp_path / "toy-success.csv")
    assert set(success.rule) == {"file", "quadratic_error<0.5", "late_slope<-1"}
    for k in (1, 2):
        got = success[(success.rule == "file") & (success.hidden == k)].sort_values("alpha").successes.values
        assert np.array_equal(got, ds.success.sum("seed").sel(hidden=k).values)
    solved = pd.read_csv(tmp_path / "toy-solved.csv").set_index(["hidden", "alpha"])
    cell = ds.sel(hidden=2, alpha=4.0)
    assert solved.loc[(2, 4.0)].final_quadratic_error_median == pytest.approx(
        float(cell.quadratic_error.isel(time=-1).median()), rel=1e-3)
    assert solved.loc[(2, 4.0)].final_test_error_median == pytest.approx(
        float(cell.test_error.isel(time=-1).median()), rel=1e-3)
    single = ds.sel(hidden=1, alpha=4.0).isel(time=-1)       # K = 1: 4 (1 - m^2) on the sphere
    assert solved.loc[(1, 4.0)].final_quadratic_error_median == pytest.approx(
        float((4 * (1 - single.magnetization ** 2)).median()), rel=1e-3)
    seeds = pd.read_csv(tmp_path / "toy-seeds.csv").set_index(["hidden", "alpha", "seed"])
    t, error = cell.time.values, cell.quadratic_error.values
    for s in range(4):
        below = np.flatnonzero(error[s] < 0.1)
        expected = t[below[0]] if len(below) else np.nan
        assert np.isclose(seeds.loc[(2, 4.0, s)].reach_time, expected, rtol=1e-3, equal_nan=True)
    assert {"threshold", "ci_low", "ci_high", "rule"} <= set(pd.read_csv(tmp_path / "toy-threshold.csv").columns)
