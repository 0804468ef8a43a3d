"""The exact linear-ridge dynamics (Marchenko-Pastur closed form and its Euler twin) against the
spectrum's known moments, a finite-N eigendecomposition, and prcy's simulations."""
import numpy as np
import pytest

import prcy
from prcy.analysis.linear_ridge import linear_ridge_dynamics, marchenko_pastur


@pytest.mark.parametrize("alpha", [0.5, 1.5, 3.0])
def test_marchenko_pastur_moments(alpha):
    x, w = marchenko_pastur(alpha)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    assert w @ x == pytest.approx(alpha, rel=1e-12)                      # E tr(A)/N = alpha
    assert w @ x ** 2 == pytest.approx(alpha ** 2 + alpha, rel=1e-12)    # second moment of MP
    assert w @ x ** 3 == pytest.approx(alpha ** 3 + 3 * alpha ** 2 + alpha, rel=1e-10)


def test_closed_form_equals_a_finite_n_eigendecomposition():
    """At N = 2000 the same formulas evaluated on the empirical spectrum of one X agree with the
    Marchenko-Pastur average to the 1/sqrt(N) fluctuations."""
    rng = np.random.default_rng(0)
    n, alpha, lam, m0 = 2000, 3.0, 0.5, 0.2
    X = rng.standard_normal((int(alpha * n), n))
    x = np.linalg.eigvalsh(X.T @ X / n)
    t = np.array([0.0, 0.5, 2.0, 10.0])
    fixed = x / (x + lam)
    g = fixed + np.exp(-np.outer(t, x + lam)) * (m0 - fixed)
    m_emp = g.mean(axis=1)
    m, q, loss = linear_ridge_dynamics(t, alpha, m0, lam)
    np.testing.assert_allclose(m, m_emp, atol=2e-3)


def test_euler_twin_converges_to_the_flow():
    t = np.array([0.0, 1.0, 5.0, 10.0])
    flow = linear_ridge_dynamics(t, 3.0, 0.2, 0.5)[0]
    coarse = linear_ridge_dynamics(t, 3.0, 0.2, 0.5, lr=0.02)[0]
    fine = linear_ridge_dynamics(t, 3.0, 0.2, 0.5, lr=0.001)[0]
    assert np.max(np.abs(fine - flow)) < np.max(np.abs(coarse - flow)) / 10
    assert np.max(np.abs(fine - flow)) < 1e-3
    with pytest.raises(ValueError, match="unstable"):
        linear_ridge_dynamics(t, 3.0, 0.2, 0.5, lr=0.5)
    with pytest.raises(ValueError, match="alpha"):
        linear_ridge_dynamics(t, -1.0, 0.2, 0.5)


def test_simulations_follow_the_exact_dynamics():
    """prcy's GD (linear loss, ridge 0.5, alpha = 3, m0 = 0.2, N = 1000, 8 seeds) against the Euler twin
    at the same lr: m, q and the training loss within 4 standard errors (plus O(1/N))."""
    times = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0)
    ds = prcy.simulate(problem="linear-regression", algorithm="gd", constraint="ridge", ridge=0.5, alpha=3,
                       n=1000, m0=0.2, lr=0.01, t_max=10, seeds=8, times=times)
    m, q, loss = linear_ridge_dynamics(np.array(times), 3.0, 0.2, 0.5, lr=0.01)
    for name, theory in (("magnetization", m), ("norm", q), ("train_loss", loss)):
        sims = ds[name].values
        se = sims.std(axis=0, ddof=1) / np.sqrt(sims.shape[0])
        assert np.all(np.abs(sims.mean(axis=0) - theory) < 4 * se + 2e-3), (name, sims.mean(axis=0), theory)
