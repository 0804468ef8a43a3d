"""Generalization error of a single-layer student in the high-dimensional limit.

Phase retrieval (appendix B of Mignacco et al. 2021): for a fresh Gaussian input the teacher
field ``x`` and the student field ``z`` are jointly Gaussian with variances ``q0 = |w0|^2/N``,
``q = |w|^2/N`` and covariance ``m = w.w0/N``.

Gaussian mixtures (Mignacco et al. 2020, eqs 24-25): inputs ``x = c v*/sqrt(d) + sqrt(Delta) g``,
the student's pre-activation on a fresh input is ``r = c m + sqrt(Delta C) xi`` with ``m = w.v*/d``,
``C = |w|^2/d`` and ``xi ~ N(0, 1)``.

Derivations: ``docs/theory.md``.  Out-of-domain arguments raise ``ValueError`` naming the argument.
"""
import numpy as np
from scipy.special import erf, erfc, owens_t

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


def _upper_orthant(h, k, rho):
    """``P(X > h, Y > k)`` for standard normals with correlation ``rho``, ``h, k > 0`` (Owen 1956:
    ``(Q(h) + Q(k))/2 - T(h, a_h) - T(k, a_k)`` with ``a_h = (k - rho h)/(h sqrt(1 - rho^2))``), and
    its limits at ``rho = +-1``."""
    Q = lambda x: 0.5 * erfc(x / np.sqrt(2.0))
    r = np.clip(rho, -1.0, 1.0)
    root = np.sqrt(1.0 - r * r)
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = 0.5 * (Q(h) + Q(k)) - owens_t(h, (k - r * h) / (h * root)) - owens_t(k, (h - r * k) / (k * root))
    return np.where(r >= 1.0, Q(np.maximum(h, k)), np.where(r <= -1.0, 0.0, inner))


@array_api_boundary("m", "q", "onset", "q0")
def door_error(m, q, onset, q0=1.0):
    """Classification error of the symmetric door ``sign(|z| - K)`` against the teacher's
    ``sign(|x| - K)`` (Dmitriev 2021, section 2.3.2), ``(x, z)`` jointly Gaussian with variances ``q0``,
    ``q`` and covariance ``m``::

        P(|x| > K) + P(|z| > K) - 2 P(|x| > K, |z| > K),
        P(|x| > K, |z| > K) = 2 [L(a, b, rho) + L(a, b, -rho)],

    ``a = K/sqrt(q0)``, ``b = K/sqrt(q)``, ``rho = m/sqrt(q q0)``, ``L`` the bivariate normal upper
    orthant (Owen's T function). ``onset = K > 0``, ``q > 0``, ``q0 > 0``, ``m^2 <= q q0``; broadcasts,
    NaN propagates.
    """
    m, q, onset, q0 = _as_float_arrays(m, q, onset, q0)
    _check_positive("q", q)
    _check_positive("q0", q0)
    _check_positive("onset", onset)
    _check_overlap(m, q * q0, "q*q0")
    a, b, rho = onset / np.sqrt(q0), onset / np.sqrt(q), m / np.sqrt(q * q0)
    both = 2.0 * (_upper_orthant(a, b, rho) + _upper_orthant(a, b, -rho))
    out = erfc(a / np.sqrt(2.0)) + erfc(b / np.sqrt(2.0)) - 2.0 * both
    out = np.where(np.isnan(m) | np.isnan(q), np.nan, out)
    return _scalar_or_array(np.asarray(out))


def a_distance(teacher_a, a_square, q0=1.0):
    """``|A - A*|_F^2`` of a quadratic network (Sarao Mannelli, Vanden-Eijnden & Zdeborova 2020,
    arXiv:2006.15459: the order parameter ``A = W^T W/(K N)`` of a committee of ``K`` units
    ``g(h) = h^2``, the teacher's ``A* = w0 w0^T/N``)::

        |A|_F^2 - 2 w0^T A w0/N + q0^2,   q0 = |w0|^2/N

    from ``teacher_a = w0^T A w0/N = sum_k M_k^2/K`` and ``a_square = |A|_F^2 = |Q|_F^2/K^2``
    (``Q = W W^T/N``); each term is O(1). Broadcasts."""
    return np.asarray(a_square, dtype=float) - 2.0 * np.asarray(teacher_a, dtype=float) + q0 * q0


def quadratic_network_error(trace_a, teacher_a, a_square, q0=1.0):
    """``E(y^2 - yhat)^2`` for phase retrieval with a committee of ``K`` units ``g(h) = h^2``: labels
    ``y^2 = x^T A* x``, prediction ``yhat = (1/K) sum_k h_k^2 = x^T A x``, ``x ~ N(0, I)``; by Wick's
    theorem ``E(x^T B x)^2 = (tr B)^2 + 2 |B|_F^2`` with ``B = A* - A``::

        (q0 - tr A)^2 + 2 |A - A*|_F^2

    ``trace_a = tr A = tr Q/K`` (the dataset's ``norm``), ``teacher_a``, ``a_square``: see ``a_distance``.
    At ``K = 1`` (``tr A = q``, ``teacher_a = m^2``, ``a_square = q^2``) it is ``E(h0^2 - h^2)^2``, not the
    label MSE ``E(|h0| - |h|)^2`` of ``label_mse``. Broadcasts."""
    trace_a = np.asarray(trace_a, dtype=float)
    return (q0 - trace_a) ** 2 + 2.0 * a_distance(teacher_a, a_square, q0)


PROBLEMS = ("phase-retrieval", "linear-regression", "door", "mixture-2", "mixture-3")


@array_api_boundary("m", "q", "q0")
def test_error(problem, m, q=1.0, q0=1.0, onset=None, delta=None):
    """The generalization error of ``problem``: the label MSE of eq B.8 (``"phase-retrieval"``), the
    MSE of the linear teacher (``"linear-regression"``), the door's classification error (``"door"``,
    with its ``onset``), or a Gaussian mixture's classification error (``"mixture-2"``,
    ``"mixture-3"``: ``q`` is the norm ``C``, with the cluster variance ``delta``; ``"mixture-3"``
    also with ``onset = L``)."""
    if problem == "phase-retrieval":
        return label_mse(m, q, q0)
    if problem == "linear-regression":
        return linear_mse(m, q, q0)
    if problem in ("door", "mixture-3") and onset is None:
        raise ValueError(f"onset: needed for the test error of {problem}")
    if problem == "door":
        return door_error(m, q, onset, q0)
    if problem in ("mixture-2", "mixture-3") and delta is None:
        raise ValueError(f"delta: needed for the test error of {problem}")
    if problem == "mixture-2":
        return two_cluster_error(m, q, delta)
    if problem == "mixture-3":
        return three_cluster_error(m, q, delta, onset)
    raise ValueError(f"problem: {problem!r} is not allowed; allowed: {', '.join(PROBLEMS)}")


def _mixture_args(m, norm, delta):
    m, norm, delta = _as_float_arrays(m, norm, delta)
    _check_nonnegative("norm", norm)
    _check_positive("delta", delta)
    _check_overlap(m, norm, "norm")
    return m, norm, delta


@array_api_boundary("m", "norm", "delta")
def two_cluster_error(m, norm, delta):
    """Classification error of ``sign(w.x/sqrt(d))`` on the two-cluster mixture (Mignacco et al. 2020, eq 24)::

        erfc( m / sqrt(2 Delta C) ) / 2

    ``m = w.v*/d`` (magnetization), ``norm = C = |w|^2/d``, ``delta = Delta`` (cluster variance).
    At ``C = 0`` (``w = 0``, so ``m = 0``) every prediction is ``sign(0) = 0`` and eq 23 gives 1/4.
    Broadcasts; NaN propagates.  ``norm >= 0``, ``delta > 0`` and ``m^2 <= norm`` (|v*|^2 = d) are required.
    """
    m, norm, delta = _mixture_args(m, norm, delta)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(norm == 0, 0.25, 0.5 * erfc(m / np.sqrt(2.0 * delta * norm)))
    return _scalar_or_array(np.asarray(out))


@array_api_boundary("m", "norm", "delta", "onset")
def three_cluster_error(m, norm, delta, onset):
    """Classification error of the door ``sign((w.x/sqrt(d))^2 - L^2)`` on the three-cluster mixture
    (Mignacco et al. 2020, eq 25; centre cluster ``c = 0`` with label -1 and probability 1/2, ``c = +-1``
    with label +1)::

        erfc(L / s) / 2 + [ erf((L - m) / s) + erf((L + m) / s) ] / 4,    s = sqrt(2 Delta C)

    ``onset = L >= 0``; other arguments as in :func:`two_cluster_error`. At ``C = 0`` every prediction is
    ``sign(-L^2)``: error 1/2, or 1/4 (eq 23 with ``sign(0) = 0``) at ``L = 0``.
    """
    m, norm, delta = _mixture_args(m, norm, delta)
    onset = np.asarray(onset, dtype=float)
    _check_nonnegative("onset", onset)
    m, norm, delta, onset = np.broadcast_arrays(m, norm, delta, onset)
    s = np.sqrt(2.0 * delta * norm)
    with np.errstate(divide="ignore", invalid="ignore"):      # C = 0: every prediction sign(-L^2)
        out = np.where(norm == 0, np.where(onset > 0, 0.5, 0.25),
                       0.5 * erfc(onset / s) + 0.25 * (erf((onset - m) / s) + erf((onset + m) / s)))
    return _scalar_or_array(np.asarray(out))
