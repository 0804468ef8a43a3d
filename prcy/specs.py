"""Frozen, validated descriptions of a simulation: problem, algorithm, constraint, initialization,
recording plan and stopping rule.

Every field is checked once, at construction; a bad value raises ``ValueError`` naming the field,
the value and what is allowed. Specs round-trip through plain dicts (``to_dict``/``from_dict``), which
is how they are stored in NetCDF attributes (as JSON) and read from TOML.
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PROBLEMS = ("phase-retrieval", "linear-regression")
LOSSES = ("phase-retrieval", "linear-regression", "absolute", "door-square", "door-logistic")
ALGORITHMS = ("gd", "sgd", "psgd", "langevin")
CONSTRAINTS = ("sphere", "ridge")
PRECISIONS = ("float64", "float32")
LABELS = ("teacher", "random")
GRIDS = ("log", "linear")


def _number(name: str, value: Any, *, low: float | None = None, high: float | None = None,
            low_open: bool = False, high_open: bool = False, allowed: str | None = None) -> float:
    """``value`` as a finite float inside the given bounds, else a ValueError naming ``name``."""
    rng = allowed or _range_text(low, high, low_open, high_open)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}: {value!r} is not a number; allowed: {rng}")
    v = float(value)
    ok = math.isfinite(v)
    if ok and low is not None:
        ok = v > low if low_open else v >= low
    if ok and high is not None:
        ok = v < high if high_open else v <= high
    if not ok:
        raise ValueError(f"{name}: {value!r} is not allowed; allowed: {rng}")
    return v


def _range_text(low, high, low_open, high_open) -> str:
    if low is not None and high is not None:
        return f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"a finite number {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"a finite number {'<' if high_open else '<='} {high:g}"
    return "a finite number"


def _integer(name: str, value: Any, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name}: {value!r} is not allowed; allowed: an integer >= {low}")
    return int(value)


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name}: {value!r} is not allowed; allowed: {', '.join(allowed)}")
    return value


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}: {value!r} is not allowed; allowed: true or false")
    return bool(value)


def check_loss_reference(value: Any) -> str:
    """A loss given by name: a built-in loss name or ``"module:function"`` (an importable function
    returning a ``"prcy.Loss.v2"`` capsule; importable by every worker of a sweep)."""
    if not isinstance(value, str) or not (value in LOSSES or re.fullmatch(r"[\w.]+:\w+", value)):
        raise ValueError(f"loss: {value!r} is not allowed; allowed: {', '.join(LOSSES)} or 'module:function' "
                         f"(a function returning a prcy.Loss.v2 capsule)")
    return value


def load_loss(value: str):
    """The capsule returned by the function ``"module:function"`` names (see ``check_loss_reference``;
    built-in names are resolved by ``prcy.problems.resolve_loss``)."""
    from prcy.kernels import losses

    check_loss_reference(value)
    module, func = value.split(":")
    import importlib
    try:
        capsule = getattr(importlib.import_module(module), func)()
    except (ImportError, AttributeError, TypeError) as exc:
        raise ValueError(f"loss: cannot load {value!r} ({exc})") from None
    losses.check_capsule(capsule)          # TypeError naming the loss when it is not a prcy.Loss.v2 capsule
    return capsule


def _set(obj, name, value):
    object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class Problem:
    """Teacher-student data: ``m = round(alpha n)`` Gaussian inputs, teacher uniform on the sphere."""
    name: str = "phase-retrieval"
    alpha: float = 3.0
    n: int = 1000
    n_test: int = 0              # held-out samples for the empirical test error (0: formula only)
    precision: str = "float64"   # storage of X; fields and gradients are always accumulated in float64
    share_data: bool = False     # one teacher and dataset for all seeds (only init and noise vary)
    labels: str = "teacher"      # "random": training labels permuted among the samples (003's reshuffled labels)
    loss: str | None = None      # None: the problem's loss; a built-in name; or "module:function" returning a prcy.Loss capsule

    def __post_init__(self):
        _choice("problem", self.name, PROBLEMS)
        _choice("labels", self.labels, LABELS)
        _set(self, "alpha", _number("alpha", self.alpha, low=0, low_open=True))
        _set(self, "n", _integer("n", self.n, low=1))
        _set(self, "n_test", _integer("n_test", self.n_test, low=0))
        _choice("precision", self.precision, PRECISIONS)
        _set(self, "share_data", _flag("share_data", self.share_data))
        if self.loss is not None:
            check_loss_reference(self.loss)
        if self.m < 1:
            raise ValueError(f"alpha: {self.alpha!r} with n = {self.n} gives no sample; "
                             f"allowed: alpha * n >= 0.5")

    @property
    def m(self) -> int:
        return int(round(self.alpha * self.n))


@dataclass(frozen=True)
class Algorithm:
    """One step of size ``lr`` (eqs 5-9): GD, multi-pass SGD (i.i.d. Bernoulli selection), persistent
    SGD (the two-state chain of eq 7) or Langevin (GD plus white noise at temperature ``T``).

    ``batch_fraction`` (``ell``) applies to sgd and psgd, ``persistence`` (``tau``) to psgd only;
    ``temperature``/``temperature_schedule`` to every algorithm but gd. ``temperature_schedule`` is a
    sequence of ``(t_start, T)`` pairs, starting at ``t = 0``: ``((0, 1.0), (700, 0.0))`` is "T = 1
    until t = 700, then 0"; ``anneal_at = 700`` says the same of a constant ``temperature`` (and can be
    swept together with it). ``rescale`` divides the stochastic gradient by ``ell`` (eq 8).
    """
    name: str = "gd"
    lr: float = 0.01
    batch_fraction: float | None = None
    persistence: float | None = None
    temperature: float = 0.0
    temperature_schedule: tuple[tuple[float, float], ...] | None = None
    anneal_at: float | None = None
    rescale: bool = True

    def __post_init__(self):
        name = _choice("algorithm", self.name, ALGORITHMS)
        lr = _number("lr", self.lr, low=0, low_open=True)
        _set(self, "lr", lr)
        if name in ("sgd", "psgd"):
            ell = 0.5 if self.batch_fraction is None else self.batch_fraction
            _set(self, "batch_fraction", _number("batch_fraction", ell, low=0, high=1, low_open=True))
        elif self.batch_fraction not in (None, 1, 1.0):
            raise ValueError(f"batch_fraction: {self.batch_fraction!r} does not apply to {name} "
                             f"(full batch); allowed: only with sgd or psgd")
        else:
            _set(self, "batch_fraction", 1.0)
        if name == "psgd":
            tau = 1.0 if self.persistence is None else self.persistence
            tau = _number("persistence", tau, low=0, low_open=True)
            ell = self.batch_fraction
            lowest = lr * max(1.0, (1.0 - ell) / ell)
            if tau < lowest * (1 - 1e-12):
                raise ValueError(f"persistence: {tau!r} makes a switching probability per step exceed 1 "
                                 f"(lr/tau = {lr / tau:g}, (1-ell) lr/(ell tau) = {(1 - ell) * lr / (ell * tau):g}); "
                                 f"allowed: persistence >= {lowest:g} for lr = {lr:g}, batch_fraction = {ell:g}")
            _set(self, "persistence", tau)
        elif self.persistence is not None:
            raise ValueError(f"persistence: {self.persistence!r} does not apply to {name}; allowed: only with psgd")
        _set(self, "temperature", _number("temperature", self.temperature, low=0))
        schedule = self.temperature_schedule
        if schedule is not None:
            pairs = []
            for i, item in enumerate(schedule):
                if not (isinstance(item, (tuple, list)) and len(item) == 2):
                    raise ValueError(f"temperature_schedule: entry {i} = {item!r} is not a (t_start, T) pair")
                pairs.append((_number(f"temperature_schedule[{i}].t_start", item[0], low=0),
                               _number(f"temperature_schedule[{i}].T", item[1], low=0)))
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
            _set(self, "anneal_at", _number("anneal_at", self.anneal_at, low=0, low_open=True))
            if self.temperature_schedule is not None:
                raise ValueError("anneal_at: give either anneal_at or temperature_schedule, not both")
        temps = [T for _, T in self.schedule()]
        if name == "gd" and any(T > 0 for T in temps):
            raise ValueError(f"temperature: {max(temps):g} > 0 with gd; allowed: 0 (use algorithm 'langevin' "
                             f"for gradient descent with noise)")
        if name == "langevin" and not any(T > 0 for T in temps):
            raise ValueError("temperature: langevin needs a temperature > 0 somewhere; allowed: temperature > 0 "
                             "or a temperature_schedule with a positive value")
        _set(self, "rescale", _flag("rescale", self.rescale))

    def schedule(self) -> tuple[tuple[float, float], ...]:
        """The temperature as ``(t_start, T)`` pairs (a constant temperature is one pair)."""
        if self.anneal_at is not None:
            return ((0.0, self.temperature), (self.anneal_at, 0.0))
        return self.temperature_schedule or ((0.0, self.temperature),)

    @property
    def selection(self) -> str:
        return {"gd": "full", "langevin": "full", "sgd": "bernoulli", "psgd": "persistent"}[self.name]

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
    kind: str = "sphere"
    ridge: float = 0.0

    def __post_init__(self):
        _choice("constraint", self.kind, CONSTRAINTS)
        _set(self, "ridge", _number("ridge", self.ridge, low=0))
        if self.kind == "sphere" and self.ridge != 0.0:
            raise ValueError(f"ridge: {self.ridge!r} does not apply to the sphere constraint; "
                             f"allowed: 0, or constraint 'ridge'")


@dataclass(frozen=True)
class Initialization:
    """Warm start (eq 11): ``w(0) = m0 w0 + c z_perp``, ``|w(0)|^2 = n``; ``m0 = 0`` is a random start.
    Ridge (eq C.2): ``w(0) = m0 w0 + z``."""
    m0: float = 0.2

    def __post_init__(self):
        _set(self, "m0", _number("m0", self.m0, low=0, high=1))


@dataclass(frozen=True)
class Recording:
    """Observables at ``t = k lr`` for the steps ``k`` of a grid over ``[0, t_max]`` that always holds 0
    and ``t_max``: ``points`` log-spaced (default) or linearly spaced steps, or explicit ``times``."""
    t_max: float = 100.0
    points: int = 100
    grid: str = "log"
    times: tuple[float, ...] | None = None

    def __post_init__(self):
        _set(self, "t_max", _number("t_max", self.t_max, low=0, low_open=True))
        _set(self, "points", _integer("points", self.points, low=2))
        _choice("grid", self.grid, GRIDS)
        if self.times is not None:
            times = tuple(_number(f"times[{i}]", t, low=0, high=self.t_max,
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
        return n


@dataclass(frozen=True)
class Stopping:
    """Success: training loss per sample below ``tol`` (checked every step for full-batch algorithms,
    every ``check_interval`` time units and at the recording times otherwise). ``early_stop`` ends a
    seed at success and carries its final state forward on the recording grid."""
    tol: float = 1e-7
    early_stop: bool = False
    check_interval: float = 1.0

    def __post_init__(self):
        _set(self, "tol", _number("tol", self.tol, low=0, low_open=True))
        _set(self, "early_stop", _flag("early_stop", self.early_stop))
        _set(self, "check_interval", _number("check_interval", self.check_interval, low=0, low_open=True))

    def check_every(self, lr: float) -> int:
        return max(1, int(round(self.check_interval / lr)))


@dataclass(frozen=True)
class SimulationSpec:
    """Everything that determines a simulation's result, with ``seeds`` trajectories
    ``first_seed, ..., first_seed + seeds - 1`` drawn from the root seed ``seed``."""
    problem: Problem = field(default_factory=Problem)
    algorithm: Algorithm = field(default_factory=Algorithm)
    constraint: Constraint = field(default_factory=Constraint)
    init: Initialization = field(default_factory=Initialization)
    recording: Recording = field(default_factory=Recording)
    stopping: Stopping = field(default_factory=Stopping)
    seeds: int = 50
    first_seed: int = 0
    seed: int = 0

    def __post_init__(self):
        for name, cls in _GROUPS.items():
            if not isinstance(getattr(self, name), cls):
                raise ValueError(f"{name}: expected a {cls.__name__}, got {type(getattr(self, name)).__name__}")
        _set(self, "seeds", _integer("seeds", self.seeds, low=1))
        _set(self, "first_seed", _integer("first_seed", self.first_seed, low=0))
        _set(self, "seed", _integer("seed", self.seed, low=0))
        self.recording.n_steps(self.algorithm.lr)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "SimulationSpec":
        return spec_from_dict(cls, d, _GROUPS)

    @classmethod
    def from_flat(cls, **kw) -> "SimulationSpec":
        """Build from the flat keyword names of ``prcy.simulate`` and the command line."""
        return spec_from_flat(cls, kw, _GROUPS, FLAT)


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def spec_from_dict(cls, d: dict, groups: dict):
    """A spec of class ``cls`` from its nested dict (``to_dict``, or JSON read back: lists become the
    tuples the frozen groups hold); ``groups`` maps a field name to its group class. Unknown fields
    are named."""
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


def spec_from_flat(cls, kw: dict, groups: dict, flat: dict):
    """A spec of class ``cls`` from flat option names; ``flat`` maps a name to ``(group or None, field)``."""
    unknown = set(kw) - set(flat)
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)}; allowed: {', '.join(sorted(flat))}")
    values: dict[str, dict] = {name: {} for name in groups}
    top = {}
    for key, value in kw.items():
        where, attr = flat[key]
        (values[where] if where else top)[attr] = value
    return cls(**{name: groups[name](**v) for name, v in values.items()}, **top)


# options that an algorithm does not use (its spec rejects them when given explicitly)
NOT_APPLICABLE = {
    "gd": {"batch_fraction", "persistence", "temperature", "temperature_schedule", "anneal_at"},
    "langevin": {"batch_fraction", "persistence"},
    "sgd": {"persistence"},
    "psgd": set(),
}


def applicable_options(algorithm: str, options: dict) -> dict:
    """``options`` without those that ``algorithm`` does not use (for runs and sweeps that combine
    several algorithms under one set of options)."""
    _choice("algorithm", algorithm, ALGORITHMS)
    return {k: v for k, v in options.items() if k not in NOT_APPLICABLE[algorithm]}


_GROUPS = {"problem": Problem, "algorithm": Algorithm, "constraint": Constraint,
           "init": Initialization, "recording": Recording, "stopping": Stopping}

# flat keyword -> (group, field)
FLAT = {
    "problem": ("problem", "name"), "alpha": ("problem", "alpha"), "n": ("problem", "n"),
    "n_test": ("problem", "n_test"), "precision": ("problem", "precision"),
    "share_data": ("problem", "share_data"), "labels": ("problem", "labels"), "loss": ("problem", "loss"),
    "algorithm": ("algorithm", "name"), "lr": ("algorithm", "lr"),
    "batch_fraction": ("algorithm", "batch_fraction"), "persistence": ("algorithm", "persistence"),
    "temperature": ("algorithm", "temperature"),
    "temperature_schedule": ("algorithm", "temperature_schedule"), "anneal_at": ("algorithm", "anneal_at"),
    "rescale": ("algorithm", "rescale"),
    "constraint": ("constraint", "kind"), "ridge": ("constraint", "ridge"),
    "m0": ("init", "m0"),
    "t_max": ("recording", "t_max"), "points": ("recording", "points"), "grid": ("recording", "grid"),
    "times": ("recording", "times"),
    "tol": ("stopping", "tol"), "early_stop": ("stopping", "early_stop"),
    "check_interval": ("stopping", "check_interval"),
    "seeds": (None, "seeds"), "first_seed": (None, "first_seed"), "seed": (None, "seed"),
}
