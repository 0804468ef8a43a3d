"""The landscape along the dynamics: the lowest eigenpairs of the training loss' Hessian at the
recording times (``--hessian K``, every ``--hessian-every``-th recording time, the last always).

The training loss is ``L(w) = sum_mu v(h_mu; y_mu)``, ``h = x.w/sqrt(N)`` (all samples, whatever the
algorithm's selection), with the ridge ``+ lambda |w|^2 / 2``. Its Hessian is
``A = (1/N) sum_mu d2v(h_mu; y_mu) x_mu x_mu^T (+ lambda I)``. On the sphere ``|w|^2 = N`` the Hessian
of the projected dynamics is ``A - mu I`` restricted to the tangent space ``{v: v.w = 0}`` (Sarao
Mannelli et al. 2020, eq 4), with the multiplier ``mu = w.G / |w|^2``, ``G`` the gradient of ``L``
(its radial part: ``G = mu w`` at a critical point on the sphere).

Matrix-free: ``A v`` is ``prcy.kernels.dynamics.weighted_gram_product`` with the weights
``d2v(h_mu; y_mu)`` (one read of each row). The ``K`` lowest eigenpairs of ``P (A - mu) P`` on the tangent
space (``P`` the projector, ``e = w/|w|``; every vector of the solver is kept orthogonal to ``e``) come from
``lowest_eigenpairs``, in three parts:

1. Warm start: Rayleigh-Ritz on the previous recording time's ``K + GUARD`` lowest Ritz vectors (``K +
   GUARD`` products). The ``GUARD`` vectors above the ``K`` carry an eigenvalue that moves down into the
   ``K`` lowest from just above them. Pairs within ``REACH`` times the tolerance are refined by steps of
   the block Krylov space of those vectors (``block_krylov``: each adds the residuals, one product each).
2. Where those pairs are not certified (below), or at the first recording: thick-restart Lanczos (Wu and
   Simon 2000; at most ``BASIS`` vectors, full reorthogonalization, the projected matrix formed from the
   stored products) from the sum of the warm unit Ritz vectors (a random vector at the first recording),
   until the ``K`` lowest Ritz pairs are certified.
3. The check for a lower eigenvalue: ``CHECK`` Lanczos steps from a random vector on the complement of the
   ``K`` vectors. A Ritz value there below the ``K``-th eigenvalue sends the solver back to 2, started from
   the ``K`` vectors and that Ritz vector. A Lanczos run of 2 that started from a random vector (the first
   recording) and took at least ``K + CHECK`` products is its own check.

Certified: every recorded pair has ``|H v - lambda v| <= TOL |H|`` (``|H|`` estimated from below by the
largest |Ritz value| of the recording's subspaces), computed from the stored products, so that the
eigenvalue is within ``TOL |H|`` of an eigenvalue of ``H`` (within ``(TOL |H|)^2 / gap`` with a gap to the
rest of the spectrum) and the eigenvector's angle to the eigenspace is at most ``TOL |H| / gap``. ``TOL =
1e-7``: at N = 1000, alpha = 10 (``|H|`` ~ 70, the closest of the lowest eigenvalues 0.0075 apart at the
bulk's edge) eigenvalues within 7e-6 (7e-9 with the gap) and eigenvectors, hence teacher overlaps, within
1e-3, far below the spacing of the eigenvalues and their fluctuations from sample to sample. What a
Krylov method cannot certify is that no eigenvalue was missed: the check finds an eigenvalue that moved
well below the ``K`` found (Lanczos' lowest Ritz value approaches an isolated lowest eigenvalue first); one
that moves to just below them, or into their cluster, from outside the warm vectors while those stay
eigenvectors to ``TOL`` can be missed (measured in docs/benchmarks.md, "Hessian observables"). Random
vectors come from the seed's initialization stream. Pairs not certified within ``MAX_PRODUCTS`` products
give NaN with ``hessian_converged = false``, never numbers.

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

TOL = 1e-7               # a recorded eigenpair has |H v - lambda v| <= TOL * |H| (|H|: the largest |Ritz value|)
BASIS = 60               # thick-restart Lanczos: at most this many basis vectors; a restart keeps the lowest half
GUARD = 2                # Ritz vectors above the k lowest carried to the next recording time's warm start
REACH = 10               # warm pairs are refined by block Krylov steps when within REACH * TOL * |H|
CHECK = 16               # Lanczos steps of the search for a lower eigenvalue outside the k found
MAX_PRODUCTS = 5000      # Hessian-vector products per recording time before it is given up (NaN)
DENSE_MAX = 2048         # --hessian-density: dense eigh up to this n, stochastic Lanczos quadrature above
DENSE_BLOCK = 1024       # rows of X per block when the dense Hessian is formed
SLQ_PROBES = 16          # stochastic Lanczos quadrature: random probes ...
SLQ_STEPS = 80           # ... and Lanczos steps per probe (each step one Hessian-vector product)


def record_indices(n_record: int, every: int) -> np.ndarray:
    """The recording indices with a Hessian: every ``every``-th, and the last."""
    return np.unique(np.r_[np.arange(0, n_record, every), n_record - 1])


@dataclass(frozen=True)
class Ritz:
    """The lowest Ritz pairs of a subspace: ``values`` (ascending), ``vectors`` (``n x count``, unit),
    ``residuals`` (``|H v - theta v|`` of each, from the stored products), ``scale`` (the largest |Ritz
    value| of the subspace: a lower bound of ``|H|``) and the products the subspace cost."""
    values: np.ndarray
    vectors: np.ndarray
    residuals: np.ndarray
    scale: float
    products: int


def _orthogonalize(v: np.ndarray, *blocks: np.ndarray) -> np.ndarray:
    """``v`` (a vector, or vectors as columns) minus its projections on the rows of each orthonormal block,
    twice (twice is enough)."""
    for _ in range(2):
        for rows in blocks:
            v = v - rows.T @ (rows @ v)
    return v


def _rayleigh_ritz(W, HW, G, count):
    """``(theta, U, Ritz vectors, residuals)`` of the basis rows ``W`` with products ``HW`` and projected
    matrix ``G = W H W^T``: every eigenvalue of ``G``, its eigenvectors, and the ``count`` lowest Ritz vectors
    (rows) with their residual norms."""
    theta, U = np.linalg.eigh(G)
    count = min(count, theta.size)
    Z = U[:, :count].T @ W
    residuals = np.linalg.norm(U[:, :count].T @ HW - theta[:count, None] * Z, axis=1)
    return theta, U, Z, residuals


def lanczos(apply, q: np.ndarray, fixed: np.ndarray, *, k: int, count: int, tol: float, budget: int,
            rng: np.random.Generator) -> tuple[Ritz, bool]:
    """Thick-restart Lanczos (Wu and Simon 2000) on the operator ``apply`` restricted to the complement of
    the orthonormal rows of ``fixed``, started from ``q``: ``(the count lowest Ritz pairs, converged)``.
    It stops when the ``k`` lowest Ritz pairs have residuals ``<= tol * scale`` (``converged``; ``tol < 0``:
    never) or after ``budget`` products. Every basis vector is orthogonalized against ``fixed`` and the basis
    (full reorthogonalization); the projected matrix ``W H W^T`` is formed from the stored products, so the
    residuals are those of ``H`` itself, not the three-term recurrence's estimates. A full basis (``BASIS``
    vectors) restarts with its ``BASIS // 2`` lowest Ritz pairs and the next Lanczos vector; an exhausted
    Krylov space (an invariant subspace) continues from a random vector of ``rng``."""
    n = q.size
    W, HW = np.empty((BASIS, n)), np.empty((BASIS, n))
    G = np.empty((BASIS, BASIS))
    size, products, scale = 0, 0, 0.0
    while True:
        v = _orthogonalize(q, fixed, W[:size])
        norm = np.linalg.norm(v)
        if norm <= 1e-10 * np.linalg.norm(q):            # the Krylov space is invariant: a fresh direction
            v = _orthogonalize(rng.standard_normal(n), fixed, W[:size])
            norm = np.linalg.norm(v)
        W[size] = v / norm
        HW[size] = apply(W[size])
        products += 1
        G[size, :size + 1] = G[:size + 1, size] = W[:size + 1] @ HW[size]
        size += 1
        theta, U, Z, residuals = _rayleigh_ritz(W[:size], HW[:size], G[:size, :size], count)
        scale = max(scale, float(np.max(np.abs(theta))))
        converged = tol >= 0 and size >= k and bool(np.all(residuals[:k] <= tol * scale))
        if converged or products >= budget:
            return Ritz(theta[:count], Z.T, residuals, scale, products), converged
        q = HW[size - 1]                                  # the next Krylov direction
        if size == BASIS:                                 # thick restart: the lowest Ritz pairs, then q
            q = _orthogonalize(q, fixed, W)
            kept = BASIS // 2
            W[:kept], HW[:kept] = U[:, :kept].T @ W, U[:, :kept].T @ HW
            G[:kept, :kept] = np.diag(theta[:kept])
            size = kept


def block_krylov(apply, warm: np.ndarray, fixed: np.ndarray, *, k: int, count: int, tol: float, scale: float,
                 budget: int) -> Ritz:
    """Rayleigh-Ritz on the block Krylov space of the columns of ``warm`` (on the complement of the orthonormal
    rows of ``fixed``): the space starts as their span (one product each), and each step adds the residuals
    ``H z - theta z`` of the ``count`` lowest Ritz vectors not yet within ``tol * scale`` (``scale``: the larger
    of the argument and the largest |Ritz value|), which span the next block of the Krylov space. It stops
    when the residuals of the ``k`` lowest are within that bound, when one of them is more than ``REACH`` times
    it (a block step divides them by only 1.5-2 at the bulk's edge: Lanczos is cheaper from there), or before
    the basis would pass ``BASIS`` vectors or ``budget`` products: the ``count`` lowest Ritz pairs (``Ritz``;
    its ``scale`` the largest |Ritz value|, without the argument)."""
    W = np.linalg.qr(_orthogonalize(np.asarray(warm, dtype=np.float64), fixed))[0].T
    HW = np.array([apply(row) for row in W])
    while True:
        G = W @ HW.T
        theta, U, Z, residuals = _rayleigh_ritz(W, HW, (G + G.T) / 2, count)
        own = float(np.max(np.abs(theta)))
        bound = tol * max(scale, own)
        found = Ritz(theta[:count], Z.T, residuals, own, W.shape[0])
        if np.all(residuals[:k] <= bound) or np.max(residuals[:k]) > REACH * bound:
            return found
        R = U[:, :count].T @ HW - theta[:count, None] * Z
        R = _orthogonalize(R[residuals > bound].T, np.vstack([fixed, W]))
        if W.shape[0] + R.shape[1] > min(BASIS, budget):
            return found
        Q, diagonal = np.linalg.qr(R)
        Q = Q[:, np.abs(np.diag(diagonal)) > 1e-10 * np.max(np.abs(np.diag(diagonal)))]
        W = np.vstack([W, Q.T])
        HW = np.vstack([HW, [apply(column) for column in Q.T]])


def lowest_eigenpairs(apply, n: int, k: int, *, e: np.ndarray | None, rng: np.random.Generator,
                      warm: np.ndarray | None = None, scale: float = 0.0, tol: float = TOL, guard: int = GUARD,
                      check: int = CHECK, max_products: int = MAX_PRODUCTS) -> tuple[Ritz, bool]:
    """The ``k`` lowest eigenpairs of the symmetric operator ``apply`` on the complement of the unit vector
    ``e`` (the tangent space; ``None``: all of ``R^n``) and the ``guard`` Ritz pairs above them (module
    docstring): ``(Ritz, converged)``.

    ``warm`` (``n x j``, the previous recording's Ritz vectors) is refined first by ``block_krylov``; where
    its ``k`` lowest pairs are not within ``tol`` times the larger of ``scale`` (the previous recording's
    ``|H|`` estimate) and their own values, or without ``warm``, thick-restart Lanczos (``lanczos``) runs from
    the sum of those unit Ritz vectors (a random vector of ``rng`` without ``warm``).
    Then (unless that Lanczos run started from a random vector and took at least ``k + check`` products)
    ``check`` Lanczos steps from a random vector on the complement of the ``k`` vectors: the pairs are
    returned when their residuals are ``<= tol * |H|`` (``|H|`` estimated by the largest |Ritz value| of this
    call's subspaces, ``scale`` not counted) and no Ritz value of the check lies below the ``k``-th value.
    Otherwise Lanczos runs again from the sum of the ``k`` vectors (and the check's lowest Ritz vector when it
    found a lower value), and the check follows again. ``converged`` is false (and the values NaN) when
    ``max_products`` products do not give that."""
    fixed = (e / np.linalg.norm(e))[None, :] if e is not None else np.empty((0, n))
    count = k + guard
    products = 0
    found = None                      # the candidate Ritz pairs
    if warm is not None:
        found = block_krylov(apply, warm, fixed, k=k, count=count, tol=tol, scale=scale, budget=max_products)
        products += found.products
    if found is None or not np.all(found.residuals[:k] <= tol * max(scale, found.scale)):
        if found is not None and products >= max_products:    # the warm start used them all
            return _not_converged(n, k, found.scale, products)
        q = rng.standard_normal(n) if found is None else found.vectors[:, :k].sum(axis=1)
        found, converged = lanczos(apply, q, fixed, k=k, count=count, tol=tol,
                                   budget=max_products - products, rng=rng)
        products += found.products
        if not converged:
            return _not_converged(n, k, found.scale, products)
        if warm is None and found.products >= k + check:   # from a random vector: its own check
            return Ritz(found.values, found.vectors, found.residuals, found.scale, products), True
    norm_h = found.scale
    while products + check <= max_products:
        outside, _ = lanczos(apply, rng.standard_normal(n), np.vstack([fixed, found.vectors[:, :k].T]), k=1,
                             count=1, tol=-1.0, budget=check, rng=rng)
        products += outside.products
        norm_h = max(norm_h, found.scale, outside.scale)
        lower = outside.values[0] < found.values[k - 1]
        if not lower and np.all(found.residuals[:k] <= tol * norm_h):
            return Ritz(found.values, found.vectors, found.residuals, norm_h, products), True
        if products >= max_products:
            break
        q = found.vectors[:, :k].sum(axis=1) + (outside.vectors[:, 0] if lower else 0.0)
        found, converged = lanczos(apply, q, fixed, k=k, count=count, tol=tol, budget=max_products - products, rng=rng)
        products += found.products
        if not converged:
            break
    return _not_converged(n, k, norm_h, products)


def _not_converged(n: int, k: int, scale: float, products: int) -> tuple[Ritz, bool]:
    """What ``lowest_eigenpairs`` returns without ``k`` certified pairs: NaN values, no vectors."""
    return Ritz(np.full(k, np.nan), np.empty((n, 0)), np.full(k, np.nan), scale, products), False


@dataclass(frozen=True)
class HessianAt:
    """What ``hessian_at`` finds at one point: the ``k`` lowest eigenvalues (ascending) and the teacher
    overlaps of their unit eigenvectors (NaN if not converged), the ``k + GUARD`` lowest Ritz vectors (``n x
    (k + GUARD)``, the eigenvectors first; None if not converged: the next recording's warm start), the
    estimate of ``|H|`` (the largest |Ritz value| seen), the multiplier ``mu`` (0 with the ridge), whether the
    eigenpairs converged, the products used, and the bulk edge (``prcy.analysis.wishart.lower_edge`` of the
    weights ``d2v``, shifted like the Hessian; NaN where it finds none)."""
    values: np.ndarray
    overlaps: np.ndarray
    ritz: np.ndarray | None
    scale: float
    mu: float
    converged: bool
    products: int
    bulk_edge: float

    @property
    def vectors(self) -> np.ndarray | None:
        """The ``k`` unit eigenvectors (``n x k``), None if not converged."""
        return None if self.ritz is None else self.ritz[:, :self.values.size]


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


def hessian_at(X, y, w, w0, capsule, *, k: int, ridge: float, sphere: bool, rng: np.random.Generator,
               warm: np.ndarray | None = None, scale: float = 0.0, max_products: int = MAX_PRODUCTS) -> HessianAt:
    """The ``k`` lowest eigenpairs at the weights ``w`` by ``lowest_eigenpairs`` (module docstring), warm
    started from ``warm`` (the previous recording's ``HessianAt.ritz``, with its ``scale``) and drawing its
    random vectors from ``rng``, and the bulk edge (``HessianAt``)."""
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
    found, converged = lowest_eigenpairs(apply, n, k, e=w if sphere else None, rng=rng, warm=warm, scale=scale,
                                         max_products=max_products)
    if not converged:
        return HessianAt(np.full(k, np.nan), np.full(k, np.nan), None, found.scale, mu, False, products[0], edge)
    overlaps = np.abs(found.vectors[:, :k].T @ w0) / np.linalg.norm(w0)
    return HessianAt(found.values[:k], overlaps, found.vectors, found.scale, mu, True, products[0], edge)


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
    ``init_streams[s]``: a fresh copy of its initialization stream (at each recording time the random
    vectors of ``lowest_eigenpairs``, then the probes of stochastic Lanczos quadrature)."""
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
        warm, scale = None, 0.0
        for i in record_indices(n_record, rec.hessian_every):
            w = weights[s, i]
            if not np.all(np.isfinite(w)):
                continue
            got = hessian_at(X, y, w, w0, capsule, k=k, ridge=spec.constraint.ridge, sphere=sphere, rng=rng,
                             warm=warm, scale=scale)
            out["hessian_eigenvalues"][s, i] = got.values
            out["hessian_teacher_overlap"][s, i] = got.overlaps
            out["hessian_multiplier"][s, i] = got.mu if sphere else np.nan
            out["hessian_bulk_edge"][s, i] = got.bulk_edge
            out["hessian_converged"][s, i] = got.converged
            out["hessian_products"][s] += got.products
            if got.converged:
                warm, scale = got.ritz, got.scale
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
