"""The spectral start of phase retrieval: ``w(0)`` the leading eigenvector of

    D = (1/M) sum_mu T(y_mu) x_mu x_mu^T

(``T`` a preprocessing of ``prcy.analysis.spectral``), scaled to ``|w(0)|^2 = N``. Matrix-free: each
product ``D v`` is one ``prcy.kernels.dynamics.weighted_gram_product`` (a gradient pass of the quadratic
form ``T(y) h^2 / 2``, each row read once), driven by ARPACK's Lanczos (``scipy.sparse.linalg.eigsh``,
largest algebraic eigenvalue) from a start vector drawn from the seed's initialization stream, so the
start is reproducible seed by seed. A Lanczos run that does not converge is an error naming the seed,
never a start from an unconverged vector.
"""
from __future__ import annotations

import numpy as np

TOL = 1e-8                # ARPACK's relative tolerance on the eigenvalue
MAX_PRODUCTS = 20000      # products D v before giving up


def spectral_start(X, y, preprocessing: str, rng: np.random.BitGenerator, *, seed_index: int = 0):
    """``(w, top eigenvalue, products)`` for the data ``X`` (``M x N``), labels ``y``; ``rng``: the
    seed's initialization stream (its first ``N`` normals start Lanczos)."""
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    from prcy.analysis.spectral import preprocess
    from prcy.kernels.dynamics import weighted_gram_product

    m, n = X.shape
    T = np.ascontiguousarray(preprocess(preprocessing, y), dtype=np.float64)
    scale = n / m
    products = [0]

    def matvec(v):
        products[0] += 1
        return weighted_gram_product(X, T, np.ascontiguousarray(v, dtype=np.float64).ravel()) * scale

    op = LinearOperator((n, n), matvec=matvec, dtype=np.float64)
    v0 = np.random.Generator(rng).standard_normal(n)
    try:
        values, vectors = eigsh(op, k=1, which="LA", tol=TOL, v0=v0, maxiter=MAX_PRODUCTS)
    except ArpackNoConvergence:
        raise RuntimeError(f"init spectral: Lanczos did not converge for seed {seed_index} within {MAX_PRODUCTS} "
                           f"products (preprocessing {preprocessing!r}, M = {m}, N = {n})") from None
    w = vectors[:, 0] * np.sqrt(n) / np.linalg.norm(vectors[:, 0])
    return w, float(values[0]), products[0]
