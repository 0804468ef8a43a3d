"""Theory: AMP state evolution for noiseless real phase retrieval (Gaussian prior), and the 1RSB threshold
states with their BBP instability (Sarao Mannelli et al. 2020).  Checks against closed forms, adaptive
quadrature of the original definitions, Monte Carlo, published values and internal consistency."""
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


def test_fixed_point_curve_is_vectorized():
    alphas = np.array([[0.3, 0.8], [1.05, 1.5]])
    out = T.se_fixed_point(alphas)
    assert out.shape == (2, 2) and out[0, 0] == 0.0 and out[1, 1] == 1.0
    assert out[0, 1] == T.se_fixed_point(0.8) and 0 < out[0, 1] < out[1, 0] < 1
    with pytest.raises(ValueError, match="^alpha: "):
        T.se_fixed_point(np.array([0.8, -1.0]))


def test_state_evolution_domain_errors():
    for bad in (0.0, -1.0, np.nan):
        with pytest.raises(ValueError, match=r"^alpha: .*allowed: a finite number > 0"):
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


# ---------------------------------------------------------------------------------------------------------
# 1RSB threshold states and the BBP threshold (Sarao Mannelli et al. 2020)
# ---------------------------------------------------------------------------------------------------------
from prcy.analysis import threshold_states as TS  # noqa: E402


@pytest.fixture(scope="module")
def state8():
    return TS.threshold_state(8.0)


def test_proximal_field_is_the_global_minimizer():
    rng = np.random.default_rng(5)
    t = np.linspace(-6, 6, 240_001)
    for chi in (0.05, 0.3, 2.0):
        for u, y in zip(rng.normal(0, 1.5, 20), rng.normal(0, 1.5, 20)):
            cost = (u - t) ** 2 / chi + (t * t - y * y) ** 2
            assert TS.proximal_field(u, y, chi) == pytest.approx(t[np.argmin(cost)], abs=1e-4)
            env = TS.moreau_envelope(u, y, chi)
            assert env <= cost.min() + 1e-12 and env == pytest.approx(cost.min(), rel=1e-6, abs=1e-9)
    # the jump at u = 0 when y^2 > 1/(2 chi)
    assert TS.proximal_field(1e-12, 1.0, 1.0) == pytest.approx(np.sqrt(0.5))
    assert TS.proximal_field(-1e-12, 1.0, 1.0) == pytest.approx(-np.sqrt(0.5))


def test_label_law_against_monte_carlo(state8):
    """Sample the derived eq 17 directly: y ~ N(0,1); given y, u ~ N(0,1) tilted by exp(-z V(u,y)/2) (V >= 0:
    rejection, redrawing u for the same y until accepted); yhat = proximal_field(u, y).  Compare moments
    with the quadrature law (5 standard errors)."""
    rng = np.random.default_rng(6)
    chi, z = state8.chi, state8.z
    n = 2_000_000
    y = rng.standard_normal(n)
    u = np.empty(n)
    todo = np.arange(n)
    while todo.size:
        prop = rng.standard_normal(todo.size)
        ok = rng.random(todo.size) < np.exp(-0.5 * z * TS.moreau_envelope(prop, y[todo], chi))
        u[todo[ok]] = prop[ok]
        todo = todo[~ok]
    yh = TS.proximal_field(u, y, chi)
    l0, l1, l2 = TS.loss_derivatives(yh, y)
    law = state8.law
    checks = [(yh**2, law.moment(2)), (yh**4, law.moment(4)), (yh**2 * y**2, law.moment(2, 2)),
              (l0, law.expect(law.l)), (l1 * yh, law.expect(law.dl * law.yhat)), (l1**2, law.expect(law.dl**2))]
    for samples, value in checks:
        se = samples.std() / np.sqrt(samples.size)
        assert abs(samples.mean() - value) < 5 * se
    # the minimizer condition 2 + chi l'' >= 0 holds on the whole support (lambda_bar = alpha/chi is the edge)
    assert np.all(2 + chi * l2 >= 0) and np.all(law.jac >= 0)


def test_threshold_equations_are_solved_and_quadrature_converges(state8):
    assert state8.residual < 1e-9
    coarse = TS.threshold_state(8.0, n_nodes=28)
    fine = TS.threshold_state(8.0, n_nodes=64)
    for name in ("chi", "z", "energy", "mu", "psi", "phi", "free_energy"):
        assert getattr(coarse, name) == pytest.approx(getattr(fine, name), rel=1e-5, abs=1e-8), name
        assert getattr(state8, name) == pytest.approx(getattr(fine, name), rel=1e-8, abs=1e-10), name


def test_free_energy_is_stationary_in_chi_and_its_z_derivative_is_the_energy(state8):
    """Eq 12 is df/dchi = 0; d(z f)/dz = alpha E[l]/2 = L/N (the energy of the label law): both by finite
    differences of eq 11, which checks eqs 12 and 17 against the free energy they come from."""
    a, chi, z = state8.alpha, state8.chi, state8.z
    h = 1e-5
    dchi = (TS.threshold_free_energy(chi * (1 + h), z, a) - TS.threshold_free_energy(chi * (1 - h), z, a)) / (2 * h)
    assert abs(dchi) < 1e-7
    zf = lambda zz: zz * TS.threshold_free_energy(chi, zz, a)  # noqa: E731
    assert (zf(z * (1 + h)) - zf(z * (1 - h))) / (2 * h * z) == pytest.approx(state8.energy_per_dim, rel=1e-7)
    assert state8.complexity == pytest.approx(z * (state8.energy_per_dim - state8.free_energy))


def test_bbp_functions(state8):
    """Eq 6 holds at lambda_bar = alpha/chi (it is eq 13 there); Psi is minimal at lambda_bar on its domain;
    the BBP residual is -Phi(lambda_bar) - mu."""
    law = state8.law
    lam, res6 = TS.bbp_lambda_bar(law)
    assert lam == pytest.approx(state8.alpha / state8.chi) and abs(res6) < 1e-8
    assert TS.bbp_psi(lam, law) == pytest.approx(state8.psi, rel=1e-6)
    assert TS.bbp_phi(lam, law) == pytest.approx(state8.phi, rel=1e-6)
    psis = [TS.bbp_psi(lam * (1 + d), law) for d in (1e-3, 1e-2, 1e-1)]
    assert psis[0] < psis[1] < psis[2] and state8.psi < psis[0]
    assert state8.bbp_residual == pytest.approx(-state8.phi - state8.mu)
    with pytest.raises(ValueError, match="^lam: "):
        TS.bbp_psi(0.5 * lam, law)


def test_threshold_energy_increases_with_alpha():
    """Sarao Mannelli et al. 2020, fig 4 left: the threshold energy grows with alpha (and vanishes as alpha -> 1+)."""
    alphas = np.array([1.2, 2.0, 4.0, 8.0, 14.0, 30.0])
    e = TS.threshold_energy(alphas)
    assert np.all(np.diff(e) > 0) and e[0] < 1e-3
    assert TS.threshold_energy(4.0) == pytest.approx(e[2])


def test_alpha_bbp_published_value_speed_and_sign():
    TS._alpha_bbp.cache_clear()
    TS._solutions.clear()
    start = time.perf_counter()
    a = TS.alpha_bbp()
    assert time.perf_counter() - start < 20.0
    assert a == pytest.approx(13.8, abs=0.1)                   # 003: alpha_BBP^1RSB ~ 13.8
    assert TS.bbp_residual(a - 0.5) > 0 > TS.bbp_residual(a + 0.5)
    assert TS.alpha_bbp(n_nodes=28) == pytest.approx(a, abs=1e-4)


def test_threshold_state_domain_and_convergence_errors():
    for bad in (1.0, 0.5, -2.0, np.nan):
        with pytest.raises(ValueError, match=r"^alpha: .*allowed: alpha > 1"):
            TS.threshold_state(bad)
    with pytest.raises(ValueError, match="^chi: "):
        TS.proximal_field(0.1, 0.2, 0.0)
    with pytest.raises(T.ConvergenceError, match="residual") as info:
        TS._solve_at(3.0, 1e6, 1e8, TS.DEFAULT_NODES)              # a hopeless starting point
    assert info.value.residual > 1e-8
    with pytest.raises(T.ConvergenceError, match="does not change sign"):
        TS.alpha_bbp(bracket=(2.0, 4.0))
