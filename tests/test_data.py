"""Simulations on user-supplied data: every array layout and library gives the numbers of plain
C-ordered NumPy input, without a copy where none is needed; bad input is named."""
import numpy as np
import pytest

import prcy
from prcy.data import as_samples, simulate_data
from prcy.kernels import dynamics

OPTS = dict(algorithm="psgd", lr=0.02, batch_fraction=0.5, persistence=0.5, m0=0.3, t_max=2, grid="linear",
            points=11, seeds=3, seed=5)


@pytest.fixture(scope="module")
def data():
    n, m = 40, 100
    w0, X, h0, _, _ = dynamics.generate(np.random.PCG64(np.random.SeedSequence(5, spawn_key=(0, 0))), m, n)
    w = dynamics.initial_weights(np.random.PCG64(np.random.SeedSequence(5, spawn_key=(0, 1))), w0, 0.3, True)
    return X, h0, w0, w


@pytest.fixture(scope="module")
def reference(data):
    X, h0, _, w = data
    return simulate_data(X, labels=h0, w_init=w, **OPTS)


def test_same_run_as_prcy_simulate(data, reference):
    """prcy.simulate draws this very data for seed 0: same selection and noise streams, same numbers."""
    sim = prcy.simulate(n=40, alpha=2.5, **{**OPTS, "seeds": 1})
    np.testing.assert_array_equal(reference.train_loss.values[0], sim.train_loss.values[0])
    np.testing.assert_array_equal(reference.norm.values[0], sim.norm.values[0])
    assert np.isnan(reference.magnetization.values).all()           # no teacher given
    X, _, w0, _ = data
    with_teacher = simulate_data(X, teacher=w0, **OPTS)           # warm start built like prcy.simulate's
    np.testing.assert_allclose(with_teacher.magnetization.values[0], sim.magnetization.values[0], rtol=1e-9)


def _same(ds, reference):
    for name in ("train_loss", "norm"):
        np.testing.assert_array_equal(ds[name].values, reference[name].values)


def test_julia_layouts_need_no_copy(data, reference):
    X, h0, _, w = data
    julia_pythoncall = np.asfortranarray(X.T)      # Julia N x M matrix, columns are samples, column-major
    view, copied = as_samples(julia_pythoncall, sample_axis=1)
    assert not copied and np.shares_memory(view, julia_pythoncall)
    ds = simulate_data(julia_pythoncall, labels=h0, w_init=w, sample_axis=1, **OPTS)
    _same(ds, reference)
    assert ds.attrs["copied_inputs"] == 0
    # DLPack.jl reverses the dimensions: the same memory arrives as a C-ordered M x N array
    reversed_dims = np.from_dlpack(julia_pythoncall.T)
    view, copied = as_samples(reversed_dims, sample_axis=0)
    assert not copied and np.shares_memory(view, julia_pythoncall)


def test_copies_only_when_layout_or_dtype_require_it(data, reference):
    X, h0, _, w = data
    c_ordered_columns = np.ascontiguousarray(X.T)  # N x M but C-ordered: samples are strided
    view, copied = as_samples(c_ordered_columns, sample_axis=1)
    assert copied
    _same(simulate_data(c_ordered_columns, labels=h0, w_init=w, sample_axis=1, **OPTS), reference)
    view, copied = as_samples(np.arange(12, dtype=np.int32).reshape(3, 4))
    assert copied and view.dtype == np.float64
    view, copied = as_samples(X.astype(np.float32))
    assert not copied and view.dtype == np.float32
    view, copied = as_samples(memoryview(X))          # buffer protocol
    assert not copied and np.shares_memory(view, X)

    class Interface:                                   # only __array_interface__ (what PythonCall exposes)
        __array_interface__ = X.__array_interface__
    view, copied = as_samples(Interface())
    assert not copied and np.shares_memory(view, X)


def test_other_array_libraries(data, reference):
    X, h0, _, w = data
    xps = pytest.importorskip("array_api_strict")
    ds = simulate_data(xps.asarray(X), labels=xps.asarray(h0), w_init=xps.asarray(w), **OPTS)
    _same(ds, reference)
    torch = pytest.importorskip("torch")
    t = torch.from_numpy(X)
    view, copied = as_samples(t)
    assert not copied and np.shares_memory(view, X)
    _same(simulate_data(t, labels=torch.from_numpy(h0), w_init=torch.from_numpy(w), **OPTS), reference)


class _OnDevice:
    """Stands in for a GPU array: DLPack export to the host fails."""
    def __dlpack__(self, **kw):
        raise BufferError("the tensor is on device cuda:0")

    def __dlpack_device__(self):
        return (2, 0)


@pytest.mark.parametrize("make, kwargs, match", [
    (lambda X: X.astype(complex), {}, "X: dtype complex128"),
    (lambda X: X[None], {}, "X: 3 dimensions"),
    (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 7, np.nan, X), {}, r"X: entry \(0, 7\) is nan"),
    (lambda X: X, {"sample_axis": 2}, "sample_axis: 2"),
    (lambda X: X, {"labels": None, "teacher": np.ones(3)}, r"teacher: shape \(3,\)"),
    (lambda X: X, {"teacher": np.ones(40)}, "teacher, labels: give exactly one"),
    (lambda X: X, {"w_init": None}, "w_init: needed"),
    (lambda X: _OnDevice(), {}, "X: cannot read .* on the host"),
])
def test_bad_input_is_named(data, make, kwargs, match):
    X, h0, _, w = data
    args = {"labels": h0, "w_init": w, **kwargs}
    with pytest.raises(ValueError, match=match):
        simulate_data(make(X), **args, **OPTS)


def test_read_only_inputs_are_fine(data, reference):
    X, h0, _, w = data
    Xr, hr, wr = (a.copy() for a in (X, h0, w))
    for a in (Xr, hr, wr):
        a.flags.writeable = False
    _same(simulate_data(Xr, labels=hr, w_init=wr, **OPTS), reference)


def test_loss_fields_gradient_on_foreign_arrays(data):
    """Against the formulas of PHYSICS.md, for NumPy and array_api_strict inputs (answers in kind)."""
    from prcy.data import fields, gradient, loss_derivative, loss_second_derivative, loss_value

    X, h0, w0, w = data
    h = X @ w / np.sqrt(40)
    np.testing.assert_allclose(fields(X, w), h, rtol=1e-12)
    np.testing.assert_allclose(fields(np.asfortranarray(X.T), w, sample_axis=1), h, rtol=1e-12)
    np.testing.assert_allclose(loss_value(h, h0), (h**2 - h0**2) ** 2 / 4)
    np.testing.assert_allclose(loss_derivative(h, h0), (h**2 - h0**2) * h)
    np.testing.assert_allclose(loss_second_derivative(h, h0, loss="linear-regression"), np.ones_like(h))
    s = (np.arange(100) % 3 == 0).astype(float)
    expected = 2.0 * ((h**2 - h0**2) * h * s) @ X / np.sqrt(40)
    np.testing.assert_allclose(gradient(X, w, h0, selection=s, grad_scale=2.0), expected, rtol=1e-12)
    xps = pytest.importorskip("array_api_strict")
    out = loss_value(xps.asarray(h), xps.asarray(h0))
    assert type(out).__module__.startswith("array_api_strict")
    np.testing.assert_allclose(np.asarray(out), (h**2 - h0**2) ** 2 / 4)


def test_dmft_estimators_on_user_paths():
    """prcy.dmft.estimators on given paths = the same averages written out in NumPy."""
    from prcy import dmft

    rng = np.random.default_rng(2)
    K, S = 7, 300
    ht, h0 = rng.normal(size=(K, S)), rng.normal(size=S)
    sel = (rng.random((K, S)) < 0.5).astype(np.uint8)
    MC, dnu, nu, mu, loss = dmft.estimators(ht, h0, alpha=3.0, selection=sel, grad_scale=2.0, temperature=0.1)
    g = 2.0 * sel * (ht**2 - h0**2) * ht
    np.testing.assert_allclose(MC, 3.0 * g @ g.T / S, rtol=1e-12)
    np.testing.assert_allclose(dnu, 3.0 * 2.0 * np.mean(sel * (3 * ht**2 - h0**2), axis=1), rtol=1e-12)
    np.testing.assert_allclose(nu, -3.0 * np.mean(g * ht, axis=1) + 0.1, rtol=1e-12)
    np.testing.assert_allclose(mu, 3.0 * np.mean(g * h0, axis=1), rtol=1e-12)
    np.testing.assert_allclose(loss, np.mean((ht**2 - h0**2) ** 2 / 4, axis=1), rtol=1e-12)
    xps = pytest.importorskip("array_api_strict")
    out = dmft.estimators(xps.asarray(ht), xps.asarray(h0), alpha=3.0)
    assert type(out[0]).__module__.startswith("array_api_strict")
    with pytest.raises(ValueError, match="h_tilde"):
        dmft.estimators(ht[0], h0, alpha=3.0)
