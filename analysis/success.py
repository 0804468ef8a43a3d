"""Success fractions with Wilson score intervals, and per-algorithm summaries of a simulation."""
import math

import numpy as np


def wilson_interval(successes, trials, z=1.959963984540054):
    """Wilson score interval ``(low, high)`` for a binomial proportion (95% by default)."""
    if trials <= 0:
        return (math.nan, math.nan)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def success_summary(ds):
    """One row per algorithm of a simulation dataset: seeds, successes, fraction and Wilson interval,
    median solved time (over solved seeds), median final magnetization, diverged count."""
    algos = np.atleast_1d(ds["algorithm"].values)
    rows = []
    for algo in algos:
        sub = ds.sel(algorithm=algo) if "algorithm" in ds.dims else ds
        success = np.asarray(sub["success"].values, dtype=bool)
        solved = np.asarray(sub["solved_time"].values, dtype=float)
        n, k = success.size, int(success.sum())
        lo, hi = wilson_interval(k, n)
        final_m = np.asarray(sub["magnetization"].isel(time=-1).values, dtype=float)
        reasons = np.asarray(sub["stop_reason"].values).astype(str)
        rows.append({
            "algorithm": str(algo), "seeds": n, "successes": k, "fraction": k / n if n else math.nan,
            "ci_low": lo, "ci_high": hi,
            "median_solved_time": float(np.median(solved[success])) if k else math.nan,
            "median_final_m": float(np.nanmedian(np.abs(final_m))) if np.isfinite(final_m).any() else math.nan,
            "diverged": int((reasons == "diverged").sum()),
        })
    return rows
