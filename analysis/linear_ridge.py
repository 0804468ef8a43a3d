"""Exact high-dimensional dynamics of gradient descent for the linear teacher-student model with a
ridge term: the closed form against which the DMFT (and the simulations) are checked.

Model: ``v(h; h0) = (h - h0)^2 / 2``, ``h = x.w/sqrt(N)``, ``M = alpha N`` Gaussian inputs, teacher
``|w0|^2 = N``, ridge ``lambda``, start ``w(0) = m0 w0 + z`` (eq C.2). With ``A = X^T X / N`` the
gradient flow is linear, ``dw/dt = -(A + lambda) w + A w0``, so for every eigenvalue ``x`` of ``A``

    g(x, t) = x/(x + lambda) + exp(-(x + lambda) t) (m0 - x/(x + lambda)),

and, because ``w0`` and ``z`` are isotropic with respect to the eigenvectors of ``A``, in the limit
``N -> infinity`` (averages over the Marchenko-Pastur law ``mu`` of ``A``):

    m(t) = E_mu[g],    q(t) = E_mu[g^2 + exp(-2 (x + lambda) t)],
    train loss per sample = E_mu[x ((g - 1)^2 + exp(-2 (x + lambda) t))] / (2 alpha).

``A = alpha (X^T X / M)``: its law is alpha times the Marchenko-Pastur law of ratio ``c = 1/alpha``,
supported on ``alpha [(1 - sqrt c)^2, (1 + sqrt c)^2]``, with an atom of mass ``1 - alpha`` at 0 when
``alpha < 1``. The Euler-discretized twin (``lr > 0``) replaces ``exp(-(x + lambda) t)`` by
``(1 - lr (x + lambda))^(t/lr)``: it is exactly what ``prcy.simulate`` runs at ``N -> infinity``.
"""
import numpy as np
from scipy.special import roots_legendre

from prcy._xp import array_api_boundary
from prcy.options import check_number


def marchenko_pastur(alpha, n_nodes=200):
    """Nodes and weights ``(x, w)`` of a quadrature for the eigenvalue law of ``A = X^T X / N``
    (``X``: ``alpha N x N`` standard Gaussian). The density vanishes like a square root at both edges:
    the substitution ``x = centre + half sin(theta)`` makes the integrand smooth."""
    alpha = check_number("alpha", alpha, low=0, low_open=True)
    c = 1.0 / alpha
    lo, hi = alpha * (1 - np.sqrt(c)) ** 2, alpha * (1 + np.sqrt(c)) ** 2
    centre, half = (hi + lo) / 2, (hi - lo) / 2
    u, wu = roots_legendre(n_nodes)
    theta = u * np.pi / 2
    x = centre + half * np.sin(theta)
    # density of A at x: sqrt((hi - x)(x - lo)) / (2 pi c x alpha); dx = half cos(theta) dtheta
    dens = np.sqrt(np.clip((hi - x) * (x - lo), 0, None)) / (2 * np.pi * c * x * alpha)
    w = wu * (np.pi / 2) * dens * half * np.cos(theta)
    if alpha < 1:                                   # atom at 0 of mass 1 - alpha
        x, w = np.concatenate([[0.0], x]), np.concatenate([[1.0 - alpha], w])
    return x, w


@array_api_boundary("t")
def linear_ridge_dynamics(t, alpha, m0, ridge, lr=None, n_nodes=200):
    """``(m, q, train_loss)`` at the times ``t`` (array) for gradient flow (``lr=None``) or gradient
    descent with step ``lr`` (the Euler twin; ``t`` must then be multiples of ``lr``)."""
    m0 = check_number("m0", m0, low=0, high=1)
    ridge = check_number("ridge", ridge, low=0)
    t = np.atleast_1d(np.asarray(t, dtype=float))
    if np.any(~np.isfinite(t)) or np.any(t < 0):
        raise ValueError(f"t: {t!r} is not allowed; allowed: finite times >= 0")
    x, w = marchenko_pastur(alpha, n_nodes)
    rate = x + ridge
    fixed = np.divide(x, rate, out=np.zeros_like(x), where=rate > 0)
    if lr is None:
        decay = np.exp(-np.outer(t, rate))
    else:
        lr = check_number("lr", lr, low=0, low_open=True)
        steps = np.rint(t / lr)
        if np.any(np.abs(steps * lr - t) > 1e-9 * np.maximum(1.0, t)):
            raise ValueError(f"t: {t!r} are not multiples of lr = {lr}")
        factor = 1.0 - lr * rate
        if np.any(np.abs(factor) >= 1.0 + 1e-12) and np.any(steps > 0):
            raise ValueError(f"lr: {lr} is unstable for this spectrum (lr (x + ridge) up to {lr * rate.max():.3g} "
                             f">= 2); allowed: lr < {2 / rate.max():.4g}")
        decay = factor[None, :] ** steps[:, None]
    g = fixed + decay * (m0 - fixed)
    m = g @ w
    q = (g ** 2 + decay ** 2) @ w
    loss = (x * ((g - 1.0) ** 2 + decay ** 2)) @ w / (2.0 * alpha)
    return m, q, loss
