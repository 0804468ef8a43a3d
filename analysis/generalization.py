"""Generalization error of a single-layer student in the high-dimensional limit.

Phase retrieval (appendix B of Mignacco et al. 2021, seed 000): for a fresh Gaussian input the teacher
field ``x`` and the student field ``z`` are jointly Gaussian with variances ``q0 = |w0|^2/N``,
``q = |w|^2/N`` and covariance ``m = w.w0/N``.

Gaussian mixtures (Mignacco et al. 2020, seed 002, eqs 24-25): inputs ``x = c v*/sqrt(d) + sqrt(Delta) g``,
the student's pre-activation on a fresh input is ``r = c m + sqrt(Delta C) xi`` with ``m = w.v*/d``,
``C = |w|^2/d`` and ``xi ~ N(0, 1)``.

Derivations: ``docs/theory.md``.  Out-of-domain arguments raise ``ValueError`` naming the argument.
"""
import numpy as np
from scipy.special import erf, erfc

from prcy._xp import array_api_boundary

# Cauchy-Schwarz ``m^2 <= q q0`` is checked up to this relative tolerance: overlaps measured in a
# simulation (``w.w0/N`` and ``|w|^2/N`` in floating point) can break it by rounding only.
CAUCHY_SCHWARZ_RTOL = 1e-9


def _as_float_arrays(*args):
    return np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in args))


def _check_nonnegative(name, value):
    bad = value < 0                                   # NaN compares False: NaN passes through
    if np.any(bad):
        raise ValueError(f"{name}: {value[bad].flat[0]!r} is not allowed; allowed: {name} >= 0")


def _check_positive(name, value):
    bad = value <= 0
    if np.any(bad):
        raise ValueError(f"{name}: {value[bad].flat[0]!r} is not allowed; allowed: {name} > 0")


def _check_overlap(m, bound, bound_name):
    """``m^2 <= bound`` up to rounding (relative ``CAUCHY_SCHWARZ_RTOL``); NaN entries pass."""
    excess = m * m - bound
    bad = excess > CAUCHY_SCHWARZ_RTOL * np.maximum(np.abs(bound), m * m) + 1e-300
    if np.any(bad):
        i = np.flatnonzero(bad.ravel())[0]
        raise ValueError(f"m: {m.ravel()[i]!r} is not allowed with {bound_name} = {bound.ravel()[i]!r}; "
                         f"allowed: m^2 <= {bound_name} (Cauchy-Schwarz)")


def _scalar_or_array(out):
    return out[()] if out.ndim == 0 else out


@array_api_boundary("m", "q", "q0")
def label_mse(m, q=1.0, q0=1.0):
    """``E(|x| - |z|)^2`` for phase retrieval (eq B.8), in the arcsin form::

        q + q0 - (4/pi) sqrt(q q0) [ sqrt(1 - rho^2) + rho arcsin(rho) ],   rho = m / sqrt(q q0)

    equal to B.8's ``q + q0 - (4/pi)[sqrt(q q0 - m^2) + m arctan(m / sqrt(q q0 - m^2))]`` and finite as
    ``m^2 -> q q0`` (value ``(sqrt(q) - sqrt(q0))^2``).  Broadcasts over arrays; NaN in gives NaN out.

    Raises ``ValueError`` naming the argument for ``q < 0``, ``q0 < 0`` or ``m^2 > q q0`` beyond rounding
    (relative tolerance ``CAUCHY_SCHWARZ_RTOL``; within it ``rho`` is clipped to ``[-1, 1]``).
    """
    m, q, q0 = _as_float_arrays(m, q, q0)
    _check_nonnegative("q", q)
    _check_nonnegative("q0", q0)
    qq0 = q * q0
    _check_overlap(m, qq0, "q*q0")
    scale = np.sqrt(np.clip(qq0, 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(scale > 0, m / np.where(scale > 0, scale, 1.0), 0.0)
    rho = np.clip(rho, -1.0, 1.0)                     # clip leaves NaN as NaN
    bracket = np.sqrt(1.0 - rho * rho) + rho * np.arcsin(rho)
    out = q + q0 - (4.0 / np.pi) * scale * bracket
    out = np.where(np.isnan(m) | np.isnan(q) | np.isnan(q0), np.nan, out)
    return _scalar_or_array(out)


@array_api_boundary("m", "q", "q0")
def linear_mse(m, q=1.0, q0=1.0):
    """``E(x - z)^2 = q + q0 - 2 m`` for the linear teacher."""
    return np.asarray(q, dtype=float) + q0 - 2.0 * np.asarray(m, dtype=float)


@array_api_boundary("m", "q", "q0")
def test_error(problem, m, q=1.0, q0=1.0):
    """The generalization error of ``problem`` (``"phase-retrieval"`` or ``"linear-regression"``)."""
    if problem == "phase-retrieval":
        return label_mse(m, q, q0)
    if problem == "linear-regression":
        return linear_mse(m, q, q0)
    raise ValueError(f"problem: {problem!r} is not allowed; allowed: phase-retrieval, linear-regression")


def _mixture_args(m, norm, delta):
    m, norm, delta = _as_float_arrays(m, norm, delta)
    _check_positive("norm", norm)
    _check_positive("delta", delta)
    _check_overlap(m, norm, "norm")
    return m, norm, delta


@array_api_boundary("m", "norm", "delta")
def two_cluster_error(m, norm, delta):
    """Classification error of ``sign(w.x/sqrt(d))`` on the two-cluster mixture (002 eq 24)::

        erfc( m / sqrt(2 Delta C) ) / 2

    ``m = w.v*/d`` (magnetization), ``norm = C = |w|^2/d``, ``delta = Delta`` (cluster variance).
    Broadcasts; NaN propagates.  ``norm > 0``, ``delta > 0`` and ``m^2 <= norm`` (|v*|^2 = d) are required.
    """
    m, norm, delta = _mixture_args(m, norm, delta)
    out = 0.5 * erfc(m / np.sqrt(2.0 * delta * norm))
    return _scalar_or_array(np.asarray(out))


@array_api_boundary("m", "norm", "delta", "onset")
def three_cluster_error(m, norm, delta, onset):
    """Classification error of the door ``sign((w.x/sqrt(d))^2 - L^2)`` on the three-cluster mixture
    (002 eq 25; centre cluster ``c = 0`` with label -1 and probability 1/2, ``c = +-1`` with label +1)::

        erfc(L / s) / 2 + [ erf((L - m) / s) + erf((L + m) / s) ] / 4,    s = sqrt(2 Delta C)

    ``onset = L >= 0``; other arguments as in :func:`two_cluster_error`.
    """
    m, norm, delta = _mixture_args(m, norm, delta)
    onset = np.asarray(onset, dtype=float)
    _check_nonnegative("onset", onset)
    m, norm, delta, onset = np.broadcast_arrays(m, norm, delta, onset)
    s = np.sqrt(2.0 * delta * norm)
    out = 0.5 * erfc(onset / s) + 0.25 * (erf((onset - m) / s) + erf((onset + m) / s))
    return _scalar_or_array(np.asarray(out))
