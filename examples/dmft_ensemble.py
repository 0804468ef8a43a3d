#!/usr/bin/env python
"""DMFT against simulations for persistent SGD and Langevin at alpha = 3, m0 = 0.2 (figs 5 and 6 of
Mignacco et al. 2021), with error bars on both sides; the figure and numbers of docs/validation.md 7.

    python examples/dmft_ensemble.py --replicas 16 --samples 2000       # ~40 min on 2 cores

Why an ensemble: in this hard regime the DMFT solved with S frozen samples is itself a random
quantity (solve-to-solve standard deviation of m(t) about 0.1 at S = 2000, like a single simulation at
N ~ S/alpha); the mean of independent solves (seeds 0..R-1) and its standard error are what can be
compared with the simulation average.
"""
import argparse

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

import prcy  # noqa: E402
from prcy import dmft  # noqa: E402

CASES = {"psgd": dict(algorithm="psgd", batch_fraction=0.5, persistence=1.0),
         "langevin": dict(algorithm="langevin", temperature=1.0)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--replicas", type=int, default=16)
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seeds", type=int, default=32)
    ap.add_argument("--t-max", type=float, default=5.0)
    ap.add_argument("-o", "--output", default="dmft-psgd-langevin.png")
    args = ap.parse_args()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, (name, kw) in zip(axes, CASES.items()):
        runs = [dmft.solve(problem="phase-retrieval", alpha=3.0, m0=0.2, dt=0.02, t_max=args.t_max,
                           samples=args.samples, seed=r, **kw).magnetization for r in range(args.replicas)]
        theory = xr.concat(runs, "replica")
        th_mean, th_se = theory.mean("replica"), theory.std("replica") / np.sqrt(args.replicas)
        sims = prcy.simulate(alpha=3.0, m0=0.2, n=args.n, lr=0.01, t_max=args.t_max, grid="linear", points=51,
                             seeds=args.seeds, **kw).magnetization
        s_mean, s_se = sims.mean("seed"), sims.std("seed") / np.sqrt(args.seeds)
        d, s = th_mean.interp(time=s_mean.time), th_se.interp(time=s_mean.time)
        z = (d - s_mean) / np.sqrt(s**2 + s_se**2)
        print(f"{name}: max |z| = {float(abs(z[1:]).max()):.2f}; m(t_max): DMFT {float(th_mean[-1]):.4f} "
              f"+- {float(th_se[-1]):.4f}, sims {float(s_mean[-1]):.4f} +- {float(s_se[-1]):.4f}")
        t = theory.time
        ax.fill_between(t, th_mean - 2 * th_se, th_mean + 2 * th_se, color="C3", alpha=0.3, lw=0)
        ax.plot(t, th_mean, color="C3", label=f"DMFT, {args.replicas} solves x S = {args.samples}")
        ax.errorbar(s_mean.time, s_mean, yerr=2 * s_se, fmt="o", ms=3, color="0.4",
                    label=f"simulations N = {args.n}, {args.seeds} seeds")
        ax.set_title(f"{name}, alpha = 3, m0 = 0.2")
        ax.set_xlabel("t")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("m(t)  (mean, +- 2 standard errors)")
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
