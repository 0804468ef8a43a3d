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
