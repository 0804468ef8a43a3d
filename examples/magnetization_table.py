"""m(t) per time, mean and standard error, of DMFT ensembles (over their converged replicas) and of
simulations (over their seeds), one row per file and time, as CSV: the data behind docs/validation.md 7g.

    python examples/magnetization_table.py docs/data/dmft-hard-langevin.csv lang-T0.5-dt0.05.nc \\
        lang-T0.5-dt0.05-S16000.nc lang-T0.5-dt0.025.nc lang-T0.5-dt0.05-t10.nc psgd-dt0.05.nc psgd-dt0.05-win1.nc \\
        psgd-dt0.05-win1-steps.nc \\
        sim-lang-T0.5-lr0.05.nc sim-lang-T0.5-lr0.05-n4000.nc sim-lang-T0.5-lr0.025.nc \\
        sim-lang-T0.5-lr0.05-t10.nc sim-psgd-lr0.05.nc
"""
import sys

import numpy as np
import pandas as pd
import xarray as xr


def main():
    rows = []
    for path in sys.argv[2:]:
        ds = xr.open_dataset(path)
        m = (ds.magnetization.values[(ds.replica_status == "converged").values] if "replica" in ds.dims
             else ds.magnetization.values)
        for k, t in enumerate(ds.time.values):
            rows.append(dict(file=path.rsplit("/", 1)[-1], time=round(float(t), 6), mean=m[:, k].mean(),
                             se=m[:, k].std(ddof=1) / np.sqrt(len(m)), count=len(m)))
    pd.DataFrame(rows).to_csv(sys.argv[1], index=False, float_format="%.5g")


if __name__ == "__main__":
    main()
