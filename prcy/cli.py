"""The ``prcy`` command line (typer). Each command parses and checks its options, calls the library
function a Python user would call, writes a file and prints a short summary. User errors end with a
one-line message and exit code 2; heavy imports happen inside the commands."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from prcy.specs import CONSTRAINTS, GRIDS, LABELS, PRECISIONS, PROBLEMS

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="prcy: gradient dynamics on rough landscapes (phase retrieval): simulations and theory.")


def _choices(name: str, values: tuple[str, ...]) -> type[Enum]:
    """A typer choice type whose values are the spec's allowed values (one source of truth)."""
    return Enum(name, {v: v for v in values}, type=str)


_Problem = _choices("_Problem", PROBLEMS)
_Constraint = _choices("_Constraint", CONSTRAINTS)
_Precision = _choices("_Precision", PRECISIONS)
_Labels = _choices("_Labels", LABELS)
_Grid = _choices("_Grid", GRIDS)


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=2)


def _parse_schedule(text: str) -> tuple[tuple[float, float], ...]:
    """``"0:1,700:0"`` -> ``((0.0, 1.0), (700.0, 0.0))``: pairs ``t_start:T``."""
    pairs = []
    for item in text.split(","):
        parts = item.split(":")
        try:
            if len(parts) != 2:
                raise ValueError
            pairs.append((float(parts[0]), float(parts[1])))
        except ValueError:
            raise ValueError(f"temperature-schedule: {item!r} in {text!r} is not 't_start:T'; "
                             f"example: '0:1,700:0' (T = 1 until t = 700, then 0)") from None
    return tuple(pairs)


def _check_output(output: Path, overwrite: bool, suffixes: tuple[str, ...] | None = None) -> None:
    """Fail early on an output path that would be refused later: wrong suffix, existing file, no folder."""
    if suffixes is not None and output.suffix.lower() not in suffixes:
        _fail(f"output: {str(output)!r} must end in {' or '.join(suffixes)}")
    if output.exists() and not overwrite:
        _fail(f"output: {str(output)!r} exists; pass --overwrite to replace it")
    if not output.parent.is_dir():
        _fail(f"output: folder {str(output.parent)!r} does not exist")


def _given(options: dict, temperature_schedule: str | None) -> dict:
    """The options that were given (None dropped), a parsed schedule replacing the temperature."""
    if temperature_schedule is not None:
        options = {**options, "temperature_schedule": _parse_schedule(temperature_schedule)}
        options.pop("temperature")
    return {k: v for k, v in options.items() if v is not None}


@app.command()
def simulate(
    output: Path = typer.Option(..., "-o", "--output", help="NetCDF file to write."),
    problem: _Problem = typer.Option(_Problem("phase-retrieval"), help="Teacher-student problem."),
    algorithm: str = typer.Option("gd,sgd,psgd", help="One or more of gd, sgd, psgd, langevin (comma-separated)."),
    alpha: float = typer.Option(3.0, help="Samples per dimension, M = alpha N."),
    n: int = typer.Option(256, "--n", help="Dimension N."),
    m0: float = typer.Option(0.2, help="Initial magnetization (0 = random start)."),
    lr: float = typer.Option(0.01, help="Learning rate eta (physical time per step)."),
    batch_fraction: Optional[float] = typer.Option(None, help="Mini-batch fraction ell (sgd, psgd) [default: 0.5]."),
    persistence: Optional[float] = typer.Option(None, help="Persistence time tau (psgd) [default: 1]."),
    temperature: float = typer.Option(0.0, help="Langevin temperature T."),
    temperature_schedule: Optional[str] = typer.Option(
        None, help="Piecewise-constant temperature 't0:T0,t1:T1,...', e.g. '0:1,700:0'."),
    anneal_at: Optional[float] = typer.Option(None, help="Set the temperature to 0 from this time on."),
    constraint: _Constraint = typer.Option(_Constraint("sphere"), help="Spherical projection or ridge term."),
    ridge: float = typer.Option(0.0, help="Ridge strength lambda (constraint ridge)."),
    rescale: bool = typer.Option(True, help="Divide the stochastic gradient by ell (eq 8)."),
    t_max: float = typer.Option(100.0, help="Horizon (physical time)."),
    points: int = typer.Option(100, help="Recording points (always including 0 and t_max)."),
    grid: _Grid = typer.Option(_Grid("log"), help="Recording grid spacing."),
    seeds: int = typer.Option(32, help="Number of seeds (independent trajectories)."),
    first_seed: int = typer.Option(0, help="Index of the first seed (to extend a run)."),
    seed: int = typer.Option(0, help="Root random seed."),
    tol: float = typer.Option(1e-7, help="Success: training loss per sample below tol."),
    early_stop: bool = typer.Option(False, help="Stop a seed once it succeeds (state carried forward)."),
    check_interval: float = typer.Option(1.0, help="Time between success checks for stochastic algorithms."),
    n_test: int = typer.Option(0, help="Held-out samples for an empirical test error."),
    precision: _Precision = typer.Option(_Precision("float64"), help="Storage precision of the inputs X."),
    share_data: bool = typer.Option(False, help="One teacher and dataset for all seeds."),
    labels: _Labels = typer.Option(_Labels("teacher"), help="random: training labels reshuffled among samples."),
    loss: Optional[str] = typer.Option(None, help="Loss: a built-in name or 'module:function' returning a "
                                                  "prcy.Loss capsule [default: the problem's]."),
    threads: Optional[int] = typer.Option(None, help="Threads (default: all the OpenMP default allows)."),
    overwrite: bool = typer.Option(False, help="Replace an existing output file."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
):
    """Simulate GD / SGD / persistent SGD / Langevin and write a NetCDF dataset."""
    from prcy.io import format_summary_row, write_dataset
    from prcy.simulate import simulate as run_simulation
    from prcy.analysis import success_summary

    _check_output(output, overwrite)
    algos = [a.strip() for a in algorithm.split(",") if a.strip()]
    options = dict(problem=problem.value, alpha=alpha, n=n, m0=m0, lr=lr, batch_fraction=batch_fraction,
                   persistence=persistence, temperature=temperature, anneal_at=anneal_at,
                   constraint=constraint.value,
                   ridge=ridge, rescale=rescale, t_max=t_max, points=points, grid=grid.value, seeds=seeds,
                   first_seed=first_seed, seed=seed, tol=tol, early_stop=early_stop,
                   check_interval=check_interval, n_test=n_test, precision=precision.value,
                   share_data=share_data, labels=labels.value, loss=loss)
    try:
        options = _given(options, temperature_schedule)
        ds = run_simulation(algorithm=algos if len(algos) > 1 else (algos[0] if algos else ""),
                            threads=threads, progress=progress, **options)
        write_dataset(ds, output, overwrite=overwrite)
    except (ValueError, FileExistsError, FileNotFoundError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        typer.secho("interrupted: nothing was written", err=True)
        raise typer.Exit(code=130)
    for row in success_summary(ds):
        typer.echo(format_summary_row(row))
    typer.echo(f"wrote {output}")


@app.command()
def dmft(
    output: Path = typer.Option(..., "-o", "--output", help="NetCDF file to write."),
    problem: _Problem = typer.Option(_Problem("phase-retrieval"), help="Teacher-student problem."),
    algorithm: str = typer.Option("gd", help="One of gd, sgd, psgd, langevin."),
    loss: Optional[str] = typer.Option(None, help="Loss: a built-in name or 'module:function' returning a "
                                                  "prcy.Loss capsule [default: the problem's]."),
    alpha: float = typer.Option(3.0, help="Samples per dimension, M = alpha N."),
    m0: float = typer.Option(0.2, help="Initial magnetization."),
    lr: float = typer.Option(0.01, help="Learning rate (the grid step of SGD's discretization)."),
    batch_fraction: Optional[float] = typer.Option(None, help="Mini-batch fraction ell (sgd, psgd) [default: 0.5]."),
    persistence: Optional[float] = typer.Option(None, help="Persistence time tau (psgd) [default: 1]."),
    temperature: float = typer.Option(0.0, help="Langevin temperature T."),
    temperature_schedule: Optional[str] = typer.Option(None, help="Piecewise-constant temperature 't0:T0,t1:T1,...'."),
    anneal_at: Optional[float] = typer.Option(None, help="Set the temperature to 0 from this time on."),
    constraint: _Constraint = typer.Option(_Constraint("sphere"), help="Spherical constraint or ridge term."),
    ridge: float = typer.Option(0.0, help="Ridge strength lambda (constraint ridge)."),
    rescale: bool = typer.Option(True, help="Divide the stochastic gradient by ell (eq 8)."),
    dt: Optional[float] = typer.Option(None, help="Grid step [default: lr]."),
    t_max: float = typer.Option(10.0, help="Horizon (physical time)."),
    samples: int = typer.Option(10000, help="Samples of the effective process."),
    damping: float = typer.Option(0.5, help="Weight of the previous M_R in the update, in [0, 1)."),
    max_iter: int = typer.Option(100, help="Maximum number of iterations."),
    tol: float = typer.Option(1e-8, help="Convergence: residual below tol."),
    nu_form: str = typer.Option("A.29", help="Lagrange multiplier on the sphere: A.29 (kernels) or A.19 (samples)."),
    seed: int = typer.Option(0, help="Root random seed."),
    response_kick: float = typer.Option(0.0, help="0: linear response (A.22); > 0: size of the kicks of h whose "
                                                  "finite-difference response replaces it, for losses whose "
                                                  "linear response is heavy-tailed (docs/dmft.md)."),
    window: Optional[float] = typer.Option(None, help="Horizon windows: solve t <= window, then t <= 2 window, ... "
                                                      "with the earlier M_R frozen (same fixed point; converges "
                                                      "where the whole horizon at once stalls, docs/dmft.md) "
                                                      "[default: the whole horizon at once]."),
    replicas: Optional[int] = typer.Option(None, help="Independent solves (replica dim; mean and standard error "
                                                      "with prcy.dmft.replica_summary) [default: one solve]."),
    first_replica: int = typer.Option(0, help="Index of the first replica (to extend an ensemble)."),
    checkpoint: Optional[Path] = typer.Option(None, help="Checkpoint file (written every iteration; resumed from; "
                                                         "with --replicas one file PATH.replica-<i> per replica)."),
    initial: Optional[Path] = typer.Option(None, help="Warm start: a DMFT file on the same grid step whose M_R "
                                                      "(replica mean) starts the iteration, e.g. a shorter "
                                                      "horizon's solve [default: A.1's M_R = 0]."),
    threads: Optional[int] = typer.Option(None, help="Threads (default: all the OpenMP default allows)."),
    overwrite: bool = typer.Option(False, help="Replace an existing output file."),
    progress: bool = typer.Option(True, help="Print the residual after every iteration."),
):
    """Solve the DMFT of GD / SGD / persistent SGD / Langevin and write a NetCDF dataset."""
    from prcy.dmft import solve
    from prcy.io import write_dataset

    _check_output(output, overwrite)
    options = dict(problem=problem.value, algorithm=algorithm, loss=loss, alpha=alpha, m0=m0, lr=lr,
                   batch_fraction=batch_fraction, persistence=persistence, temperature=temperature,
                   anneal_at=anneal_at, constraint=constraint.value, ridge=ridge, rescale=rescale, dt=dt,
                   t_max=t_max, samples=samples, damping=damping, max_iter=max_iter, tol=tol,
                   nu_form=nu_form, seed=seed, response_kick=response_kick, window=window, replicas=replicas,
                   first_replica=first_replica)
    report = _dmft_report if progress else None
    try:
        options = _given(options, temperature_schedule)
        ds = solve(threads=threads, checkpoint=checkpoint, progress=report, initial=initial, **options)
        write_dataset(ds, output, overwrite=overwrite)
    except (ValueError, FileExistsError, FileNotFoundError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        typer.secho("interrupted: nothing was written" + (f" (checkpoint {checkpoint} kept)" if checkpoint else ""),
                    err=True)
        raise typer.Exit(code=130)
    from prcy.io import describe_dmft
    typer.echo(describe_dmft(ds))
    windows = "--window (e.g. 1 or 2; docs/dmft.md, \"Horizon windows\")"
    hints = {"diverged": f"diverged: try a smaller --dt, or {windows}",
             "max_iter": "not converged: give more --max-iter (with --checkpoint the solve resumes)"
                         + ("" if window is not None else f", or solve window by window with {windows}")}
    if ds.attrs["status"] in hints:
        typer.echo(hints[ds.attrs["status"]])
    typer.echo(f"wrote {output}")


def _dmft_report(iteration: int, residual: float, replica: int | None = None) -> None:
    where = "" if replica is None else f"replica {replica} "
    typer.echo(f"{where}iteration {iteration}: residual {residual:.3e}", err=True)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def sweep(
    ctx: typer.Context,
    output: Path = typer.Option(..., "-o", "--output", help="Merged NetCDF file (parts go to OUTPUT.parts/)."),
    overwrite: bool = typer.Option(False, help="Replace an existing merged file (finished parts are reused)."),
    processes: Optional[int] = typer.Option(None, help="Worker processes (default: one per core)."),
    threads: Optional[int] = typer.Option(None, help="Threads per task (default: cores / processes)."),
    dask_workers: Optional[int] = typer.Option(None, help="Run on a local Dask cluster with this many workers."),
    scheduler: Optional[str] = typer.Option(None, help="Run on the Dask scheduler at this address (tcp://HOST:PORT)."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
):
    """Run a parameter grid into one labelled NetCDF dataset; rerunning the same command resumes.

    Usage: prcy sweep [GRID.toml] [--OPTION VALUES ...] -o sweep.nc. The TOML file has sections problem,
    dynamics, init, recording, stopping, run (see examples/). Any option of `prcy simulate` can be given after the grid, as one value, a list (--alpha 2,2.5,3) or an
    inclusive range (--alpha 1.5:4:0.25); dotted names address the grid file's sections
    (--dynamics.lr 0.02). --seeds-per-task splits the seeds of a grid point into several tasks.
    """
    from prcy.io import format_summary_row
    from prcy.analysis import success_summary
    from prcy.sweep import Sweep, load_grid_file, override_key, parse_value, run_sweep

    args = list(ctx.args)
    try:
        grid = Path(args.pop(0)) if args and not args[0].startswith("-") else None
        options = load_grid_file(grid) if grid is not None else {}
        options.update(_parse_extra(args, override_key, parse_value))
        plan = Sweep.from_options(options)
        reporter, bar = _task_bar(progress)
        try:
            ds = run_sweep(plan, output, processes=processes, threads=threads, scheduler=scheduler,
                           dask_workers=dask_workers, overwrite=overwrite, progress=reporter,
                           log=lambda text: typer.echo(text, err=True))
        finally:
            if bar is not None:
                bar.stop()
    except (ValueError, FileExistsError, FileNotFoundError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        typer.secho("interrupted: finished tasks are kept; rerun the same command to resume", err=True)
        raise typer.Exit(code=130)
    with ds:
        for row in success_summary(ds):
            typer.echo(format_summary_row(row))
    typer.echo(f"wrote {output}")


def _parse_extra(args: list[str], key_of, value_of) -> dict:
    """``--name value`` pairs (``--flag`` alone is true, ``--no-flag`` false) from typer's extra args."""
    out, i = {}, 0
    while i < len(args):
        token = args[i]
        if not token.startswith("--"):
            raise ValueError(f"option: unexpected argument {token!r}; options look like --alpha 1:4:0.5")
        name, eq, inline = token.partition("=")
        has_value = eq or (i + 1 < len(args) and not args[i + 1].startswith("--"))
        if eq:
            value = value_of(inline)
        elif has_value:
            value = value_of(args[i + 1])
            i += 1
        elif name.startswith("--no-"):
            name, value = "--" + name[5:], False
        else:
            value = True
        out[key_of(name)] = value
        i += 1
    return out


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
    """Describe a prcy NetCDF file: what was run and the success summary."""
    from prcy.io import describe, open_dataset

    try:
        ds = open_dataset(path, load=False)
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    with ds:
        typer.echo(describe(ds))


# --------------------------------------------------------------------------------------------------
# analyze (a sub-app: `prcy analyze thresholds`, later `prcy analyze theory`) and plot

analyze_app = typer.Typer(no_args_is_help=True, help="Analyses of simulation and sweep files.")
app.add_typer(analyze_app, name="analyze")


class _Kind(str, Enum):
    curves = "curves"
    success = "success"
    seeds = "seeds"
    thresholds = "thresholds"


class _Var(str, Enum):
    magnetization = "magnetization"
    train_loss = "train_loss"
    test_error = "test_error"


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
    var: _Var = typer.Option(_Var.magnetization, help="Variable over time (kinds curves and seeds)."),
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
        fig = make_plot(datasets, kind=kind.value, var=var.value, selection=selection, along=along,
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
