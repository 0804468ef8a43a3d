"""The tables behind docs/validation.md's section on committee machines: from one or more sweep files
(several when a parameter such as the learning rate has to follow the number of hidden units `K`, one
file per `K`), per cell the success fraction with its Wilson interval and the mean and median final test
error, the 50% point per curve with its bootstrap interval over seeds (where a file has an alpha axis),
and the solved seeds' times in prcy's time and in the thesis' epochs, as CSV files.

    python examples/committee/tables.py fig4.4-laptop.nc PREFIX
    python examples/committee/tables.py wide-n32.nc wide-n64.nc PREFIX          # rows of both files
    python examples/committee/tables.py fig4.5-laptop.nc PREFIX --reach 1e-3 --at 100,800
    # writes PREFIX-success.csv, PREFIX-threshold.csv, PREFIX-solved.csv (and with --reach PREFIX-seeds.csv)

Every row names its cell by the swept dimensions and by `hidden`, `n` and `lr` (fixed or swept), so rows
of several files stay apart. Epochs as Dmitriev 2021 counts them: one epoch is `1/b` steps of SGD or
persistent SGD with batch fraction `b` (one step of GD), so a time `t` is `t/lr` steps and `t b/lr`
epochs. `quadratic_error` is `E(y^2 - x.A x)^2` with `A = W^T W/(K N)` for every `K`: a committee's
`test_error` on phase retrieval, and at `K = 1` (whose `test_error` is the label error
`E(|h0| - |h|)^2`) `(1 - q)^2 + 2 (q^2 - 2 m^2 + 1)` from the magnetization `m` and norm `q`, so that
cells with different `K` compare on one error.

More rules of success (each adds rows to PREFIX-success.csv and PREFIX-threshold.csv, named in the
column `rule`; "file" is the sweep's own): `--success-below L`, the final quadratic error is below `L`;
`--slope-below S`, the quadratic error still falls at least like `t^-S` over the last decade of the run
(`late_slope`). A committee's error falls like a power of the time at late times, so a success at a
fixed horizon depends on the level (docs/validation.md, "11. Committee machines").
"""
import argparse
import itertools
import json

import numpy as np
import pandas as pd

from prcy.analysis import success_curve, threshold, threshold_table
from prcy.io import open_dataset

NAMED = ("hidden", "n", "lr")        # the cell's parameters every row carries, swept or not


def cells(ds):
    """``(point, options, cell)`` per cell of a sweep file: the swept dimensions' index, the options the
    cell ran with (the option table's defaults, the grid's fixed options, the cell's values of the swept
    ones; read as they are, without building a spec, so that files of earlier prcy versions still read)
    and the cell's data."""
    from prcy.options import SIMULATION

    grid = json.loads(ds.attrs["grid"])
    dims = [d for d in ds["success"].dims if d != "seed"]
    defaults = {name: option.default for name, option in SIMULATION.items()}
    for index in itertools.product(*(range(ds.sizes[d]) for d in dims)):
        point = dict(zip(dims, index))
        cell = ds.isel(point)
        options = {**defaults, **grid["fixed"], **{d: cell[d].values.item() for d in dims}}
        yield point, options, cell


def describe(options, cell, dims) -> dict:
    row = {d: cell[d].values.item() for d in dims}
    row.update({name: options[name] for name in NAMED})
    return row


def epochs_per_time(options) -> float:
    return (1.0 if options["algorithm"] == "gd" else options["batch_fraction"]) / options["lr"]


def quadratic_error(options, cell) -> np.ndarray:
    """``E(y^2 - x.A x)^2`` over (seed, time) for any ``K`` (phase retrieval; see the module docstring):
    a committee's ``quadratic_error`` (in committee files written before prcy recorded that variable,
    ``test_error`` held it), the closed form from ``m`` and ``q`` for a single unit, the file's
    ``test_error`` on other problems."""
    if options["hidden"] > 1:
        return cell["quadratic_error" if "quadratic_error" in cell else "test_error"].values
    if options["problem"] != "phase-retrieval":
        return cell["test_error"].values
    m, q = cell["magnetization"].values, cell["norm"].values
    return (1.0 - q) ** 2 + 2.0 * (q * q - 2.0 * m * m + 1.0)


def first_time_below(times, curves, level):
    """Per row of ``curves`` (seed x time): the first recording time with a value below ``level``
    (NaN if none)."""
    below = curves < level
    hit = below.any(axis=1)
    return np.where(hit, times[np.argmax(below, axis=1)], np.nan)


def value_at(times, curves, t):
    """Per row of ``curves``: the value at the last recording time <= ``t``."""
    j = max(int(np.searchsorted(times, t, side="right")) - 1, 0)
    return curves[:, j]


def late_slope(times, curves):
    """Per row of ``curves``: ``d log(value) / d log(t)`` between the last recording time ``T`` and the
    first at or after ``T/10`` (NaN where a value is not positive): about -1 for an error that still falls
    like ``1/t``, about 0 for one that has stopped."""
    j = min(int(np.searchsorted(times, times[-1] / 10.0)), len(times) - 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.log(curves[:, -1] / curves[:, j]) / np.log(times[-1] / times[j])
    return np.where(np.isfinite(slope), slope, np.nan)


def solved_table(ds, reach=None, at=()):
    """Per cell: solved seeds; the mean and median final test error and quadratic error; the median
    final training loss per sample; the median late slope of the quadratic error (``late_slope``); the
    min / median / max solved time and epochs over the solved seeds; with ``reach``, the seeds whose
    quadratic error falls below it and the median first time and epochs it does; with ``at``, the median
    quadratic error at those times. Also the per-seed table (with ``reach``)."""
    rows, seed_rows = [], []
    dims = [d for d in ds["success"].dims if d != "seed"]
    for point, options, cell in cells(ds):
        row = describe(options, cell, dims)
        per_epoch = epochs_per_time(options)
        success = cell["success"].values.astype(bool)
        times = np.sort(cell["solved_time"].values[success])
        error = cell["test_error"].values
        quad = quadratic_error(options, cell)
        row.update(solved=len(times), seeds=cell.sizes["seed"],
                   final_test_error_mean=float(np.mean(error[:, -1])),
                   final_test_error_median=float(np.median(error[:, -1])),
                   final_quadratic_error_median=float(np.median(quad[:, -1])),
                   final_train_loss_median=float(np.median(cell["train_loss"].values[:, -1])),
                   late_slope_median=float(np.nanmedian(late_slope(cell["time"].values, quad))))
        for stat, f in (("min", np.min), ("median", np.median), ("max", np.max)):
            row[f"time_{stat}"] = f(times) if len(times) else np.nan
            row[f"epochs_{stat}"] = row[f"time_{stat}"] * per_epoch
        t = cell["time"].values
        for when in at:
            row[f"quadratic_error_median_t{when:g}"] = float(np.median(value_at(t, quad, when)))
        if reach is not None:
            first = first_time_below(t, quad, reach)
            hit = np.isfinite(first)
            row.update(reached=int(hit.sum()),
                       reach_time_median=float(np.median(first[hit])) if hit.any() else np.nan)
            row["reach_epochs_median"] = row["reach_time_median"] * per_epoch
            for s in range(cell.sizes["seed"]):
                seed_row = {**describe(options, cell, dims), "seed": int(cell["seed"].values[s]),
                            "reach_time": first[s], "reach_epochs": first[s] * per_epoch,
                            "final_test_error": float(error[s, -1]),
                            "final_quadratic_error": float(quad[s, -1]),
                            "final_magnetization": float(cell["magnetization"].values[s, -1]),
                            "stop_reason": str(cell["stop_reason"].values[s])}
                for when in at:
                    seed_row[f"quadratic_error_t{when:g}"] = float(value_at(t, quad, when)[s])
                seed_rows.append(seed_row)
        rows.append(row)
    return pd.DataFrame(rows), pd.DataFrame(seed_rows)


def with_named(table: pd.DataFrame, options) -> pd.DataFrame:
    """``table`` with the columns of ``NAMED`` that it lacks, from ``options`` (fixed in that file)."""
    for name in NAMED:
        if name not in table.columns:
            table.insert(0, name, options[name])
    return table


def recount(ds, level, slope=False):
    """``ds`` with ``success`` replaced, cell by cell, by "final quadratic error below ``level``" or, with
    ``slope``, by "late slope of the quadratic error below ``-level``" (still falling at least like
    ``t^-level`` over the last decade of the time axis)."""
    out = ds.copy()
    success = out["success"].values.copy()
    for point, options, cell in cells(ds):
        index = tuple(point.get(d, slice(None)) for d in ds["success"].dims)
        quad = quadratic_error(options, cell)
        success[index] = (late_slope(cell["time"].values, quad) < -level) if slope else (quad[:, -1] < level)
    out["success"] = (ds["success"].dims, success)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+", help="prcy sweep files, then the output path prefix")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--reach", type=float, default=None,
                    help="also the first time each seed's quadratic error is below this level (PREFIX-seeds.csv)")
    ap.add_argument("--success-below", default="",
                    help="levels (comma-separated): also success = final quadratic error below each level")
    ap.add_argument("--slope-below", default="",
                    help="slopes S (comma-separated): also success = late slope of the quadratic error below -S")
    ap.add_argument("--at", default="", help="times (comma-separated) at which to report the median quadratic error")
    args = ap.parse_args()
    if len(args.files) < 2:
        ap.error("give at least one sweep file and the output prefix")
    *sweeps, prefix = args.files
    at = [float(x) for x in args.at.split(",") if x]
    levels = [float(x) for x in args.success_below.split(",") if x]
    slopes = [float(x) for x in args.slope_below.split(",") if x]
    solved, seeds, success, thresholds = [], [], [], []
    for path in sweeps:
        ds = open_dataset(path)
        table, per_seed = solved_table(ds, args.reach, at)
        solved.append(table)
        seeds.append(per_seed)
        if "alpha" in ds["success"].dims and ds.sizes["alpha"] > 1:
            _, options, _ = next(cells(ds))
            rules = ([("file", ds)] + [(f"quadratic_error<{x:g}", recount(ds, x)) for x in levels]
                     + [(f"late_slope<-{x:g}", recount(ds, x, slope=True)) for x in slopes])
            for rule, counted in rules:
                curve = success_curve(counted).to_dataframe().reset_index()
                key = [c for c in curve.columns if c in table.columns]
                curve = curve.merge(table[key + ["final_test_error_mean", "final_test_error_median"]], on=key)
                curve.insert(0, "rule", rule)
                success.append(with_named(curve, options))
                found = threshold_table(threshold(counted, n_boot=args.bootstrap, seed=0))
                found.insert(0, "rule", rule)
                thresholds.append(with_named(found, options))
    solved = pd.concat(solved, ignore_index=True)
    solved.to_csv(f"{prefix}-solved.csv", index=False, float_format="%.4g")
    print(solved.to_string(index=False))
    if args.reach is not None:
        pd.concat(seeds, ignore_index=True).to_csv(f"{prefix}-seeds.csv", index=False, float_format="%.4g")
    if success:
        pd.concat(success, ignore_index=True).to_csv(f"{prefix}-success.csv", index=False, float_format="%.4g")
        table = pd.concat(thresholds, ignore_index=True)
        table.to_csv(f"{prefix}-threshold.csv", index=False, float_format="%.4g")
        print(table.to_string(index=False))


if __name__ == "__main__":
    main()
