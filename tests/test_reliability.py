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
    from prcy.analysis import success_summary
    from prcy.io import format_summary_row

    ds = prcy.simulate(algorithm="gd", lr=2.0, constraint="ridge", n=20, t_max=10, seeds=4, m0=0.5)
    (row,) = success_summary(ds)
    assert row["diverged"] == 3 and row["final_m_seeds"] == 1
    assert "median final |m| 1.66e+151 (over 1 of 4 seeds; the others have no finite m)" in format_summary_row(row)
