"""The lower bulk edge of weighted Wishart matrices

    A = (1/N) sum_mu c_mu x_mu x_mu^T,        x_mu ~ N(0, I_N) independent of the weights, mu = 1..M,

the form of the training loss' Hessian with ``c_mu = d2v(h_mu; y_mu)`` (Sarao Mannelli et al. 2020,
eq 4; ``prcy.hessian``). For large ``N`` the spectrum of ``A`` is that of its deterministic equivalent
(Silverstein & Bai 1995): the Stieltjes transform ``s(z) = int rho(l) dl / (l - z)`` solves

    z = -1/s + (1/N) sum_mu c_mu / (1 + c_mu s).

Below the spectrum ``s`` is real, positive and increasing in ``z`` (``s -> 0+`` as ``z -> -inf``), so the
lower edge is the largest value of the right-hand side ``z(s)`` on ``0 < s < s*``, ``s* = 1/max(-c_mu)``
(its first pole; ``s* = inf`` when no weight is negative), where ``z(s) -> -inf`` at both ends. With
``c_mu = 1`` this is Marchenko-Pastur's ``(1 - sqrt(M/N))^2``. In the parametrization of Sarao Mannelli et
al. 2020, eq 5, the same function is ``-Psi_alpha`` and the edge is ``Psi_alpha(lambda_bar)`` (up to their
sign and the factor 2 of their loss): the bulk edge of their BBP analysis, here with the empirical weights
in place of the 1RSB label law.

With the empirical weights of a run's samples, ``lower_edge`` is the edge of the spectrum that a matrix with
the same weights and inputs independent of them would have. At a random start (``w`` independent of the
data) the inputs' part orthogonal to ``w`` and ``w0`` is independent of ``(h, y)``, so the edge is that of
the Hessian's bulk up to ``O(N^{-2/3})`` fluctuations, and the teacher direction can carry an outlier below
it (the BBP spike). Along the dynamics ``w`` depends on the data; the edge is then the bulk edge of the
random-matrix model that [SBCKUZ20] use for the threshold states (labels i.i.d. from the current law).
A weight much more negative than the rest gives an edge set by that one sample (a component of mass
``1/N``), as for the actual matrix, whose lowest eigenvalue it then is.
"""
import numpy as np
from scipy.optimize import minimize_scalar

from prcy.analysis.theory import ConvergenceError
from prcy.options import check_integer

GRID = 40                # points per interval between poles in the search of z(s)'s maxima (then Brent)
MAX_OUTLIERS = 8         # single-sample components (poles) searched below the bulk


def stieltjes_inverse(s, weights, n):
    """``z(s) = -1/s + (1/n) sum_mu c_mu / (1 + c_mu s)`` (module docstring), elementwise in ``s``."""
    s = np.asarray(s, dtype=float)
    c = np.asarray(weights, dtype=float)
    return -1.0 / s + np.sum(c[:, None] / (1.0 + np.outer(c, s.ravel())), axis=0).reshape(s.shape) / n


def lower_edge(weights, n, *, max_outliers=MAX_OUTLIERS):
    """``(edge, outliers)``: the lower edge of the bulk of ``(1/n) sum_mu c_mu x_mu x_mu^T``
    (``x_mu ~ N(0, I_n)``) for the weights ``c_mu``, and how many eigenvalues lie below it (module
    docstring); the edge is 0 when ``M < n`` and no weight is negative (the null space). Raises
    ``ConvergenceError`` when no edge is found past ``max_outliers`` single-sample components."""
    n = check_integer("n", n, low=1)
    max_outliers = check_integer("max_outliers", max_outliers, low=0)
    c = np.asarray(weights, dtype=float).ravel()
    if c.size == 0 or not np.all(np.isfinite(c)):
        raise ValueError(f"weights: {c.size} values, finite: {bool(np.all(np.isfinite(c)))}; allowed: a "
                         f"non-empty array of finite numbers")
    if c.min() >= 0 and c.size < n:
        return 0.0, 0
    poles = np.sort(-1.0 / c[c < 0])[:max_outliers + 1]
    # the intervals (0, s_1), (s_1, s_2), ...; past the last negative weight: up to a scale of the weights
    ends = np.r_[0.0, poles]
    if poles.size < max_outliers + 1:
        ends = np.r_[ends, ends[-1] + 1e3 / max(float(np.mean(np.abs(c))), 1e-300)]
    mean = float(c.sum()) / n               # the mean eigenvalue, trace / n: the bulk's edge lies below it
    negative = np.sort(c[c < 0])
    found = None
    for k in range(ends.size - 1):
        if k and (found is None or negative[k - 1] >= found[0]):
            break                            # a weight above the edge found gives no component below it
        lo, hi = ends[k], ends[k + 1]
        # geometric towards both ends (the maximum can sit far from the middle of a wide interval), not closer
        # than 1e-9 of the width to a pole, where 1 + c s loses its digits
        ends_u = np.logspace(-9, np.log10(0.5), GRID)
        u = np.unique(np.r_[np.linspace(0.0, 1.0, GRID + 2)[1:-1], ends_u, 1.0 - ends_u])
        s = lo + (hi - lo) * u
        z = stieltjes_inverse(s, c, n)
        peaks = np.flatnonzero((z[1:-1] > z[:-2]) & (z[1:-1] >= z[2:])) + 1
        if peaks.size:
            i = peaks[-1]
            best = minimize_scalar(lambda v: -float(stieltjes_inverse(np.array([v]), c, n)[0]),
                                   bounds=(s[i - 1], s[i + 1]), method="bounded", options={"xatol": 1e-15 * hi})
            edge = float(max(-best.fun, z[i]))
            if edge < mean:
                found = (edge, k)
    if found is None:
        raise ConvergenceError(f"lower_edge: no edge within the first {max_outliers} single-sample components of "
                               f"{c.size} weights", np.nan)
    return found
