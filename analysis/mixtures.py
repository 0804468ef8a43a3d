"""Theory lines for the Gaussian-mixture problems of Mignacco, Krzakala, Urbani, Zdeborova 2020 (eqs 1-6):
inputs ``x = c v*/sqrt(d) + sqrt(Delta) z`` with ``z ~ N(0, I_d)`` and ``|v*|^2 = d``, ``n = alpha d`` samples.

- Two clusters (``c = y = +-1``): the Bayes-optimal test error given the training set
  (:func:`bayes_optimal_two_cluster_error`), and the minimizer of the ridge-regularized logistic loss, i.e.
  the ``t -> infinity`` limit of full-batch gradient descent at ``lambda > 0``
  (:func:`ridge_logistic_two_cluster`, from the fixed-point equations :func:`ridge_logistic_equations`).
- Three clusters (``c = 0`` with label -1, ``c = +-1`` with label +1): the error of the oracle that knows
  ``v*`` (:func:`oracle_three_cluster_error`, with its threshold :func:`oracle_three_cluster_onset`).

Errors are evaluated with the paper's eqs 24-25 (:func:`prcy.analysis.two_cluster_error`,
:func:`prcy.analysis.three_cluster_error`).  Derivations and numbers: ``docs/theory.md``, "Gaussian mixtures
(Mignacco et al. 2020)".  Out-of-domain arguments raise ``ValueError`` naming the argument; a fixed point that
is not found raises :class:`prcy.analysis.ConvergenceError`.
"""
from functools import lru_cache

import numpy as np
from scipy.optimize import root
from scipy.special import expit, roots_hermitenorm

from prcy._xp import array_api_boundary
from prcy.analysis.generalization import three_cluster_error, two_cluster_error
from prcy.analysis.theory import ConvergenceError

__all__ = ["bayes_optimal_two_cluster_error", "oracle_three_cluster_onset", "oracle_three_cluster_error",
           "logistic_proximal", "ridge_logistic_equations", "ridge_logistic_fixed_point",
           "ridge_logistic_two_cluster"]

DEFAULT_NODES = 200         # Gauss-Hermite nodes for the Gaussian averages (convergence: tests/test_mixture_theory.py)
RESIDUAL_TOL = 1e-10        # largest accepted (relative) residual of the fixed-point equations


def _positive(name, value, nan_ok=True):
    """``value`` as a float array; ``ValueError`` naming ``name`` unless every entry is ``> 0`` (NaN entries
    pass when ``nan_ok``)."""
    arr = np.asarray(value, dtype=float)
    bad = (arr <= 0) if nan_ok else ~(arr > 0) | ~np.isfinite(arr)
    if np.any(bad):
        allowed = f"{name} > 0" if nan_ok else f"0 < {name} < inf"
        raise ValueError(f"{name}: {float(arr[bad].flat[0])!r} is not allowed; allowed: {allowed}")
    return arr


@array_api_boundary("alpha", "delta")
def bayes_optimal_two_cluster_error(alpha, delta):
    """Bayes-optimal test error of the two-cluster model in the high-dimensional limit::

        erfc( sqrt( alpha / (2 Delta (alpha + Delta)) ) ) / 2

    For any rotation-invariant prior on ``v*`` (the Gaussian ``N(0, I_d)`` of Mignacco, Krzakala, Lu,
    Urbani, Zdeborova, ICML 2020, or the sphere ``|v*|^2 = d``) the Bayes classifier of a fresh ``x`` is
    ``sign(w.x)`` with ``w = sum_mu y_mu x_mu / sqrt(d)``, the direction of the posterior mean of ``v*``;
    this ``w`` has ``m = alpha`` and ``C = alpha (alpha + Delta)``, which eq 24 turns into the line above.
    It is also the error after the first step of gradient descent from ``w = 0`` (any loss with
    ``l'(0) != 0``).
    ``alpha > 0``, ``delta > 0``; broadcasts, NaN propagates.
    """
    alpha = _positive("alpha", alpha)
    return two_cluster_error(alpha, alpha * (alpha + np.asarray(delta, dtype=float)), delta)


@array_api_boundary("delta")
def oracle_three_cluster_onset(delta):
    """Threshold ``L*`` of the Bayes classifier of the three-cluster model given ``v*``: predict +1 when
    ``|u| > L*``, ``u = v*.x/sqrt(d) = c + sqrt(Delta) g``.  ``L*`` solves the likelihood-ratio equality
    ``exp(-1/(2 Delta)) cosh(L*/Delta) = 1``::

        L* = Delta arccosh(exp(1/(2 Delta))) = 1/2 + Delta log(1 + sqrt(1 - exp(-1/Delta)))

    (the second form does not overflow at small ``Delta``).  ``delta > 0``; broadcasts, NaN propagates.
    """
    delta = _positive("delta", delta)
    out = 0.5 + delta * np.log1p(np.sqrt(-np.expm1(-1.0 / delta)))
    return out[()] if out.ndim == 0 else out


@array_api_boundary("delta", "onset")
def oracle_three_cluster_error(delta, onset=None):
    """Test error of the three-cluster oracle that knows ``v*``: the door ``sign(u^2 - L^2)`` on
    ``u = v*.x/sqrt(d)``, i.e. eq 25 at ``m = C = 1``.  With ``onset=None`` the threshold is the Bayes one,
    :func:`oracle_three_cluster_onset`, and the result is the Bayes error given ``v*``: the smallest error of
    any classifier of ``x``, and the minimum of eq 25 over ``(m, C)`` at any fixed ``L > 0`` (the door on
    ``w = (L/L*) v*``).  With ``onset = L`` it is the door at that ``L`` on ``w = v*`` itself.
    ``delta > 0``, ``onset >= 0``; broadcasts, NaN propagates.
    """
    onset = oracle_three_cluster_onset(delta) if onset is None else onset
    return three_cluster_error(1.0, 1.0, delta, onset)


def logistic_proximal(p, step):
    """``argmin_h [ (h - p)^2 / (2 step) + log(1 + exp(-h)) ]``, elementwise (broadcasts).

    The root of ``h - step sigmoid(-h) = p`` lies in ``[p, p + step]``; Newton's method, kept inside the
    bracket that shrinks with every evaluation (bisection when a Newton step would leave it), converges to
    ``1e-13 (1 + |h|)``.
    """
    p, step = np.broadcast_arrays(np.asarray(p, dtype=float), np.asarray(step, dtype=float))
    lo, hi = p.copy(), p + step
    h = p + step * expit(-p)
    for _ in range(200):
        f = h - step * expit(-h) - p
        lo = np.where(f < 0, h, lo)
        hi = np.where(f > 0, h, hi)
        newton = h - f / (1.0 + step * expit(h) * expit(-h))
        inside = (newton > lo) & (newton < hi)
        new = np.where(inside, newton, 0.5 * (lo + hi))
        done = np.abs(new - h) <= 1e-13 * (1.0 + np.abs(h))
        h = new
        if np.all(done):
            break
    return h[()] if h.ndim == 0 else h


@lru_cache(maxsize=8)
def _hermite(n_nodes):
    x, w = roots_hermitenorm(int(n_nodes))
    return x, w / np.sqrt(2.0 * np.pi)


def ridge_logistic_equations(m, norm, chi, alpha, delta, lam, n_nodes=DEFAULT_NODES):
    """Residuals of the three fixed-point equations of the ridge-regularized logistic minimizer on the
    two-cluster model (``docs/theory.md``, "Gaussian mixtures (Mignacco et al. 2020)")::

        m         = -alpha chi E[l'(h)]
        1 / chi   = lambda + alpha Delta E[ l''(h) / (1 + chi Delta l''(h)) ]
        C - m^2   = alpha Delta chi^2 E[l'(h)^2]

    with ``h = logistic_proximal(m + sqrt(Delta C) xi, chi Delta)``, ``xi ~ N(0, 1)`` (``n_nodes``-point
    Gauss-Hermite), ``l(h) = log(1 + e^-h)``.  Returned relative: ``1 + alpha chi E[l']/m``,
    ``1 - chi (lambda + ...)``, ``1 - alpha Delta chi^2 E[l'^2]/(C - m^2)`` (``m > 0``, ``C > m^2``, ``chi > 0``).
    """
    x, w = _hermite(n_nodes)
    h = logistic_proximal(m + np.sqrt(delta * norm) * x, chi * delta)
    d1 = -expit(-h)
    d2 = expit(h) * expit(-h)
    return np.array([1.0 + alpha * chi * (w @ d1) / m,
                     1.0 - chi * (lam + alpha * delta * (w @ (d2 / (1.0 + chi * delta * d2)))),
                     1.0 - alpha * delta * chi**2 * (w @ d1**2) / (norm - m * m)])


def _guess(alpha, delta, lam):
    """The fixed point to first order in ``1/lambda`` (quadratic loss around ``h = 0``), as
    ``(m, log(C - m^2), log chi)``."""
    chi = 1.0 / (lam + alpha * delta / 4.0)
    return np.array([alpha * chi / 2.0, np.log(alpha * delta * chi**2 / 4.0), np.log(chi)])


def _solve(start, alpha, delta, lam, n_nodes):
    def residual(v):
        m, log_excess, log_chi = v
        return ridge_logistic_equations(m, m * m + np.exp(log_excess), np.exp(log_chi), alpha, delta, lam, n_nodes)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        sol = root(residual, start, method="hybr", options={"xtol": 1e-13})
        res = np.max(np.abs(residual(sol.x)))
    return sol.x, res


def ridge_logistic_fixed_point(alpha, delta, lam, n_nodes=DEFAULT_NODES):
    """``(m, C, chi)`` of the minimizer of ``sum_mu log(1 + exp(-y_mu w.x_mu/sqrt(d))) + lam |w|^2 / 2`` on
    the two-cluster model as ``d -> infinity`` (scalars): ``m = w.v*/d``, ``C = |w|^2/d`` and
    ``chi = (1/d) Tr (Hessian)^{-1}`` at the minimizer, solving :func:`ridge_logistic_equations`.

    Powell's hybrid method on ``(m, log(C - m^2), log chi)`` from the large-``lambda`` solution; by
    continuation in ``log lambda`` from ``lambda_0 = max(lam, 2 (alpha + Delta))`` down to ``lam``, halving the
    step when a solve fails.  Raises :class:`ConvergenceError` (with the residual) when the relative residual
    stays above ``RESIDUAL_TOL``.  For linearly separable data ``C`` grows like ``log(1/lam)^2`` and ``chi``
    like ``1/lam`` as ``lam -> 0`` (solved down to ``lam = 1e-20`` at ``alpha = 2, Delta = 0.5``).
    ``alpha, delta, lam > 0`` (finite).
    """
    alpha, delta, lam = (float(_positive(name, v, nan_ok=False))
                         for name, v in (("alpha", alpha), ("delta", delta), ("lam", lam)))
    current = max(lam, 2.0 * (alpha + delta))
    x, res = _solve(_guess(alpha, delta, current), alpha, delta, current, n_nodes)
    if res > RESIDUAL_TOL:
        raise ConvergenceError(f"ridge-logistic fixed point at lambda={current} not found", float(res))
    log_step = np.log(current / lam)
    while current > lam:
        target = max(lam, current * np.exp(-log_step))
        trial, res = _solve(x, alpha, delta, target, n_nodes)
        if res <= RESIDUAL_TOL:
            x, current = trial, target
        elif log_step < 1e-3:
            raise ConvergenceError(f"ridge-logistic fixed point at alpha={alpha}, delta={delta}, lambda={target} "
                                   f"not found", float(res))
        else:
            log_step /= 2.0
    m, log_excess, log_chi = x
    return float(m), float(m * m + np.exp(log_excess)), float(np.exp(log_chi))


@array_api_boundary("alpha", "delta", "lam")
def ridge_logistic_two_cluster(alpha, delta, lam, n_nodes=DEFAULT_NODES):
    """``(m, C, test error)`` of the ridge-regularized logistic minimizer on the two-cluster model as
    ``d -> infinity``: :func:`ridge_logistic_fixed_point`, the error by eq 24.  This is where full-batch
    gradient descent (and gradient flow) with ridge ``lam > 0`` ends as ``t -> infinity`` (the loss is
    strongly convex).  ``alpha, delta, lam > 0``; broadcasts (one solve per element).
    """
    alpha, delta, lam = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (alpha, delta, lam)))
    m, norm = np.empty(alpha.shape), np.empty(alpha.shape)
    for i in np.ndindex(alpha.shape):
        m[i], norm[i], _ = ridge_logistic_fixed_point(alpha[i], delta[i], lam[i], n_nodes)
    error = np.asarray(two_cluster_error(m, norm, delta))
    if alpha.ndim == 0:
        return float(m), float(norm), float(error)
    return m, norm, error
