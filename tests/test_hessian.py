"""Hessian observables (``prcy.hessian``): the matrix-free Hessian against a dense NumPy Hessian, the
K lowest eigenpairs against ``numpy.linalg.eigh`` on N = 200 snapshots, the spherical multiplier against
second differences of the loss along great circles, and the records of ``prcy.simulate --hessian``."""
import numpy as np
import pytest

import prcy
from prcy.hessian import hessian_at, record_indices
from prcy.kernels import dynamics, losses


def _snapshot(seed=5, n=200, alpha=4.0, loss="phase-retrieval"):
    w0, X, y, _, _ = dynamics.generate(np.random.PCG64(seed), int(alpha * n), n, 0)
    w = dynamics.initial_weights(np.random.PCG64(seed + 1), w0, 0.4, True)
    return w0, X, y, w, losses.capsule(loss)


def _dense(X, y, w, cap, ridge, sphere):
    """The dense Hessian of sum_mu v(x_mu.w/sqrt(n); y_mu) + ridge |w|^2/2 (and, on the sphere, minus mu,
    projected on the tangent space) in an orthonormal basis of that space."""
    n = X.shape[1]
    h = X @ w / np.sqrt(n)
    A = X.T @ (losses.second_derivative(cap, h, y)[:, None] * X) / n + ridge * np.eye(n)
    if not sphere:
        return A, np.eye(n), 0.0
    G = X.T @ losses.derivative(cap, h, y) / np.sqrt(n)
    mu = w @ G / (w @ w)
    Q, _ = np.linalg.qr(np.column_stack([w, np.eye(n)[:, :n - 1]]))
    B = Q[:, 1:]                                        # orthonormal basis of {v: v.w = 0}
    return B.T @ (A - mu * np.eye(n)) @ B, B, mu


@pytest.mark.parametrize("sphere", [True, False])
def test_lowest_eigenpairs_against_eigh(sphere):
    w0, X, y, w, cap = _snapshot()
    ridge = 0.0 if sphere else 0.3
    H, B, mu = _dense(X, y, w, cap, ridge, sphere)
    vals, vecs = np.linalg.eigh(H)
    got, overlaps, vectors, got_mu, ok, products = hessian_at(X, y, w, w0, cap, k=4, ridge=ridge, sphere=sphere,
                                                              start=np.ones(200))
    assert ok and products > 0
    np.testing.assert_allclose(got, vals[:4], rtol=1e-8, atol=1e-8)
    full = B @ vecs[:, :4]
    np.testing.assert_allclose(np.abs(np.sum(vectors * full, axis=0)), 1.0, atol=1e-6)   # same eigenvectors
    np.testing.assert_allclose(overlaps, np.abs(full.T @ w0) / np.linalg.norm(w0), atol=1e-6)
    assert got_mu == pytest.approx(mu, rel=1e-12) if sphere else got_mu == 0.0
    if sphere:
        assert np.max(np.abs(vectors.T @ w)) < 1e-6 * np.linalg.norm(w)            # tangent to the sphere


def test_hessian_vector_product_against_the_dense_hessian():
    w0, X, y, w, cap = _snapshot(seed=8, n=120)
    n = X.shape[1]
    h = X @ w / np.sqrt(n)
    c = losses.second_derivative(cap, h, y)
    dense = X.T @ (c[:, None] * X) / n
    v = np.random.default_rng(0).standard_normal(n)
    np.testing.assert_allclose(dynamics.weighted_gram_product(X, c, v), dense @ v, rtol=1e-10, atol=1e-10)


def test_multiplier_by_second_differences_along_great_circles():
    """On the sphere |w|^2 = n, L(cos t w + sin t sqrt(n) u) has second derivative n u.(A - mu) u at t = 0 for
    a unit tangent u: the Hessian that the dynamics sees, with its multiplier."""
    w0, X, y, w, cap = _snapshot(seed=11, n=150)
    n = X.shape[1]
    H, B, mu = _dense(X, y, w, cap, 0.0, True)

    def loss(v):
        return float(np.sum(losses.value(cap, X @ v / np.sqrt(n), y)))
    rng = np.random.default_rng(2)
    for _ in range(3):
        a = rng.standard_normal(n - 1)
        a /= np.linalg.norm(a)
        u = B @ a
        t = 1e-4
        second = (loss(np.cos(t) * w + np.sin(t) * np.sqrt(n) * u) - 2 * loss(w)
                  + loss(np.cos(t) * w - np.sin(t) * np.sqrt(n) * u)) / t ** 2
        assert second / n == pytest.approx(a @ H @ a, rel=1e-4)


def test_simulate_records_the_hessian_on_a_thinned_grid():
    ds = prcy.simulate(alpha=6, n=120, m0=0.3, lr=0.02, t_max=20, points=7, seeds=2, algorithm="gd", hessian=3,
                       hessian_every=3)
    values = ds.hessian_eigenvalues
    assert values.dims == ("seed", "time", "eig") and values.sizes["eig"] == 3
    rows = record_indices(ds.sizes["time"], 3)
    assert list(rows) == [0, 3, 6]
    computed = np.isfinite(values.values).all(axis=(0, 2))
    assert list(np.flatnonzero(computed)) == list(rows) and bool(ds.hessian_converged.isel(time=rows).all())
    assert np.all(np.diff(values.values[:, rows], axis=-1) >= 0)               # ascending along eig
    solved = ds.success.values
    if solved.any():                                   # at a minimum on the sphere every eigenvalue is >= 0
        assert np.all(values.values[solved][:, -1] > -1e-6)
    assert np.all(ds.hessian_products.values > 0)
    with pytest.raises(ValueError, match="hessian: 3 is not allowed in a sweep"):
        from prcy.sweep import Sweep
        Sweep.from_options({"alpha": [2, 3], "hessian": 3, "n": 20, "t_max": 0.1, "seeds": 1})
