"""What prcy promises when things go wrong (docs/reliability.md): nothing left running, nothing lost,
every bad input one line."""
import os
import signal
import subprocess
import sys
import time

import pytest


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
