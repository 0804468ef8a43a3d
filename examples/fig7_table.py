"""The table of docs/validation.md's fig 7 check: from a sweep with n and algorithm axes, the median
|m| over seeds at chosen times and the number of solved seeds, one row per (n, algorithm), as CSV.

    python examples/fig7_table.py fig7-laptop.nc docs/data/fig7-random.csv --times 0,10,100,300
"""
import argparse

import numpy as np
import pandas as pd

from prcy.io import open_dataset


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sweep", help="a prcy sweep file with n and algorithm axes")
    ap.add_argument("csv", help="output CSV path")
    ap.add_argument("--times", default="0,10,100,300", help="comma-separated times (nearest recording)")
    args = ap.parse_args()
    ds = open_dataset(args.sweep)
    times = [float(t) for t in args.times.split(",")]
    rows = []
    for n in ds.n.values:
        for algorithm in ds.algorithm.values:
            cell = ds.sel(n=n, algorithm=algorithm)
            row = {"n": int(n), "algorithm": str(algorithm)}
            for t in times:
                m = np.abs(cell.magnetization.sel(time=t, method="nearest"))
                row[f"median_abs_m_t{t:g}"] = float(m.median("seed"))
            row["solved"] = int(cell.success.sum())
            row["seeds"] = cell.sizes["seed"]
            rows.append(row)
    table = pd.DataFrame(rows)
    table.to_csv(args.csv, index=False, float_format="%.4g")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
