"""The tables of docs/validation.md section 9 (Mignacco et al. 2020): from a sweep or simulation file,
one row per grid cell (every dimension but seed and time): the test error (eq 24/25 of the recorded m and
C) as mean +- standard error over seeds at chosen times, the early-stopping minimum of the mean curve and
its time, and the training accuracy at the last time, as CSV.

    python examples/mixtures/table.py fig1-right-laptop.nc docs/data/mixture-fig1-right.csv --times 0.2,1,10,50,200
"""
import argparse
import itertools
import json

import numpy as np
import pandas as pd

from prcy.io import open_dataset


def rows(ds, times):
    """The rows of the table for the dataset ``ds`` (see the module docstring)."""
    dims = [d for d in ds.test_error.dims if d not in ("seed", "time")]
    independent = json.loads(ds.attrs.get("independent_of", "{}"))     # an algorithm's copies along an axis
    out = []
    for index in itertools.product(*(range(ds.sizes[d]) for d in dims)):
        cell = ds.isel(dict(zip(dims, index)))
        row = {d: cell[d].values.item() for d in dims}
        skip = independent.get(str(row.get("algorithm", "")), [])
        if any(row_i > 0 for d, row_i in zip(dims, index) if d in skip):
            continue
        row.update({d: "any" for d in skip})
        if "algorithm" not in dims and "algorithm" in cell.coords:
            row["algorithm"] = str(cell["algorithm"].values)
        error = cell.test_error
        seeds = error.sizes["seed"]
        mean = error.mean("seed")
        for t in times:
            at = error.sel(time=t, method="nearest")
            row[f"error_t{t:g}"] = float(at.mean("seed"))
            row[f"se_t{t:g}"] = float(at.std("seed", ddof=1) / np.sqrt(seeds))
        i = int(mean.argmin("time"))
        row["min_error"] = float(mean[i])
        row["min_se"] = float(error.isel(time=i).std("seed", ddof=1) / np.sqrt(seeds))
        row["t_min"] = float(mean.time[i])
        row["final_train_accuracy"] = float(cell.train_accuracy.isel(time=-1).mean("seed"))
        row["seeds"] = seeds
        out.append(row)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", help="a prcy simulation or sweep file of a mixture problem")
    ap.add_argument("csv", help="output CSV path")
    ap.add_argument("--times", default="0.2,1,10,50,200", help="comma-separated times (nearest recording)")
    args = ap.parse_args()
    table = pd.DataFrame(rows(open_dataset(args.data), [float(t) for t in args.times.split(",")]))
    table.to_csv(args.csv, index=False, float_format="%.4g")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
