"""Theory lines for the Gaussian mixtures (prcy.analysis.mixtures; docs/theory.md, "Gaussian mixtures
(Mignacco et al. 2020)") against closed forms, brute-force Bayes classifiers and finite-d minimization."""
import os
import sys

import numpy as np
import pytest
from scipy.optimize import minimize, minimize_scalar
from scipy.special import erfc, expit, log_expit

from prcy.analysis import (ConvergenceError, bayes_optimal_two_cluster_error, oracle_three_cluster_error,
                           oracle_three_cluster_onset, ridge_logistic_two_cluster, three_cluster_error,
                           two_cluster_error)
from prcy.analysis.mixtures import logistic_proximal, ridge_logistic_equations, ridge_logistic_fixed_point

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from docs_examples import run_section  # noqa: E402


def _two_clusters(rng, d, alpha, delta):
    """A training set of Mignacco et al. 2020 eq 2 with v* = (1, ..., 1): labels y and inputs x (rows)."""
    n = int(round(alpha * d))
    y = rng.choice([-1.0, 1.0], size=n)
    x = y[:, None] * np.ones(d) / np.sqrt(d) + np.sqrt(delta) * rng.standard_normal((n, d))
    return y, x


def _overlaps(w):
    d = w.size
    return w.sum() / d, w @ w / d


def _mean_and_se(values):
    values = np.asarray(values)
    return values.mean(axis=0), values.std(axis=0, ddof=1) / np.sqrt(len(values))


# --- Bayes-optimal error, two clusters ---------------------------------------------------------------------

def test_bayes_error_closed_form_and_limits():
    alpha, delta = 2.0, 0.5
    expected = 0.5 * erfc(np.sqrt(alpha / (2 * delta * (alpha + delta))))
    assert bayes_optimal_two_cluster_error(alpha, delta) == pytest.approx(expected, rel=1e-14)
    assert bayes_optimal_two_cluster_error(alpha, delta) == pytest.approx(0.1029516, abs=1e-7)
    # alpha -> infinity: the oracle sign(v*.x), error erfc(1/sqrt(2 Delta))/2
    assert bayes_optimal_two_cluster_error(1e12, delta) == pytest.approx(0.5 * erfc(1 / np.sqrt(2 * delta)))
    assert bayes_optimal_two_cluster_error(1e-12, delta) == pytest.approx(0.5, abs=1e-6)
    out = bayes_optimal_two_cluster_error(np.array([[0.5], [2.0]]), np.array([0.1, 0.5, 1.0]))
    assert out.shape == (2, 3) and out[1, 1] == pytest.approx(expected)
    assert np.all(np.diff(bayes_optimal_two_cluster_error(np.linspace(0.1, 5, 20), 0.5)) < 0)
    assert isinstance(bayes_optimal_two_cluster_error(alpha, delta), float)


@pytest.mark.parametrize("alpha,delta,d,seeds", [(2.0, 0.5, 2000, 4), (0.5, 1.0, 1000, 6)])
def test_bayes_estimator_at_finite_d(alpha, delta, d, seeds):
    """w = sum_mu y_mu x_mu / sqrt(d) (direction of the posterior mean of v*) at finite d: its exact test error
    (eq 24 with its m and C) averages to the formula."""
    errors = []
    for seed in range(seeds):
        y, x = _two_clusters(np.random.default_rng(seed), d, alpha, delta)
        m, norm = _overlaps(y @ x / np.sqrt(d))
        errors.append(two_cluster_error(m, norm, delta))
    mean, se = _mean_and_se(errors)
    assert abs(mean - bayes_optimal_two_cluster_error(alpha, delta)) < 4 * se + 1e-4


def test_one_gradient_step_from_zero_lands_on_the_bayes_error():
    """Mignacco et al. 2020 fig 4 left (alpha 2, Delta 0.5, lambda 0, eta 0.2): full-batch GD on the logistic
    loss from w = 0 has the Bayes-optimal error after one step (l'(0) = -1/2 for every sample), and the error
    grows afterwards."""
    alpha, delta, d, eta = 2.0, 0.5, 2000, 0.2
    first, later = [], []
    for seed in range(3):
        y, x = _two_clusters(np.random.default_rng(10 + seed), d, alpha, delta)
        w = np.zeros(d)
        for step in range(30):
            margins = y * (x @ w) / np.sqrt(d)
            w = w + eta * (x.T @ (y * expit(-margins))) / np.sqrt(d)     # minus the gradient of sum log(1+e^-yh)
            if step == 0:
                first.append(two_cluster_error(*_overlaps(w), delta))
        later.append(two_cluster_error(*_overlaps(w), delta))
    mean, se = _mean_and_se(first)
    assert abs(mean - bayes_optimal_two_cluster_error(alpha, delta)) < 4 * se + 1e-4
    assert min(later) > max(first) + 0.003


def test_no_ridge_logistic_beats_the_bayes_error():
    lams = np.array([0.01, 0.1, 1.0, 10.0])
    _, _, errors = ridge_logistic_two_cluster(2.0, 0.5, lams)
    bayes = bayes_optimal_two_cluster_error(2.0, 0.5)
    assert np.all(errors > bayes) and np.all(np.diff(errors) < 0)
    assert ridge_logistic_two_cluster(2.0, 0.5, 1e4)[2] == pytest.approx(bayes, abs=1e-8)


# --- oracle, three clusters ----------------------------------------------------------------------------------

@pytest.mark.parametrize("delta", [0.05, 0.1, 0.5, 2.0])
def test_oracle_onset_equalizes_the_likelihoods(delta):
    onset = oracle_three_cluster_onset(delta)
    assert np.exp(-1 / (2 * delta)) * np.cosh(onset / delta) == pytest.approx(1.0, rel=1e-12)
    assert onset == pytest.approx(delta * np.arccosh(np.exp(1 / (2 * delta))), rel=1e-13)


def test_oracle_onset_small_noise_and_numbers():
    assert oracle_three_cluster_onset(1e-4) == pytest.approx(0.5 + 1e-4 * np.log(2), rel=1e-12)  # no overflow
    np.testing.assert_allclose(oracle_three_cluster_onset([0.05, 0.1]), [0.5346574, 0.5693136], atol=1e-7)
    np.testing.assert_allclose(oracle_three_cluster_error([0.05, 0.1]), [0.0177566, 0.0792077], atol=1e-7)
    np.testing.assert_allclose(oracle_three_cluster_error([0.05, 0.1], 0.7), [0.0458007, 0.0991238], atol=1e-7)


@pytest.mark.parametrize("delta", [0.05, 0.1, 0.5])
def test_oracle_error_is_the_best_door(delta):
    """The optimal threshold minimizes eq 25 at m = C = 1, and the door with the paper's fixed L = 0.7 reaches
    the same error on w = (L/L*) v* (m = s, C = s^2)."""
    best = minimize_scalar(lambda L: three_cluster_error(1.0, 1.0, delta, L), bounds=(0.0, 2.0), method="bounded",
                           options={"xatol": 1e-10})
    assert best.x == pytest.approx(oracle_three_cluster_onset(delta), abs=1e-5)
    assert oracle_three_cluster_error(delta) == pytest.approx(best.fun, abs=1e-12)
    scaled = minimize_scalar(lambda s: three_cluster_error(s, s * s, delta, 0.7), bounds=(0.1, 5.0),
                             method="bounded", options={"xatol": 1e-10})
    assert scaled.x == pytest.approx(0.7 / oracle_three_cluster_onset(delta), abs=1e-4)
    assert scaled.fun == pytest.approx(oracle_three_cluster_error(delta), abs=1e-12)
    assert oracle_three_cluster_error(delta, 0.7) == three_cluster_error(1.0, 1.0, delta, 0.7)
    assert oracle_three_cluster_error(delta, 0.7) >= oracle_three_cluster_error(delta)


@pytest.mark.parametrize("delta", [0.1, 0.5])
def test_oracle_error_against_the_brute_force_bayes_classifier(delta):
    """Fresh inputs in d = 40 dimensions, classified by comparing the full likelihoods p(x | y) of the
    mixture (no sufficient statistic assumed): the error rate is the oracle error."""
    rng = np.random.default_rng(7)
    d, n = 40, 300_000
    vstar = np.ones(d)
    c = rng.choice([0.0, 0.0, -1.0, 1.0], size=n)
    x = c[:, None] * vstar / np.sqrt(d) + np.sqrt(delta) * rng.standard_normal((n, d))
    log_p = {k: -np.sum((x - k * vstar / np.sqrt(d)) ** 2, axis=1) / (2 * delta) for k in (-1.0, 0.0, 1.0)}
    outer = np.logaddexp(log_p[1.0], log_p[-1.0]) - np.log(2.0)        # p(x | y = +1)
    wrong = (np.where(outer > log_p[0.0], 1.0, -1.0) != np.where(c == 0, -1.0, 1.0)).astype(float)
    se = np.sqrt(wrong.mean() * (1 - wrong.mean()) / n)
    assert abs(wrong.mean() - oracle_three_cluster_error(delta)) < 4 * se


# --- ridge-regularized logistic minimizer -------------------------------------------------------------------------

@pytest.mark.parametrize("p,step", [(0.3, 0.5), (-4.0, 2.0), (2.0, 1e-3), (-30.0, 1e4), (10.0, 50.0), (0.0, 0.0)])
def test_logistic_proximal_against_direct_minimization(p, step):
    h = logistic_proximal(p, step)
    if step == 0:
        assert h == p
        return
    objective = lambda t: (t - p) ** 2 / (2 * step) - log_expit(t)     # noqa: E731
    direct = minimize_scalar(objective, bracket=(p, p + step), tol=1e-14)
    assert h == pytest.approx(direct.x, abs=1e-7 * (1 + abs(h)))
    assert h - step * expit(-h) == pytest.approx(p, abs=1e-12 * (1 + abs(h)))


def test_fixed_point_residuals_and_quadrature_convergence():
    m, norm, chi = ridge_logistic_fixed_point(2.0, 0.5, 0.1)
    assert np.max(np.abs(ridge_logistic_equations(m, norm, chi, 2.0, 0.5, 0.1))) < 1e-10
    for args in [(2.0, 0.5, 0.1), (1.0, 0.5, 1e-3), (5.0, 2.0, 1e-2)]:
        coarse = ridge_logistic_fixed_point(*args, n_nodes=100)
        fine = ridge_logistic_fixed_point(*args, n_nodes=400)
        np.testing.assert_allclose(coarse, fine, rtol=1e-6)
    # large lambda: first order in 1/lambda, m = alpha/(2 lambda), C - m^2 = alpha Delta/(4 lambda^2)
    m, norm, chi = ridge_logistic_fixed_point(2.0, 0.5, 1e4)
    assert m == pytest.approx(1e-4, rel=1e-3) and norm - m * m == pytest.approx(2 * 0.5 / 4e8, rel=1e-3)


def _ridge_logistic_minimizer(y, x, lam):
    n, d = x.shape
    a = y[:, None] * x / np.sqrt(d)

    def loss_and_gradient(w):
        margins = a @ w
        return -np.sum(log_expit(margins)) + lam / 2 * w @ w, -a.T @ expit(-margins) + lam * w

    result = minimize(loss_and_gradient, np.zeros(d), jac=True, method="L-BFGS-B",
                      options={"gtol": 1e-9, "ftol": 1e-15, "maxiter": 5000})
    assert np.max(np.abs(loss_and_gradient(result.x)[1])) < 1e-6
    return result.x, a


@pytest.mark.parametrize("lam", [0.1, 1.0])
def test_ridge_logistic_against_finite_d_minimization(lam):
    """Mignacco et al. 2020 fig 1 right (alpha 2, Delta 0.5): the minimizer at d = 1000, five training sets;
    m, C and the test error within 4 standard errors of the fixed point, and chi = Tr(H^-1)/d (one set)."""
    alpha, delta, d = 2.0, 0.5, 1000
    m_th, norm_th, chi_th = ridge_logistic_fixed_point(alpha, delta, lam)
    error_th = ridge_logistic_two_cluster(alpha, delta, lam)[2]
    rows = []
    for seed in range(5):
        y, x = _two_clusters(np.random.default_rng(100 + seed), d, alpha, delta)
        w, a = _ridge_logistic_minimizer(y, x, lam)
        m, norm = _overlaps(w)
        rows.append((m, norm, two_cluster_error(m, norm, delta)))
        if seed == 0:
            curvature = expit(a @ w) * expit(-(a @ w))
            hessian = (a.T * curvature) @ a + lam * np.eye(d)
            assert np.trace(np.linalg.inv(hessian)) / d == pytest.approx(chi_th, rel=0.03)
    mean, se = _mean_and_se(rows)
    for got, err, want in zip(mean, se, (m_th, norm_th, error_th)):
        assert abs(got - want) < 4 * err + 1e-3 * abs(want)


def test_ridge_logistic_broadcasts_and_solves_small_lambda():
    m, norm, error = ridge_logistic_two_cluster(np.array([[1.0], [2.0]]), 0.5, np.array([1e-3, 1.0]))
    assert m.shape == norm.shape == error.shape == (2, 2)
    assert m[1, 1] == pytest.approx(0.5628066, abs=1e-7)
    assert np.all(norm > m * m)
    out = ridge_logistic_two_cluster(2.0, 0.5, 1.0)
    assert isinstance(out, tuple) and all(isinstance(v, float) for v in out)


def test_foreign_arrays_answer_in_their_namespace():
    xp = pytest.importorskip("array_api_strict")
    from array_api_compat import array_namespace
    alphas = np.array([0.5, 2.0])
    got = bayes_optimal_two_cluster_error(xp.asarray(alphas), 0.5)
    assert array_namespace(got) is array_namespace(xp.asarray([1.0]))
    np.testing.assert_allclose(np.from_dlpack(got), bayes_optimal_two_cluster_error(alphas, 0.5), rtol=1e-15)
    np.testing.assert_allclose(np.from_dlpack(oracle_three_cluster_error(xp.asarray([0.05, 0.1]))),
                               oracle_three_cluster_error(np.array([0.05, 0.1])), rtol=1e-15)


@pytest.mark.parametrize("call,name", [
    (lambda: bayes_optimal_two_cluster_error(0.0, 0.5), "alpha"),
    (lambda: bayes_optimal_two_cluster_error(2.0, -1.0), "delta"),
    (lambda: oracle_three_cluster_onset(0.0), "delta"),
    (lambda: oracle_three_cluster_error(np.array([0.1, -0.2])), "delta"),
    (lambda: oracle_three_cluster_error(0.1, -0.7), "onset"),
    (lambda: ridge_logistic_two_cluster(2.0, 0.5, 0.0), "lam"),
    (lambda: ridge_logistic_two_cluster(-2.0, 0.5, 1.0), "alpha"),
    (lambda: ridge_logistic_two_cluster(2.0, np.nan, 1.0), "delta"),
    (lambda: ridge_logistic_fixed_point(2.0, 0.5, np.inf), "lam"),
])
def test_out_of_domain_arguments_are_named(call, name):
    with pytest.raises(ValueError, match=rf"^{name}: .* is not allowed; allowed: .*{name}"):
        call()


def test_unconverged_solve_raises_with_its_residual(monkeypatch):
    import prcy.analysis.mixtures as mixtures
    monkeypatch.setattr(mixtures, "RESIDUAL_TOL", 0.0)
    with pytest.raises(ConvergenceError, match="ridge-logistic fixed point") as info:
        ridge_logistic_fixed_point(2.0, 0.5, 1.0)
    assert info.value.residual >= 0.0


def test_separable_data_small_ridge():
    """alpha 2, Delta 0.5 is linearly separable: as lambda -> 0 the norm grows like log(1/lambda)^2 and chi like
    1/lambda, and the continuation still solves."""
    m, norm, chi = ridge_logistic_fixed_point(2.0, 0.5, 1e-8)
    assert norm > 500 and chi * 1e-8 == pytest.approx(0.29, abs=0.05)


def test_the_docs_examples_run():
    """The ``>>>`` examples of docs/theory.md, "Gaussian mixtures (Mignacco et al. 2020)", give their printed
    output."""
    assert run_section("theory.md", "## 4. Gaussian mixtures") == (0, 6)
