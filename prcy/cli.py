"""The ``prcy`` command line (typer). Each command parses and checks its options, calls the library
function a Python user would call, writes a file and prints a short summary. User errors end with a
one-line message and exit code 2; heavy imports happen inside the commands."""
from __future__ import annotations

import inspect
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from prcy.options import (DMFT, EXECUTION, NOT_IN_DMFT, SIMULATION, Option, defaults, format_value,
                          not_in_dmft_error)

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="prcy: gradient dynamics on rough landscapes (phase retrieval): simulations and theory.")


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=2)


def _summary_lines(ds) -> list[str]:
    """The success summary of a simulation or sweep file, one line per grid point."""
    from prcy.analysis import format_summary_row, success_summary

    return [format_summary_row(row) for row in success_summary(ds)]


def _check_output(output: Path, overwrite: bool, suffixes: tuple[str, ...] | None = None) -> None:
    """Fail early on an output path that would be refused later (``prcy.io.check_output``)."""
    from prcy.io import check_output

    try:
        check_output(output, overwrite=overwrite, suffixes=suffixes)
    except (ValueError, FileExistsError, FileNotFoundError) as exc:
        _fail(str(exc))


# --------------------------------------------------------------------------------------------------
# the options of simulate and dmft, generated from the option table (prcy.options)

_METAVARS = {"float": "FLOAT", "int": "INTEGER", "loss": "NAME|MODULE:ATTR", "schedule": "t0:T0,t1:T1,...",
             "times": "T,T,..."}


def _parameter(row: Option, default=..., hidden: bool = False) -> inspect.Parameter:
    """A keyword parameter whose default is the ``typer.Option`` of ``row``; its value arrives as text
    (or a bool) and is ``None`` when the option was not given. ``default``: the command's default,
    when it is not the library's."""
    shown = "" if row.default is None else f" [default: {format_value(row.default)}]"
    if default is not ...:
        shown = (f" [default: {format_value(default)}, a laptop-size run; prcy.simulate, prcy sweep and grid "
                 f"files: {format_value(row.default)}]")
    if row.kind == "bool":
        decls, annotation = (f"{row.flag}/--no-{row.flag[2:]}",), Optional[bool]
    else:
        decls, annotation = (row.flag,), Optional[str]
    metavar = "[" + "|".join(row.choices) + "]" if row.kind == "choice" else _METAVARS.get(row.kind)
    info = typer.Option(None, *decls, help=row.describe() + shown, show_default=False, metavar=metavar,
                        hidden=hidden)
    return inspect.Parameter(row.name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=annotation)


def _parameters(*parameters: inspect.Parameter):
    """Decorator: give the command function ``f(**values)`` these typer parameters."""
    def attach(func):
        func.__signature__ = inspect.Signature(list(parameters))
        func.__annotations__ = {p.name: p.annotation for p in parameters}
        return func
    return attach


def _given(values: dict, table: dict[str, Option]) -> dict:
    """The options of ``table`` that were given on the command line, parsed from their text."""
    return {name: table[name].parse(value) for name, value in values.items() if name in table and value is not None}


_OUTPUT = inspect.Parameter("output", inspect.Parameter.KEYWORD_ONLY, annotation=Path,
                            default=typer.Option(..., "-o", "--output", help="NetCDF file to write."))
_OVERWRITE = inspect.Parameter("overwrite", inspect.Parameter.KEYWORD_ONLY, annotation=bool,
                               default=typer.Option(False, help="Replace an existing output file."))


def _progress(text: str) -> inspect.Parameter:
    return inspect.Parameter("progress", inspect.Parameter.KEYWORD_ONLY, annotation=bool,
                             default=typer.Option(True, help=text))


_SIMULATE_DEFAULTS = {name: row.cli_default for name, row in SIMULATION.items() if row.cli_default is not ...}


@app.command()
@_parameters(_OUTPUT, *(_parameter(row, _SIMULATE_DEFAULTS.get(row.name, ...)) for row in SIMULATION.values()),
             _parameter(EXECUTION["threads"]), _OVERWRITE, _progress("Show a progress bar."))
def simulate(**values):
    """Simulate GD / SGD / persistent SGD / Langevin and write a NetCDF dataset.

    Every option is a keyword of prcy.simulate with the same name ('_' for '-') and default, except
    where the help says prcy simulate's default differs (a laptop-size run). An option given where it
    does not apply (e.g. --persistence with --algorithm gd) is refused; with several algorithms it is
    passed to those it applies to.
    """
    from prcy.io import write_dataset
    from prcy.simulate import simulate as run_simulation

    output, overwrite = values["output"], values["overwrite"]
    _check_output(output, overwrite)
    try:
        options = {**_SIMULATE_DEFAULTS, **_given(values, SIMULATION)}
        if isinstance(options["algorithm"], str):
            options["algorithm"] = [a.strip() for a in options["algorithm"].split(",") if a.strip()]
        if len(options["algorithm"]) == 1:
            options["algorithm"] = options["algorithm"][0]
        threads = EXECUTION["threads"].check(_given(values, EXECUTION).get("threads"))
        ds = run_simulation(threads=threads, progress=values["progress"], **options)
        write_dataset(ds, output, overwrite=overwrite)
    except (ValueError, FileExistsError, FileNotFoundError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        typer.secho("interrupted: nothing was written", err=True)
        raise typer.Exit(code=130)
    for line in _summary_lines(ds):
        typer.echo(line)
    typer.echo(f"wrote {output}")


@app.command()
@_parameters(
    _OUTPUT, *(_parameter(row) for row in DMFT.values()),
    *(_parameter(SIMULATION[name], hidden=True) for name in NOT_IN_DMFT),
    inspect.Parameter("checkpoint", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[Path], default=typer.Option(
        None, help="Checkpoint file (written every iteration; resumed from; with --replicas one file "
                   "PATH.replica-<i> per replica).")),
    inspect.Parameter("initial", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[Path], default=typer.Option(
        None, help="Warm start: a DMFT file on the same grid step whose M_R (replica mean) starts the "
                   "iteration, e.g. a shorter horizon's solve [default: A.1's M_R = 0].")),
    _parameter(EXECUTION["threads"]), _OVERWRITE,
    _progress("Show a progress bar over the iterations (residual, estimated time left)."))
def dmft(**values):
    """Solve the DMFT of GD / SGD / persistent SGD / Langevin and write a NetCDF dataset.

    Every option is a keyword of prcy.dmft.solve with the same name and default. The simulation's
    options that the DMFT does not solve for (--optimizer, --init, --success, --teacher, ...) are
    refused. A solve predicted to take more than a minute is announced with its predicted time per
    iteration and how to make it cheaper (prcy.dmft.forecast). Exit code 0 when the solve (every
    replica) converged; 1 when it diverged or reached --max-iter (the file is written all the same);
    2 for a refused option; 130 after Ctrl-C (with --checkpoint, a rerun resumes).
    """
    from prcy.dmft import EnsembleInterrupted, describe, solve
    from prcy.io import write_dataset

    output, overwrite, checkpoint = values["output"], values["overwrite"], values["checkpoint"]
    _check_output(output, overwrite)
    bar = None
    try:
        for name in NOT_IN_DMFT:
            if values[name] is not None:
                raise not_in_dmft_error(name, values[name])
        options = _given(values, DMFT)
        threads = EXECUTION["threads"].check(_given(values, EXECUTION).get("threads"))
        bar = _IterationBar({**defaults(DMFT), **options}) if values["progress"] else None
        try:
            ds = solve(threads=threads, checkpoint=checkpoint, progress=bar, initial=values["initial"],
                       announce=lambda line: typer.echo(line, err=True), **options)
        finally:
            if bar is not None:
                bar.stop()
        write_dataset(ds, output, overwrite=overwrite)
    except (ValueError, FileExistsError, FileNotFoundError) as exc:
        _fail(str(exc))
    except EnsembleInterrupted as stop:
        write_dataset(stop.dataset, output, overwrite=overwrite)
        first, done = stop.dataset.attrs["first_replica"], stop.dataset.attrs["replicas"]
        typer.secho(f"interrupted: wrote the {done} finished replicas ({first} to {first + done - 1}) to {output}; "
                    f"--first-replica {first + done} solves the others", err=True)
        raise typer.Exit(code=130)
    except KeyboardInterrupt:
        typer.secho("interrupted: nothing was written" + (f" (checkpoint {checkpoint} kept)" if checkpoint else ""),
                    err=True)
        raise typer.Exit(code=130)
    typer.echo(describe(ds))
    windows = "--window (e.g. 1 or 2; docs/dmft.md, \"Horizon windows\")"
    hints = {"diverged": f"diverged: try a smaller --dt, or {windows}",
             "max_iter": "not converged: give more --max-iter (with --checkpoint the solve resumes)"
                         + ("" if options.get("window") is not None else f", or solve window by window with {windows}")}
    if ds.attrs["status"] in hints:
        typer.echo(hints[ds.attrs["status"]])
    typer.echo(f"wrote {output}")
    if ds.attrs["status"] != "converged":
        raise typer.Exit(code=1)


class _IterationBar:
    """A progress bar over the iterations of a DMFT solve (one replica after the other): iterations done
    of --max-iter, the residual, and the time left at the mean time per iteration so far for the
    iterations prcy.dmft.iterations_left expects."""

    def __init__(self, options: dict):
        import time

        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._clock, self._tol, self._max_iter = time.perf_counter, options["tol"], options["max_iter"]
        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("{task.fields[state]}"), transient=True)
        self._task = self._bar.add_task("iterations", total=self._max_iter, state="")
        self._replica, self._first = None, None     # the replica shown, the iterations it had before this run
        self._bar.start()

    def __call__(self, iteration: int, residual: float, replica: int | None = None) -> None:
        from prcy.dmft import iterations_left

        if self._first is None or replica != self._replica:     # (a replica resumed from a checkpoint: > 0)
            self._replica, self._residuals, self._start, self._first = replica, [], self._clock(), iteration - 1
        self._residuals.append(residual)
        per = (self._clock() - self._start) / (iteration - self._first)
        left = iterations_left(self._residuals, self._tol, self._max_iter - self._first) * per
        where = "iterations" if replica is None else f"replica {replica}"
        self._bar.update(self._task, completed=iteration, description=where,
                         state=f"residual {residual:.2e}, {per:.3g} s/iteration, ~{_duration(left)} left")

    def stop(self) -> None:
        self._bar.stop()


def _duration(seconds: float) -> str:
    """``75`` -> ``1 min 15 s``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@_parameters(
    inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
    inspect.Parameter("output", inspect.Parameter.KEYWORD_ONLY, annotation=Path, default=typer.Option(
        ..., "-o", "--output", help="Merged NetCDF file (parts go to OUTPUT.parts/).")),
    inspect.Parameter("overwrite", inspect.Parameter.KEYWORD_ONLY, annotation=bool, default=typer.Option(
        False, help="Replace an existing merged file (finished parts are reused).")),
    *(_parameter(EXECUTION[name]) for name in ("processes", "threads", "dask_workers")),
    inspect.Parameter("scheduler", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[str], default=typer.Option(
        None, help="Run on the Dask scheduler at this address (tcp://HOST:PORT).")),
    _progress("Show a progress bar."))
def sweep(ctx: typer.Context, **values):
    """Run a parameter grid into one labelled NetCDF dataset; rerunning the same command resumes.

    Usage: prcy sweep [GRID.toml] [--OPTION VALUES ...] -o sweep.nc. The TOML file has sections problem,
    dynamics, init, recording, stopping, run (see examples/). Any option of `prcy simulate` can be given
    after the grid, as one value, a list (--alpha 2,2.5,3) or an inclusive range (--alpha 1.5:4:0.25);
    dotted names address the grid file's sections (--dynamics.lr 0.02). --seeds-per-task splits the
    seeds of a grid point into several tasks. Defaults are the library's (prcy.simulate).
    """
    from prcy.sweep import Sweep, load_grid_file, parse_overrides, run_sweep

    args = list(ctx.args)
    output = values["output"]
    try:
        execution = {name: EXECUTION[name].check(value)
                     for name, value in _given(values, EXECUTION).items()}
        grid = Path(args.pop(0)) if args and not args[0].startswith("-") else None
        options = load_grid_file(grid) if grid is not None else {}
        options.update(parse_overrides(args))
        plan = Sweep.from_options(options)
        reporter, bar = _task_bar(values["progress"])
        try:
            ds = run_sweep(plan, output, scheduler=values["scheduler"], overwrite=values["overwrite"],
                           progress=reporter, log=lambda text: typer.echo(text, err=True), **execution)
        finally:
            if bar is not None:
                bar.stop()
    except (ValueError, FileExistsError, FileNotFoundError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        typer.secho("interrupted: finished tasks are kept; rerun the same command to resume", err=True)
        raise typer.Exit(code=130)
    with ds:
        for line in _summary_lines(ds):
            typer.echo(line)
    typer.echo(f"wrote {output}")


def _task_bar(show: bool):
    if not show:
        return None, None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("tasks"), BarColumn(), MofNCompleteColumn(), TextColumn("eta"),
                   TimeRemainingColumn(), transient=True)
    task = bar.add_task("sweep", total=None)
    bar.start()

    def report(done, total):
        bar.update(task, completed=done, total=total)
    return report, bar


@app.command()
def info(path: Path = typer.Argument(..., help="A prcy NetCDF file.")):
    """Describe a prcy NetCDF file: what was run and the success summary (or how the DMFT solve ended)."""
    from prcy import dmft
    from prcy.io import describe, open_dataset

    try:
        ds = open_dataset(path, load=False)
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    with ds:
        try:
            lines = [dmft.describe(ds)] if ds.attrs["schema"] == dmft.SCHEMA else _summary_lines(ds)
        except ValueError as exc:
            _fail(f"file: {str(path)!r}: {exc}")
        typer.echo(describe(ds))
        for line in lines:
            typer.echo(line)


# --------------------------------------------------------------------------------------------------
# analyze (a sub-app: `prcy analyze thresholds`, later `prcy analyze theory`) and plot

analyze_app = typer.Typer(no_args_is_help=True, help="Analyses of simulation and sweep files.")
app.add_typer(analyze_app, name="analyze")


class _Kind(str, Enum):
    curves = "curves"
    success = "success"
    seeds = "seeds"
    thresholds = "thresholds"


@analyze_app.command("thresholds")
def analyze_thresholds(
    path: Path = typer.Argument(..., help="A sweep NetCDF file with a dimension to cross (e.g. alpha)."),
    along: str = typer.Option("alpha", help="Swept parameter along which success crosses the level."),
    level: float = typer.Option(0.5, help="Success probability that defines the threshold."),
    bootstrap: int = typer.Option(1000, help="Bootstrap replicas over seeds (0 = no interval)."),
    seed: int = typer.Option(0, help="Random seed of the bootstrap."),
    increasing: bool = typer.Option(True, "--increasing/--decreasing",
                                    help="Success rises (alpha) or falls (e.g. n, lr) along the parameter."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the table as CSV."),
    overwrite: bool = typer.Option(False, help="Replace an existing CSV file."),
):
    """Threshold (alpha_c) per algorithm and n, with a bootstrap interval over seeds.

    The threshold is where the monotone (isotonic) fit of the success
    fractions crosses --level, linearly interpolated between the grid points
    around the crossing. No crossing is reported as such, never as a number.
    """
    from prcy.io import open_dataset
    from prcy.analysis.thresholds import format_threshold_row, threshold, threshold_table

    if output is not None:
        _check_output(output, overwrite, (".csv",))
    try:
        ds = open_dataset(path)
        table = threshold_table(threshold(ds, along=along, level=level, n_boot=bootstrap, seed=seed,
                                          increasing=increasing))
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    for row in table.to_dict("records"):
        typer.echo(format_threshold_row(row))
    if output is not None:
        table.to_csv(output, index=False)
        typer.echo(f"wrote {output}")


@app.command()
def plot(
    files: list[Path] = typer.Argument(..., help="Simulation/sweep files and theory files (no seed dim)."),
    output: Path = typer.Option(..., "-o", "--output", help="Figure file: .png or .pdf."),
    kind: _Kind = typer.Option(_Kind.curves, help="curves: median + quantile band; seeds: individual seeds; "
                                                  "success: success probability vs --along; thresholds: "
                                                  "success with the theory thresholds as vertical lines."),
    var: str = typer.Option("magnetization", help="Variable over time (kinds curves and seeds): any of the file's "
                            "variables with a time dimension, e.g. test_error, train_loss, quadratic_error, "
                            "unit_magnetization, hessian_eigenvalues."),
    select: Optional[str] = typer.Option(None, help="One value per dimension, e.g. algorithm=psgd,alpha=3."),
    along: str = typer.Option("alpha", help="x axis of kind success."),
    max_seeds: int = typer.Option(50, help="Seeds drawn per curve group (kind seeds)."),
    overwrite: bool = typer.Option(False, help="Replace an existing figure."),
):
    """Plot curves vs time, individual seeds, or success vs alpha (PNG or PDF).

    `prcy plot thresholds SWEEP.nc -o fig.png` is `--kind thresholds`.

    Kind curves: median and 10-90% band over seeds of |m|, train_loss or
    test_error vs t + lr on a log axis. Files without a seed dimension
    (e.g. DMFT) are drawn as dashed theory curves on the same axes.
    """
    if files and str(files[0]) in _Kind.__members__ and not files[0].exists():
        kind, files = _Kind(str(files[0])), files[1:]
    if not files:
        _fail("files: give at least one simulation or sweep file")
    _check_output(output, overwrite, (".png", ".pdf"))
    from prcy.analysis.plots import open_curves, parse_selection, plot as make_plot, save_figure

    try:
        selection = parse_selection(select)
        datasets = [open_curves(f) for f in files]
        fig = make_plot(datasets, kind=kind.value, var=var, selection=selection, along=along,
                        max_seeds=max_seeds, names=[f.stem for f in files])
        try:
            save_figure(fig, output, overwrite=overwrite)
        finally:
            import matplotlib.pyplot as plt
            plt.close(fig)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        _fail(str(exc))
    typer.echo(f"wrote {output}")


@analyze_app.command("theory")
def analyze_theory(
    bbp: bool = typer.Option(True, help="Include alpha_BBP (solves the 1RSB threshold states, a few seconds)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the table as CSV."),
    overwrite: bool = typer.Option(False, help="Replace an existing CSV file."),
):
    """The theory thresholds of phase retrieval (weak recovery, information-theoretic, AMP, BBP) and how
    each was obtained."""
    from prcy.analysis.landscape import theory_thresholds

    if output is not None:
        _check_output(output, overwrite, (".csv",))
    rows = theory_thresholds(include_bbp=bbp)
    for r in rows:
        typer.echo(f"{r['symbol']:>10} = {r['alpha']:8.4f}  {r['name']}: {r['how']}")
    if output is not None:
        import csv
        with open(output, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["symbol", "alpha", "name", "how"])
            writer.writeheader()
            writer.writerows({k: r[k] for k in ("symbol", "alpha", "name", "how")} for r in rows)
        typer.echo(f"wrote {output}")


def main():
    app()
