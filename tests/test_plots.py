"""Figures: the matplotlib objects carry the expected lines and values (checked against numpy and
the Wilson interval), PNG and PDF files are written, theory curves overlay, and `prcy plot` handles
bad input with one-line errors."""
import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from prcy.analysis import wilson_interval  # noqa: E402
from prcy.analysis.plots import (open_curves, parse_selection, plot, plot_curves, plot_seeds,  # noqa: E402
                                 plot_success, save_figure, select)
from prcy.cli import app  # noqa: E402
from prcy.io import write_dataset  # noqa: E402

runner = CliRunner()
TIME = np.concatenate([[0.0], np.geomspace(0.01, 20, 30)])
LR = 0.01


def sim_dataset(seeds=30, alphas=(2.0, 3.0, 4.0), algorithms=("gd", "psgd"), rng_seed=0):
    rng = np.random.default_rng(rng_seed)
    shape = (len(algorithms), len(alphas), seeds, TIME.size)
    sign = rng.choice([-1.0, 1.0], size=shape[:3] + (1,))
    rate = rng.uniform(0.05, 1.0, size=shape[:3] + (1,))
    m = sign * (0.2 + 0.8 * (1 - np.exp(-rate * TIME)))
    loss = np.exp(-rate * TIME) + 1e-8
    success = rng.random(shape[:3]) < np.array(alphas)[None, :, None] / 5
    dims = ("algorithm", "alpha", "seed", "time")
    ds = xr.Dataset(
        {"magnetization": (dims, m), "train_loss": (dims, loss), "test_error": (dims, 2 * loss),
         "norm": (dims, np.ones(shape)), "success": (dims[:3], success),
         "solved_time": (dims[:3], np.where(success, 5.0, np.nan))},
        coords={"algorithm": list(algorithms), "alpha": list(alphas), "seed": np.arange(seeds), "time": TIME})
    ds.attrs.update(schema="prcy-sweep/1", title="prcy sweep", lr=LR)
    return ds


def theory_dataset():
    ds = xr.Dataset({"magnetization": ("time", 0.2 + 0.8 * np.tanh(TIME)),
                     "train_loss": ("time", np.exp(-TIME) + 1e-9), "test_error": ("time", np.exp(-TIME))},
                    coords={"time": TIME})
    ds.attrs.update(schema="prcy-dmft/1", title="DMFT")
    return ds


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_curves_one_median_line_and_band_per_algorithm_with_abs_magnetization():
    ds = sim_dataset()
    fig = plot_curves(ds, "magnetization", selection={"alpha": "3"})
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["gd", "psgd"]
    assert len(ax.collections) == 2                                    # one band per algorithm
    assert ax.get_xscale() == "log"
    np.testing.assert_allclose(lines[0].get_xdata(), TIME + LR)        # t + lr
    expected = np.median(np.abs(ds.magnetization.sel(algorithm="psgd", alpha=3.0).values), axis=0)
    np.testing.assert_allclose(lines[1].get_ydata(), expected)          # |m|, median over seeds
    vertices = ax.collections[1].get_paths()[0].vertices
    q10, q90 = np.quantile(np.abs(ds.magnetization.sel(algorithm="psgd", alpha=3.0).values), [0.1, 0.9], axis=0)
    for t, low, high in zip(TIME + LR, q10, q90):                      # the band spans q10..q90 at each time
        ys = vertices[np.isclose(vertices[:, 0], t, rtol=1e-12), 1]
        assert ys.min() == pytest.approx(low) and ys.max() == pytest.approx(high)


def test_curves_without_selection_draw_every_combination_and_theory_overlays():
    ds = sim_dataset()
    fig = plot_curves(ds, "train_loss", theory=[("dmft", theory_dataset())])
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert len(labels) == 2 * 3 + 1 and labels[0] == "gd alpha=2" and labels[-1] == "dmft"
    theory_line = ax.get_lines()[-1]
    np.testing.assert_allclose(theory_line.get_xdata(), TIME + LR)     # same shifted axis
    np.testing.assert_allclose(theory_line.get_ydata(), np.exp(-TIME) + 1e-9)
    assert theory_line.get_linestyle() == "--" and ax.get_yscale() == "log"


def test_theory_ensemble_overlays_mean_and_two_standard_errors_of_converged_replicas():
    rng = np.random.default_rng(0)
    m = 0.5 + 0.1 * rng.standard_normal((4, TIME.size))
    ens = xr.Dataset({"magnetization": (("replica", "time"), m),
                      "replica_status": ("replica", ["converged", "converged", "max_iter", "converged"])},
                     coords={"replica": np.arange(4), "time": TIME})
    fig = plot_curves(sim_dataset(), "magnetization", selection={"alpha": "3"}, theory=[("dmft", ens)])
    ax = fig.axes[0]
    line = ax.get_lines()[-1]
    kept = m[[0, 1, 3]]
    assert line.get_label() == "dmft (mean of 3 replicas +- 2 s.e.)"
    np.testing.assert_allclose(line.get_ydata(), kept.mean(axis=0))
    band = ax.collections[-1].get_paths()[0].vertices
    t = TIME[5] + LR
    ys = band[np.isclose(band[:, 0], t, rtol=1e-12), 1]
    se = kept[:, 5].std(ddof=1) / np.sqrt(3)
    assert ys.min() == pytest.approx(kept[:, 5].mean() - 2 * se) and ys.max() == pytest.approx(kept[:, 5].mean() + 2 * se)


def test_seeds_draws_each_seed_up_to_the_limit():
    ds = sim_dataset(seeds=60)
    fig = plot_seeds(ds, "magnetization", selection={"alpha": "4"})
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 2 * 50
    fig = plot_seeds(ds, "test_error", selection={"alpha": "4", "algorithm": "gd"}, max_seeds=7,
                     theory=[("dmft", theory_dataset())])
    lines = fig.axes[0].get_lines()
    assert len(lines) == 7 + 1
    np.testing.assert_allclose(lines[3].get_ydata(), ds.test_error.sel(alpha=4.0, algorithm="gd").values[3])


def test_success_points_and_wilson_error_bars():
    ds = sim_dataset(seeds=40)
    fig = plot_success(ds)
    ax = fig.axes[0]
    assert len(ax.containers) == 2
    for container, algo in zip(ax.containers, ["gd", "psgd"]):
        data_line, _, (bars,) = container.lines
        assert container.get_label() == algo
        successes = ds.success.sel(algorithm=algo).values.sum(-1)
        np.testing.assert_allclose(data_line.get_ydata(), successes / 40)
        for seg, k in zip(bars.get_segments(), successes):
            assert (seg[0, 1], seg[1, 1]) == pytest.approx(wilson_interval(int(k), 40))


def test_plot_sorts_simulations_from_theory_and_writes_png_and_pdf(tmp_path):
    fig = plot([sim_dataset(), theory_dataset()], kind="curves", selection={"algorithm": "psgd"},
               names=["sweep", "dmft"])
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["alpha=2", "alpha=3", "alpha=4", "dmft"]
    for suffix, magic in ((".png", b"\x89PNG"), (".pdf", b"%PDF")):
        path = save_figure(fig, tmp_path / f"fig{suffix}")
        data = path.read_bytes()
        assert data.startswith(magic) and len(data) > 5000
    with pytest.raises(FileExistsError):
        save_figure(fig, tmp_path / "fig.png")
    with pytest.raises(ValueError, match="png or .pdf"):
        save_figure(fig, tmp_path / "fig.jpg")


def test_errors():
    ds = sim_dataset()
    with pytest.raises(ValueError, match="kind"):
        plot([ds], kind="histogram")
    with pytest.raises(ValueError, match="only kinds curves and seeds"):
        plot([ds, theory_dataset()], kind="success")
    with pytest.raises(ValueError, match="no simulation"):
        plot([theory_dataset()])
    with pytest.raises(ValueError, match="no variable 'norm' in the theory"):
        plot([ds, theory_dataset()], var="norm")
    with pytest.raises(ValueError, match="groups of seeds"):
        plot_seeds(sim_dataset(alphas=(1.0, 2.0, 3.0, 4.0, 5.0)))
    with pytest.raises(ValueError, match="'beta' is not a dimension"):
        select(ds, {"beta": "1"})
    with pytest.raises(ValueError, match=r"alpha=3.5 is not in the data; values: 2, 3, 4"):
        select(ds, {"alpha": "3.5"})
    with pytest.raises(ValueError, match="not a number"):
        select(ds, {"alpha": "x"})
    with pytest.raises(ValueError, match="adam"):
        select(ds, {"algorithm": "adam"})
    assert parse_selection("algorithm=psgd, alpha=3") == {"algorithm": "psgd", "alpha": "3"}
    for bad in ("alpha", "alpha=", "=3", "alpha=3,alpha=4"):
        with pytest.raises(ValueError, match="select"):
            parse_selection(bad)


# --------------------------------------------------------------------------------------------------
# prcy plot

@pytest.fixture
def files(tmp_path):
    sim = write_dataset(sim_dataset(), tmp_path / "sweep.nc")
    theory = tmp_path / "dmft.nc"
    theory_dataset().to_netcdf(theory)
    return sim, theory


def test_cli_plot_kinds(files, tmp_path):
    sim, theory = files
    out = tmp_path / "curves.png"
    result = runner.invoke(app, ["plot", str(sim), str(theory), "-o", str(out), "--select", "alpha=3"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"\x89PNG")
    for kind, suffix in (("seeds", ".pdf"), ("success", ".png")):
        out = tmp_path / f"{kind}{suffix}"
        args = ["plot", str(sim), "-o", str(out), "--kind", kind, "--var", "train_loss"]
        if kind == "seeds":
            args += ["--select", "algorithm=gd,alpha=2"]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert out.stat().st_size > 5000
    assert open_curves(theory).attrs["schema"] == "prcy-dmft/1"


def test_cli_plot_bad_input(files, tmp_path):
    sim, theory = files
    out = str(tmp_path / "f.png")
    cases = [
        (["plot", str(tmp_path / "missing.nc"), "-o", out], "does not exist"),
        (["plot", str(sim), "-o", out, "--select", "beta=1"], "'beta' is not a dimension"),
        (["plot", str(sim), "-o", out, "--select", "alpha"], "not NAME=VALUE"),
        (["plot", str(sim), "-o", out, "--select", "alpha=9"], "alpha=9 is not in the data"),
        (["plot", str(sim), "-o", str(tmp_path / "f.jpg")], ".png or .pdf"),
        (["plot", str(sim), str(theory), "-o", out, "--kind", "success"], "only kinds curves and seeds"),
        (["plot", str(sim), "-o", out, "--kind", "success", "--along", "n"], "'n' is not a dimension"),
        (["plot", str(theory), "-o", out], "no simulation"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and "Traceback" not in result.output, (args, result.output)
        assert len([line for line in result.output.splitlines() if line.strip()]) == 1
    assert not (tmp_path / "f.png").exists()
    (tmp_path / "f.png").write_bytes(b"keep")
    result = runner.invoke(app, ["plot", str(sim), "-o", out, "--select", "alpha=3"])
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert (tmp_path / "f.png").read_bytes() == b"keep"


def test_cli_plot_and_thresholds_on_a_real_sweep(tmp_path):
    sweep = tmp_path / "s.nc"
    result = runner.invoke(app, ["sweep", "--algorithm", "gd,psgd", "--alpha", "2,4", "--n", "32",
                                 "--t-max", "3", "--seeds", "6", "--points", "12", "--processes", "1",
                                 "--no-progress", "-o", str(sweep)])
    assert result.exit_code == 0, result.output
    for kind in ("curves", "seeds", "success"):
        out = tmp_path / f"{kind}.png"
        result = runner.invoke(app, ["plot", str(sweep), "-o", str(out), "--kind", kind,
                                     *(["--select", "alpha=4"] if kind != "success" else [])])
        assert result.exit_code == 0, result.output
        assert out.stat().st_size > 5000
    result = runner.invoke(app, ["analyze", "thresholds", str(sweep), "--bootstrap", "50"])
    assert result.exit_code == 0, result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 2
