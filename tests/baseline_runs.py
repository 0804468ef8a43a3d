"""Runs of the engine as it stood before Engine v2 (main at 9216dc4), stored in
``tests/data/baseline_runs.npz``: ``test_baseline.py`` checks that the same options still give the
same numbers, bitwise. Regenerate only on purpose, with the engine whose numbers are the reference:
``python tests/baseline_runs.py``."""
import os

import numpy as np

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "baseline_runs.npz")
VARIABLES = ("magnetization", "norm", "train_loss", "test_error", "solved_time", "stop_time")

COMMON = dict(alpha=3.0, n=48, m0=0.2, lr=0.02, t_max=3.0, points=12, seeds=3, seed=11)
RUNS = {
    "gd-sphere": dict(algorithm="gd"),
    "sgd-sphere": dict(algorithm="sgd", batch_fraction=0.3),
    "psgd-sphere": dict(algorithm="psgd", batch_fraction=0.5, persistence=1.0),
    "psgd-norescale": dict(algorithm="psgd", batch_fraction=0.5, persistence=0.5, rescale=False),
    "langevin-schedule": dict(algorithm="langevin", temperature_schedule=((0, 0.5), (1.0, 0.0))),
    "gd-ridge": dict(algorithm="gd", constraint="ridge", ridge=0.1),
    "sgd-ridge-float32": dict(algorithm="sgd", constraint="ridge", ridge=0.05, precision="float32"),
    "psgd-shared-ntest": dict(algorithm="psgd", share_data=True, n_test=40, early_stop=True, tol=1e-3),
    "gd-random-labels": dict(algorithm="gd", labels="random"),
    "linear-ridge": dict(problem="linear-regression", algorithm="gd", constraint="ridge", ridge=0.2),
}


DMFT = {
    "dmft-gd": dict(alpha=2.0, m0=0.8, algorithm="gd", dt=0.05, t_max=1.0, samples=300, max_iter=4, seed=5),
    "dmft-psgd-kick": dict(alpha=3.0, m0=0.2, algorithm="psgd", batch_fraction=0.5, persistence=1.0, dt=0.05,
                           lr=0.05, t_max=1.0, samples=300, max_iter=4, response_kick=0.1, seed=5),
    "dmft-ridge": dict(alpha=2.0, m0=0.5, algorithm="sgd", constraint="ridge", ridge=0.3, dt=0.05, lr=0.05,
                       t_max=1.0, samples=300, max_iter=4, seed=5),
}
DMFT_VARIABLES = ("magnetization", "M_R", "M_C", "nu_hat", "train_loss", "residual")


def run_dmft(name):
    import prcy.dmft
    ds = prcy.dmft.solve(**DMFT[name])
    return {v: ds[v].values for v in DMFT_VARIABLES}


def run(name):
    import prcy
    ds = prcy.simulate(**{**COMMON, **RUNS[name]})
    return {v: ds[v].values for v in VARIABLES + ("test_error_empirical",) if v in ds}


if __name__ == "__main__":
    arrays = {f"{name}/{v}": a for name in RUNS for v, a in run(name).items()}
    arrays.update({f"{name}/{v}": a for name in DMFT for v, a in run_dmft(name).items()})
    np.savez_compressed(PATH, **arrays)
    print(f"wrote {PATH}: {len(arrays)} arrays")
