#!/usr/bin/env python
"""Time one DMFT iteration (march + response) against K, S and threads, and its peak memory.

    python benchmarks/bench_dmft.py            # K = 50..400 at S = 2000, threads, S scaling (~3 min)
    python benchmarks/bench_dmft.py --memory   # also one iteration at K = 1000, S = 10^4 (~4 min more)
    python benchmarks/bench_dmft.py --windows  # only: whole solves, whole horizon vs horizon windows (~5 min)
    python benchmarks/bench_dmft.py --yardstick  # only: GD phase retrieval K = 401, S = 4000 against a GEMM (~2 min)
    python benchmarks/bench_dmft.py --large      # only: the same at K = 1001, S = 10^4, peak memory (~5 min)
    python benchmarks/bench_dmft.py --passes     # only: validation fixed points, blocked pass vs recursion
    python benchmarks/bench_dmft.py --kicked     # only: the kicked pass, blocked vs recursion, K = 201, 401 (~2 min)
    python benchmarks/bench_dmft.py --psgd       # only: one P-SGD solve (7g) split into march and response (~1 min)
    python benchmarks/bench_dmft.py --ranks      # only: the ranks of M_R's column blocks by algorithm (~1 min)

Problem: the linear model with a ridge (alpha = 3, m0 = 0.2, lambda = 0.5), horizon t = 5, so
``dt = 5 / (K - 1)``; phase retrieval costs the same per iteration (the loss is a few flops per
sample and step). One iteration = ``prcy.kernels.dmft.march`` + ``prcy.kernels.dmft.response``
without the tail diagnostics (``stats=False``: the solver runs them only on the pass it predicts to be
its last, docs/dmft.md, "Cost"); the cost of those diagnostics is
printed as the ratio of the response pass with and without them, and the cost of the kicked
(finite-difference) response (``response_kick > 0``) as its ratio to the linear one.

Reference measured in the same run: a NumPy implementation of the same iteration, vectorized over
the samples (the equations of tests/test_dmft.py's ``ref_march``/``ref_response`` without the
per-step Cholesky solves), at K <= 100 only (it grows like K^3 S with a large constant). Printed
beside prcy's: the seconds per iteration of a public numba+MPI implementation of the same
fixed-point scheme on a 2-core machine (0.25 s at K = 50, 1.0 s at 100, 4.7 s at 200, 42 s at 400,
S = 2000): quoted figures, not measured by this script; prcy's target is 10x faster at K = 200, 400.

``--yardstick`` / ``--large``: one iteration of GD on phase retrieval against a NumPy GEMM of the response
recursion's ``K^3 S / 3`` flops on the same threads, measured alternately in the same run (ratio = GEMM
seconds / iteration seconds: 1.0 is "as fast as a dense matrix product of that size"), half a second apart
(``PAUSE``). The iteration is the solver's: at the ``M_R`` of a solve after ``WARM_ITERATIONS`` iterations
(solved first, untimed), with the solver's compression tolerance ``min(tol, RANK_TOL_MAX)``. ``--yardstick``
also times the iteration with the old response pass (``method="recursion"``); both print the iteration at the
kernel's default ``rank_tol`` (``1e-13 s``: only rounding dropped), without the compression of ``M_R``'s
column blocks (``exact s``: ``rank_tol = 0``), and the mean rank of the compressed blocks (of ``DMFT_ROWS``
columns; the last, with no rows below, left out). ``ratio`` is taken from the best of 7 alternations
(``--reps``), ``med`` is the median ratio of the pairs measured one after the other. The header names the
kernels each OpenBLAS runs: OpenBLAS 0.3.30/0.3.31 do not recognize AMD Zen 5 and run their AVX2 (Haswell)
kernels there, at about half the speed of their AVX-512 ones; ``OPENBLAS_CORETYPE=SkylakeX`` in the
environment selects those, for the GEMM and for prcy's products alike (docs/benchmarks.md).

``--ranks``: on the paths of one march (alpha = 3, m0 = 0.2, t = 5, K = 401, S = 4000, ``M_R = 0.01``) of GD
on phase retrieval and on the ridge, Langevin (T = 1) and persistent SGD (ell = 0.5), the ranks of the
compressed column blocks (``response(..., ranks=...)``; -1: kept as it is), the windows formed and how far
``M_R`` moves from the pass without the compression (``rank_tol = 0``), at the kernel's default ``rank_tol``
and at the solver's.

``--kicked``: the kicked response pass (``response_kick = 0.1``) of persistent SGD in the hard regime
(docs/validation.md 7g: alpha = 3, m0 = 0.2, ell = 0.5, tau = 1, ``--chain steps``, ``--sphere
projection``, ``dt = lr = 5 / (K - 1)``) on the paths of one march, S = 4000: the blocked pass against the
recursion (the reference) and the linear response pass, alternately in the same run, best of the
repetitions. ``--psgd``: one whole solve of that case at ``dt = lr = 0.025`` (the command of
docs/validation.md 7g, one replica) with the blocked kicked pass and with the recursion, same random
numbers: wall time split into the march, the response pass and the rest, iterations, and the largest
difference of the two ``m(t)``; then the kicked pass alone, both methods, at the windows' sizes.

``--windows``: whole solves to ``tol = 1e-8`` on phase retrieval (alpha = 3, m0 = 0.2), the whole
horizon at once (the reference, same run) against horizon windows (``window = 1``): iterations,
wall time and their ratio (docs/dmft.md, "Horizon windows").
"""
import argparse
import functools
import math
import resource
import sys
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from prcy import dmft
from prcy.kernels import dmft as kd, losses, parallel

NUMBA = {50: 0.25, 100: 1.0, 200: 4.7, 400: 42.0}
GEMM_N = 2000     # inner size of the reference matrix product
GEMM_P = 25000    # its most columns (2e11 flops, 0.8 GB of operands)
WARM_ITERATIONS = 4   # the yardstick times an iteration at the M_R of a solve after this many
PAUSE = 0.5       # seconds between the yardstick's timed runs (OpenBLAS's threads spin about 0.1 s after a product)


def spec(K, S):
    return dmft.DMFTSpec.from_flat(problem="linear-regression", alpha=3.0, algorithm="gd", constraint="ridge",
                                   ridge=0.5, m0=0.2, dt=5.0 / (K - 1), t_max=5.0, samples=S)


def one_iteration(sp, samples, MR, threads, stats=False, kick=0.0, method="blocked", rank_tol=kd.RANK_TOL, ranks=None):
    t0 = time.perf_counter()
    out = dmft._march(sp, MR, samples, threads, None, losses.capsule(sp.problem))
    t1 = time.perf_counter()
    kw = dict(rank_tol=rank_tol, ranks=ranks) if kick == 0 else dict(
        kick=kick, loss=losses.capsule(sp.problem), H=out["H"], h0=samples["h0"], y=samples["y"], m=out["m"],
        sel=samples["sel"])
    kd.response(out["D"], np.ascontiguousarray(out["nu_hat"] + out["delta_nu"]), sp.dt, sp.alpha, 1.0,
                n_threads=threads, stats=stats, method=method, **kw)
    t2 = time.perf_counter()
    return t2 - t0, t1 - t0, t2 - t1


def numpy_iteration(sp, samples, MR):
    """The same equations, vectorized over samples with NumPy (one BLAS thread)."""
    K, S, dt, alpha = sp.n_points, sp.solver.samples, sp.dt, sp.alpha
    Z, h0 = samples["Z"], samples["h0"]
    H, G = np.zeros((K, S)), np.zeros((K, S))
    MC, L = np.zeros((K, K)), np.zeros((K, K))
    m = np.full(K, sp.init.m0)
    nut = np.zeros(K)
    t0 = time.perf_counter()
    H[0] = samples["h_init"]
    for k in range(K):
        if k:
            H[k] = H[k - 1] + dt * (-nut[k - 1] * H[k - 1] - G[k - 1] + dt * MR[k - 1, :k - 1] @ H[:k - 1]
                                    + L[k - 1, :k] @ Z[:k])
        ht = H[k] + h0 * m[k]
        G[k] = ht - h0
        MC[k, :k + 1] = alpha * (G[:k + 1] @ G[k]) / S
        MC[:k + 1, k] = MC[k, :k + 1]
        nut[k] = 0.5 + alpha
        if k + 1 < K:
            m[k + 1] = m[k] + dt * (-0.5 * m[k] - alpha * np.mean(G[k] * h0))
        L[:k + 1, :k + 1] = np.linalg.cholesky(MC[:k + 1, :k + 1] + 1e-10 * np.eye(k + 1))
    D = np.ones((K, S))
    MRn = np.zeros((K, K))
    for j in range(K - 2, -1, -1):
        T = np.zeros((K, S))
        T[j + 1] = D[j]
        for k in range(j + 1, K):
            MRn[k, j] = alpha * np.mean(D[k] * T[k])
            if k < K - 1:
                T[k + 1] = T[k] * (1 - dt * nut[k] - dt * D[k]) + dt * dt * MRn[k, j + 1:k] @ T[j + 1:k]
    return time.perf_counter() - t0


def gemm_seconds(flops, threads):
    """Wall time of a NumPy matrix product of ``flops`` floating-point operations on ``threads`` BLAS
    threads: ``(n x n) @ (n x p)`` with ``n = GEMM_N`` and at most ``GEMM_P`` columns, its time scaled
    by the flop count when ``flops`` needs more (the rate is flat at these sizes). The product is written
    into an output allocated and touched before the clock starts: a new output's first touch (171 MB at
    K = 401, S = 4000, in huge pages that the kernel may first have to compact) cost up to 0.2 s of the
    0.7 s (docs/benchmarks.md, "The iteration of a solve")."""
    rng = np.random.default_rng(0)
    p = min(GEMM_P, max(1, int(round(flops / (2.0 * GEMM_N * GEMM_N)))))
    a, b = rng.random((GEMM_N, GEMM_N)), rng.random((GEMM_N, p))
    c = np.ones((GEMM_N, p))
    with threadpool_limits(threads):
        t0 = time.perf_counter()
        np.matmul(a, b, out=c)
        return (time.perf_counter() - t0) * flops / (2.0 * GEMM_N * GEMM_N * p)


def blas_cores():
    """The kernels each loaded OpenBLAS runs (threadpoolctl's ``architecture``): NumPy's, which times the
    GEMM, and SciPy's, which prcy's kernels call through ``scipy.linalg.cython_blas``."""
    return ", ".join(f"{i['filepath'].rsplit('/', 1)[-1].split('-')[0]} {i['version']}: {i.get('architecture')}"
                     for i in threadpool_info() if i["internal_api"] == "openblas")


def yardstick(nt, cases, reps, old):
    """One iteration of GD on phase retrieval (alpha = 3, m0 = 0.2, t = 5, dt = 5 / (K - 1)) against a
    dense GEMM of the recursion's ``K^3 S / 3`` flops, measured alternately in this run, ``reps`` times;
    ``ratio`` = GEMM seconds / iteration seconds (1: as fast as that GEMM) from the best of each, ``med``
    the median of the ratios of the pairs measured one after the other (the host's other tenants slow
    either by up to a third from minute to minute). The iteration is the solver's: its ``M_R`` is the
    iterate of a solve after ``WARM_ITERATIONS`` iterations (their ``M_R`` is less smooth than a first
    guess's, so its column blocks need more singular vectors), and the compression's tolerance the solver's
    (``min(tol, RANK_TOL_MAX)``). Each timed run starts ``PAUSE`` seconds after the one before, so that
    the GEMM's OpenBLAS threads, which spin for a while after a product, have gone to sleep."""
    print(f"yardstick: GD phase retrieval, {nt} threads; ratio = (K^3 S / 3 flops GEMM s) / (iteration s)")
    print(f"OpenBLAS kernels: {blas_cores()}")
    print(f"{'K':>5} {'S':>6} {'GEMM s':>8} {'GF/s':>6} {'iter s':>8} {'march s':>8} {'resp s':>8} {'ratio':>6} "
          f"{'med':>5} {'1e-13 s':>8} {'exact s':>8} {'rank':>5} {'old iter s':>10} {'old ratio':>9}")
    for K, S in cases:
        case = dict(problem="phase-retrieval", alpha=3.0, algorithm="gd", m0=0.2, dt=5.0 / (K - 1), t_max=5.0,
                    samples=S)
        sp = dmft.DMFTSpec.from_flat(**case)
        samples = dmft.draw_samples(sp)
        warm = dmft.solve(**case, threads=nt, max_iter=WARM_ITERATIONS)
        MR = np.ascontiguousarray(warm.M_R.values)
        tol = min(sp.solver.tol, dmft.RANK_TOL_MAX)
        flops = K ** 3 * S / 3.0
        ranks = np.zeros(-(-K // kd.ROWS), dtype=np.intp)

        def paused(f, *args, **kw):
            time.sleep(PAUSE)
            return f(*args, **kw)
        runs, gemms, exact, fine = [paused(one_iteration, sp, samples, MR, nt, rank_tol=tol, ranks=ranks)], [], [], []
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        for rep in range(reps):
            gemms.append(paused(gemm_seconds, flops, nt))
            if rep:
                runs.append(paused(one_iteration, sp, samples, MR, nt, rank_tol=tol))
            fine.append(paused(one_iteration, sp, samples, MR, nt, rank_tol=kd.RANK_TOL)[0])
            exact.append(paused(one_iteration, sp, samples, MR, nt, rank_tol=0.0)[0])
        g = min(gemms)
        total, march, resp = min(runs)
        med = float(np.median([gm / run[0] for gm, run in zip(gemms, runs)]))
        kept = ranks[:-1][ranks[:-1] >= 0]        # the compressed blocks, the last (no rows below) left out
        rank = kept.mean() if kept.size else float("nan")
        ref = paused(one_iteration, sp, samples, MR, nt, method="recursion")[0] if old else float("nan")
        print(f"{K:>5} {S:>6} {g:>8.2f} {flops / g / 1e9:>6.1f} {total:>8.2f} {march:>8.2f} {resp:>8.2f} "
              f"{g / total:>6.2f} {med:>5.2f} {min(fine):>8.2f} {min(exact):>8.2f} {rank:>5.1f} {ref:>10.2f} "
              f"{g / ref:>9.2f}", flush=True)
        print(f"ranks of the column blocks on the first grid (-1: kept as they are): {ranks.tolist()}")
        print("the warm-up solve's seconds per iteration (the last with the diagnostics): "
              + " ".join(f"{x:.2f}" for x in warm.iteration_seconds.values))
        print(f"peak RSS after the warm-up solve and the first iteration (before any GEMM): {rss:.0f} MiB")


PASS_CASES = {
    "ridge GD, dt 0.1, t 10, S 8000": dict(problem="linear-regression", algorithm="gd", constraint="ridge",
                                          ridge=0.5, alpha=3.0, m0=0.2, dt=0.1, t_max=10.0, samples=8000),
    "GD alpha 2, m0 0.8, t 10, S 2000": dict(alpha=2.0, m0=0.8, algorithm="gd", dt=0.02, t_max=10.0, samples=2000),
    "GD alpha 3, m0 0.2, t 5, S 2000": dict(alpha=3.0, m0=0.2, algorithm="gd", dt=0.025, t_max=5.0, samples=2000),
    "Langevin T 1, t 5, S 2000": dict(alpha=3.0, m0=0.2, algorithm="langevin", temperature=1.0, dt=0.02, t_max=5.0,
                                      samples=2000),
    "P-SGD linear, t 5, S 2000": dict(alpha=3.0, m0=0.2, algorithm="psgd", batch_fraction=0.5, persistence=1.0,
                                      lr=0.02, t_max=5.0, samples=2000),
}


def passes(nt):
    """The validation cases of docs/validation.md section 7 (at the sizes named) solved to tol 1e-8 with
    the blocked response pass and with the recursion (the reference), same random numbers."""
    print(f"fixed points, blocked response pass vs the recursion, tol 1e-8, {nt} threads")
    print(f"{'case':<34} {'blocked: status':>16} {'it':>4} {'s':>7} {'recursion: status':>18} {'it':>4} {'s':>7} "
          f"{'max |dm|':>9} {'max |dM_R|/max|M_R|':>20}")
    real = kd.response
    for name, case in PASS_CASES.items():
        runs = []
        for method in ("blocked", "recursion"):
            kd.response = functools.partial(real, method=method)
            try:
                t0 = time.perf_counter()
                ds = dmft.solve(**case, tol=1e-8, threads=nt)
                runs.append((ds, time.perf_counter() - t0))
            finally:
                kd.response = real
        (a, ta), (b, tb) = runs
        dm = float(np.abs(a.magnetization - b.magnetization).max())
        dmr = float(np.abs(a.M_R - b.M_R).max() / np.abs(b.M_R).max())
        print(f"{name:<34} {a.attrs['status']:>16} {a.attrs['iterations']:>4} {ta:>7.1f} {b.attrs['status']:>18} "
              f"{b.attrs['iterations']:>4} {tb:>7.1f} {dm:>9.1e} {dmr:>20.1e}", flush=True)


RANK_CASES = {"GD, phase retrieval": dict(problem="phase-retrieval", algorithm="gd"),
              "GD, ridge": dict(problem="linear-regression", algorithm="gd", constraint="ridge", ridge=0.5),
              "Langevin, T = 1": dict(algorithm="langevin", temperature=1.0),
              "persistent SGD, ell = 0.5": dict(algorithm="psgd", batch_fraction=0.5, persistence=1.0, lr=5.0 / 400)}


def march_paths(sp, nt):
    """One march of ``sp`` with ``M_R = 0.01`` below the diagonal: ``(out, samples, loss capsule, D, nut)``,
    the last two the first arguments of ``prcy.kernels.dmft.response``."""
    K = sp.n_points
    samples, cap = dmft.draw_samples(sp), losses.capsule(sp.problem)
    out = dmft._march(sp, np.tril(np.full((K, K), 0.01), -1), samples, nt, None, cap)
    return out, samples, cap, out["D"], np.ascontiguousarray(out["nu_hat"] + out["delta_nu"])


def rank_table(nt, K=401, S=4000):
    """``--ranks`` (module docstring)."""
    print(f"ranks of M_R's column blocks ({kd.ROWS} columns), K = {K}, S = {S}, at rank_tol {kd.RANK_TOL:.0e} "
          f"(the kernel's default) and {dmft.RANK_TOL_MAX:.0e} (the solver's at tol >= that); -1: kept as it is")
    for name, case in RANK_CASES.items():
        sp = dmft.DMFTSpec.from_flat(alpha=3.0, m0=0.2, dt=5.0 / (K - 1), t_max=5.0, samples=S, **case)
        *_, D, nut = march_paths(sp, nt)
        args = (D, nut, sp.dt, sp.alpha, sp.algorithm.grad_scale)
        n_blocks = -(-K // kd.ROWS)
        exact = kd.response(*args, n_threads=nt, rank_tol=0.0)
        for tol in (kd.RANK_TOL, dmft.RANK_TOL_MAX):
            ranks = np.zeros(n_blocks, dtype=np.intp)
            windows = np.zeros((n_blocks, n_blocks), dtype=np.intp)
            MR = kd.response(*args, n_threads=nt, rank_tol=tol, ranks=ranks, windows=windows)
            kept = windows[windows >= 0]
            print(f"{name:<28} {tol:>7.0e} {' '.join(f'{r:>3}' for r in ranks)}   windows {kept.size:>3} "
                  f"(mean rank {kept.mean() if kept.size else float('nan'):>4.1f})   max |dM_R| / max |M_R| "
                  f"{np.abs(MR - exact).max() / np.abs(exact).max():.1e}", flush=True)


def kicked_paths(sp, nt):
    """The paths of one march of the kicked spec ``sp`` (``march_paths``) and the arguments of
    ``prcy.kernels.dmft.response`` for its kicked pass: ``(D, nut, kw)``."""
    out, samples, cap, D, nut = march_paths(sp, nt)
    kw = dict(kick=sp.solver.response_kick, loss=cap, H=out["H"], h0=samples["h0"], y=samples["y"], m=out["m_v"],
              sel=samples["sel"], amplitude=sp.amplitude, project_scale=out["scale"])
    return D, nut, kw


def kicked_pass(nt, cases, reps):
    """The kicked response pass of P-SGD in the hard regime (module docstring), blocked against the
    recursion and against the linear pass on the same paths, timed alternately (best of ``reps``)."""
    print(f"kicked response pass (kick 0.1), P-SGD hard regime, {nt} threads, best of {reps}")
    print(f"{'K':>5} {'S':>6} {'blocked s':>10} {'recursion s':>12} {'speed-up':>9} {'linear s':>9} {'kicked/linear':>14}")
    for K, S in cases:
        sp = dmft.DMFTSpec.from_flat(alpha=3.0, m0=0.2, algorithm="psgd", batch_fraction=0.5, persistence=1.0,
                                     chain="steps", sphere="projection", response_kick=0.1, dt=5.0 / (K - 1),
                                     lr=5.0 / (K - 1), t_max=5.0, samples=S)
        D, nut, kw = kicked_paths(sp, nt)

        def seconds(**extra):
            t0 = time.perf_counter()
            kd.response(D, nut, sp.dt, sp.alpha, sp.algorithm.grad_scale, n_threads=nt, stats=True, **extra)
            return time.perf_counter() - t0
        runs = [(seconds(**kw), seconds(**kw, method="recursion"), seconds()) for _ in range(reps)]
        blocked, recursion, linear = (min(r[i] for r in runs) for i in range(3))
        print(f"{K:>5} {S:>6} {blocked:>10.3f} {recursion:>12.3f} {recursion / blocked:>8.2f}x {linear:>9.3f} "
              f"{blocked / linear:>13.2f}x", flush=True)


PSGD_HARD = dict(alpha=3.0, m0=0.2, algorithm="psgd", batch_fraction=0.5, persistence=1.0, chain="steps",
                 sphere="projection", response_kick=0.1, dt=0.025, lr=0.025, t_max=5.0, samples=4000, window=1.0,
                 tol=1e-6, max_iter=150)


def psgd_solve(nt):
    """One solve of ``PSGD_HARD`` with each response method, its wall time split by wrapping the march
    (``prcy.dmft._march``) and the response pass (``prcy.kernels.dmft.response``)."""
    print(f"P-SGD hard regime (docs/validation.md 7g), one replica, {nt} threads: wall time split")
    print(f"{'method':<10} {'total s':>8} {'march s':>8} {'resp s':>8} {'other s':>8} {'it':>4} {'status':>10}")
    real_march, real_response = dmft._march, kd.response
    runs = []
    for method in ("blocked", "recursion"):
        spent = {"march": 0.0, "response": 0.0}

        def timed(name, f):
            def wrapper(*args, **kw):
                t0 = time.perf_counter()
                try:
                    return f(*args, **kw)
                finally:
                    spent[name] += time.perf_counter() - t0
            return wrapper
        dmft._march = timed("march", real_march)
        kd.response = timed("response", functools.partial(real_response, method=method))
        try:
            t0 = time.perf_counter()
            ds = dmft.solve(**PSGD_HARD, threads=nt)
            total = time.perf_counter() - t0
        finally:
            dmft._march, kd.response = real_march, real_response
        runs.append(ds)
        print(f"{method:<10} {total:>8.1f} {spent['march']:>8.1f} {spent['response']:>8.1f} "
              f"{total - spent['march'] - spent['response']:>8.1f} {ds.attrs['iterations']:>4} "
              f"{ds.attrs['status']:>10}", flush=True)
    print(f"max |dm| between the two: {float(np.abs(runs[0].magnetization - runs[1].magnetization).max()):.1e}")
    print("the kicked pass alone at the windows' sizes, on the paths of one march (M_R = 0.01), best of 2:")
    print(f"{'K':>5} {'blocked s':>10} {'recursion s':>12} {'speed-up':>9}")
    for K in range(41, runs[0].sizes["time"] + 1, 40):
        sp = dmft.DMFTSpec.from_flat(**{**PSGD_HARD, "t_max": PSGD_HARD["dt"] * (K - 1), "window": None})
        D, nut, kw = kicked_paths(sp, nt)
        seconds = {}
        for method in ("blocked", "recursion") * 2:
            t0 = time.perf_counter()
            kd.response(D, nut, sp.dt, sp.alpha, sp.algorithm.grad_scale, method=method, n_threads=nt, stats=True,
                        **kw)
            seconds[method] = min(seconds.get(method, math.inf), time.perf_counter() - t0)
        print(f"{K:>5} {seconds['blocked']:>10.3f} {seconds['recursion']:>12.3f} "
              f"{seconds['recursion'] / seconds['blocked']:>8.2f}x", flush=True)


def best(f, reps):
    return min((f() for _ in range(reps)), key=lambda r: r[0] if isinstance(r, tuple) else r)


WINDOW_CASES = {
    "GD, t = 5": dict(algorithm="gd"),
    "P-SGD kick 0.1, t = 5": dict(algorithm="psgd", batch_fraction=0.5, persistence=1.0, response_kick=0.1),
    "P-SGD kick 0.1, t = 8": dict(algorithm="psgd", batch_fraction=0.5, persistence=1.0, response_kick=0.1,
                                  t_max=8.0),
}


def windows(nt):
    print(f"whole solves to tol 1e-8: phase retrieval alpha = 3, m0 = 0.2, dt = 0.025, S = 1000, {nt} threads")
    print(f"{'case':<24} {'whole: status':>16} {'it':>4} {'s':>7} {'window 1: status':>18} {'it':>4} {'s':>7} "
          f"{'speed-up':>9} {'max |dm|':>9}")
    for name, case in WINDOW_CASES.items():
        kw = {**dict(problem="phase-retrieval", alpha=3.0, m0=0.2, dt=0.025, t_max=5.0, samples=1000, seed=1,
                     tol=1e-8, max_iter=300), **case}
        runs = []
        for window in (None, 1.0):
            t0 = time.perf_counter()
            ds = dmft.solve(**kw, window=window, threads=nt)
            runs.append((ds, time.perf_counter() - t0))
        (a, ta), (b, tb) = runs
        dm = float(np.abs(a.magnetization - b.magnetization).max())
        print(f"{name:<24} {a.attrs['status']:>16} {a.attrs['iterations']:>4} {ta:>7.1f} {b.attrs['status']:>18} "
              f"{b.attrs['iterations']:>4} {tb:>7.1f} {ta / tb:>8.2f}x {dm:>9.1e}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--memory", action="store_true", help="also K = 1000, S = 10^4 (peak memory)")
    ap.add_argument("--windows", action="store_true", help="only: whole solves, whole horizon vs horizon windows")
    ap.add_argument("--yardstick", action="store_true", help="only: one iteration against a dense GEMM of "
                                                             "K^3 S / 3 flops (K = 401, S = 4000; with the old pass)")
    ap.add_argument("--large", action="store_true", help="only: the yardstick at K = 1001, S = 10^4 (peak memory)")
    ap.add_argument("--reps", type=int, default=None, help="the yardstick's alternations (default 7; --large 1)")
    ap.add_argument("--passes", action="store_true", help="only: validation fixed points, blocked response pass "
                                                          "vs the recursion (~10 min)")
    ap.add_argument("--kicked", action="store_true", help="only: the kicked response pass, blocked vs the "
                                                          "recursion (P-SGD, K = 201 and 401, S = 4000)")
    ap.add_argument("--ranks", action="store_true", help="only: the ranks of M_R's column blocks by algorithm")
    ap.add_argument("--psgd", action="store_true", help="only: one P-SGD solve in the hard regime, blocked kicked "
                                                        "pass vs the recursion, split into march and response")
    args = ap.parse_args()
    nt = parallel.n_threads(None)
    if args.psgd:
        psgd_solve(nt)
        return 0
    if args.ranks:
        rank_table(nt)
        return 0
    if args.kicked:
        kicked_pass(nt, [(201, 4000), (401, 4000)], 3)
        return 0
    if args.passes:
        passes(nt)
        return 0
    if args.yardstick or args.large:
        yardstick(nt, [(1001, 10000)] if args.large else [(401, 4000)], args.reps or (1 if args.large else 7),
                  old=args.yardstick)
        return 0
    if args.windows:
        with threadpool_limits(1):
            windows(nt)
        return 0
    print(f"prcy DMFT iteration, linear ridge, t = 5; threads available: {nt}; build {parallel.build_info()}")
    rows = []
    with threadpool_limits(1):
        print(f"\n{'K':>5} {'S':>6} {'thr':>4} {'total s':>9} {'march s':>8} {'resp s':>8} {'numpy s':>8} "
              f"{'x numpy':>8} {'numba s':>8} {'x numba':>8}")
        for K, S, threads in [(50, 2000, nt), (100, 2000, nt), (200, 2000, nt), (400, 2000, nt),
                              (200, 2000, 1), (400, 2000, 1), (200, 1000, nt), (200, 4000, nt)]:
            sp = spec(K, S)
            samples = dmft.draw_samples(sp)
            MR = np.tril(np.full((K, K), 0.01), -1)
            reps = 3 if K <= 200 else 1
            total, march, resp = best(lambda: one_iteration(sp, samples, MR, threads), reps)
            ref = best(lambda: numpy_iteration(sp, samples, MR), 1) if K <= 100 and threads == nt else None
            numba = NUMBA.get(K) if S == 2000 and threads == nt else None
            print(f"{K:>5} {S:>6} {threads:>4} {total:>9.3f} {march:>8.3f} {resp:>8.3f} "
                  f"{ref if ref is not None else float('nan'):>8.2f} "
                  f"{ref / total if ref is not None else float('nan'):>8.1f} "
                  f"{numba if numba else float('nan'):>8.2f} {numba / total if numba else float('nan'):>8.1f}",
                  flush=True)
            rows.append((K, S, threads, total))
    t = {(K, S, th): v for K, S, th, v in rows}
    if nt > 1:
        print(f"\nthread scaling (1 -> {nt} threads): K=200 {t[(200, 2000, 1)] / t[(200, 2000, nt)]:.2f}x, "
              f"K=400 {t[(400, 2000, 1)] / t[(400, 2000, nt)]:.2f}x")
    print(f"K scaling at S=2000: t(400)/t(200) = {t[(400, 2000, nt)] / t[(200, 2000, nt)]:.2f} (K^3: 8)")
    print(f"S scaling at K=200: t(4000)/t(1000) = {t[(200, 4000, nt)] / t[(200, 1000, nt)]:.2f} (S: 4)")
    with threadpool_limits(1):
        for K in (200, 400):
            sp = spec(K, 2000)
            samples = dmft.draw_samples(sp)
            MR = np.tril(np.full((K, K), 0.01), -1)
            reps = 3 if K <= 200 else 2
            with_stats = best(lambda: one_iteration(sp, samples, MR, nt, stats=True), reps)[2]
            without = best(lambda: one_iteration(sp, samples, MR, nt), reps)[2]
            kicked = best(lambda: one_iteration(sp, samples, MR, nt, kick=0.1), reps)[2]
            print(f"response pass at K={K}, S=2000: with diagnostics {with_stats:.3f} s, without {without:.3f} s "
                  f"({with_stats / without:.3f}x); kicked {kicked:.3f} s ({kicked / without:.2f}x the linear; "
                  f"both without)")
    print(f"peak RSS so far: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    if args.memory:
        sp = spec(1000, 10000)
        samples = dmft.draw_samples(sp)
        total, march, resp = one_iteration(sp, samples, np.zeros((1000, 1000)), nt)
        print(f"K=1000, S=10^4: one iteration {total:.1f} s (march {march:.1f} s, response {resp:.1f} s); "
              f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
