"""`prcy dmft` as a tool: the forecast of a long solve, the progress bar, Ctrl-C with a checkpoint; the
error bar of m(t) of an ensemble, and replicas added until it reaches a target."""
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
from typer.testing import CliRunner

from prcy import dmft
from prcy.analysis import replica_summary
from prcy.cli import app
from prcy.io import open_dataset

runner = CliRunner()


def test_forecast_names_the_cost_and_the_cheaper_options():
    big = dmft.DMFTSpec.from_flat(alpha=2, m0=0.8, dt=0.01, t_max=10, samples=10000)
    assert dmft.seconds_per_iteration(big, threads=1) > 0
    line = dmft.forecast(big, threads=1)
    assert line is not None and "s per iteration (K = 1001 grid points, S = 10000 samples, threads = 1)" in line
    assert "--dt" in line and "--t-max" in line and "--samples" in line and "\n" not in line
    small = dmft.DMFTSpec.from_flat(alpha=2, m0=0.8, dt=0.05, t_max=1, samples=200)
    assert dmft.forecast(small) is None
    # an ensemble to a target error is forecast per replica (the calibration solve is a single one)
    ensemble = dmft.DMFTSpec.from_flat(alpha=2, m0=0.8, dt=0.01, t_max=10, samples=10000, replicas=4,
                                       target_se=0.01, time_budget=60)
    assert "x 4 replicas" in dmft.forecast(ensemble, threads=1)


def test_iterations_left_follows_the_geometric_decay_of_the_residual():
    assert dmft.iterations_left([float("inf")], 1e-8, 100) == 99
    assert dmft.iterations_left([float("inf"), 1e-2, 1e-3, 1e-4], 1e-8, 100) == 4
    assert dmft.iterations_left([1e-2, 1e-3, 1e-2], 1e-8, 100) == 97      # not falling: up to max_iter
    assert dmft.iterations_left([1e-2, 1e-9], 1e-8, 100) == 0
    assert dmft.iterations_left([1.0, 0.5], 1e-8, 10) == 8                  # capped by max_iter


def test_dmft_shows_the_forecast_and_a_progress_bar(tmp_path, monkeypatch):
    monkeypatch.setattr(dmft, "FORECAST_SECONDS", 0.0)
    out = tmp_path / "d.nc"
    args = ["dmft", "--alpha", "2", "--m0", "0.8", "--dt", "0.05", "--t-max", "1", "--samples", "600",
            "--replicas", "2", "--progress", "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "predicted" in result.output and "x 2 replicas" in result.output and "Traceback" not in result.output
    assert open_dataset(out).attrs["replicas_converged"] == 2


# 30 iterations of 0.2 s with the kicked response (with the linear one this solve diverges at its second
# iteration, before a Ctrl-C 0.1 s after the first checkpoint could land)
HARD = ["--alpha", "3", "--m0", "0.2", "--dt", "0.05", "--t-max", "5", "--samples", "1500", "--threads", "1",
        "--response-kick", "0.1"]


def test_ctrl_c_keeps_a_checkpoint_that_resumes_bitwise(tmp_path):
    ck, out = tmp_path / "ck.npz", tmp_path / "out.nc"
    command = [sys.executable, "-m", "prcy", "dmft", *HARD, "--checkpoint", str(ck), "--no-progress", "-o", str(out)]
    # SIGINT restored in the child: a shell that starts the tests in the background has them ignore it
    run = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while not ck.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ck.exists(), run.communicate()
    with np.load(ck) as z:
        first = len(z["residual"])
    time.sleep(0.1)                                      # into a later iteration
    run.send_signal(signal.SIGINT)
    stdout, stderr = run.communicate(timeout=300)
    assert run.returncode == 130, (stdout, stderr)
    assert "interrupted: nothing was written (checkpoint" in stderr and "Traceback" not in stderr
    assert not out.exists()
    with np.load(ck) as z:
        assert len(z["residual"]) >= first
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode in (0, 1) and "wrote" in done.stdout, done.stderr     # 1: not converged, written all the same
    resumed = open_dataset(out)
    whole = dmft.solve(alpha=3, m0=0.2, dt=0.05, t_max=5, samples=1500, threads=1, response_kick=0.1)
    assert resumed.attrs["iterations"] == whole.attrs["iterations"]
    assert resumed.attrs["status"] == whole.attrs["status"]
    np.testing.assert_array_equal(resumed.M_R.values, whole.M_R.values)
    np.testing.assert_array_equal(resumed.magnetization.values, whole.magnetization.values)
    np.testing.assert_array_equal(resumed.residual.values, whole.residual.values)


EASY = dict(alpha=2, m0=0.8, dt=0.05, t_max=1, samples=200, threads=1)


def test_an_ensemble_carries_the_mean_of_m_and_its_standard_error():
    ens = dmft.solve(**EASY, replicas=3)
    summary = replica_summary(ens)
    np.testing.assert_array_equal(ens.magnetization_mean.values, summary["mean"].values)
    np.testing.assert_array_equal(ens.magnetization_standard_error.values, summary["standard_error"].values)
    assert ens.magnetization_standard_error.dims == ("time",) and "target_se" not in ens.attrs


def test_target_se_adds_batches_of_the_same_replicas_until_the_error_is_reached():
    """Batches of 2 until the standard error is below the target over at least 8 converged replicas
    (``TARGET_SE_MIN_REPLICAS``): never fewer, however large the target."""
    assert dmft.TARGET_SE_MIN_REPLICAS == 8
    plain = dmft.solve(**EASY, replicas=12)
    assert (plain.replica_status == "converged").all()
    m_end = plain.magnetization[:, -1].values
    se = {n: m_end[:n].std(ddof=1) / np.sqrt(n) for n in (2, 4, 6, 8, 10, 12)}
    target = se[10] * (1 + 1e-6)
    expected = next((n for n in (8, 10, 12) if se[n] < target))
    wide = dmft.solve(**EASY, replicas=2, target_se=1e3)
    assert wide.sizes["replica"] == 8 and wide.attrs["target_se_outcome"].startswith("reached")
    ens = dmft.solve(**EASY, replicas=2, target_se=target)
    assert ens.sizes["replica"] == expected and list(ens.replica.values) == list(range(expected))
    assert ens.attrs["target_se_outcome"].startswith("reached") and ens.attrs["target_se"] == target
    np.testing.assert_array_equal(ens.magnetization.values, plain.magnetization.values[:expected])
    np.testing.assert_allclose(float(ens.magnetization_standard_error[-1]), se[expected], rtol=1e-12)
    spent = dmft.solve(**EASY, replicas=2, target_se=1e-9, time_budget=1e-3)
    assert spent.sizes["replica"] == 2 and "time budget of 0.001 s spent" in spent.attrs["target_se_outcome"]


def test_target_se_on_the_command_line(tmp_path):
    small = ["dmft", "--alpha", "2", "--m0", "0.8", "--dt", "0.05", "--t-max", "1", "--samples", "200", "--no-progress"]
    result = runner.invoke(app, [*small, "--replicas", "2", "--target-se", "1", "-o", str(tmp_path / "e.nc")])
    assert result.exit_code == 0, result.output
    assert "target standard error 1 of m(t_max) reached: standard error" in result.output
    for bad, needle in ((["--target-se", "0.1"], "target_se: 0.1 needs replicas >= 2"),
                        (["--replicas", "2", "--target-se", "0"], "target_se: 0"),
                        (["--replicas", "2", "--time-budget", "5"], "time_budget: 5.0 without target_se")):
        result = runner.invoke(app, [*small, *bad, "-o", str(tmp_path / "x.nc")])
        assert result.exit_code == 2 and needle in result.output and len(result.output.splitlines()) == 1, result.output


def test_antithetic_pairs_mirror_h0_and_share_the_rest(tmp_path):
    spec = dmft.DMFTSpec.from_flat(alpha=3, m0=0.2, algorithm="psgd", batch_fraction=0.5, persistence=1, dt=0.05,
                                   t_max=1, samples=200, antithetic=True)
    s = dmft.draw_samples(spec, replica=3)
    half = dmft.draw_samples(replace(spec, solver=replace(spec.solver, samples=100, antithetic=False)), replica=3)
    np.testing.assert_array_equal(s["h0"], np.concatenate([half["h0"], -half["h0"]]))
    np.testing.assert_array_equal(s["y"], np.concatenate([half["y"], half["y"]]))
    for name in ("h_init", "Z", "sel"):
        np.testing.assert_array_equal(s[name], np.concatenate([half[name]] * 2, axis=-1))
    ds = dmft.solve(spec, threads=1)
    assert ds.attrs["status"] == "converged" and '"antithetic": true' in ds.attrs["spec"]
    result = runner.invoke(app, ["dmft", "--samples", "201", "--antithetic", "-o", str(tmp_path / "x.nc")])
    assert result.exit_code == 2 and "samples: 201 is odd" in result.output, result.output
