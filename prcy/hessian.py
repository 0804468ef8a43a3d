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
vector, from the seed's initialization stream, at the first one; the same stream gives the vectors that
Lanczos restarts from when its Krylov space closes early). A Lanczos run that does not
converge gives NaN with ``hessian_converged = false``, never numbers.

Recorded per (seed, time): ``hessian_eigenvalues`` and ``hessian_teacher_overlap`` (``|v.w0| /
|w0|`` of each unit eigenvector, along ``eig``), ``hessian_multiplier`` (``mu``, sphere),
``hessian_bulk_edge`` and ``hessian_converged``; per seed ``hessian_products`` (Hessian-vector
products used). Times without a Hessian hold NaN.

The bulk edge is the lower edge of the spectrum of the weighted Wishart matrix with the run's weights
``d2v(h_mu; y_mu)`` and inputs independent of them (``prcy.analysis.wishart.lower_edge``, the
deterministic equivalent; the bulk edge of Sarao Mannelli et al. 2020's eq 5), plus ``ridge - mu``.

``--hessian-density B`` adds the histogram of the whole spectrum on ``B`` equal bins of
``[--hessian-low, --hessian-high]`` (``hessian_density(seed, time, bin)``: the fraction of the eigenvalues
in each bin; ``hessian_density_outside``: the fraction outside the range): every eigenvalue by a dense
``eigh`` for ``N <= DENSE_MAX``, stochastic Lanczos quadrature above (``slq_nodes``).

``--label-moments`` records ``E[h^a y^b]`` over the training samples (``label_moment_records``): the
moments of the law ``P(yhat, y)`` of Sarao Mannelli et al. 2020, eq 17.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TOL = 1e-8               # ARPACK's relative tolerance on the eigenvalues
MAX_ITER = 5000          # Lanczos restarts per recording time
DENSE_MAX = 2048         # --hessian-density: dense eigh up to this n, stochastic Lanczos quadrature above
DENSE_BLOCK = 1024       # rows of X per block when the dense Hessian is formed
SLQ_PROBES = 16          # stochastic Lanczos quadrature: random probes ...
SLQ_STEPS = 80           # ... and Lanczos steps per probe (each step one Hessian-vector product)


def record_indices(n_record: int, every: int) -> np.ndarray:
    """The recording indices with a Hessian: every ``every``-th, and the last."""
    return np.unique(np.r_[np.arange(0, n_record, every), n_record - 1])


@dataclass(frozen=True)
class HessianAt:
    """What ``hessian_at`` finds at one point: the ``k`` lowest eigenvalues (ascending) and the teacher
    overlaps of their unit eigenvectors (NaN if not converged), the eigenvectors (``n x k``, None if not
    converged), the multiplier ``mu`` (0 with the ridge), whether Lanczos converged, the products it used,
    and the bulk edge (``prcy.analysis.wishart.lower_edge`` of the weights ``d2v``, shifted like the
    Hessian; NaN where it finds none)."""
    values: np.ndarray
    overlaps: np.ndarray
    vectors: np.ndarray | None
    mu: float
    converged: bool
    products: int
    bulk_edge: float


def curvatures(X, y, w, capsule, *, sphere: bool) -> tuple[np.ndarray, float]:
    """``(d2v(h_mu; y_mu) for every sample, mu)``: the Hessian's weights and, on the sphere, its multiplier
    ``w.G / |w|^2`` (0 with the ridge)."""
    from prcy.kernels import losses

    n = X.shape[1]
    h = (X @ w) / np.sqrt(n)
    c = np.ascontiguousarray(losses.second_derivative(capsule, h, y))
    mu = 0.0
    if sphere:
        G = X.T @ losses.derivative(capsule, h, y) / np.sqrt(n)
        mu = float(w @ G) / float(w @ w)
    return c, mu


def tangent_operator(X, c, w, shift: float, sphere: bool):
    """``(apply, bound, products)``: the Hessian ``A + shift`` as a function of a vector (``A = X^T diag(c)
    X / n`` by ``weighted_gram_product``); on the sphere ``P (A + shift) P + 2 bound e e^T`` (``P`` the
    projector on the tangent space, ``e = w/|w|``: the radial direction above the spectrum, which
    ``bound`` bounds); ``products[0]`` counts the products."""
    from prcy.kernels import dynamics

    m, n = X.shape
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
    return apply, bound, products


def hessian_at(X, y, w, w0, capsule, *, k: int, ridge: float, sphere: bool, start: np.ndarray,
               rng: np.random.Generator) -> HessianAt:
    """The ``k`` lowest eigenpairs at the weights ``w`` (module docstring), Lanczos started from the vector
    ``start``, and the bulk edge (``HessianAt``). ``rng`` draws the vectors Lanczos restarts from when its
    Krylov space closes early (small ``n``), so that the result is reproducible."""
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    from prcy.analysis.theory import ConvergenceError
    from prcy.analysis.wishart import lower_edge

    n = X.shape[1]
    c, mu = curvatures(X, y, w, capsule, sphere=sphere)
    shift = ridge - mu
    try:
        edge = lower_edge(c, n)[0] + shift
    except ConvergenceError:                 # more single-sample components than lower_edge searches
        edge = np.nan
    apply, _, products = tangent_operator(X, c, w, shift, sphere)
    op = LinearOperator((n, n), matvec=apply, dtype=np.float64)
    try:
        values, vectors = eigsh(op, k=k, which="SA", tol=TOL, v0=start, maxiter=MAX_ITER, rng=rng)
    except ArpackNoConvergence:
        return HessianAt(np.full(k, np.nan), np.full(k, np.nan), None, mu, False, products[0], edge)
    order = np.argsort(values)
    values, vectors = values[order], vectors[:, order]
    overlaps = np.abs(vectors.T @ w0) / np.linalg.norm(w0)
    return HessianAt(values, overlaps, vectors, mu, True, products[0], edge)


def tangent_eigenvalues(X, c, w, shift: float, sphere: bool) -> np.ndarray:
    """Every eigenvalue of the Hessian (``A + shift``; on the sphere on the tangent space, ``n - 1`` of
    them) by a dense ``numpy.linalg.eigh``: the tangent space is the span of ``e_2..e_n`` after the
    Householder reflection ``Q = I - 2 u u^T`` that maps ``e = w/|w|`` to ``e_1``."""
    m, n = X.shape
    A = np.zeros((n, n))
    for start in range(0, m, DENSE_BLOCK):            # X^T diag(c) X by row blocks: no copy of X
        rows = X[start:start + DENSE_BLOCK]
        A += rows.T @ (c[start:start + DENSE_BLOCK, None] * rows)
    A /= n
    A[np.diag_indices(n)] += shift
    if sphere:
        e = w / np.linalg.norm(w)
        u = e.copy()
        u[0] -= 1.0
        norm = np.linalg.norm(u)
        if norm > 1e-12:                       # e = e_1 already otherwise
            u /= norm
            Au = A @ u
            A += 4.0 * (u @ Au) * np.outer(u, u) - 2.0 * (np.outer(u, Au) + np.outer(Au, u))
        A = A[1:, 1:]
    return np.linalg.eigvalsh(A)


def slq_nodes(apply, n: int, w, sphere: bool, rng: np.random.Generator, *, probes: int = SLQ_PROBES,
              steps: int = SLQ_STEPS) -> tuple[np.ndarray, np.ndarray]:
    """Stochastic Lanczos quadrature: ``(nodes, weights)`` of a discrete measure close to the spectral
    measure of the operator ``apply`` (``tangent_operator``; on the sphere on the tangent space), weights
    summing to 1. For each of ``probes`` Rademacher vectors (projected on the tangent space, normalized),
    ``steps`` Lanczos steps with full reorthogonalization give a tridiagonal ``T``; its eigenvalues are
    the nodes and the squared first components of its eigenvectors the weights (the Gauss quadrature of
    the probe's spectral measure), averaged over the probes."""
    e = w / np.linalg.norm(w) if sphere else None
    steps = min(steps, n - 1 if sphere else n)
    nodes, weights = [], []
    for _ in range(probes):
        q = rng.choice([-1.0, 1.0], size=n)
        if sphere:
            q -= (e @ q) * e
        q /= np.linalg.norm(q)
        Q = np.zeros((steps, n))
        a, b = np.zeros(steps), np.zeros(steps)
        for j in range(steps):
            Q[j] = q
            r = apply(q)
            a[j] = q @ r
            r -= Q[:j + 1].T @ (Q[:j + 1] @ r)            # full reorthogonalization (twice is enough)
            r -= Q[:j + 1].T @ (Q[:j + 1] @ r)
            if sphere:
                r -= (e @ r) * e
            b[j] = np.linalg.norm(r)
            if j + 1 == steps or b[j] < 1e-10 * max(abs(a[j]), 1.0):
                break
            q = r / b[j]
        size = j + 1
        theta, U = np.linalg.eigh(np.diag(a[:size]) + np.diag(b[:size - 1], 1) + np.diag(b[:size - 1], -1))
        nodes.append(theta)
        weights.append(U[0] ** 2 / probes)
    return np.concatenate(nodes), np.concatenate(weights)


def spectrum_histogram(X, c, w, shift: float, sphere: bool, edges: np.ndarray, rng: np.random.Generator,
                       method: str | None = None) -> tuple[np.ndarray, float, str]:
    """``(fraction of the eigenvalues in each bin of edges, fraction outside them, method)``: by
    ``tangent_eigenvalues`` (method ``"dense"``, the default for ``n <= DENSE_MAX``) or ``slq_nodes``
    (``"slq"``, the default above)."""
    n = X.shape[1]
    method = method or ("dense" if n <= DENSE_MAX else "slq")
    if method == "dense":
        values = tangent_eigenvalues(X, c, w, shift, sphere)
        weights = np.full(values.size, 1.0 / values.size)
    elif method == "slq":
        apply, _, _ = tangent_operator(X, c, w, shift, sphere)
        values, weights = slq_nodes(apply, n, w, sphere, rng)
    else:
        raise ValueError(f"method: {method!r} is not allowed; allowed: dense, slq")
    counts, _ = np.histogram(values, bins=edges, weights=weights)
    outside = float(np.sum(weights[(values < edges[0]) | (values > edges[-1])]))
    return counts, outside, method


def density_edges(recording) -> np.ndarray:
    """The bin edges of ``--hessian-density``: ``hessian_density`` equal bins on ``[hessian_low,
    hessian_high]``."""
    return np.linspace(recording.hessian_low, recording.hessian_high, recording.hessian_density + 1)


def hessian_records(spec, weights: np.ndarray, capsule, data, init_streams) -> dict[str, np.ndarray]:
    """The Hessian variables of a run of ``spec`` from the recorded weights (``n_seeds x n_record x n``,
    ``prcy.kernels.dynamics.run_seeds(save_weights=True)``); ``data(s)``: seed ``s``'s ``(w0, X, y)``;
    ``init_streams[s]``: a fresh copy of its initialization stream (the first Lanczos start, then the
    vectors of Lanczos' restarts and the probes of stochastic Lanczos quadrature, in the order used)."""
    rec = spec.recording
    k, bins = rec.hessian, rec.hessian_density
    n_seeds, n_record, n = weights.shape
    out = {"hessian_eigenvalues": np.full((n_seeds, n_record, k), np.nan),
           "hessian_teacher_overlap": np.full((n_seeds, n_record, k), np.nan),
           "hessian_multiplier": np.full((n_seeds, n_record), np.nan),
           "hessian_bulk_edge": np.full((n_seeds, n_record), np.nan),
           "hessian_converged": np.zeros((n_seeds, n_record), dtype=bool),
           "hessian_products": np.zeros(n_seeds, dtype=np.int64)}
    if bins:
        out["hessian_density"] = np.full((n_seeds, n_record, bins), np.nan)
        out["hessian_density_outside"] = np.full((n_seeds, n_record), np.nan)
        edges = density_edges(rec)
    sphere = spec.constraint.kind == "sphere"
    for s in range(n_seeds):
        w0, X, y = data(s)
        rng = np.random.Generator(init_streams[s])
        start = rng.standard_normal(n)
        for i in record_indices(n_record, rec.hessian_every):
            w = weights[s, i]
            if not np.all(np.isfinite(w)):
                continue
            got = hessian_at(X, y, w, w0, capsule, k=k, ridge=spec.constraint.ridge, sphere=sphere, start=start,
                             rng=rng)
            out["hessian_eigenvalues"][s, i] = got.values
            out["hessian_teacher_overlap"][s, i] = got.overlaps
            out["hessian_multiplier"][s, i] = got.mu if sphere else np.nan
            out["hessian_bulk_edge"][s, i] = got.bulk_edge
            out["hessian_converged"][s, i] = got.converged
            out["hessian_products"][s] += got.products
            if got.vectors is not None:
                start = got.vectors.sum(axis=1)
            if bins:
                c, mu = curvatures(X, y, w, capsule, sphere=sphere)
                counts, outside, _ = spectrum_histogram(X, c, w, spec.constraint.ridge - mu, sphere, edges, rng)
                out["hessian_density"][s, i] = counts
                out["hessian_density_outside"][s, i] = outside
    return out


LABEL_MOMENTS = ((2, 0), (4, 0), (6, 0), (2, 2), (4, 2), (2, 4))   # (a, b) of E[h^a y^b] (--label-moments)


def label_moment_records(weights: np.ndarray, data) -> np.ndarray:
    """``E[h^a y^b]`` over the training samples for each ``(a, b)`` of ``LABEL_MOMENTS`` (``h = x.w/sqrt(N)``
    the student's field, ``y`` the training label), per seed and recording time (``n_seeds x n_record x
    len(LABEL_MOMENTS)``) from the recorded weights; ``data(s)``: seed ``s``'s ``(w0, X, y)``."""
    n_seeds, n_record, n = weights.shape
    out = np.full((n_seeds, n_record, len(LABEL_MOMENTS)), np.nan)
    for s in range(n_seeds):
        _, X, y = data(s)
        fields = (X @ weights[s].T) / np.sqrt(n)          # samples x times
        for j, (a, b) in enumerate(LABEL_MOMENTS):
            out[s, :, j] = np.mean(fields ** a * (y ** b)[:, None], axis=0)
    return out
