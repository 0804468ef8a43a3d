"""NetCDF input/output: atomic writes, validated reads, a short description of a file."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

SCHEMAS = ("prcy-simulation/1", "prcy-sweep/1", "prcy-dmft/1")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success it is flushed to disk and renamed over
    ``path`` (atomic on POSIX), on any exception (Ctrl-C included) it is removed."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())     # mkstemp makes it 0600; the file gets the mode open() would give
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_dataset(ds: xr.Dataset, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``ds`` to NetCDF4 at ``path`` atomically (``atomic_path``): a crash or Ctrl-C leaves either
    the old file or the new one, never a partial one. An existing ``path`` is kept unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"output: {str(path)!r} exists; pass overwrite=True (--overwrite) to replace it")
    if not path.parent.exists():
        raise FileNotFoundError(f"output: folder {str(path.parent)!r} does not exist")
    encoding = {name: {"zlib": True, "complevel": 4}
                for name, var in ds.data_vars.items() if var.dtype.kind == "f"}
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", encoding=encoding)
    return path


def read_netcdf(path: str | os.PathLike, *, load: bool = True) -> xr.Dataset:
    """Any NetCDF file, loaded into memory (or opened lazily with ``load=False``: the caller then
    closes it); a missing or unreadable file is a clear error."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"file: {str(path)!r} does not exist")
    try:
        if not load:
            return xr.open_dataset(path, engine="netcdf4")
        with xr.open_dataset(path, engine="netcdf4") as ds:
            return ds.load()
    except (OSError, ValueError) as exc:
        raise ValueError(f"file: {str(path)!r} is not a readable NetCDF file ({exc})") from None


def open_dataset(path: str | os.PathLike, *, load: bool = True) -> xr.Dataset:
    """Open a prcy NetCDF file and check that it is one: loaded into memory, or lazily with
    ``load=False`` (for large sweeps; close it when done)."""
    return validate(read_netcdf(path, load=load), path)


def validate(ds: xr.Dataset, path: str | os.PathLike = "dataset") -> xr.Dataset:
    """Check the schema of a prcy dataset and restore what NetCDF cannot hold (booleans)."""
    schema = ds.attrs.get("schema")
    if schema not in SCHEMAS:
        raise ValueError(f"file: {str(path)!r} has schema {schema!r}; this prcy reads {', '.join(SCHEMAS)}")
    if "success" in ds and ds["success"].dtype != bool:
        ds["success"] = ds["success"].astype(bool)
    return ds


def specs(ds: xr.Dataset) -> list[dict]:
    """The spec dict(s) stored in a dataset (one per algorithm)."""
    spec = json.loads(ds.attrs["spec"])
    return spec if isinstance(spec, list) else [spec]


def describe(ds: xr.Dataset) -> str:
    """A few lines on a dataset: what was run and the per-algorithm success summary."""
    from prcy.analysis import success_summary

    dims = ", ".join(f"{k}={v}" for k, v in ds.sizes.items())
    a = ds.attrs
    fixed = "  ".join(f"{k}={a[k]}" for k in ("problem", "alpha", "n", "m0", "lr", "dt", "t_max", "constraint",
                                                 "precision") if k in a)
    swept = f"  swept: {a['dims_swept']}" if a.get("dims_swept") else ""
    lines = [f"{a.get('title', 'dataset')} ({a.get('schema')}, prcy {a.get('prcy_version')}, created {a.get('created')})",
             f"dims: {dims}{swept}",
             fixed,
             f"rng: {a.get('rng_generator')} root seed {a.get('rng_root_seed')}; {a.get('rng_spawn_keys')}"]
    if a.get("schema") == "prcy-dmft/1":
        lines.append(describe_dmft(ds))
    else:
        lines += [format_summary_row(r) for r in success_summary(ds)]
    return "\n".join(lines)


def describe_dmft(ds: xr.Dataset) -> str:
    """How a DMFT solve (or each replica of an ensemble) ended, and m(t_max)."""
    from prcy.dmft import ESS_WARN

    def one(status, iterations, residual, seconds, m_end, diverged, ess):
        text = (f"{status} after {iterations} iterations (residual {residual:.3g}, {seconds:.3g} s/iteration); "
                f"m(t_max) = {m_end:.4f}")
        if status == "diverged":
            text += (f"; paths not finite or running away at iteration {diverged[0]}, grid index {diverged[1]} "
                     f"(t = {diverged[2]:g})")
        if ess is not None and ess == ess:
            text += f"; memory kernel rests on >= {ess:.3g} effective samples"
            if ess < ESS_WARN:
                text += (" (WARNING: heavy-tailed response, M_R not resolved at this sample size; "
                         "see M_R_row_ess and docs/dmft.md; try --response-kick 0.1)")
        return text

    a = ds.attrs
    head = f"DMFT: samples {a.get('samples')}, dt {a.get('dt')}"
    guess = a.get("initial_guess", "A.1")
    if guess.startswith("M_R of"):
        head += f", warm start from {guess}"
    elif not guess.startswith("A.1"):      # replicas begun from different guesses, or an older checkpoint's
        head += f", initial guess: {guess}"
    window = json.loads(a["spec"])["solver"].get("window") if "spec" in a else None
    if window is not None:
        head += f", horizon windows of {window:g}"
    if "replica" not in ds.dims:
        return f"{head}; " + one(a["status"], a["iterations"], a["final_residual"], a["seconds_per_iteration"],
                                 float(ds["magnetization"][-1]),
                                 tuple(a.get(k) for k in ("diverged_iteration", "diverged_step", "diverged_time")),
                                 a.get("response_ess_min"))
    from prcy.dmft import replica_summary

    lines = [f"{head}; {ds.sizes['replica']} replicas, {a['replicas_converged']} converged"]
    for i in range(ds.sizes["replica"]):
        r = ds.isel(replica=i)
        lines.append(f"  replica {int(r['replica'])}: " + one(
            str(r["replica_status"].values), int(r["iterations"]), float(r["final_residual"]),
            float(r["seconds_per_iteration"]), float(r["magnetization"][-1]),
            tuple(r[k].values.item() for k in ("diverged_iteration", "diverged_step", "diverged_time")),
            float(r["response_ess_min"]) if "response_ess_min" in r else None))
    summary = replica_summary(ds)
    lines.append(f"m(t_max) over the {summary.attrs['replicas_used']} converged replicas: "
                 f"{float(summary['mean'][-1]):.4f} +- {float(summary['standard_error'][-1]):.4f} (standard error)")
    return "\n".join(lines)


def format_summary_row(r: dict) -> str:
    """One line per grid point: success fraction with its Wilson interval, median solved time, median
    final ``|m|`` (saying over how many seeds when some have no finite ``m``), diverged seeds."""
    solved = "-" if np.isnan(r["median_solved_time"]) else f"{r['median_solved_time']:.4g}"
    over = ("" if r["final_m_seeds"] == r["seeds"]
            else f" (over {r['final_m_seeds']} of {r['seeds']} seeds; the others have no finite m)")
    label = " ".join(f"{v}" if k == "algorithm" else f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in r["point"].items())
    return (f"{label:>9}: success {r['successes']}/{r['seeds']} = {100 * r['fraction']:.0f}% "
            f"[95% CI {100 * r['ci_low']:.0f}-{100 * r['ci_high']:.0f}%]  median solved time {solved}  "
            f"median final |m| {r['median_final_m']:.3g}{over}  diverged {r['diverged']}")
