"""One AMP iteration (prcy.amp) against the two BLAS matrix-vector products it cannot avoid.

An iteration of GAMP reads X twice (``X w`` and ``X^T g``, dgemv) and does O(M + N) elementwise work in
NumPy (the output denoiser, the precision, the prior denoiser) plus, in ``prcy.amp.trajectory``, the
observables and the training loss. This script times, on one BLAS thread, at alpha = 2 (N = 256 at
alpha = 1.5):

- ``two gemv``: ``X @ w`` and ``X.T @ g`` alone;
- ``gamp_step``: one ``prcy.amp.gamp_step`` including the fields ``X @ w``;
- ``trajectory``: ``prcy.amp.trajectory`` (at most 50 iterations, recording every one) per iteration.

Medians over repetitions (at least 20, about 2e8 matrix elements in total per size). Runs in about 10 s.
Run it on an idle machine: the load average at start is printed.

    python benchmarks/bench_amp.py
"""
import math
import os
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from prcy import amp
from prcy.kernels import dynamics

SIZES = [(256, 1.5), (1000, 2.0), (2000, 2.0), (4000, 2.0)]


def median_time(f, reps):
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main():
    print(f"# numpy {np.__version__}; blas: "
          + "; ".join(f"{i['internal_api']} {i['version']} {i.get('architecture')}" for i in threadpool_info()
                      if i["user_api"] == "blas"))
    print(f"# load average (1 min) at start: {os.getloadavg()[0]:.2f}")
    print("| N | alpha | M | two gemv (ms) | gamp_step (ms) | ratio | trajectory, per iteration (ms) | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    with threadpool_limits(limits=1, user_api="blas"):
        for n, alpha in SIZES:
            m = int(round(alpha * n))
            w0, X, y, _, _ = dynamics.generate(np.random.PCG64(1), m, n)
            rng = np.random.default_rng(0)
            w, c = 0.3 * w0 + 0.5 * rng.standard_normal(n), 0.5
            g = rng.standard_normal(m)
            reps = max(20, int(2e8 / (m * n)))
            gemv = median_time(lambda: (X @ w, X.T @ g), reps)
            first = amp.gamp_step(X, y, w, c, X @ w / math.sqrt(n))
            step = median_time(lambda: amp.gamp_step(X, y, w, c, X @ w / math.sqrt(n), first.g, first.lam), reps)
            k = 50
            runs = []
            for _ in range(3):
                t = time.perf_counter()
                out = amp.trajectory(X, y, w0, w, c, np.arange(k + 1), n_steps=k, tol=1e-300)
                runs.append((time.perf_counter() - t) / max(1, out["stop_step"]))    # iterations actually run
            traj = float(np.median(runs))
            print(f"| {n} | {alpha:g} | {m} | {gemv * 1e3:.3f} | {step * 1e3:.3f} | {step / gemv:.2f} | "
                  f"{traj * 1e3:.3f} | {traj / gemv:.2f} |")


if __name__ == "__main__":
    main()
