"""(f) The command line through typer's CliRunner: the contract names, files, summaries, errors."""
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from prcy.cli import app
from prcy.io import open_dataset

runner = CliRunner()
SMALL = ["--n", "40", "--alpha", "3", "--t-max", "3", "--seeds", "4", "--points", "10", "--no-progress"]


def test_simulate_writes_a_dataset_and_prints_one_line_per_algorithm(tmp_path):
    out = tmp_path / "run.nc"
    result = runner.invoke(app, ["simulate", "--algorithm", "gd,sgd,psgd", *SMALL, "-o", str(out)])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "success" in line]
    assert [line.split(":")[0].strip() for line in lines] == ["gd", "sgd", "psgd"]
    ds = open_dataset(out)
    assert list(ds.algorithm.values) == ["gd", "sgd", "psgd"]
    assert ds.sizes["seed"] == 4 and ds.attrs["n"] == 40


def test_contract_option_spellings(tmp_path):
    out = tmp_path / "lang.nc"
    args = ["simulate", "--problem", "phase-retrieval", "--algorithm", "langevin", "--alpha", "2",
            "--n", "30", "--m0", "0.3", "--lr", "0.02", "--temperature", "0.5", "--constraint", "ridge",
            "--ridge", "0.5", "--t-max", "2", "--seeds", "3", "--seed", "7", "--tol", "1e-6",
            "--threads", "1", "-o", str(out), "--no-progress"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    ds = open_dataset(out)
    assert ds.attrs["lr"] == 0.02 and ds.attrs["constraint"] == "ridge" and ds.attrs["rng_root_seed"] == 7
    psgd = tmp_path / "psgd.nc"
    result = runner.invoke(app, ["simulate", "--algorithm", "psgd", "--batch-fraction", "0.3",
                                 "--persistence", "2", *SMALL, "-o", str(psgd)])
    assert result.exit_code == 0, result.output
    spec = __import__("json").loads(open_dataset(psgd).attrs["spec"])
    assert spec["algorithm"]["batch_fraction"] == 0.3 and spec["algorithm"]["persistence"] == 2.0


def test_temperature_schedule_option(tmp_path):
    out = tmp_path / "anneal.nc"
    result = runner.invoke(app, ["simulate", "--algorithm", "langevin", "--temperature-schedule", "0:1,2:0",
                                 *SMALL, "-o", str(out)])
    assert result.exit_code == 0, result.output
    spec = __import__("json").loads(open_dataset(out).attrs["spec"])
    assert spec["algorithm"]["temperature_schedule"] == [[0.0, 1.0], [2.0, 0.0]]
    bad = runner.invoke(app, ["simulate", "--algorithm", "langevin", "--temperature-schedule", "0-1",
                              *SMALL, "-o", str(tmp_path / "x.nc")])
    assert bad.exit_code == 2 and "temperature_schedule: '0-1'" in bad.output


def test_existing_output_needs_overwrite(tmp_path):
    out = tmp_path / "run.nc"
    out.write_bytes(b"keep me")
    result = runner.invoke(app, ["simulate", "--algorithm", "gd", *SMALL, "-o", str(out)])
    assert result.exit_code == 2
    assert "exists" in result.output and "--overwrite" in result.output
    assert out.read_bytes() == b"keep me"
    result = runner.invoke(app, ["simulate", "--algorithm", "gd", *SMALL, "-o", str(out), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert open_dataset(out).sizes["seed"] == 4


@pytest.mark.parametrize("args,needle", [
    (["--alpha", "-1"], "alpha"),
    (["--m0", "1.5"], "m0"),
    (["--algorithm", "adam"], "algorithm"),
    (["--algorithm", "psgd", "--persistence", "0"], "persistence"),
    (["--algorithm", "sgd", "--batch-fraction", "0"], "batch_fraction"),
    (["--lr", "nan"], "lr"),
])
def test_bad_options_end_in_one_line_and_exit_2(tmp_path, args, needle):
    result = runner.invoke(app, ["simulate", *SMALL, *args, "-o", str(tmp_path / "x.nc")])
    assert result.exit_code == 2
    message = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(message) == 1 and needle in message[0], result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "x.nc").exists()


def test_missing_output_folder_fails_before_compute(tmp_path):
    result = runner.invoke(app, ["simulate", *SMALL, "-o", str(tmp_path / "no" / "run.nc")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_info_describes_a_file_and_rejects_others(tmp_path):
    out = tmp_path / "run.nc"
    runner.invoke(app, ["simulate", "--algorithm", "gd,psgd", *SMALL, "-o", str(out)])
    result = runner.invoke(app, ["info", str(out)])
    assert result.exit_code == 0
    assert "alpha=3.0" in result.output and "PCG64" in result.output and "psgd: success" in result.output
    assert "init=warm" in result.output and "m0=" in result.output
    random = tmp_path / "random.nc"
    runner.invoke(app, ["simulate", *SMALL, "--init", "random", "--optimizer", "momentum", "-o", str(random)])
    header = runner.invoke(app, ["info", str(random)]).output
    assert "init=random" in header and "optimizer=momentum" in header and "m0=" not in header  # m0: warm only
    missing = runner.invoke(app, ["info", str(tmp_path / "none.nc")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


DMFT_SMALL = ["--alpha", "2", "--m0", "0.8", "--dt", "0.05", "--t-max", "1", "--samples", "200", "--no-progress"]


def test_dmft_single_solve_and_ensemble(tmp_path):
    one, ens = tmp_path / "one.nc", tmp_path / "ens.nc"
    result = runner.invoke(app, ["dmft", *DMFT_SMALL, "-o", str(one)])
    assert result.exit_code == 0, result.output
    assert "converged after" in result.output and "m(t_max) = " in result.output
    assert open_dataset(one).attrs["schema"] == "prcy-dmft/1" and "replica" not in open_dataset(one).dims
    result = runner.invoke(app, ["dmft", *DMFT_SMALL, "--replicas", "3", "--first-replica", "1", "-o", str(ens)])
    assert result.exit_code == 0, result.output
    assert [line.split(":")[0].strip() for line in result.output.splitlines() if line.startswith("  replica")] == \
        ["replica 1", "replica 2", "replica 3"]
    back = open_dataset(ens)
    assert list(back.replica.values) == [1, 2, 3] and list(back.replica_status.values) == ["converged"] * 3
    mean = float(back.magnetization[:, -1].mean())
    assert f"m(t_max) over the 3 converged replicas: {mean:.4f} +-" in result.output
    info = runner.invoke(app, ["info", str(ens)])
    assert info.exit_code == 0 and "3 replicas, 3 converged" in info.output
    warm = tmp_path / "warm.nc"
    result = runner.invoke(app, ["dmft", *DMFT_SMALL, "--initial", str(one), "-o", str(warm)])
    assert result.exit_code == 0, result.output
    assert open_dataset(warm).attrs["initial_guess"] == "M_R of one.nc"
    assert "warm start from M_R of one.nc" in result.output
    assert open_dataset(warm).attrs["iterations"] < open_dataset(one).attrs["iterations"]
    windowed = tmp_path / "windowed.nc"
    result = runner.invoke(app, ["dmft", *DMFT_SMALL, "--window", "0.5", "-o", str(windowed)])
    assert result.exit_code == 0 and "horizon windows of 0.5" in result.output, result.output
    back = open_dataset(windowed)
    assert sorted(set(back.window_end.values)) == [0.5, 1.0] and back.attrs["status"] == "converged"
    np.testing.assert_allclose(back.magnetization.values, open_dataset(one).magnetization.values, atol=1e-7)
    result = runner.invoke(app, ["dmft", *DMFT_SMALL, "--max-iter", "2", "-o", str(tmp_path / "short.nc")])
    assert result.exit_code == 1 and "max_iter after 2 iterations" in result.output, result.output
    assert "not converged: give more --max-iter" in result.output and "--window" in result.output
    for bad, needle in ((["--replicas", "0"], "replicas: 0"), (["--first-replica", "2"], "first_replica"),
                        (["--initial", str(tmp_path / "none.nc")], "initial: "), (["--window", "-1"], "window: -1")):
        result = runner.invoke(app, ["dmft", *DMFT_SMALL, *bad, "-o", str(tmp_path / "x.nc")])
        assert result.exit_code == 2 and needle in result.output and not (tmp_path / "x.nc").exists()


def test_python_dash_m_prcy_answers_help():
    done = subprocess.run([sys.executable, "-m", "prcy", "--help"], capture_output=True, text=True,
                          cwd="/", timeout=60)
    assert done.returncode == 0
    assert "simulate" in done.stdout and "info" in done.stdout
