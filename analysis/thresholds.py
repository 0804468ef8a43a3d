"""Success curves, recovery thresholds and curve bands over simulation and sweep datasets (pure
functions: datasets in, datasets out).

Success curve. For every point of the dimensions other than ``seed`` and ``along`` (for a sweep:
algorithm, n, batch_fraction, ...), the fraction of seeds with ``success`` at each value of ``along``,
with its Wilson 95% score interval (``prcy.analysis.wilson_interval``).

Threshold. ``threshold`` estimates, per point of the other dimensions, the value of ``along`` (alpha_c
for ``along="alpha"``; alpha_c(N) when ``n`` is a dimension) at which the success probability crosses
``level``:

1. The raw success fractions are replaced by their *monotone fit*: the weighted least-squares
   non-decreasing sequence (isotonic regression, pool-adjacent-violators, weights = seeds per grid
   point; non-increasing when ``increasing=False``). Noise can make the raw fractions cross ``level``
   several times; the monotone fit crosses it at most once, and equals the raw curve when that is
   already monotone.
2. A crossing exists only when the fit is strictly below ``level`` somewhere on the grid and strictly
   above it somewhere else. Otherwise the status says on which side of the grid the threshold lies
   and the estimate is NaN: there is never a number without a crossing.
3. The crossing is the linear interpolation between the two grid points bracketing it. If the fit
   equals ``level`` exactly on a run of grid points, the estimate is the midpoint of that run.
4. Bootstrap over seeds: each replica resamples the seed indices with replacement, *the same indices
   for every cell* (seed ``i`` draws its teacher, data and initialisation from the same random
   streams in every cell of a sweep, so cells are correlated through the seed index and the seed is
   the unit of resampling), and recomputes steps 1-3. The interval is the 2.5/97.5 percentiles of the
   replicas that have a crossing; ``boot_no_crossing`` counts the others. When many replicas have no
   crossing the interval is unreliable: widen the grid or add seeds.
"""
from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import xarray as xr

from prcy.analysis.success import wilson_interval

STATUS_OK = "ok"


def _check_along(ds: xr.Dataset, along: str, var: str = "success") -> None:
    if var not in ds:
        raise ValueError(f"dataset: no variable {var!r} (variables: {', '.join(map(str, ds.data_vars))})")
    dims = ds[var].dims
    if along not in dims:
        others = ", ".join(d for d in dims if d != "seed") or "none"
        raise ValueError(f"along: {along!r} is not a dimension of {var!r} (swept dimensions: {others}); "
                         f"a sweep over {along} is needed")
    if along == "seed":
        raise ValueError("along: 'seed' is the dimension averaged over; choose a swept parameter")
    if ds.sizes[along] < 2:
        raise ValueError(f"along: {along!r} has {ds.sizes[along]} point; at least 2 are needed")
    values = np.asarray(ds[along].values)
    if values.dtype.kind not in "iuf":
        raise ValueError(f"along: {along!r} has non-numeric values {list(values)}; a numeric parameter is needed")
    if not np.all(np.diff(values.astype(float)) > 0):
        raise ValueError(f"along: {along!r} values {list(values)} are not strictly increasing")


def success_curve(ds: xr.Dataset, along: str = "alpha") -> xr.Dataset:
    """Success fraction vs ``along`` per point of the other dimensions, with Wilson 95% intervals.

    Returns a dataset over (other dims..., ``along``) with ``successes``, ``trials`` (seeds),
    ``fraction``, ``ci_low`` and ``ci_high``."""
    _check_along(ds, along)
    success = ds["success"].astype(bool).transpose(..., along, "seed")
    successes = success.sum("seed").astype(np.int64)
    trials = xr.full_like(successes, success.sizes["seed"])
    k = successes.values.ravel()
    n = trials.values.ravel()
    bounds = np.array([wilson_interval(int(a), int(b)) for a, b in zip(k, n)], dtype=float).reshape(-1, 2)
    shape = successes.shape
    out = xr.Dataset({
        "successes": successes.assign_attrs(long_name="seeds with success"),
        "trials": trials.assign_attrs(long_name="seeds"),
        "fraction": (successes / trials).assign_attrs(long_name="success fraction"),
        "ci_low": successes.copy(data=bounds[:, 0].reshape(shape)).assign_attrs(
            long_name="Wilson 95% interval, lower end"),
        "ci_high": successes.copy(data=bounds[:, 1].reshape(shape)).assign_attrs(
            long_name="Wilson 95% interval, upper end"),
    })
    out.attrs.update(along=along)
    return out


def isotonic_fit(y, weights=None, increasing: bool = True) -> np.ndarray:
    """Weighted least-squares monotone fit of ``y`` (pool adjacent violators)."""
    y = np.asarray(y, dtype=float)
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float)
    if not increasing:
        return -isotonic_fit(-y, w, True)
    values, wsum, sizes = [], [], []
    for yi, wi in zip(y, w):
        values.append(yi)
        wsum.append(wi)
        sizes.append(1)
        while len(values) > 1 and values[-2] > values[-1]:
            v2, w2, s2 = values.pop(), wsum.pop(), sizes.pop()
            total = wsum[-1] + w2
            values[-1] = (values[-1] * wsum[-1] + v2 * w2) / total
            wsum[-1] = total
            sizes[-1] += s2
    return np.repeat(values, sizes)


def crossing(x, p, level: float = 0.5, increasing: bool = True) -> tuple[float, str]:
    """Where the monotone curve ``p(x)`` crosses ``level``: linear interpolation between the bracketing
    grid points (midpoint of a run of points exactly at ``level``). Returns ``(value, status)``;
    ``value`` is NaN unless ``status == "ok"``. The other statuses: ``"below level on the grid"`` and
    ``"above level on the grid"`` (``p`` never goes strictly past ``level`` on one side)."""
    x = np.asarray(x, dtype=float)
    p = np.asarray(p, dtype=float)
    if not increasing:
        p = p[::-1]
        x = x[::-1]
    if not np.all(np.isfinite(p)):
        return math.nan, "no data"
    below = p < level
    above = p > level
    if not above.any():
        return math.nan, "below level on the grid"
    if not below.any():
        return math.nan, "above level on the grid"
    i = int(np.flatnonzero(below)[-1])          # last point below (p is monotone)
    j = int(np.flatnonzero(above)[0])           # first point above
    if j == i + 1:
        return float(x[i] + (level - p[i]) / (p[j] - p[i]) * (x[j] - x[i])), STATUS_OK
    return float(0.5 * (x[i + 1] + x[j - 1])), STATUS_OK


def _crossings(x, successes, trials, level, increasing):
    """Crossings of the monotone fit for an array of curves (..., len(x))."""
    flat_k = successes.reshape(-1, successes.shape[-1])
    flat_n = trials.reshape(-1, trials.shape[-1])
    values = np.empty(flat_k.shape[0])
    statuses = []
    for r, (k, n) in enumerate(zip(flat_k, flat_n)):
        with np.errstate(invalid="ignore", divide="ignore"):
            p = k / n
        fit = isotonic_fit(p, n, increasing) if np.all(n > 0) else p
        values[r], status = crossing(x, fit, level, increasing)
        statuses.append(status)
    return values.reshape(successes.shape[:-1]), np.array(statuses, dtype=object).reshape(successes.shape[:-1])


def threshold(ds: xr.Dataset, along: str = "alpha", level: float = 0.5, n_boot: int = 1000, seed: int = 0,
              increasing: bool = True, confidence: float = 0.95) -> xr.Dataset:
    """The value of ``along`` where the success probability crosses ``level``, per point of the other
    dimensions (per algorithm, per n, ...), from the monotone fit of the success fractions, with a
    bootstrap interval over seeds (see the module docstring for the exact rules).

    Returns a dataset over the other dimensions with ``threshold`` (NaN when there is no crossing),
    ``ci_low``, ``ci_high`` (percentile bootstrap interval), ``boot_no_crossing`` (replicas without a
    crossing), ``status`` ("ok" or why there is no crossing) and ``seeds``; ``threshold_table`` turns
    it into a tidy table."""
    _check_along(ds, along)
    if not (0 < level < 1):
        raise ValueError(f"level: {level!r} is not allowed; allowed: 0 < level < 1")
    if int(n_boot) != n_boot or n_boot < 0:
        raise ValueError(f"bootstrap: {n_boot!r} is not allowed; allowed: an integer >= 0 (0 = no interval)")
    if not (0 < confidence < 1):
        raise ValueError(f"confidence: {confidence!r} is not allowed; allowed: 0 < confidence < 1")
    n_boot = int(n_boot)
    success = ds["success"].astype(bool).transpose(..., along, "seed")
    other = [d for d in success.dims if d not in (along, "seed")]
    s = np.asarray(success.values, dtype=np.int64)                     # (..., along, seed)
    n_seed = s.shape[-1]
    if n_seed == 0:
        raise ValueError("dataset: no seeds")
    x = np.asarray(ds[along].values, dtype=float)
    k = s.sum(-1)
    n = np.full_like(k, n_seed)
    estimate, status = _crossings(x, k, n, level, increasing)

    lo = np.full(estimate.shape, math.nan)
    hi = np.full(estimate.shape, math.nan)
    missing = np.zeros(estimate.shape, dtype=np.int64)
    if n_boot:
        rng = np.random.default_rng(seed)
        # multiplicity of every seed in each replica: the same resampled seed indices for all cells
        counts = rng.multinomial(n_seed, np.full(n_seed, 1.0 / n_seed), size=n_boot)    # (boot, seed)
        k_boot = np.moveaxis(np.tensordot(s, counts, axes=([-1], [1])), -1, 0)          # (boot, ..., along)
        values, _ = _crossings(x, k_boot, np.full_like(k_boot, n_seed), level, increasing)
        finite = np.isfinite(values)
        missing = (~finite).sum(0)
        tail = 100 * (1 - confidence) / 2
        flat_v = values.reshape(n_boot, -1)
        flat_f = finite.reshape(n_boot, -1)
        flat_lo, flat_hi = lo.reshape(-1), hi.reshape(-1)
        for c in range(flat_v.shape[1]):
            ok = flat_v[flat_f[:, c], c]
            if ok.size:
                flat_lo[c], flat_hi[c] = np.percentile(ok, [tail, 100 - tail])
    lo[status != STATUS_OK] = math.nan
    hi[status != STATUS_OK] = math.nan

    coords = {d: ds[d].values for d in other}
    label = f"{along} where the success probability crosses {level:g}"
    out = xr.Dataset(
        {
            "threshold": (other, estimate, dict(long_name=label)),
            "ci_low": (other, lo, dict(long_name=f"bootstrap {100 * confidence:g}% interval, lower end")),
            "ci_high": (other, hi, dict(long_name=f"bootstrap {100 * confidence:g}% interval, upper end")),
            "boot_no_crossing": (other, missing, dict(long_name="bootstrap replicas without a crossing")),
            "status": (other, status.astype(str), dict(long_name="ok, or why there is no crossing")),
            "seeds": ((), n_seed),
        },
        coords=coords,
    )
    out.attrs.update(along=along, level=level, n_boot=n_boot, bootstrap_seed=seed, confidence=confidence,
                     increasing=int(increasing), grid_min=float(x[0]), grid_max=float(x[-1]),
                     method="linear interpolation of the isotonic (monotone) fit of the success fractions; "
                            "percentile bootstrap over seeds (same resampled indices in every cell)")
    return out


def threshold_table(result: xr.Dataset):
    """A tidy ``pandas.DataFrame`` from ``threshold``: one row per point of the other dimensions."""
    import pandas as pd

    other = list(result["threshold"].dims)
    rows = []
    for index in itertools.product(*(range(result.sizes[d]) for d in other)):
        cell = result.isel(dict(zip(other, index)))
        row = {d: cell[d].values.item() for d in other}
        row.update(along=result.attrs["along"], level=result.attrs["level"],
                   threshold=float(cell["threshold"]), ci_low=float(cell["ci_low"]),
                   ci_high=float(cell["ci_high"]), n_boot=int(result.attrs["n_boot"]),
                   boot_no_crossing=int(cell["boot_no_crossing"]), seeds=int(result["seeds"]),
                   status=str(cell["status"].values))
        rows.append(row)
    return pd.DataFrame(rows)


def format_threshold_row(row: dict) -> str:
    """One line of ``threshold_table``: the point, the estimate with its interval, or why there is none."""
    along, level = row["along"], row["level"]
    known = {"along", "level", "threshold", "ci_low", "ci_high", "n_boot", "boot_no_crossing", "seeds",
             "status", "grid_min", "grid_max"}
    label = " ".join(f"{v}" if k == "algorithm" else f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in row.items() if k not in known) or "all"
    if row["status"] != STATUS_OK:
        return f"{label:>9}: no crossing of {level:g}: success {row['status']} ({along}_c not estimated)"
    text = f"{label:>9}: {along}_c = {row['threshold']:.4g}"
    if row["n_boot"]:
        interval = ("no replica crossed" if math.isnan(row["ci_low"])
                    else f"{row['ci_low']:.4g}-{row['ci_high']:.4g}")
        text += (f"  [95% bootstrap {interval}; {row['boot_no_crossing']}/{row['n_boot']} replicas "
                 f"without a crossing]")
    return text + f"  ({row['seeds']} seeds)"


def curve_bands(ds: xr.Dataset, var: str = "magnetization", quantiles=(0.1, 0.5, 0.9),
                absolute: bool = False) -> xr.Dataset:
    """Median and quantiles over seeds of a curve variable, per point of the other dimensions.

    Returns a dataset with ``median`` (..., time), ``quantile_values`` (quantile, ..., time) and
    ``seeds`` (finite seeds at each time). Non-finite values (diverged seeds) are left out.
    ``absolute``: use ``|var|`` (the magnetization of phase retrieval is defined up to its sign)."""
    if var not in ds:
        raise ValueError(f"var: no variable {var!r} (variables: {', '.join(map(str, ds.data_vars))})")
    da = ds[var]
    if "seed" not in da.dims:
        raise ValueError(f"var: {var!r} has no 'seed' dimension (dims: {', '.join(da.dims)})")
    q = [float(v) for v in quantiles]
    if not q or not all(0 <= v <= 1 for v in q):
        raise ValueError(f"quantiles: {tuple(quantiles)!r} is not allowed; allowed: values in [0, 1]")
    da = da.astype(float)
    if absolute:
        da = abs(da)
    da = da.where(np.isfinite(da))
    with warnings.catch_warnings():      # no finite seed (all diverged, or a sweep's padding): NaN, as documented
        warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)
        out = xr.Dataset({
            "median": da.median("seed", skipna=True).assign_attrs(long_name=f"median over seeds of {var}"),
            "quantile_values": da.quantile(q, dim="seed", skipna=True).assign_attrs(
                long_name=f"quantiles over seeds of {var}"),
            "seeds": da.notnull().sum("seed").assign_attrs(long_name="finite seeds"),
        })
    out.attrs.update(var=var, absolute=int(absolute))
    return out
