"""The ``prcy`` command line (typer). Each command parses and checks its options, calls the library
function a Python user would call, writes a file and prints a short summary. User errors end with a
one-line message and exit code 2; heavy imports happen inside the commands."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="prcy: gradient dynamics on rough landscapes (phase retrieval): simulations and theory.")


class _Problem(str, Enum):
    phase_retrieval = "phase-retrieval"
    linear_regression = "linear-regression"


class _Constraint(str, Enum):
    sphere = "sphere"
    ridge = "ridge"


class _Precision(str, Enum):
    float64 = "float64"
    float32 = "float32"


class _Grid(str, Enum):
    log = "log"
    linear = "linear"


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


@app.command()
def simulate(
    output: Path = typer.Option(..., "-o", "--output", help="NetCDF file to write."),
    problem: _Problem = typer.Option(_Problem.phase_retrieval, help="Teacher-student problem."),
    algorithm: str = typer.Option("gd,sgd,psgd", help="One or more of gd, sgd, psgd, langevin (comma-separated)."),
    alpha: float = typer.Option(3.0, help="Samples per dimension, M = alpha N."),
    n: int = typer.Option(256, "--n", help="Dimension N."),
    m0: float = typer.Option(0.2, help="Initial magnetization (0 = random start)."),
    lr: float = typer.Option(0.01, help="Learning rate eta (physical time per step)."),
    batch_fraction: float = typer.Option(0.5, help="Mini-batch fraction ell (sgd, psgd)."),
    persistence: float = typer.Option(1.0, help="Persistence time tau (psgd)."),
    temperature: float = typer.Option(0.0, help="Langevin temperature T."),
    temperature_schedule: Optional[str] = typer.Option(
        None, help="Piecewise-constant temperature 't0:T0,t1:T1,...', e.g. '0:1,700:0'."),
    constraint: _Constraint = typer.Option(_Constraint.sphere, help="Spherical projection or ridge term."),
    ridge: float = typer.Option(0.0, help="Ridge strength lambda (constraint ridge)."),
    rescale: bool = typer.Option(True, help="Divide the stochastic gradient by ell (eq 8)."),
    t_max: float = typer.Option(100.0, help="Horizon (physical time)."),
    points: int = typer.Option(100, help="Recording points (always including 0 and t_max)."),
    grid: _Grid = typer.Option(_Grid.log, help="Recording grid spacing."),
    seeds: int = typer.Option(32, help="Number of seeds (independent trajectories)."),
    first_seed: int = typer.Option(0, help="Index of the first seed (to extend a run)."),
    seed: int = typer.Option(0, help="Root random seed."),
    tol: float = typer.Option(1e-7, help="Success: training loss per sample below tol."),
    early_stop: bool = typer.Option(False, help="Stop a seed once it succeeds (state carried forward)."),
    check_interval: float = typer.Option(1.0, help="Time between success checks for stochastic algorithms."),
    n_test: int = typer.Option(0, help="Held-out samples for an empirical test error."),
    precision: _Precision = typer.Option(_Precision.float64, help="Storage precision of the inputs X."),
    share_data: bool = typer.Option(False, help="One teacher and dataset for all seeds."),
    threads: Optional[int] = typer.Option(None, help="Threads (default: all the OpenMP default allows)."),
    overwrite: bool = typer.Option(False, help="Replace an existing output file."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
):
    """Simulate GD / SGD / persistent SGD / Langevin and write a NetCDF dataset."""
    from prcy.io import format_summary_row, write_dataset
    from prcy.simulate import simulate as run_simulation
    from prcy.analysis import success_summary

    if output.exists() and not overwrite:
        _fail(f"output: {str(output)!r} exists; pass --overwrite to replace it")
    if not output.parent.is_dir():
        _fail(f"output: folder {str(output.parent)!r} does not exist")
    algos = [a.strip() for a in algorithm.split(",") if a.strip()]
    options = dict(problem=problem.value, alpha=alpha, n=n, m0=m0, lr=lr, batch_fraction=batch_fraction,
                   persistence=persistence, temperature=temperature, constraint=constraint.value,
                   ridge=ridge, rescale=rescale, t_max=t_max, points=points, grid=grid.value, seeds=seeds,
                   first_seed=first_seed, seed=seed, tol=tol, early_stop=early_stop,
                   check_interval=check_interval, n_test=n_test, precision=precision.value,
                   share_data=share_data)
    try:
        if temperature_schedule is not None:
            options["temperature_schedule"] = _parse_schedule(temperature_schedule)
            options.pop("temperature")
        if len(algos) == 1:
            options = _single_algorithm_options(algos[0], options)
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


def _single_algorithm_options(algo: str, options: dict) -> dict:
    """Drop the command-line defaults of options that do not apply to a lone ``algo``."""
    options = dict(options)
    if algo not in ("sgd", "psgd"):
        options.pop("batch_fraction")
    if algo != "psgd":
        options.pop("persistence")
    return options


@app.command()
def info(path: Path = typer.Argument(..., help="A prcy NetCDF file.")):
    """Describe a prcy NetCDF file: what was run and the success summary."""
    from prcy.io import describe, open_dataset

    try:
        ds = open_dataset(path)
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    typer.echo(describe(ds))


def main():
    app()
