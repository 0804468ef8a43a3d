"""The landscape along the dynamics: the lowest eigenpairs of the training loss' Hessian at the
recording times (``--hessian K``, every ``--hessian-every``-th recording time, the last always).

The training loss is ``L(w) = sum_mu v(h_mu; y_mu)``, ``h = x.w/sqrt(N)`` (all samples, whatever the
algorithm's selection), with the ridge ``+ lambda |w|^2 / 2``. Its Hessian is
``A = (1/N) sum_mu d2v(h_mu; y_mu) x_mu x_mu^T (+ lambda I)``. On the sphere ``|w|^2 = N`` the Hessian
of the projected dynamics is ``A - mu I`` restricted to the tangent space ``{v: v.w = 0}`` (Sarao
Mannelli et al. 2020, eq 4), with the multiplier ``mu = w.G / |w|^2``, ``G`` the gradient of ``L``
(its radial part: ``G = mu w`` at a critical point on the sphere).

Matrix-free: ``A v`` is ``prcy.kernels.dynamics.weighted_gram_product`` with the weights
``d2v(h_mu; y_mu)`` (one read of each row), and the ``K`` lowest eigenpairs come from ARPACK's Lanczos
(``scipy.sparse.linalg.eigsh``, smallest algebraic) on ``P (A - mu) P + b e e^T`` (``P`` the projector
on the tangent space, ``e = w/|w|``, ``b`` twice a bound of the spectrum, which puts the radial
direction above it), started from the sum of the previous recording time's eigenvectors (a random
vector, from the seed's initialization stream, at the first one). A Lanczos run that does not
converge gives NaN with ``hessian_converged = false``, never numbers.

Recorded per (seed, time): ``hessian_eigenvalues`` and ``hessian_teacher_overlap`` (``|v.w0| /
|w0|`` of each unit eigenvector, along ``eig``), ``hessian_multiplier`` (``mu``, sphere) and
``hessian_converged``; per seed ``hessian_products`` (Hessian-vector products used). Times without a
Hessian hold NaN.
"""
from __future__ import annotations

import numpy as np

TOL = 1e-8               # ARPACK's relative tolerance on the eigenvalues
MAX_ITER = 5000          # Lanczos restarts per recording time


def record_indices(n_record: int, every: int) -> np.ndarray:
    """The recording indices with a Hessian: every ``every``-th, and the last."""
    return np.unique(np.r_[np.arange(0, n_record, every), n_record - 1])


def hessian_at(X, y, w, w0, capsule, *, k: int, ridge: float, sphere: bool, start: np.ndarray):
    """``(eigenvalues, teacher overlaps, eigenvectors, multiplier, converged, products)`` of the ``k``
    lowest eigenpairs at the weights ``w`` (module docstring), Lanczos started from the vector
    ``start``; not converged: NaN eigenvalues and overlaps, ``converged`` False."""
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    from prcy.kernels import dynamics, losses

    m, n = X.shape
    h = (X @ w) / np.sqrt(n)
    c = np.ascontiguousarray(losses.second_derivative(capsule, h, y))
    mu = 0.0
    if sphere:
        G = X.T @ losses.derivative(capsule, h, y) / np.sqrt(n)
        mu = float(w @ G) / float(w @ w)
    shift = ridge - mu
    # a bound of the spectrum: |A| <= max|d2v| |X|^2 / n, |X|^2 ~ (sqrt(m) + sqrt(n))^2 (10% margin)
    bound = float(np.max(np.abs(c))) * 1.1 * (1.0 + np.sqrt(m / n)) ** 2 + abs(shift) + 1.0
    e = w / np.linalg.norm(w)
    products = [0]

    def hvp(v):
        products[0] += 1
        return dynamics.weighted_gram_product(X, c, v) + shift * v

    def apply(v):
        v = np.ascontiguousarray(v, dtype=np.float64).ravel()
        if not sphere:
            return hvp(v)
        radial = e @ v
        out = hvp(v - radial * e)
        return out - (e @ out) * e + 2.0 * bound * radial * e       # the radial direction above the spectrum

    op = LinearOperator((n, n), matvec=apply, dtype=np.float64)
    try:
        values, vectors = eigsh(op, k=k, which="SA", tol=TOL, v0=start, maxiter=MAX_ITER)
    except ArpackNoConvergence:
        return np.full(k, np.nan), np.full(k, np.nan), None, mu, False, products[0]
    order = np.argsort(values)
    values, vectors = values[order], vectors[:, order]
    overlaps = np.abs(vectors.T @ w0) / np.linalg.norm(w0)
    return values, overlaps, vectors, mu, True, products[0]


def hessian_records(spec, weights: np.ndarray, capsule, data, init_streams) -> dict[str, np.ndarray]:
    """The Hessian variables of a run of ``spec`` from the recorded weights (``n_seeds x n_record x n``,
    ``prcy.kernels.dynamics.run_seeds(save_weights=True)``); ``data(s)``: seed ``s``'s ``(w0, X, y)``;
    ``init_streams[s]``: a fresh copy of its initialization stream (the first Lanczos start)."""
    k = spec.recording.hessian
    n_seeds, n_record, n = weights.shape
    out = {"hessian_eigenvalues": np.full((n_seeds, n_record, k), np.nan),
           "hessian_teacher_overlap": np.full((n_seeds, n_record, k), np.nan),
           "hessian_multiplier": np.full((n_seeds, n_record), np.nan),
           "hessian_converged": np.zeros((n_seeds, n_record), dtype=bool),
           "hessian_products": np.zeros(n_seeds, dtype=np.int64)}
    sphere = spec.constraint.kind == "sphere"
    for s in range(n_seeds):
        w0, X, y = data(s)
        start = np.random.Generator(init_streams[s]).standard_normal(n)
        for i in record_indices(n_record, spec.recording.hessian_every):
            w = weights[s, i]
            if not np.all(np.isfinite(w)):
                continue
            values, overlaps, vectors, mu, ok, products = hessian_at(
                X, y, w, w0, capsule, k=k, ridge=spec.constraint.ridge, sphere=sphere, start=start)
            out["hessian_eigenvalues"][s, i] = values
            out["hessian_teacher_overlap"][s, i] = overlaps
            out["hessian_multiplier"][s, i] = mu if sphere else np.nan
            out["hessian_converged"][s, i] = ok
            out["hessian_products"][s] += products
            if vectors is not None:
                start = vectors.sum(axis=1)
    return out
