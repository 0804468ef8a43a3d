"""Generalization-error formulas against Monte Carlo, and the Wilson interval against its definition."""
import numpy as np
import pytest

from prcy.analysis import label_mse, linear_mse, three_cluster_error, two_cluster_error, wilson_interval
from prcy.analysis import test_error as generalization_error


@pytest.mark.parametrize("m,q,q0", [(0.0, 1.0, 1.0), (0.3, 1.0, 1.0), (0.9, 1.0, 1.0), (-0.5, 1.0, 1.0),
                                    (0.4, 2.0, 1.0), (0.2, 0.5, 1.3)])
def test_label_mse_matches_monte_carlo(m, q, q0):
    """Eq B.8 against E(|x| - |z|)^2 sampled from the joint Gaussian it describes."""
    rng = np.random.default_rng(0)
    cov = np.array([[q0, m], [m, q]])
    x, z = rng.multivariate_normal([0, 0], cov, size=2_000_000).T
    samples = (np.abs(x) - np.abs(z)) ** 2
    se = samples.std() / np.sqrt(samples.size)
    assert abs(label_mse(m, q, q0) - samples.mean()) < 5 * se


def test_label_mse_limits():
    assert label_mse(1.0) == pytest.approx(0.0, abs=1e-15)
    assert label_mse(-1.0) == pytest.approx(0.0, abs=1e-15)        # the Z2 symmetry of |.|
    assert label_mse(0.0) == pytest.approx(2 - 4 / np.pi)
    m = np.linspace(0, 1, 50)
    assert np.all(np.diff(label_mse(m)) < 0)                       # decreasing in m on the sphere
    assert np.isnan(label_mse(np.nan))


def test_linear_mse_and_dispatch():
    assert linear_mse(0.5, 1.0) == pytest.approx(1.0)
    assert generalization_error("linear-regression", 0.5) == pytest.approx(1.0)
    assert generalization_error("phase-retrieval", 0.5) == pytest.approx(label_mse(0.5))
    with pytest.raises(ValueError, match="onset"):
        generalization_error("door", 0.5)
    with pytest.raises(ValueError, match="delta"):
        generalization_error("mixture-2", 0.5)
    assert generalization_error("mixture-2", 0.5, 1.0, delta=0.5) == pytest.approx(two_cluster_error(0.5, 1.0, 0.5))
    assert generalization_error("mixture-3", 0.5, 1.0, delta=0.5, onset=0.7) == pytest.approx(
        three_cluster_error(0.5, 1.0, 0.5, 0.7))
    with pytest.raises(ValueError, match="problem"):
        generalization_error("mixture-4", 0.5)


def test_wilson_interval():
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and 0.25 < hi < 0.35                          # 0.2775 for z = 1.96
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(1 - hi) and lo < 0.5 < hi
    # the bounds solve |p - p_hat| = z sqrt(p (1 - p) / n)
    k, n, z = 7, 40, 1.959963984540054
    for p in wilson_interval(k, n):
        assert abs(p - k / n) == pytest.approx(z * np.sqrt(p * (1 - p) / n))


def test_docstring_examples_run():
    import doctest
    import importlib

    module = importlib.import_module("prcy.simulate")     # the module; prcy.simulate is the function
    result = doctest.testmod(module, verbose=False)
    assert result.attempted >= 1 and result.failed == 0
