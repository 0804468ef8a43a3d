#!/usr/bin/env python
"""DMFT against simulations for persistent SGD and Langevin at alpha = 3, m0 = 0.2 (figs 5 and 6 of
Mignacco, Urbani & Zdeborová 2021), with error bars on both sides; the figure and numbers of
docs/validation.md 7c (and, with --response-kick, 7d).

    python examples/dmft_ensemble.py        # 8 replicas x S = 4000 to t = 10 per algorithm: ~3.5 h on 2 cores
    python examples/dmft_ensemble.py --replicas 16 --samples 2000 --t-max 5                     # ~1 h
    python examples/dmft_ensemble.py --response-kick 0.1 --t-max 5    # kicked response (docs/dmft.md), ~2x the response cost

(One replica at S = 4000, t = 10 takes about 10 min (Langevin) and 12-22 min (P-SGD) of one core;
measured 2026-11-25 on the 2-core machine of docs/validation.md, before the response passes became
row blocks of matrix products, which made an iteration 2-4 times cheaper and the kicked P-SGD pass
about 4 times: docs/benchmarks.md. The times above are upper bounds now.)

Why an ensemble: in this hard regime the DMFT solved with S frozen samples is itself a random
quantity (solve-to-solve standard deviation of m(t) about 0.1 at S = 2000, like one simulation at
N ~ S / alpha); the mean of independent solves (``replicas``) and its standard error are what can be
compared with the simulation average. The simulations use lr = dt (the DMFT is the N -> infinity
limit of the algorithm discretized with that step).

Everything is kept in ``--dir``: the ensembles and simulations as NetCDF (an existing file is read,
not recomputed) and the DMFT checkpoints (an interrupted run resumes at the replica and iteration it
reached).
"""
import argparse
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import prcy  # noqa: E402
from prcy import dmft  # noqa: E402
from prcy.analysis import replica_summary  # noqa: E402
from prcy.io import open_dataset, write_dataset  # noqa: E402

CASES = {"psgd": dict(algorithm="psgd", batch_fraction=0.5, persistence=1.0),
         "langevin": dict(algorithm="langevin", temperature=1.0)}
PROBLEM = dict(problem="phase-retrieval", alpha=3.0, m0=0.2)


def ensemble(name, args, folder):
    stem = (f"dmft_{name}_S{args.samples}" + (f"_kick{args.response_kick:g}" if args.response_kick else "")
            + (f"_window{args.window:g}" if args.window else ""))
    path = folder / f"{stem}.nc"
    if not path.exists():
        ds = dmft.solve(**PROBLEM, **CASES[name], dt=args.dt, t_max=args.t_max, samples=args.samples,
                        replicas=args.replicas, response_kick=args.response_kick, window=args.window,
                        checkpoint=folder / f"{stem}.ckpt",
                        progress=lambda i, r, replica: print(f"{name} replica {replica} iteration {i}: "
                                                             f"residual {r:.2e}", flush=True))
        write_dataset(ds, path)
    return open_dataset(path)


def simulations(name, args, folder):
    path = folder / f"sim_{name}_n{args.n}.nc"
    if not path.exists():
        ds = prcy.simulate(**PROBLEM, **CASES[name], n=args.n, lr=args.dt, t_max=args.t_max, grid="linear",
                           points=args.points, seeds=args.seeds)
        write_dataset(ds, path)
    return open_dataset(path)


def compare(theory, sims):
    """DMFT mean and standard error over its converged replicas, simulation mean and standard error
    over seeds, and z = difference / combined standard error, at the simulation's times (t > 0)."""
    summary = replica_summary(theory)
    m = sims.magnetization
    s_mean, s_se = m.mean("seed"), m.std("seed", ddof=1) / np.sqrt(m.sizes["seed"])
    d_mean = summary["mean"].sel(time=s_mean.time, method="nearest", tolerance=1e-9)
    d_se = summary["standard_error"].sel(time=s_mean.time, method="nearest", tolerance=1e-9)
    z = (d_mean.values - s_mean.values) / np.sqrt(d_se.values ** 2 + s_se.values ** 2)
    return summary, s_mean, s_se, z


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--replicas", type=int, default=8)
    ap.add_argument("--samples", type=int, default=4000)
    ap.add_argument("--dt", type=float, default=0.02, help="DMFT grid step = simulation learning rate")
    ap.add_argument("--response-kick", type=float, default=0.0, help="0: linear response; > 0: kicked response")
    ap.add_argument("--window", type=float, default=None,
                    help="horizon windows of this length (docs/dmft.md); default: the whole horizon at once")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seeds", type=int, default=64)
    ap.add_argument("--points", type=int, default=101, help="simulation time points (linear grid)")
    ap.add_argument("--t-max", type=float, default=10.0)
    ap.add_argument("--dir", type=Path, default=Path("dmft-ensemble"))
    ap.add_argument("-o", "--output", default="dmft-psgd-langevin.png")
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, name in zip(axes, CASES):
        theory, sims = ensemble(name, args, args.dir), simulations(name, args, args.dir)
        summary, s_mean, s_se, z = compare(theory, sims)
        used = summary.attrs["replicas_used"]
        print(f"{name}: {used} of {theory.sizes['replica']} replicas converged; over t in (0, {args.t_max:g}]: "
              f"max |z| = {np.max(np.abs(z[1:])):.2f}, |z| > 2 at {np.mean(np.abs(z[1:]) > 2):.0%} of the times")
        print("      t   DMFT mean +- s.e.    sims mean +- s.e.      z")
        for t in np.linspace(0, args.t_max, 5)[1:]:
            i = int(np.argmin(np.abs(s_mean.time.values - t)))
            k = int(np.argmin(np.abs(summary.time.values - s_mean.time.values[i])))
            print(f"  {float(s_mean.time[i]):5.2f}   {float(summary['mean'][k]):.4f} +- "
                  f"{float(summary['standard_error'][k]):.4f}   {float(s_mean[i]):.4f} +- {float(s_se[i]):.4f}"
                  f"   {z[i]:+.2f}")
        t = summary.time
        mean, se = summary["mean"], summary["standard_error"]
        ax.fill_between(t, mean - 2 * se, mean + 2 * se, color="C3", alpha=0.3, lw=0)
        ax.plot(t, mean, color="C3", label=f"DMFT, {used} replicas x S = {args.samples}")
        ax.errorbar(s_mean.time, s_mean, yerr=2 * s_se, fmt="o", ms=2.5, color="0.35",
                    label=f"simulations N = {args.n}, {sims.sizes['seed']} seeds")
        ax.set_title(f"{name}, alpha = 3, m0 = 0.2, dt = lr = {args.dt:g}")
        ax.set_xlabel("t")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("m(t)  (mean, +- 2 standard errors)")
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
