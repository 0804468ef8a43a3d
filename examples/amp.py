"""AMP (prcy.amp) against its state evolution, and its success against alpha: the tables behind
docs/theory.md, "Finite-N AMP".

    python examples/amp.py se --n 4000 --alpha 1.0,1.2,2.0 --m0 0.1 --seeds 32 -o amp-se.csv
    # per n, alpha and iteration: the state evolution's m (prcy.analysis.se_iterate from the same m0) and
    # finite-N AMP's overlap m = w.w0/N (warm start), mean and standard error over seeds
    python examples/amp.py success sweep.nc -o amp-success.csv
    # per alpha of an AMP sweep: successes with the 95% Wilson interval, diverged seeds, the median
    # solved iteration, the median final |m|, and the state evolution's fixed point
"""
import argparse
import csv
import math
import sys

import numpy as np


def se_table(args) -> list[dict]:
    import prcy
    from prcy.analysis import se_iterate

    rows = []
    for n, alpha in ((n, alpha) for n in args.n for alpha in args.alpha):
        se = se_iterate(alpha, m0=args.m0)
        t_max = args.t_max or len(se) - 1 + 20
        ds = prcy.simulate(algorithm="amp", alpha=alpha, n=n, m0=args.m0, init="warm", t_max=t_max,
                           grid="linear", points=t_max + 1, seeds=args.seeds, seed=args.seed,
                           amp_damping=args.damping, threads=args.threads)
        m = ds["magnetization"].values                      # (seed, iteration)
        reasons = [str(r) for r in ds["stop_reason"].values]
        finite = np.all(np.isfinite(m), axis=1)
        for k in sorted({*(k for k in args.iterations if k <= t_max), t_max}):
            col = m[finite, k]
            theory = se[min(k, len(se) - 1)]
            mean = float(col.mean()) if col.size else math.nan
            stderr = float(col.std(ddof=1) / math.sqrt(col.size)) if col.size > 1 else math.nan
            rows.append({"alpha": alpha, "n": n, "m0": args.m0, "iteration": k, "se_m": theory,
                         "amp_mean": mean, "amp_stderr": stderr, "difference": mean - theory,
                         "amp_min": float(col.min()) if col.size else math.nan,
                         "amp_max": float(col.max()) if col.size else math.nan, "seeds": int(col.size),
                         "diverged": reasons.count("diverged")})
    return rows


def success_table(args) -> list[dict]:
    import itertools

    from prcy.analysis import se_fixed_point, wilson_interval
    from prcy.io import open_dataset

    ds = open_dataset(args.sweep)
    if "alpha" not in ds["success"].dims:
        raise SystemExit("success: the sweep has no alpha axis")
    dims = [d for d in ds["success"].dims if d != "seed"]
    rows = []
    for index in itertools.product(*(range(ds.sizes[d]) for d in dims)):
        cell = ds.isel(dict(zip(dims, index)))
        point = {d: cell[d].values.item() for d in dims}
        alpha = float(point["alpha"])
        success = cell["success"].values.astype(bool)
        solved = cell["solved_time"].values[success]
        final = np.abs(cell["magnetization"].isel(time=-1).values)
        reasons = cell["stop_reason"].values.astype(str)
        lo, hi = wilson_interval(int(success.sum()), success.size)
        fixed = {name: ds.attrs[name] for name in ("n", "amp_damping") if name not in point}
        rows.append({**point, **fixed, "seeds": success.size,
                     "successes": int(success.sum()), "fraction": float(success.mean()), "ci_low": lo, "ci_high": hi,
                     "diverged": int((reasons == "diverged").sum()),
                     "stationary_unsolved": int(((reasons == "stationary") & ~success).sum()),
                     "median_solved_iteration": float(np.median(solved)) if solved.size else math.nan,
                     "median_final_abs_m": float(np.nanmedian(final)) if np.isfinite(final).any() else math.nan,
                     "se_fixed_point": float(se_fixed_point(alpha))})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    se = sub.add_parser("se", help="finite-N AMP against the state evolution")
    se.add_argument("--n", type=lambda s: [int(n) for n in s.split(",")], default=[1000])
    se.add_argument("--alpha", type=lambda s: [float(a) for a in s.split(",")], default=[1.0, 1.2, 2.0])
    se.add_argument("--m0", type=float, default=0.1)
    se.add_argument("--seeds", type=int, default=8)
    se.add_argument("--seed", type=int, default=0)
    se.add_argument("--damping", type=float, default=0.0)
    se.add_argument("--t-max", type=int, default=None,
                    help="iterations [default: the state evolution's iterations to convergence + 20]")
    se.add_argument("--iterations", type=lambda s: [int(k) for k in s.split(",")],
                    default=[0, 1, 2, 3, 5, 10, 20, 50, 100])
    se.add_argument("--threads", type=int, default=None)
    se.add_argument("-o", "--output", required=True)
    su = sub.add_parser("success", help="success against alpha from an AMP sweep file")
    su.add_argument("sweep")
    su.add_argument("-o", "--output", required=True)
    args = ap.parse_args(argv)
    rows = se_table(args) if args.what == "se" else success_table(args)
    with open(args.output, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})
    csv.writer(sys.stdout).writerows([list(rows[0])] + [[f"{v:.4g}" if isinstance(v, float) else v
                                                         for v in row.values()] for row in rows])


if __name__ == "__main__":
    main()
