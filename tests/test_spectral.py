"""The spectral start (``prcy.spectral``, ``prcy.analysis.spectral``): the matrix-free product against
NumPy, the Lanczos eigenvector against a dense ``eigh``, the high-dimensional overlap formula against
finite-N eigenvectors, the weak-recovery threshold of the optimal preprocessing (alpha = 1/2), and the
option in ``prcy.simulate``."""
import os
import sys

import numpy as np
import pytest

import prcy
from prcy.analysis.spectral import (PREPROCESSINGS, preprocess, spectral_overlap, spectral_threshold,
                                    spectral_top_eigenvalue)
from prcy.kernels import dynamics
from prcy.spectral import spectral_start

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from docs_examples import run_section  # noqa: E402


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_weighted_gram_product_against_numpy(dtype):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((203, 61)).astype(dtype)            # 25 blocks of 8 rows and a tail of 3
    c, v = rng.standard_normal(203), rng.standard_normal(61)
    ref = X.astype(np.float64).T @ (c * (X.astype(np.float64) @ v)) / 61
    np.testing.assert_allclose(dynamics.weighted_gram_product(X, c, v), ref, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="weighted_gram_product"):
        dynamics.weighted_gram_product(X, c[:5], v)


def _data(seed, n, alpha):
    return dynamics.generate(np.random.PCG64(seed), int(round(alpha * n)), n, 0)


@pytest.mark.parametrize("name", PREPROCESSINGS)
def test_lanczos_start_is_the_dense_leading_eigenvector(name):
    w0, X, y, _, _ = _data(3, 200, 3.0)
    w, value, products = spectral_start(X, y, name, np.random.PCG64(4))
    D = X.T @ (preprocess(name, y)[:, None] * X) / X.shape[0]
    vals, vecs = np.linalg.eigh(D)
    assert value == pytest.approx(vals[-1], rel=1e-8)
    assert abs(w @ vecs[:, -1]) / np.sqrt(200) == pytest.approx(1.0, abs=1e-8)
    assert w @ w == pytest.approx(200.0) and 0 < products < 2000
    again, _, _ = spectral_start(X, y, name, np.random.PCG64(4))
    np.testing.assert_array_equal(w, again)                      # the seed's stream fixes the start


def test_overlap_formula_against_finite_n():
    """The limit (Lu & Li 2017; Mondelli & Montanari 2018) against the mean overlap of N = 500 eigenvectors,
    6 data sets each; finite-N fluctuations of the overlap are O(N^-1/2) away from the threshold."""
    for name, alpha in (("optimal", 2.0), ("optimal", 4.0), ("truncated", 4.0)):
        got = []
        for seed in range(6):
            w0, X, y, _, _ = _data(100 + seed, 500, alpha)
            w, _, _ = spectral_start(X, y, name, np.random.PCG64(seed))
            got.append(abs(w @ w0) / 500)
        got = np.array(got)
        assert abs(got.mean() - spectral_overlap(alpha, name)) < 4 * got.std(ddof=1) / np.sqrt(6) + 0.01, \
            (name, alpha, got.mean(), spectral_overlap(alpha, name))


def test_thresholds_and_limits():
    assert spectral_threshold("optimal") == pytest.approx(0.5, abs=2e-3)     # Mondelli & Montanari 2018
    assert spectral_overlap(0.45, "optimal") == 0.0 and spectral_overlap(0.6, "optimal") > 0.15
    truncated = spectral_threshold("truncated")
    assert 1.0 < truncated < 2.0
    assert spectral_overlap(truncated * 0.99, "truncated") == 0.0 < spectral_overlap(truncated * 1.02, "truncated")
    # more samples, more overlap; the optimal preprocessing is ahead of the truncated one everywhere
    alphas = [1.0, 2.0, 4.0, 8.0]
    rho = [spectral_overlap(a) for a in alphas]
    assert all(a < b for a, b in zip(rho, rho[1:])) and rho[-1] < 1
    assert all(spectral_overlap(a) > spectral_overlap(a, "truncated") for a in alphas)
    assert np.isfinite(spectral_top_eigenvalue(2.0))
    with pytest.raises(ValueError, match="unbounded"):
        spectral_overlap(2.0, "square")
    with pytest.raises(ValueError, match="preprocessing"):
        preprocess("cubic", [1.0])


def test_simulate_with_a_spectral_start():
    ds = prcy.simulate(init="spectral", preprocessing="optimal", alpha=3, n=300, t_max=0.5, seeds=3, lr=0.05,
                       algorithm=["gd", "psgd"])
    m0 = np.abs(ds.magnetization.isel(time=0))
    assert float(m0.min()) > 0.6 and np.allclose(ds.norm.isel(time=0), 1.0)
    np.testing.assert_array_equal(m0.sel(algorithm="gd"), m0.sel(algorithm="psgd"))  # same seeds, same start
    assert ds.spectral_eigenvalue.dims == ("algorithm", "seed")
    with pytest.raises(ValueError, match="init: 'spectral' does not apply to problem door"):
        prcy.simulate(init="spectral", problem="door", n=50, t_max=0.1, seeds=1)
    with pytest.raises(ValueError, match="preprocessing: 'truncated' does not apply to init warm"):
        prcy.simulate(preprocessing="truncated", n=50, t_max=0.1, seeds=1)


def test_the_docs_examples_run():
    """docs/theory.md section 5 prints what it says."""
    assert run_section("theory.md", "## 5. The spectral start") == (0, 2)
