"""Statistics over the replicas of a DMFT ensemble (``prcy.dmft.solve(..., replicas=R)``)."""
import math

import numpy as np
import xarray as xr


def replica_summary(ds: xr.Dataset, var: str = "magnetization") -> xr.Dataset:
    """Mean and standard error of ``var`` over the converged replicas of an ensemble (a dataset with a
    ``replica`` dimension and the variable ``replica_status``): a dataset with ``mean``,
    ``standard_error`` (NaN with fewer than two converged replicas; both NaN with none) and the
    attribute ``replicas_used``."""
    if "replica" not in ds.dims:
        raise ValueError("ds: no 'replica' dimension; solve with replicas=R (or --replicas R)")
    if var not in ds:
        raise ValueError(f"var: {var!r} is not in the dataset; allowed: "
                         f"{', '.join(v for v in ds.data_vars if 'replica' in ds[v].dims)}")
    da = ds[var].where(ds["replica_status"] == "converged", drop=True)
    n = da.sizes["replica"]
    missing = xr.full_like(ds[var].isel(replica=0, drop=True), np.nan, dtype=float)
    mean = da.mean("replica") if n else missing
    se = da.std("replica", ddof=1) / math.sqrt(n) if n > 1 else missing
    out = xr.Dataset({"mean": mean, "standard_error": se})
    out.attrs["replicas_used"] = n
    return out
