"""Success curves, thresholds and curve bands against independent computations: hand-computed
interpolations, a known logistic success probability, Wilson intervals, numpy quantiles; and the
`prcy analyze thresholds` command."""
import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

from prcy.analysis import curve_bands, success_curve, threshold, threshold_table, wilson_interval
from prcy.analysis.thresholds import crossing, isotonic_fit
from prcy.cli import app
from prcy.io import write_dataset

runner = CliRunner()


def success_dataset(p, alphas, seeds, rng, algorithms=("gd", "psgd"), schema="prcy-sweep/1"):
    """success ~ Bernoulli(p(algorithm, alpha)) over (algorithm, alpha, seed); p: callable(algo, alpha)."""
    draws = np.stack([np.stack([rng.random(seeds) < p(a, x) for x in alphas]) for a in algorithms])
    ds = xr.Dataset({"success": (("algorithm", "alpha", "seed"), draws)},
                    coords={"algorithm": list(algorithms), "alpha": np.asarray(alphas, dtype=float),
                            "seed": np.arange(seeds)})
    ds.attrs["schema"] = schema
    return ds


def exact_dataset(fractions, alphas, seeds=10):
    """success with exactly round(f * seeds) successes at each alpha (one algorithm, no algorithm dim)."""
    rows = []
    for f in fractions:
        k = int(round(f * seeds))
        rows.append(np.arange(seeds) < k)
    return xr.Dataset({"success": (("alpha", "seed"), np.array(rows))},
                      coords={"alpha": np.asarray(alphas, dtype=float), "seed": np.arange(seeds)})


def logistic(center, width):
    return lambda algo, a: 1 / (1 + math.exp(-(a - center[algo]) / width))


# --------------------------------------------------------------------------------------------------
# interpolation and monotone fit, by hand

def test_three_point_grid_interpolation_by_hand():
    ds = exact_dataset([0.2, 0.4, 0.9], [1.0, 2.0, 3.0])
    r = threshold(ds, n_boot=0)
    # between alpha 2 (0.4) and 3 (0.9): 2 + (0.5 - 0.4) / (0.9 - 0.4) = 2.2
    assert float(r["threshold"]) == pytest.approx(2.2, abs=1e-12)
    assert str(r["status"].values) == "ok"
    assert np.isnan(float(r["ci_low"])) and np.isnan(float(r["ci_high"]))      # no bootstrap asked
    r = threshold(ds, level=0.3, n_boot=0)
    assert float(r["threshold"]) == pytest.approx(1.5, abs=1e-12)            # 1 + 0.1 / 0.2


def test_non_monotone_curve_uses_the_monotone_fit():
    # raw 0.1, 0.7, 0.5, 0.9 -> isotonic 0.1, 0.6, 0.6, 0.9 -> crossing 1 + 0.4 / 0.5 = 1.8
    ds = exact_dataset([0.1, 0.7, 0.5, 0.9], [1.0, 2.0, 3.0, 4.0])
    assert float(threshold(ds, n_boot=0)["threshold"]) == pytest.approx(1.8, abs=1e-12)
    np.testing.assert_allclose(isotonic_fit([0.1, 0.7, 0.5, 0.9]), [0.1, 0.6, 0.6, 0.9])
    # weights: (0.7 * 3 + 0.5 * 1) / 4 = 0.65
    np.testing.assert_allclose(isotonic_fit([0.1, 0.7, 0.5, 0.9], [1, 3, 1, 1]), [0.1, 0.65, 0.65, 0.9])
    np.testing.assert_allclose(isotonic_fit([0.9, 0.5, 0.7, 0.1], increasing=False), [0.9, 0.6, 0.6, 0.1])


def test_run_exactly_at_the_level_gives_its_midpoint():
    assert crossing([1, 2, 3, 4, 5], [0.1, 0.5, 0.5, 0.5, 0.8]) == (3.0, "ok")
    assert crossing([1, 2, 3], [0.2, 0.5, 0.7]) == (2.0, "ok")


def test_decreasing_curves():
    ds = exact_dataset([0.9, 0.4, 0.2], [1.0, 2.0, 3.0])
    # between alpha 1 (0.9) and 2 (0.4): 1 + (0.9 - 0.5) / 0.5 = 1.8
    assert float(threshold(ds, n_boot=0, increasing=False)["threshold"]) == pytest.approx(1.8)
    assert str(threshold(ds, n_boot=0)["status"].values) != "ok"    # increasing fit of a falling curve


def test_no_crossing_is_said_never_a_number():
    below = threshold(exact_dataset([0.0, 0.2, 0.5], [1.0, 2.0, 3.0]), n_boot=50)
    assert np.isnan(float(below["threshold"])) and np.isnan(float(below["ci_low"]))
    assert str(below["status"].values) == "below level on the grid"
    above = threshold(exact_dataset([0.6, 0.8, 1.0], [1.0, 2.0, 3.0]), n_boot=50)
    assert str(above["status"].values) == "above level on the grid"
    row = threshold_table(below).iloc[0]
    assert row["status"] == "below level on the grid" and np.isnan(row["threshold"])


def test_errors_name_the_problem():
    ds = success_dataset(logistic({"gd": 3, "psgd": 3}, 0.3), [2.0, 3.0], 5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="'n' is not a dimension"):
        threshold(ds, along="n")
    with pytest.raises(ValueError, match="at least 2"):
        threshold(ds.isel(alpha=[0]))
    with pytest.raises(ValueError, match="level"):
        threshold(ds, level=1.5)
    with pytest.raises(ValueError, match="bootstrap"):
        threshold(ds, n_boot=-1)
    with pytest.raises(ValueError, match="non-numeric"):
        threshold(ds, along="algorithm")
    with pytest.raises(ValueError, match="'n' is not a dimension"):
        success_curve(ds, along="n")


# --------------------------------------------------------------------------------------------------
# a known logistic success probability

CENTER = {"gd": 3.0, "psgd": 2.6}
ALPHAS = np.arange(2.0, 4.01, 0.2)


def test_alpha_c_of_a_known_logistic_is_inside_its_interval_and_the_interval_shrinks():
    p = logistic(CENTER, 0.3)
    small = threshold(success_dataset(p, ALPHAS, 200, np.random.default_rng(1)), n_boot=400, seed=1)
    large = threshold(success_dataset(p, ALPHAS, 5000, np.random.default_rng(2)), n_boot=400, seed=1)
    for r in (small, large):
        for algo, true in CENTER.items():
            cell = r.sel(algorithm=algo)
            assert float(cell["ci_low"]) <= true <= float(cell["ci_high"]), (algo, cell)
            assert str(cell["status"].values) == "ok" and int(cell["boot_no_crossing"]) == 0
    width = lambda r: (r["ci_high"] - r["ci_low"]).values
    assert np.all(width(large) < 0.4 * width(small))        # ~ 1/sqrt(25) = 0.2 expected
    assert np.all(np.abs(large["threshold"].values - [CENTER["gd"], CENTER["psgd"]]) < 0.05)


def test_bootstrap_interval_covers_the_truth_at_about_its_level():
    """Coverage over independent datasets: a 95% interval should cover alpha_c ~95% of the time
    (the linear interpolation of a symmetric logistic at a grid point is unbiased)."""
    p = logistic({"gd": 3.0}, 0.4)
    covered = 0
    trials = 40
    for i in range(trials):
        ds = success_dataset(p, ALPHAS, 100, np.random.default_rng(100 + i), algorithms=("gd",))
        cell = threshold(ds, n_boot=300, seed=i).sel(algorithm="gd")
        covered += float(cell["ci_low"]) <= 3.0 <= float(cell["ci_high"])
    assert covered >= 33           # P(Binomial(40, 0.95) < 34) ~ 1.4%; fails for a far too narrow interval


def test_replicas_without_a_crossing_are_counted():
    """Two grid points with fractions 0.4 and 0.6 and 20 seeds: a replica crosses iff the resampled
    fractions satisfy p0 < 0.5 < p1; its probability, by an independent Monte Carlo that resamples
    the same seed indices at both points (0.488; resampling each point on its own would give 0.43)."""
    s0 = np.arange(20) < 8           # 8/20 = 0.4
    s1 = np.arange(20) < 12          # 12/20 = 0.6: the seeds that succeed at alpha 1 also do at alpha 2
    ds = xr.Dataset({"success": (("alpha", "seed"), np.stack([s0, s1]))},
                    coords={"alpha": [1.0, 2.0], "seed": np.arange(20)})
    n_boot = 4000
    r = threshold(ds, n_boot=n_boot, seed=3)
    rng = np.random.default_rng(12345)
    idx = rng.integers(0, 20, size=(100_000, 20))
    p0, p1 = s0[idx].mean(1), s1[idx].mean(1)
    expected = np.mean(~((p0 < 0.5) & (p1 > 0.5)))
    sd = math.sqrt(expected * (1 - expected) / n_boot)
    assert abs(int(r["boot_no_crossing"]) / n_boot - expected) < 4 * sd + 0.005
    assert float(r["threshold"]) == pytest.approx(1.5)


def test_threshold_per_n_is_alpha_c_of_n():
    rng = np.random.default_rng(5)
    centers = {64: 2.5, 128: 3.2}
    data = np.stack([[rng.random(400) < 1 / (1 + np.exp(-(a - centers[n]) / 0.3)) for a in ALPHAS]
                     for n in centers])
    ds = xr.Dataset({"success": (("n", "alpha", "seed"), data)},
                    coords={"n": [64, 128], "alpha": ALPHAS, "seed": np.arange(400)})
    r = threshold(ds, n_boot=200)
    assert r["threshold"].dims == ("n",)
    for n, c in centers.items():
        cell = r.sel(n=n)
        assert float(cell["ci_low"]) <= c <= float(cell["ci_high"])
    table = threshold_table(r)
    assert list(table["n"]) == [64, 128] and {"threshold", "ci_low", "ci_high", "boot_no_crossing",
                                              "status"} <= set(table.columns)


# --------------------------------------------------------------------------------------------------
# success curve and bands

def test_success_curve_counts_and_wilson_intervals():
    ds = success_dataset(logistic(CENTER, 0.3), ALPHAS, 37, np.random.default_rng(7))
    curve = success_curve(ds)
    assert curve["fraction"].dims == ("algorithm", "alpha")
    success = ds["success"].values
    for i, algo in enumerate(ds.algorithm.values):
        for j, a in enumerate(ALPHAS):
            k = int(success[i, j].sum())
            cell = curve.sel(algorithm=algo, alpha=a)
            assert int(cell["successes"]) == k and int(cell["trials"]) == 37
            assert float(cell["fraction"]) == pytest.approx(k / 37)
            assert (float(cell["ci_low"]), float(cell["ci_high"])) == pytest.approx(wilson_interval(k, 37))


def test_curve_bands_match_numpy_quantiles():
    rng = np.random.default_rng(9)
    m = rng.normal(size=(2, 31, 12))
    m[1, 4, 3] = np.nan                         # a diverged seed at one time is left out
    ds = xr.Dataset({"magnetization": (("algorithm", "seed", "time"), m)},
                    coords={"algorithm": ["gd", "psgd"], "seed": np.arange(31), "time": np.arange(12.0)})
    bands = curve_bands(ds, quantiles=(0.1, 0.5, 0.9))
    np.testing.assert_allclose(bands["median"].transpose("algorithm", "time").values,
                               np.nanmedian(m, axis=1))
    np.testing.assert_allclose(bands["quantile_values"].transpose("quantile", "algorithm", "time").values,
                               np.nanquantile(m, [0.1, 0.5, 0.9], axis=1))
    assert int(bands["seeds"].sel(algorithm="psgd", time=3.0)) == 30
    absolute = curve_bands(ds, quantiles=(0.25, 0.75), absolute=True)
    np.testing.assert_allclose(absolute["median"].transpose("algorithm", "time").values,
                               np.nanmedian(np.abs(m), axis=1))
    with pytest.raises(ValueError, match="no variable 'norm'"):
        curve_bands(ds, var="norm")
    with pytest.raises(ValueError, match="quantiles"):
        curve_bands(ds, quantiles=(0.1, 1.5))


# --------------------------------------------------------------------------------------------------
# prcy analyze thresholds

@pytest.fixture
def sweep_file(tmp_path):
    ds = success_dataset(logistic(CENTER, 0.3), ALPHAS, 300, np.random.default_rng(11))
    return write_dataset(ds, tmp_path / "sweep.nc")


def test_cli_prints_and_saves_the_table(sweep_file, tmp_path):
    out = tmp_path / "table.csv"
    result = runner.invoke(app, ["analyze", "thresholds", str(sweep_file), "--bootstrap", "200", "-o", str(out)])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "alpha_c" in line]
    assert [line.split(":")[0].strip() for line in lines] == ["gd", "psgd"]
    table = pd.read_csv(out)
    assert list(table["algorithm"]) == ["gd", "psgd"] and (table["status"] == "ok").all()
    for algo, true in CENTER.items():
        row = table[table["algorithm"] == algo].iloc[0]
        assert row["ci_low"] <= true <= row["ci_high"]
        assert f"alpha_c = {row['threshold']:.4g}" in result.output
    again = runner.invoke(app, ["analyze", "thresholds", str(sweep_file), "-o", str(out)])
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_cli_reports_no_crossing(tmp_path):
    ds = success_dataset(lambda a, x: 0.0, [1.0, 2.0], 10, np.random.default_rng(0))
    path = write_dataset(ds, tmp_path / "never.nc")
    result = runner.invoke(app, ["analyze", "thresholds", str(path), "--bootstrap", "20"])
    assert result.exit_code == 0, result.output
    assert result.output.count("no crossing of 0.5") == 2 and "alpha_c =" not in result.output


def test_cli_bad_input(sweep_file, tmp_path):
    missing = runner.invoke(app, ["analyze", "thresholds", str(tmp_path / "nope.nc")])
    assert missing.exit_code == 2 and "error: file" in missing.output and "Traceback" not in missing.output
    decreasing = runner.invoke(app, ["analyze", "thresholds", str(sweep_file), "--along", "alpha",
                                     "--decreasing", "--bootstrap", "0"])
    assert decreasing.exit_code == 0, decreasing.output
    assert decreasing.output.count("no crossing") == 2 and "alpha_c =" not in decreasing.output  # rising curves
    bad_dim = runner.invoke(app, ["analyze", "thresholds", str(sweep_file), "--along", "n"])
    assert bad_dim.exit_code == 2 and "'n' is not a dimension" in bad_dim.output
    bad_level = runner.invoke(app, ["analyze", "thresholds", str(sweep_file), "--level", "2"])
    assert bad_level.exit_code == 2 and "level" in bad_level.output
    bad_out = runner.invoke(app, ["analyze", "thresholds", str(sweep_file), "-o", str(tmp_path / "t.txt")])
    assert bad_out.exit_code == 2 and ".csv" in bad_out.output
    junk = tmp_path / "junk.nc"
    junk.write_bytes(b"not netcdf")
    bad_file = runner.invoke(app, ["analyze", "thresholds", str(junk)])
    assert bad_file.exit_code == 2 and "error:" in bad_file.output
