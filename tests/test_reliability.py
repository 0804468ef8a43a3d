"""What prcy promises when things go wrong (docs/reliability.md): nothing left running, nothing lost,
every bad input one line."""
import os
import signal
import subprocess
import sys
import time

import pytest

SMALL = ["--n", "40", "--alpha", "3", "--t-max", "3", "--seeds", "4", "--points", "10", "--no-progress"]


def _alive(proc) -> bool:
    import psutil

    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("executor", [["--processes", "2"], ["--dask-workers", "2"]])
def test_a_killed_sweep_leaves_no_process_behind(tmp_path, executor):
    psutil = pytest.importorskip("psutil")
    if "--dask-workers" in executor:
        pytest.importorskip("distributed")
    args = [sys.executable, "-m", "prcy", "sweep", "--alpha", "2,3", "--n", "100", "--t-max", "20000",
            "--seeds", "2", *executor, "--threads", "1", "--no-progress", "-o", str(tmp_path / "s.nc")]
    parent = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(children) < 3:    # two workers and the resource tracker
            time.sleep(0.2)
            children = psutil.Process(parent.pid).children(recursive=True)
        assert len(children) >= 3, "the sweep did not start its workers"
        time.sleep(2.0)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(p) for p in children):
            time.sleep(0.1)
        assert not [p.pid for p in children if _alive(p)]
    finally:
        for p in [parent, *children]:
            try:
                p.kill()
            except (ProcessLookupError, psutil.NoSuchProcess):
                pass


def test_output_files_respect_the_umask(tmp_path):
    from typer.testing import CliRunner

    from prcy.cli import app

    old = os.umask(0o022)
    try:
        result = CliRunner().invoke(app, ["simulate", *SMALL, "-o", str(tmp_path / "run.nc")])
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run.nc").stat().st_mode & 0o777 == 0o644


def test_the_summary_says_over_which_seeds_the_median_final_m_is():
    import prcy
    from prcy.analysis import format_summary_row, success_summary

    ds = prcy.simulate(algorithm="gd", lr=2.0, constraint="ridge", n=20, t_max=10, seeds=4, m0=0.5)
    (row,) = success_summary(ds)
    assert row["diverged"] == 3 and row["final_m_seeds"] == 1
    assert "median final |m| 1.66e+151 (over 1 of 4 seeds; the others have no finite m)" in format_summary_row(row)


@pytest.mark.parametrize("reference", ["sys:exit", "os:abort", "os:getcwd", "os:getpid"])
def test_a_loss_reference_calls_only_a_marked_factory(tmp_path, reference):
    from typer.testing import CliRunner

    from prcy.cli import app

    result = CliRunner().invoke(app, ["simulate", *SMALL, "--loss", reference, "-o", str(tmp_path / "x.nc")])
    assert result.exit_code == 2, result.output
    assert f"loss: {reference!r} is a builtin_function_or_method" in result.output
    assert str(os.getcwd()) not in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "x.nc").exists()


PLUGIN = '''
import sys
from prcy.kernels import losses
from prcy.problems import loss_factory

LOSS = losses.capsule("linear-regression")

@loss_factory
def quits():
    sys.exit(3)

@loss_factory
def square():
    return losses.capsule("linear-regression")
'''


def test_loss_plugins_by_entry_point_capsule_or_marked_factory(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from prcy.cli import app
    from prcy.io import open_dataset

    (tmp_path / "prcy_plugin_demo.py").write_text(PLUGIN)
    dist = tmp_path / "prcy_plugin_demo-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: prcy-plugin-demo\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[prcy.losses]\ndemo-square = prcy_plugin_demo:square\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    runner = CliRunner()
    for loss in ("demo-square", "prcy_plugin_demo:LOSS", "prcy_plugin_demo:square"):
        out = tmp_path / f"{loss.replace(':', '_')}.nc"
        result = runner.invoke(app, ["simulate", "--problem", "linear-regression", *SMALL, "--loss", loss,
                                     "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert open_dataset(out).attrs["loss"] == loss
    result = runner.invoke(app, ["simulate", *SMALL, "--loss", "prcy_plugin_demo:quits", "-o", str(tmp_path / "q.nc")])
    assert result.exit_code == 2
    assert "loss: 'prcy_plugin_demo:quits' could not be loaded (SystemExit: 3)" in result.output
    result = runner.invoke(app, ["simulate", *SMALL, "--loss", "no-such-plugin", "-o", str(tmp_path / "n.nc")])
    assert result.exit_code == 2 and "demo-square" in result.output


def test_a_sweep_refuses_a_loss_it_cannot_load_before_any_task(tmp_path):
    from typer.testing import CliRunner

    from prcy.cli import app

    out = tmp_path / "s.nc"
    result = CliRunner().invoke(app, ["sweep", *SMALL, "--alpha", "2,3", "--loss", "os:getpid", "-o", str(out)])
    assert result.exit_code == 2 and "loss: 'os:getpid' is a builtin_function_or_method" in result.output
    assert not out.with_name("s.nc.parts").exists()


def test_an_ensemble_where_no_replica_converged_is_written_described_and_plotted(tmp_path):
    from typer.testing import CliRunner

    from prcy.cli import app

    runner = CliRunner()
    dmft = ["dmft", "--m0", "0.8", "--t-max", "1", "--samples", "100", "--max-iter", "3", "--no-progress"]
    for extra, name in ((["--replicas", "2"], "d.nc"), (["--first-replica", "3", "--replicas", "1"], "d3.nc")):
        result = runner.invoke(app, [*dmft, *extra, "-o", str(tmp_path / name)])
        assert result.exit_code == 1, result.output          # not converged: the file is written, exit 1
        assert "no replica converged" in result.output and (tmp_path / name).exists()
    info = runner.invoke(app, ["info", str(tmp_path / "d.nc")])
    assert info.exit_code == 0 and "no replica converged" in info.output, info.output
    base = tmp_path / "base.nc"
    assert runner.invoke(app, ["simulate", *SMALL, "-o", str(base)]).exit_code == 0
    plot = runner.invoke(app, ["plot", str(base), str(tmp_path / "d.nc"), "-o", str(tmp_path / "p.png")])
    assert plot.exit_code == 0, plot.output


def test_info_on_a_file_without_what_a_success_summary_reads_is_one_line(tmp_path):
    import prcy
    from typer.testing import CliRunner

    from prcy.cli import app

    ds = prcy.simulate(algorithm="gd", n=20, t_max=1, seeds=2).drop_vars("success")
    ds.to_netcdf(tmp_path / "cut.nc")
    result = CliRunner().invoke(app, ["info", str(tmp_path / "cut.nc")])
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.endswith("cut.nc': the dataset lacks success; a success summary needs success, solved_time, "
                         "magnetization, stop_reason")


def test_a_dmft_solve_that_did_not_converge_exits_1_with_its_file(tmp_path):
    from typer.testing import CliRunner

    from prcy.cli import app

    out = tmp_path / "d.nc"
    result = CliRunner().invoke(app, ["dmft", "--alpha", "1e6", "--t-max", "1", "--samples", "100", "--no-progress",
                                      "-o", str(out)])
    assert result.exit_code == 1 and "diverged" in result.output and out.exists()


@pytest.mark.parametrize("args, part", [
    (["simulate", "--n", "10000000", "--seeds", "2"], "inputs X, 30000000 x 10000000 float64"),
    (["simulate", "--n", "64", "--share-data", "--alpha", "1000000"], "inputs X, 64000000 x 64 float64, shared"),
    (["simulate", "--n", "32", "--seeds", "1000000"], "recorded curves"),
    (["dmft", "--samples", "10000000"], "sample paths, 101 grid points x 10000000 samples"),
    (["dmft", "--t-max", "1", "--samples", "100", "--replicas", "1000000"], "datasets of 1000000 solve(s)"),
    (["sweep", "--n", "3000000", "--alpha", "2,3", "--processes", "2"], "(x 2 processes)"),
])
def test_a_run_larger_than_the_machine_is_refused_with_its_estimate_before_compute(tmp_path, monkeypatch, args,
                                                                                      part):
    from typer.testing import CliRunner

    from prcy import resources
    from prcy.cli import app

    monkeypatch.setattr(resources, "machine_memory", lambda: 4 * 2 ** 30)
    out = tmp_path / "o.nc"
    start = time.perf_counter()
    result = CliRunner().invoke(app, [*args, "--t-max", "1", "--no-progress", "-o", str(out)]
                                if "--t-max" not in args else [*args, "--no-progress", "-o", str(out)])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: memory: this run needs about ") and part in line
    assert "more than the 4 GiB this machine gives a process; allowed: smaller" in line
    assert time.perf_counter() - start < 10 and not out.exists() and not out.with_name("o.nc.parts").exists()


@pytest.mark.parametrize("command", [["simulate", *SMALL], ["sweep", *SMALL],
                                     ["dmft", "--t-max", "1", "--samples", "100", "--no-progress"]])
@pytest.mark.parametrize("output, message", [
    ("adir", "'adir' is a folder"), ("", "'.' is a folder"),
    ("/proc/x.nc", "no file can be created in folder '/proc'")])
def test_an_output_that_cannot_be_written_is_refused_before_compute(tmp_path, monkeypatch, command, output,
                                                                    message):
    from typer.testing import CliRunner

    from prcy.cli import app

    if output.startswith("/proc") and not os.path.isdir("/proc"):
        pytest.skip("no /proc")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir").mkdir()
    start = time.perf_counter()
    result = CliRunner().invoke(app, [*command, "-o", output, "--overwrite"])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line == f"error: output: {message}" or line.startswith(f"error: output: {message}")
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04" + bytes(40), bytes(range(256))])
def test_an_empty_or_damaged_checkpoint_is_one_line(tmp_path, content):
    from typer.testing import CliRunner

    from prcy.cli import app

    checkpoint = tmp_path / "c.npz"
    checkpoint.write_bytes(content)
    result = CliRunner().invoke(app, ["dmft", "--t-max", "1", "--samples", "100", "--no-progress",
                                      "--checkpoint", str(checkpoint), "-o", str(tmp_path / "d.nc")])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert "is not a prcy DMFT checkpoint, or a damaged one" in line and line.endswith("remove it to start afresh")


def test_an_interrupted_ensemble_writes_the_replicas_it_finished(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from prcy import cli
    from prcy.io import open_dataset

    def ctrl_c_in_replica_7(bar, iteration, residual, replica=None):     # the progress bar's update
        if replica == 7:
            raise KeyboardInterrupt
    monkeypatch.setattr(cli._IterationBar, "__call__", ctrl_c_in_replica_7)
    out = tmp_path / "d.nc"
    result = CliRunner().invoke(cli.app, ["dmft", "--alpha", "2", "--algorithm", "gd", "--m0", "0.5", "--dt", "0.05",
                                          "--t-max", "1", "--samples", "200", "--first-replica", "5",
                                          "--replicas", "99", "-o", str(out)])
    assert result.exit_code == 130, result.output
    assert "interrupted: wrote the 2 finished replicas (5 to 6)" in result.output
    assert "--first-replica 7 solves the others" in result.output
    ds = open_dataset(out)
    assert list(ds.replica.values) == [5, 6] and ds.attrs["replicas"] == 2
    assert '"replicas": 2' in ds.attrs["spec"] and set(ds.replica_status.values) == {"converged"}


def test_simulate_data_refuses_a_teacher_of_the_wrong_norm():
    import numpy as np

    from prcy.data import simulate_data

    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 20))
    w0 = rng.standard_normal(20)
    w0 *= np.sqrt(20) / np.linalg.norm(w0)
    assert simulate_data(X, teacher=w0, algorithm="gd", t_max=0.1).sizes["seed"] == 1
    with pytest.raises(ValueError, match=r"teacher: squared norm 0.25 N; allowed: N \(within 1e-06\)"):
        simulate_data(X, teacher=0.5 * w0, algorithm="gd", t_max=0.1)


def test_a_one_dimensional_run_is_refused():
    from typer.testing import CliRunner

    from prcy.cli import app

    result = CliRunner().invoke(app, ["simulate", "--n", "1", "--seeds", "2", "--t-max", "1", "-o", "never.nc"])
    assert result.exit_code == 2 and "n: 1 is not allowed; allowed: an integer >= 2" in result.output


# --------------------------------------------------------------------------------------------------
# property-based: any value of any type for any option is run or refused in one line

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

# values of every type, kept to sizes that run in well under a second when they are allowed
VALUES = st.one_of(
    st.sampled_from(["0", "1", "2", "3", "-1", "0.5", "1e-300", "1e300", "nan", "inf", "-inf", "2e0",
                     str(2 ** 63), str(10 ** 20), "", " ", "true", "false", "none", "gd", "sphere", "0:1,1:0",
                     "0,1", "1:3:1", "os:getcwd", "sys:exit", "a:b:c", "\x00", "é", "--n"]),
    st.integers(-10, 10).map(str), st.floats(-10, 10, allow_nan=False).map(repr), st.text(max_size=8))
BASE = {"simulate": ["--n", "8", "--alpha", "2", "--seeds", "1", "--t-max", "0.05", "--points", "3"],
        "dmft": ["--t-max", "0.05", "--samples", "10", "--max-iter", "2"],
        "sweep": ["--n", "8", "--alpha", "2", "--seeds", "1", "--t-max", "0.05", "--points", "3",
                  "--processes", "1"]}


def _flags(command: str) -> list[str]:
    from prcy.options import DMFT, EXECUTION, NOT_IN_DMFT, SIMULATION

    rows = {"simulate": [*SIMULATION.values(), EXECUTION["threads"]],
            "dmft": [*DMFT.values(), *(SIMULATION[n] for n in NOT_IN_DMFT), EXECUTION["threads"]],
            # --dask-workers starts a Dask cluster (seconds each): tests/test_sweep.py covers it
            "sweep": [*SIMULATION.values(), *(EXECUTION[n] for n in ("processes", "threads", "seeds_per_task"))]}
    return sorted({row.flag for row in rows[command]})


@st.composite
def command_lines(draw):
    command = draw(st.sampled_from(sorted(BASE)))
    flags = draw(st.lists(st.sampled_from(_flags(command)), min_size=1, max_size=3, unique=True))
    words = []
    for flag in flags:
        words += [flag, draw(VALUES)]
    return [command, *BASE[command], *words]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=command_lines())
def test_any_option_value_is_run_or_refused_in_one_line(tmp_path, args):
    from typer.testing import CliRunner

    from prcy.cli import app

    out = tmp_path / "out.nc"
    result = CliRunner().invoke(app, [*args, "--no-progress", "--overwrite", "-o", str(out)])
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.output)
    assert "Traceback" not in result.output, (args, result.output)
    allowed = (0, 1, 2) if args[0] == "dmft" else (0, 2)
    assert result.exit_code in allowed, (args, result.exit_code, result.output)
    if result.exit_code == 2:
        errors = [line for line in result.output.splitlines() if line.lower().startswith("error")]
        assert len(errors) == 1, (args, result.output)
    else:
        assert f"wrote {out}" in result.output, (args, result.output)


def _filled(shape, dtype, fill):
    import numpy as np

    with np.errstate(all="ignore"):
        return np.full(shape, fill).astype(dtype)


ARRAYS = st.one_of(
    st.none(), st.floats(), st.text(max_size=3),
    st.builds(_filled,
              st.lists(st.integers(0, 6), min_size=0, max_size=3).map(tuple),
              st.sampled_from(["float64", "float32", "int64", "uint8", "bool", "complex128", "object"]),
              st.sampled_from([0.0, 1.0, -2.5, float("nan"), float("inf"), 1e300])))


@settings(max_examples=60, deadline=None)
@given(X=ARRAYS, teacher=ARRAYS, labels=ARRAYS, w_init=ARRAYS, sample_axis=st.sampled_from([0, 1, 2, -1]))
def test_simulate_data_runs_or_refuses_any_arrays(X, teacher, labels, w_init, sample_axis):
    import numpy as np

    from prcy.data import simulate_data

    rng = np.random.default_rng(0)
    if isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind == "f":
        X = X + rng.standard_normal(X.shape).astype(X.dtype)       # a matrix of full rank, when finite
    try:
        ds = simulate_data(X, teacher=teacher, labels=labels, w_init=w_init, sample_axis=sample_axis,
                           algorithm="gd", t_max=0.05, points=3)
    except ValueError as exc:
        assert str(exc).split(":")[0].strip(), exc                # names what it refuses
    else:
        assert ds.sizes["seed"] == 1
