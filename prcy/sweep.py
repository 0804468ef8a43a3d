"""Parameter sweeps: a grid of simulation specs x seeds becomes tasks; each finished task is written
atomically to its own part file; a rerun computes only what is missing; the parts merge, streaming,
into one labelled NetCDF dataset.

Grid. Any option of ``prcy.simulate`` is either fixed (one value) or swept (a list, or a range
``start:stop:step`` that includes ``stop``). The merged dataset has one dimension per swept option, in
the order given, then ``seed`` and ``time``, then the dimensions of their own that some options add
(``unit``, ``eig``, ``bin``, ``moment``: ``prcy.simulate.RECORDED_WITH``), each as wide as its widest
cell's, NaN beyond a cell's own.

Options that do not apply in a grid cell (``batch_fraction`` for gd, ``persistence`` for gd, sgd and
langevin, ``temperature`` for gd, ``momentum`` for the plain optimizer, ...: the option table,
``prcy.options``) are not passed to it; an option that applies to no cell is refused. A cell therefore
runs once per distinct spec and its result fills every cell of the dimensions it does not depend on
(the cells hold the same bits, nothing is re-run or made up). The attribute ``independent_of`` lists,
per algorithm, the swept dimensions that none of its cells depends on.

Time. All tasks share the recording times. When ``lr`` is swept the times are computed with the
largest ``lr`` and every other ``lr`` must divide them (checked up front).

Parts. ``<output>.parts/`` holds ``task-<key>.nc`` per task, where ``key`` hashes the task's spec and
seed block, and ``sweep.json`` (the grid and its creation time). A part is trusted only when its stored
key and spec match the task and its data checksum is right; anything else in the folder is reported
and never merged, and a damaged part is recomputed. The merged file is written to a temporary file and
renamed, and its content does not depend on interruptions, resumption, the executor or the number of
workers.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import itertools
import json
import math
import os
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from prcy.options import (EXECUTION, LOSSES, SIMULATION, applicable_options, applies, context, runs_without_unused,
                          sections)
from prcy.problems import load_loss
from prcy.specs import Recording, SimulationSpec, check_amp_alone

SCHEMA = "prcy-sweep/1"
PART_SCHEMA = "prcy-sweep-part/1"

# the options of a grid: the simulation's and the seed blocks (prcy.options)
OPTIONS = {**SIMULATION, "seeds_per_task": EXECUTION["seeds_per_task"]}
# TOML sections: a place for every option (dotted overrides use the same names: --dynamics.lr 0.02)
SECTIONS = sections(OPTIONS)
OPTION_SECTION = {opt: sec for sec, opts in SECTIONS.items() for opt in opts}
NOT_SWEPT = tuple(name for name, row in OPTIONS.items() if not row.sweepable)


# --------------------------------------------------------------------------------------------------
# parsing values and grids

def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_range(text: str) -> list[float]:
    """``"start:stop:step"`` -> ``[start, start + step, ..., stop]`` (``stop`` included when the steps
    land on it within 1e-9 of a step)."""
    start, stop, step = (float(p) for p in text.split(":"))
    if not (math.isfinite(start) and math.isfinite(stop) and math.isfinite(step)) or step <= 0 or stop < start:
        raise ValueError(f"range: {text!r} is not allowed; allowed: start:stop:step with step > 0 and stop >= start")
    count = int(math.floor((stop - start) / step + 1e-9)) + 1
    if count > 100_000:
        raise ValueError(f"range: {text!r} has {count} values; allowed: at most 100000")
    values = [round(start + i * step, 12) for i in range(count)]
    return [int(v) if float(v).is_integer() and all(float(p).is_integer() for p in text.split(":")) else v
            for v in values]


def parse_option(name: str, value):
    """A grid value of option ``name`` from text (a TOML string or a command-line value): a list
    ``a,b``, a range ``start:stop:step`` (``parse_range``) or one value, each element parsed by the
    option's row; a temperature schedule or a list of times is one value. Values that are not text are
    returned as they are."""
    row = OPTIONS[name]
    if not isinstance(value, str) or row.kind in ("schedule", "times"):
        return row.parse(value)
    if "," in value:
        return [row.parse(part.strip()) for part in value.split(",") if part.strip()]
    if row.kind in ("float", "int") and value.count(":") == 2 and all(_is_number(p) for p in value.split(":")):
        return parse_range(value)
    return row.parse(value)


def load_grid_file(path: str | os.PathLike) -> dict:
    """Flat options from a TOML grid file: sections of ``SECTIONS``; a list or a range string sweeps."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"grid: {str(path)!r} does not exist")
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"grid: {str(path)!r} is not valid TOML ({exc})") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise ValueError(f"grid: {str(path)!r} cannot be read as text ({exc})") from None
    options = {}
    for section, table in doc.items():
        if section not in SECTIONS or not isinstance(table, dict):
            raise ValueError(f"grid: unknown section [{section}] in {str(path)!r}; allowed: "
                             + ", ".join(f"[{s}]" for s in SECTIONS))
        for key, value in table.items():
            if key not in SECTIONS[section]:
                raise ValueError(f"grid: [{section}] has no option {key!r}; allowed: {', '.join(SECTIONS[section])}")
            options[key] = parse_option(key, value)
    return options


def override_key(text: str) -> str:
    """``"--dynamics.lr"``, ``"--lr"``, ``"--batch-fraction"`` -> the flat option name."""
    name = text.lstrip("-").replace("-", "_")
    if "." in name:
        section, _, key = name.partition(".")
        if section not in SECTIONS or key not in SECTIONS[section]:
            raise ValueError(f"option: --{text.lstrip('-')} is unknown; allowed: --SECTION.KEY with "
                             + "; ".join(f"{s}: {', '.join(k)}" for s, k in SECTIONS.items()))
        return key
    if name not in OPTION_SECTION:
        raise ValueError(f"option: --{text.lstrip('-')} is unknown; allowed: "
                         + ", ".join(OPTIONS[k].flag for k in OPTION_SECTION))
    return name


def parse_overrides(args: list[str]) -> dict:
    """Grid options from command-line words: ``--name VALUE`` or ``--name=VALUE`` (``VALUE``: one
    value, a list ``a,b`` or a range ``start:stop:step``); a true/false option also as ``--name`` or
    ``--no-name``."""
    out, i = {}, 0
    while i < len(args):
        token = args[i]
        if not token.startswith("--"):
            raise ValueError(f"option: unexpected argument {token!r}; options look like --alpha 1:4:0.5")
        name, eq, inline = token.partition("=")
        negated = not eq and name.startswith("--no-") and name[5:].replace("-", "_") in OPTION_SECTION
        key = override_key("--" + name[5:] if negated else name)
        is_flag = OPTIONS[key].kind == "bool"
        if eq:
            text = inline
        elif negated or (is_flag and (i + 1 == len(args) or args[i + 1].startswith("--"))):
            text = not negated
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            text = args[i + 1]
            i += 1
        else:
            raise ValueError(f"{key}: a value is needed; allowed: {OPTIONS[key].allowed()}")
        if negated and not is_flag:
            raise ValueError(f"{key}: --no-{name[5:]} is only for true/false options; allowed: "
                             f"{OPTIONS[key].flag} VALUE")
        out[key] = parse_option(key, text)
        i += 1
    return out


# --------------------------------------------------------------------------------------------------
# the sweep and its tasks

@dataclasses.dataclass(frozen=True)
class Task:
    key: str
    spec: SimulationSpec


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A validated grid: ``axes`` (swept option -> values, in order) and ``fixed`` options."""
    axes: tuple[tuple[str, tuple], ...]
    fixed: tuple[tuple[str, object], ...]
    seeds_per_task: int | None = None

    @classmethod
    def from_options(cls, options: dict) -> "Sweep":
        options = dict(options)
        seeds_per_task = options.pop("seeds_per_task", None)
        axes, fixed = [], {}
        for key, value in options.items():
            if key not in OPTION_SECTION:
                raise ValueError(f"option: {key!r} is unknown; allowed: {', '.join(OPTION_SECTION)}")
            if isinstance(value, (list, tuple)) and OPTIONS[key].kind not in ("times", "schedule"):
                values = list(value)
                if not values:
                    raise ValueError(f"{key}: the grid is empty; allowed: one or more values")
                if len(set(map(repr, values))) != len(values):
                    raise ValueError(f"{key}: {values!r} repeats a value")
                if key in NOT_SWEPT:
                    raise ValueError(f"{key}: cannot be swept (it shapes an axis all cells share: time, seed or "
                                     f"the Hessian density's bin; or it is one per file); give one value")
                if len(values) > 1:
                    axes.append((key, tuple(values)))
                    continue
                value = values[0]
            fixed[key] = value
        seeds_per_task = OPTIONS["seeds_per_task"].check(seeds_per_task)
        sweep = cls(tuple(axes), tuple(sorted(fixed.items())), seeds_per_task)
        check_amp_alone(dict(sweep.axes).get("algorithm", ()))      # one time axis for the whole sweep
        runs_without_unused([opts for _, opts in sweep.points()])   # an option that applies to no cell
        sweep.tasks()          # builds and validates every spec before any compute
        return sweep

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(values) for _, values in self.axes)

    def points(self) -> Iterable[tuple[tuple[int, ...], dict]]:
        """``(index, options)`` for every grid cell, in C order."""
        for index in itertools.product(*(range(len(v)) for _, v in self.axes)):
            opts = dict(self.fixed)
            opts.update({name: values[i] for (name, values), i in zip(self.axes, index)})
            yield index, opts

    def _times(self) -> tuple[float, ...] | None:
        lrs = dict(self.axes).get("lr")
        if lrs is None:
            return None
        fixed = dict(self.fixed)
        recording = Recording(**{k: fixed[k] for k in ("t_max", "points", "grid", "times") if k in fixed})
        return tuple(float(s) * max(lrs) for s in recording.steps(max(lrs)))

    def cell_spec(self, opts: dict, times=None) -> SimulationSpec:
        opts = applicable_options(opts)
        if times is not None:
            opts["times"] = times
            lr = opts["lr"]
            steps = np.rint(np.asarray(times) / lr)
            if np.any(np.abs(steps * lr - np.asarray(times)) > 1e-9 * max(1.0, max(times))):
                raise ValueError(f"lr: {lr!r} does not divide the shared recording times (built with the largest "
                                 f"lr, {max(dict(self.axes)['lr'])!r}); allowed: values of lr that divide it, "
                                 f"e.g. halves or quarters")
        return SimulationSpec.from_flat(**opts)

    def tasks(self) -> dict[str, Task]:
        """Distinct tasks (spec x seed block), by key, in grid order."""
        out = {}
        for _, spec in self.cell_specs():
            for block in self._seed_blocks(spec):
                key = task_key(block)
                out.setdefault(key, Task(key, block))
        if not out:
            raise ValueError("grid: no task")
        return out

    def cell_specs(self) -> Iterable[tuple[tuple[int, ...], SimulationSpec]]:
        times = self._times()
        for index, opts in self.points():
            yield index, self.cell_spec(opts, times)

    def _seed_blocks(self, spec: SimulationSpec) -> list[SimulationSpec]:
        per = self.seeds_per_task or spec.seeds
        return [dataclasses.replace(spec, first_seed=spec.first_seed + start, seeds=min(per, spec.seeds - start))
                for start in range(0, spec.seeds, per)]

    def cell_tasks(self) -> Iterable[tuple[tuple[int, ...], list[str]]]:
        """For each grid cell, the keys of its tasks (seed blocks in order)."""
        for index, spec in self.cell_specs():
            yield index, [task_key(b) for b in self._seed_blocks(spec)]

    def independent_of(self) -> dict[str, list[str]]:
        """Per algorithm, the swept dimensions that none of its cells depends on."""
        default = SIMULATION["algorithm"].default
        cells: dict[str, list[dict]] = {}
        for _, opts in self.points():
            cells.setdefault(opts.get("algorithm", default), []).append(context(opts))
        return {a: [d for d in self.dims if not any(applies(SIMULATION[d], where) for where in wheres)]
                for a, wheres in cells.items()}

    def to_dict(self) -> dict:
        return {"axes": [[name, list(values)] for name, values in self.axes], "fixed": dict(self.fixed),
                "seeds_per_task": self.seeds_per_task}


def task_key(spec: SimulationSpec) -> str:
    return hashlib.sha256(spec.to_json().encode()).hexdigest()[:20]


# --------------------------------------------------------------------------------------------------
# running tasks

def run_task(spec_json: str, threads: int) -> "xarray.Dataset":  # noqa: F821
    """Run one task (in a worker process or on a Dask worker)."""
    from prcy.simulate import run

    return run(SimulationSpec.from_dict(json.loads(spec_json)), threads=threads)


def checksum(ds) -> str:
    """sha256 over the task's data arrays, in a fixed order."""
    h = hashlib.sha256()
    for name in sorted(ds.data_vars):
        values = ds[name].values
        h.update(name.encode())
        h.update(np.ascontiguousarray(values.astype(str) if values.dtype == object else values).tobytes())
    return h.hexdigest()


class PartStore:
    """The folder of part files of one sweep output."""

    def __init__(self, output: str | os.PathLike):
        self.output = Path(output)
        self.folder = self.output.with_name(self.output.name + ".parts")

    def path(self, key: str) -> Path:
        return self.folder / f"task-{key}.nc"

    def manifest(self, sweep: Sweep) -> dict:
        """Create the folder and the manifest, or read the manifest of a previous run."""
        self.folder.mkdir(exist_ok=True)
        path = self.folder / "sweep.json"
        if path.exists():
            try:
                manifest = json.loads(path.read_text())
            except (ValueError, OSError):
                manifest = None
            if manifest and manifest.get("grid") == sweep.to_dict():
                return manifest
        manifest = {"grid": sweep.to_dict(),
                    "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        from prcy.io import atomic_path
        with atomic_path(path) as tmp:
            Path(tmp).write_text(json.dumps(manifest, sort_keys=True))
        return manifest

    def write(self, task: Task, ds) -> None:
        from prcy.io import write_dataset

        if ds.attrs.get("spec") != task.spec.to_json():
            raise ValueError(f"part {task.key}: the result was computed for another spec")
        ds = ds.copy()
        ds.attrs = {"schema": PART_SCHEMA, "task_key": task.key, "spec": ds.attrs["spec"],
                    "checksum": checksum(ds), "prcy_version": ds.attrs.get("prcy_version", "")}
        write_dataset(ds, self.path(task.key), overwrite=True)

    def read(self, task: Task):
        """The task's part if it is present and valid; None if absent; raises ``ValueError`` if damaged."""
        from prcy.io import read_netcdf

        path = self.path(task.key)
        if not path.exists():
            return None
        try:
            ds = read_netcdf(path)
        except ValueError as exc:
            raise ValueError(f"part {path.name}: unreadable ({exc})") from None
        if ds.attrs.get("schema") != PART_SCHEMA or ds.attrs.get("task_key") != task.key:
            raise ValueError(f"part {path.name}: not a part of this task (schema {ds.attrs.get('schema')!r}, "
                             f"key {ds.attrs.get('task_key')!r})")
        if ds.attrs.get("spec") != task.spec.to_json():
            raise ValueError(f"part {path.name}: its spec differs from the task's")
        if "success" in ds:
            ds["success"] = ds["success"].astype(bool)
        if ds.attrs.get("checksum") != checksum(ds):
            raise ValueError(f"part {path.name}: checksum mismatch (damaged)")
        expected = {"seed": task.spec.seeds}
        if any(ds.sizes.get(d) != n for d, n in expected.items()):
            raise ValueError(f"part {path.name}: wrong shape {dict(ds.sizes)}")
        return ds

    def foreign(self, keys: set[str]) -> list[Path]:
        """Files in the folder that are no part of this sweep (reported, never merged)."""
        if not self.folder.exists():
            return []
        return sorted(p for p in self.folder.iterdir()
                      if p.name != "sweep.json" and not (p.name.startswith("task-") and p.name[5:-3] in keys
                                                         and p.suffix == ".nc"))


def plan_workers(n_tasks: int, processes: int | None, threads: int | None) -> tuple[int, int]:
    """``(processes, threads per process)`` (both checked by ``run_sweep``): all cores by default, never
    more threads than cores."""
    cores = os.cpu_count() or 1
    if processes is None:
        processes = max(1, min(cores // (threads or 1), n_tasks))
    if threads is None:
        threads = max(1, cores // processes)
    return processes, threads


def run_sweep(sweep: Sweep, output: str | os.PathLike, *, processes: int | None = None,
              threads: int | None = None, scheduler: str | None = None, dask_workers: int | None = None,
              overwrite: bool = False, progress: Callable[[int, int], None] | None = None,
              log: Callable[[str], None] = print):
    """Run every missing task of ``sweep``, then merge all parts into ``output``; returns the merged
    dataset, opened lazily from the file (close it when done). Rerunning the same call resumes."""
    from prcy.io import check_output

    try:
        output = check_output(output, overwrite=overwrite)
    except FileExistsError as exc:
        raise FileExistsError(f"{exc} (its parts in {Path(output).name}.parts/ are reused)") from None
    if scheduler is not None and dask_workers is not None:
        raise ValueError("scheduler: give either --scheduler or --dask-workers, not both")
    for name, value in (("processes", processes), ("threads", threads), ("dask_workers", dask_workers)):
        EXECUTION[name].check(value)
    tasks = sweep.tasks()
    for reference, hidden in {(t.spec.problem.loss, t.spec.problem.hidden) for t in tasks.values()}:
        if reference not in (None, *LOSSES):
            load_loss(reference, hidden)      # a loss that cannot be loaded fails here, not in every task
    if scheduler is None and dask_workers is None:
        _check_memory(tasks, processes, threads)
    store = PartStore(output)
    manifest = store.manifest(sweep)
    for path in store.foreign(set(tasks)):
        log(f"ignored: {path.name} in {store.folder.name}/ is no part of this sweep (not merged)")
    missing = []
    for task in tasks.values():
        try:
            if store.read(task) is None:
                missing.append(task)
        except ValueError as exc:
            log(f"recomputing: {exc}")
            missing.append(task)
    done = len(tasks) - len(missing)
    if progress:
        progress(done, len(tasks))
    if missing:
        if scheduler is not None or dask_workers is not None:
            _run_dask(missing, store, scheduler, dask_workers, threads or 1, progress, done, len(tasks))
        else:
            _run_local(missing, store, processes, threads, progress, done, len(tasks))
    return merge(sweep, store, output, manifest["created"], tasks)


def _check_memory(tasks: dict[str, Task], processes: int | None, threads: int | None) -> None:
    """Refuse a local sweep whose processes, each running its largest task, would need more memory
    than the machine has (``prcy.resources.check_memory``)."""
    from prcy.resources import check_memory
    from prcy.simulate import MEMORY_OPTIONS, check_hidden, memory_parts

    processes, threads = plan_workers(len(tasks), processes, threads)
    for task in tasks.values():
        check_hidden(task.spec, threads)
    largest = max((memory_parts(t.spec, threads) for t in tasks.values()), key=lambda parts: sum(parts.values()))
    check_memory({f"{what} (x {processes} processes)": processes * b for what, b in largest.items()},
                 MEMORY_OPTIONS + ", fewer processes or smaller --seeds-per-task")


def exit_with_parent(parent: int) -> None:
    """Make the calling worker process end when the process ``parent`` ends, even by SIGKILL (pool
    initializer): on Linux the kernel sends it SIGKILL (``prctl(PR_SET_PDEATHSIG)``), elsewhere a
    daemon thread polls the parent pid every second. A worker whose parent is already gone exits
    at once. Once the workers are gone, multiprocessing's resource tracker sees its pipe close and
    exits too."""
    import sys

    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    else:
        import threading
        import time

        def watch():
            while os.getppid() == parent:
                time.sleep(1.0)
            os._exit(1)
        threading.Thread(target=watch, name="prcy-parent-watch", daemon=True).start()
    if os.getppid() != parent:
        os._exit(1)


def _run_local(missing, store, processes, threads, progress, done, total):
    processes, threads = plan_workers(len(missing), processes, threads)
    if processes == 1:
        for task in missing:
            store.write(task, run_task(task.spec.to_json(), threads))
            done += 1
            if progress:
                progress(done, total)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = multiprocessing.get_context("spawn")   # no fork after OpenMP has started threads
    with ProcessPoolExecutor(max_workers=processes, mp_context=ctx, initializer=exit_with_parent,
                             initargs=(os.getpid(),)) as pool:
        futures = {pool.submit(run_task, t.spec.to_json(), threads): t for t in missing}
        try:
            for future in as_completed(futures):
                store.write(futures[future], future.result())
                done += 1
                if progress:
                    progress(done, total)
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def _run_dask(missing, store, scheduler, dask_workers, threads, progress, done, total):
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ValueError("scheduler: Dask distributed is not installed; pip install 'prcy[dask]'") from None
    cluster = None
    try:
        if dask_workers is not None:
            cluster = LocalCluster(n_workers=dask_workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster)
        else:
            try:
                client = Client(scheduler, timeout="10s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise ValueError(f"scheduler: cannot reach {scheduler!r} ({exc})") from None
        with client:
            futures = {client.submit(run_task, t.spec.to_json(), threads, key=f"prcy-task-{t.key}",
                                     pure=False, retries=2): t for t in missing}
            for future in as_completed(futures):
                store.write(futures[future], future.result())
                done += 1
                if progress:
                    progress(done, total)
    finally:
        if cluster is not None:
            cluster.close()


# --------------------------------------------------------------------------------------------------
# merging

def merge(sweep: Sweep, store: PartStore, output: Path, created: str, tasks: dict[str, Task]):
    """Stream every part into one NetCDF file (one task in memory at a time), atomically; returns the
    file opened lazily."""
    import netCDF4
    import xarray as xr

    from prcy.io import atomic_path, open_dataset, provenance
    from prcy.simulate import (AMP_TIME, COMMITTEE_VARIABLES, COORDS, RECORDED_WITH, SUCCESS_VARIABLES, VARIABLES,
                               bin_bounds)

    first = store.read(next(iter(tasks.values())))
    times, steps = first["time"].values, first["step"].values
    cells = list(sweep.cell_tasks())
    seeds = _seed_axis(sweep)
    own = _own_dims(tasks.values())
    committee = "unit" in own
    # the float (seed, time) variables: the first part's and those of the options some cell records with
    # (RECORDED_WITH), NaN in the cells without them; the others of those options are padded to ``own``
    recorded = {name: layout for dim in own for name, layout in RECORDED_WITH[dim].items()}
    curves = [v for v in VARIABLES if recorded.get(v, (("seed", "time"), "f8")) == (("seed", "time"), "f8")
              and (v in recorded or (v in first and first[v].dims == ("seed", "time")))]
    per_seed = [v for v in dict.fromkeys(("solved_time", "stop_time", *VARIABLES))   # the float variables over seed
                if v in first and first[v].dims == ("seed",) and first[v].dtype.kind == "f"]
    padded = {name: layout for name, layout in recorded.items() if name not in curves}
    with atomic_path(output) as tmp:
        with netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
            for (name, values) in sweep.axes:
                nc.createDimension(name, len(values))
                _coordinate(nc, name, values)
            nc.createDimension("seed", len(seeds))
            nc.createDimension("time", len(times))
            nc.createVariable("seed", "i8", ("seed",))[:] = seeds
            nc.createVariable("time", "f8", ("time",))[:] = times
            nc.createVariable("step", "i8", ("time",))[:] = steps
            amp = next(iter(tasks.values())).spec.algorithm.name == "amp"    # its time is the iteration
            for name in ("seed", "time", "step"):
                nc[name].setncatts({**COORDS[name], **(AMP_TIME if amp and name == "time" else {})})
            nc["time"].setncattr("coordinates", "step")
            dims = sweep.dims
            chunk_cell = tuple(1 for _ in dims)
            for name in curves:
                var = nc.createVariable(name, "f8", dims + ("seed", "time"), zlib=True, complevel=4,
                                        chunksizes=chunk_cell + (len(seeds), len(times)), fill_value=np.nan)
                # cells are written once, in order: a chunk cache of a few chunks is enough (HDF5's
                # default would hold up to 64 MiB per variable)
                var.set_var_chunk_cache(size=4 * len(seeds) * len(times) * 8, nelems=17, preemption=1.0)
            for name in per_seed:
                nc.createVariable(name, "f8", dims + ("seed",), fill_value=np.nan)
            for dim, values in own.items():
                nc.createDimension(dim, len(values))
                if dim in COORDS:                   # eig has no coordinate
                    _coordinate(nc, dim, values)
                    nc[dim].setncatts(COORDS[dim])
            if "bin" in own:                        # one bin axis (hessian_density, _low, _high are not swept)
                nc.createDimension("nv", 2)
                recording = next(iter(tasks.values())).spec.recording
                nc.createVariable("bin_bounds", "f8", ("bin", "nv"))[:] = bin_bounds(recording)
            for name, (var_dims, dtype) in padded.items():
                if dtype == "bool":
                    var = _bool_variable(nc, name, dims + var_dims)
                elif dtype == "f8":
                    var = nc.createVariable(name, "f8", dims + var_dims, zlib=True, complevel=4, fill_value=np.nan)
                else:
                    var = nc.createVariable(name, dtype, dims + var_dims)
                var.setncatts(VARIABLES[name])
            _bool_variable(nc, "success", dims + ("seed",))
            nc.createVariable("stop_reason", str, dims + ("seed",))
            criterion = next(iter(tasks.values())).spec.stopping.success       # not sweepable: one per file
            for name in curves + per_seed + ["success", "stop_reason"]:
                nc[name].setncatts({**VARIABLES, **SUCCESS_VARIABLES[criterion]}[name])
                if committee and name in COMMITTEE_VARIABLES:      # its meaning in the cells with hidden > 1
                    meta = COMMITTEE_VARIABLES[name]
                    nc[name].setncattr("committee_meaning", meta.get("description", meta.get("long_name")))
                if amp and name in ("solved_time", "stop_time"):
                    nc[name].setncattr("units", AMP_TIME["units"])
            cache: dict[str, object] = {}
            for index, keys in cells:
                parts = [cache[k] if k in cache else store.read(tasks[k]) for k in keys]
                cache = dict(zip(keys, parts))            # consecutive cells often share their tasks
                part = xr.concat(parts, dim="seed") if len(parts) > 1 else parts[0]
                if not np.array_equal(part["time"].values, times):
                    raise ValueError(f"part {keys[0]}: its time axis differs from the sweep's")
                for name in curves:
                    if name in part:          # a single unit has no a_teacher, a_distance: NaN there
                        nc[name][index] = part[name].values
                for name in per_seed:
                    nc[name][index] = part[name].values
                for name, (_, dtype) in padded.items():
                    if name in part:          # padded with NaN beyond the cell's own units or eigenpairs
                        values = part[name].values
                        nc[name][index + tuple(slice(0, k) for k in values.shape)] = \
                            values.astype(np.int8) if dtype == "bool" else values
                    elif dtype != "f8":       # a cell without a Hessian: not converged, no products
                        nc[name][index] = 0
                nc["success"][index] = part["success"].values.astype(np.int8)
                nc["stop_reason"][index] = part["stop_reason"].values.astype(object)
            spec0 = json.loads(first.attrs["spec"])
            keys = ("SeedSequence(rng_root_seed, spawn_key=(seed, stream)); stream 0 data, 1 init, 2 dynamics; "
                    "identical for every grid cell (common random numbers)")
            nc.setncatts({
                **provenance("prcy sweep", SCHEMA, json.dumps(spec0, sort_keys=True), spec0["seed"], keys,
                             created=created),
                "grid": json.dumps(sweep.to_dict(), sort_keys=True),
                "dims_swept": " ".join(sweep.dims),
                "independent_of": json.dumps(sweep.independent_of(), sort_keys=True),
                **_shared_attributes(sweep),
            })
    return open_dataset(output, load=False)      # lazily: a large sweep is never loaded whole


def _own_dims(tasks) -> dict[str, np.ndarray]:
    """The dims of their own (``prcy.simulate.own_dims``) that some task records, in ``RECORDED_WITH``'s order,
    each with the values of its widest cell (narrower cells are padded with NaN). Every cell with a
    ``bin`` has the same bins: ``hessian_density``, ``hessian_low`` and ``hessian_high`` are not swept."""
    from prcy.simulate import RECORDED_WITH, own_dims

    widest: dict[str, np.ndarray] = {}
    for task in tasks:
        for dim, values in own_dims(task.spec).items():
            if len(values) > len(widest.get(dim, ())):
                widest[dim] = values
    return {dim: widest[dim] for dim in RECORDED_WITH if dim in widest}


def _coordinate(nc, name: str, values) -> None:
    """The coordinate variable ``name`` over its own dim: text as strings, true/false as ``_bool_variable``."""
    arr = np.asarray(values)
    if arr.dtype.kind in "OU":
        nc.createVariable(name, str, (name,))[:] = arr.astype(object)
    elif arr.dtype.kind == "b":
        _bool_variable(nc, name, (name,))[:] = arr.astype(np.int8)
    else:
        nc.createVariable(name, arr.dtype, (name,))[:] = arr


def _shared_attributes(sweep: Sweep) -> dict:
    """The flat attributes (``flat_attributes``) of the cells that every cell has with the same value: one
    that differs between cells (``m`` when ``alpha`` is swept, ``m0`` when ``init`` is, ...) or that some
    cells lack is left out, and so are the swept options (the coordinates hold them)."""
    from prcy.simulate import flat_attributes

    cells = [flat_attributes(spec) for _, spec in sweep.cell_specs()]
    return {k: v for k, v in cells[0].items()
            if k not in sweep.dims and all(k in c and c[k] == v for c in cells[1:])}


def _bool_variable(nc, name: str, dims: tuple[str, ...]):
    """A true/false variable: NetCDF has no bool, so int8 with ``dtype = "bool"``, which xarray reads back
    as bool (write ``values.astype(np.int8)``)."""
    var = nc.createVariable(name, "i1", dims)
    var.setncattr("dtype", "bool")
    return var


def _seed_axis(sweep: Sweep) -> np.ndarray:
    _, spec = next(iter(sweep.cell_specs()))          # seeds and first_seed are never swept
    return np.arange(spec.first_seed, spec.first_seed + spec.seeds)
