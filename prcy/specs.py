"""Frozen, validated descriptions of a simulation: problem, algorithm, constraint, initialization,
recording plan and stopping rule.

Every field is checked once, at construction, against its row of the option table
(``prcy.options.SIMULATION``: default, allowed values, where it applies); a bad value raises
``ValueError`` naming the field, the value and what is allowed. Rules that join several fields (the
persistence bound, temperature vs its schedule, the number of steps) are written out here next to
their group. Specs round-trip through plain dicts (``to_dict``/``from_dict``), which
is how they are stored in NetCDF attributes (as JSON) and read from TOML.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from prcy.options import (ALGORITHMS, CLASSIFIERS, DEFAULT_LOSS, MAX_SEED, MAX_STEPS, MAX_TIME, MIXTURES, NOT_IN_DMFT,
                          SIMULATION, check_applicable, check_group, check_number, defaults, flat_paths,
                          not_in_dmft_error, problem_defaults, runs_without_unused)

_D = defaults(SIMULATION)


def _set(obj, name, value):
    object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class Problem:
    """The data: ``m = round(alpha n)`` samples and a teacher (or cluster mean) with ``|w0|^2 = n``
    (Gaussian entries or Rademacher signs). Teacher-student problems: inputs with i.i.d. standard
    Gaussian entries, labels from the teacher's fields ``h0`` (phase retrieval ``|h0|``, linear
    regression ``h0``, the door ``sign(|h0| - onset)``). Gaussian mixtures (``mixture-2``,
    ``mixture-3``): inputs ``c w0/sqrt(n) + sqrt(delta) z``, labels from the cluster ``c``
    (``prcy.kernels.problems``). ``loss``: the loss the student trains on (``None`` for the problem's,
    ``DEFAULT_LOSS``). ``hidden``: the student's hidden units (a committee machine when above 1).
    Fields, defaults and allowed values: ``prcy.options.SIMULATION``."""
    name: str = _D["problem"]
    alpha: float = _D["alpha"]
    n: int = _D["n"]
    n_test: int = _D["n_test"]          # held-out samples for the empirical test error (0: formula only)
    precision: str = _D["precision"]    # storage of X; fields and gradients are always accumulated in float64
    share_data: bool = _D["share_data"]  # one teacher and dataset for all seeds (only init and noise vary)
    labels: str = _D["labels"]          # "random": permuted among the samples; "fresh": from the label law
    loss: str | None = _D["loss"]
    teacher: str = _D["teacher"]
    onset: float = _D["onset"]
    smoothing: float = _D["smoothing"]
    delta: float = _D["delta"]
    hidden: int = _D["hidden"]           # the student's hidden units K (1: a single unit)

    def __post_init__(self):
        check_group(self, "problem", SIMULATION)
        if self.m < 1:
            raise ValueError(f"alpha: {self.alpha!r} with n = {self.n} gives no sample; "
                             f"allowed: alpha * n >= 0.5")
        if self.labels == "fresh" and self.name in MIXTURES:
            raise ValueError(f"labels: 'fresh' does not apply to problem {self.name} (its labels are the "
                             f"clusters); allowed: teacher, random")

    @property
    def m(self) -> int:
        return int(round(self.alpha * self.n))

    @property
    def training_loss(self) -> str:
        """The loss the student trains on: ``loss``, or the problem's own."""
        return self.loss if self.loss is not None else DEFAULT_LOSS[self.name]


@dataclass(frozen=True)
class Algorithm:
    """One step of size ``lr`` (eqs 5-9): GD, multi-pass SGD (i.i.d. Bernoulli selection), persistent
    SGD (the two-state chain of eq 7) or Langevin (GD plus white noise at temperature ``T``), with the
    update rule ``optimizer`` (plain, heavy-ball or Nesterov momentum, Adam).

    ``batch_fraction`` (``ell``) applies to sgd and psgd (full-batch algorithms store 1), ``persistence``
    (``tau``) to psgd only (others store None); ``temperature``/``temperature_schedule`` to every
    algorithm but gd. ``temperature_schedule`` is a sequence of ``(t_start, T)`` pairs, starting at
    ``t = 0``: ``((0, 1.0), (700, 0.0))`` is "T = 1 until t = 700, then 0"; ``anneal_at = 700`` says
    the same of a constant ``temperature`` (and can be swept together with it). ``rescale`` divides the
    stochastic gradient by ``ell`` (eq 8). ``amp`` is no gradient algorithm: the GAMP iteration of
    ``prcy.amp``, one iteration per unit of time (it stores ``lr = 1``), with ``amp_damping``. Where each
    field applies: ``prcy.options.SIMULATION``.
    """
    name: str = _D["algorithm"]
    lr: float | None = None                      # None: 0.01; amp stores 1 (its time is the iteration)
    batch_fraction: float | None = None          # None: 0.5 for sgd and psgd, 1 (full batch) otherwise
    persistence: float | None = None             # None: 1 for psgd
    temperature: float = _D["temperature"]
    temperature_schedule: tuple[tuple[float, float], ...] | None = _D["temperature_schedule"]
    anneal_at: float | None = _D["anneal_at"]
    rescale: bool = _D["rescale"]
    optimizer: str = _D["optimizer"]
    momentum: float = _D["momentum"]
    beta1: float = _D["beta1"]
    beta2: float = _D["beta2"]
    adam_eps: float = _D["adam_eps"]
    project_velocity: bool = _D["project_velocity"]
    amp_damping: float = _D["amp_damping"]

    def __post_init__(self):
        for name in ("lr", "batch_fraction", "persistence"):
            if getattr(self, name) is None:
                row = SIMULATION[name]
                _set(self, name, row.default if self.name in row.applies[0][1] else row.stored_unused)
        check_group(self, "algorithm", SIMULATION)
        lr = self.lr
        if self.name == "psgd":
            tau, ell = self.persistence, self.batch_fraction
            lowest = lr * max(1.0, (1.0 - ell) / ell)
            if tau < lowest * (1 - 1e-12):
                raise ValueError(f"persistence: {tau!r} makes a switching probability per step exceed 1 "
                                 f"(lr/tau = {lr / tau:g}, (1-ell) lr/(ell tau) = {(1 - ell) * lr / (ell * tau):g}); "
                                 f"allowed: persistence >= {lowest:g} for lr = {lr:g}, batch_fraction = {ell:g}")
        schedule = self.temperature_schedule
        if schedule is not None:
            pairs = []
            for i, item in enumerate(schedule):
                if not (isinstance(item, (tuple, list)) and len(item) == 2):
                    raise ValueError(f"temperature_schedule: entry {i} = {item!r} is not a (t_start, T) pair")
                pairs.append((check_number(f"temperature_schedule[{i}].t_start", item[0], low=0, at_most=MAX_TIME),
                              check_number(f"temperature_schedule[{i}].T", item[1], low=0,
                                           at_most=SIMULATION["temperature"].at_most)))
            if not pairs or pairs[0][0] != 0.0:
                raise ValueError(f"temperature_schedule: {schedule!r} must start at t = 0; "
                                 f"allowed: ((0, T0), (t1, T1), ...) with 0 < t1 < t2 < ...")
            if any(b[0] <= a[0] for a, b in zip(pairs, pairs[1:])):
                raise ValueError(f"temperature_schedule: start times {[p[0] for p in pairs]} are not "
                                 f"strictly increasing")
            if self.temperature != 0.0:
                raise ValueError("temperature: give either temperature or temperature_schedule, not both")
            _set(self, "temperature_schedule", tuple(pairs))
            if self.anneal_at is not None:
                raise ValueError("anneal_at: give either anneal_at or temperature_schedule, not both")
        if self.name == "langevin" and not any(T > 0 for _, T in self.schedule()):
            raise ValueError("temperature: langevin needs a temperature > 0 somewhere; allowed: temperature > 0 "
                             "or a temperature_schedule with a positive value")

    def schedule(self) -> tuple[tuple[float, float], ...]:
        """The temperature as ``(t_start, T)`` pairs (a constant temperature is one pair)."""
        if self.anneal_at is not None:
            return ((0.0, self.temperature), (self.anneal_at, 0.0))
        return self.temperature_schedule or ((0.0, self.temperature),)

    @property
    def selection(self) -> str:
        return {"gd": "full", "langevin": "full", "sgd": "bernoulli", "psgd": "persistent"}[self.name]

    @property
    def grad_scale(self) -> float:
        """The factor of the loss gradient: ``1 / batch_fraction`` with ``rescale``, else 1."""
        return 1.0 / self.batch_fraction if self.rescale else 1.0

    def switching_probabilities(self) -> tuple[float, float]:
        """``(P(0->1), P(1->0))`` per step; SGD is the chain with ``tau = lr/ell``."""
        ell = self.batch_fraction
        if self.name == "psgd":
            return self.lr / self.persistence, (1 - ell) * self.lr / (ell * self.persistence)
        return ell, 1 - ell


@dataclass(frozen=True)
class Constraint:
    """``sphere``: project back to ``|w|^2 = n`` after every step; ``ridge``: add ``ridge * w`` to the
    gradient (``ridge >= 0``; 0 is plain unregularized descent) with no projection (appendix C)."""
    kind: str = _D["constraint"]
    ridge: float = _D["ridge"]

    def __post_init__(self):
        check_group(self, "constraint", SIMULATION)


@dataclass(frozen=True)
class Initialization:
    """``warm`` (eq 11): ``w(0) = m0 w0 + c z_perp``, ``|w(0)|^2 = n``, so ``m(0) = m0`` exactly; ridge
    (eq C.2): ``w(0) = m0 w0 + z``. ``random``: ``w(0)`` independent of the teacher, uniform on the
    sphere (ridge: ``N(0, variance I)``), so ``m(0) ~ n^-1/2``. ``spectral``: the leading eigenvector of
    ``(1/M) sum_mu T(y_mu) x_mu x_mu^T`` with ``T`` the ``preprocessing``, scaled to ``|w(0)|^2 = n``
    (``prcy.spectral``; phase retrieval only)."""
    m0: float = _D["m0"]
    kind: str = _D["init"]
    variance: float = _D["init_variance"]
    preprocessing: str = _D["preprocessing"]

    def __post_init__(self):
        check_group(self, "init", SIMULATION)


@dataclass(frozen=True)
class Recording:
    """Observables at ``t = k lr`` for the steps ``k`` of a grid over ``[0, t_max]`` that always holds 0
    and ``t_max``: ``points`` log-spaced (default) or linearly spaced steps, or explicit ``times``;
    ``hessian > 0``: the lowest eigenpairs of the Hessian at every ``hessian_every``-th of them, with
    ``hessian_density`` bins of its spectrum on ``[hessian_low, hessian_high]``; ``label_moments``: the
    moments of (student field, label) at every recording time (``prcy.hessian``); ``overlap_units``: a
    committee's overlap matrix is recorded up to this many hidden units (``records_overlap``)."""
    t_max: float = _D["t_max"]
    points: int = _D["points"]
    grid: str = _D["grid"]
    times: tuple[float, ...] | None = _D["times"]
    hessian: int = _D["hessian"]
    hessian_every: int = _D["hessian_every"]
    hessian_density: int = _D["hessian_density"]
    hessian_low: float = _D["hessian_low"]
    hessian_high: float = _D["hessian_high"]
    label_moments: bool = _D["label_moments"]
    overlap_units: int = _D["overlap_units"]

    def __post_init__(self):
        check_group(self, "recording", SIMULATION)
        if self.hessian_density and not self.hessian:
            raise ValueError(f"hessian_density: {self.hessian_density!r} needs the Hessian; allowed: 0, or hessian "
                             f">= 1 (the histogram is taken at the Hessian's recording times)")
        if self.hessian_high <= self.hessian_low:
            raise ValueError(f"hessian_high: {self.hessian_high!r} is not allowed; allowed: above hessian_low = "
                             f"{self.hessian_low!r}")
        if self.times is not None:
            times = tuple(check_number(f"times[{i}]", t, low=0, high=self.t_max,
                                       allowed=f"a time in [0, t_max = {self.t_max:g}]")
                          for i, t in enumerate(self.times))
            _set(self, "times", times)

    def steps(self, lr: float) -> np.ndarray:
        """The recording steps (sorted, unique, first 0, last ``n_steps(lr)``)."""
        n_steps = self.n_steps(lr)
        if self.times is not None:
            inner = np.rint(np.asarray(self.times, dtype=float) / lr)
        elif self.grid == "log":
            inner = np.rint(np.logspace(0, math.log10(max(n_steps, 1)), self.points - 1))
        else:
            inner = np.rint(np.linspace(0, n_steps, self.points))
        steps = np.unique(np.concatenate([[0, n_steps], inner]).astype(np.int64))
        return steps[(steps >= 0) & (steps <= n_steps)]

    def n_steps(self, lr: float) -> int:
        n = int(round(self.t_max / lr))
        if n < 1:
            raise ValueError(f"t_max: {self.t_max!r} is shorter than one step of lr = {lr:g}; "
                             f"allowed: t_max >= lr")
        if n > MAX_STEPS:
            raise ValueError(f"t_max: {self.t_max!r} is {n:.3g} steps of lr = {lr:g}; allowed: "
                             f"t_max / lr <= {MAX_STEPS:.0e}".replace("e+", "e"))
        return n


@dataclass(frozen=True)
class Stopping:
    """Success (``success``): the training loss per sample below ``tol`` (checked every step for
    full-batch algorithms, every ``check_interval`` time units and at the recording times otherwise),
    or the final test error below ``error_tol``. ``early_stop`` ends a seed once its training loss per
    sample is below ``tol`` (under either success rule) and carries its final state forward on the
    recording grid; ``grad_tol > 0`` ends a seed when ``max_j |G_j| < grad_tol``, ``G`` the step's
    gradient (on the sphere its part tangent to the sphere; docs/engine.md)."""
    tol: float = _D["tol"]
    early_stop: bool = _D["early_stop"]
    check_interval: float = _D["check_interval"]
    success: str = _D["success"]
    error_tol: float = _D["error_tol"]
    grad_tol: float = _D["grad_tol"]

    def __post_init__(self):
        check_group(self, "stopping", SIMULATION)

    def check_every(self, lr: float) -> int:
        return max(1, int(round(self.check_interval / lr)))


class SpecForms:
    """The plain-dict, JSON and flat-name forms of a spec: a frozen dataclass whose class attributes
    ``groups`` (group field -> its class) and ``options`` (its option table) say what it holds."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict):
        return spec_from_dict(cls, d, cls.groups)

    @classmethod
    def from_flat(cls, **kw):
        """Build from the flat keyword names of the spec's option table (``prcy.simulate``, the command
        line, ``prcy.dmft.solve``); an option given where it does not apply is refused, and one not
        given takes the problem's default (``prcy.options.problem_defaults``)."""
        return spec_from_flat(cls, kw, cls.groups, cls.options)


GROUPS = {"problem": Problem, "algorithm": Algorithm, "constraint": Constraint,
          "init": Initialization, "recording": Recording, "stopping": Stopping}
FLAT = flat_paths(SIMULATION)          # flat keyword -> (group, field)


@dataclass(frozen=True)
class SimulationSpec(SpecForms):
    """Everything that determines a simulation's result, with ``seeds`` trajectories
    ``first_seed, ..., first_seed + seeds - 1`` drawn from the root seed ``seed``. Options that do not
    apply (``prcy.options``) hold their defaults."""
    problem: Problem = field(default_factory=Problem)
    algorithm: Algorithm = field(default_factory=Algorithm)
    constraint: Constraint = field(default_factory=Constraint)
    init: Initialization = field(default_factory=Initialization)
    recording: Recording = field(default_factory=Recording)
    stopping: Stopping = field(default_factory=Stopping)
    seeds: int = _D["seeds"]
    first_seed: int = _D["first_seed"]
    seed: int = _D["seed"]
    groups: ClassVar[dict] = GROUPS
    options: ClassVar[dict] = SIMULATION

    def __post_init__(self):
        check_types(self, GROUPS)
        check_group(self, None, SIMULATION)
        if self.first_seed + self.seeds - 1 > MAX_SEED:
            raise ValueError(f"first_seed: {self.first_seed!r} with {self.seeds} seeds passes 2^63 - 1; allowed: "
                             f"first_seed + seeds - 1 <= 2^63 - 1 (seed indices are 64-bit NetCDF integers)")
        self.recording.n_steps(self.algorithm.lr)
        if self.init.kind == "spectral" and self.problem.name != "phase-retrieval":
            raise ValueError(f"init: 'spectral' does not apply to problem {self.problem.name}; allowed: only with "
                             f"problem phase-retrieval")
        if self.stopping.success == "train-accuracy" and self.problem.name not in CLASSIFIERS:
            raise ValueError(f"success: 'train-accuracy' does not apply to problem {self.problem.name}; allowed: "
                             f"only with problem {', '.join(CLASSIFIERS)}")
        if self.algorithm.name == "amp":
            check_amp(self)
        if self.problem.hidden > 1:
            check_committee(self)
        check_applicable(SIMULATION, flat_values(self, FLAT))


def check_committee(spec: SimulationSpec) -> None:
    """What a student with ``hidden > 1`` units needs beyond the option table: a loss with a committee
    form, a start drawn unit by unit (warm or random), no Hessian or label-moment records, and held-out samples for the test
    error (a committee's label error has no closed form)."""
    from prcy.options import COMMITTEE_LOSSES, LOSSES

    p = spec.problem
    where = f"with hidden = {p.hidden}"
    if p.loss in LOSSES and p.loss not in COMMITTEE_LOSSES:
        raise ValueError(f"loss: {p.loss!r} has no committee form; allowed {where}: {', '.join(COMMITTEE_LOSSES)} "
                         f"or 'module:attr' naming a prcy.CommitteeLoss.v1 capsule")
    if spec.init.kind == "spectral":
        raise ValueError(f"init: 'spectral' is not allowed {where}; allowed: warm, random (each unit drawn in turn)")
    if spec.recording.hessian:
        raise ValueError(f"hessian: {spec.recording.hessian!r} is not allowed {where}; allowed: 0")
    if spec.recording.label_moments:
        raise ValueError(f"label_moments: True is not allowed {where} (the moments are of a single unit's field); "
                         f"allowed: false")
    if p.n_test == 0:
        raise ValueError(f"n_test: 0 is not allowed {where} (a committee's test error has no closed form and is "
                         f"measured on held-out samples); allowed: n_test >= 1, e.g. --n-test 10000")


def check_amp(spec: SimulationSpec) -> None:
    """What AMP (``prcy.amp``) needs beyond the option table: its output channel is phase retrieval's
    ``y = |h0|``; a warm start strictly between the uninformative fixed point ``w = 0`` (``m0 = 0``)
    and the teacher itself (``m0 = 1``: zero variance), or a random start; no Hessian records."""
    if spec.problem.name != "phase-retrieval":
        raise ValueError(f"algorithm: 'amp' does not apply to problem {spec.problem.name}; allowed: only with "
                         f"problem phase-retrieval (its denoiser is the channel y = |h0|)")
    if spec.init.kind not in ("warm", "random"):
        raise ValueError(f"init: {spec.init.kind!r} does not apply to algorithm amp; allowed: warm, random")
    if spec.recording.hessian:
        raise ValueError(f"hessian: {spec.recording.hessian!r} does not apply to algorithm amp (its estimate "
                         f"minimizes no loss); allowed: 0")
    if spec.init.kind == "warm" and not 0.0 < spec.init.m0 < 1.0:
        raise ValueError(f"m0: {spec.init.m0!r} is not allowed with algorithm amp; allowed: 0 < m0 < 1 (m0 = 0 is "
                         f"AMP's uninformative fixed point w = 0: use init random to start without the teacher)")


def check_types(spec, groups: dict) -> None:
    """Each group field of ``spec`` holds an instance of its class."""
    for name, cls in groups.items():
        if not isinstance(getattr(spec, name), cls):
            raise ValueError(f"{name}: expected a {cls.__name__}, got {type(getattr(spec, name)).__name__}")


def flat_values(spec, flat: dict) -> dict:
    """Flat name -> the spec's value (``flat``: flat name -> ``(group or None, field)``)."""
    return {name: getattr(getattr(spec, group) if group else spec, attr) for name, (group, attr) in flat.items()}


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def spec_from_dict(cls, d: dict, groups: dict):
    """A spec of class ``cls`` from its nested dict (``to_dict``, or JSON read back: lists become the
    tuples the frozen groups hold); ``groups`` maps a field name to its group class. Unknown fields
    are named; missing ones (a file written before they existed) take their defaults."""
    d = dict(d)
    unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ValueError(f"spec: unknown field(s) {sorted(unknown)}")
    for name, group_cls in groups.items():
        sub = {key: _tuples(value) for key, value in dict(d.get(name, {})).items()}
        bad = set(sub) - {f.name for f in dataclasses.fields(group_cls)}
        if bad:
            raise ValueError(f"spec.{name}: unknown field(s) {sorted(bad)}")
        d[name] = group_cls(**sub)
    return cls(**d)


def spec_from_flat(cls, kw: dict, groups: dict, table: dict):
    """A spec of class ``cls`` from flat option names (the rows of ``table``); an option given where it
    does not apply is refused."""
    unknown = set(kw) - set(table)
    if unknown:
        name = sorted(unknown)[0]
        if table is not SIMULATION and name in NOT_IN_DMFT:
            raise not_in_dmft_error(name, kw[name])
        raise ValueError(f"unknown option(s) {sorted(unknown)}; allowed: {', '.join(table)}")
    flat = flat_paths(table)
    values: dict[str, dict] = {name: {} for name in groups}
    top = {}
    for key, value in {**problem_defaults(table, kw), **kw}.items():
        where, attr = flat[key]
        (values[where] if where else top)[attr] = value
    spec = cls(**{name: groups[name](**v) for name, v in values.items()}, **top)
    check_applicable(table, flat_values(spec, flat), given=kw)
    return spec


def specs_from_options(options: dict) -> list[SimulationSpec]:
    """One spec per algorithm of ``options["algorithm"]`` (a name or a list of names); with several,
    an option is dropped where it does not apply and refused where it applies to none."""
    options = dict(options)
    algos = options.pop("algorithm", SIMULATION["algorithm"].default)
    algos = list(algos) if isinstance(algos, (list, tuple)) else [algos]
    if not algos:
        raise ValueError("algorithm: an empty list; allowed: one or more of " + ", ".join(ALGORITHMS))
    if len(set(algos)) != len(algos):
        raise ValueError(f"algorithm: {algos!r} repeats a name")
    check_amp_alone(algos)
    runs = runs_without_unused([{**options, "algorithm": algo} for algo in algos])
    return [SimulationSpec.from_flat(**run) for run in runs]




def check_amp_alone(algorithms) -> None:
    """AMP's time is the iteration, the gradient algorithms' is ``step * lr``: the two never share a
    time axis (one dataset, one sweep)."""
    names = list(dict.fromkeys(algorithms))
    if "amp" in names and len(names) > 1:
        others = ", ".join(a for a in names if a != "amp")
        raise ValueError(f"algorithm: 'amp' cannot run together with {others} (its time is the iteration, theirs "
                         f"step * lr); allowed: amp alone, in its own run or sweep")
