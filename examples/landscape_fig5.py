"""[SBCKUZ20] fig 5 at laptop size: the fraction of gradient-descent runs that reach zero test error against
alpha for several N, where the curves of successive N cross, and the failures above alpha_BBP = 13.8.

Input: one sweep file per N made from examples/landscape-fig5.toml with the paper's per-N horizon
(``1500 log2 N`` steps of lr 4e-4, ``t_max = 0.6 log2 N``), for instance

    prcy sweep examples/landscape-fig5.toml --n 64 --t-max 3.6 --alpha 6:18:1 --seeds 400 -o fig5-n64.nc
    python examples/landscape_fig5.py fig5-n32.nc fig5-n64.nc fig5-n128.nc fig5-n256.nc \\
        --prefix docs/data/landscape-fig5

writes PREFIX-success.csv (per N and alpha: successes, the fraction and its 95% Wilson interval, the
median solved time), PREFIX-threshold.csv (per N the 50% point with its bootstrap interval over seeds,
``prcy.analysis.threshold``) and PREFIX-crossing.csv (per pair of successive N: the difference of the
success fractions ``P_large - P_small`` per alpha with its standard error, and the first alpha at which it
turns from negative to non-negative, linearly interpolated, with a bootstrap interval over seeds).
"""
import argparse

import numpy as np
import pandas as pd
import xarray as xr

from prcy.analysis import threshold, threshold_table, wilson_interval

ALPHA_BBP = 13.8          # [SBCKUZ20], 1RSB


def up_crossing(alpha, diff):
    """The first alpha at which ``diff`` turns from negative to non-negative (NaN: never), interpolated."""
    for i in range(1, len(alpha)):
        if diff[i - 1] < 0 <= diff[i]:
            return alpha[i - 1] + (alpha[i] - alpha[i - 1]) * (-diff[i - 1]) / (diff[i] - diff[i - 1])
    return np.nan


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--boot", type=int, default=2000)
    args = ap.parse_args()
    runs = sorted((xr.open_dataset(f) for f in args.files), key=lambda ds: int(ds.attrs["n"]))
    alpha = runs[0].alpha.values
    if any(not np.array_equal(ds.alpha.values, alpha) for ds in runs):
        raise SystemExit("the files must share one alpha grid")
    rows, thresholds, success = [], [], {}
    for ds in runs:
        n = int(ds.attrs["n"])
        s = ds.success.values.astype(bool)                       # (alpha, seed)
        success[n] = s
        for i, a in enumerate(alpha):
            k, total = int(s[i].sum()), s.shape[1]
            lo, hi = wilson_interval(k, total)
            rows.append(dict(n=n, alpha=a, seeds=total, successes=k, fraction=k / total, wilson_low=lo,
                             wilson_high=hi, median_solved_time=float(np.nanmedian(ds.solved_time[i]))
                             if k else np.nan))
        table = threshold_table(threshold(ds[["success"]], along="alpha", n_boot=args.boot))
        thresholds.append(table.assign(n=n, failures_above_bbp=int((~s[alpha > ALPHA_BBP]).sum()),
                                       runs_above_bbp=int(s[alpha > ALPHA_BBP].size)))
    pd.DataFrame(rows).to_csv(f"{args.prefix}-success.csv", index=False, float_format="%.4g")
    pd.concat(thresholds).to_csv(f"{args.prefix}-threshold.csv", index=False, float_format="%.4g")
    rng = np.random.default_rng(0)
    crossing = []
    ns = sorted(success)
    for small, large in zip(ns, ns[1:]):
        ps, pl = success[small].mean(1), success[large].mean(1)
        se = np.sqrt(ps * (1 - ps) / success[small].shape[1] + pl * (1 - pl) / success[large].shape[1])
        boot = []
        for _ in range(args.boot):
            pick = [rng.integers(0, success[n].shape[1], success[n].shape[1]) for n in (small, large)]
            boot.append(up_crossing(alpha, success[large][:, pick[1]].mean(1) - success[small][:, pick[0]].mean(1)))
        boot = np.asarray(boot)
        found = np.isfinite(boot)
        low, high = np.percentile(boot[found], [2.5, 97.5]) if found.any() else (np.nan, np.nan)
        for i, a in enumerate(alpha):
            crossing.append(dict(n_small=small, n_large=large, alpha=a, difference=pl[i] - ps[i], se=se[i],
                                 crossing=up_crossing(alpha, pl - ps), crossing_low=low, crossing_high=high,
                                 bootstrap_found=found.mean()))
    print(pd.concat(thresholds).to_string(index=False))
    if not crossing:
        return
    pd.DataFrame(crossing).to_csv(f"{args.prefix}-crossing.csv", index=False, float_format="%.4g")
    print(pd.DataFrame(crossing).groupby(["n_small", "n_large"]).first()[
        ["crossing", "crossing_low", "crossing_high", "bootstrap_found"]].to_string())


if __name__ == "__main__":
    main()
