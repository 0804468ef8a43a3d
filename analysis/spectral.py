"""Spectral starts for real phase retrieval ``y = |h0|``: the preprocessing functions ``T`` and the
high-dimensional limit of the overlap of the leading eigenvector of

    D = (1/M) sum_mu T(y_mu) x_mu x_mu^T,        x_mu ~ N(0, I_N),  M = alpha N,

with the teacher (the characterization of Lu & Li 2017 and Mondelli & Montanari 2018, restated and
derived in docs/theory.md, section 5). With ``s ~ N(0, 1)``, ``y = |s|``, ``T`` bounded above with
``tau = sup T > 0``, and for ``lambda > tau``::

    phi(lambda)   = lambda E[ T s^2 / (lambda - T) ]
    psi(lambda)   = lambda ( 1/alpha + E[ T / (lambda - T) ] )

``lambda_bar`` minimizes ``psi`` on ``(tau, inf)``; ``lambda*`` solves ``psi(max(lambda, lambda_bar)) =
phi(lambda)``. If ``psi'(lambda*) > 0`` the squared overlap tends to ``psi'/(psi' - phi')`` at
``lambda*`` and the top eigenvalue to ``psi(lambda*)``; otherwise the overlap tends to 0 (the top
eigenvector is in the bulk). Expectations: Gauss-Legendre on ``s in [0, S_MAX]`` with breakpoints at
the kinks of ``T``.

Preprocessings (``PREPROCESSINGS``):

- ``"square"``: ``T = y^2`` (the classical spectral start). Unbounded: its top eigenvalue grows like the
  largest ``y^2`` (``2 log M``) and the eigenvector localizes on that sample, so the overlap tends to 0
  at every fixed ``alpha`` (slowly); ``spectral_overlap`` refuses it.
- ``"truncated"``: ``T = y^2`` for ``|y| <= 3``, else 0 (the trimming of Chen & Candès 2017 at
  ``E y^2 = 1``).
- ``"optimal"``: ``T = max(1 - 1/y^2, -1000)``: ``1 - 1/y^2`` is the preprocessing of Luo, Alghamdi &
  Lu 2019 that maximizes the overlap and reaches weak recovery at ``alpha = 1/2`` (Mondelli & Montanari
  2018); the floor (``|y| < 0.032``) bounds the spectrum's lower edge, so Lanczos converges in a few
  hundred products, and moves the squared overlap by less than 2e-5 at ``alpha <= 8`` (a floor at -10
  would cost 0.02 at ``alpha = 4``).
"""
import numpy as np
from scipy import optimize
from scipy.special import roots_legendre

from prcy.options import PREPROCESSINGS
TRUNCATION = 3.0          # "truncated": T = y^2 for |y| <= TRUNCATION
OPTIMAL_FLOOR = -1000.0   # "optimal": T = max(1 - 1/y^2, OPTIMAL_FLOOR)
S_MAX = 14.0              # quadrature range of s (the Gaussian tail beyond is < 1e-43)
NODES = 200               # Gauss-Legendre nodes per piece


def preprocess(name, y):
    """``T(y)`` of the preprocessing ``name`` (``PREPROCESSINGS``), elementwise."""
    y = np.asarray(y, dtype=float)
    if name == "square":
        return y * y
    if name == "truncated":
        return np.where(np.abs(y) <= TRUNCATION, y * y, 0.0)
    if name == "optimal":
        with np.errstate(divide="ignore"):
            return np.maximum(1.0 - 1.0 / (y * y), OPTIMAL_FLOOR)
    raise ValueError(f"preprocessing: {name!r} is not allowed; allowed: {', '.join(PREPROCESSINGS)}")


def _quadrature(name):
    """Nodes ``s >= 0`` and weights of ``E[f(s)]``, ``s ~ N(0, 1)`` (``f`` even), split at ``T``'s kinks."""
    cuts = {"truncated": [TRUNCATION], "optimal": [1.0 / np.sqrt(1.0 - OPTIMAL_FLOOR)]}.get(name, [])
    edges = [0.0, *cuts, S_MAX]
    x, w = roots_legendre(NODES)
    nodes, weights = [], []
    for a, b in zip(edges, edges[1:]):
        nodes.append((b - a) / 2 * x + (a + b) / 2)
        weights.append((b - a) / 2 * w)
    s, w = np.concatenate(nodes), np.concatenate(weights)
    return s, 2.0 * w * np.exp(-s * s / 2) / np.sqrt(2 * np.pi)


def _limit(alpha, name):
    """``(squared overlap, top eigenvalue)`` in the high-dimensional limit (module docstring)."""
    if name == "square":
        raise ValueError("preprocessing: 'square' (T = y^2) is unbounded: its overlap tends to 0 at every alpha; "
                         "allowed: truncated, optimal")
    if not (isinstance(alpha, (int, float, np.floating, np.integer)) and 0 < alpha < np.inf):
        raise ValueError(f"alpha: {alpha!r} is not allowed; allowed: a finite number > 0")
    s, w = _quadrature(name)
    T = preprocess(name, s)
    tau = float(T.max())

    def E(f):
        return float(np.dot(w, f))

    def psi(lam):
        return lam * (1.0 / alpha + E(T / (lam - T)))

    def dpsi(lam):
        return 1.0 / alpha + E(T / (lam - T)) - lam * E(T / (lam - T) ** 2)

    def phi(lam):
        return lam * E(T * s * s / (lam - T))

    def dphi(lam):
        return E(T * s * s / (lam - T)) - lam * E(T * s * s / (lam - T) ** 2)

    low = tau * (1 + 1e-12)
    high = 2.0 * tau + 10.0
    while dpsi(high) < 0:
        high *= 2.0
    lam_bar = optimize.brentq(dpsi, low, high, xtol=1e-14) if dpsi(low) < 0 else low

    def gap(lam):
        return psi(max(lam, lam_bar)) - phi(lam)
    while gap(high) < 0:
        high *= 2.0
    if gap(low) >= 0:                      # no crossing above tau: no outlier
        return 0.0, psi(lam_bar)
    lam_star = optimize.brentq(gap, low, high, xtol=1e-14)
    slope = dpsi(lam_star)
    if slope <= 0:
        return 0.0, psi(lam_bar)
    return slope / (slope - dphi(lam_star)), psi(lam_star)


def spectral_overlap(alpha, preprocessing="optimal"):
    """The limit of ``|w.w0| / (|w| |w0|)`` for the leading eigenvector ``w`` of ``D`` at ``alpha``
    (module docstring; 0 below the weak-recovery threshold)."""
    return float(np.sqrt(_limit(alpha, preprocessing)[0]))


def spectral_top_eigenvalue(alpha, preprocessing="optimal"):
    """The limit of the largest eigenvalue of ``D`` at ``alpha``."""
    return float(_limit(alpha, preprocessing)[1])


def spectral_threshold(preprocessing="optimal", low=0.05, high=20.0, tol=1e-4):
    """The weak-recovery threshold: the smallest ``alpha`` with a positive limiting overlap (bisection
    on ``[low, high]`` to ``tol``)."""
    if spectral_overlap(high, preprocessing) == 0.0 or spectral_overlap(low, preprocessing) > 0.0:
        raise ValueError(f"spectral_threshold: no threshold of {preprocessing!r} in [{low}, {high}]")
    while high - low > tol:
        mid = 0.5 * (low + high)
        low, high = (low, mid) if spectral_overlap(mid, preprocessing) > 0.0 else (mid, high)
    return 0.5 * (low + high)
