"""Simulation driver: specs -> kernel call -> labelled ``xarray.Dataset``.

Random numbers: one ``SeedSequence(seed, spawn_key=(i, stream))`` per seed index ``i`` and stream
(0 data, 1 initialization, 2 dynamics), each feeding a ``PCG64``. A seed's trajectory therefore
depends only on ``(seed, i, spec)``: not on the number of threads, on how many other seeds run, or on
their order. With ``share_data`` every seed uses the data stream of seed index 0.
"""
from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import xarray as xr

from prcy.hessian import DENSE_BLOCK, DENSE_MAX
from prcy.interrupt import run_interruptible
from prcy.options import CLASSIFIERS, MIXTURES, SIMULATION, context, not_applicable_error
from prcy.specs import SimulationSpec, specs_from_options

SCHEMA = "prcy-simulation/1"
STREAMS = {"data": 0, "init": 1, "dynamics": 2}

# metadata declared once next to each output variable, copied to the file
VARIABLES = {
    "magnetization": dict(long_name="magnetization w.w0/N", units="1"),
    "norm": dict(long_name="squared norm |w|^2/N", units="1"),
    "train_loss": dict(long_name="training loss per sample", units="1",
                       description="sum_mu v(h_mu; y_mu) / M over all training samples"),
    "train_error": dict(long_name="training error per sample", units="1",
                        description="sum_mu err(h_mu; y_mu) / M over all training samples, err the loss's "
                                    "per-sample test error (classification: the fraction misclassified)"),
    "train_accuracy": dict(long_name="training accuracy", units="1",
                           description="1 - train_error: the fraction of training samples classified right "
                                       "(classification problems; Mignacco et al. 2020, eq 22)"),
    "test_error": dict(long_name="generalization error (formula)", units="1",
                       description="from magnetization and norm (q0 = 1): label MSE of eq B.8 (phase retrieval), "
                                   "q + 1 - 2m (linear regression), classification error (door; mixtures: "
                                   "Mignacco et al. 2020, eqs 24-25); docs/engine.md"),
    "test_error_empirical": dict(long_name="test error on held-out samples", units="1",
                                 description="mean per-sample test error over n_test fresh samples"),
    "a_teacher": dict(long_name="w0^T A w0/N", units="1",
                      description="a committee's A = W^T W/(K N) seen along the teacher: sum_k M_k^2/K = "
                                  "magnetization^2 (docs/engine.md, \"Committee machines\")"),
    "a_distance": dict(long_name="|A - A*|_F^2", units="1",
                       description="A = W^T W/(K N), A* = w0 w0^T/N (Frobenius norm, O(1) as it stands)"),
    "quadratic_error": dict(long_name="quadratic network's squared-label error E(y^2 - yhat)^2", units="1",
                            description="yhat = (1/K) sum_k h_k^2 = x^T A x: (1 - tr A)^2 + 2 |A - A*|_F^2 by Wick's "
                                        "theorem (prcy.analysis.quadratic_network_error); phase-retrieval loss only"),
    "unit_magnetization": dict(long_name="magnetization w_k.w0/N of each hidden unit", units="1"),
    "overlap": dict(long_name="overlap matrix Q = W W^T/N of the hidden units", units="1",
                    description="recorded for K <= --overlap-units hidden units (default 16)"),
    "stop_time": dict(long_name="time at which the seed stopped", units="time (steps * lr)"),
    "spectral_eigenvalue": dict(long_name="top eigenvalue of the spectral start's matrix", units="1",
                                description="largest eigenvalue of (1/M) sum_mu T(y_mu) x_mu x_mu^T (init spectral)"),
    "hessian_eigenvalues": dict(long_name="lowest eigenvalues of the training loss' Hessian", units="1",
                                description="on the sphere restricted to the tangent space, minus the multiplier; "
                                            "NaN where not computed or not converged (prcy.hessian)"),
    "hessian_teacher_overlap": dict(long_name="|v.w0|/|w0| of the Hessian's unit eigenvectors", units="1"),
    "hessian_multiplier": dict(long_name="spherical multiplier mu = w.grad L / |w|^2", units="1"),
    "hessian_bulk_edge": dict(long_name="lower bulk edge of the Hessian's spectrum", units="1",
                              description="the lower edge of the weighted Wishart matrix with the weights d2v(h_mu; "
                                          "y_mu), plus ridge - mu (prcy.analysis.wishart.lower_edge)"),
    "hessian_density": dict(long_name="fraction of the Hessian's eigenvalues per bin", units="1",
                            description="whole spectrum (on the sphere: the tangent space's n - 1 eigenvalues) by a "
                                        "dense eigh for n <= 2048, stochastic Lanczos quadrature above (prcy.hessian)"),
    "hessian_density_outside": dict(long_name="fraction of the Hessian's eigenvalues outside the bins", units="1"),
    "label_moments": dict(long_name="moments E[h^a y^b] over the training samples", units="1",
                          description="h = x.w/sqrt(N) the student's field, y the training label; (a, b) along "
                                      "moment (Sarao Mannelli et al. 2020, eq 17)"),
    "hessian_converged": dict(long_name="every requested Hessian eigenpair converged"),
    "hessian_products": dict(long_name="Hessian-vector products used by the seed"),
    "stop_reason": dict(long_name="why the seed stopped", flag_values="max_time converged diverged stationary"),
}
# success and solved_time by criterion (stopping.success)
SUCCESS_VARIABLES = {
    "train-loss": {
        "success": dict(long_name="training loss per sample fell below tol"),
        "solved_time": dict(long_name="first checked time with training loss per sample below tol",
                            units="time (steps * lr)")},
    "test-error": {
        "success": dict(long_name="final test error (formula) below error_tol"),
        "solved_time": dict(long_name="first recording time with test error (formula) below error_tol",
                            units="time (steps * lr)")},
    "train-accuracy": {
        "success": dict(long_name="every training sample classified right at the last recording time"),
        "solved_time": dict(long_name="first recording time with every training sample classified right",
                            units="time (steps * lr)")},
}

COORDS = {
    "time": dict(long_name="physical time", units="steps * lr", standard_name="time"),
    "step": dict(long_name="step index"),
    "seed": dict(long_name="seed index (spawn key of the root seed)"),
    "bin": dict(long_name="centre of a --hessian-density bin", units="1", bounds="bin_bounds"),
    "moment": dict(long_name="(a, b) of E[h^a y^b]"),
    "unit": dict(long_name="hidden unit k of the student"),
    "unit2": dict(long_name="hidden unit l of the student (second index of the overlap matrix)"),
}
# the variables that only some runs record, by the dim of their own that the options recording them give
# (``own_dims``): name -> (dims, dtype). A sweep merges each where some cell records it, over the widest
# cell's dims: NaN beyond a cell's own and in the cells without it (false and 0 for the flag and the count)
RECORDED_WITH = {
    "unit": {"a_teacher": (("seed", "time"), "f8"), "a_distance": (("seed", "time"), "f8"),
             "quadratic_error": (("seed", "time"), "f8"), "unit_magnetization": (("seed", "time", "unit"), "f8")},
    "unit2": {"overlap": (("seed", "time", "unit", "unit2"), "f8")},
    "eig": {"hessian_eigenvalues": (("seed", "time", "eig"), "f8"),
            "hessian_teacher_overlap": (("seed", "time", "eig"), "f8"),
            "hessian_multiplier": (("seed", "time"), "f8"), "hessian_bulk_edge": (("seed", "time"), "f8"),
            "hessian_converged": (("seed", "time"), "bool"), "hessian_products": (("seed",), "i8")},
    "bin": {"hessian_density": (("seed", "time", "bin"), "f8"), "hessian_density_outside": (("seed", "time"), "f8")},
    "moment": {"label_moments": (("seed", "time", "moment"), "f8")},
}
RECORDED_DIMS = {name: dims for variables in RECORDED_WITH.values() for name, (dims, _) in variables.items()}
# a committee's variables (hidden > 1): their meaning where they differ from a single unit's
COMMITTEE_VARIABLES = {
    "magnetization": dict(long_name="root-mean-square magnetization sqrt(sum_k M_k^2/K)",
                          description="M_k = w_k.w0/N; sqrt(w0^T A w0/N); 1 when every unit is +-w0"),
    "norm": dict(long_name="tr A = sum_k |w_k|^2/(K N)"),
    "test_error": dict(long_name="test error on held-out samples", description=(
        "the mean per-sample error of the n_test held-out samples: phase retrieval (|y| - yhat^(1/2))^2, the "
        "single unit's label error; the door: 0/1")),
}
AMP_TIME = dict(long_name="AMP iteration", units="iterations")       # algorithm amp (prcy.amp)


def seed_stream(spec: SimulationSpec, s: int, name: str) -> np.random.PCG64:
    """A fresh bit generator of stream ``name`` of seed ``s`` (counted from ``first_seed``) of ``spec``
    (see the module docstring)."""
    return np.random.PCG64(np.random.SeedSequence(spec.seed, spawn_key=(spec.first_seed + s, STREAMS[name])))


def seed_streams(spec: SimulationSpec) -> dict[str, list[np.random.PCG64]]:
    """The bit generators of every seed and stream of ``spec`` (``seed_stream``)."""
    return {name: [seed_stream(spec, s, name) for s in range(spec.seeds)] for name in STREAMS}


MEMORY_OPTIONS = "n, alpha, n_test, hidden, seeds or points, fewer threads, or share_data / precision float32"
GENERATOR_BYTES = 800      # one PCG64 with its SeedSequence, measured


def memory_parts(spec: SimulationSpec, n_threads: int) -> dict[str, float]:
    """Estimated bytes of one run of ``spec`` on ``n_threads`` threads, by part (for
    ``prcy.resources.check_memory``): each working thread holds a seed's data (once for all with
    ``share_data``) and its state; the recorded curves exist in the kernel's output, the dataset and
    the writer's buffer."""
    p = spec.problem
    amp = spec.algorithm.name == "amp"           # X in float64 (prcy.amp)
    working = max(1, min(n_threads, spec.seeds))
    copies = 1 if p.share_data else working
    rows = p.m + p.n_test
    itemsize = np.dtype(p.precision).itemsize + (8 if amp and p.precision != "float64" else 0)
    n_record = len(spec.recording.times) + 2 if spec.recording.times is not None else spec.recording.points
    return {
        **committee_memory(spec, working, n_record),
        f"inputs X, {rows} x {p.n} {p.precision}{' and its float64 copy' if itemsize > 8 else ''}, "
        f"{'shared' if p.share_data else f'{copies} at once'}":
            copies * (rows * p.n * itemsize + 8.0 * (rows + p.n)),
        "weights, gradients, optimizer state and selection per thread":
            working * (8.0 * 4 * p.hidden * p.n + 17.0 * p.m),
        "recorded curves": 3 * 8.0 * 6 * spec.seeds * n_record,
        "random generators": GENERATOR_BYTES * len(STREAMS) * spec.seeds,
        **({f"weights at the recording times for the Hessian or the label moments, {spec.seeds} x {n_record} x "
            f"{p.n}": 8.0 * spec.seeds * n_record * p.n} if saves_weights(spec) else {}),
        **({f"a dense Hessian, {p.n} x {p.n}, its eigh and a block of rows": 8.0 * p.n * (3 * p.n + DENSE_BLOCK)}
           if spec.recording.hessian_density and p.n <= DENSE_MAX else {}),
    }


def committee_memory(spec: SimulationSpec, working: int, n_record: int) -> dict[str, float]:
    """The parts of ``memory_parts`` that only a committee (``hidden > 1``) has: per working thread a
    row block in float64 and its fields and derivatives, and the overlap matrix; the per-unit records."""
    from prcy.kernels.dynamics import committee_block

    p = spec.problem
    k = p.hidden
    if k == 1:
        return {}
    block = committee_block(k, p.n)
    return {
        f"a committee's row block ({block} x {p.n}), fields and derivatives ({max(block, 8)} x {k} twice), "
        f"overlap matrix ({k} x {k}) per thread": working * 8.0 * (block * p.n + 2 * max(block, 8) * k + k * k),
        "recorded unit magnetizations and overlaps":
            3 * 8.0 * spec.seeds * n_record * (k + (k * k if records_overlap(spec) else 0)),
    }


def records_overlap(spec: SimulationSpec) -> bool:
    """Whether a run records the overlap matrix: a committee of at most ``overlap_units`` hidden units."""
    return 1 < spec.problem.hidden <= spec.recording.overlap_units


def check_hidden(spec: SimulationSpec, n_threads: int) -> None:
    """Refuse a committee whose weights, gradient and optimizer state (``4 hidden n`` doubles per
    working thread) alone exceed the machine's memory, naming ``hidden`` and the largest that fits."""
    from prcy.resources import format_bytes, machine_memory

    p = spec.problem
    working = max(1, min(n_threads, spec.seeds))
    per_unit = working * 8.0 * 4 * p.n
    if p.hidden * per_unit > machine_memory():
        raise ValueError(f"hidden: {p.hidden!r} is not allowed with n = {p.n} on {working} threads (its weights and "
                         f"optimizer state need {format_bytes(p.hidden * per_unit)}, more than the "
                         f"{format_bytes(machine_memory())} this machine gives a process); allowed: an integer in "
                         f"[1, {int(machine_memory() // per_unit)}]")


def own_dims(spec: SimulationSpec) -> dict[str, np.ndarray]:
    """The dims of their own (``RECORDED_WITH``) that a run of ``spec`` records, each with its values: the
    coordinate of the dims that ``COORDS`` describes, the index of ``eig`` (which has no coordinate)."""
    from prcy.hessian import LABEL_MOMENTS, density_edges

    k, rec = spec.problem.hidden, spec.recording
    dims = {}
    if k > 1:
        dims["unit"] = np.arange(k)
    if records_overlap(spec):
        dims["unit2"] = np.arange(k)
    if rec.hessian:
        dims["eig"] = np.arange(rec.hessian)
    if rec.hessian_density:
        edges = density_edges(rec)
        dims["bin"] = 0.5 * (edges[1:] + edges[:-1])
    if rec.label_moments:
        dims["moment"] = np.array([f"h{a}y{b}" for a, b in LABEL_MOMENTS])
    return dims


def bin_bounds(recording) -> np.ndarray:
    """The ``(lower, upper)`` edge of each ``--hessian-density`` bin (``bin_bounds(bin, nv)``)."""
    from prcy.hessian import density_edges

    edges = density_edges(recording)
    return np.column_stack([edges[:-1], edges[1:]])


def saves_weights(spec: SimulationSpec) -> bool:
    """Whether the kernel keeps the weights at the recording times (the Hessian, the label moments)."""
    return bool(spec.recording.hessian or spec.recording.label_moments)


def simulate(spec: SimulationSpec | None = None, *, threads: int | None = None,
             progress: bool | Callable[[int, int], None] = False, loss=None, **options) -> xr.Dataset:
    """Simulate gradient dynamics on phase retrieval (or linear regression); returns a dataset with
    ``magnetization``, ``norm``, ``train_loss``, ``test_error`` over ``(seed, time)`` and ``success``,
    ``solved_time``, ``stop_time``, ``stop_reason`` over ``seed``.

    Give either a ``SimulationSpec`` or flat options (``problem, alpha, n, n_test, precision,
    share_data, algorithm, lr, batch_fraction, persistence, temperature, temperature_schedule,
    rescale, constraint, ridge, m0, t_max, points, grid, times, tol, early_stop, check_interval,
    seeds, first_seed, seed``). ``algorithm`` may be a list: the runs share seeds (and so, seed by
    seed, the same teacher, data and initialization) and stack along an ``algorithm`` dimension;
    options that do not apply to one of them (``batch_fraction`` for gd, ...) are not passed to it, and
    an option that applies to none of them is refused (``prcy.options``).

    ``loss``: a ``"prcy.Loss"`` capsule (a loss written in Cython, see ``prcy.kernels.losses``) used
    instead of the problem's built-in loss; the data (teacher, inputs, ``h0``) and the test-error
    formula still come from ``problem``; the file records ``loss = "user capsule"``.

    ``threads``: None (OpenMP default), -1 (all cores) or a count. ``progress``: True for a progress
    bar on stderr, or a callable ``f(steps_done, steps_total)``. Ctrl-C stops the kernels within a
    step and raises ``KeyboardInterrupt`` (nothing partial is returned). A run whose estimated memory
    (``memory_parts``) exceeds the machine's is refused (``ValueError``) before any compute.

    >>> ds = simulate(algorithm=["gd", "psgd"], n=64, alpha=3, m0=0.2, t_max=5, seeds=4)
    >>> sorted(ds.magnetization.dims)
    ['algorithm', 'seed', 'time']
    """
    from prcy.kernels import parallel
    from prcy.resources import check_memory

    if spec is not None:
        if options:
            raise ValueError(f"give either spec or options, not both (got options {sorted(options)})")
        specs = [spec]
    else:
        specs = specs_from_options(options)
    n_threads = parallel.n_threads(threads)
    for s in specs:
        check_hidden(s, n_threads)
        check_memory(memory_parts(s, n_threads), MEMORY_OPTIONS)
    reporter = _make_reporter(progress, specs)
    datasets = [run(s, threads=threads, progress=reporter, loss=loss) for s in specs]
    if spec is not None or not _is_list(options.get("algorithm")):
        return datasets[0]
    ds = xr.concat(datasets, dim="algorithm", combine_attrs="drop_conflicts")
    ds.attrs["created"] = datasets[-1].attrs["created"]
    ds.attrs["spec"] = json.dumps([s.to_dict() for s in specs], sort_keys=True)
    return ds


def _is_list(value) -> bool:
    return isinstance(value, (list, tuple))


def _make_reporter(progress, specs):
    """``report(steps_done_in_this_run, finished=False)`` feeding ``progress`` (a callable, or True for
    a rich bar) with steps done over all the runs of ``specs``."""
    if not progress:
        return None
    total = sum(s.seeds * s.recording.n_steps(s.algorithm.lr) for s in specs)
    sink = progress if callable(progress) else _rich_bar(total)
    offset = [0]

    def report(done, finished=False):
        sink(offset[0] + done, total)
        if finished:
            offset[0] += done
    return report


def _rich_bar(total):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
                   TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), transient=True)
    task = bar.add_task("simulating", total=total)

    def show(done, total):
        if not bar.live.is_started:
            bar.start()
        bar.update(task, completed=done)
        if done >= total:
            bar.stop()
    return show


def kernel_parameters(spec: SimulationSpec) -> dict:
    """The ``params`` of ``prcy.kernels.dynamics.run_seeds``/``run_trajectory`` for ``spec``."""
    a, c, st = spec.algorithm, spec.constraint, spec.stopping
    return dict(eta=a.lr, grad_scale=a.grad_scale, ridge=c.ridge,
                sphere=c.kind == "sphere", n_steps=spec.recording.n_steps(a.lr), check_every=st.check_every(a.lr),
                tol=st.tol, early_stop=st.early_stop, grad_tol=st.grad_tol, optimizer=a.optimizer,
                momentum=a.momentum, beta1=a.beta1, beta2=a.beta2, adam_eps=a.adam_eps,
                project_velocity=a.project_velocity)


def temperature_steps(spec: SimulationSpec) -> tuple[np.ndarray, np.ndarray]:
    """``(temp_starts, temp_values)``: the temperature schedule by step (``temp_values[i]`` from step
    ``temp_starts[i]`` on)."""
    lr = spec.algorithm.lr
    schedule = spec.algorithm.schedule()
    return (np.array([int(round(t / lr)) for t, _ in schedule], dtype=np.int64),
            np.array([T for _, T in schedule], dtype=np.float64))


def shared_data_rng(spec: SimulationSpec) -> np.random.PCG64:
    """The data generator of every seed with ``share_data``: seed index 0's data stream."""
    return np.random.PCG64(np.random.SeedSequence(spec.seed, spawn_key=(0, STREAMS["data"])))


def run(spec: SimulationSpec, *, threads: int | None = None, progress=None, loss=None) -> xr.Dataset:
    """Run one spec (one algorithm) and return its dataset (``loss``: see ``simulate``)."""
    from prcy.kernels import dynamics, parallel
    from prcy.problems import resolve_loss

    if spec.algorithm.name == "amp":
        return run_amp(spec, threads=threads, progress=progress, loss=loss)
    p, a = spec.problem, spec.algorithm
    n_threads = parallel.n_threads(threads)
    if loss is not None and p.loss is not None:
        raise ValueError("loss: given both as a capsule and in the spec (problem.loss); give one")
    capsule, loss_name = resolve_loss(p.name, loss if loss is not None else p.loss, hidden=p.hidden,
                                      smoothing=p.smoothing, onset=p.onset)
    lr = a.lr
    n_steps = spec.recording.n_steps(lr)
    steps = spec.recording.steps(lr)
    temp_starts, temp_values = temperature_steps(spec)
    dtype = np.dtype(p.precision)
    streams = seed_streams(spec)
    empty_x = np.empty((0, p.n), dtype=dtype)
    shared = (empty_x, np.empty(0), np.empty(0), empty_x, np.empty(0))
    if p.share_data:
        w0, X, y, Xt, yt = dynamics.generate(shared_data_rng(spec), p.m, p.n, p.n_test, dtype=dtype,
                                             labels=p.labels, problem=p.name,
                                             teacher=p.teacher, onset=p.onset, delta=p.delta)
        shared = (X, y, w0, Xt, yt)
    init, w_init, spectral = spec.init.kind, None, None
    if init == "spectral":
        w_init, spectral = spectral_starts(spec, shared)
        init = "given"
    p_on, p_off = a.switching_probabilities()
    progress_arr = np.zeros(spec.seeds, dtype=np.int64)
    abort = np.zeros(1, dtype=np.int32)
    # Ctrl-C, or an error in the progress callback, stops the kernels before it propagates
    out = run_interruptible(
        abort, dynamics.run_seeds,
        capsule, *shared, shared_data=p.share_data, m=p.m, n=p.n, m_test=p.n_test,
        problem=p.name, teacher=p.teacher, onset=p.onset, delta=p.delta,
        selection=a.selection, ell=a.batch_fraction, p_on=p_on, p_off=p_off, init=init, w_init=w_init,
        save_weights=saves_weights(spec),
        m0=spec.init.m0, init_variance=spec.init.variance, labels=p.labels,
        params=kernel_parameters(spec), record_steps=steps, temp_starts=temp_starts, temp_values=temp_values,
        data_rngs=streams["data"], init_rngs=streams["init"], dynamics_rngs=streams["dynamics"],
        progress=progress_arr, abort=abort, n_threads=n_threads, hidden=p.hidden, record_overlap=records_overlap(spec),
        block=dynamics.committee_block(p.hidden, p.n), poll=None if progress is None else lambda: progress(int(progress_arr.sum())))
    if progress is not None:
        progress(spec.seeds * n_steps, finished=True)
    ds = dataset(spec, out, steps, n_threads, loss_name)
    ds.attrs["loss"] = loss_name
    if spectral is not None:
        ds["spectral_eigenvalue"] = (("seed",), spectral)
    if saves_weights(spec):
        from prcy.hessian import hessian_records, label_moment_records

        weights = out.pop("weights")
        data = lambda s: seed_data(spec, s, shared)        # noqa: E731
        rec, dims = spec.recording, own_dims(spec)
        if rec.hessian:
            for name, values in hessian_records(spec, weights, capsule, data, seed_streams(spec)["init"]).items():
                ds[name] = (RECORDED_DIMS[name], values)
            if rec.hessian_density:
                ds = ds.assign_coords(bin=dims["bin"])
                ds["bin_bounds"] = (("bin", "nv"), bin_bounds(rec))
        if rec.label_moments:
            ds["label_moments"] = (RECORDED_DIMS["label_moments"], label_moment_records(weights, data))
            ds = ds.assign_coords(moment=dims["moment"])
    for name in ds.variables:
        if name in VARIABLES or name in ("bin", "moment"):
            ds[name].attrs.update({**VARIABLES, **COORDS}[name])
    return ds


def run_amp(spec: SimulationSpec, *, threads: int | None = None, progress=None, loss=None) -> xr.Dataset:
    """Run one spec of algorithm amp (``prcy.amp``: GAMP on the seeds' data) and return its dataset, laid out
    as a gradient run's with ``time`` = iteration."""
    from prcy import amp
    from prcy.kernels import parallel

    if loss is not None:               # the capsule keyword of simulate (the option row refuses a loss by name)
        raise not_applicable_error(SIMULATION["loss"], loss, context({"algorithm": "amp"}))
    n_threads = parallel.n_threads(threads)
    steps = spec.recording.steps(spec.algorithm.lr)
    streams = seed_streams(spec)
    data_rngs = [shared_data_rng(spec)] if spec.problem.share_data else streams["data"]
    out = amp.run_seeds(spec, data_rngs, streams["init"], steps, n_threads=n_threads,
                        progress=progress)
    if progress is not None:
        progress(spec.seeds * spec.recording.n_steps(spec.algorithm.lr), finished=True)
    ds = dataset(spec, out, steps, n_threads)
    ds.attrs["loss"] = spec.problem.training_loss + " (recorded, not minimized)"
    return ds


def seed_data(spec: SimulationSpec, s: int, shared) -> tuple:
    """``(w0, X, y)`` of seed ``s`` of ``spec`` exactly as the kernel draws them, from a fresh copy of the
    seed's data stream (``seed_stream``; ``shared``: the shared data when ``share_data``)."""
    from prcy.kernels import dynamics

    p = spec.problem
    if p.share_data:
        return shared[2], shared[0], shared[1]
    w0, X, y, _, _ = dynamics.generate(seed_stream(spec, s, "data"), p.m, p.n, p.n_test, dtype=np.dtype(p.precision),
                                       labels=p.labels, problem=p.name, teacher=p.teacher,
                                       onset=p.onset, delta=p.delta)
    return w0, X, y


def spectral_starts(spec: SimulationSpec, shared) -> tuple[np.ndarray, np.ndarray]:
    """The spectral start of every seed of ``spec`` (``prcy.spectral``, Lanczos started from the seed's
    initialization stream) and the top eigenvalue of its matrix."""
    from prcy.spectral import spectral_start

    streams = seed_streams(spec)
    w_init, values = np.empty((spec.seeds, spec.problem.n)), np.empty(spec.seeds)
    for s in range(spec.seeds):
        _, X, y = seed_data(spec, s, shared)
        w_init[s], values[s], _ = spectral_start(X, y, spec.init.preprocessing, streams["init"][s],
                                                 seed_index=spec.first_seed + s)
    return w_init, values


def dataset(spec: SimulationSpec, out: dict, steps: np.ndarray, n_threads: int,
            loss_name: str | None = None) -> xr.Dataset:
    """The dataset of a run of ``spec`` from the kernel's output ``out`` (``prcy.kernels.dynamics.run_seeds``,
    or the trajectories of ``run_trajectory`` concatenated over seeds) recorded at ``steps``, with the loss
    ``loss_name`` (``resolve_loss``'s name)."""
    from prcy.analysis import test_error
    from prcy.kernels import dynamics, parallel

    lr = spec.algorithm.lr
    seeds = np.arange(spec.first_seed, spec.first_seed + spec.seeds)
    dims = ("seed", "time")
    data = {name: (dims, out[name]) for name in ("magnetization", "norm", "train_loss", "train_error")}
    p = spec.problem
    if p.name in CLASSIFIERS:
        data["train_accuracy"] = (dims, 1.0 - out["train_error"])
    if p.hidden > 1:
        data.update(committee_variables(spec, out, loss_name))
        error = data["test_error"][1]
    else:
        error = test_error(p.name, out["magnetization"], out["norm"], onset=p.onset, delta=p.delta)
        data["test_error"] = (dims, error)
    if p.n_test:
        data["test_error_empirical"] = (dims, out["test_error"])
    success = spec.stopping.success
    if success == "train-loss":
        solved = out["solved_step"]
        data["success"] = (("seed",), solved >= 0)
        data["solved_time"] = (("seed",), np.where(solved >= 0, solved * lr, np.nan))
    else:
        # on the recording grid: test error below error_tol, or no training sample misclassified (each
        # misclassified sample adds 1/m to train_error, one with phi(h) = 0 adds 1/(4m))
        curves, level = (error, spec.stopping.error_tol) if success == "test-error" else (out["train_error"], 0.125 / p.m)
        solved = first_below(curves, level)
        data["success"] = (("seed",), curves[:, -1] < level)
        data["solved_time"] = (("seed",), np.where(solved >= 0, steps[solved] * lr, np.nan))
    data["stop_time"] = (("seed",), out["stop_step"] * lr)
    data["stop_reason"] = (("seed",), np.array([dynamics.STOP_REASONS[r] for r in out["stop_reason"]], dtype=object))
    coords = {"seed": seeds, "time": steps * lr, "step": ("time", steps), "algorithm": spec.algorithm.name}
    coords.update({dim: values for dim, values in own_dims(spec).items() if dim in ("unit", "unit2")})
    ds = xr.Dataset(data, coords=coords)
    for name, meta in {**VARIABLES, **COORDS, **SUCCESS_VARIABLES[spec.stopping.success]}.items():
        if name in ds.variables:
            ds[name].attrs.update(meta)
    if p.hidden > 1:
        for name, meta in COMMITTEE_VARIABLES.items():
            ds[name].attrs.update(meta)
    if spec.algorithm.name == "amp":        # time = iteration (lr stored as 1)
        ds["time"].attrs.update(AMP_TIME)
        for name in ("solved_time", "stop_time"):
            ds[name].attrs["units"] = AMP_TIME["units"]
    ds.attrs.update(_attributes(spec, n_threads, {**parallel.build_info(), "float32_simd": dynamics.FLOAT32_SIMD}))
    return ds


def committee_variables(spec: SimulationSpec, out: dict, loss_name: str | None) -> dict:
    """A committee's variables from the kernel's records: ``a_teacher``, ``a_distance``, ``test_error`` (the
    held-out error), with the phase-retrieval loss (``g(h) = h^2``) the closed-form ``quadratic_error``,
    ``unit_magnetization`` over ``unit`` and, up to ``overlap_units`` units, ``overlap`` over ``(unit, unit2)``."""
    from prcy.analysis import a_distance, quadratic_network_error

    dims = RECORDED_DIMS
    teacher_a = out["magnetization"] ** 2
    data = {"a_teacher": (dims["a_teacher"], teacher_a),
            "a_distance": (dims["a_distance"], a_distance(teacher_a, out["a_square"])),
            "unit_magnetization": (dims["unit_magnetization"], out["unit_magnetization"])}
    if "overlap" in out:
        data["overlap"] = (dims["overlap"], out["overlap"])
    if loss_name == "phase-retrieval":                   # g(h) = h^2: the quadratic network
        data["quadratic_error"] = (dims["quadratic_error"], quadratic_network_error(out["norm"], teacher_a,
                                                                                   out["a_square"]))
    data["test_error"] = (("seed", "time"), out["test_error"])
    return data


def first_below(curves: np.ndarray, level: float) -> np.ndarray:
    """Per row of ``curves`` (seed x time), the first index with a value below ``level``, -1 if none."""
    below = curves < level
    return np.where(below.any(axis=1), below.argmax(axis=1), -1)


def flat_attributes(spec: SimulationSpec) -> dict:
    """The main parameters as flat scalar attributes (NetCDF cannot hold None, bools or lists)."""
    p, a = spec.problem, spec.algorithm
    gradient = a.name != "amp"
    return {"problem": p.name, "alpha": p.alpha, "n": p.n, "m": p.m,
            **({"m0": spec.init.m0} if spec.init.kind == "warm" else {}),       # m0 is the warm start's
            **({"lr": a.lr, "constraint": spec.constraint.kind, "optimizer": a.optimizer} if gradient
               else {"amp_damping": a.amp_damping}),                          # amp's time is the iteration
            "t_max": spec.recording.n_steps(a.lr) * a.lr,
            "tol": spec.stopping.tol, "precision": p.precision, "labels": p.labels, "init": spec.init.kind,
            "success": spec.stopping.success,
            **({"error_tol": spec.stopping.error_tol} if spec.stopping.success == "test-error" else {}),
            **({"delta": p.delta} if p.name in MIXTURES else {}),
            **({"onset": p.onset} if p.name in ("door", "mixture-3") else {}),
            **({"hidden": p.hidden} if p.hidden > 1 else {})}


def _attributes(spec: SimulationSpec, n_threads: int, build: dict) -> dict:
    """File attributes: the spec as JSON plus flat scalars, provenance of the random numbers."""
    from prcy.io import provenance

    keys = ("SeedSequence(rng_root_seed, spawn_key=(seed, stream)); stream 0 data, 1 init, 2 dynamics"
            + ("; shared data from seed 0's data stream" if spec.problem.share_data else ""))
    return {
        **provenance("prcy simulation", SCHEMA, spec.to_json(), spec.seed, keys),
        **flat_attributes(spec),
        "threads": n_threads,
        "build_openmp": int(build["openmp"]),
        "build_march": build["march"],
        "build_float32_simd": int(build["float32_simd"]),
    }
