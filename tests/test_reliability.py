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


def test_a_killed_sweep_leaves_no_process_behind(tmp_path):
    psutil = pytest.importorskip("psutil")
    args = [sys.executable, "-m", "prcy", "sweep", "--alpha", "2,3", "--n", "100", "--t-max", "20000",
            "--seeds", "2", "--processes", "2", "--threads", "1", "--no-progress", "-o", str(tmp_path / "s.nc")]
    parent = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(children) < 3:    # two workers and the resource tracker
            time.sleep(0.2)
            children = psutil.Process(parent.pid).children(recursive=True)
        assert len(children) >= 3, "the sweep did not start its workers"
        time.sleep(1.0)
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
