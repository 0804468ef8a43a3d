"""Gaussian-mixture classification (Mignacco et al. 2020) in the simulation engine: the test-error
formulas (eqs 24-25) against held-out samples, the problem's defaults (ridge, random start, no 1/ell
rescaling), the first GD step from w = 0 on the Bayes-optimal error, the training accuracy and its
success criterion, the sweep and the command line."""
import json

import numpy as np
import pytest
from typer.testing import CliRunner

import prcy
from prcy.analysis import bayes_optimal_two_cluster_error
from prcy.cli import app

runner = CliRunner()


@pytest.mark.parametrize("problem,options", [
    ("mixture-2", dict(delta=0.5, algorithm="gd", lr=0.2)),
    ("mixture-3", dict(delta=0.1, onset=0.7, algorithm="psgd", batch_fraction=0.3, persistence=1.0, lr=0.1,
                       ridge=0.1, init_variance=1.0)),
])
def test_formula_against_held_out_samples(problem, options):
    """eq 24/25 of the recorded m and C against 20 000 fresh samples of the same data law, at every time."""
    ds = prcy.simulate(problem=problem, alpha=2, n=200, t_max=20, points=6, seeds=2, n_test=20000, **options)
    formula, empirical = ds.test_error.values, ds.test_error_empirical.values
    assert np.all(np.isfinite(formula)) and formula.min() < 0.4           # the classifier learned something
    # a held-out error of 20 000 samples has s.d. <= 0.0036; the formula is the d -> infinity average
    np.testing.assert_allclose(empirical, formula, atol=0.02)
    np.testing.assert_allclose(ds.train_accuracy.values, 1.0 - ds.train_error.values)


def test_the_papers_defaults_are_the_mixtures_defaults():
    ds = prcy.simulate(problem="mixture-2", algorithm=["gd", "psgd"], n=50, t_max=1, seeds=1, lr=0.2)
    for spec in json.loads(ds.attrs["spec"]):
        assert spec["constraint"]["kind"] == "ridge" and spec["init"]["kind"] == "random"
        assert spec["problem"]["delta"] == 0.5
    psgd = json.loads(ds.attrs["spec"])[1]["algorithm"]
    assert psgd["name"] == "psgd" and psgd["rescale"] is False
    three = prcy.simulate(problem="mixture-3", n=50, t_max=1, seeds=1, lr=0.2)
    spec = json.loads(three.attrs["spec"])
    assert (spec["problem"]["delta"], spec["problem"]["onset"]) == (0.05, 0.7)
    # given explicitly, the options override the problem's defaults; elsewhere nothing changes
    ours = prcy.simulate(problem="mixture-2", constraint="sphere", init="warm", m0=0.3, n=50, t_max=1, seeds=1)
    assert abs(float(ours.magnetization[0, 0]) - 0.3) < 1e-12 and abs(float(ours.norm[0, -1]) - 1) < 1e-12
    pr = json.loads(prcy.simulate(n=50, t_max=0.1, seeds=1).attrs["spec"])
    assert pr["constraint"]["kind"] == "sphere" and pr["init"]["kind"] == "warm"


def test_first_gd_step_from_zero_lands_on_the_bayes_error():
    """From w = 0 every sample has the same l'(0): one GD step is w = eta b / 2, b = sum_mu y_mu x_mu /
    sqrt(d), the Bayes-optimal direction ([MKUZ20] fig 4 left; docs/theory.md, section 4)."""
    ds = prcy.simulate(problem="mixture-2", alpha=2, delta=0.5, n=1000, lr=0.2, init_variance=0.0, t_max=0.2,
                       seeds=6)
    assert np.all(ds.test_error.isel(time=0) == 0.25)                     # w = 0: sign(0) = 0, eq 23
    first = ds.test_error.isel(time=-1)
    bayes = bayes_optimal_two_cluster_error(2, 0.5)
    assert abs(float(first.mean()) - bayes) < 4 * float(first.std()) / np.sqrt(6) + 1e-3


def test_success_by_training_accuracy():
    ds = prcy.simulate(problem="mixture-2", alpha=1, delta=0.1, n=100, lr=0.2, t_max=20, seeds=3,
                       success="train-accuracy")
    assert bool(ds.success.all())                                          # separable: GD gets there
    last = ds.train_accuracy.isel(time=-1)
    assert np.all(last == 1.0)
    solved = ds.solved_time.values
    for s in range(3):
        t = ds.time.values
        assert ds.train_accuracy[s].sel(time=solved[s]) == 1.0
        assert np.all(ds.train_accuracy[s].values[t < solved[s]] < 1.0)
    hard = prcy.simulate(problem="mixture-2", alpha=4, delta=2.0, n=100, lr=0.2, t_max=2, seeds=2,
                         success="train-accuracy")
    assert not bool(hard.success.any()) and np.all(np.isnan(hard.solved_time))


def test_sweep_keeps_every_curve(tmp_path):
    out = tmp_path / "s.nc"
    result = runner.invoke(app, ["sweep", "--problem", "mixture-3", "--init-variance", "0.01,1", "--n", "40",
                                 "--t-max", "1", "--seeds", "2", "--lr", "0.2", "-o", str(out)])
    assert result.exit_code == 0, result.output
    from prcy.io import open_dataset
    ds = open_dataset(out)
    for name in ("train_accuracy", "train_error", "test_error", "norm", "magnetization"):
        assert ds[name].dims == ("init_variance", "seed", "time"), name
    assert ds.attrs["delta"] == 0.05 and ds.attrs["onset"] == 0.7


@pytest.mark.parametrize("args,message", [
    (["--problem", "mixture-2", "--delta", "0"], "delta: 0.0 is not allowed; allowed: a finite number > 0"),
    (["--problem", "mixture-3", "--onset", "-0.7"], "onset: -0.7 is not allowed"),
    (["--problem", "mixture-2", "--init-variance", "-1"], "init_variance: -1.0 is not allowed"),
    (["--delta", "0.5"], "delta: 0.5 does not apply to problem phase-retrieval"),
    (["--success", "train-accuracy"], "success: 'train-accuracy' does not apply to problem phase-retrieval"),
    (["--problem", "mixture-2", "--algorithm", "psgd", "--batch-fraction", "0.1", "--persistence", "1.6667",
      "--lr", "0.2"], "persistence: 1.6667 makes a switching probability per step exceed 1"),
])
def test_bad_input_is_one_line(args, message, tmp_path):
    result = runner.invoke(app, ["simulate", *args, "--n", "20", "--t-max", "0.2", "--seeds", "1",
                                 "-o", str(tmp_path / "x.nc")])
    assert result.exit_code != 0
    assert message in result.output, result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1, result.output
    assert not (tmp_path / "x.nc").exists()


def test_plot_draws_an_algorithm_once_along_the_axes_it_does_not_depend_on(tmp_path):
    from prcy.analysis.plots import plot_curves
    from prcy.io import open_dataset
    out = tmp_path / "s.nc"
    result = runner.invoke(app, ["sweep", "--problem", "mixture-2", "--algorithm", "sgd,psgd", "--persistence", "1,2",
                                 "--n", "40", "--t-max", "1", "--seeds", "2", "--lr", "0.2", "-o", str(out)])
    assert result.exit_code == 0, result.output
    fig = plot_curves(open_dataset(out), "test_error")
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["sgd persistence=any", "psgd persistence=1", "psgd persistence=2"]
