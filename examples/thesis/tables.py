"""The tables behind docs/validation.md's comparisons with Dmitriev 2021: from a sweep file, the success
fraction per cell with its Wilson interval, the 50% point per curve with its bootstrap interval over
seeds (when the file has an alpha axis), the median final test error and the solved seeds' times in prcy's time and in the thesis'
epochs, as CSV files.

    python examples/thesis/tables.py fig4.1-laptop.nc PREFIX
    # writes PREFIX-success.csv, PREFIX-threshold.csv and PREFIX-solved.csv

Epochs as the thesis counts them: one epoch is 1/b steps of SGD or persistent SGD with batch fraction b
(one step of GD), so a solved time t is t/lr steps and t b/lr epochs.
"""
import argparse
import json

import numpy as np
import pandas as pd

from prcy.analysis import success_curve, threshold, threshold_table
from prcy.io import open_dataset
from prcy.sweep import Sweep


def solved_table(ds) -> pd.DataFrame:
    """Per cell: solved seeds, the median final test error, and the min / median / max solved time and
    epochs over the solved seeds (each cell's lr and batch fraction from the sweep's grid, as it ran)."""
    grid = json.loads(ds.attrs["grid"])
    sweep = Sweep.from_options({**grid["fixed"], **dict(grid["axes"])})
    rows = []
    for index, spec in sweep.cell_specs():
        point = dict(zip(sweep.dims, index))
        cell = ds.isel(point)
        a = spec.algorithm
        batch = 1.0 if a.name == "gd" else a.batch_fraction
        times = np.sort(cell["solved_time"].values[cell["success"].values.astype(bool)])
        row = {d: cell[d].values.item() for d in sweep.dims}
        row.update(solved=len(times), seeds=cell.sizes["seed"],
                   final_test_error_median=float(np.median(cell["test_error"].isel(time=-1).values)))
        for stat, f in (("min", np.min), ("median", np.median), ("max", np.max)):
            row[f"time_{stat}"] = f(times) if len(times) else np.nan
            row[f"epochs_{stat}"] = row[f"time_{stat}"] * batch / a.lr
        rows.append(row)
    return pd.DataFrame(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sweep", help="a prcy sweep file")
    ap.add_argument("prefix", help="output path prefix (PREFIX-success.csv, PREFIX-threshold.csv, "
                                   "PREFIX-solved.csv)")
    ap.add_argument("--bootstrap", type=int, default=1000)
    args = ap.parse_args()
    ds = open_dataset(args.sweep)
    solved = solved_table(ds)
    solved.to_csv(f"{args.prefix}-solved.csv", index=False, float_format="%.4g")
    print(solved.to_string(index=False))
    if "alpha" in ds["success"].dims and ds.sizes["alpha"] > 1:
        curve = success_curve(ds).to_dataframe().reset_index()
        curve.to_csv(f"{args.prefix}-success.csv", index=False, float_format="%.4g")
        table = threshold_table(threshold(ds, n_boot=args.bootstrap, seed=0))
        table.to_csv(f"{args.prefix}-threshold.csv", index=False, float_format="%.4g")
        print(table.to_string(index=False))


if __name__ == "__main__":
    main()
