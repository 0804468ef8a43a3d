"""Success fractions with Wilson score intervals, and summaries per grid point of a simulation or a
sweep dataset (``success_summary``, one line each: ``format_summary_row``)."""
import itertools
import json
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


SUMMARY_VARIABLES = ("success", "solved_time", "magnetization", "stop_reason")


def success_summary(ds):
    """One row per point of every dimension other than ``seed`` and ``time`` (for a simulation: per
    algorithm): the point's coordinates, seeds, successes, fraction with its Wilson interval, median
    solved time (over solved seeds), median final ``|m|`` over the seeds whose final ``m`` is finite
    (``final_m_seeds`` of them: a diverged seed has none), number of diverged seeds. In a sweep, an
    algorithm is listed once along the dimensions it does not depend on (attribute ``independent_of``),
    with the value ``"any"`` there. A dataset without ``SUMMARY_VARIABLES`` is a ``ValueError``."""
    missing = [name for name in SUMMARY_VARIABLES if name not in ds]
    if missing:
        raise ValueError(f"the dataset lacks {', '.join(missing)}; a success summary needs "
                         f"{', '.join(SUMMARY_VARIABLES)}")
    dims = [d for d in ds["success"].dims if d != "seed"]
    independent = json.loads(ds.attrs.get("independent_of", "{}"))
    rows = []
    for index in itertools.product(*(range(ds.sizes[d]) for d in dims)):
        where = dict(zip(dims, index))
        algo = str(ds["algorithm"].values[where["algorithm"]]) if "algorithm" in where else None
        ignored = [d for d in independent.get(algo, []) if d in where]
        if any(where[d] != 0 for d in ignored):
            continue                                    # the same run as at index 0 of that dimension
        sub = ds.isel(where)
        success = np.asarray(sub["success"].values, dtype=bool)
        solved = np.asarray(sub["solved_time"].values, dtype=float)
        n, k = success.size, int(success.sum())
        lo, hi = wilson_interval(k, n)
        final_m = np.abs(np.asarray(sub["magnetization"].isel(time=-1).values, dtype=float))
        reasons = np.asarray(sub["stop_reason"].values).astype(str)
        point = {d: "any" if d in ignored else sub[d].values.item() for d in dims}
        if not dims and "algorithm" in sub.coords:
            point["algorithm"] = str(sub["algorithm"].values)
        rows.append({
            "point": point, "seeds": n, "successes": k, "fraction": k / n if n else math.nan,
            "ci_low": lo, "ci_high": hi,
            "median_solved_time": float(np.median(solved[success])) if k else math.nan,
            "median_final_m": float(np.nanmedian(final_m)) if np.isfinite(final_m).any() else math.nan,
            "final_m_seeds": int(np.isfinite(final_m).sum()),
            "diverged": int((reasons == "diverged").sum()),
        })
    return rows


def format_summary_row(r: dict) -> str:
    """One line per grid point: success fraction with its Wilson interval, median solved time, median
    final ``|m|`` (saying over how many seeds when some have no finite ``m``), diverged seeds."""
    solved = "-" if np.isnan(r["median_solved_time"]) else f"{r['median_solved_time']:.4g}"
    over = ("" if r["final_m_seeds"] == r["seeds"]
            else f" (over {r['final_m_seeds']} of {r['seeds']} seeds; the others have no finite m)")
    label = " ".join(f"{v}" if k == "algorithm" else f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in r["point"].items())
    return (f"{label:>9}: success {r['successes']}/{r['seeds']} = {100 * r['fraction']:.0f}% "
            f"[95% CI {100 * r['ci_low']:.0f}-{100 * r['ci_high']:.0f}%]  median solved time {solved}  "
            f"median final |m| {r['median_final_m']:.3g}{over}  diverged {r['diverged']}")
