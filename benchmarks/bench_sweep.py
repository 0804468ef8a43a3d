"""Sweep throughput and merge memory.

    python benchmarks/bench_sweep.py [--tasks 1000] [--merge-tasks 10000]

1. A sweep of TASKS tiny tasks (alpha swept, n = 16, 4 seeds, 200 time points) through `prcy sweep`
   in a subprocess: wall time, tasks per second, peak RSS of the sweep process and of its workers.
2. The merge of MERGE_TASKS parts x 200 time points: the parts are computed once, then `--overwrite`
   reruns only validation + merge; its peak RSS is compared with the size of the merged data.
Results, with date and machine: docs/benchmarks.md, "Sweeps".
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def sweep_cmd(n_tasks: int, out: Path) -> list[str]:
    stop = 1 + (n_tasks - 1) * 0.001
    return [sys.executable, "-m", "prcy", "sweep", "--alpha", f"1:{stop:.3f}:0.001", "--n", "16",
            "--seeds", "4", "--t-max", "2", "--points", "200", "--grid", "linear", "--no-progress", "-o", str(out)]


def run(cmd: list[str]) -> tuple[float, float, float]:
    """(wall seconds, peak RSS MiB of the command, peak RSS MiB of its children)."""
    script = ("import resource, subprocess, sys, json\n"
              "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)\n"
              "assert p.returncode == 0, p.stderr[-2000:]\n"
              "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    t0 = time.perf_counter()
    # run outside the source tree, so that the installed prcy (with its kernels) is imported
    out = subprocess.run([sys.executable, "-c", script, *cmd], capture_output=True, text=True,
                         cwd=tempfile.gettempdir())
    wall = time.perf_counter() - t0
    if out.returncode:
        raise SystemExit(out.stderr)
    return wall, int(out.stdout.split()[-1]) / 1024, 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--merge-tasks", type=int, default=10000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "a.nc"
        wall, rss, _ = run(sweep_cmd(args.tasks, out))
        print(f"sweep of {args.tasks} tasks: {wall:.1f} s, {args.tasks / wall:.1f} tasks/s, "
              f"peak RSS (largest process) {rss:.0f} MiB, file {out.stat().st_size / 2**20:.1f} MiB")
        out = Path(tmp) / "b.nc"
        wall, rss, _ = run(sweep_cmd(args.merge_tasks, out))
        print(f"sweep of {args.merge_tasks} tasks: {wall:.1f} s ({args.merge_tasks / wall:.1f} tasks/s)")
        wall, rss, _ = run(sweep_cmd(args.merge_tasks, out) + ["--overwrite"])
        data_mib = args.merge_tasks * 4 * 200 * 8 * 4 / 2**20
        print(f"validate + merge of {args.merge_tasks} parts x 200 time points: {wall:.1f} s, peak RSS "
              f"{rss:.0f} MiB (the merged curves alone are {data_mib:.0f} MiB in memory)")


if __name__ == "__main__":
    main()
