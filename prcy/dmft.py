"""DMFT driver: the fixed point of the effective process of Mignacco, Urbani & Zdeborová 2021
(section 4, appendix A) for GD, multi-pass SGD, persistent SGD and Langevin dynamics, on the sphere
or with a ridge; and of the Gaussian mixtures of Mignacco, Krzakala, Urbani & Zdeborová 2020 (eqs
15-25, ridge only), whose problem supplies the pieces of the same process (``draw_samples``,
``DMFTSpec.amplitude``, ``_q0``; docs/dmft.md, "The mixture DMFT").

``solve(spec)`` (or ``solve(alpha=..., algorithm=..., ...)`` with the flat names of ``prcy.simulate``)
returns an ``xarray.Dataset`` on the grid ``t_k = k dt``, the ``time`` of a simulation with
``lr = dt``. The kernels are ``prcy.kernels.dmft``. Equations, the iteration (march, response pass,
Anderson mixing, backtracking, horizon windows), replicas, checkpoints, the response diagnostics and
the kicked response: docs/dmft.md.
"""
from __future__ import annotations

import functools
import json
import math
import os
import time as _time
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import xarray as xr
from threadpoolctl import threadpool_limits

from prcy._xp import array_api_boundary, real_array
from prcy.interrupt import run_interruptible
from prcy.options import (CLASSIFIERS, DMFT, MAX_DMFT_POINTS, MIXTURES, SIMULATION, TARGET_SE_MIN_REPLICAS, applies,
                          check_applicable, check_group, check_number, context, defaults, flat_paths)
from prcy.specs import Algorithm, Constraint, Initialization, SpecForms, check_types, flat_values

SCHEMA = "prcy-dmft/1"
_D = defaults(DMFT)
# built-in losses with a kink: their d2v drops the kink's delta function, which hat_lambda and M_R need, and the
# kicked response does not restore it (its source is D(t') = s d2v(t')); docs/dmft.md, "The mixture DMFT"
KINKED_LOSSES = ("hinge", "quadratic-hinge")

VARIABLES = {
    "magnetization": dict(long_name="magnetization m(t)", units="1"),
    "nu_hat": dict(long_name="Lagrange multiplier nu_hat(t) (ridge: lambda)", units="1"),
    "delta_nu": dict(long_name="delta_nu(t) = alpha c <D>, D = s d2v in h (a mixture's hat_lambda, Mignacco et al. "
                               "2020 eq 19)", units="1"),
    "mu": dict(long_name="mu(t) = alpha <g h0>, g = c s dv in h (a mixture's mu, Mignacco et al. 2020 eq 19)",
               units="1"),
    "M_C": dict(long_name="memory kernel M_C(t, t')", units="1"),
    "M_R": dict(long_name="memory kernel M_R(t, t') (t' < t)", units="1"),
    "M_R_stderr": dict(long_name="Monte Carlo standard error of M_R(t, t') from its per-sample contributions",
                       units="1"),
    "M_R_ess": dict(long_name="effective number of samples behind M_R(t, t'): (sum |x|)^2 / sum x^2 over the "
                              "per-sample contributions x", units="1"),
    "M_R_row_ess": dict(long_name="effective number of samples behind the row M_R(t, .): the same with each "
                                  "sample's sum over t' of |x(t, t')|", units="1"),
    "C": dict(long_name="correlation C(t, t') = w(t).w(t')/N", units="1"),
    "R": dict(long_name="response R(t, t') of w(t) to a kick at t' (R(t, t) = 1)", units="1"),
    "norm": dict(long_name="squared norm C(t, t)", units="1"),
    "train_loss": dict(long_name="training loss per sample <v> (eq 20; a mixture's e(t) of Mignacco et al. 2020 "
                                 "eq 21 is alpha times it)", units="1"),
    "train_error": dict(long_name="training error per sample <err>: the loss's per-sample test error on the "
                                  "training samples (classification: the fraction misclassified)", units="1"),
    "train_accuracy": dict(long_name="training accuracy 1 - train_error (classification problems; Mignacco et al. "
                                     "2020 eq 22)", units="1"),
    "test_error": dict(long_name="generalization error (formula of the problem from m and C(t, t))", units="1"),
    "residual": dict(long_name="fixed-point residual of the iteration", units="1"),
    "damping_used": dict(long_name="damping applied after the iteration", units="1"),
    "response_clamped": dict(long_name="kicked deviations (of samples with D(t') != 0) set back to |u| <= KICK_CAP "
                                       "in the iteration's response pass (response_kick > 0)", units="1"),
    "magnetization_iterates": dict(long_name="m(t) after each iteration (NaN beyond its horizon window)", units="1"),
    "window_end": dict(long_name="end of the horizon window the iteration solved for (solver.window)", units="steps * lr"),
    "iteration_seconds": dict(long_name="wall time of the iteration (march and response pass over its horizon "
                                        "window); seconds_per_iteration is their mean", units="s"),
}


@dataclass(frozen=True)
class Solver:
    """Numerical settings: grid step ``dt`` (default ``lr``; for SGD the grid step is the SGD step, so
    ``dt = lr``), horizon ``t_max``, ``samples`` of the effective process per iteration, ``damping``
    (weight of the old iterate, in [0, 1)), ``max_iter``, convergence ``tol`` on the residual, the
    form of ``nu_hat`` on the sphere (``"A.29"`` from the kernels, ``"A.19"`` from the samples), the
    magnetization equation (``"eq14"``: ``dm/dt = -nu_hat m - mu``; ``"A.23"``: ``nu_hat + delta_nu``
    as printed in appendix A), persistent SGD's selection ``chain`` (``"flow"``: the continuous-time chain
    seen at the grid times; ``"steps"``: the simulations' chain, one step per grid point, ``dt = lr``;
    ``draw_samples``), the spherical constraint ``sphere`` (``"multiplier"``: the Lagrange multiplier
    ``nu_hat`` of ``nu_form``; ``"projection"``: the simulations' projection after every grid step,
    ``prcy.kernels.dmft.march``'s ``project``), ``adaptive`` damping, the depth of Anderson mixing (``anderson``, 0 for
    plain damped iteration), the root ``seed``, and ``replicas``: ``None`` for one solve, or the number
    of independent solves (replicas ``first_replica, ..., first_replica + replicas - 1``) whose random
    numbers come from ``SeedSequence(seed, spawn_key=(replica,))``; ``target_se``: ``None``, or add
    batches of ``replicas`` further replicas until the standard error of ``m(t_max)`` over the converged
    replicas (at least ``TARGET_SE_MIN_REPLICAS`` of them) is below it, no batch started after
    ``time_budget`` seconds (``None``: no limit);
    ``antithetic``: sample ``S/2 + i`` is sample ``i`` with ``-h0`` and the same ``h(0)``, normals and
    selection (each sample keeps its law, so the estimators stay unbiased; docs/validation.md 7f);
    ``response_kick``: 0 for the linear response of A.22, or the size of the kicks of ``h`` whose
    finite-difference response replaces it (``prcy.kernels.dmft.response``; for losses with hilltops,
    ``d2v < 0``, whose linear response is heavy-tailed; docs/dmft.md); ``window``: ``None`` to iterate on the whole horizon at
    once, or a time span: the fixed point is then found on ``[0, window]``, then on
    ``[0, 2 window]`` with the earlier rows of ``M_R`` frozen, and so on (the equations are causal, so
    this is the same fixed point; docs/dmft.md, "Horizon windows")."""
    dt: float | None = _D["dt"]
    t_max: float = _D["t_max"]
    samples: int = _D["samples"]
    damping: float = _D["damping"]
    max_iter: int = _D["max_iter"]
    tol: float = _D["tol"]
    nu_form: str = _D["nu_form"]
    m_equation: str = _D["m_equation"]
    chain: str = _D["chain"]
    sphere: str = _D["sphere"]
    adaptive: bool = _D["adaptive"]
    anderson: int = _D["anderson"]
    seed: int = _D["seed"]
    replicas: int | None = _D["replicas"]
    first_replica: int = _D["first_replica"]
    target_se: float | None = _D["target_se"]
    time_budget: float | None = _D["time_budget"]
    antithetic: bool = _D["antithetic"]
    response_kick: float = _D["response_kick"]
    window: float | None = _D["window"]

    def __post_init__(self):
        check_group(self, "solver", DMFT)
        if self.replicas is None and self.first_replica:
            raise ValueError(f"first_replica: {self.first_replica!r} without replicas; allowed: 0, or give "
                             f"replicas as well")
        if self.antithetic and self.samples % 2:
            raise ValueError(f"samples: {self.samples!r} is odd; antithetic pairs need an even number of samples")
        if self.target_se is not None and (self.replicas or 0) < 2:
            raise ValueError(f"target_se: {self.target_se!r} needs replicas >= 2 (the first batch and the size of "
                             f"the batches added), got replicas {self.replicas!r}")
        if self.time_budget is not None and self.target_se is None:
            raise ValueError(f"time_budget: {self.time_budget!r} without target_se; the budget bounds the replicas "
                             f"that target_se adds")

    def replica_indices(self) -> range | None:
        """The replicas' indices (``None`` for a single solve)."""
        if self.replicas is None:
            return None
        return range(self.first_replica, self.first_replica + self.replicas)


GROUPS = {"algorithm": Algorithm, "constraint": Constraint, "init": Initialization, "solver": Solver}
FLAT = flat_paths(DMFT)        # flat keyword -> (group or None, field)


@dataclass(frozen=True)
class DMFTSpec(SpecForms):
    """Everything that determines a DMFT solution (``N = infinity``: no ``n``, no data). The start is
    the problem's: the warm start ``m(0) = m0`` on the teacher problems; on a Gaussian mixture
    (``delta``, and ``onset`` on three clusters) the random start ``w(0) ~ N(0, R I)``, ``init.kind =
    "random"``, with ``m(0) = m0`` (0 by default) and ``R = init.variance``; ridge only."""
    problem: str = _D["problem"]
    alpha: float = _D["alpha"]
    loss: str | None = _D["loss"]  # as problem.loss of a simulation (prcy.problems.load_loss)
    delta: float = _D["delta"]
    onset: float = _D["onset"]
    algorithm: Algorithm = field(default_factory=Algorithm)
    constraint: Constraint = field(default_factory=Constraint)
    init: Initialization = field(default_factory=Initialization)
    solver: Solver = field(default_factory=Solver)
    groups: ClassVar[dict] = GROUPS
    options: ClassVar[dict] = DMFT

    def __post_init__(self):
        if self.algorithm.name not in DMFT["algorithm"].choices:    # the Algorithm group is the simulations'
            raise ValueError(f"algorithm: {self.algorithm.name!r} has no DMFT (AMP's theory is its state evolution, "
                             f"prcy.analysis.se_iterate); allowed: {', '.join(DMFT['algorithm'].choices)}")
        check_group(self, None, DMFT)
        check_types(self, GROUPS)
        for group in ("algorithm", "init"):       # the simulation's options the DMFT does not solve for
            for row in SIMULATION.values():
                if row.group == group and row.name not in DMFT:
                    value, own = getattr(getattr(self, group), row.attribute), row.default_for(self.problem)
                    if value == row.default and own != row.default:       # the problem's (a mixture's random start)
                        object.__setattr__(self, group, replace(getattr(self, group), **{row.attribute: own}))
                    elif value != own:
                        raise ValueError(f"{row.name}: {value!r} is not solved by the DMFT of {self.problem}; "
                                         f"allowed: {own!r}")
        check_applicable(DMFT, flat_values(self, FLAT))
        if self.problem in MIXTURES and self.constraint.kind != "ridge":
            raise ValueError(f"constraint: {self.constraint.kind!r} is not allowed on {self.problem}; allowed: ridge "
                             f"(the mixture DMFT, Mignacco et al. 2020 eq 15, has no spherical constraint)")
        a, s = self.algorithm, self.solver
        if a.name == "sgd" and s.dt is not None and not math.isclose(s.dt, a.lr, rel_tol=1e-12):
            raise ValueError(f"dt: {s.dt!r} differs from lr = {a.lr!r}; allowed for sgd: dt = lr (the "
                             f"SGD-inspired discretization draws a fresh batch at every grid step)")
        if a.name == "psgd" and s.chain == "steps" and s.dt is not None and not math.isclose(s.dt, a.lr,
                                                                                            rel_tol=1e-12):
            raise ValueError(f"dt: {s.dt!r} differs from lr = {a.lr!r}; allowed with chain steps: dt = lr (one step "
                             f"of the selection chain per grid point)")
        if self.n_points < 3:
            raise ValueError(f"t_max: {s.t_max!r} with dt = {self.dt!r} gives {self.n_points} grid points; "
                             f"allowed: t_max >= 2 dt")
        if self.n_points > MAX_DMFT_POINTS:
            raise ValueError(f"t_max: {s.t_max!r} with dt = {self.dt!r} gives {self.n_points} grid points; "
                             f"allowed: t_max / dt + 1 <= {MAX_DMFT_POINTS} (the memory kernels are K x K)")
        if a.name == "psgd" and s.chain == "flow" and self.dt > a.persistence * a.batch_fraction:
            raise ValueError(f"dt: {self.dt!r} is longer than the persistence time ell tau = "
                             f"{a.persistence * a.batch_fraction:g} of the selection chain; allowed: a smaller dt")

    @property
    def dt(self) -> float:
        return self.solver.dt if self.solver.dt is not None else self.algorithm.lr

    @property
    def amplitude(self) -> float:
        """``a`` of the loss's argument ``a h~`` (``prcy.kernels.dmft``): ``sqrt(delta)`` on a mixture, else 1."""
        return math.sqrt(self.delta) if self.problem in MIXTURES else 1.0

    @property
    def n_points(self) -> int:
        return int(round(self.solver.t_max / self.dt)) + 1

    def times(self) -> np.ndarray:
        return np.arange(self.n_points) * self.dt

    def window_ends(self) -> list[int]:
        """The number of grid points solved for in each horizon window: ``[K]`` without a ``window``,
        else ``1 + w, 1 + 2w, ..., K`` with ``w = max(1, round(window / dt))`` grid steps."""
        K, window = self.n_points, self.solver.window
        if window is None:
            return [K]
        w = max(1, int(round(window / self.dt)))
        return list(range(1 + w, K, w)) + [K]

    def temperatures(self) -> np.ndarray:
        """``T(t_k)`` from the algorithm's (piecewise-constant) schedule."""
        steps = np.arange(self.n_points)
        out = np.zeros(self.n_points)
        for start, T in self.algorithm.schedule():
            out[steps >= int(round(start / self.dt))] = T
        return out


# ----------------------------------------------------------------------------------------------
# random numbers (drawn once per solve) and the initial guess

STREAMS = ("h0", "h_init", "normals", "selection", "clusters")     # one spawned generator each, in this order


def draw_samples(spec: DMFTSpec, replica: int | None = None) -> dict:
    """``h0``, ``h_init`` (variance ``_q0``), ``Z`` (``K x S`` normals) and the selection ``sel`` (``K x S``
    uint8, or None for full batch), each from its own generator: ``Generator(PCG64(child))`` with the
    children of the root ``SeedSequence(seed)`` (replica ``i``: ``SeedSequence(seed, spawn_key=(i,))``)
    spawned in the order of ``STREAMS``. ``Z`` and the selection's uniforms are drawn grid point after
    grid point, so a solve over a longer horizon shares the random numbers of its first grid points
    with a shorter one; and the labels ``y`` of ``h0``. With ``solver.antithetic`` half the samples are
    drawn and the other half are their mirror images, ``-h0`` with the same ``h(0)``, normals and
    selection.

    A Gaussian mixture also draws each sample's cluster ``c`` (``prcy.problems.CLUSTERS``, from the
    stream ``clusters``), labels it ``y = y(c)`` and returns ``c`` and, as ``h0``, the kernels' quenched
    variable ``c/sqrt(delta) + h0`` (``prcy.kernels.dmft``), which a mirror image negates: ``-c`` and
    ``-h0``. On three clusters a mirror pair has the same label and, at ``m = 0``, the same path, so with
    ``antithetic`` the sample average of ``mu`` vanishes there and ``m(0) = 0`` stays 0 as for
    ``d -> infinity`` (independent samples break the symmetry by their Monte Carlo noise)."""
    from prcy.kernels import dmft as kd
    from prcy.kernels.problems import labels
    from prcy.problems import CLUSTERS

    K, S = spec.n_points, spec.solver.samples
    if spec.solver.antithetic:
        S //= 2
    a = spec.algorithm
    root = (np.random.SeedSequence(spec.solver.seed) if replica is None
            else np.random.SeedSequence(spec.solver.seed, spawn_key=(replica,)))
    rng = {name: np.random.Generator(np.random.PCG64(child))
           for name, child in zip(STREAMS, root.spawn(len(STREAMS)))}
    h0 = rng["h0"].standard_normal(S)
    h_init = math.sqrt(_q0(spec)) * rng["h_init"].standard_normal(S)
    Z = kd.empty_aligned((K, S))          # on a cache line, like the march's paths
    rng["normals"].standard_normal(out=Z)
    sel = None
    if a.name in ("sgd", "psgd"):
        ell = a.batch_fraction
        U = rng["selection"].random((K, S))
        sel = np.empty((K, S), dtype=np.uint8)
        if a.name == "sgd":
            sel[:] = U < ell
        else:
            if spec.solver.chain == "steps":       # the simulations' chain, one step per grid point (dt = lr)
                p_on, p_off = a.switching_probabilities()
            else:
                # the continuous-time chain (rates 1/tau on, (1-ell)/(ell tau) off) seen at the grid times:
                # exact transition probabilities over dt
                decay = -math.expm1(-spec.dt / (ell * a.persistence))
                p_on, p_off = ell * decay, (1 - ell) * decay
            sel[0] = U[0] < ell
            for k in range(1, K):
                prev = sel[k - 1].astype(bool)
                sel[k] = np.where(prev, U[k] >= p_off, U[k] < p_on)
    c = None
    if spec.problem in MIXTURES:
        values, weights = CLUSTERS[spec.problem]
        c = rng["clusters"].choice(values, size=S, p=weights)
    if spec.solver.antithetic:
        h0, h_init, Z_half = np.concatenate([h0, -h0]), np.concatenate([h_init, h_init]), Z
        Z = kd.empty_aligned((K, 2 * S))
        Z[:, :S], Z[:, S:] = Z_half, Z_half
        sel = None if sel is None else np.hstack([sel, sel])
        c = None if c is None else np.concatenate([c, -c])
    if c is None:
        return {"h0": h0, "y": labels(spec.problem, h0), "h_init": h_init, "Z": Z, "sel": sel}
    return {"h0": c / spec.amplitude + h0, "c": c, "y": labels(spec.problem, c), "h_init": h_init, "Z": Z,
            "sel": sel}


def _q0(spec: DMFTSpec) -> float:
    """The variance of ``h(0)``: ``1 - m0^2`` on the sphere, 1 with a ridge (eq C.2's warm start), ``R`` for a
    random start (a mixture's, eq 17)."""
    if spec.constraint.kind == "sphere":
        return 1.0 - spec.init.m0 ** 2
    return spec.init.variance if spec.init.kind == "random" else 1.0


# ----------------------------------------------------------------------------------------------
# the iteration

JITTER = 1e-10
# below this effective number of samples behind the memory kernel at some time (``M_R_row_ess``),
# ``prcy info`` warns that the response is heavy-tailed and M_R not resolved at the solve's sample size
# (docs/dmft.md)
ESS_WARN = 30.0
# response_kick > 0: bound on a kicked deviation of h (prcy.kernels.dmft.response's cap)
KICK_CAP = 10.0
MAX_BACKTRACKS = 5
MAX_SHORTENED = 5      # shortened iterations in a row after which one more is diverged: the iteration runs away
M_RUNAWAY = 1e6        # |m(t)| beyond this is a runaway path (m is an overlap of order one), like a non-finite one
MAX_DAMPING = 0.9      # adaptive damping never freezes the iterate
# the response pass keeps the singular values of M_R's column blocks above min(tol, RANK_TOL_MAX) times
# the largest (prcy.kernels.dmft.response's rank_tol): M_R moves by about 1e-3 of that, far below the
# convergence tolerance (docs/dmft.md, "Cost")
RANK_TOL_MAX = 1e-8


def _resolve_loss(spec: DMFTSpec, loss=None) -> tuple:
    """``(capsule, name recorded in the file)`` of the loss a solve of ``spec`` runs: ``loss`` (a name or a
    capsule), else ``spec.loss`` or the problem's own, with the spec's ``onset`` (``prcy.problems.resolve_loss``);
    ``KINKED_LOSSES`` are refused."""
    from prcy.problems import resolve_loss

    loss = loss if loss is not None else spec.loss
    if isinstance(loss, str) and loss in KINKED_LOSSES:
        raise ValueError(f"loss: {loss!r} is not allowed in the DMFT: its curvature at the kink, a delta function, is "
                         f"missing from hat_lambda and M_R (docs/dmft.md, \"The mixture DMFT\"); allowed: a "
                         f"twice-differentiable loss")
    return resolve_loss(spec.problem, loss, onset=spec.onset)


def _rows(x: np.ndarray | None, k: int) -> np.ndarray | None:
    """The first ``k`` rows of ``x`` (grid points first), contiguous; ``None`` stays ``None``."""
    return None if x is None else np.ascontiguousarray(x[:k])


def _march(spec: DMFTSpec, MR: np.ndarray, samples: dict, n_threads, abort, loss, k=None) -> dict:
    """One march of all samples with the memory kernel ``MR`` (``prcy.kernels.dmft.march``) over the
    first ``k`` grid points (default all; the march is causal, so this is the start of the full
    march); ``loss``: the solve's ``"prcy.Loss.v2"`` capsule (``prcy.problems.resolve_loss``)."""
    from prcy.kernels import dmft as kd

    a, c = spec.algorithm, spec.constraint
    k = spec.n_points if k is None else k
    form = "ridge" if c.kind == "ridge" else spec.solver.nu_form
    with np.errstate(all="ignore"):
        out = kd.march(loss, alpha=spec.alpha,
                       grad_scale=a.grad_scale, dt=spec.dt,
                       m0=spec.init.m0, q0=_q0(spec), nu_form=kd.NU_FORMS[form], ridge=c.ridge,
                       m_with_delta_nu=spec.solver.m_equation == "A.23", temps=_rows(spec.temperatures(), k),
                       jitter_rel=JITTER, MR=np.ascontiguousarray(MR[:k, :k]), h_init=samples["h_init"],
                       h0=samples["h0"], y=samples["y"], Z=_rows(samples["Z"], k), sel=_rows(samples["sel"], k),
                       amplitude=spec.amplitude, n_threads=n_threads, abort=abort, project=_projects(spec))
    if _projects(spec):          # the kernels' m is that of the unprojected weights v = w / B
        out["m_v"] = out["m"]
        out["m"] = out["scale"] * out["m_v"]
    # finite but astronomically large paths (a kernel blown up by the iteration) are diverged too
    runaway = np.flatnonzero(~(np.abs(out["m"]) <= M_RUNAWAY))
    if runaway.size and (out["bad_step"] < 0 or runaway[0] < out["bad_step"]):
        out["bad_step"] = int(runaway[0])
    return out


def _projects(spec: DMFTSpec) -> bool:
    """Whether the march projects back to the sphere after every grid step (``solver.sphere``)."""
    return spec.constraint.kind == "sphere" and spec.solver.sphere == "projection"


def _next_iterate(pairs: list, beta: float) -> np.ndarray:
    """Anderson mixing (type II) of the last pairs ``(x_i, F(x_i))``: with residuals ``r_i = F(x_i) - x_i``,
    ``x_new = x + beta r - (dX + beta dR) gamma``, ``gamma`` the least-squares fit of ``r`` by the
    differences ``dR``; one pair is plain damped mixing ``x + beta r``. The products are ``K^2`` by a few
    columns, on one BLAS thread: more would leave OpenBLAS's threads spinning for about 0.1 s after them,
    beside the next march (docs/benchmarks.md, "The iteration of a solve")."""
    x, g = pairs[-1]
    if len(pairs) == 1:
        return x + beta * (g - x)
    X = np.stack([p[0].ravel() for p in pairs], axis=1)
    R = np.stack([p[1].ravel() for p in pairs], axis=1) - X
    dX, dR = np.diff(X, axis=1), np.diff(R, axis=1)
    with threadpool_limits(1, user_api="blas"):
        gamma = np.linalg.lstsq(dR, R[:, -1], rcond=None)[0]
        new = X[:, -1] + beta * R[:, -1] - (dX + beta * dR) @ gamma
    return np.tril(new.reshape(x.shape), -1)


def residual(m_old: np.ndarray | None, MR_old: np.ndarray, m_new: np.ndarray, MR_new: np.ndarray) -> float:
    """``max(max |m_new - m_old|, max |MR_new - MR_old| / (1 + max |MR_new|))``: the change of the
    magnetization between two marches and the fixed-point defect of the memory kernel (inf without
    a previous ``m``)."""
    if m_old is None:
        return math.inf
    with np.errstate(all="ignore"):
        r = max(float(np.max(np.abs(m_new - m_old))),
                float(np.max(np.abs(MR_new - MR_old))) / (1.0 + float(np.max(np.abs(MR_new)))))
    return r if math.isfinite(r) else math.inf


def memory_parts(spec: DMFTSpec) -> dict[str, float]:
    """Estimated bytes of a solve of ``spec``, by part (for ``prcy.resources.check_memory``): the
    sample paths (normals, selection, fields, gradients, derivatives, and with ``response_kick`` the
    unkicked derivatives of the kicked pass: ``K x S`` each), the ``K x K``
    kernels of one solve (march, response pass, diagnostics, Anderson history) and, kept until the
    end, the ``K x K`` variables of every replica's dataset (twice while they are concatenated)."""
    K, S = spec.n_points, spec.solver.samples
    replicas = spec.solver.replicas or 1
    paths = 6 if spec.solver.response_kick > 0 else 5
    return {f"sample paths, {K} grid points x {S} samples": 8.0 * paths * K * S,
            f"kernels of one solve, {K} x {K}": 8.0 * (20 + 2 * (spec.solver.anderson + 1)) * K * K,
            f"datasets of {replicas} solve(s)": 8.0 * 2 * 6 * replicas * K * K}


CALIBRATION_POINTS = 257     # the calibration solve of seconds_per_iteration: grid points and samples
CALIBRATION_SAMPLES = 512
THREAD_EFFICIENCY = 0.9      # speed-up of n > 1 threads over one: 0.9 n (docs/dmft.md, "Cost": 1.82-1.85 at 2)


def seconds_per_iteration(spec: DMFTSpec, threads: int | None = None, loss=None) -> float:
    """Predicted wall time of one iteration of ``spec`` over its whole horizon with ``threads``: one
    march and one response pass of the same problem, loss and response on at most
    ``CALIBRATION_POINTS`` grid points and ``CALIBRATION_SAMPLES`` samples on one thread (after a tiny
    untimed one that loads the kernels; a fifth of a second together), scaled by the cost laws of
    docs/dmft.md, "Cost" (the march as ``K^2 S``, the response pass as ``K^3 S``) and divided by the
    speed-up of the threads (``THREAD_EFFICIENCY``). One thread is timed because on a machine whose
    cores are busy with other work the threads of a pass wait for each other at every grid step, which
    a short calibration would blow up; the prediction is for cores of one's own."""
    from prcy.kernels import parallel

    n_threads = parallel.n_threads(threads)
    capsule, _ = _resolve_loss(spec, loss)
    K, S = spec.n_points, spec.solver.samples

    def one(Kc: int, Sc: int) -> tuple[float, float]:
        small = replace(spec, solver=replace(spec.solver, t_max=(Kc - 1) * spec.dt, samples=Sc, replicas=None,
                                             first_replica=0, window=None, target_se=None, time_budget=None))
        samples, abort = draw_samples(small), np.zeros(1, dtype=np.int32)
        t0 = _time.perf_counter()
        out = _march(small, np.zeros((Kc, Kc)), samples, 1, abort, capsule)
        t1 = _time.perf_counter()
        _response_pass(small, out, samples, Kc, 1, abort, capsule, History.start(Kc, 0.0, ""), False)
        return t1 - t0, _time.perf_counter() - t1

    one(min(K, 9), min(S, 64))
    Kc, Sc = min(K, CALIBRATION_POINTS), min(S, CALIBRATION_SAMPLES)
    march, response = one(Kc, Sc)
    speedup = THREAD_EFFICIENCY * n_threads if n_threads > 1 else 1.0
    return (march * (K / Kc) ** 2 + response * (K / Kc) ** 3) * S / Sc / speedup


FORECAST_SECONDS = 60.0      # prcy dmft announces a solve predicted to take longer than this
TYPICAL_ITERATIONS = 10      # iterations a forecast assumes (3-8 in easy cases, 20-80 in hard ones; docs/dmft.md)


def forecast(spec: DMFTSpec, threads: int | None = None, loss=None) -> str | None:
    """One line with the predicted time per iteration (``seconds_per_iteration``) and how to make a
    solve cheaper, when ``TYPICAL_ITERATIONS`` iterations (fewer if ``max_iter`` is smaller) of every
    replica are predicted to take more than ``FORECAST_SECONDS``; else ``None``. A solve no larger than
    the calibration is not predicted."""
    from prcy.kernels import parallel

    K, S = spec.n_points, spec.solver.samples
    if K <= CALIBRATION_POINTS and S <= CALIBRATION_SAMPLES:
        return None
    per = seconds_per_iteration(spec, threads, loss)
    n, replicas = min(spec.solver.max_iter, TYPICAL_ITERATIONS), spec.solver.replicas or 1
    total = per * n * replicas
    if total <= FORECAST_SECONDS:
        return None
    ensemble, plural = (f" x {replicas} replicas" if replicas > 1 else ""), ("s" if n > 1 else "")
    return (f"predicted {per:.3g} s per iteration (K = {K} grid points, S = {S} samples, threads = "
            f"{parallel.n_threads(threads)}), {total / 60:.3g} min for {n} iteration{plural}{ensemble}; cheaper: "
            f"a larger --dt or a shorter --t-max (cost ~ K^3, K = t_max/dt + 1), fewer --samples (~ S), "
            f"--window for long horizons")


def iterations_left(residuals, tol: float, max_iter: int) -> int:
    """Iterations still to go, estimated from the geometric decay of the last (up to 5) finite residuals
    down to ``tol``, at most ``max_iter`` minus those done (all of them while the residual does not fall)."""
    done = len(residuals)
    bound = max(max_iter - done, 0)
    recent = [r for r in residuals[-5:] if math.isfinite(r) and r > 0]
    if len(recent) < 2 or recent[-1] >= recent[0]:
        return bound
    if recent[-1] < tol:
        return 0
    rate = (recent[-1] / recent[0]) ** (1.0 / (len(recent) - 1))
    return min(bound, math.ceil(math.log(tol / recent[-1]) / math.log(rate) - 1e-9))


def solve(spec: DMFTSpec | None = None, *, threads: int | None = None, checkpoint: str | os.PathLike | None = None,
          progress=None, loss=None, initial=None, announce=None, **options) -> xr.Dataset:
    """Solve the DMFT of ``spec`` (or of the flat ``options``) and return its dataset.

    One iteration = a march (``prcy.kernels.dmft.march``: everything but ``M_R`` at its fixed point
    for the current ``M_R``) and a response pass (``response``: the new ``M_R``, self-consistent in
    itself); the next ``M_R`` is ``d M_R + (1 - d) M_R,new``. The first iteration starts from A.1's
    ``M_R = 0``. Converged: ``residual`` (change of ``m`` and ``M_R`` between iterations) below ``tol``.

    ``loss``: a ``"prcy.Loss"`` capsule (any ``v`` with ``dv``, ``d2v``) instead of the problem's
    built-in loss (the file records ``loss = "user capsule"``).

    ``initial``: a warm start instead of A.1's ``M_R = 0`` (every replica starts from it): a ``K x K``
    array, or a DMFT dataset (or the path of its NetCDF file) on the same grid step, whose ``M_R``
    (replica mean for an ensemble) fills the times both grids share; the rest starts at 0. ``M_R`` on
    ``[0, t]`` depends only on earlier times, so a solve over a shorter horizon, or another replica, is a
    good start. The fixed point does not depend on the start, the iterate count does; a checkpoint, if
    one exists, wins over ``initial``. The file records ``initial_guess``.

    ``checkpoint``: a file written after every iteration (atomically); if it exists and belongs to the
    same spec, the solve resumes from it and ends bitwise where an uninterrupted solve ends.
    ``progress(iteration, residual)`` is called after every iteration; ``announce(line)``, if given, with
    the line of ``forecast`` before a solve predicted to take long. Bad parameters raise
    ``ValueError`` before any computation; a solve that diverges or does not converge returns normally
    with ``attrs["status"]`` saying so.

    ``replicas = R`` (in the spec or the options): ``R`` independent solves, one after the other, each
    with its own random numbers (replica ``i``: ``SeedSequence(seed, spawn_key=(i,))``), concatenated
    along a ``replica`` dimension; their mean and standard error: ``prcy.analysis.replica_summary``. Per replica:
    ``replica_status``, ``iterations``, ``final_residual``, ... (variables over ``replica``); the
    attribute ``status`` is ``converged`` only if every replica converged (else the worst:
    ``diverged``, then ``max_iter``). A checkpoint ``PATH`` becomes one file per replica,
    ``PATH.replica-<i>``, so an interrupted ensemble resumes at the replica and iteration it reached;
    ``progress`` gets ``replica=i`` as a keyword. Ctrl-C after some replicas finished raises
    ``EnsembleInterrupted`` (a ``KeyboardInterrupt``) whose ``dataset`` holds them.
    """
    from prcy.kernels import parallel
    from prcy.resources import check_memory

    if spec is None:
        spec = DMFTSpec.from_flat(**options)
    elif options:
        raise ValueError(f"give either a spec or options, not both (got {sorted(options)})")
    check_memory(memory_parts(spec), "samples, t_max or replicas, or a larger dt")
    n_threads = parallel.n_threads(threads)
    if loss is not None and spec.loss is not None:
        raise ValueError("loss: given both as a capsule and in the spec; give one")
    capsule, loss_name = _resolve_loss(spec, loss)
    guess, guess_name = _initial_guess(spec, initial)
    line = None if announce is None else forecast(spec, n_threads, capsule)
    if line is not None:
        announce(line)
    indices = spec.solver.replica_indices()
    if indices is None:
        ds = _solve_one(spec, None, n_threads, checkpoint, progress, capsule, guess, guess_name)
    else:
        runs, started, target, budget = [], _time.perf_counter(), spec.solver.target_se, spec.solver.time_budget
        try:
            while True:
                for i in range(indices.start + len(runs), indices.start + len(runs) + len(indices)):
                    path = None if checkpoint is None else Path(f"{checkpoint}.replica-{i}")
                    report = None if progress is None else functools.partial(progress, replica=i)
                    runs.append(_solve_one(spec, i, n_threads, path, report, capsule, guess, guess_name))
                if target is None:
                    break
                reason = _enough_replicas(runs, len(indices), target, budget, _time.perf_counter() - started)
                if reason is not None:
                    break
        except KeyboardInterrupt:
            if not runs:
                raise
            done = replace(spec, solver=replace(spec.solver, replicas=len(runs)))
            finished = _replica_dataset(runs, done.solver.replica_indices())
            finished.attrs.update(spec=done.to_json(), loss=loss_name)
            raise EnsembleInterrupted(finished) from None
        ds = _replica_dataset(runs, range(indices.start, indices.start + len(runs)))
        if target is not None:
            ds.attrs.update(target_se=target, target_se_outcome=reason)
    ds.attrs["loss"] = loss_name
    return ds


def _enough_replicas(runs: list, batch: int, target: float, budget: float | None, elapsed: float) -> str | None:
    """Why ``solve`` with ``target_se`` adds no further batch of replicas (``None``: it adds one): the
    standard error of ``m(t_max)`` (``prcy.analysis.replica_summary``) is below ``target`` over at least
    ``TARGET_SE_MIN_REPLICAS`` converged replicas, the time budget is spent, or no replica of the last
    batch converged (more of the same will not help)."""
    from prcy.analysis import replica_summary

    status = [r.attrs["status"] for r in runs]
    m_end = xr.Dataset({"magnetization": ("replica", [float(r["magnetization"][-1]) for r in runs]),
                        "replica_status": ("replica", status)})
    se = float(replica_summary(m_end)["standard_error"])
    if se < target and status.count("converged") >= TARGET_SE_MIN_REPLICAS:
        return f"reached: standard error {se:.3g} < {target:g} with {len(runs)} replicas"
    if budget is not None and elapsed >= budget:
        return f"not reached: time budget of {budget:g} s spent, standard error {se:.3g} with {len(runs)} replicas"
    if "converged" not in status[-batch:]:
        return f"not reached: no replica of the last batch converged, standard error {se:.3g}"
    return None


class EnsembleInterrupted(KeyboardInterrupt):
    """Ctrl-C during an ensemble after some replicas finished: ``dataset`` holds those replicas, an
    ensemble of its own (its spec says how many), ready to be written."""

    def __init__(self, dataset: xr.Dataset):
        super().__init__(f"interrupted after {dataset.sizes['replica']} finished replicas")
        self.dataset = dataset


def _initial_guess(spec: DMFTSpec, initial) -> tuple[np.ndarray, str]:
    """The first ``M_R`` of a solve (``solve``'s ``initial``) and how the file names it."""
    K = spec.n_points
    if initial is None:
        return np.zeros((K, K)), "A.1 (M_R = 0)"
    if isinstance(initial, (str, os.PathLike)):
        path = Path(initial)
        if not path.exists():
            raise ValueError(f"initial: {str(path)!r} does not exist; give a DMFT NetCDF file, a dataset or an array")
        from prcy.io import open_dataset

        try:
            ds = open_dataset(path)
        except ValueError as exc:
            raise ValueError(f"initial: {exc}") from None
        return _initial_guess(spec, ds)[0], f"M_R of {path.name}"
    if isinstance(initial, xr.Dataset):
        if "M_R" not in initial or "time" not in initial.coords:
            raise ValueError("initial: the dataset has no M_R over time; give a prcy DMFT dataset")
        t = initial["time"].values
        step = float(t[1] - t[0]) if t.size > 1 else spec.dt
        if not math.isclose(step, spec.dt, rel_tol=1e-9):
            raise ValueError(f"initial: the dataset's grid step {step:g} differs from the solve's dt {spec.dt:g}; "
                             f"a warm start needs the same grid step")
        MR = initial["M_R"]
        src = (MR.mean("replica") if "replica" in MR.dims else MR).transpose("time", "time_prime").values
        name = "M_R of a dataset"
    else:
        src = np.asarray(initial, dtype=float)
        if src.shape != (K, K):
            raise ValueError(f"initial: an array must be K x K = {K} x {K} (the solve's grid), got shape {src.shape}")
        name = "M_R of an array"
    if not np.isfinite(src).all():
        raise ValueError("initial: M_R has non-finite entries; a warm start must be finite")
    guess = np.zeros((K, K))
    n = min(K, src.shape[0])
    guess[:n, :n] = src[:n, :n]
    return guess, name


def _extend_guess(MR: np.ndarray, guess: np.ndarray, lo: int, e: int) -> None:
    """The starting rows ``lo <= k < e`` of a new horizon window: the initial guess where it has any
    (a warm start), else the last solved row shifted in time, ``M_R(t_k, t_k - s) = M_R(t_lo-1, t_lo-1 - s)``
    (a stationary continuation; it only shortens the iteration, the fixed point does not depend on it)."""
    last = MR[lo - 1, :lo - 1]
    for k in range(lo, e):
        if not guess[k].any():
            MR[k, :k] = 0.0
            MR[k, k - lo + 1:k] = last


def _after_converged_window(MR: np.ndarray, guess: np.ndarray, ends: list[int], w: int) -> tuple[int, str]:
    """Window ``w`` has converged: the solve is converged after the last window, else the next
    window's rows of ``MR`` are started (``_extend_guess``) and it is the one to solve."""
    if w == len(ends) - 1:
        return w, "converged"
    _extend_guess(MR, guess, ends[w], ends[w + 1])
    return w + 1, "max_iter"


@dataclass
class History:
    """The iterations of one solve so far: what its dataset reports over ``iteration`` and what its
    checkpoint stores besides ``M_R``."""
    initial_guess: str                  # how the first M_R was chosen (the attribute initial_guess)
    damping: float                      # the damping of the next mixing step (adapted with solver.adaptive)
    stderr: np.ndarray                  # M_R_stderr and M_R_ess (K x K), M_R_row_ess (K): the last response
    ess: np.ndarray                     # pass's diagnostics, over the windows solved so far
    row_ess: np.ndarray
    diagnosed: bool = True              # whether those are the last response pass's (passes predicted not to
                                        # be the last one run without them: _solve_one)
    residual: list = field(default_factory=list)        # per iteration: the fixed-point residual,
    damping_used: list = field(default_factory=list)    # the damping applied,
    clamped: list = field(default_factory=list)         # kicked deviations set back,
    m: list = field(default_factory=list)               # m(t) (NaN beyond the window),
    window_end: list = field(default_factory=list)      # the grid points solved for,
    seconds: list = field(default_factory=list)         # the wall time
    aa: list = field(default_factory=list)              # Anderson pairs (M_R, F(M_R)) of the current window
    good: np.ndarray | None = None      # the last M_R whose march stayed finite and tame
    shortened: int = 0                  # iterations in a row whose step had to be shortened

    @classmethod
    def start(cls, K: int, damping: float, initial_guess: str) -> "History":
        return cls(initial_guess, damping, np.full((K, K), np.nan), np.full((K, K), np.nan), np.full(K, np.nan))

    def record(self, residual: float, damping: float, clamped: int, m: np.ndarray, window_end: int,
               seconds: float) -> None:
        """Append an iteration."""
        self.residual.append(residual)
        self.damping_used.append(damping)
        self.clamped.append(clamped)
        self.m.append(m)
        self.window_end.append(window_end)
        self.seconds.append(seconds)


def _solve_one(spec: DMFTSpec, replica: int | None, n_threads: int, checkpoint, progress, capsule,
               guess: np.ndarray, guess_name: str) -> xr.Dataset:
    """One solve with the random numbers of ``replica`` (``None``: the root seed's) from ``guess``
    (named ``guess_name``), or from its checkpoint, which records the guess it began from."""
    from prcy.io import atomic_path

    K = spec.n_points
    samples = draw_samples(spec, replica)
    history = History.start(K, spec.solver.damping, guess_name)
    MR = guess.copy()
    if checkpoint is not None and Path(checkpoint).exists():
        MR, history = _load_checkpoint(spec, replica, checkpoint)
    ends = spec.window_ends()
    # the window being solved: the one of the last iteration, or the next one if that converged
    w = ends.index(history.window_end[-1]) if history.window_end else 0
    status, bad, out, backtracks = "max_iter", None, None, 0
    if history.residual and history.residual[-1] < spec.solver.tol:
        w, status = _after_converged_window(MR, guess, ends, w)
    abort = np.zeros(1, dtype=np.int32)
    while True:
        t0 = _time.perf_counter()
        e, lo = ends[w], (ends[w - 1] if w else 0)
        out = run_interruptible(abort, _march, spec, MR, samples, n_threads, abort, capsule, k=e)
        iteration = len(history.residual)
        if out["bad_step"] >= 0:
            if history.good is None or backtracks >= MAX_BACKTRACKS or history.shortened >= MAX_SHORTENED:
                status, bad = "diverged", (iteration, out["bad_step"])
                break
            # the step from the last M_R whose paths stayed finite and tame went too far: halve it
            backtracks += 1
            MR = np.where(np.isfinite(MR), 0.5 * (MR + history.good), history.good)
            history.aa = []
            history.damping = 0.5 * (1.0 + history.damping)
            continue
        history.shortened = history.shortened + 1 if backtracks else 0
        history.good, backtracks = MR, 0
        if status == "converged" or iteration >= spec.solver.max_iter:
            break                      # the last march gives the functions of the final M_R
        # the diagnostics cost a pass 5-40% more (docs/dmft.md, "Cost"): only on a pass predicted to be
        # the last (the last window's convergence, or max_iter), and on the converging pass of the last window
        # again if that was not foreseen
        last_window = w == len(ends) - 1
        left = (iterations_left(history.residual, spec.solver.tol, spec.solver.max_iter) if last_window
                else spec.solver.max_iter - iteration)
        stats = left <= 1
        F, clamped = run_interruptible(abort, _response_pass, spec, out, samples, e, n_threads, abort,
                                       capsule, history, stats)
        x = MR[:e, :e]
        F[:lo] = x[:lo]                # the rows of earlier windows are final
        m_prev = history.m[-1][:e] if history.m and history.window_end[-1] == e else None
        res = residual(m_prev, x, out["m"], F)
        if res < spec.solver.tol and not stats and last_window:
            run_interruptible(abort, _response_pass, spec, out, samples, e, n_threads, abort, capsule, history, True)
        grew = _adapt_damping(spec.solver, history, res, m_prev)
        d = history.damping
        MR = MR.copy()
        if res < spec.solver.tol:
            d = 0.0
            MR[:e, :e] = F
            history.aa = []
            w, status = _after_converged_window(MR, guess, ends, w)
        else:
            MR[:e, :e] = _anderson_step(history, x, F, grew, spec.solver.anderson)
        history.record(res, d, clamped, np.concatenate([out["m"], np.full(K - e, np.nan)]), e,
                       _time.perf_counter() - t0)
        if checkpoint is not None:
            _save_checkpoint(spec, replica, checkpoint, MR, history, atomic_path)
        if progress is not None:
            progress(iteration + 1, res)
    if not history.diagnosed:
        if status == "diverged" and history.good is not None and history.window_end:
            # the last response pass ran on the march of the last good M_R: the two again, with the diagnostics
            e = history.window_end[-1]
            last = run_interruptible(abort, _march, spec, history.good, samples, n_threads, abort, capsule, k=e)
            run_interruptible(abort, _response_pass, spec, last, samples, e, n_threads, abort, capsule, history, True)
        else:           # resumed with a smaller max_iter than it had done: that pass is not known
            history.stderr[:], history.ess[:], history.row_ess[:] = np.nan, np.nan, np.nan
    return _dataset(spec, replica, out, MR, history, status, bad, n_threads)


def _response_pass(spec: DMFTSpec, out: dict, samples: dict, e: int, n_threads: int, abort, capsule,
                   history: History, stats: bool) -> tuple[np.ndarray, int]:
    """``F(M_R)`` on the first ``e`` grid points from the march ``out`` (``prcy.kernels.dmft.response``,
    linear or kicked), with ``stats`` its diagnostics stored in ``history`` (``history.diagnosed`` says
    whether it has the last pass's); and how many kicked deviations were set back. ``F`` does not depend on
    ``stats``, bit for bit."""
    from prcy.kernels import dmft as kd

    nut = np.ascontiguousarray(out["nu_hat"] + out["delta_nu"])
    clamped = np.zeros(1, dtype=np.int64)
    got = kd.response(
        out["D"], nut, spec.dt, spec.alpha, spec.algorithm.grad_scale, n_threads=n_threads, abort=abort, stats=stats,
        kick=spec.solver.response_kick, loss=capsule, H=out["H"], h0=samples["h0"], y=samples["y"],
        m=out.get("m_v", out["m"]), sel=_rows(samples["sel"], e), amplitude=spec.amplitude, cap=KICK_CAP,
        clamped=clamped, project_scale=out["scale"] if _projects(spec) else None,
        rank_tol=min(spec.solver.tol, RANK_TOL_MAX))
    history.diagnosed = stats
    if not stats:
        return got, int(clamped[0])
    F, stderr, ess, row_ess = got
    history.stderr[:e, :e], history.ess[:e, :e], history.row_ess[:e] = stderr, ess, row_ess
    return F, int(clamped[0])


def _adapt_damping(solver: Solver, history: History, res: float, m_prev: np.ndarray | None) -> bool:
    """Whether the residual grew by more than 1% since the last iteration of the same window; with
    ``solver.adaptive`` the damping then moves halfway to 1 (at most ``MAX_DAMPING``), else halfway back
    to ``solver.damping``."""
    last = history.residual[-1] if history.residual else math.inf
    comparable = m_prev is not None and math.isfinite(last)
    grew = comparable and res > 1.01 * last
    if solver.adaptive and comparable:
        if grew:
            history.damping = min(MAX_DAMPING, 0.5 * (1.0 + history.damping))
        else:
            history.damping = max(solver.damping, 0.5 * (history.damping + solver.damping))
    return grew


def _anderson_step(history: History, x: np.ndarray, F: np.ndarray, grew: bool, depth: int) -> np.ndarray:
    """The next ``M_R`` of the window from the pair ``(x, F(x))``: Anderson mixing over the last
    ``depth + 1`` pairs with the damping ``history.damping``, restarted from the current pair when the
    residual grew, ``F`` is not finite, or the differences cannot be fitted."""
    if grew or not np.isfinite(F).all():
        history.aa = []
    history.aa = (history.aa + [(x, F)])[-(depth + 1):]
    beta = 1.0 - history.damping
    with np.errstate(all="ignore"):     # a non-finite F(M_R) is caught by the next march
        try:
            return _next_iterate(history.aa, beta)
        except np.linalg.LinAlgError:
            history.aa = history.aa[-1:]
            return _next_iterate(history.aa, beta)


def _checkpoint_key(spec: DMFTSpec, replica: int | None) -> str:
    """The spec without ``max_iter`` (a resumed solve may be given more iterations) and without what
    decides the ensemble's size, plus the replica's index (a replica's solve does not depend on the others)."""
    d = spec.to_dict()
    for name in ("max_iter", "replicas", "first_replica", "target_se", "time_budget"):
        d["solver"].pop(name)
    if d["solver"]["window"] is None:     # the key of checkpoints written before windows existed
        d["solver"].pop("window")
    if d["solver"]["chain"] == "flow":    # the key of checkpoints written before the chain was a choice
        d["solver"].pop("chain")
    if d["solver"]["sphere"] == "multiplier":    # the key of checkpoints written before the projection
        d["solver"].pop("sphere")
    where = context({"problem": spec.problem})
    for name in ("delta", "onset"):       # where they do not apply: the key of checkpoints written before mixtures
        if not applies(DMFT[name], where):
            d.pop(name)
    if replica is not None:
        d["replica"] = replica
    return json.dumps(d, sort_keys=True)


def _stack(pairs: list) -> np.ndarray:
    """The Anderson history's matrices (all of one window's size) as one array, ``(0, 0, 0)`` if none."""
    return np.array(pairs) if pairs else np.zeros((0, 0, 0))


def _save_checkpoint(spec, replica, path, MR, history: History, atomic_path):
    h = history
    arrays = dict(M_R=MR, residual=np.array(h.residual), damping_used=np.array(h.damping_used),
                  m_history=np.array(h.m), seconds=np.array(h.seconds),
                  damping=np.array(h.damping), spec=np.array(_checkpoint_key(spec, replica)),
                  aa_x=_stack([p[0] for p in h.aa]), aa_g=_stack([p[1] for p in h.aa]),
                  window_end=np.array(h.window_end, dtype=np.int64),
                  initial_guess=np.array(h.initial_guess),
                  stderr=h.stderr, ess=h.ess, row_ess=h.row_ess, diagnosed=np.array(h.diagnosed),
                  clamped=np.array(h.clamped, dtype=np.int64),
                  good_M_R=np.zeros((0, 0)) if h.good is None else h.good,
                  shortened=np.array(h.shortened, dtype=np.int64))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def _load_checkpoint(spec, replica, path) -> tuple[np.ndarray, History]:
    try:
        with np.load(path, allow_pickle=False) as z:
            stored = str(z["spec"])
            MR = z["M_R"]
            residuals = list(z["residual"])
            # checkpoints written before the response diagnostics existed have none
            stats = {name: z[name] if name in z else np.full(shape, np.nan)
                     for name, shape in (("stderr", MR.shape), ("ess", MR.shape), ("row_ess", MR.shape[:1]))}
            # checkpoints of an older prcy: no last good M_R (a failing march right after resuming is then
            # diverged, not shortened) and no count of shortened iterations
            good = z["good_M_R"] if "good_M_R" in z else np.zeros((0, 0))
            history = History(
                initial_guess=(str(z["initial_guess"]) if "initial_guess" in z
                               else "unknown (a checkpoint of an older prcy)"),
                damping=float(z["damping"]), **stats,
                # checkpoints written before the diagnostics were skipped had them on every pass
                diagnosed=bool(z["diagnosed"]) if "diagnosed" in z else True,
                residual=residuals, damping_used=list(z["damping_used"]),
                clamped=list(z["clamped"]) if "clamped" in z else [0] * len(residuals),
                m=list(z["m_history"]),
                # checkpoints written before horizon windows existed solved the whole horizon every iteration
                window_end=list(z["window_end"]) if "window_end" in z else [MR.shape[0]] * len(residuals),
                seconds=list(z["seconds"]), aa=list(zip(z["aa_x"], z["aa_g"])),
                good=good if good.size else None,
                shortened=int(z["shortened"]) if "shortened" in z else 0)
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"checkpoint: {str(path)!r} is not a prcy DMFT checkpoint, or a damaged one "
                         f"({type(exc).__name__}: {exc}); remove it to start afresh") from None
    if stored != _checkpoint_key(spec, replica):
        raise ValueError(f"checkpoint: {str(path)!r} belongs to another spec; remove it or give another path")
    return MR, history


def _padded(out: dict, K: int) -> dict:
    """A march over the first ``e < K`` grid points (a solve stopped in an earlier horizon window)
    with its functions of time padded to ``K`` by NaN: nothing was solved for beyond ``t_e``."""
    e = len(out["m"])
    if e == K:
        return out
    padded = dict(out)
    for name in ("m", "nu_hat", "delta_nu", "mu", "train_loss", "train_error", "M_C", "C", "R"):
        v = out[name]
        padded[name] = np.full((K,) * v.ndim, np.nan)
        padded[name][tuple(slice(0, e) for _ in range(v.ndim))] = v
    return padded


def _dataset(spec, replica, out, MR, history: History, status, bad, n_threads) -> xr.Dataset:
    from prcy.analysis import test_error
    from prcy.io import provenance
    from prcy.kernels import parallel

    t = spec.times()
    out = _padded(out, len(t))
    C, R = out["C"], out["R"]
    if _projects(spec):         # the projected weights w = B v: C_w(k, j) = B_k B_j C_v(k, j), so C_w(k, k) = 1
        B = np.full(len(t), np.nan)
        B[:len(out["scale"])] = out["scale"]
        C = B[:, None] * B[None, :] * C
        # the multiplier equivalent to the projection of step k, w_{k+1} = (1 - dt nu_k) w_k - dt (B_{k+1}/B_k) G_k
        out = dict(out, nu_hat=np.append((1.0 - B[1:] / B[:-1]) / spec.dt, np.nan))
    norm = np.diag(C).copy()
    with np.errstate(all="ignore"):
        err = test_error(spec.problem, np.clip(out["m"], -np.sqrt(norm), np.sqrt(norm)), norm, onset=spec.onset,
                         delta=spec.delta)
    n_it = len(history.residual)
    tt = ("time", "time_prime")
    data = {
        "magnetization": ("time", out["m"]), "nu_hat": ("time", out["nu_hat"]),
        "delta_nu": ("time", out["delta_nu"]), "mu": ("time", out["mu"]),
        "M_C": (tt, out["M_C"]), "M_R": (tt, MR), "C": (tt, C), "R": (tt, R),
        "M_R_stderr": (tt, history.stderr), "M_R_ess": (tt, history.ess), "M_R_row_ess": ("time", history.row_ess),
        "norm": ("time", norm), "train_loss": ("time", out["train_loss"]), "train_error": ("time", out["train_error"]),
        "test_error": ("time", err),
        "residual": ("iteration", np.array(history.residual, dtype=float)),
        "damping_used": ("iteration", np.array(history.damping_used, dtype=float)),
        "response_clamped": ("iteration", np.array(history.clamped, dtype=np.int64)),
        "window_end": ("iteration", (np.array(history.window_end, dtype=float) - 1) * spec.dt),
        "iteration_seconds": ("iteration", np.array(history.seconds, dtype=float)),
        "magnetization_iterates": (("iteration", "time"),
                                   np.array(history.m, dtype=float).reshape(n_it, len(t))),
    }
    if spec.problem in CLASSIFIERS:
        data["train_accuracy"] = ("time", 1.0 - out["train_error"])
    ds = xr.Dataset(data, coords={"time": t, "time_prime": t, "iteration": np.arange(1, n_it + 1),
                                  "algorithm": spec.algorithm.name})
    for name, meta in VARIABLES.items():
        if name in ds:
            ds[name].attrs.update(meta)
    ds["time"].attrs.update(long_name="physical time", units="steps * lr", standard_name="time")
    a = spec.algorithm
    root = ("SeedSequence(rng_root_seed)" if replica is None
            else "SeedSequence(rng_root_seed, spawn_key=(replica,))")
    keys = (f"Generator(PCG64(child)), children of {root} spawned in the order h0, h(0), normals, selection, "
            f"clusters (one each); drawn once, reused by every iteration")
    attrs = {
        **provenance("prcy DMFT", SCHEMA, spec.to_json(), spec.solver.seed, keys),
        "problem": spec.problem, "alpha": spec.alpha, "m0": spec.init.m0, "lr": a.lr, "dt": spec.dt,
        **({"delta": spec.delta, "init": spec.init.kind, "init_variance": spec.init.variance}
           if spec.problem in MIXTURES else {}),
        **({"onset": spec.onset} if spec.problem == "mixture-3" else {}),
        "constraint": spec.constraint.kind, "t_max": float(t[-1]), "samples": spec.solver.samples,
        "status": status, "iterations": n_it, "initial_guess": history.initial_guess,
        "final_residual": float(history.residual[-1]) if n_it else float("nan"),
        "tol": spec.solver.tol, "nu_form": spec.solver.nu_form, "m_equation": spec.solver.m_equation,
        "clipped_pivots": out["n_clipped"],
        "clipped_relative": out["clipped"] / max(float(np.trace(out["M_C"])) + 2 * spec.temperatures().sum() / spec.dt, 1e-300),
        "max_norm_deviation": float(np.max(np.abs(norm - 1.0))) if spec.constraint.kind == "sphere" else float("nan"),
        "seconds_per_iteration": float(np.mean(history.seconds)) if n_it else float("nan"),
        "response_ess_min": float(np.nanmin(history.row_ess)) if np.isfinite(history.row_ess).any()
                            else float("nan"),
        "threads": n_threads,
        "build_openmp": int(parallel.build_info()["openmp"]), "build_march": parallel.build_info()["march"],
    }
    if bad is not None:
        attrs["diverged_iteration"], attrs["diverged_step"] = bad[0] + 1, bad[1]
        attrs["diverged_time"] = float(t[bad[1]])
    ds.attrs.update(attrs)
    return ds


# per-solve attributes that become variables over ``replica`` in an ensemble
PER_REPLICA = {"status": "replica_status", "iterations": "iterations", "final_residual": "final_residual",
               "clipped_pivots": "clipped_pivots", "clipped_relative": "clipped_relative",
               "max_norm_deviation": "max_norm_deviation", "seconds_per_iteration": "seconds_per_iteration",
               "response_ess_min": "response_ess_min",
               "diverged_iteration": "diverged_iteration", "diverged_step": "diverged_step",
               "diverged_time": "diverged_time"}
NOT_DIVERGED = {"diverged_iteration": -1, "diverged_step": -1, "diverged_time": float("nan")}
STATUS_ORDER = ("converged", "max_iter", "diverged")


def _replica_dataset(runs: list, indices: range) -> xr.Dataset:
    """The replicas' datasets along ``replica`` (iteration histories padded with NaN to the longest);
    per-solve attributes become variables, ``status`` the worst of the replicas'; with the mean of
    ``m(t)`` over the converged replicas and its standard error."""
    from prcy.analysis import replica_summary

    per = {var: ("replica", [r.attrs.get(attr, NOT_DIVERGED.get(attr)) for r in runs])
           for attr, var in PER_REPLICA.items()}
    attrs = {k: v for k, v in runs[0].attrs.items() if k not in PER_REPLICA}
    guesses = [r.attrs["initial_guess"] for r in runs]
    if len(set(guesses)) > 1:       # some replicas resumed from checkpoints that began elsewhere
        attrs["initial_guess"] = "; ".join(f"replica {i}: {g}" for i, g in zip(indices, guesses))
    statuses = [r.attrs["status"] for r in runs]
    for r in runs:
        r.attrs = {}
    ds = xr.concat(runs, dim="replica", join="outer", coords="minimal", compat="override")
    ds = ds.assign_coords(replica=("replica", np.asarray(indices, dtype=np.int64))).assign(per)
    ds["replica"].attrs.update(long_name="replica: independent solve, random numbers from SeedSequence("
                                         "seed, spawn_key=(replica,))")
    for var in per:
        ds[var].attrs["long_name"] = f"{var.replace('replica_', '')} of each replica"
    attrs.update(status=max(statuses, key=STATUS_ORDER.index), replicas=len(runs), first_replica=indices.start,
                 replicas_converged=statuses.count("converged"))
    summary = replica_summary(ds)
    ds["magnetization_mean"] = summary["mean"].assign_attrs(
        long_name="mean of m(t) over the converged replicas (prcy.analysis.replica_summary)", units="1")
    ds["magnetization_standard_error"] = summary["standard_error"].assign_attrs(
        long_name="standard error of that mean (NaN with fewer than two converged replicas)", units="1")
    ds.attrs = attrs
    return ds


def describe(ds: xr.Dataset) -> str:
    """How a DMFT solve (or each replica of an ensemble) ended, and m(t_max): what ``prcy dmft`` and
    ``prcy info`` print below the file's description (``prcy.io.describe``)."""
    from prcy.analysis import replica_summary

    def one(status, iterations, residual, seconds, m_end, diverged, ess):
        text = (f"{status} after {iterations} iterations (residual {residual:.3g}, {seconds:.3g} s/iteration); "
                f"m(t_max) = {m_end:.4f}")
        if status == "diverged":
            text += (f"; paths not finite or running away at iteration {diverged[0]}, grid index {diverged[1]} "
                     f"(t = {diverged[2]:g})")
        if ess is not None and ess == ess:
            text += f"; memory kernel rests on >= {ess:.3g} effective samples"
            if ess < ESS_WARN:
                text += (" (WARNING: heavy-tailed response, M_R not resolved at this sample size; "
                         f"see M_R_row_ess and docs/dmft.md; {remedy})")
        return text

    a = ds.attrs
    solver = json.loads(a["spec"])["solver"] if "spec" in a else {}
    remedy = "try more --samples" if solver.get("response_kick") else "try --response-kick 0.1"
    head = f"DMFT: samples {a.get('samples')}, dt {a.get('dt')}"
    guess = a.get("initial_guess", "A.1")
    if guess.startswith("M_R of"):
        head += f", warm start from {guess}"
    elif not guess.startswith("A.1"):      # replicas begun from different guesses, or an older checkpoint's
        head += f", initial guess: {guess}"
    window = solver.get("window")
    if window is not None:
        head += f", horizon windows of {window:g}"
    if "replica" not in ds.dims:
        return f"{head}; " + one(a["status"], a["iterations"], a["final_residual"], a["seconds_per_iteration"],
                                 float(ds["magnetization"][-1]),
                                 tuple(a.get(k) for k in ("diverged_iteration", "diverged_step", "diverged_time")),
                                 a.get("response_ess_min"))
    lines = [f"{head}; {ds.sizes['replica']} replicas, {a['replicas_converged']} converged"]
    for i in range(ds.sizes["replica"]):
        r = ds.isel(replica=i)
        lines.append(f"  replica {int(r['replica'])}: " + one(
            str(r["replica_status"].values), int(r["iterations"]), float(r["final_residual"]),
            float(r["seconds_per_iteration"]), float(r["magnetization"][-1]),
            tuple(r[k].values.item() for k in ("diverged_iteration", "diverged_step", "diverged_time")),
            float(r["response_ess_min"]) if "response_ess_min" in r else None))
    summary = replica_summary(ds)
    if summary.attrs["replicas_used"]:
        lines.append(f"m(t_max) over the {summary.attrs['replicas_used']} converged replicas: "
                     f"{float(summary['mean'][-1]):.4f} +- {float(summary['standard_error'][-1]):.4f} "
                     f"(standard error)")
    else:
        lines.append("m(t_max): no replica converged, so no mean")
    if "target_se" in a:
        lines.append(f"target standard error {a['target_se']:g} of m(t_max) {a['target_se_outcome']}")
    return "\n".join(lines)


@array_api_boundary("h_tilde", "h0", "selection")
def estimators(h_tilde, h0, *, alpha: float, selection=None, grad_scale: float = 1.0, temperature: float = 0.0,
               loss=None, problem: str = "phase-retrieval"):
    """The DMFT's estimators on paths you supply (from another solver, or from a simulation's fields):
    ``h_tilde`` (``K x S``: ``h~(t_k)`` of ``S`` samples), ``h0`` (``S``, labelled as ``problem`` says),
    ``selection`` (``K x S`` 0/1, default all selected). Returns ``(M_C, delta_nu, nu_hat, mu, train_loss)`` with
    ``M_C(k, j) = alpha <g_k g_j>``, ``delta_nu = alpha c <s d2v>``, ``nu_hat = -alpha <g h~> + T`` (A.19),
    ``mu = alpha <g h0>``, ``train_loss = <v>``, ``g = c s dv`` (``c = grad_scale``), computed by the
    same kernel code as the solver's march; arrays come back in the caller's namespace. Teacher problems
    only: a mixture's labels come from its clusters, not from ``h0``."""
    from prcy.kernels import dmft as kd
    from prcy.kernels.problems import labels
    from prcy.problems import resolve_loss

    if problem in MIXTURES:
        raise ValueError(f"problem: {problem!r} is not allowed; allowed: a teacher problem (a mixture labels its "
                         f"samples by their clusters, not by h0: its process is prcy.dmft.solve's)")
    H = np.ascontiguousarray(real_array(h_tilde, "h_tilde"), dtype=np.float64)
    if H.ndim != 2:
        raise ValueError(f"h_tilde: shape {H.shape}; allowed: K times x S samples")
    h0 = np.ascontiguousarray(real_array(h0, "h0"), dtype=np.float64)
    sel = None if selection is None else np.ascontiguousarray(real_array(selection, "selection"), dtype=np.uint8)
    alpha = check_number("alpha", alpha, low=0, low_open=True)
    capsule, _ = resolve_loss(problem, loss)
    MC, dnu, nu, mu, loss_t, _, _ = kd.estimate(capsule, H, h0, labels(problem, h0), sel, alpha, float(grad_scale),
                                                 np.full(H.shape[0], float(temperature)))
    return MC, dnu, nu, mu, loss_t
