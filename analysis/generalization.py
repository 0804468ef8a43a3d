"""Generalization error of a single-layer student in the high-dimensional limit (appendix B of
Mignacco et al. 2021): for a fresh Gaussian input, the teacher field ``x`` and student field ``z`` are
jointly Gaussian with variances ``q0 = |w0|^2/N``, ``q = |w|^2/N`` and covariance ``m = w.w0/N``.
"""
import numpy as np


def label_mse(m, q=1.0, q0=1.0):
    """``E(|x| - |z|)^2`` for phase retrieval (eq B.8)::

        q + q0 - (4/pi) [ sqrt(q q0 - m^2) + m arctan( m / sqrt(q q0 - m^2) ) ]

    Broadcasts over arrays; NaN propagates. At ``m^2 = q q0`` the bracket's limit ``|m| pi/2`` is used.
    """
    m, q, q0 = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (m, q, q0)))
    det = np.clip(q * q0 - m * m, 0.0, None)
    root = np.sqrt(det)
    with np.errstate(divide="ignore", invalid="ignore"):
        angle = np.where(root > 0, np.arctan(m / np.where(root > 0, root, 1.0)), np.sign(m) * np.pi / 2)
    out = q + q0 - (4.0 / np.pi) * (root + m * angle)
    out = np.where(np.isnan(m) | np.isnan(q) | np.isnan(q0), np.nan, out)
    return out[()] if out.ndim == 0 else out


def linear_mse(m, q=1.0, q0=1.0):
    """``E(x - z)^2 = q + q0 - 2 m`` for the linear teacher."""
    return np.asarray(q, dtype=float) + q0 - 2.0 * np.asarray(m, dtype=float)


def test_error(problem, m, q=1.0, q0=1.0):
    """The generalization error of ``problem`` (``"phase-retrieval"`` or ``"linear-regression"``)."""
    if problem == "phase-retrieval":
        return label_mse(m, q, q0)
    if problem == "linear-regression":
        return linear_mse(m, q, q0)
    raise ValueError(f"problem: {problem!r} is not allowed; allowed: phase-retrieval, linear-regression")
