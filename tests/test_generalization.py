"""Generalization-error formulas (Mignacco et al. 2021 eq B.8 in arcsin form; Mignacco et al. 2020
eqs 24-25) against closed forms and Monte Carlo; domain errors."""
import numpy as np
import pytest

from prcy.analysis import label_mse, three_cluster_error, two_cluster_error


def _b8_arctan(m, q, q0):
    """Eq B.8 as printed (arctan form), for interior points."""
    r = np.sqrt(q * q0 - m * m)
    return q + q0 - 4 / np.pi * (r + m * np.arctan(m / r))


@pytest.mark.parametrize("m,q,q0", [(0.3, 1.0, 1.0), (-0.7, 1.0, 1.0), (0.4, 2.0, 1.0), (0.2, 0.5, 1.3),
                                    (1.0 - 1e-9, 1.0, 1.0)])
def test_arcsin_form_equals_printed_arctan_form(m, q, q0):
    assert label_mse(m, q, q0) == pytest.approx(_b8_arctan(m, q, q0), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("m,q,q0", [(0.0, 1.0, 1.0), (0.6, 1.0, 1.0), (-0.95, 1.0, 1.0), (0.4, 2.0, 1.0),
                                    (1.2, 0.8, 2.0), (np.sqrt(2.0), 2.0, 1.0)])
def test_label_mse_against_monte_carlo(m, q, q0):
    """Including the boundary m^2 = q q0 (last case): the fields are then proportional."""
    rng = np.random.default_rng(1)
    n = 1_000_000
    x = np.sqrt(q0) * rng.standard_normal(n)
    rho = np.clip(m / np.sqrt(q * q0), -1, 1)
    z = np.sqrt(q) * (rho * x / np.sqrt(q0) + np.sqrt(1 - rho**2) * rng.standard_normal(n))
    samples = (np.abs(x) - np.abs(z)) ** 2
    se = samples.std() / np.sqrt(n)
    assert abs(label_mse(m, q, q0) - samples.mean()) < 5 * se + 1e-12


def test_label_mse_boundary_and_broadcasting():
    q, q0 = 2.0, 0.5
    m = np.sqrt(q * q0)
    assert label_mse(m, q, q0) == pytest.approx((np.sqrt(q) - np.sqrt(q0)) ** 2, abs=1e-14)
    assert label_mse(-m, q, q0) == pytest.approx((np.sqrt(q) - np.sqrt(q0)) ** 2, abs=1e-14)
    # continuity as m^2 -> q q0 (the arctan form divides 0 by 0 there)
    assert label_mse(m * (1 - 1e-12), q, q0) == pytest.approx(label_mse(m, q, q0), abs=1e-5)
    # rounding beyond the boundary is accepted and clipped
    assert label_mse(1.0 + 1e-13, 1.0, 1.0) == pytest.approx(0.0, abs=1e-12)
    assert label_mse(0.0, 0.0, 1.0) == pytest.approx(1.0)              # q = 0: the student predicts 0
    out = label_mse(np.array([[0.0], [0.5]]), np.array([1.0, 2.0, 3.0]))
    assert out.shape == (2, 3)
    assert out[1, 2] == pytest.approx(label_mse(0.5, 3.0))
    nan_out = label_mse(np.array([np.nan, 0.5]), 1.0, np.array([1.0, np.nan]))
    assert np.isnan(nan_out).all()
    assert isinstance(label_mse(0.5), float)


@pytest.mark.parametrize("args,name", [((1.5, 1.0, 1.0), "m"), ((0.5, -1.0, 1.0), "q"),
                                       ((0.5, 1.0, -0.1), "q0"), ((np.array([0.1, 0.9]), 0.5, 1.0), "m"),
                                       ((1.0 + 1e-6, 1.0, 1.0), "m")])
def test_label_mse_rejects_out_of_domain(args, name):
    with pytest.raises(ValueError, match=rf"^{name}: .*allowed"):
        label_mse(*args)


def _mixture_samples(rng, d, n, w, delta, centres):
    """Fresh inputs x = c v*/sqrt(d) + sqrt(Delta) g with v* = (1, ..., 1); returns c and w.x/sqrt(d)."""
    vstar = np.ones(d)
    c = rng.choice(centres, size=n)
    x = c[:, None] * vstar / np.sqrt(d) + np.sqrt(delta) * rng.standard_normal((n, d))
    return c, x @ w / np.sqrt(d)


@pytest.mark.parametrize("delta,scale", [(0.5, 1.0), (0.1, 0.3), (1.0, 2.0)])
def test_two_cluster_error_against_monte_carlo(delta, scale):
    rng = np.random.default_rng(2)
    d = 40
    w = scale * (0.6 * np.ones(d) + rng.standard_normal(d))
    m, norm = w @ np.ones(d) / d, w @ w / d
    c, r = _mixture_samples(rng, d, 400_000, w, delta, np.array([-1.0, 1.0]))
    wrong = (np.sign(r) != c).astype(float)
    se = np.sqrt(wrong.mean() * (1 - wrong.mean()) / wrong.size)
    assert abs(two_cluster_error(m, norm, delta) - wrong.mean()) < 5 * se


@pytest.mark.parametrize("delta,onset", [(0.05, 0.7), (0.1, 0.5), (0.5, 1.0)])
def test_three_cluster_error_against_monte_carlo(delta, onset):
    rng = np.random.default_rng(3)
    d = 40
    w = 0.8 * np.ones(d) + 0.5 * rng.standard_normal(d)
    m, norm = w @ np.ones(d) / d, w @ w / d
    c, r = _mixture_samples(rng, d, 400_000, w, delta, np.array([0.0, 0.0, -1.0, 1.0]))
    label = np.where(c == 0, -1.0, 1.0)
    wrong = (np.sign(r**2 - onset**2) != label).astype(float)
    se = np.sqrt(wrong.mean() * (1 - wrong.mean()) / wrong.size)
    assert abs(three_cluster_error(m, norm, delta, onset) - wrong.mean()) < 5 * se


def test_mixture_limits_and_domain():
    assert two_cluster_error(0.0, 1.0, 0.3) == pytest.approx(0.5)
    assert two_cluster_error(1.0, 1.0, 1e-6) == pytest.approx(0.0, abs=1e-12)
    # m = 0: centre misclassified w.p. erfc(L/s), outer w.p. 1 - erfc(L/s); average 1/2
    assert three_cluster_error(0.0, 1.0, 0.2, 0.7) == pytest.approx(0.5)
    assert three_cluster_error(np.array([0.1, 0.5]), 1.0, 0.2, 0.7).shape == (2,)
    with pytest.raises(ValueError, match="^delta: "):
        two_cluster_error(0.5, 1.0, 0.0)
    with pytest.raises(ValueError, match="^norm: "):
        two_cluster_error(0.0, -1.0, 1.0)
    with pytest.raises(ValueError, match="^m: "):
        two_cluster_error(1.5, 1.0, 1.0)
    with pytest.raises(ValueError, match="^onset: "):
        three_cluster_error(0.5, 1.0, 1.0, -0.1)


@pytest.mark.parametrize("m, q", [(0.0, 1.0), (0.5, 1.0), (0.9, 1.0), (0.99, 1.0), (-0.7, 1.0), (0.3, 2.0),
                                  (0.2, 0.3)])
def test_door_error_against_monte_carlo(m, q):
    from prcy.analysis.generalization import door_error
    K = 0.67449
    rng = np.random.default_rng(17)
    x = rng.standard_normal(2_000_000)
    z = m * x + np.sqrt(q - m * m) * rng.standard_normal(x.size)
    mc = np.mean((np.abs(x) > K) != (np.abs(z) > K))
    assert abs(door_error(m, q, K) - mc) < 5 * np.sqrt(0.25 / x.size)


def test_door_error_limits():
    from prcy.analysis.generalization import door_error, test_error
    K = 0.67449
    assert door_error(1.0, 1.0, K) == 0.0 and door_error(-1.0, 1.0, K) == 0.0        # |z| = |x|
    p = 0.5 * __import__("scipy.special", fromlist=["erfc"]).erfc(K / np.sqrt(2)) * 2  # P(|x| > K)
    assert abs(door_error(0.0, 1.0, K) - 2 * p * (1 - p)) < 1e-12                      # independent
    np.testing.assert_allclose(door_error(np.array([0.3, -0.3]), 1.0, K), door_error(0.3, 1.0, K))
    assert test_error("door", 0.5, 1.0, onset=K) == door_error(0.5, 1.0, K)
    with pytest.raises(ValueError, match="onset"):
        test_error("door", 0.5, 1.0)
    with pytest.raises(ValueError, match="m: .*1.5.* is not allowed"):
        door_error(1.5, 1.0, K)
