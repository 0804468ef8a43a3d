#!/usr/bin/env python
"""Time one step of phase retrieval: prcy's fused kernel against NumPy (OpenBLAS) and PyTorch.

Run from anywhere once prcy is installed (``pip install .``):

    python benchmarks/bench_step.py            # full run, about 3-4 minutes
    python benchmarks/bench_step.py --quick    # fewer repetitions, about a minute
    python benchmarks/bench_step.py --mixture-parts 1000 --reps 21   # the mixture step taken apart, 2 min

It prints, per case, the median time per step over repetitions (implementations are interleaved
within each repetition, so a burst of load elsewhere hits all of them alike), the effective
bandwidth ``active rows x N x itemsize / time`` (bytes of X a step must read once, divided by the
time: the NumPy and torch references actually read X twice per step), every ratio, and whether
each target is met. This is a script, not a test: nothing fails when a target is missed.

What is timed (phase retrieval, eta = 0.01, on the sphere, one thread unless said otherwise; the mixture
cases: the problem's own loss with a ridge 0.1, against the phase-retrieval step in the same repetitions):
- prcy: ``run_trajectory`` for 2K and for K steps; the difference divided by K is one step (it
  removes the set-up and the two full observation passes at step 0 and at the last step);
- NumPy reference: ``h = X@w*s; c = (h*h - h0*h0)*h; g = X.T@c*s; w -= eta*g; w *= sqrt(n)/|w|``
  with BLAS limited to one thread (threadpoolctl); SGD-type steps gather the active rows with
  ``X[idx]`` first; float32: every array float32 (also the scalars: NumPy 2 promotes float32
  arrays times np.float64 scalars to float64);
- PyTorch (optional: skipped with a message when not installed): the same two products with
  ``torch.mv`` on CPU tensors sharing X's memory, ``torch.set_num_threads(1)``.
"""
import argparse
import os
import platform
import subprocess
import sys
import time

import resource

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from prcy.kernels import dynamics, losses, parallel

torch = None    # imported in main(), after the thread-scaling runs: torch.set_num_threads(1) would
                # otherwise also set the OpenMP runtime that prcy shares with it

ETA = 0.01
CAPSULE = losses.capsule("phase-retrieval")


# ------------------------------------------------------------------------------------------------
# machine
def machine_info():
    lines = []
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        keep = ("Model name", "CPU(s):", "Thread(s) per core", "L1d cache", "L2 cache", "L3 cache",
                "Hypervisor vendor")
        lines += [" ".join(l.split()) for l in out.splitlines() if l.startswith(keep)]
    except (OSError, subprocess.CalledProcessError):
        lines.append(f"processor: {platform.processor() or '?'}")
    lines.append(f"python {platform.python_version()}, numpy {np.__version__}")
    lines.append(f"prcy build: {parallel.build_info()}, OpenMP threads available: {parallel.n_threads()}")
    for lib in threadpool_info():
        lines.append(f"{lib['user_api']}: {lib['internal_api']} {lib.get('version')} "
                     f"kernel/architecture={lib.get('architecture')} threads={lib['num_threads']} "
                     f"({os.path.basename(lib['filepath'])})")
    lines.append(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(not set)')}")
    try:
        load = os.getloadavg()[0]
        lines.append(f"load average (1 min) at start: {load:.2f}"
                     + ("  <-- other work is running: timings will be noisy" if load > 0.5 else ""))
    except OSError:
        pass
    return lines


# ------------------------------------------------------------------------------------------------
# one step, three ways
def data(n, alpha=3, dtype=np.float64, problem="phase-retrieval", delta=1.0):
    """Inputs, labels (phase retrieval: ``y = |h0|``), teacher and a warm start (on the sphere; a
    mixture: its random start ``N(0, 0.01 I)``)."""
    m = int(alpha * n)
    w0, X, y, _, _ = dynamics.generate(np.random.PCG64(0), m, n, 0, dtype=dtype, problem=problem, delta=delta)
    mixture = problem.startswith("mixture")
    w = dynamics.initial_weights(np.random.PCG64(2), w0, 0.2, not mixture, init="random" if mixture else "warm",
                                 init_variance=0.01)
    return X, y, w0, w


OPTIMIZERS = {"plain": {}, "momentum": dict(momentum=0.9), "nesterov": dict(momentum=0.9),
              "adam": dict(beta1=0.9, beta2=0.999, adam_eps=1e-8)}


def kernel_params(steps, optimizer="plain", sphere=True):
    """The kernels' ``params``: GD at ``ETA`` on the sphere (or with a ridge 0.1), no success check, the
    update rule ``optimizer``."""
    params = dict(eta=ETA, grad_scale=1.0, ridge=0.0 if sphere else 0.1, sphere=sphere, n_steps=steps, check_every=10**9, tol=1e-300,
                  early_stop=False, grad_tol=0.0, optimizer=optimizer, momentum=0.0, beta1=0.0, beta2=0.0,
                  adam_eps=0.0, project_velocity=False)
    params.update(OPTIMIZERS[optimizer])
    return params


def prcy_timer(X, h0, w0, w, K, selection="full", ell=1.0, p_on=1.0, p_off=0.0, optimizer="plain", loss=CAPSULE,
               sphere=True):
    """Seconds per step of prcy's kernel: run 2K and K steps, subtract, divide by K (``loss``: a capsule;
    ``sphere``: False for the ridge)."""
    empty_h = np.empty(0)

    def run(steps):
        params = kernel_params(steps, optimizer, sphere)
        t = time.perf_counter()
        dynamics.run_trajectory(loss, X, h0, w0, w, X[:0], empty_h, selection=selection, ell=ell,
                                p_on=p_on, p_off=p_off, params=params,
                                record_steps=np.array([0, steps], dtype=np.int64),
                                temp_starts=np.array([0], dtype=np.int64), temp_values=np.array([0.0]),
                                rng=np.random.PCG64(1))
        return time.perf_counter() - t

    def timer():
        t2, t1 = run(2 * K), run(K)
        timer.long.append(t2)
        timer.short.append(t1)
        return (t2 - t1) / K
    # "best": fastest long run minus fastest short run (the fastest difference would be biased low)
    timer.long, timer.short = [], []
    timer.best = lambda: (min(timer.long) - min(timer.short)) / K
    return timer


def numpy_timer(X, h0, w, K, ell=None, p_on=0.0, p_off=0.0):
    """Seconds per step of the usual NumPy code (all in X's dtype). ``ell``: persistent SGD."""
    dt = X.dtype.type
    m, n = X.shape
    s, eta, radius = dt(1.0 / np.sqrt(n)), dt(ETA), dt(np.sqrt(n))
    h0 = h0.astype(dt)
    rng = np.random.default_rng(3)
    state0 = rng.random(m) < ell if ell is not None else None
    p_flip_on, p_flip_off = dt(p_on), dt(p_off)

    def timer():
        v = w.astype(dt)
        state = state0.copy() if state0 is not None else None
        with threadpool_limits(1):
            t = time.perf_counter()
            for _ in range(K):
                if state is None:
                    h = X @ v * s
                    c = (h * h - h0 * h0) * h
                    g = X.T @ c * s
                else:
                    state ^= rng.random(m, dtype=dt) < np.where(state, p_flip_off, p_flip_on)
                    idx = np.flatnonzero(state)
                    Xa = X[idx]
                    h = Xa @ v * s
                    ha = h0[idx]
                    c = (h * h - ha * ha) * h
                    g = Xa.T @ c * s
                v = v - eta * g
                v *= radius / np.linalg.norm(v)
            elapsed = time.perf_counter() - t
        assert v.dtype == X.dtype, "dtype promotion in the NumPy reference"
        return elapsed / K
    return timer


def torch_timer(X, h0, w, K):
    """Seconds per step of the same two products in PyTorch (CPU, one thread)."""
    m, n = X.shape
    Xt = torch.from_numpy(X)
    h0t = torch.from_numpy(h0.astype(X.dtype))
    s, radius = 1.0 / np.sqrt(n), float(np.sqrt(n))

    def timer():
        v = torch.from_numpy(w.astype(X.dtype))
        with torch.no_grad():
            t = time.perf_counter()
            for _ in range(K):
                h = torch.mv(Xt, v) * s
                c = (h * h - h0t * h0t) * h
                g = torch.mv(Xt.t(), c) * s
                v = v - ETA * g
                v *= radius / torch.linalg.vector_norm(v)
            elapsed = time.perf_counter() - t
        assert v.dtype == Xt.dtype
        return elapsed / K
    return timer


def measure(timers, reps):
    """Median seconds per step of each timer; the timers take turns within every repetition."""
    for f in timers.values():   # warm-up: page in X, load code
        f()
        if hasattr(f, "best"):
            f.long.clear()
            f.short.clear()
    samples = {k: [] for k in timers}
    for _ in range(reps):
        for k, f in timers.items():
            samples[k].append(f())
    best = {k: float(f.best() if hasattr(f, "best") else np.min(samples[k])) for k, f in timers.items()}
    return {k: float(np.median(v)) for k, v in samples.items()}, best


# ------------------------------------------------------------------------------------------------
# seeds on threads
def seeds_throughput(n, n_seeds, n_steps, n_threads, alpha=3, selection="full"):
    """Seed-steps per second of ``run_seeds`` (each seed draws its own data, as prcy simulate does),
    and the process's CPU time / wall time during the run (about 2 when two threads really ran on
    two cores; near 1 means the two threads shared one core, e.g. because other work was running:
    Linux's autogroup scheduler gives each session one fair share, whatever its thread count)."""
    m = int(alpha * n)
    empty = np.empty((0, n))
    mk = lambda i, j: np.random.PCG64(np.random.SeedSequence(1, spawn_key=(i, j)))
    params = kernel_params(n_steps)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    dynamics.run_seeds(CAPSULE, empty, np.empty(0), np.empty(0), empty, np.empty(0), shared_data=False,
                       m=m, n=n, m_test=0, problem="phase-retrieval", teacher="gaussian", onset=0.0, delta=1.0,
                       selection=selection, ell=1.0, p_on=1.0, p_off=0.0, init="warm", m0=0.2, init_variance=1.0,
                       params=params, record_steps=np.array([0, n_steps], dtype=np.int64),
                       temp_starts=np.array([0], dtype=np.int64), temp_values=np.array([0.0]),
                       data_rngs=[mk(i, 0) for i in range(n_seeds)],
                       init_rngs=[mk(i, 1) for i in range(n_seeds)],
                       dynamics_rngs=[mk(i, 2) for i in range(n_seeds)],
                       progress=np.zeros(n_seeds, dtype=np.int64), abort=np.zeros(1, dtype=np.int32),
                       n_threads=n_threads)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return n_seeds * n_steps / wall, cpu / wall


def thread_scaling(scale, reps):
    """run_seeds on one and two threads: 8 seeds, GD, N = 500 and N = 1000."""
    out = ["seeds on threads: run_seeds, GD, 8 seeds, each with its own data (drawn inside the run)"]
    for n, steps in ((500, int(scale * 3000) or 300), (1000, int(scale * 600) or 100)):
        tp, use = {1: [], 2: []}, {1: [], 2: []}
        for _ in range(max(3, reps // 3)):
            for th in (1, 2):
                rate, util = seeds_throughput(n, 8, steps, th)
                tp[th].append(rate)
                use[th].append(util)
        t1, t2 = np.median(tp[1]), np.median(tp[2])
        target = ("  target >= 1.7 " + ("MET" if t2 / t1 >= 1.7 else "NOT MET")) if n == 500 else ""
        out.append(f"N={n:<5} {steps} steps/seed: 1 thread {t1:8.0f} seed-steps/s (cpu/wall "
                   f"{np.median(use[1]):.2f}), 2 threads {t2:8.0f} (cpu/wall {np.median(use[2]):.2f}): "
                   f"ratio {t2 / t1:5.2f}{target}")
    if np.median(use[2]) < 1.6:
        out.append("  WARNING: the two threads did not get two cores (cpu/wall well below 2): other work "
                   "is running; the ratio above measures the scheduler, not prcy")
    return out


# ------------------------------------------------------------------------------------------------
MIXTURE_REFERENCE, MIXTURE_2, MIXTURE_3 = ("phase retrieval, its loss, sphere", "mixture-2, logistic loss, ridge (its default)",
                                           "mixture-3, quadratic-logistic loss, ridge")


def mixture_cases(parts=False):
    """The Gaussian mixtures' steps (Mignacco et al. 2020, N = 1000, alpha = 3): the problem's own loss with a
    ridge, and the phase-retrieval step (its loss, the sphere) they are measured against; with ``parts``, also
    each change from that reference alone. Name -> (data, loss capsule, sphere)."""
    pr, mix = data(1000), data(1000, problem="mixture-2", delta=0.5)
    logistic = losses.capsule("logistic")
    cases = {MIXTURE_REFERENCE: (pr, CAPSULE, True)}
    if parts:
        cases.update({"phase retrieval, its loss, ridge": (pr, CAPSULE, False),
                      "mixture-2 data, phase-retrieval loss, ridge": (mix, CAPSULE, False),
                      "phase retrieval, logistic loss, sphere": (pr, logistic, True)})
    cases[MIXTURE_2] = (mix, logistic, False)
    cases[MIXTURE_3] = (data(1000, problem="mixture-3", delta=0.05), losses.capsule("quadratic-logistic", onset=0.7),
                        False)
    return cases


def mixture_parts(reps, steps):
    """The logistic step of a Gaussian mixture against the phase-retrieval step, taken apart: each change
    from the reference (phase retrieval, its loss, the sphere) alone, then together; timers of ``steps``
    and ``2 steps`` steps, interleaved over ``reps`` repetitions."""
    cases = mixture_cases(parts=True)
    with threadpool_limits(1):
        timers = {name: prcy_timer(*d, steps, loss=cap, sphere=sphere) for name, (d, cap, sphere) in cases.items()}
        med, _ = measure(timers, reps)
    ref = med[MIXTURE_REFERENCE]
    print(f"N = 1000, alpha = 3, GD; medians over {reps} repetitions of {steps} and {2 * steps} steps")
    for name, t in med.items():
        print(f"{name:<48}{t * 1e3:8.3f} ms/step   relative cost {t / ref:5.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (noisier)")
    ap.add_argument("--reps", type=int, default=None, help="repetitions per case (default 9, quick 3)")
    ap.add_argument("--mixture-parts", type=int, metavar="STEPS", default=0,
                    help="only the Gaussian-mixture step taken apart, timers of STEPS and 2 STEPS steps")
    args = ap.parse_args()
    reps = args.reps or (3 if args.quick else 9)
    if args.mixture_parts:
        print("# load average (1 min) at start: %.2f" % os.getloadavg()[0])
        mixture_parts(reps, args.mixture_parts)
        return
    scale = 0.3 if args.quick else 1.0
    print("# prcy step benchmark:", " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]))
    for line in machine_info():
        print("#", line)
    seeds_report = thread_scaling(scale, reps)      # before torch is imported (see the top)
    global torch
    try:
        import torch
        torch.set_num_threads(1)
        print(f"# torch {torch.__version__}, torch.set_num_threads(1)")
    except ImportError:  # optional comparison
        torch = None
    if torch is None:
        print("# PyTorch not installed: its column is skipped (pip install torch)")
    print(f"# medians over {reps} repetitions (best: the fastest repetition; for prcy the fastest "
          f"2K-step run minus the fastest K-step run); "
          f"GB/s = active rows x N x itemsize / median time per step\n")

    rows = []       # (case, impl, ms, GB/s, best ms)
    results = {}

    def case(name, X, h0, w0, w, K, selection="full", ell=None, p=0.0, ref=True, with_torch=True):
        m, n = X.shape
        active = m if selection == "full" else m * ell
        timers = {"prcy": prcy_timer(X, h0, w0, w, K, selection, ell or 1.0, p if ell else 1.0, p)}
        if ref:
            timers["numpy"] = numpy_timer(X, h0, w, K, ell, p, p)
            if torch is not None and with_torch and selection == "full":
                timers["torch"] = torch_timer(X, h0, w, K)
        med, best = measure(timers, reps)
        for impl, t in med.items():
            gbs = active * n * X.itemsize / t / 1e9
            rows.append((name, impl, t * 1e3, gbs, best[impl] * 1e3))
            results[(name, impl)] = t
        return med

    K = lambda n: max(4, int(scale * 3e8 / (3 * n * n)))     # ~0.1-0.3 s per timer call

    X, h0, w0, w = data(1000)
    case("GD f64 N=1000", X, h0, w0, w, K(1000))
    # persistent SGD, ell = 0.5, tau = 1: p_on = eta/tau, p_off = (1-ell) eta/(ell tau)
    case("pSGD ell=0.5 f64 N=1000", X, h0, w0, w, K(1000), "persistent", 0.5, ETA)
    X32, h032, w032, w32 = data(1000, dtype=np.float32)   # float32 storage, labels from that X
    case("GD f32 N=1000", X32, h032, w032, w32, K(1000))
    # update rules: the plain step against momentum, Nesterov and Adam, in the same repetitions
    for dtype in (np.float64, np.float32):
        Xo, h0o, w0o, wo = data(1000, dtype=dtype)
        bits = "f64" if dtype == np.float64 else "f32"
        timers = {opt: prcy_timer(Xo, h0o, w0o, wo, K(1000), optimizer=opt) for opt in OPTIMIZERS}
        med, best = measure(timers, reps)
        for opt, t in med.items():
            name = f"GD {opt} {bits} N=1000"
            rows.append((name, "prcy", t * 1e3, len(Xo) * 1000 * Xo.itemsize / t / 1e9, best[opt] * 1e3))
            results[(name, "prcy")] = t
        del Xo
    # Gaussian mixtures (Mignacco et al. 2020): a logistic step with the ridge against the phase-retrieval step
    labels = {MIXTURE_REFERENCE: "GD phase retrieval N=1000", MIXTURE_2: "GD mixture-2 logistic N=1000",
              MIXTURE_3: "GD mixture-3 quad-logistic N=1000"}
    mixtures = {labels[name]: case for name, case in mixture_cases().items()}
    timers = {name: prcy_timer(*d, K(1000), loss=cap, sphere=sphere) for name, (d, cap, sphere) in mixtures.items()}
    med, best = measure(timers, reps)
    for name, t in med.items():
        rows.append((name, "prcy", t * 1e3, 3000 * 1000 * 8 / t / 1e9, best[name] * 1e3))
        results[(name, "prcy")] = t
    del X, X32, mixtures, timers
    X, h0, w0, w = data(4000)
    case("GD f64 N=4000", X, h0, w0, w, K(4000))
    del X

    print(f"{'case':<26}{'impl':<8}{'ms/step':>10}{'GB/s':>9}{'best ms':>10}")
    for name, impl, ms, gbs, best_ms in rows:
        print(f"{name:<26}{impl:<8}{ms:>10.3f}{gbs:>9.1f}{best_ms:>10.3f}")
    print()

    def ratio(label, num, den, target, higher=True):
        r = results[num] / results[den]
        ok = r >= target if higher else r <= target
        sign = ">=" if higher else "<="
        print(f"{label:<58}{r:6.2f}   target {sign} {target:<5} {'MET' if ok else 'NOT MET'}")

    print("ratios (time of the first / time of the second):")
    ratio("GD f64 N=1000: numpy / prcy (speed-up)", ("GD f64 N=1000", "numpy"), ("GD f64 N=1000", "prcy"), 2.0)
    ratio("pSGD ell=0.5 / GD, prcy f64 N=1000 (relative cost)", ("pSGD ell=0.5 f64 N=1000", "prcy"),
          ("GD f64 N=1000", "prcy"), 0.6, higher=False)
    ratio("pSGD ell=0.5 f64 N=1000: numpy / prcy", ("pSGD ell=0.5 f64 N=1000", "numpy"),
          ("pSGD ell=0.5 f64 N=1000", "prcy"), 1.0)
    ratio("GD f32 N=1000: numpy f32 / prcy f32 (speed-up)", ("GD f32 N=1000", "numpy"), ("GD f32 N=1000", "prcy"), 1.3)
    ratio("GD N=1000: prcy f64 / prcy f32 (gain of f32 storage)", ("GD f64 N=1000", "prcy"), ("GD f32 N=1000", "prcy"), 1.0)
    ratio("GD f64 N=4000: numpy / prcy (speed-up)", ("GD f64 N=4000", "numpy"), ("GD f64 N=4000", "prcy"), 1.7)
    for bits in ("f64", "f32"):
        for opt, target in (("momentum", 1.1), ("nesterov", 1.1), ("adam", 1.2)):
            ratio(f"GD {bits} N=1000: {opt} / plain step (relative cost)", (f"GD {opt} {bits} N=1000", "prcy"),
                  (f"GD plain {bits} N=1000", "prcy"), target, higher=False)
    for name in ("GD mixture-2 logistic N=1000", "GD mixture-3 quad-logistic N=1000"):
        ratio(f"{name} / phase retrieval (relative cost)", (name, "prcy"), ("GD phase retrieval N=1000", "prcy"), 1.1,
              higher=False)
    if torch is not None:
        for name in ("GD f64 N=1000", "GD f32 N=1000", "GD f64 N=4000"):
            ratio(f"{name}: torch / prcy", (name, "torch"), (name, "prcy"), 1.0)
    print()
    print("\n".join(seeds_report))

if __name__ == "__main__":
    main()
