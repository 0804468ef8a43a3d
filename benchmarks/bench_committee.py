#!/usr/bin/env python
"""Time one step of a committee machine (phase retrieval, K hidden units): prcy's kernel against NumPy
doing the same two matrix products.

Run from anywhere once prcy is installed (``pip install .``):

    python benchmarks/bench_committee.py            # 7 repetitions, about 2 minutes
    python benchmarks/bench_committee.py --quick    # 3 repetitions

Per case ``(N, alpha, K)`` it prints the median time per step over repetitions (the implementations are
interleaved within each repetition, so a burst of load elsewhere hits all of them alike), every ratio,
and whether the targets are met (prcy not slower than NumPy anywhere, >= 1.5x faster at K = 2). A script,
not a test: nothing fails when a target is missed.

What is timed (GD on the sphere, lr 0.01, float64, one thread):
- prcy: ``run_trajectory`` with a committee capsule for 2S and for S steps; the difference divided by S
  is one step (it removes the set-up and the observations at the first and last step). Its row path is
  the one ``committee_block`` picks for K (blocks of eight rows below K = 4, dgemm on row blocks from
  K = 4); the other path is timed too, for the record of where the switch belongs;
- NumPy: ``H = X @ W.T / sqrt(N)``, ``r = mean(H^2, 1) - y^2``, ``C = r H / (K sqrt(N))``, ``G = C.T @ X``,
  ``W -= lr G``, each row of ``W`` back to ``|w_k|^2 = N``, with BLAS limited to one thread (threadpoolctl):
  two passes over ``X`` per step, where prcy reads each row once.
"""
import argparse
import os
import time

import numpy as np
from threadpoolctl import threadpool_limits

from prcy.kernels import dynamics, losses

ETA = 0.01
CASES = [(1000, 3, 2), (1000, 3, 64), (256, 3, 256)]
CAPSULE = losses.committee_capsule("phase-retrieval")
PARAMS = dict(eta=ETA, grad_scale=1.0, ridge=0.0, sphere=True, check_every=10 ** 9, tol=1e-300, early_stop=False,
              grad_tol=0.0, optimizer="plain", momentum=0.0, beta1=0.9, beta2=0.999, adam_eps=1e-8,
              project_velocity=False)


def data(n, alpha, k):
    m = int(alpha * n)
    w0, X, y, _, _ = dynamics.generate(np.random.PCG64(0), m, n, 0)
    init = np.random.PCG64(1)
    W = np.array([dynamics.initial_weights(init, w0, 0.2, True) for _ in range(k)])
    return w0, X, y, W


def prcy_seconds(X, y, w0, W, steps, block):
    def run(n_steps):
        t = time.perf_counter()
        dynamics.run_trajectory(CAPSULE, X, y, w0, W.ravel(), np.empty((0, X.shape[1])), np.empty(0),
                                selection="full", params=dict(PARAMS, n_steps=n_steps),
                                record_steps=np.array([0, n_steps], dtype=np.int64),
                                temp_starts=np.zeros(1, np.int64), temp_values=np.zeros(1), block=block)
        return time.perf_counter() - t
    return (run(2 * steps) - run(steps)) / steps


def numpy_seconds(X, y, W, steps):
    k, n = W.shape
    s = 1.0 / np.sqrt(n)
    W = W.copy()
    y2 = y * y
    t = time.perf_counter()
    for _ in range(steps):
        H = X @ W.T * s
        C = ((H * H).mean(axis=1) - y2)[:, None] * H * (s / k)
        W -= ETA * (C.T @ X)
        W *= np.sqrt(n) / np.linalg.norm(W, axis=1, keepdims=True)
    return (time.perf_counter() - t) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repetitions instead of 7")
    args = parser.parse_args()
    reps = 3 if args.quick else 7
    print(f"load average (1 min) at start: {os.getloadavg()[0]:.2f}")
    met = True
    with threadpool_limits(1, user_api="blas"):
        for n, alpha, k in CASES:
            w0, X, y, W = data(n, alpha, k)
            steps = max(3, int(2e8 / (alpha * n * n * max(k, 8))))        # about 0.1-0.5 s per timed run
            chosen = dynamics.committee_block(k, n)
            other = 0 if chosen else max(8, min(dynamics.BLOCK_ROWS, dynamics.BLOCK_BYTES // (8 * n)))
            names = {"prcy": chosen, f"prcy, {'8-row' if other == 0 else f'dgemm {other}-row'} path": other}
            times = {name: [] for name in list(names) + ["numpy"]}
            for r in range(reps):
                order = list(times) if r % 2 == 0 else list(times)[::-1]
                for name in order:
                    times[name].append(numpy_seconds(X, y, W, steps) if name == "numpy"
                                       else prcy_seconds(X, y, w0, W, steps, names[name]))
            med = {name: float(np.median(v)) for name, v in times.items()}
            ratio = med["numpy"] / med["prcy"]
            target = 1.5 if k == 2 else 1.0
            ok = ratio >= target
            met &= ok
            path = "8-row blocks" if chosen == 0 else f"dgemm on {chosen}-row blocks"
            print(f"N={n} alpha={alpha} K={k} ({path}, {steps} steps per run, {reps} repetitions):")
            for name, value in med.items():
                print(f"  {name:28s} {value * 1e3:9.3f} ms/step   numpy/this = {med['numpy'] / value:5.2f}")
            print(f"  target numpy/prcy >= {target}: {'MET' if ok else 'NOT MET'} ({ratio:.2f})")
    print(f"load average (1 min) at end: {os.getloadavg()[0]:.2f}")
    print("all targets MET" if met else "some target NOT MET")


if __name__ == "__main__":
    main()
