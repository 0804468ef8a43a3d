"""Theory: AMP state evolution for noiseless real phase retrieval (Gaussian prior), and the 1RSB threshold
states with their BBP instability (seed 003).  Checks against closed forms, adaptive quadrature of the
original definitions, Monte Carlo, published values and internal consistency."""
import time

import numpy as np
import pytest
from scipy import integrate

from prcy.analysis import theory as T


# ---------------------------------------------------------------------------------------------------------
# AMP state evolution
# ---------------------------------------------------------------------------------------------------------
def _g_out_squared(xi, u, m):
    """The original integrand: E[g_out^2] with omega = sqrt(m) xi, z = omega + sqrt(1 - m) u, y = |z|."""
    v = 1 - m
    om = np.sqrt(m) * xi
    z = om + np.sqrt(v) * u
    return ((z * np.tanh(z * om / v) - om) / v) ** 2 * np.exp(-(xi * xi + u * u) / 2) / (2 * np.pi)


@pytest.mark.parametrize("b", [0.0, 1e-4, 1.9e-3, 2.1e-3, 0.05, 0.3, 1.0, 5.0])
def test_sech_moment_against_adaptive_quadrature(b):
    # u e^{-u} sech(bu) written without overflow
    ref, _ = integrate.quad(lambda u: 2 * u * np.exp(-(1 + b) * u) / (1 + np.exp(-2 * b * u)), 0, np.inf,
                            epsabs=1e-15, epsrel=1e-13)
    assert T.sech_moment(b) == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("m", [0.05, 0.5, 0.99, 0.999999])
def test_channel_integral_converges_geometrically(m):
    """Gauss-Legendre after the change of variables: 16, 32 and 96 nodes agree to ~1e-13."""
    h16, h32, h96 = (T.se_channel_integral(m, n) for n in (16, 32, 96))
    assert abs(h32 - h96) < 1e-14
    assert abs(h16 - h96) < 1e-9
    assert abs(T.se_channel_integral(m) - h96) < 1e-14


@pytest.mark.parametrize("m", [0.2, 0.9])
def test_channel_integral_against_2d_adaptive(m):
    """H(m) = E[s^2 sech(s t)], s ~ N(0,1), t ~ N(0,m), by adaptive 2-d quadrature of the definition."""
    f = lambda t, s: s * s / np.cosh(s * np.sqrt(m) * t) * np.exp(-(s * s + t * t) / 2) / (2 * np.pi)  # noqa
    ref, _ = integrate.dblquad(f, -12, 12, -12, 12, epsabs=1e-12, epsrel=1e-12)
    assert T.se_channel_integral(m) == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("m", [0.5, 0.99])
def test_hat_overlap_equals_original_definition(m):
    """The closed form of alpha E[g_out^2] against adaptive quadrature of the original integrand; plain
    Gauss-Hermite on that integrand is still 3% off with 160^2 nodes at m = 0.99 (why it is not used)."""
    ref, _ = integrate.dblquad(lambda u, xi: _g_out_squared(xi, u, m), -12, 12, -12, 12,
                               epsabs=1e-10, epsrel=1e-10)
    assert T.se_hat_overlap(m) == pytest.approx(ref, rel=1e-9)
    if m == 0.99:
        x, w = np.polynomial.hermite_e.hermegauss(160)
        w = w / np.sqrt(2 * np.pi)
        xi, u = np.meshgrid(x, x, indexing="ij")
        gh = np.sum(np.outer(w, w) * _g_out_squared(xi, u, m) * 2 * np.pi * np.exp((xi * xi + u * u) / 2))
        assert abs(gh - ref) / ref > 0.01


@pytest.mark.parametrize("m", [0.3, 0.9])
def test_hat_overlap_against_monte_carlo(m):
    rng = np.random.default_rng(4)
    n = 2_000_000
    xi, u = rng.standard_normal((2, n))
    samples = _g_out_squared(xi, u, m) * 2 * np.pi * np.exp((xi * xi + u * u) / 2)
    se = samples.std() / np.sqrt(n)
    assert abs(T.se_hat_overlap(m, alpha=1.0) - samples.mean()) < 5 * se
    assert T.se_hat_overlap(m, alpha=2.5) == pytest.approx(2.5 * T.se_hat_overlap(m))


def test_fixed_point_curve_limits():
    """alpha(m) -> alpha_WR = 1/2 as m -> 0 (slope from F = 2m + O(m^2)), and -> 1 as m -> 1."""
    assert T.alpha_weak_recovery() == pytest.approx(0.5, abs=1e-14)
    assert T.se_alpha_of_overlap(1e-6) == pytest.approx(0.5, abs=1e-5)
    assert T.se_alpha_of_overlap(1 - 1e-10) == pytest.approx(1.0, abs=1e-4)
    a = T.se_alpha_of_overlap(np.linspace(0.01, 0.99, 99))
    i = int(np.argmax(a))
    assert np.all(np.diff(a[: i + 1]) > 0) and np.all(np.diff(a[i:]) < 0)      # one maximum: alpha_AMP


def test_alpha_amp_value_speed_and_quadrature_convergence():
    T._spinodal.cache_clear()
    start = time.perf_counter()
    a = T.alpha_amp()
    assert time.perf_counter() - start < 2.0
    assert a == pytest.approx(1.13, abs=0.005)                      # published (Barbier et al. 2019): 1.13
    assert round(a, 4) == 1.1285
    assert abs(T.alpha_amp(24) - T.alpha_amp(96)) < 1e-12
    m_s = T.se_spinodal_overlap()
    assert 0.8 < m_s < 0.9 and T.se_alpha_of_overlap(m_s) == pytest.approx(a, abs=1e-14)


def test_state_evolution_just_above_and_below_alpha_amp():
    """Iterating the SE map (not the curve) from small overlap: ~1 just above alpha_AMP, the finite fixed
    point of se_fixed_point just below."""
    a = T.alpha_amp()
    above = T.se_iterate(a + 0.01, m0=1e-3, tol=1e-13)
    assert above[-1] > 1 - 1e-10
    below = T.se_iterate(a - 0.01, m0=1e-3, tol=1e-13)
    assert below[-1] < T.se_spinodal_overlap()
    assert below[-1] == pytest.approx(T.se_fixed_point(a - 0.01), abs=1e-9)
    assert T.se_fixed_point(a + 1e-6) == 1.0


@pytest.mark.parametrize("alpha", [0.3, 0.55, 0.8, 1.05])
def test_fixed_point_by_inversion_equals_iteration(alpha):
    m_star = T.se_fixed_point(alpha)
    it = T.se_iterate(alpha, m0=1e-3, tol=1e-14)
    assert it[-1] == pytest.approx(m_star, abs=1e-8)
    if alpha > 0.5:
        assert T.se_update(m_star, alpha) == pytest.approx(m_star, abs=1e-13)
        assert T.se_alpha_of_overlap(m_star) == pytest.approx(alpha, rel=1e-12)
    else:
        assert m_star == 0.0


def test_state_evolution_domain_errors():
    for bad in (0.0, -1.0, np.nan):
        with pytest.raises(ValueError, match=r"^alpha: .*allowed: 0.0 < alpha"):
            T.se_fixed_point(bad)
    with pytest.raises(ValueError, match="^m: "):
        T.se_alpha_of_overlap(1.0)
    with pytest.raises(ValueError, match="^m: "):
        T.se_hat_overlap(-0.1)
    with pytest.raises(ValueError, match="^m0: "):
        T.se_iterate(1.0, m0=1.5)
    with pytest.raises(ValueError, match="^b: "):
        T.sech_moment(-1.0)
    with pytest.raises(T.ConvergenceError, match="residual") as info:
        T.se_iterate(1.12, m0=1e-3, max_iter=5)
    assert info.value.residual > 0
