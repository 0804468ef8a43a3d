#!/usr/bin/env python
"""The memory kernel from Gaussian integration by parts against the linear response, on the paths of
one march with a converged Langevin kernel (docs/benchmarks.md, "The response pass as matrix products").

    python benchmarks/dmft_ibp.py [T] [S]        # default T = 0.5, S = 2000

M_R(k, j) = alpha c^2 <D_k T(k, j)> = alpha c <(dg_k/dh_{j+1}) D_j>; dh_{j+1}/dchi_j = dt, so
M_R(k, j) = (alpha c / dt) <D_j dg_k/dchi_j> = (alpha c / dt) <g_k D_j w_j> with w = N^-1 chi = L^-T z
(Stein's lemma for F = D_j g_k; D_j does not depend on chi_j). Prints both estimators' cost, their
standard errors and the z-scores of their difference."""
import sys
import time

import numpy as np
from scipy.linalg import solve_triangular

from prcy import dmft
from prcy.kernels import dmft as kd, losses
T_ = float(sys.argv[1]) if len(sys.argv) > 1 else 0.5
S = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
sp = dmft.DMFTSpec.from_flat(problem="phase-retrieval", alpha=3.0, algorithm="langevin", temperature=T_, m0=0.2,
                             dt=0.02, t_max=2.0, samples=S, seed=1)
smp = dmft.draw_samples(sp)
K = sp.n_points
ref = dmft.solve(sp, threads=1)            # the fixed point's M_R, then one march on it
MR = np.ascontiguousarray(ref.M_R.values)
out = dmft._march(sp, MR, smp, 1, None, losses.capsule(sp.problem))
nut = np.ascontiguousarray(out["nu_hat"] + out["delta_nu"])
t0 = time.perf_counter()
lin, se, ess, _ = kd.response(out["D"], nut, sp.dt, sp.alpha, 1.0, stats=True, n_threads=1)
t_lin = time.perf_counter() - t0
t0 = time.perf_counter()
W = solve_triangular(out["L"].T, smp["Z"][:K], lower=False)   # L^{-T} z: N^{-1} chi
X = out["D"] * W
ibp = sp.alpha / sp.dt * (out["G"] @ X.T) / S
ibp = np.tril(ibp, -1)
t_ibp = time.perf_counter() - t0
# per-entry standard error of the IBP estimator
mask = np.tril(np.ones((K, K), bool), -1)
G, Xs = out["G"], X
se_ibp = np.zeros((K, K))
for k in range(K):
    c = G[k][None, :] * Xs[:k]                  # contributions for j < k
    se_ibp[k, :k] = sp.alpha / sp.dt * c.std(1, ddof=1) / np.sqrt(S)
d = (ibp - lin)[mask]
print(f"Langevin T={T_} S={S} K={K}: linear response {t_lin:.3f} s, IBP {t_ibp:.3f} s")
print(f"  |M_R| max {np.abs(lin).max():.3g}; median stderr linear {np.median(se[mask]):.3g}, IBP {np.median(se_ibp[mask]):.3g} "
      f"(ratio {np.median(se_ibp[mask] / se[mask]):.1f})")
z = d / np.sqrt(se[mask] ** 2 + se_ibp[mask] ** 2)
print(f"  IBP - linear: mean z {z.mean():.3f}, sd z {z.std():.3f}, max |z| {np.abs(z).max():.2f}; "
      f"row sums (memory integral) rel. diff {np.abs((ibp - lin).sum(1)).max() / np.abs(lin.sum(1)).max():.3f}")
