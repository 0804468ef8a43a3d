"""Threshold states of phase retrieval in the 1RSB approximation and their BBP instability
(Sarao Mannelli et al. 2020, eqs 5-17).  Derivations: ``docs/theory.md``.

Conventions of Sarao Mannelli et al. 2020: loss ``L = (1/2) sum_mu l(yhat_mu, y_mu)``,
``l(yhat, y) = (yhat^2 - y^2)^2``, inputs of unit norm so that ``yhat = x.W`` is ``O(1)``; threshold states have zero overlap with the teacher, so the
label ``y ~ N(0, 1)`` is independent of the student's cavity field ``u ~ N(0, 1)`` (the reshuffled-label
problem of their fig 1).  (Mignacco et al. 2021 use ``v = l/4`` with ``L = sum v``: energies there are
half of these.)

1RSB at zero temperature (``beta (1 - q1) -> chi``, Parisi parameter ``x = z / beta``)::

    V(u, y | chi) = min_t (u - t)^2 / chi + l(t, y)          minimizer yhat(u, y) ("proximal field")
    f(chi, z)     = -(1/2z) log((chi + z)/chi) - (alpha/z) E_y log E_u exp(-z V(u, y)/2)        (eq 11)
    1/(chi (chi + z)) = (alpha/4) E[ l'(yhat, y)^2 ]        (eq 12: df/dchi = 0; note dV/du = l'(yhat))
    1 = alpha E[ (chi l''(yhat, y) / (2 + chi l''(yhat, y)))^2 ]                 (eq 13: marginality)

with ``E`` over the label law ``P(yhat, y)``: ``y ~ N(0, 1)``, ``u`` drawn from ``N(0, 1)`` tilted by
``exp(-z V(u, y)/2)``, and ``yhat = yhat(u, y)`` the minimizer (the actual field of the configuration, not
the cavity field: that is what ``delta f / delta l = (alpha/2) P`` gives, eq 16-17; the OCR of eq 17 shows
the cavity-field density with ``alpha`` in place of ``z``).  Energy per sample ``e = E[l]/2`` equals
``d(z f)/dz / alpha`` (checked in the tests).

Quadrature: the integrals are taken over ``(yhat, y)`` directly, where ``u = yhat + chi l'(yhat, y)/2`` and
``du = J dyhat``, ``J = 1 + chi l''/2``: every integrand is explicit (no minimization).  The integrands of
eq 13 and of the BBP functions carry ``1/J``, singular at ``yhat = 0, y = y_c = 1/sqrt(2 chi)``: the
substitution ``y = y_c -+ p^2`` and Duffy's triangle map make them smooth (convergence tested).

BBP (Sarao Mannelli et al. 2020, eqs 5-7; Lu & Li 2019 with ``T = -(alpha/2) l''``)::

    Psi(lam) = lam [1/alpha - E( alpha l'' / (2 lam + alpha l'') )]
    Phi(lam) = -lam E( alpha l'' y^2 / (2 lam + alpha l'') )
    lam_bar  = argmin Psi:  1/alpha = E( alpha l'' / (2 lam_bar + alpha l'') )^2     (eq 6)
    mu       = (alpha/2) E( l' yhat )                                               (eq 3 / 7b)
    BBP:       -Phi(lam_bar) = mu                                                   (eq 7a)

Eq 6 is eq 13 with ``lam_bar = alpha/chi``; ``lam_bar`` sits at the upper edge of the support of ``T``
(``2 + chi l'' >= 0`` since ``yhat`` minimizes). ``alpha_BBP`` solves the last line: 13.853 (published 13.8).
"""
import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from prcy._xp import array_api_boundary
from scipy.optimize import brentq, root

from prcy.analysis.theory import ConvergenceError
from prcy.options import check_number

__all__ = ["loss_derivatives", "proximal_field", "moreau_envelope", "LabelLaw", "label_law",
           "threshold_equations", "threshold_free_energy", "ThresholdState", "threshold_state",
           "threshold_energy", "bbp_psi", "bbp_phi", "bbp_lambda_bar", "bbp_residual", "alpha_bbp"]

DEFAULT_NODES = 40          # Gauss-Legendre nodes per direction of each Duffy triangle (4 triangles)
_U_MAX = 12.0               # cavity fields beyond |u| = 12 carry weight < exp(-72)
_Y_MAX = 9.5                # labels beyond |y| = 9.5 carry weight < exp(-45)
_ANCHOR = (4.0, 0.17159, 0.28172)   # (alpha, chi, z): a solution the continuation starts from
_MAX_LOG_STEP = 0.2         # continuation step in log(alpha)
_SOLVE_TOL = 1e-8           # largest accepted residual of eqs 12-13 (quadrature noise floor ~1e-11)


def loss_derivatives(yhat, y):
    """``(l, dl/dyhat, d2l/dyhat2)`` for ``l = (yhat^2 - y^2)^2``."""
    yhat, y = np.broadcast_arrays(np.asarray(yhat, float), np.asarray(y, float))
    d = yhat * yhat - y * y
    return d * d, 4.0 * yhat * d, 12.0 * yhat * yhat - 4.0 * y * y


def _largest_cubic_root(c3, c1, c0):
    """Largest real root of ``c3 t^3 + c1 t + c0 = 0`` (``c3 > 0``), elementwise (Cardano / Viete)."""
    p, q = c1 / c3, c0 / c3
    disc = (q / 2) ** 2 + (p / 3) ** 3
    one = disc >= 0
    sq = np.sqrt(np.where(one, disc, 0.0))
    cardano = np.cbrt(-q / 2 + sq) + np.cbrt(-q / 2 - sq)
    pn = np.where(one, -1.0, p)
    r = 2.0 * np.sqrt(-pn / 3.0)
    viete = r * np.cos(np.arccos(np.clip(3.0 * q / (pn * r), -1.0, 1.0)) / 3.0)
    return np.where(one, cardano, viete)


def proximal_field(u, y, chi):
    """The global minimizer ``yhat`` of ``(u - t)^2/chi + (t^2 - y^2)^2`` over ``t`` (``chi > 0``).

    Stationarity is the cubic ``2 chi t^3 + (1 - 2 chi y^2) t - u = 0``; for ``u != 0`` the global minimum
    is the root of the sign of ``u`` with the largest modulus.  At ``u = 0`` and ``y^2 > 1/(2 chi)`` the
    minimizer jumps between ``+-sqrt(y^2 - 1/(2 chi))``; the positive one is returned.
    """
    chi = check_number("chi", float(chi), low=0.0, low_open=True)
    u, y = np.broadcast_arrays(np.asarray(u, float), np.asarray(y, float))
    s = np.where(u < 0, -1.0, 1.0)
    t = _largest_cubic_root(2.0 * chi, 1.0 - 2.0 * chi * y * y, -np.abs(u))
    out = s * t
    return out[()] if out.ndim == 0 else out


def moreau_envelope(u, y, chi):
    """``V(u, y | chi) = min_t (u - t)^2/chi + (t^2 - y^2)^2``."""
    t = proximal_field(u, y, chi)
    out = (np.asarray(u, float) - t) ** 2 / float(chi) + loss_derivatives(t, y)[0]
    return out[()] if np.ndim(out) == 0 else out


@lru_cache(maxsize=16)
def _gauss_legendre_01(n):
    x, w = np.polynomial.legendre.leggauss(n)
    return (x + 1.0) / 2.0, w / 2.0


@lru_cache(maxsize=16)
def _duffy_square(n):
    """Nodes ``(a, b)`` and weights on the unit square for integrands ``~ 1/|(a, b)|`` at the origin: the
    two triangles ``b <= a`` (``a = t, b = t w``) and ``a < b`` (``b = t, a = t w``), Jacobian ``t``."""
    t, wt = _gauss_legendre_01(n)
    T, W = np.meshgrid(t, t, indexing="ij")
    wgt = np.outer(wt, wt) * T
    a = np.concatenate([T.ravel(), (T * W).ravel()])
    b = np.concatenate([(T * W).ravel(), T.ravel()])
    return a, b, np.concatenate([wgt.ravel(), wgt.ravel()])


def _branch(y, chi):
    """Lower and upper ends ``(r0, t_max)`` of the minimizer branch for ``0 <= u <= _U_MAX``."""
    r0 = np.sqrt(np.clip(y * y - 1.0 / (2.0 * chi), 0.0, None))
    tmax = _largest_cubic_root(2.0 * chi * np.ones_like(y), 1.0 - 2.0 * chi * y * y, -_U_MAX * np.ones_like(y))
    return r0, tmax


def _tilted(yhat, y, chi, z):
    """``J phi(u) exp(-z V/2)`` (density in yhat of the tilted cavity field) and the loss derivatives."""
    l0, l1, l2 = loss_derivatives(yhat, y)
    u = yhat + 0.5 * chi * l1
    jac = 1.0 + 0.5 * chi * l2
    V = 0.25 * chi * l1 * l1 + l0
    dens = jac * np.exp(-0.5 * u * u - 0.5 * z * V) / math.sqrt(2.0 * math.pi)
    return dens, l0, l1, l2, jac


def _half_partition(y, chi, z, n):
    """``Zh(y) = int_0^inf du phi(u) exp(-z V(u, y)/2)``, by Gauss-Legendre in ``yhat`` along the branch."""
    t, w = _gauss_legendre_01(n)
    r0, tmax = _branch(y, chi)
    yh = r0[:, None] + (tmax - r0)[:, None] * t
    dens = _tilted(yh, y[:, None], chi, z)[0]
    return np.sum(dens * w * (tmax - r0)[:, None], axis=1)


def _label_nodes(chi, z, n):
    """``(y, yhat, weight)`` quadrature of ``P(yhat, y) dyhat dy`` over the quarter plane (unnormalized by
    rounding only).  Two regions meet at ``y_c = 1/sqrt(2 chi)``, where the branch starts at ``yhat = 0``:
    A: ``y = y_c - p^2`` (``yhat`` in ``[0, t_max(y)]``), B: ``y = y_c + p^2`` (``yhat`` in
    ``[r0(y), t_max(y)]``).  On the unit square ``(a, b)`` of each region, Duffy nodes grade the corner
    ``(y_c, 0)``; ``Zh(y)`` is interpolated in ``p`` (Chebyshev, ``n`` points: it is analytic there)."""
    yc = 1.0 / math.sqrt(2.0 * chi)
    a, b, w = _duffy_square(n)
    ys, yhs, ws = [], [], []
    regions = [(-1.0, math.sqrt(min(yc, _Y_MAX)))]
    if yc < _Y_MAX:
        regions.append((1.0, math.sqrt(_Y_MAX - yc)))
    for sign, top in regions:
        p = top * a
        y = yc + sign * p * p
        r0, tmax = _branch(y, chi)
        yh = r0 + (tmax - r0) * b
        zh = np.polynomial.Chebyshev.interpolate(
            lambda q: _half_partition(yc + sign * q * q, chi, z, n), n, domain=[0.0, top])(p)
        dens = _tilted(yh, y, chi, z)[0]
        phi_y = 2.0 * np.exp(-0.5 * y * y) / math.sqrt(2.0 * math.pi)
        ys.append(y), yhs.append(yh), ws.append(w * top * 2.0 * p * (tmax - r0) * phi_y * dens / zh)
    return np.concatenate(ys), np.concatenate(yhs), np.concatenate(ws)


@dataclass(frozen=True)
class LabelLaw:
    """The 1RSB law ``P(yhat, y)`` as quadrature nodes on the quarter plane ``yhat >= 0, y >= 0`` (the law is
    symmetric under ``yhat -> -yhat`` and ``y -> -y`` separately); ``weight`` sums to 1.

    Also carries ``u`` (cavity field), ``jac = 1 + chi l''/2`` and ``l, dl, d2l`` at the nodes.
    """
    alpha: float
    chi: float
    z: float
    yhat: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    u: np.ndarray = field(repr=False)
    jac: np.ndarray = field(repr=False)
    l: np.ndarray = field(repr=False)
    dl: np.ndarray = field(repr=False)
    d2l: np.ndarray = field(repr=False)

    def expect(self, values):
        """``E[values]`` for an array of values at the nodes (or a callable ``f(yhat, y)``)."""
        if callable(values):
            values = values(self.yhat, self.y)
        return float(np.sum(self.weight * values))

    def moment(self, k_hat, k=0):
        """``E[yhat^k_hat y^k]`` (zero when ``k_hat`` or ``k`` is odd)."""
        if k_hat % 2 or k % 2:
            return 0.0
        return self.expect(self.yhat**k_hat * self.y**k)


def label_law(alpha, chi, z, n_nodes=DEFAULT_NODES):
    """The label law at given ``(chi, z)`` (eq 17 as derived: push-forward of the tilted cavity field
    through :func:`proximal_field`).  ``alpha`` is only recorded."""
    alpha = check_number("alpha", float(alpha), low=0.0, low_open=True)
    chi = check_number("chi", float(chi), low=0.0, low_open=True)
    z = check_number("z", float(z), low=0.0, low_open=False)
    y, yh, weight = _label_nodes(chi, z, int(n_nodes))
    l0, l1, l2 = loss_derivatives(yh, y)
    jac = 1.0 + 0.5 * chi * l2
    total = weight.sum()
    if abs(total - 1.0) > 1e-6:
        raise ConvergenceError(f"label law at chi={chi}, z={z} not normalized by the quadrature", total - 1.0)
    return LabelLaw(alpha, chi, z, yh, y, weight / total, yh + 0.5 * chi * l1, jac, l0, l1, l2)


def threshold_equations(chi, z, alpha, n_nodes=DEFAULT_NODES):
    """Residuals of eq 12 and eq 13: ``(alpha/4) chi (chi+z) E[l'^2] - 1`` and
    ``alpha E[(chi l''/(2 + chi l''))^2] - 1``."""
    law = label_law(alpha, chi, z, n_nodes)
    r12 = 0.25 * alpha * chi * (chi + z) * law.expect(law.dl**2) - 1.0
    r13 = alpha * law.expect((chi * law.d2l / (2.0 * law.jac)) ** 2) - 1.0
    return np.array([r12, r13])


def threshold_free_energy(chi, z, alpha, n_nodes=DEFAULT_NODES):
    """Eq 11: ``f(chi | alpha, z)`` per dimension (``L/N`` units)."""
    alpha = check_number("alpha", float(alpha), low=0.0, low_open=True)
    chi = check_number("chi", float(chi), low=0.0, low_open=True)
    z = check_number("z", float(z), low=0.0, low_open=True)
    n = int(n_nodes)
    yc = 1.0 / math.sqrt(2.0 * chi)
    t, w = _gauss_legendre_01(2 * n)
    # E_y over y >= 0 with the p^2 substitution at y_c on both sides
    parts = []
    top = min(yc, _Y_MAX)
    p = math.sqrt(top) * t
    parts.append((yc - p * p, w * math.sqrt(top) * 2.0 * p))
    if yc < _Y_MAX:
        P = math.sqrt(_Y_MAX - yc)
        p = P * t
        parts.append((yc + p * p, w * P * 2.0 * p))
    y = np.concatenate([q[0] for q in parts])
    wy = np.concatenate([q[1] for q in parts]) * 2.0 * np.exp(-0.5 * y * y) / math.sqrt(2.0 * math.pi)
    ey_logz = np.sum(wy * np.log(2.0 * _half_partition(y, chi, z, n)))
    return -math.log((chi + z) / chi) / (2.0 * z) - alpha * ey_logz / z


@dataclass(frozen=True)
class ThresholdState:
    """The 1RSB threshold state at ``alpha`` and the BBP quantities built on it.

    ``energy``: loss per sample ``E[l]/2`` (= ``L/(alpha N)``); ``energy_per_dim = alpha * energy`` (``L/N``);
    ``free_energy``: eq 11; ``complexity = z (energy_per_dim - free_energy)``; ``mu``: Lagrange multiplier
    (eq 3); ``lambda_bar = alpha/chi`` (eq 6); ``psi = Psi(lambda_bar)``, ``phi = Phi(lambda_bar)`` (eq 5);
    ``bbp_residual = -phi - mu`` (eq 7, zero at alpha_BBP); ``residual``: max |eq 12, eq 13 residual|.
    """
    alpha: float
    chi: float
    z: float
    energy: float
    energy_per_dim: float
    free_energy: float
    complexity: float
    mu: float
    lambda_bar: float
    psi: float
    phi: float
    bbp_residual: float
    residual: float
    law: LabelLaw = field(repr=False)


def _solve_at(alpha, chi0, z0, n):
    def residual(v):
        try:
            with np.errstate(all="raise"):
                return threshold_equations(math.exp(v[0]), math.exp(v[1]), alpha, n)
        except (ValueError, ConvergenceError, FloatingPointError, OverflowError):
            return np.array([1e6, 1e6])          # outside the domain: push the solver back
    sol = root(residual, [math.log(chi0), math.log(z0)], method="hybr", options={"xtol": 1e-12})
    chi, z = (float(math.exp(v)) for v in sol.x)
    res = float(np.max(np.abs(residual(sol.x))))
    if not np.isfinite(res) or res > _SOLVE_TOL:
        raise ConvergenceError(f"threshold-state equations (eqs 12-13) at alpha={alpha} not solved from "
                               f"chi={chi0:.6g}, z={z0:.6g}", res)
    return chi, z


_solutions = {}     # n_nodes -> {alpha: (chi, z)}: continuation starting points


def _solve(alpha, n):
    """Continuation in ``log alpha`` from the nearest stored solution, predicting each start by linear
    extrapolation of ``(log chi, log z)`` in ``log alpha``."""
    known = _solutions.setdefault(n, {})
    if alpha in known:
        return known[alpha]
    if not known:
        a0, chi0, z0 = _ANCHOR
        known[a0] = _solve_at(a0, chi0, z0, n)
    start = min(known, key=lambda a: abs(math.log(a / alpha)))
    path = [(math.log(start), *map(math.log, known[start]))]
    steps = max(1, math.ceil(abs(math.log(alpha / start)) / _MAX_LOG_STEP))
    for la in np.linspace(math.log(start), math.log(alpha), steps + 1)[1:]:
        if len(path) >= 2:
            (l0, c0, z0), (l1, c1, z1) = path[-2:]
            s = (la - l1) / (l1 - l0)
            guess = (c1 + s * (c1 - c0), z1 + s * (z1 - z0))
        else:
            guess = path[-1][1:]
        a = alpha if la == math.log(alpha) else float(math.exp(la))     # linspace ends exactly on stop
        chi, z = _solve_at(a, math.exp(guess[0]), math.exp(guess[1]), n)
        path.append((la, math.log(chi), math.log(z)))
    known[alpha] = (chi, z)
    return chi, z


def bbp_psi(lam, law):
    """``Psi_alpha(lam)`` of eq 5 under ``law`` (``lam >= alpha/chi``, where ``2 lam + alpha l'' >= 0``)."""
    a = law.alpha
    lam = check_number("lam", float(lam), low=a / law.chi * (1 - 1e-12), low_open=False,
                       allowed=f"lam >= alpha/chi = {a / law.chi!r}")
    den = 2.0 * lam + a * law.d2l
    return lam * (1.0 / a - law.expect(a * law.d2l / den))


def bbp_phi(lam, law):
    """``Phi_alpha(lam)`` of eq 5 under ``law`` (same domain as :func:`bbp_psi`)."""
    a = law.alpha
    lam = check_number("lam", float(lam), low=a / law.chi * (1 - 1e-12), low_open=False,
                       allowed=f"lam >= alpha/chi = {a / law.chi!r}")
    den = 2.0 * lam + a * law.d2l
    return -lam * law.expect(a * law.d2l * law.y**2 / den)


def bbp_lambda_bar(law):
    """``lambda_bar = alpha/chi`` and the residual of eq 6 there, ``alpha E[(alpha l''/(2 lam + alpha l''))^2]
    - 1`` (eq 6 is eq 13 at this ``lam``; for ``lam > alpha/chi`` the expectation decreases, so the
    minimum of ``Psi`` is at the edge of its domain)."""
    a = law.alpha
    lam = a / law.chi
    ratio = law.chi * law.d2l / (2.0 * law.jac)          # = alpha l'' / (2 lam + alpha l'') without 0/0
    return lam, a * law.expect(ratio**2) - 1.0


def threshold_state(alpha, n_nodes=DEFAULT_NODES):
    """Solve eqs 12-13 for ``(chi, z)`` at ``alpha > 1`` (by continuation in ``alpha`` from a stored
    solution at alpha = 4) and evaluate energy, free energy, complexity and the BBP quantities.

    Raises ``ValueError`` for ``alpha <= 1`` (there zero-loss configurations exist: ``chi -> inf`` as
    ``alpha -> 1+``) and :class:`ConvergenceError` with the residual when the solve fails.
    """
    alpha = check_number("alpha", float(alpha), low=1.0, low_open=True,
                         allowed="alpha > 1 (threshold states of positive energy exist only above 1)")
    n = int(n_nodes)
    chi, z = _solve(alpha, n)
    law = label_law(alpha, chi, z, n)
    res = float(np.max(np.abs(threshold_equations(chi, z, alpha, n))))
    e = 0.5 * law.expect(law.l)
    f = threshold_free_energy(chi, z, alpha, n)
    mu = 0.5 * alpha * law.expect(law.dl * law.yhat)
    lam, _ = bbp_lambda_bar(law)
    ratio = law.chi * law.d2l / (2.0 * law.jac)
    psi = lam * (1.0 / alpha - law.expect(ratio))
    phi = -lam * law.expect(ratio * law.y**2)
    return ThresholdState(alpha, chi, z, e, alpha * e, f, z * (alpha * e - f), mu, lam, psi, phi,
                          -phi - mu, res, law)


@array_api_boundary("alpha")
def threshold_energy(alpha, n_nodes=DEFAULT_NODES):
    """1RSB threshold energy per sample ``E[l]/2 = L/(alpha N)`` (Sarao Mannelli et al. 2020's conventions)
    at ``alpha`` (scalar or array, each ``> 1``); multiply by ``alpha`` for ``L/N``, halve for Mignacco et al. 2021's ``v = l/4``."""
    a = np.asarray(alpha, dtype=float)
    out = np.array([threshold_state(float(x), n_nodes).energy for x in a.ravel()]).reshape(a.shape)
    return out[()] if out.ndim == 0 else out


def bbp_residual(alpha, n_nodes=DEFAULT_NODES):
    """``-Phi(lambda_bar) - mu`` at the threshold state (eq 7): positive below ``alpha_BBP``."""
    return threshold_state(alpha, n_nodes).bbp_residual


@lru_cache(maxsize=8)
def _alpha_bbp(n, lo, hi, xtol):
    g = lambda a: bbp_residual(a, n)   # noqa: E731
    glo, ghi = g(lo), g(hi)
    if not glo > 0 > ghi:
        raise ConvergenceError(f"BBP condition does not change sign on [{lo}, {hi}]", (glo, ghi))
    a, info = brentq(g, lo, hi, xtol=xtol, full_output=True)
    if not info.converged:
        raise ConvergenceError("alpha_BBP not found", g(a))
    return float(a)


def alpha_bbp(n_nodes=DEFAULT_NODES, bracket=(12.0, 16.0), xtol=1e-8):
    """``alpha_BBP`` (Sarao Mannelli et al. 2020, eqs 6-7, with the 1RSB threshold-state law): 13.853
    (published ~13.8)."""
    lo = check_number("bracket[0]", float(bracket[0]), low=1.0, low_open=True)
    hi = check_number("bracket[1]", float(bracket[1]), low=lo, low_open=True)
    return _alpha_bbp(int(n_nodes), lo, hi, float(xtol))
