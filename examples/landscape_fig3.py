"""[SBCKUZ20] fig 3 at laptop size: the Hessian's lowest eigenpairs at the moment gradient descent's
training loss crosses the 1RSB threshold energy, against alpha, for several N.

For every (N, alpha, seed): GD from a random start on the sphere, recorded on a fine linear grid without
the Hessian, gives the first recording time ``t_c`` at which the training loss per sample is at or below
the threshold ``v_th = threshold_energy(alpha) / 2`` (prcy's ``v = (h^2 - y^2)^2 / 4`` is half the paper's
per-sample ``l / 2``: docs/validation.md 10c). The same seed is run again to ``t_c`` (same steps, same random
numbers: the recording grid does not change the dynamics) with ``--hessian 3``; its last recording is the
landscape at the crossing. A seed whose loss never reaches ``v_th`` by ``--t-max`` is counted, not used.

    python examples/landscape_fig3.py --n 128,256,512 --alpha 5,6,7,8,9,10,11,12,14,16 --seeds 12 \\
        --out docs/data/landscape-fig3-seeds.csv --summary docs/data/landscape-fig3.csv

The paper's sizes (N = 512 to 8192; hours per N above 2048 on a laptop, the Hessian at N = 8192 costs
~100 products of 2 x 8192 x alpha 8192 multiply-adds each):

    python examples/landscape_fig3.py --n 512,1024,2048,4096,8192 --alpha 5,6,7,8,9,10,11,12,13,14,16,18 \
        --seeds 32 --out fig3-seeds.csv --summary fig3.csv

Writes one row per seed (``--out``) and per (N, alpha) the means over crossed seeds of ``lambda_2 -
lambda_1``, ``lambda_3 - lambda_2``, the teacher overlaps of the first two eigenvectors, the standard
deviation of the first overlap over seeds (the paper's right panel) and the crossed count (``--summary``).
``--merge`` joins the per-seed files of several such runs (e.g. more alphas) without running anything.
"""
import argparse

import numpy as np
import pandas as pd

import prcy
from prcy.analysis.threshold_states import threshold_energy

COMMON = dict(problem="phase-retrieval", algorithm="gd", init="random", constraint="sphere", grid="linear",
              threads=1)


def crossings(n, alpha, seeds, lr, t_max, points):
    """Per seed the first recording time with training loss <= v_th (NaN: never), and v_th."""
    v_th = float(threshold_energy(alpha)) / 2
    ds = prcy.simulate(alpha=alpha, n=n, lr=lr, t_max=t_max, points=points, seeds=seeds, early_stop=True,
                       **COMMON)
    below = (ds.train_loss <= v_th).values                       # (seed, time)
    times = ds.time.values
    first = np.where(below.any(axis=1), times[np.argmax(below, axis=1)], np.nan)
    return first, v_th


def landscape_at(n, alpha, seed, lr, t_c):
    """The three lowest eigenpairs of the Hessian at time ``t_c`` of seed ``seed``."""
    ds = prcy.simulate(alpha=alpha, n=n, lr=lr, t_max=t_c, points=2, seeds=1, first_seed=seed, hessian=3,
                       early_stop=False, **COMMON).isel(seed=0, time=-1)
    values = ds.hessian_eigenvalues.values
    overlaps = ds.hessian_teacher_overlap.values
    return dict(t_c=float(ds.time), train_loss=float(ds.train_loss), converged=bool(ds.hessian_converged),
                lambda1=values[0], lambda2=values[1], lambda3=values[2], gap21=values[1] - values[0],
                gap32=values[2] - values[1], overlap1=overlaps[0], overlap2=overlaps[1],
                bulk_edge=float(ds.hessian_bulk_edge), magnetization=float(abs(ds.magnetization)))


def summarize(seeds: pd.DataFrame) -> pd.DataFrame:
    """Per (N, alpha) the means over the seeds that crossed (with converged eigenpairs), the standard
    deviation of the first eigenvector's overlap, the median crossing time, the crossed and total counts."""
    crossed = seeds[seeds.crossed & seeds.converged.fillna(False).astype(bool)]
    summary = crossed.groupby(["n", "alpha"]).agg(
        crossed=("seed", "size"), gap21=("gap21", "mean"), gap32=("gap32", "mean"), overlap1=("overlap1", "mean"),
        overlap2=("overlap2", "mean"), overlap1_sd=("overlap1", "std"), magnetization=("magnetization", "mean"),
        t_c=("t_c", "median"))
    summary["seeds"] = seeds.groupby(["n", "alpha"]).size()
    return summary.reset_index()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", default="128,256,512")
    ap.add_argument("--alpha", default="5,6,7,8,9,10,11,12,14,16")
    ap.add_argument("--seeds", type=int, default=12)
    ap.add_argument("--lr", type=float, default=0.002)
    ap.add_argument("--t-max", type=float, default=6.0)
    ap.add_argument("--points", type=int, default=1201)
    ap.add_argument("--out", required=True)
    ap.add_argument("--summary", required=True)
    ap.add_argument("--merge", nargs="+", metavar="CSV",
                    help="no runs: the per-seed rows of these files (earlier --out) into --out and --summary")
    args = ap.parse_args()
    if args.merge:
        seeds = pd.concat([pd.read_csv(f) for f in args.merge]).sort_values(["n", "alpha", "seed"])
        seeds.to_csv(args.out, index=False, float_format="%.6g")
    else:
        rows = []
        for n in map(int, args.n.split(",")):
            for alpha in map(float, args.alpha.split(",")):
                first, v_th = crossings(n, alpha, args.seeds, args.lr, args.t_max, args.points)
                for seed, t_c in enumerate(first):
                    row = dict(n=n, alpha=alpha, seed=seed, v_th=v_th, crossed=bool(np.isfinite(t_c)))
                    if row["crossed"]:
                        row.update(landscape_at(n, alpha, seed, args.lr, float(t_c)))
                    rows.append(row)
                print(f"N = {n}, alpha = {alpha}: {int(np.isfinite(first).sum())} of {args.seeds} crossed", flush=True)
                pd.DataFrame(rows).to_csv(args.out, index=False, float_format="%.6g")
        seeds = pd.DataFrame(rows)
    summary = summarize(seeds)
    summary.to_csv(args.summary, index=False, float_format="%.4g")
    print(summary.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
