"""Bayes-optimal AMP state evolution for real noiseless phase retrieval ``y = |h0|`` with a standard
Gaussian prior (the setting of Barbier, Krzakala, Macris, Miolane, Zdeborova, PNAS 2019).

State evolution on the overlap ``m = w_AMP.w0/N`` in ``[0, 1]`` (``rho = 1``)::

    mhat = alpha F(m),                      F(m) = E[ g_out^2 ]       (output channel)
    m'   = mhat / (1 + mhat)                                          (Gaussian prior)

with ``g_out(omega, y, V) = (y tanh(y omega / V) - omega) / V`` (:func:`output_denoiser`, the output function of
the finite-``N`` GAMP iteration of ``prcy.amp``), ``omega ~ N(0, m)``, ``V = 1 - m`` and
``y = |omega + sqrt(V) u|``.  Integrating ``y`` analytically and rescaling both fields by ``sqrt(V)``
(``docs/theory.md``) gives the smooth closed form::

    F(m) = [ 1 - sqrt(1 - m) H(m) ] / (1 - m),
    H(m) = E_{s ~ N(0,1), t ~ N(0,m)}[ s^2 sech(s t) ] = (2/pi) int_0^{pi/2} K(sqrt(m) sin phi) dphi,
    K(b) = int_0^inf u e^{-u} sech(b u) du = [psi1(a/2) - psi1((a+1)/2)] / (8 b^2),  a = (1 + b)/(2 b)

(``psi1`` the trigamma function).  The last integral has a smooth (analytic) integrand on a finite interval,
so Gauss-Legendre converges geometrically for every ``m`` up to 1: the ``sqrt(1 - m)`` scale of the
original integrand near the origin has been removed by the change of variables.

A fixed point at ``alpha`` solves ``alpha F(m) = m / (1 - m)``, i.e. ``alpha = alpha_of_m(m)`` with::

    alpha_of_m(m) = m / (1 - sqrt(1 - m) H(m))

rising from ``1/2`` at ``m -> 0`` (weak recovery), to a maximum ``alpha_AMP`` at ``m_s``, then falling to
``1`` at ``m -> 1``.  Iterating from small ``m`` increases ``m`` while ``alpha > alpha_of_m(m)``, so the
fixed point reached is the first crossing, and ``m -> 1`` once ``alpha > alpha_AMP``.

Errors: out-of-domain arguments raise ``ValueError`` naming the argument, its value and the allowed range;
a solve that does not converge raises :class:`ConvergenceError` carrying its residual.
"""
from functools import lru_cache

import numpy as np

from prcy._xp import array_api_boundary
from prcy.options import check_number
from scipy.optimize import brentq, minimize_scalar
from scipy.special import polygamma

__all__ = ["ConvergenceError", "output_denoiser", "prior_denoiser", "sech_moment", "se_channel_integral", "se_hat_overlap", "se_update",
           "se_iterate", "se_alpha_of_overlap", "se_fixed_point", "se_spinodal_overlap", "alpha_amp",
           "alpha_weak_recovery"]

DEFAULT_NODES = 48          # Gauss-Legendre nodes for H(m); converged to ~1e-15 (tests/test_theory.py)
_SMALL_B = 2e-3             # below: Taylor series of K(b), whose trigamma form loses digits by cancellation


class ConvergenceError(RuntimeError):
    """A numerical solve that did not converge; ``residual`` holds the last residual."""

    def __init__(self, message, residual):
        super().__init__(f"{message} (residual {residual!r})")
        self.residual = residual


def output_denoiser(omega, y, V):
    """The Bayes-optimal GAMP output function of the noiseless channel ``y = |z|`` and its derivative:
    ``(g_out, dg_out/domega)`` for cavity means ``omega`` (array), labels ``y >= 0`` (array) and the cavity
    variance ``V > 0`` (scalar or array).

    Given the Gaussian cavity ``N(z; omega, V)``, the posterior of ``z`` is a two-point mixture at
    ``z = +-y`` with weights ``N(+-y; omega, V) ∝ e^{+-y omega/V}``, i.e. ``P(z = y) = (1 + tanh(y omega/V))/2``:
    mean ``y tanh(y omega/V)``, variance ``y^2 sech^2(y omega/V)``. Hence::

        g_out  = (E[z] - omega) / V   = (y tanh(y omega/V) - omega) / V
        dg_out = (Var[z] - V) / V^2   = (y^2 sech^2(y omega/V) / V - 1) / V

    (``g_out = d log Z_out / d omega`` with ``Z_out = N(y; omega, V) + N(-y; omega, V)``; docs/theory.md, section 2).
    ``sech x`` is evaluated as ``2 e^{-|x|} / (1 + e^{-2|x|})``: no overflow, and none of the cancellation of
    ``1 - tanh^2 x`` at large ``|x|`` (where the iteration converges and ``V -> 0``).
    """
    omega = np.asarray(omega, dtype=float)
    y = np.asarray(y, dtype=float)
    V = np.asarray(V, dtype=float)
    if np.any(~(V > 0)):
        raise ValueError(f"V: {float(V[~(V > 0)].flat[0])!r} is not allowed; allowed: V > 0")
    x = y * omega / V
    e = np.exp(-np.abs(x))
    ys = 2.0 * y * e / (1.0 + e * e)                    # y sech(x)
    return (y * np.tanh(x) - omega) / V, (ys * ys / V - 1.0) / V


def prior_denoiser(R, Sigma):
    """The Bayes-optimal GAMP input function of the standard Gaussian prior ``w ~ N(0, 1)``: the posterior mean
    and variance of ``w`` given ``R = w + sqrt(Sigma) xi``, ``(R / (1 + Sigma), Sigma / (1 + Sigma))``
    (``Sigma > 0``; ``R`` an array, ``Sigma`` a scalar or an array)."""
    R = np.asarray(R, dtype=float)
    Sigma = np.asarray(Sigma, dtype=float)
    if np.any(~(Sigma > 0)):
        raise ValueError(f"Sigma: {float(Sigma[~(Sigma > 0)].flat[0])!r} is not allowed; allowed: Sigma > 0")
    return R / (1.0 + Sigma), Sigma / (1.0 + Sigma)


def sech_moment(b):
    """``K(b) = int_0^inf u e^{-u} sech(b u) du`` for ``b >= 0`` (array-friendly).

    Expanding ``sech x = 2 sum_k (-1)^k e^{-(2k+1) x}`` and integrating term by term gives
    ``2 sum_k (-1)^k / (1 + (2k+1) b)^2 = [psi1(a/2) - psi1((a+1)/2)] / (8 b^2)``, ``a = (1+b)/(2b)``;
    for ``b < 2e-3`` the asymptotic series ``1 - 3 b^2 + 25 b^4 - 427 b^6`` (error < 1e-17) is used.
    """
    b = np.asarray(b, dtype=float)
    if np.any(b < 0):
        raise ValueError(f"b: {b[b < 0].flat[0]!r} is not allowed; allowed: b >= 0")
    small = b < _SMALL_B
    bs = np.where(small, b, 0.0)
    series = 1.0 - 3.0 * bs**2 + 25.0 * bs**4 - 427.0 * bs**6
    bl = np.where(small, 1.0, b)
    a = (1.0 + bl) / (2.0 * bl)
    closed = (polygamma(1, a / 2.0) - polygamma(1, (a + 1.0) / 2.0)) / (8.0 * bl**2)
    out = np.where(small, series, closed)
    return out[()] if out.ndim == 0 else out


@lru_cache(maxsize=8)
def _legendre_on_quarter_turn(n_nodes):
    x, w = np.polynomial.legendre.leggauss(n_nodes)
    return (x + 1.0) * np.pi / 4.0, w * np.pi / 4.0


def se_channel_integral(m, n_nodes=DEFAULT_NODES):
    """``H(m) = E[s^2 sech(s t)]``, ``s ~ N(0, 1)``, ``t ~ N(0, m)`` (``0 <= m <= 1``), by ``n_nodes``-point
    Gauss-Legendre on ``(2/pi) int_0^{pi/2} K(sqrt(m) sin phi) dphi``.  ``H(0) = 1``, ``H = 1 - 3m/2 + O(m^2)``.
    """
    m = np.asarray(m, dtype=float)
    if np.any((m < 0) | (m > 1)):
        raise ValueError(f"m: {m[(m < 0) | (m > 1)].flat[0]!r} is not allowed; allowed: 0 <= m <= 1")
    phi, w = _legendre_on_quarter_turn(int(n_nodes))
    vals = sech_moment(np.sqrt(m)[..., None] * np.sin(phi))
    out = (2.0 / np.pi) * np.sum(vals * w, axis=-1)
    return out[()] if out.ndim == 0 else out


def se_hat_overlap(m, alpha=1.0, n_nodes=DEFAULT_NODES):
    """``mhat = alpha F(m) = alpha E[g_out^2]`` for ``0 <= m < 1`` (diverges as ``m -> 1``)."""
    alpha = check_number("alpha", float(alpha), low=0.0, low_open=True)
    m = np.asarray(m, dtype=float)
    if np.any((m < 0) | (m >= 1)):
        raise ValueError(f"m: {m[(m < 0) | (m >= 1)].flat[0]!r} is not allowed; allowed: 0 <= m < 1")
    v = 1.0 - m
    out = alpha * (1.0 - np.sqrt(v) * se_channel_integral(m, n_nodes)) / v
    return out[()] if np.ndim(out) == 0 else out


def se_update(m, alpha, n_nodes=DEFAULT_NODES):
    """One state-evolution step ``m -> mhat / (1 + mhat)``; ``m = 1`` is mapped to 1."""
    alpha = check_number("alpha", float(alpha), low=0.0, low_open=True)
    m = np.asarray(m, dtype=float)
    if np.any((m < 0) | (m > 1)):
        raise ValueError(f"m: {m[(m < 0) | (m > 1)].flat[0]!r} is not allowed; allowed: 0 <= m <= 1")
    mm = np.minimum(m, 1.0 - 1e-300)
    v = 1.0 - mm
    # mhat/(1+mhat) written as alpha G / (V + alpha G), G = 1 - sqrt(V) H: no overflow as V -> 0
    g = 1.0 - np.sqrt(v) * se_channel_integral(mm, n_nodes)
    out = np.where(m >= 1.0, 1.0, alpha * g / (v + alpha * g))
    return out[()] if out.ndim == 0 else out


def se_iterate(alpha, m0=1e-3, tol=1e-12, max_iter=100_000, n_nodes=DEFAULT_NODES):
    """Iterate the state evolution from ``m0``; returns the array of overlaps ``m_0, m_1, ...``.

    Stops when ``|m_{t+1} - m_t| < tol`` or ``1 - m_t < tol``.  Raises :class:`ConvergenceError` with the last
    step size after ``max_iter`` iterations (the iteration slows down critically near ``alpha_AMP``: prefer
    :func:`se_fixed_point` for the fixed point itself).
    """
    alpha = check_number("alpha", float(alpha), low=0.0, low_open=True)
    m0 = check_number("m0", float(m0), low=0.0, high=1.0, high_open=False, low_open=True)
    check_number("tol", float(tol), low=0.0, low_open=True)
    ms = [m0]
    m = m0
    for _ in range(int(max_iter)):
        new = float(se_update(m, alpha, n_nodes))
        ms.append(new)
        if abs(new - m) < tol or 1.0 - new < tol:
            return np.array(ms)
        m = new
    raise ConvergenceError(f"state evolution at alpha={alpha} not converged in {max_iter} iterations",
                           abs(ms[-1] - ms[-2]))


def se_alpha_of_overlap(m, n_nodes=DEFAULT_NODES):
    """The fixed-point curve: the ``alpha`` at which ``m`` (``0 < m < 1``) is a state-evolution fixed point,
    ``m / (1 - sqrt(1 - m) H(m))``.  Tends to ``alpha_WR = 1/2`` as ``m -> 0`` and to 1 as ``m -> 1``.
    """
    m = np.asarray(m, dtype=float)
    if np.any((m <= 0) | (m >= 1)):
        raise ValueError(f"m: {m[(m <= 0) | (m >= 1)].flat[0]!r} is not allowed; allowed: 0 < m < 1")
    out = m / (1.0 - np.sqrt(1.0 - m) * se_channel_integral(m, n_nodes))
    return out[()] if out.ndim == 0 else out


@lru_cache(maxsize=8)
def _spinodal(n_nodes):
    """``(m_s, alpha_AMP)``: the maximum of the fixed-point curve on (0, 1)."""
    grid = np.linspace(0.02, 0.98, 49)
    i = int(np.argmax(se_alpha_of_overlap(grid, n_nodes)))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    res = minimize_scalar(lambda x: -se_alpha_of_overlap(x, n_nodes), bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-10})
    m_s = float(res.x)
    # check that the bracketing worked: an interior maximum, above the m -> 1 limit (1)
    h = 1e-4
    a_s = float(se_alpha_of_overlap(m_s, n_nodes))
    slope = (se_alpha_of_overlap(m_s + h, n_nodes) - se_alpha_of_overlap(m_s - h, n_nodes)) / (2 * h)
    if not (res.success and lo < m_s < hi and a_s > 1.0 and abs(slope) < 1e-5):
        raise ConvergenceError("maximum of the state-evolution fixed-point curve not found", float(slope))
    return m_s, a_s


def se_spinodal_overlap(n_nodes=DEFAULT_NODES):
    """The overlap ``m_s`` where the fixed-point curve peaks (the AMP fixed point just below ``alpha_AMP``)."""
    return _spinodal(int(n_nodes))[0]


def alpha_amp(n_nodes=DEFAULT_NODES):
    """Algorithmic threshold: above it, state evolution from small overlap reaches ``m = 1``.
    The maximum of :func:`se_alpha_of_overlap` (1.1285 here; published ~1.13)."""
    return _spinodal(int(n_nodes))[1]


def alpha_weak_recovery():
    """Weak-recovery threshold: ``m = 0`` is a fixed point for all ``alpha`` and loses stability where
    ``d m'/d m|_0 = alpha E[(s^2 - 1)^2] = 1``, i.e. at ``1 / E[(s^2 - 1)^2] = 1/2`` (computed by 3-node
    Gauss-Hermite, exact for this polynomial)."""
    x, w = np.polynomial.hermite_e.hermegauss(3)
    return float(1.0 / (np.sum(w * (x**2 - 1.0) ** 2) / np.sqrt(2.0 * np.pi)))


@array_api_boundary("alpha")
def se_fixed_point(alpha, n_nodes=DEFAULT_NODES):
    """The state-evolution fixed point reached from an infinitesimal positive overlap, as a function of
    ``alpha > 0`` (scalar or array): 0 for ``alpha <= alpha_WR``; the first root of
    ``se_alpha_of_overlap(m) = alpha`` for ``alpha_WR < alpha < alpha_AMP``; 1 above ``alpha_AMP``.  Found by
    inverting the fixed-point curve (Brent's method, ``m`` to 1e-14), not by iterating."""
    if np.ndim(alpha):
        a = np.asarray(alpha, dtype=float)
        return np.array([_fixed_point(x, n_nodes) for x in a.ravel()]).reshape(a.shape)
    return _fixed_point(alpha, n_nodes)


def _fixed_point(alpha, n_nodes):
    alpha = check_number("alpha", float(alpha), low=0.0, low_open=True)
    if alpha <= alpha_weak_recovery():
        return 0.0
    m_s, a_s = _spinodal(int(n_nodes))
    if alpha >= a_s:
        return 1.0
    f = lambda m: float(se_alpha_of_overlap(m, n_nodes)) - alpha  # noqa: E731
    lo = 1e-12
    if f(lo) >= 0:                       # alpha within 1e-12 of alpha_WR
        return lo
    root, info = brentq(f, lo, m_s, xtol=1e-14, full_output=True)
    if not info.converged:
        raise ConvergenceError(f"fixed point at alpha={alpha} not found", f(root))
    return float(root)
