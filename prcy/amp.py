"""AMP as a baseline algorithm: GAMP for real noiseless phase retrieval, on the simulations' own data.

Generalized approximate message passing (Rangan, *Generalized approximate message passing for estimation
with random linear mixing*, ISIT 2011) with the Bayes-optimal functions of the standard Gaussian prior and
the channel ``y = |h0|`` (``prcy.analysis.theory.output_denoiser`` and ``prior_denoiser``; derivation in
docs/theory.md, section 2). On a seed's inputs ``X`` (``M x N``, entries ``N(0, 1)``) and labels ``y``,
with ``alpha = M/N``, one iteration from the estimate ``w`` and its mean posterior variance ``c`` is::

    h      = X w / sqrt(N)                          fields of the estimate (observables, training loss)
    omega  = h - V g_prev,         V = c            Onsager correction (g_prev = 0 at the first iteration)
    g, dg  = g_out(omega, y, V), dg_out/domega(omega, y, V)
    Lambda = -alpha mean(dg)                        precision of the input channel (the state evolution's mhat)
    R      = w + X^T g / (sqrt(N) Lambda)
    w, c   <- R / (1 + 1/Lambda),  1 / (1 + Lambda)    posterior mean and variance under the prior N(0, 1)

The variances are scalars (the entries of ``X / sqrt(N)`` have variance ``1/N``, so each row's
``sum_i X_mu,i^2 c / N`` is ``c`` up to ``O(N^-1/2)``). With ``amp_damping = d > 0`` the new ``g`` and
``Lambda`` are mixed with their previous values, and the new ``w`` and ``c`` with theirs, weight ``d`` on the old
(from the second iteration on for ``g`` and ``Lambda``): the fixed points are unchanged; ``d = 0`` is plain
GAMP, whose overlap ``m = w.w0/N`` follows the state evolution (``prcy.analysis.se_iterate``) as
``N -> infinity``.

Starts. ``w = 0`` is a fixed point (``omega = 0`` gives ``g = 0``), so the start breaks the symmetry. Both
starts are built from the gradient algorithms' start ``w_gd`` of the same seed (``prcy.kernels.dynamics``,
the initialization stream):

- ``init warm`` (the state evolution's start ``m0``): ``w(0) = m0 w0 + sqrt(m0 / (1 + m0)) (w_gd - m0 w0)``,
  ``c(0) = 1 - m0``, so ``m(0) = |w(0)|^2/N = m0`` exactly: the posterior mean of ``w0`` given a Gaussian
  side observation of precision ``m0 / (1 - m0)``, i.e. the state evolution's point ``m0``. Needs
  ``0 < m0 < 1``.
- ``init random``: ``w(0) = w_gd`` (uniform on the sphere ``|w|^2 = N``, independent of the teacher: a draw of
  the prior, ``m(0) ~ N(0, 1/N)``) with the prior's variance ``c(0) = 1``. The iteration then first has to
  grow the overlap from ``N^-1/2``, towards ``+1`` or ``-1``.

What finite ``N`` does to this (the noise of ``Lambda`` near ``m = 0``, divergences of plain GAMP from a
random start, which damping removes): docs/theory.md, "Finite-N AMP".

Stops, per seed (``stop_reason``, the codes of ``prcy.kernels.dynamics.STOP_REASONS``): success by the training
loss is checked at every iteration (``solved_step``: the first iteration whose estimate has a training loss
per sample below ``tol``) and ``early_stop`` then ends the seed (``converged``); an iteration that changed
the estimate by at most ``1e-13 |w|`` ends it as ``stationary``: a fixed point to the level of float64
rounding (exact recovery, or a fixed point with ``m < 1``: success says which; after exact recovery ``c``
keeps falling by a factor of about ``alpha`` per iteration until ``1/c`` overflows, so the seed must stop); a
precision ``Lambda`` that is not a positive finite number (the next estimate is undefined) or a non-finite
estimate ends it as ``diverged``, with NaN for the rest of its record. A seed that stops before ``t_max``
carries its last state forward on the recording grid.

Random numbers: the data of seed ``i`` come from its data stream through ``prcy.kernels.dynamics.generate``
and ``w_gd`` from its initialization stream through ``initial_weights``, exactly as the gradient kernels
draw them: seed ``i`` of an AMP run has the teacher and data of seed ``i`` of a gradient run with the same
root seed, ``n`` and ``alpha``. AMP draws nothing else.

Cost: per iteration two matrix-vector products (``X w`` and ``X^T g``, BLAS ``dgemv``) and ``O(M + N)``
elementwise work (docs/benchmarks.md, "AMP"); seeds run in parallel on threads, each with one BLAS thread.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from prcy.analysis.theory import output_denoiser, prior_denoiser

# an iteration that moves w by at most STATIONARY |w| ends the seed as "stationary": at a fixed point the relative
# change settles at 2-10 float64 epsilons of rounding (N = 300-2000), and the iteration need not go on
STATIONARY = 1e-13
RECORDS = ("magnetization", "norm", "train_loss", "train_error", "test_error")


class Step(NamedTuple):
    """One GAMP iteration's result: the new estimate ``w`` and its mean variance ``c`` (both None when the
    precision ``lam`` is not a positive finite number), the output message ``g`` and the precision ``lam``
    (after damping: the ``g_prev`` and ``lam_prev`` of the next iteration)."""
    w: np.ndarray | None
    c: float | None
    g: np.ndarray
    lam: float


def gamp_step(X: np.ndarray, y: np.ndarray, w: np.ndarray, c: float, h: np.ndarray, g_prev=None,
              lam_prev=None, damping: float = 0.0) -> Step:
    """One iteration (module docstring) from the estimate ``w`` with mean variance ``c > 0`` and fields
    ``h = X w / sqrt(N)``; ``g_prev`` and ``lam_prev`` are the previous iteration's ``Step.g`` and
    ``Step.lam`` (None at the first iteration). ``X``: float64, ``M x N``."""
    m, n = X.shape
    omega = h if g_prev is None else h - c * g_prev
    with np.errstate(over="ignore", invalid="ignore"):     # a non-finite precision is reported, not used
        g, dg = output_denoiser(omega, y, c)
        lam = -(m / n) * float(dg.mean())
    if g_prev is not None and damping:
        g = (1.0 - damping) * g + damping * g_prev
        lam = (1.0 - damping) * lam + damping * lam_prev
    if not (math.isfinite(lam) and lam > 0.0):
        return Step(None, None, g, lam)
    sigma = 1.0 / lam
    w_new, c_new = prior_denoiser(w + (sigma / math.sqrt(n)) * (X.T @ g), sigma)
    c_new = float(c_new)
    if damping:
        w_new = (1.0 - damping) * w_new + damping * w
        c_new = (1.0 - damping) * c_new + damping * c
    return Step(w_new, c_new, g, lam)


def start(w0: np.ndarray, w_gd: np.ndarray, init: str, m0: float) -> tuple[np.ndarray, float]:
    """``(w(0), c(0))`` from the gradient algorithms' start ``w_gd`` of the seed (module docstring)."""
    if init == "random":
        return w_gd.copy(), 1.0
    return m0 * w0 + math.sqrt(m0 / (1.0 + m0)) * (w_gd - m0 * w0), 1.0 - m0


def trajectory(X: np.ndarray, y: np.ndarray, w0: np.ndarray, w: np.ndarray, c: float, record_steps: np.ndarray,
               *, n_steps: int, tol: float, early_stop: bool = False, damping: float = 0.0,
               Xt: np.ndarray | None = None, yt: np.ndarray | None = None, progress=None, abort=None) -> dict:
    """One seed from ``(w, c)`` for ``n_steps`` iterations, observed at ``record_steps`` (sorted, from 0, within
    ``[0, n_steps]``): ``magnetization``, ``norm``, ``train_loss``, ``train_error``, ``test_error`` (empirical,
    NaN without ``Xt``), each over ``record_steps``; ``solved_step`` (-1: never), ``stop_step``, ``stop_reason``
    (an index of ``prcy.kernels.dynamics.STOP_REASONS``) and the final estimate ``w``. ``progress(k)`` is
    called at the recording iterations; once ``abort`` (a ``threading.Event``) is set, the seed stops as
    ``interrupted`` with NaN for the rest of its record."""
    from prcy.kernels.dynamics import STOP_REASONS

    n = X.shape[1]
    root = math.sqrt(n)
    record_steps = np.asarray(record_steps, dtype=np.int64)
    rec = {name: np.full(record_steps.size, np.nan) for name in RECORDS}
    solved, reason, stop_step = -1, "max_time", n_steps
    g = lam = None
    i = k = 0
    unchanged = False
    while True:
        if abort is not None and abort.is_set():
            reason, stop_step = "interrupted", k
            break
        h = X @ w / root
        loss = float(np.mean((h * h - y * y) ** 2)) / 4.0
        recorded = i < record_steps.size and record_steps[i] == k
        if recorded:
            _observe(rec, i, w, w0, h, y, loss, Xt, yt, root)
            i += 1
            if progress is not None:
                progress(k)
        stop = None
        if solved < 0 and loss < tol:
            solved = k
            if early_stop:
                stop = "converged"
        if stop is None and unchanged:
            stop = "stationary"
        if stop is not None:             # the state at iteration k stands for the rest of the record
            reason, stop_step = stop, k
            if not recorded:
                _observe(rec, i, w, w0, h, y, loss, Xt, yt, root)
                i += 1
            for name in RECORDS:
                rec[name][i:] = rec[name][i - 1]
            break
        if k == n_steps:
            break
        step = gamp_step(X, y, w, c, h, g, lam, damping)
        k += 1
        if step.w is None or not np.all(np.isfinite(step.w)):
            reason, stop_step = "diverged", k          # NaN (as initialized) for the rest of the record
            break
        change = step.w - w
        unchanged = change @ change <= STATIONARY ** 2 * (w @ w)
        w, c, g, lam = step.w, step.c, step.g, step.lam
    return {**rec, "solved_step": solved, "stop_step": stop_step, "stop_reason": STOP_REASONS.index(reason), "w": w}


def _observe(rec: dict, i: int, w, w0, h, y, loss: float, Xt, yt, root: float) -> None:
    n = w.size
    rec["magnetization"][i] = w @ w0 / n
    rec["norm"][i] = w @ w / n
    rec["train_loss"][i] = loss
    rec["train_error"][i] = np.mean((y - np.abs(h)) ** 2)
    if Xt is not None and Xt.shape[0]:
        rec["test_error"][i] = np.mean((yt - np.abs(Xt @ w / root)) ** 2)


def run_seeds(spec, data_rngs: list, init_rngs: list, record_steps: np.ndarray, *, n_threads: int = 1,
              progress=None) -> dict:
    """Every seed of ``spec`` (a ``SimulationSpec`` with algorithm amp) on the data drawn from ``data_rngs[i]``
    (one generator for all seeds with ``share_data``) and the start drawn from ``init_rngs[i]``: the dict of
    ``prcy.kernels.dynamics.run_seeds`` (the records over ``(seed, record step)``, ``solved_step``,
    ``stop_step``, ``stop_reason`` over seeds). Seeds run on ``n_threads`` threads, each product on one BLAS
    thread (NumPy releases the GIL there), so a seed's numbers do not depend on the thread count.
    ``progress(iterations done over all seeds)`` is called from the calling thread; an exception there (or
    Ctrl-C) stops every seed at its next iteration and propagates."""
    import threading
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    from threadpoolctl import threadpool_limits

    from prcy.kernels import dynamics

    p, a, init = spec.problem, spec.algorithm, spec.init
    n_steps = spec.recording.n_steps(a.lr)
    out = {name: np.full((spec.seeds, len(record_steps)), np.nan) for name in RECORDS}
    out.update(solved_step=np.full(spec.seeds, -1, dtype=np.int64), stop_step=np.zeros(spec.seeds, dtype=np.int64),
               stop_reason=np.zeros(spec.seeds, dtype=np.int8))
    done = np.zeros(spec.seeds, dtype=np.int64)          # iterations done per seed, for progress
    abort = threading.Event()

    def draw(rng):
        w0, X, y, Xt, yt = dynamics.generate(rng, p.m, p.n, p.n_test, dtype=np.dtype(p.precision),
                                             labels=p.labels, problem=p.name,
                                             teacher=p.teacher, onset=p.onset, delta=p.delta)
        # float32 storage: the dataset is the rounded one, the iteration runs in float64
        return w0, np.asarray(X, dtype=np.float64), y, np.asarray(Xt, dtype=np.float64), yt

    shared = draw(data_rngs[0]) if p.share_data else None

    def one(s):
        w0, X, y, Xt, yt = shared if p.share_data else draw(data_rngs[s])
        w, c = start(w0, dynamics.initial_weights(init_rngs[s], w0, init.m0, True, init=init.kind), init.kind,
                     init.m0)
        result = trajectory(X, y, w0, w, c, record_steps, n_steps=n_steps, tol=spec.stopping.tol,
                            early_stop=spec.stopping.early_stop, damping=a.amp_damping, Xt=Xt, yt=yt,
                            progress=lambda k: done.__setitem__(s, k), abort=abort)
        done[s] = n_steps
        return s, result

    with threadpool_limits(limits=1, user_api="blas"), \
            ThreadPoolExecutor(max_workers=max(1, min(n_threads, spec.seeds))) as pool:
        pending = {pool.submit(one, s) for s in range(spec.seeds)}
        try:
            while pending:
                finished, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                for future in finished:
                    s, result = future.result()
                    for name in RECORDS + ("solved_step", "stop_step", "stop_reason"):
                        out[name][s] = result[name]
                if progress is not None:
                    progress(int(done.sum()))
        except BaseException:
            abort.set()
            for future in pending:
                future.cancel()
            raise
    return out
