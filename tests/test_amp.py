"""AMP as a baseline (prcy.amp): the denoisers against numerical integration, one GAMP iteration against a
plain elementwise reference, the data and starts of the gradient runs, the state evolution at finite N,
the stopping rules, and the options, command line and sweeps of algorithm amp."""
import math

import numpy as np
import pytest
from scipy.integrate import quad
from typer.testing import CliRunner

import prcy
from prcy import amp
from prcy.analysis import se_iterate
from prcy.analysis.theory import output_denoiser, prior_denoiser
from prcy.cli import app
from prcy.io import open_dataset
from prcy.kernels import dynamics
from prcy.simulate import seed_streams
from prcy.specs import SimulationSpec

runner = CliRunner()
TINY = dict(algorithm="amp", n=64, alpha=2.0, seeds=3, t_max=20)


# --------------------------------------------------------------------------------------------------
# the denoisers

def _smoothed_moments(omega, y, V, sigma):
    """``(Z, E z, E z^2)`` of the cavity ``N(z; omega, V)`` times the channel ``N(y; |z|, sigma^2)``, by
    adaptive quadrature around its two peaks ``z = +-y`` (the channel ``y = |z|`` as ``sigma -> 0``)."""
    def weight(z):
        return math.exp(-(z - omega) ** 2 / (2 * V) - (y - abs(z)) ** 2 / (2 * sigma ** 2))
    moments = []
    for power in (0, 1, 2):
        total = 0.0
        for s in (-1.0, 1.0):
            total += quad(lambda z: weight(z) * z ** power, s * y - 12 * sigma, s * y + 12 * sigma,
                          points=[s * y], epsabs=0, epsrel=1e-12, limit=200)[0]
        moments.append(total)
    return moments


@pytest.mark.parametrize("omega,y,V", [(0.3, 1.2, 0.8), (-0.7, 0.4, 0.5), (1.5, 2.0, 0.2), (0.05, 0.9, 0.99),
                                       (-2.0, 0.1, 0.3)])
def test_output_denoiser_against_numerical_integration(omega, y, V):
    """g_out = (E[z|y] - omega)/V and dg_out = (Var[z|y] - V)/V^2 of the channel y = |z|, from the moments of
    the posterior integrated numerically for a Gaussian channel of width sigma = 1e-5 (whose corrections,
    O(sigma^2 / V), are below 1e-8 here); and g_out = d log Z_out / d omega by central differences."""
    sigma = 1e-5
    Z, m1, m2 = _smoothed_moments(omega, y, V, sigma)
    mean, var = m1 / Z, m2 / Z - (m1 / Z) ** 2
    g, dg = output_denoiser(np.array([omega]), np.array([y]), V)
    assert g[0] == pytest.approx((mean - omega) / V, rel=1e-7, abs=1e-9)
    assert dg[0] == pytest.approx((var - sigma ** 2 - V) / V ** 2, rel=1e-6, abs=1e-8)
    eps = 1e-4
    logz = [math.log(_smoothed_moments(omega + d, y, V, sigma)[0]) for d in (eps, -eps)]
    assert g[0] == pytest.approx((logz[0] - logz[1]) / (2 * eps), rel=1e-6, abs=1e-8)
    g_plus, _ = output_denoiser(np.array([omega + eps]), np.array([y]), V)
    g_minus, _ = output_denoiser(np.array([omega - eps]), np.array([y]), V)
    assert dg[0] == pytest.approx((g_plus[0] - g_minus[0]) / (2 * eps), rel=1e-6, abs=1e-8)


def test_output_denoiser_stays_finite_as_the_variance_vanishes():
    """Near convergence y omega / V is huge: sech is 0 without overflow and g_out its limit (y sign(omega) -
    omega)/V; y = 0 has the posterior z = 0."""
    omega = np.array([1.0 + 1e-9, -2.0, 0.3])
    y = np.array([1.0, 2.0 + 1e-10, 0.0])
    with np.errstate(over="raise", divide="raise", invalid="raise"):         # exp(-|x|) may underflow to 0
        g, dg = output_denoiser(omega, y, 1e-20)
    np.testing.assert_allclose(g, [(1.0 - omega[0]) / 1e-20, (-y[1] - omega[1]) / 1e-20, -0.3 / 1e-20], rtol=1e-6)
    np.testing.assert_array_equal(dg, [-1e20, -1e20, -1e20])
    with pytest.raises(ValueError, match="V: 0.0 is not allowed; allowed: V > 0"):
        output_denoiser(omega, y, 0.0)


def test_prior_denoiser_is_the_gaussian_posterior():
    """Posterior of w ~ N(0, 1) given R = w + sqrt(Sigma) xi, by quadrature at one point."""
    R, sigma = 0.8, 0.6
    post = [quad(lambda w: w ** k * math.exp(-w * w / 2 - (R - w) ** 2 / (2 * sigma)), -12, 12)[0] for k in range(3)]
    mean, var = prior_denoiser(np.array([R]), sigma)
    assert mean[0] == pytest.approx(post[1] / post[0], rel=1e-12)
    assert float(var) == pytest.approx(post[2] / post[0] - (post[1] / post[0]) ** 2, rel=1e-10)
    with pytest.raises(ValueError, match="Sigma: -1.0 is not allowed"):
        prior_denoiser(np.array([R]), -1.0)


# --------------------------------------------------------------------------------------------------
# one iteration against a plain reference

def _reference_step(X, y, w, c, g_prev, lam_prev, damping):
    """One GAMP iteration of the prcy.amp docstring written out element by element, with the output
    function taken from the two-point posterior's weights (not from the tanh form)."""
    M, N = X.shape
    A = [[X[mu, i] / math.sqrt(N) for i in range(N)] for mu in range(M)]
    g, dg = [], []
    for mu in range(M):
        h = sum(A[mu][i] * w[i] for i in range(N))
        omega = h - (c * g_prev[mu] if g_prev is not None else 0.0)
        up = math.exp(-(y[mu] - omega) ** 2 / (2 * c))
        down = math.exp(-(-y[mu] - omega) ** 2 / (2 * c))
        p = up / (up + down)
        mean = p * y[mu] - (1 - p) * y[mu]
        var = y[mu] ** 2 - mean ** 2
        g.append((mean - omega) / c)
        dg.append((var - c) / c ** 2)
    lam = -sum(dg) / N
    if g_prev is not None:
        g = [(1 - damping) * g[mu] + damping * g_prev[mu] for mu in range(M)]
        lam = (1 - damping) * lam + damping * lam_prev
    sigma = 1.0 / lam
    w_new, c_new = [], sigma / (1 + sigma)
    for i in range(N):
        R = w[i] + sigma * sum(A[mu][i] * g[mu] for mu in range(M))
        w_new.append((1 - damping) * R / (1 + sigma) + damping * w[i])
    return np.array(w_new), (1 - damping) * c_new + damping * c, np.array(g), lam


@pytest.mark.parametrize("damping", [0.0, 0.3])
def test_one_iteration_against_the_elementwise_reference(damping):
    rng = np.random.default_rng(5)
    M, N = 30, 20
    X = rng.standard_normal((M, N))
    w0 = rng.standard_normal(N)
    y = np.abs(X @ w0 / math.sqrt(N))
    w, c = 0.4 * w0 + 0.3 * rng.standard_normal(N), 0.6
    first = amp.gamp_step(X, y, w, c, X @ w / math.sqrt(N))
    ref = _reference_step(X, y, w, c, None, None, damping)
    np.testing.assert_allclose(first.g, ref[2], rtol=1e-12, atol=1e-13)
    assert first.lam == pytest.approx(ref[3], rel=1e-12)
    w2 = first.w if not damping else (1 - damping) * first.w + damping * w   # the reference damps w from the start
    step = amp.gamp_step(X, y, w2, first.c, X @ w2 / math.sqrt(N), first.g, first.lam, damping)
    ref = _reference_step(X, y, w2, first.c, first.g, first.lam, damping)
    np.testing.assert_allclose(step.w, ref[0], rtol=1e-11, atol=1e-13)
    assert step.c == pytest.approx(ref[1], rel=1e-12)
    np.testing.assert_allclose(step.g, ref[2], rtol=1e-11, atol=1e-13)
    assert step.lam == pytest.approx(ref[3], rel=1e-12)


def test_a_non_positive_precision_gives_no_estimate():
    """At the symmetric point the precision is pure finite-M noise; a negative one is reported, not used."""
    X = np.ones((4, 2))
    y = np.array([0.1, 0.1, 0.1, 0.1])            # all labels small: Var[z|y] < V everywhere, so lam > 0 ...
    step = amp.gamp_step(X, y, np.zeros(2), 0.5, np.zeros(4))
    assert step.lam > 0 and step.w is not None
    y = np.array([3.0, 3.0, 3.0, 3.0])            # ... and all large: lam < 0, no estimate
    step = amp.gamp_step(X, y, np.zeros(2), 0.5, np.zeros(4))
    assert step.lam < 0 and step.w is None and step.c is None


# --------------------------------------------------------------------------------------------------
# the driver: data, starts, records

@pytest.mark.parametrize("init,precision", [("warm", "float64"), ("random", "float32")])
def test_seed_i_runs_on_the_data_and_start_of_the_gradient_runs_seed_i(init, precision):
    """Seed i of an AMP run: the teacher and data of seed i of a GD run (same root seed, n, alpha), and its
    start built from that GD run's initialization draw; the records are the reference trajectory's."""
    opts = dict(n=50, alpha=2.0, seeds=3, seed=11, init=init, precision=precision, t_max=30, grid="linear",
                points=31)
    ds = prcy.simulate(algorithm="amp", **opts)
    gd = SimulationSpec.from_flat(algorithm="gd", **opts)
    gd_ds = prcy.simulate(gd, threads=1)
    streams = seed_streams(gd)
    for i in range(3):
        w0, X, y, _, _ = dynamics.generate(streams["data"][i], 100, 50, dtype=np.dtype(precision))
        w_gd = dynamics.initial_weights(streams["init"][i], w0, 0.2, True, init=init)
        loss0 = np.mean(((X @ w_gd / math.sqrt(50)) ** 2 - y ** 2) ** 2) / 4        # the GD run's own start
        assert gd_ds.train_loss.isel(seed=i, time=0).item() == pytest.approx(loss0, rel=1e-10)
        w, c = amp.start(w0, w_gd, init, 0.2)
        if init == "warm":
            assert w @ w0 / 50 == pytest.approx(0.2, rel=1e-12) and w @ w / 50 == pytest.approx(0.2, rel=1e-12)
            assert c == 0.8
        else:
            np.testing.assert_array_equal(w, w_gd)
            assert c == 1.0
        ref = amp.trajectory(X.astype(np.float64), y, w0, w, c, np.arange(31), n_steps=30, tol=1e-7)
        np.testing.assert_array_equal(ds.magnetization.isel(seed=i).values, ref["magnetization"])
        np.testing.assert_array_equal(ds.train_loss.isel(seed=i).values, ref["train_loss"])
    assert ds.time.attrs["units"] == "iterations" and "lr" not in ds.attrs
    assert "constraint" not in ds.attrs and ds.attrs["amp_damping"] == 0.0


def test_same_layout_from_python_and_the_command_line(tmp_path):
    out = tmp_path / "amp.nc"
    result = runner.invoke(app, ["simulate", "--algorithm", "amp", "--n", "64", "--alpha", "2", "--seeds", "3",
                                 "--t-max", "20", "--init", "random", "--no-progress", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith("      amp: success")
    cli = open_dataset(out)
    py = prcy.simulate(**TINY, init="random")
    assert set(cli.data_vars) == set(py.data_vars) >= {"magnetization", "norm", "train_loss", "test_error",
                                                      "success", "solved_time", "stop_reason"}
    for name in ("magnetization", "norm", "test_error", "success", "solved_time"):
        np.testing.assert_array_equal(cli[name].values, py[name].values)
    assert py.magnetization.dims == ("seed", "time")


def test_threads_do_not_change_the_numbers_and_progress_can_stop_the_run():
    runs = [prcy.simulate(algorithm="amp", n=300, alpha=1.5, init="random", seeds=5, t_max=40, threads=t)
            for t in (1, 2)]
    for name in ("magnetization", "norm", "train_loss", "solved_time", "stop_time"):
        np.testing.assert_array_equal(runs[0][name].values, runs[1][name].values)
    seen = []

    def stop_after_first(done, total):
        seen.append((done, total))
        raise RuntimeError("stop")
    import time
    begin = time.perf_counter()
    with pytest.raises(RuntimeError, match="stop"):       # heavy damping: ~10^4 iterations a seed, were it not stopped
        prcy.simulate(algorithm="amp", n=500, alpha=1.0, amp_damping=0.999, seeds=4, t_max=10 ** 5, threads=2,
                      progress=stop_after_first)
    assert seen and seen[0][1] == 4 * 10 ** 5 and time.perf_counter() - begin < 5


def test_test_error_formula_and_held_out_samples():
    ds = prcy.simulate(algorithm="amp", n=200, alpha=3.0, m0=0.3, seeds=2, t_max=100, n_test=500)
    from prcy.analysis import test_error
    np.testing.assert_allclose(ds.test_error.values,
                               test_error("phase-retrieval", ds.magnetization.values, ds.norm.values))
    final = ds.isel(time=-1)
    assert np.all(final.test_error_empirical.values < 1e-10)     # alpha = 2: exact recovery


# --------------------------------------------------------------------------------------------------
# stopping rules

def test_stationary_converged_and_diverged_seeds():
    # exact recovery: the posterior variance falls below eps^2 and the state is carried forward
    ds = prcy.simulate(algorithm="amp", n=200, alpha=3.0, seeds=2, t_max=500, m0=0.3)
    assert list(ds.stop_reason.values) == ["stationary", "stationary"] and ds.success.all()
    assert np.all(ds.stop_time.values < 100) and np.all(np.isfinite(ds.magnetization.values))
    assert np.all(np.abs(ds.magnetization.isel(time=-1).values - 1) < 1e-12)
    early = prcy.simulate(algorithm="amp", n=200, alpha=3.0, seeds=2, t_max=500, m0=0.3, early_stop=True)
    assert list(early.stop_reason.values) == ["converged", "converged"]
    np.testing.assert_array_equal(early.stop_time.values, early.solved_time.values)
    np.testing.assert_array_equal(early.solved_time.values, ds.solved_time.values)
    # a warm start too close to w = 0 for this N: the precision's finite-M noise makes it negative in some seeds
    ds = prcy.simulate(algorithm="amp", n=200, alpha=1.5, m0=0.01, seeds=12, t_max=30, grid="linear", points=31)
    diverged = ds.stop_reason.values == "diverged"
    assert 0 < diverged.sum() < 12
    for s in np.flatnonzero(diverged):
        k = int(ds.stop_time.values[s])
        m = ds.magnetization.isel(seed=s).values
        assert np.all(np.isfinite(m[:k])) and np.all(np.isnan(m[k:]))
        assert not ds.success.values[s]
    assert np.all(np.isfinite(ds.magnetization.values[~diverged]))


# --------------------------------------------------------------------------------------------------
# against the state evolution

@pytest.mark.slow
@pytest.mark.parametrize("alpha,checks", [
    (2.0, {1: 0.035, 2: 0.035, 3: 0.04, 5: 0.025, 10: 0.004, 40: 1e-6}),
    (1.2, {1: 0.04, 3: 0.06, 10: 0.055, 20: 0.075}),
    (1.0, {1: 0.035, 3: 0.05, 10: 0.075, 120: 0.1}),
])
def test_finite_n_amp_follows_the_state_evolution(alpha, checks):
    """N = 1000, m0 = 0.2, 12 seeds: the mean overlap over seeds against se_iterate from the same m0, at
    iteration k. Each tolerance is four standard errors of that mean as measured over 24 seeds at this N,
    times sqrt(2) for 12 (2026-12-04: `python examples/amp.py se --n 1000 --m0 0.2 --seeds 24 --seed 3`):
    the spread over seeds is O(N^-1/2), amplified where the iteration is slow (at alpha = 1.2 near the
    spinodal, where the seeds leave the plateau at different times, so only the first 20 iterations are
    compared; at the fixed point of alpha = 1.0, whose state-evolution slope is 0.85). The N = 4000
    comparison: docs/theory.md, "Finite-N AMP"."""
    se = se_iterate(alpha, m0=0.2)
    t_max = max(checks)
    ds = prcy.simulate(algorithm="amp", alpha=alpha, n=1000, m0=0.2, seeds=12, t_max=t_max, grid="linear",
                       points=t_max + 1, seed=3)
    assert not (ds.stop_reason == "diverged").any()
    m = ds.magnetization.values
    for k, tol in checks.items():
        expected = se[min(k, len(se) - 1)]
        assert abs(m[:, k].mean() - expected) < tol, (k, m[:, k].mean(), expected)


def test_a_fixed_point_of_the_damped_iteration_is_one_of_plain_gamp():
    n, alpha = 300, 1.0
    w0, X, y, _, _ = dynamics.generate(np.random.PCG64(4), int(alpha * n), n)
    w, c = amp.start(w0, dynamics.initial_weights(np.random.PCG64(5), w0, 0.3, True), "warm", 0.3)
    g = lam = None
    for k in range(5000):
        step = amp.gamp_step(X, y, w, c, X @ w / math.sqrt(n), g, lam, damping=0.5)
        change = np.abs(step.w - w).max()
        w, c, g, lam = step
        if change < 1e-14:
            break
    assert change < 1e-14 and 0.05 < abs(w @ w0 / n) < 0.9         # a fixed point with m < 1
    plain = amp.gamp_step(X, y, w, c, X @ w / math.sqrt(n), g, lam)
    np.testing.assert_allclose(plain.w, w, rtol=0, atol=1e-10)
    assert plain.c == pytest.approx(c, rel=1e-10) and plain.lam == pytest.approx(lam, rel=1e-10)


def test_damping_stabilizes_small_sizes():
    """N = 100, alpha = 2, random start (seeds 0-15, measured): plain GAMP diverges in 9 of 16 seeds (a
    negative precision) on a Zen 4 machine and in 6 on a Zen 5 one (which seeds blow up follows the
    rounding of the BLAS kernels), damping 0.5 in none, and every damped seed recovers the signal."""
    base = dict(algorithm="amp", alpha=2.0, n=100, init="random", seeds=16, t_max=500)
    plain = prcy.simulate(**base)
    damped = prcy.simulate(**base, amp_damping=0.5)
    assert (plain.stop_reason == "diverged").sum() >= 4
    assert not (damped.stop_reason == "diverged").any() and damped.success.all()


# --------------------------------------------------------------------------------------------------
# options, sweeps, errors

@pytest.mark.parametrize("option,value", [("lr", 0.1), ("batch_fraction", 0.5), ("optimizer", "adam"),
                                          ("constraint", "ridge"), ("temperature", 1.0), ("loss", "absolute"),
                                          ("grad_tol", 1e-3), ("persistence", 2.0), ("momentum", 0.5)])
def test_gradient_options_are_refused_for_amp(option, value):
    with pytest.raises(ValueError) as info:
        prcy.simulate(**TINY, **{option: value})
    message = str(info.value)
    assert message.startswith(f"{option}: {value!r} does not apply to ") and "\n" not in message
    assert "algorithm amp" in message or "optimizer plain" in message       # momentum: the optimizer amp stores


def test_amp_options_and_their_limits():
    with pytest.raises(ValueError, match=r"^amp_damping: 0.5 does not apply to algorithm gd; allowed: only with "
                                         r"algorithm amp$"):
        prcy.simulate(algorithm="gd", n=20, amp_damping=0.5)
    with pytest.raises(ValueError, match=r"^amp_damping: 1.0 is not allowed; allowed: \[0, 1\)$"):
        prcy.simulate(**TINY, amp_damping=1.0)
    with pytest.raises(ValueError, match=r"^algorithm: 'amp' does not apply to problem linear-regression"):
        prcy.simulate(**TINY, problem="linear-regression")
    for m0 in (0.0, 1.0):
        with pytest.raises(ValueError, match=rf"^m0: {m0} is not allowed with algorithm amp; allowed: 0 < m0 < 1"):
            prcy.simulate(**TINY, m0=m0)
    with pytest.raises(ValueError, match=r"^algorithm: 'amp' cannot run together with gd"):
        prcy.simulate(algorithm=["gd", "amp"], n=20)
    with pytest.raises(ValueError, match=r"^init: 'spectral' does not apply to algorithm amp; allowed: warm, random$"):
        prcy.simulate(**TINY, init="spectral")
    with pytest.raises(ValueError, match=r"^hessian: 2 does not apply to algorithm amp"):
        prcy.simulate(**TINY, hessian=2)
    with pytest.raises(ValueError, match=r"^loss: <capsule .* does not apply to algorithm amp; allowed: only with "):
        from prcy.kernels import losses
        prcy.simulate(**TINY, loss=losses.capsule("phase-retrieval"))
    from prcy import dmft
    with pytest.raises(ValueError, match=r"^algorithm: 'amp' has no DMFT .*; allowed: gd, sgd, psgd, langevin$"):
        dmft.solve(algorithm="amp", alpha=2.0)
    from prcy.data import simulate_data
    X = np.random.default_rng(0).standard_normal((40, 20))
    with pytest.raises(ValueError, match=r"^algorithm: 'amp' does not run on given data"):
        simulate_data(X, teacher=np.ones(20), algorithm="amp")


def test_command_line_refuses_gradient_options_for_amp(tmp_path):
    result = runner.invoke(app, ["simulate", "--algorithm", "amp", "--lr", "0.1", "--n", "20", "--no-progress",
                                 "-o", str(tmp_path / "x.nc")])
    assert result.exit_code == 2
    assert result.output.strip() == ("error: lr: 0.1 does not apply to algorithm amp; allowed: only with algorithm "
                                     "gd, sgd, psgd, langevin (amp stores 1: its time is the iteration)")


def test_sweep_over_alpha(tmp_path):
    from prcy.sweep import Sweep, parse_overrides, run_sweep

    grid = parse_overrides(["--algorithm", "amp", "--alpha", "0.8,2", "--n", "200", "--seeds", "4", "--t-max", "100",
                            "--amp-damping", "0.5"])
    ds = run_sweep(Sweep.from_options(grid), tmp_path / "amp.nc", processes=1, threads=1, log=lambda s: None)
    try:
        assert ds.success.dims == ("alpha", "seed") and ds.time.attrs["units"] == "iterations"
        assert not ds.success.sel(alpha=0.8).any() and ds.success.sel(alpha=2.0).all()
    finally:
        ds.close()
    # the tables of docs/theory.md, "Finite-N AMP", at toy size
    import csv
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "examples" / "amp.py"
    for args in (["success", str(tmp_path / "amp.nc")], ["se", "--n", "64", "--alpha", "2", "--m0", "0.2",
                                                         "--seeds", "2", "--t-max", "5", "--iterations", "1,3"]):
        out = tmp_path / f"{args[0]}.csv"
        run = subprocess.run([sys.executable, str(script), *args, "-o", str(out)], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
        rows = list(csv.DictReader(out.open()))
        assert len(rows) == (2 if args[0] == "success" else 3)
    assert [r["iteration"] for r in rows] == ["1", "3", "5"] and rows[0]["se_m"]
    with pytest.raises(ValueError, match=r"^algorithm: 'amp' cannot run together with gd"):
        Sweep.from_options(parse_overrides(["--algorithm", "gd,amp", "--n", "20"]))
    with pytest.raises(ValueError, match=r"^lr: .* does not apply to algorithm amp"):
        Sweep.from_options(parse_overrides(["--algorithm", "amp", "--lr", "0.1,0.2", "--n", "20"]))


def test_the_docs_example_runs():
    """The ``>>>`` example of docs/theory.md, "Finite-N AMP", gives its printed output."""
    import doctest
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "theory.md").read_text(encoding="utf-8")
    start = text.index("### Finite-N AMP")
    section = text[start:text.index("\n## ", start + 1)].replace("```python", "").replace("```", "")
    test = doctest.DocTestParser().get_doctest(section, {}, "docs/theory.md, Finite-N AMP", None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.summarize(verbose=False) == (0, 5)
