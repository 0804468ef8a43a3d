#!/usr/bin/env python
"""Cost of the Hessian observables (``--hessian K``): Hessian-vector products per recording time along
a gradient-descent trajectory, and the time of one recording in gradient steps, measured in the same run.

    python benchmarks/bench_hessian.py              # N = 1000, alpha = 10, K = 4, about a minute
    python benchmarks/bench_hessian.py --n 500      # smaller

A phase-retrieval GD run from a random start on the sphere (lr 0.01, t = 20, 15 linearly spaced
recording times: the descent, the plateau, the fall to the teacher and the minimum) is made twice on one
thread, with and without ``--hessian K``; the difference of the wall times divided by the number of
recordings is the cost of one recording, and divided by the time of one gradient step (the run without
the Hessian, per step) its cost in steps. This is a script, not a test: nothing fails when a target is
missed.
"""
import argparse
import time

import numpy as np

import prcy


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--alpha", type=float, default=10.0)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=2)
    args = ap.parse_args()
    options = dict(alpha=args.alpha, n=args.n, init="random", algorithm="gd", lr=0.01, t_max=20, points=15,
                   grid="linear", seeds=args.seeds, threads=1)
    t = time.perf_counter()
    plain = prcy.simulate(**options)
    t_plain = time.perf_counter() - t
    t = time.perf_counter()
    ds = prcy.simulate(hessian=args.k, **options)
    t_hessian = time.perf_counter() - t
    steps = args.seeds * int(round(20 / 0.01))
    recordings = args.seeds * ds.sizes["time"]
    step = t_plain / steps
    per_recording = (t_hessian - t_plain) / recordings
    products = ds.hessian_products.values.sum() / recordings
    print(f"# prcy Hessian benchmark: N = {args.n}, alpha = {args.alpha}, K = {args.k}, {args.seeds} seeds, "
          f"{ds.sizes['time']} recordings each, one thread")
    print(f"gradient step                         {step * 1e3:8.3f} ms")
    print(f"one recording (K eigenpairs)          {per_recording * 1e3:8.1f} ms = {per_recording / step:6.1f} steps")
    print(f"Hessian-vector products per recording {products:8.1f}   target <= 60  "
          f"{'MET' if products <= 60 else 'NOT MET'}")
    print(f"recording in gradient steps           {per_recording / step:8.1f}   target <= 100 "
          f"{'MET' if per_recording / step <= 100 else 'NOT MET'}")
    print(f"converged recordings                  {int(ds.hessian_converged.sum())} of {recordings}; "
          f"final train loss {float(plain.train_loss.isel(time=-1).median()):.2e}")
    lowest = ds.hessian_eigenvalues.isel(seed=0, eig=0).values
    print("lowest eigenvalue along seed 0:", np.array2string(lowest, precision=2, max_line_width=200))


if __name__ == "__main__":
    main()
