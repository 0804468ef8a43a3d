"""m(t) per time, mean and standard error, of DMFT ensembles (over their converged replicas) and of
simulations (over their seeds), one row per file and time, as CSV: the data behind docs/validation.md 7g.

    python examples/magnetization_table.py docs/data/dmft-hard-langevin.csv lang-T0.5-dt0.05.nc \\
        lang-T0.5-dt0.05-S16000.nc lang-T0.5-dt0.025.nc lang-T0.5-dt0.05-t10.nc psgd-dt0.05.nc psgd-dt0.05-win1.nc \\
        psgd-dt0.05-win1-steps.nc \\
        sim-lang-T0.5-lr0.05.nc sim-lang-T0.5-lr0.05-n4000.nc sim-lang-T0.5-lr0.025.nc \\
        sim-lang-T0.5-lr0.05-t10.nc sim-psgd-lr0.05.nc
    python examples/magnetization_table.py docs/data/dmft-hard-psgd.csv --unblown 10 psgd-steps-multiplier.nc \\
        psgd-steps-projection.nc sim-psgd-lr0.05.nc

``--unblown LOSS`` adds, per simulation, the seeds whose training loss stayed <= LOSS so far.
"""
import argparse

import numpy as np
import pandas as pd
import xarray as xr


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("output")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--unblown", type=float, default=None, metavar="LOSS",
                    help="also, for each simulation file, rows over the seeds whose training loss stayed <= LOSS "
                         "up to the row's time (file name + ' [unblown]')")
    args = ap.parse_args()
    rows = []

    def add(name, t, m):
        rows.append(dict(file=name, time=round(float(t), 6), mean=m.mean(), se=m.std(ddof=1) / np.sqrt(len(m)),
                         count=len(m)))

    for path in args.files:
        ds = xr.open_dataset(path)
        name = path.rsplit("/", 1)[-1]
        m = (ds.magnetization.values[(ds.replica_status == "converged").values] if "replica" in ds.dims
             else ds.magnetization.values)
        for k, t in enumerate(ds.time.values):
            add(name, t, m[:, k])
        if args.unblown is not None and "seed" in ds.dims:
            worst = np.maximum.accumulate(ds.train_loss.values, axis=1)       # largest loss up to each time
            for k, t in enumerate(ds.time.values):
                add(name + " [unblown]", t, m[worst[:, k] <= args.unblown, k])
    pd.DataFrame(rows).to_csv(args.output, index=False, float_format="%.5g")


if __name__ == "__main__":
    main()
