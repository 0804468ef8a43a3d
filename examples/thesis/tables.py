"""The tables behind docs/validation.md's comparisons with Dmitriev 2021: from a success-vs-alpha sweep
file, the success fraction per cell with its Wilson interval, and the 50% point per curve with its
bootstrap interval over seeds, as two CSV files.

    python examples/thesis/tables.py fig4.1-laptop.nc PREFIX
    # writes PREFIX-success.csv and PREFIX-threshold.csv
"""
import argparse

from prcy.analysis import success_curve, threshold, threshold_table
from prcy.io import open_dataset


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sweep", help="a prcy sweep file with an alpha dimension")
    ap.add_argument("prefix", help="output path prefix (PREFIX-success.csv, PREFIX-threshold.csv)")
    ap.add_argument("--bootstrap", type=int, default=1000)
    args = ap.parse_args()
    ds = open_dataset(args.sweep)
    curve = success_curve(ds).to_dataframe().reset_index()
    curve.to_csv(f"{args.prefix}-success.csv", index=False, float_format="%.4g")
    table = threshold_table(threshold(ds, n_boot=args.bootstrap, seed=0))
    table.to_csv(f"{args.prefix}-threshold.csv", index=False, float_format="%.4g")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
