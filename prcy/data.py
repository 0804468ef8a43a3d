"""Simulations on data you bring: inputs ``X``, a teacher or labels, initial weights, from any array
library (NumPy, torch, jax, array_api_strict, Julia arrays through PythonCall or DLPack.jl); and the
loss, fields and gradient evaluated on such arrays (``loss_value``, ``loss_derivative``,
``loss_second_derivative``, ``fields``, ``gradient``: results in the caller's namespace).

``prcy.data.simulate_data(X, teacher=..., sample_axis=0, algorithm="psgd", ...)`` runs the same kernels
as ``prcy.simulate`` on the given data and returns the same kind of dataset.

When is ``X`` copied? Never when, after taking the samples along ``sample_axis``, it is a float64 or
float32 array whose samples are contiguous rows: a C-ordered ``M x N`` array with ``sample_axis=0``,
or an ``N x M`` column-major (Fortran-ordered) array with ``sample_axis=1`` — which is how
PythonCall.jl hands over a Julia ``N x M`` matrix whose columns are samples; DLPack.jl reverses the
dimensions, so the same Julia matrix arrives as a C-ordered ``M x N`` array: ``sample_axis=0``. Arrays of
other libraries are read through DLPack (zero-copy on the CPU). A copy is made, and recorded in the
dataset's ``copied_inputs`` attribute, when the dtype is another real type (converted to float64) or
the samples are not contiguous (e.g. a C-ordered ``N x M`` array with ``sample_axis=1``). ``teacher``,
``labels`` and ``w_init`` are small and always converted to float64.
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import xarray as xr

from prcy._xp import array_api_boundary, real_array


def _finite(arr: np.ndarray, name: str) -> None:
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise ValueError(f"{name}: entry {bad} is {arr[bad]}; allowed: finite numbers only")


def as_samples(X, sample_axis: int = 0) -> tuple[np.ndarray, bool]:
    """``(Xs, copied)``: ``X`` as a C-contiguous ``M x N`` float64/float32 NumPy array with one sample
    per row, and whether that needed a copy (see the module docstring for when)."""
    arr = real_array(X, "X")
    if arr.ndim != 2:
        raise ValueError(f"X: {arr.ndim} dimensions (shape {arr.shape}); allowed: a matrix, samples along "
                         f"sample_axis")
    if sample_axis not in (0, 1):
        raise ValueError(f"sample_axis: {sample_axis!r} is not allowed; allowed: 0 (rows are samples) or 1 "
                         f"(columns are samples, e.g. a Julia N x M matrix)")
    view = arr if sample_axis == 0 else arr.T
    copied = False
    if view.dtype not in (np.float64, np.float32):
        view, copied = view.astype(np.float64), True
    if not view.flags.c_contiguous:
        view, copied = np.ascontiguousarray(view), True
    if view.shape[0] < 1 or view.shape[1] < 1:
        raise ValueError(f"X: shape {arr.shape} holds no sample or no feature")
    _finite(view, "X")
    return view, copied


def _vector(value, name: str, length: int) -> np.ndarray:
    arr = real_array(value, name)
    if arr.ndim != 1 or arr.shape[0] != length:
        raise ValueError(f"{name}: shape {arr.shape} does not match ({length},)")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    _finite(arr, name)
    return arr


TEACHER_NORM_RTOL = 1e-6     # relative tolerance on |teacher|^2 = N


def simulate_data(X, *, teacher=None, labels=None, w_init=None, sample_axis: int = 0, seeds: int = 1,
                  seed: int = 0, threads: int | None = None, loss=None, **options) -> xr.Dataset:
    """Run ``algorithm`` (and the other options of ``prcy.simulate``: ``lr``, ``batch_fraction``,
    ``persistence``, ``temperature``, ``constraint``, ``ridge``, ``m0``, ``t_max``, ``points``, ``grid``,
    ``tol``, ...) on the given data; ``seeds`` runs differ only in their selection and Langevin noise
    (stream ``SeedSequence(seed, spawn_key=(i, 2))``, as in ``prcy.simulate``).

    ``X``: ``M x N`` with ``sample_axis=0`` or ``N x M`` with ``sample_axis=1``. ``teacher`` (length N,
    fields ``h0 = X teacher / sqrt(N)``, labels ``y`` from them as the problem says,
    ``prcy.kernels.problems``; its squared norm must be ``N``, within ``TEACHER_NORM_RTOL``) or
    ``labels`` (length M: the labels ``y`` themselves, e.g. ``|h0|`` for phase retrieval). ``w_init``
    (length N): the initial weights; without it, the warm start of eq 11 around ``teacher`` with ``m0``
    (``teacher`` needed). Without a teacher the magnetization is NaN. Returns a dataset over
    ``(seed, time)`` as ``prcy.simulate`` does.
    """
    from prcy.kernels import dynamics, parallel
    from prcy.kernels.problems import labels as problem_labels
    from prcy.options import GRADIENT_ALGORITHMS
    from prcy.problems import resolve_loss
    from prcy.simulate import STREAMS, dataset, kernel_parameters, temperature_steps
    from prcy.specs import SimulationSpec

    Xs, copied = as_samples(X, sample_axis)
    m, n = Xs.shape
    if (teacher is None) == (labels is None):
        raise ValueError("teacher, labels: give exactly one (teacher: length N; labels: length M)")
    if options.get("hidden", 1) != 1:           # before the spec, whose committee checks would speak first
        raise ValueError(f"hidden: {options['hidden']!r} is not allowed on given data (simulate_data runs a single "
                         f"unit); allowed: 1 (committees run on the simulations' data: prcy.simulate)")
    spec = SimulationSpec.from_flat(alpha=m / n, n=n, seeds=seeds, seed=seed, **options)
    if spec.algorithm.name == "amp":
        raise ValueError(f"algorithm: 'amp' does not run on given data (simulate_data); allowed: "
                         f"{', '.join(GRADIENT_ALGORITHMS)} (AMP runs on the simulations' data: prcy.simulate)")
    if teacher is not None:
        w0 = _vector(teacher, "teacher", n)
        norm = float(w0 @ w0) / n
        if not abs(norm - 1.0) <= TEACHER_NORM_RTOL:
            raise ValueError(f"teacher: squared norm {norm:.6g} N; allowed: N (within {TEACHER_NORM_RTOL:g}), the "
                             f"convention of the fields h0 = X teacher / sqrt(N) and of m = w.teacher / N; "
                             f"scale it by sqrt(N) / |teacher|")
        y = problem_labels(spec.problem.name, np.asarray(Xs @ w0, dtype=np.float64) / math.sqrt(n),
                           spec.problem.onset)
    else:
        y = _vector(labels, "labels", m)
        w0 = np.zeros(n)
    if spec.problem.m != m:
        raise ValueError(f"X: {m} samples in dimension {n} cannot be represented as alpha * n")
    if w_init is not None:
        w = _vector(w_init, "w_init", n)
    elif teacher is None:
        raise ValueError("w_init: needed when no teacher is given (the warm start is built around the teacher)")
    else:
        w = dynamics.initial_weights(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(0, STREAMS["init"]))),
                                     w0, spec.init.m0, spec.constraint.kind == "sphere", init=spec.init.kind,
                                     init_variance=spec.init.variance)
    capsule, loss_name = resolve_loss(spec.problem.name, loss if loss is not None else spec.problem.loss,
                                      smoothing=spec.problem.smoothing, onset=spec.problem.onset)
    a = spec.algorithm
    steps = spec.recording.steps(a.lr)
    p_on, p_off = a.switching_probabilities()
    params = kernel_parameters(spec)
    temp_starts, temp_values = temperature_steps(spec)
    empty = np.empty((0, n), dtype=Xs.dtype)

    def one(i):
        rng = np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(i, STREAMS["dynamics"])))
        return dynamics.run_trajectory(capsule, Xs, y, w0, w, empty, np.empty(0), selection=a.selection,
                                       ell=a.batch_fraction, p_on=p_on, p_off=p_off, params=params,
                                       record_steps=steps, temp_starts=temp_starts, temp_values=temp_values,
                                       rng=rng)

    n_threads = parallel.n_threads(threads)
    with ThreadPoolExecutor(max_workers=n_threads) as pool:          # the kernel releases the GIL
        runs = list(pool.map(one, range(seeds)))
    out = {k: np.concatenate([r[k] for r in runs]) for k in runs[0] if k != "w"}
    if teacher is None:
        out["magnetization"][:] = np.nan
    ds = dataset(spec, out, steps, n_threads)
    ds.attrs.update(loss=loss_name, data="user", copied_inputs=int(copied), sample_axis=sample_axis,
                    rng_spawn_keys="SeedSequence(rng_root_seed, spawn_key=(seed, 2)): selection and noise; "
                                   "data and initial weights given by the user")
    return ds


# ----------------------------------------------------------------------------------------------
# the loss, fields and gradient on user arrays (results in the caller's namespace)


def _loss_eval(f, h, y, loss):
    """``f`` (a twin of ``prcy.kernels.losses``) of ``loss`` (default phase retrieval) on user arrays."""
    from prcy.problems import resolve_loss

    capsule, _ = resolve_loss("phase-retrieval", loss)
    return f(capsule, real_array(h, "h"), real_array(y, "y"))


@array_api_boundary("h", "y")
def loss_value(h, y, loss=None):
    """``v(h; y)`` elementwise: field ``h``, label ``y`` (``loss``: a built-in loss name without
    parameters, default phase retrieval, or a ``"prcy.Loss.v2"`` capsule)."""
    from prcy.kernels.losses import value
    return _loss_eval(value, h, y, loss)


@array_api_boundary("h", "y")
def loss_derivative(h, y, loss=None):
    """``dv/dh`` elementwise."""
    from prcy.kernels.losses import derivative
    return _loss_eval(derivative, h, y, loss)


@array_api_boundary("h", "y")
def loss_second_derivative(h, y, loss=None):
    """``d^2v/dh^2`` elementwise."""
    from prcy.kernels.losses import second_derivative
    return _loss_eval(second_derivative, h, y, loss)


@array_api_boundary("X", "w")
def fields(X, w, sample_axis: int = 0):
    """``h_mu = x_mu . w / sqrt(N)`` for every sample (``X`` as in ``simulate_data``)."""
    Xs, _ = as_samples(X, sample_axis)
    w = _vector(w, "w", Xs.shape[1])
    return (Xs @ w.astype(Xs.dtype, copy=False)).astype(np.float64) / math.sqrt(Xs.shape[1])


@array_api_boundary("X", "w", "y", "selection")
def gradient(X, w, y, sample_axis: int = 0, selection=None, grad_scale: float = 1.0, loss=None):
    """The data term of one step's gradient, ``grad_scale * sum_mu s_mu dv(h_mu; y_mu) x_mu / sqrt(N)``
    (``selection``: 0/1 per sample, default all), as the simulation kernels compute it."""
    Xs, _ = as_samples(X, sample_axis)
    m, n = Xs.shape
    y = _vector(y, "y", m)
    h = fields(Xs, w)
    coef = loss_derivative(h, y, loss) * grad_scale
    if selection is not None:
        coef = coef * _vector(selection, "selection", m)
    return (coef @ Xs) / math.sqrt(n)
