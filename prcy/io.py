"""NetCDF input/output: output checks, atomic writes, validated reads, the provenance attributes and a
short description of a file."""
from __future__ import annotations

import contextlib
import datetime
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


def provenance(title: str, schema: str, spec: str, root_seed: int, spawn_keys: str, *,
               created: str | None = None) -> dict:
    """The attributes every prcy file carries: ``title``, ``Conventions``, ``schema``, the prcy version,
    ``created`` (default: now, UTC), the ``spec`` as JSON, and the random numbers' provenance (generator,
    root seed, ``spawn_keys``: how the streams derive from the root, and the numpy version)."""
    from prcy import __version__

    if created is None:
        created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return {"title": title, "Conventions": "CF-1.10", "schema": schema, "prcy_version": __version__,
            "created": created, "spec": spec, "rng_generator": "numpy.random.PCG64", "rng_root_seed": root_seed,
            "rng_spawn_keys": spawn_keys, "numpy_version": np.__version__}


def check_output(path: str | os.PathLike, *, overwrite: bool = False,
                 suffixes: tuple[str, ...] | None = None) -> Path:
    """The output ``path`` as a ``Path``, refused before any work is done: a folder (``""`` included)
    or a suffix not in ``suffixes`` (``ValueError``), an existing file unless ``overwrite``
    (``FileExistsError``), a folder that does not exist (``FileNotFoundError``) or in which no file
    can be created (``ValueError``)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"output: {str(path)!r} is a folder; allowed: a file name")
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise ValueError(f"output: {str(path)!r} must end in {' or '.join(suffixes)}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"output: {str(path)!r} exists; pass overwrite=True (--overwrite) to replace it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"output: folder {str(path.parent)!r} does not exist")
    try:
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as exc:
        raise ValueError(f"output: no file can be created in folder {str(path.parent)!r} ({exc.strerror}); "
                         f"allowed: a folder you can write in") from None
    return path


def write_dataset(ds: xr.Dataset, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``ds`` to NetCDF4 at ``path`` atomically (``atomic_path``): a crash or Ctrl-C leaves either
    the old file or the new one, never a partial one. An existing ``path`` is kept unless ``overwrite``."""
    path = check_output(path, overwrite=overwrite)
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
    """A few lines on a dataset's file: its title, schema, prcy version and creation time, its
    dimensions, the scalar attributes of the run and the random numbers."""
    dims = ", ".join(f"{k}={v}" for k, v in ds.sizes.items())
    a = ds.attrs
    fixed = "  ".join(f"{k}={a[k]}" for k in ("problem", "alpha", "delta", "onset", "n", "hidden", "init", "init_variance", "m0",
                                                 "optimizer", "lr", "dt", "t_max", "constraint", "success",
                                                 "precision") if k in a)
    swept = f"  swept: {a['dims_swept']}" if a.get("dims_swept") else ""
    return "\n".join([
        f"{a.get('title', 'dataset')} ({a.get('schema')}, prcy {a.get('prcy_version')}, created {a.get('created')})",
        f"dims: {dims}{swept}",
        fixed,
        f"rng: {a.get('rng_generator')} root seed {a.get('rng_root_seed')}; {a.get('rng_spawn_keys')}"])
