"""The tables of docs/validation.md 5a and 10d from `prcy simulate` files (GD on permuted or fresh labels):

    python examples/plateau_tables.py gap plateau-gap.csv permute-n250.nc permute-n500.nc ...
    python examples/plateau_tables.py end plateau-end.csv hess-n250.nc hess-n500.nc ...

`gap`: the training loss per sample (mean and standard error over seeds) at the recording times nearest
1, 10, 30, 100, 300, 1000, 3000 (those within t_max). `end`: at the last recording time, the loss, the lowest
Hessian eigenvalue (mean, min, max over seeds), the bulk edge and the multiplier (means; NaN without
--hessian) and the label moments (means; files recorded with --label-moments)."""
import argparse

import numpy as np

from prcy.io import open_dataset

TIMES = (1, 10, 30, 100, 300, 1000, 3000)


def gap_rows(ds):
    t, v = ds.time.values, ds.train_loss.values
    for target in TIMES:
        if target > t[-1] * 1.01:
            break
        i = int(np.argmin(np.abs(t - target)))
        yield (f"{ds.attrs['labels']},{ds.attrs['alpha']:g},{ds.attrs['n']},{ds.attrs['lr']:g},{ds.sizes['seed']},"
               f"{t[i]:.4g},{v[:, i].mean():.5f},{v[:, i].std(ddof=1) / np.sqrt(v.shape[0]):.5f}")


def end_row(ds):
    last = ds.isel(time=-1)
    nan = np.full(ds.sizes["seed"], np.nan)
    lam = last.hessian_eigenvalues.values[:, 0] if "hessian_eigenvalues" in ds else nan
    edge = last.hessian_bulk_edge.values if "hessian_bulk_edge" in ds else nan
    mu = last.hessian_multiplier.values if "hessian_multiplier" in ds else nan
    v = last.train_loss.values
    moments = ",".join(f"{x:.4f}" for x in last.label_moments.mean("seed").values)
    return (f"{ds.attrs['labels']},{ds.attrs['alpha']:g},{ds.attrs['n']},{ds.sizes['seed']},{float(last.time):g},"
            f"{v.mean():.5f},{v.std(ddof=1) / np.sqrt(v.size):.5f},{lam.mean():.4f},{lam.min():.4f},{lam.max():.4f},"
            f"{edge.mean():.4f},{mu.mean():.4f},{moments}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", choices=("gap", "end"))
    parser.add_argument("output")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    datasets = [open_dataset(f) for f in args.files]
    if args.table == "gap":
        lines = ["labels,alpha,n,lr,seeds,time,train_loss_mean,train_loss_se"]
        lines += [row for ds in datasets for row in gap_rows(ds)]
    else:
        names = ",".join(str(m) for m in datasets[0].moment.values)
        lines = [f"labels,alpha,n,seeds,time,train_loss,train_loss_se,lambda1,lambda1_min,lambda1_max,bulk_edge,"
                 f"multiplier,{names}"] + [end_row(ds) for ds in datasets]
    with open(args.output, "w") as out:
        out.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
