"""Figures from simulation, sweep and theory datasets (matplotlib, Agg backend: no display needed).

Every function returns the ``matplotlib.figure.Figure`` (and draws on ``ax`` when one is given), so
callers and tests can inspect the lines; ``save_figure`` writes PNG or PDF.

Conventions.
- Time axis: logarithmic, plotting ``t + t0`` as in the paper (``t0`` = the learning rate ``lr`` of
  the first simulation dataset, i.e. one step; else the smallest positive recorded time), so ``t = 0``
  is on the axis. Theory curves on the same axes are shifted by the same ``t0``.
- Magnetization: plotted as ``|m|`` (phase retrieval cannot tell ``w`` from ``-w``; a median over seeds
  of the signed ``m`` would mix the two basins). Other variables as they are.
- kind "curves": median over seeds and the band between the lowest and highest quantile (default
  10%-90%), one colour per combination of the dimensions left after ``select`` (algorithm, alpha, ...).
- kind "seeds": the individual seeds (at most ``max_seeds`` per combination), as in the paper's fig 3.
- kind "success": success fraction vs ``along`` (alpha) with Wilson 95% error bars, one series per
  combination of the other dimensions.
- Theory: a dataset whose variable has a ``time`` dimension and no ``seed`` dimension (e.g. DMFT) is
  drawn as a black dashed line (one per remaining combination) on the same axes; a DMFT ensemble
  (``replica`` dimension) as the mean of its converged replicas with a grey band of +- 2 standard errors.
"""
from __future__ import annotations

import itertools
import json
import math
import os
from pathlib import Path

import numpy as np
import xarray as xr

from prcy.analysis.replicas import replica_summary
from prcy.analysis.thresholds import curve_bands, success_curve

KINDS = ("curves", "seeds", "success", "thresholds")
LABELS = {"magnetization": "|m|  (magnetization, up to sign)", "train_loss": "training loss per sample",
          "test_error": "generalization error", "norm": "|w|^2 / N", "train_error": "training error per sample",
          "train_accuracy": "training accuracy", "test_error_empirical": "test error on held-out samples"}
LOG_Y = ("train_loss", "test_error", "train_error", "test_error_empirical")
MAX_SERIES = 24


def _pyplot():
    import matplotlib
    if matplotlib.get_backend().lower() != "agg":
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


# --------------------------------------------------------------------------------------------------
# reading and selecting

def open_curves(path: str | os.PathLike) -> xr.Dataset:
    """Open a file for plotting: a prcy simulation or sweep (validated by ``prcy.io.open_dataset``), or a
    theory dataset (any NetCDF file with a ``time`` dimension and no ``seed`` dimension, e.g. DMFT)."""
    from prcy.io import SCHEMAS, read_netcdf, validate

    ds = read_netcdf(path)
    if ds.attrs.get("schema") in SCHEMAS:
        return validate(ds, path)
    if "time" in ds.dims and "seed" not in ds.dims:
        return ds
    raise ValueError(f"file: {str(path)!r} has schema {ds.attrs.get('schema')!r} and is neither a prcy "
                     f"simulation/sweep nor a theory curve (a 'time' dimension and no 'seed' dimension)")


def parse_selection(text: str | None) -> dict[str, str]:
    """``"algorithm=psgd,alpha=3"`` -> ``{"algorithm": "psgd", "alpha": "3"}``."""
    if not text:
        return {}
    out = {}
    for item in text.split(","):
        key, eq, value = (part.strip() for part in item.partition("="))
        if not eq or not key or not value:
            raise ValueError(f"select: {item!r} in {text!r} is not NAME=VALUE; example: algorithm=psgd,alpha=3")
        if key in out:
            raise ValueError(f"select: {key!r} is given twice in {text!r}")
        out[key] = value
    return out


def select(ds: xr.Dataset, selection: dict, *, strict: bool = True) -> xr.Dataset:
    """Pick one value of each named dimension (numbers match to 1e-9 relative). ``strict``: a name that
    is not a dimension of ``ds`` is an error (else it is skipped, as for theory datasets)."""
    for name, value in selection.items():
        if name not in ds.dims:
            if strict:
                dims = ", ".join(d for d in ds.dims if d not in ("seed", "time")) or "none"
                raise ValueError(f"select: {name!r} is not a dimension (dimensions to select: {dims})")
            continue
        coord = np.asarray(ds[name].values)
        if coord.dtype.kind in "iuf":
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"select: {name}={value!r} is not a number") from None
            hits = np.flatnonzero(np.isclose(coord.astype(float), number, rtol=1e-9, atol=1e-12))
        else:
            hits = np.flatnonzero(coord.astype(str) == str(value))
        if hits.size == 0:
            raise ValueError(f"select: {name}={value} is not in the data; "
                             f"values: {', '.join(_fmt(v) for v in coord)}")
        ds = ds.isel({name: int(hits[0])})
    return ds


def _indexed(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with a coordinate on every dimension: its index where the file has none (``eig`` of the
    Hessian's eigenpairs), so that each curve is labelled, e.g. ``eig=0``."""
    return ds.assign_coords({d: np.arange(n) for d, n in ds.sizes.items() if d not in ds.coords})


def _fmt(value) -> str:
    value = value.item() if hasattr(value, "item") else value
    return f"{value:g}" if isinstance(value, float) else str(value)


def _combinations(da: xr.DataArray, skip=("seed", "time"), independent=None):
    """(label, sub-array) for every point of the dimensions of ``da`` other than ``skip``; ``independent``:
    a sweep's ``independent_of`` (algorithm -> the dimensions it does not depend on), whose copies along
    those dimensions are given once, labelled ``any``."""
    dims = [d for d in da.dims if d not in skip]
    for index in itertools.product(*(range(da.sizes[d]) for d in dims)):
        sub = da.isel(dict(zip(dims, index)))
        free = (independent or {}).get(_fmt(sub["algorithm"].values), []) if "algorithm" in dims else []
        if any(i > 0 for d, i in zip(dims, index) if d in free):
            continue
        parts = [_fmt(sub[d].values) if d == "algorithm" else f"{d}={'any' if d in free else _fmt(sub[d].values)}"
                 for d in dims]
        if not dims and "algorithm" in sub.coords and sub["algorithm"].ndim == 0:
            parts = [_fmt(sub["algorithm"].values)]
        yield " ".join(parts), sub


def _count(da: xr.DataArray, skip=("seed", "time")) -> int:
    return int(np.prod([da.sizes[d] for d in da.dims if d not in skip], dtype=np.int64))


def _time_offset(datasets) -> float:
    for ds in datasets:
        lr = ds.attrs.get("lr")
        if isinstance(lr, (int, float, np.integer, np.floating)) and math.isfinite(lr) and lr > 0:
            return float(lr)
    for ds in datasets:
        t = np.asarray(ds["time"].values, dtype=float)
        positive = t[t > 0]
        if positive.size:
            return float(positive.min())
    return 1.0


def _check_var(ds: xr.Dataset, var: str, *, theory: bool) -> xr.DataArray:
    if var not in ds:
        raise ValueError(f"var: no variable {var!r} in the {'theory ' if theory else ''}dataset "
                         f"(variables: {', '.join(map(str, ds.data_vars))})")
    da = ds[var]
    if "time" not in da.dims:
        raise ValueError(f"var: {var!r} has no 'time' dimension (dims: {', '.join(da.dims)})")
    if theory and "seed" in da.dims:
        raise ValueError(f"theory: {var!r} has a 'seed' dimension; a theory curve has none")
    if not theory and "seed" not in da.dims:
        raise ValueError(f"var: {var!r} has no 'seed' dimension; give theory curves after a simulation")
    return da


def _values(da: xr.DataArray, var: str) -> xr.DataArray:
    da = da.astype(float)
    return abs(da) if var == "magnetization" else da


# --------------------------------------------------------------------------------------------------
# figures

def _axes(ax):
    if ax is not None:
        return ax.figure, ax
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    return fig, ax


def _overlay_theory(ax, theory, var, t0, selection):
    for name, ds in theory:
        ds = select(ds, selection, strict=False)
        da = _check_var(ds, var, theory=True)
        error = None
        if "replica" in da.dims:           # a DMFT ensemble: mean of the replicas +- 2 standard errors
            summary = replica_summary(ds, var)
            da, error = summary["mean"], summary["standard_error"]
            name = f"{name} (mean of {summary.attrs['replicas_used']} replicas +- 2 s.e.)"
        for label, sub in _combinations(da, skip=("time",)):
            t = np.asarray(sub["time"].values, dtype=float)
            y = np.asarray(_values(sub, var).transpose("time").values, dtype=float)
            text = f"{name} {label}".strip()
            ax.plot(t + t0, y, color="black", linestyle="--", linewidth=1.6, label=text, zorder=5)
            if error is not None:
                se = np.asarray(error.sel({d: sub[d].item() for d in error.dims if d != "time"})
                                .transpose("time").values, dtype=float)
                ax.fill_between(t + t0, y - 2 * se, y + 2 * se, color="black", alpha=0.15, linewidth=0, zorder=4)


def _finish_time_axes(ax, var, t0, title=None, units=None):
    ax.set_xscale("log")
    if var in LOG_Y:
        ax.set_yscale("log")
    if units == "iterations":              # AMP's time axis (prcy.amp)
        ax.set_xlabel(f"iteration + {t0:g}   (AMP, shifted by one iteration)")
    else:
        ax.set_xlabel(f"t + {t0:g}   (physical time steps*lr, shifted by one step)")
    ax.set_ylabel(LABELS.get(var, var))
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, frameon=False)


def plot_curves(ds: xr.Dataset, var: str = "magnetization", *, quantiles=(0.1, 0.5, 0.9),
                theory=(), selection: dict | None = None, ax=None, title: str | None = None):
    """Median over seeds (one line per combination of the other dimensions) with a quantile band;
    ``theory``: ``(name, dataset)`` pairs drawn as dashed lines. Returns the figure."""
    selection = selection or {}
    ds = _indexed(select(ds, selection))
    da = _check_var(ds, var, theory=False)
    if _count(da) > MAX_SERIES:
        raise ValueError(f"select: {_count(da)} curves to draw (at most {MAX_SERIES}); narrow them with a "
                         f"selection, e.g. {_example_selection(da)}")
    bands = curve_bands(ds, var, quantiles=quantiles, absolute=(var == "magnetization"))
    t0 = _time_offset([ds])
    fig, ax = _axes(ax)
    t = np.asarray(ds["time"].values, dtype=float) + t0
    q_low, q_high = min(quantiles), max(quantiles)
    colors = _colors()
    independent = json.loads(ds.attrs.get("independent_of", "{}"))
    for (label, median), color in zip(_combinations(bands["median"], skip=("time",), independent=independent),
                                      colors):
        point = {d: median[d].values for d in median.coords if d in bands["quantile_values"].dims
                 and d not in ("time", "quantile")}
        if bool(median.isnull().all()):      # a sweep's padding (e.g. eig beyond a cell's K): nothing to draw
            continue
        q = bands["quantile_values"].sel(point)
        ax.plot(t, median.transpose("time").values, color=color, linewidth=1.8, label=label or var)
        if q_high > q_low:
            ax.fill_between(t, q.sel(quantile=q_low).transpose("time").values,
                            q.sel(quantile=q_high).transpose("time").values, color=color, alpha=0.2,
                            linewidth=0)
    _overlay_theory(ax, theory, var, t0, selection)
    band = f"median, {100 * q_low:g}-{100 * q_high:g}% band over {ds.sizes['seed']} seeds"
    _finish_time_axes(ax, var, t0, title or band + _selection_text(selection), ds["time"].attrs.get("units"))
    return fig


def plot_seeds(ds: xr.Dataset, var: str = "magnetization", *, max_seeds: int = 50, theory=(),
               selection: dict | None = None, ax=None, title: str | None = None):
    """Individual seeds (at most ``max_seeds`` per combination), one colour per combination of the
    other dimensions; ``theory`` as in ``plot_curves``. Returns the figure."""
    if max_seeds < 1:
        raise ValueError(f"max_seeds: {max_seeds!r} is not allowed; allowed: >= 1")
    selection = selection or {}
    ds = _indexed(select(ds, selection))
    da = _check_var(ds, var, theory=False)
    if _count(da) > 8:
        raise ValueError(f"select: {_count(da)} groups of seeds to draw (at most 8); narrow them with a "
                         f"selection, e.g. {_example_selection(da)}")
    da = _values(da.isel(seed=slice(0, max_seeds)), var)
    t0 = _time_offset([ds])
    fig, ax = _axes(ax)
    t = np.asarray(ds["time"].values, dtype=float) + t0
    independent = json.loads(ds.attrs.get("independent_of", "{}"))
    for (label, sub), color in zip(_combinations(da, independent=independent), _colors()):
        y = np.asarray(sub.transpose("time", "seed").values, dtype=float)
        lines = ax.plot(t, y, color=color, linewidth=0.7, alpha=0.6)
        lines[0].set_label(label or var)
    _overlay_theory(ax, theory, var, t0, selection)
    default = f"{da.sizes['seed']} seeds per curve group" + _selection_text(selection)
    _finish_time_axes(ax, var, t0, title or default, ds["time"].attrs.get("units"))
    return fig


def plot_success(ds: xr.Dataset, along: str = "alpha", *, selection: dict | None = None, ax=None,
                 title: str | None = None):
    """Success fraction vs ``along`` with Wilson 95% error bars, one series per combination of the
    other dimensions. Returns the figure."""
    ds = select(ds, selection or {})
    curve = success_curve(ds, along)
    if _count(curve["fraction"], skip=(along,)) > MAX_SERIES:
        raise ValueError(f"select: too many series ({_count(curve['fraction'], skip=(along,))}); narrow "
                         f"them with a selection")
    fig, ax = _axes(ax)
    x = np.asarray(curve[along].values, dtype=float)
    for (label, frac), color in zip(_combinations(curve["fraction"], skip=(along,)), _colors()):
        point = {d: frac[d].values for d in frac.coords if d in curve["ci_low"].dims and d != along}
        lo = curve["ci_low"].sel(point).values
        hi = curve["ci_high"].sel(point).values
        y = frac.values
        yerr = np.clip(np.vstack([y - lo, hi - y]), 0, None)     # Wilson ends can miss 0 or 1 by rounding
        ax.errorbar(x, y, yerr=yerr, color=color, marker="o", markersize=4, capsize=3, linewidth=1.4,
                    label=label or "success")
    ax.set_xlabel(along)
    ax.set_ylabel("success probability")
    ax.set_ylim(-0.03, 1.03)
    ax.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
    ax.set_title(title or f"Wilson 95% intervals, {ds.sizes['seed']} seeds per point"
                 + _selection_text(selection or {}), fontsize=10)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, frameon=False)
    return fig


def plot(datasets, *, kind: str = "curves", var: str = "magnetization", selection: dict | None = None,
         along: str = "alpha", max_seeds: int = 50, names=None):
    """One figure from several datasets: those with a ``seed`` dimension are simulations (each drawn
    per ``kind``), those without are theory curves overlaid on the same axes (kinds curves and seeds).
    ``names``: labels of the datasets (default: their titles). Returns the figure."""
    if kind not in KINDS:
        raise ValueError(f"kind: {kind!r} is not allowed; allowed: {', '.join(KINDS)}")
    datasets = list(datasets)
    names = list(names) if names is not None else [ds.attrs.get("title", f"dataset {i}")
                                                   for i, ds in enumerate(datasets)]
    sims = [(n, ds) for n, ds in zip(names, datasets) if "seed" in ds.dims]
    theory = [(n, ds) for n, ds in zip(names, datasets) if "seed" not in ds.dims]
    if not sims:
        raise ValueError("files: no simulation or sweep dataset (one with a 'seed' dimension) among them")
    if kind in ("success", "thresholds") and theory:
        raise ValueError("kind: theory curves (datasets without seeds) overlay only kinds curves and seeds")
    fig, ax = _axes(None)
    for i, (_, ds) in enumerate(sims):
        overlay = theory if i == len(sims) - 1 else ()
        if kind == "curves":
            plot_curves(ds, var, theory=overlay, selection=selection, ax=ax)
        elif kind == "seeds":
            plot_seeds(ds, var, max_seeds=max_seeds, theory=overlay, selection=selection, ax=ax)
        else:
            plot_success(ds, along, selection=selection, ax=ax)
    if kind == "thresholds":
        draw_thresholds(ax)
    return fig


def draw_thresholds(ax, rows=None):
    """Vertical lines at the theory thresholds (``analysis.landscape.theory_thresholds``), labelled,
    widening the x axis to hold them all (the "samples needed" picture of the thresholds landscape)."""
    from prcy.analysis.landscape import theory_thresholds

    rows = theory_thresholds() if rows is None else rows
    lo, hi = ax.get_xlim()
    for row, color in zip(rows, _colors()):
        ax.axvline(row["alpha"], color=color, linestyle="--", linewidth=1.0)
        ax.text(row["alpha"], 1.02, f" {row['symbol']} = {row['alpha']:.4g}", rotation=90, fontsize=7,
                va="bottom", ha="center", color=color, transform=ax.get_xaxis_transform())
    ax.set_xlim(min(lo, min(r["alpha"] for r in rows) - 0.3), max(hi, max(r["alpha"] for r in rows) + 0.5))
    return ax


def save_figure(fig, path: str | os.PathLike, *, overwrite: bool = False, dpi: int = 150) -> Path:
    """Write ``fig`` as PNG or PDF (from the suffix)."""
    from prcy.io import check_output

    path = check_output(path, overwrite=overwrite, suffixes=(".png", ".pdf"))
    fig.savefig(path, dpi=dpi)
    return path


def _colors():
    plt = _pyplot()
    return itertools.cycle(plt.rcParams["axes.prop_cycle"].by_key()["color"])


def _selection_text(selection: dict) -> str:
    return ("  (" + ", ".join(f"{k}={v}" for k, v in selection.items()) + ")") if selection else ""


def _example_selection(da: xr.DataArray) -> str:
    dims = [d for d in da.dims if d not in ("seed", "time")]
    return ",".join(f"{d}={_fmt(da[d].values[0])}" for d in dims)
