"""The option table: every option of prcy, declared once.

A row (``Option``) says an option's flat name (the keyword of ``prcy.simulate`` / ``prcy.dmft.solve``,
the TOML key, and, with ``-`` for ``_``, the command-line option), where it lives in the spec
(``"group.field"``), its type, default, allowed values (choices, or a range with a sanity bound
``at_most``), unit, help, the TOML section of a sweep grid, whether a sweep may sweep it, and what
it applies to (conditions on other options: ``algorithm``, ``optimizer``, ``problem``, ``constraint``,
``init``, ``success``, ``loss``).

Three tables: ``SIMULATION`` (``SimulationSpec``, ``prcy simulate``, ``prcy sweep``), ``DMFT``
(``DMFTSpec``, ``prcy dmft``) and ``EXECUTION`` (how a run is executed, not what it computes:
threads, processes, seed blocks). From them come the specs' defaults and range checks
(``Option.check``), the flat names (``flat_paths``), which options apply where (``applies``,
``applicable_options``, ``runs_without_unused``), the TOML sections (``sections``), the options a
sweep may not sweep, and the command-line options of ``prcy simulate``, ``prcy dmft`` and
``prcy sweep`` (``prcy.cli`` builds them from the rows).

One rule for options that do not apply: a spec stores the option's default there (``to_dict`` is
stable) and refuses any other value; an option given explicitly where it does not apply is refused;
with several runs at once (a list of algorithms, a sweep) an option is dropped from the runs it does
not apply to and refused only when it applies to none.

This module imports nothing heavy: the command line reads it to build ``--help``.
"""
from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass, field, replace
from typing import Any

MIXTURES = ("mixture-2", "mixture-3")       # Gaussian mixtures (Mignacco et al. 2020)
PROBLEMS = ("phase-retrieval", "linear-regression", "door") + MIXTURES
CLASSIFIERS = ("door",) + MIXTURES         # labels +-1, a 0/1 error: train_accuracy, success train-accuracy
DMFT_PROBLEMS = ("phase-retrieval", "linear-regression") + MIXTURES
# the built-in losses; the loss a problem uses unless ``loss`` names another
MARGIN_LOSSES = ("logistic", "square", "hinge")                  # l(y h) of a linear classifier
QUADRATIC_LOSSES = tuple("quadratic-" + name for name in MARGIN_LOSSES)    # l(y (h^2 - L^2))
LOSSES = (("phase-retrieval", "linear-regression", "absolute", "door-square", "door-logistic")
          + MARGIN_LOSSES + QUADRATIC_LOSSES)
DEFAULT_LOSS = {"phase-retrieval": "phase-retrieval", "linear-regression": "linear-regression",
                "door": "door-square", "mixture-2": "logistic", "mixture-3": "quadratic-logistic"}
SMOOTHED_LOSSES = ("absolute", "door-square", "door-logistic")    # train on sqrt(h^2 + smoothing)
COMMITTEE_PROBLEMS = ("phase-retrieval", "door")       # a student with hidden units (--hidden K > 1)
COMMITTEE_LOSSES = ("phase-retrieval", "absolute", "door-square", "door-logistic")   # with a committee form
TEACHERS = ("gaussian", "rademacher")
GRADIENT_ALGORITHMS = ("gd", "sgd", "psgd", "langevin")
ALGORITHMS = GRADIENT_ALGORITHMS + ("amp",)     # amp: the GAMP baseline (prcy.amp), time = iteration
OPTIMIZERS = ("plain", "momentum", "nesterov", "adam")
CONSTRAINTS = ("sphere", "ridge")
INITS = ("warm", "random", "spectral")
PREPROCESSINGS = ("square", "truncated", "optimal")       # T(y) of the spectral start (prcy.analysis.spectral)
SUCCESS = ("train-loss", "test-error", "train-accuracy")
PRECISIONS = ("float64", "float32")
LABELS = ("teacher", "random", "fresh")
GRIDS = ("log", "linear")
NU_FORMS = ("A.29", "A.19")
M_EQUATIONS = ("eq14", "A.23")
CHAINS = ("flow", "steps")         # persistent SGD's selection in the DMFT
SPHERES = ("multiplier", "projection")   # the DMFT's spherical constraint: Lagrange multiplier or the exact projection

# sanity bounds shared by several rows
MAX_TIME = 1e9            # any time: t_max, anneal_at, check_interval, schedule start times, persistence
MAX_STEPS = 10 ** 10      # time steps of one trajectory, t_max / lr (checked by SimulationSpec)
MAX_DMFT_POINTS = 10 ** 5  # grid points of a DMFT solve, t_max / dt + 1 (its kernels are K x K)
MAX_SEED = 2 ** 63 - 1    # the root seed and seed indices are stored as 64-bit NetCDF integers
# the fewest converged replicas whose standard error --target-se trusts: estimated from n replicas, the
# standard error itself is uncertain by about 1 / sqrt(2 (n - 1)) of its value (27% at 8; 71% at 2)
TARGET_SE_MIN_REPLICAS = 8
MAX_THREADS = 4096

KINDS = ("float", "int", "bool", "choice", "loss", "schedule", "times")


def format_number(x) -> str:
    """``1e+06`` -> ``1e6``; ``2**63 - 1`` -> ``2^63 - 1``."""
    if x == MAX_SEED:
        return "2^63 - 1 (int64)"
    if isinstance(x, int) and abs(x) < 10 ** 6:
        return str(x)
    text = f"{x:g}"
    return re.sub(r"e([+-])0*(\d)", lambda m: "e" + ("-" if m.group(1) == "-" else "") + m.group(2), text)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def range_text(low=None, high=None, low_open=False, high_open=False, at_most=None, integer=False) -> str:
    """``"a finite number > 0, at most 1e6"``, ``"(0, 1]"``, ``"an integer >= 1, at most 1e7"``."""
    what = "an integer" if integer else "a finite number"
    if low is not None and high is not None:
        text = (f"{'(' if low_open else '['}{format_number(low)}, {format_number(high)}{')' if high_open else ']'}")
        return f"{what} in {text}" if integer else text
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {format_number(low)}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {format_number(high)}")
    text = " ".join([what] + parts)
    return text + (f", at most {format_number(at_most)}" if at_most is not None else "")


def check_number(name: str, value: Any, *, low=None, high=None, low_open=False, high_open=False, at_most=None,
                 allowed: str | None = None) -> float:
    """``value`` as a finite float inside the bounds (``at_most``: a sanity bound), else a
    ``ValueError`` naming ``name``, the value and what is allowed."""
    rng = allowed or range_text(low, high, low_open, high_open, at_most)
    if not _is_real(value):
        raise ValueError(f"{name}: {value!r} is not a number; allowed: {rng}")
    try:
        v = float(value)
    except OverflowError:
        raise ValueError(f"{name}: {value!r} is not allowed; allowed: {rng}") from None
    ok = math.isfinite(v)
    if ok and low is not None:
        ok = v > low if low_open else v >= low
    if ok and high is not None:
        ok = v < high if high_open else v <= high
    if ok and at_most is not None:
        ok = v <= at_most
    if not ok:
        raise ValueError(f"{name}: {value!r} is not allowed; allowed: {rng}")
    return v


def check_integer(name: str, value: Any, *, low: int, at_most: int | None = None) -> int:
    """``value`` as an int in ``[low, at_most]``, else a ``ValueError`` naming ``name``."""
    if not _is_integer(value) or value < low or (at_most is not None and value > at_most):
        raise ValueError(f"{name}: {value!r} is not allowed; allowed: "
                         f"{range_text(low=low, at_most=at_most, integer=True)}")
    return int(value)


def check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name}: {value!r} is not allowed; allowed: {', '.join(allowed)}")
    return value


def check_flag(name: str, value: Any) -> bool:
    if not (isinstance(value, bool) or type(value).__name__ == "bool_"):     # numpy.bool_ without numpy
        raise ValueError(f"{name}: {value!r} is not allowed; allowed: true or false")
    return bool(value)


# losses published by installed packages: entry points of this group, each a capsule or a loss factory
LOSS_ENTRY_POINTS = "prcy.losses"


def plugin_losses() -> dict:
    """The entry points of the group ``LOSS_ENTRY_POINTS`` by name (nothing is imported)."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=LOSS_ENTRY_POINTS)}


def check_loss_reference(value: Any) -> str:
    """A loss given by name: a built-in loss, a loss that an installed package publishes under the
    entry-point group ``prcy.losses``, or ``"module:attr"`` (a ``"prcy.Loss.v2"`` capsule or a
    function marked with ``prcy.problems.loss_factory``, importable by every worker of a sweep;
    ``prcy.problems.load_loss``)."""
    if isinstance(value, str) and (value in LOSSES or re.fullmatch(r"[\w.]+:\w+", value)
                                   or value in plugin_losses()):
        return value
    published = sorted(plugin_losses())
    raise ValueError(f"loss: {value!r} is not allowed; allowed: {', '.join(LOSSES + tuple(published))} or "
                     f"'module:attr' (a prcy.Loss.v2 capsule or a function marked as a prcy loss factory)")


@dataclass(frozen=True)
class Option:
    """One row of the option table (see the module docstring).

    ``field``: ``"group.field"`` in the spec, ``"field"`` at its top level, ``None`` for an option of
    the execution (``EXECUTION``). ``kind``: one of ``KINDS``. ``optional``: ``None`` is allowed (it
    means what ``help`` says). ``at_most``: the sanity bound of a number. ``applies``: conditions
    ``(option, allowed values)`` that must all hold. ``unused``: what a spec stores where the option
    does not apply, when that is not ``default``. ``cli_default``: ``prcy simulate``'s default where
    it differs from the library's (a laptop-size run; its help says so). ``note``: added to the "does
    not apply" error.
    """
    name: str
    field: str | None
    kind: str
    default: Any
    help: str
    section: str | None = None
    choices: tuple[str, ...] = ()
    low: float | None = None
    low_open: bool = False
    high: float | None = None
    high_open: bool = False
    at_most: float | None = None
    unit: str = ""
    applies: tuple[tuple[str, tuple[str, ...]], ...] = ()
    sweepable: bool = True
    optional: bool = False
    unused: Any = field(default=..., repr=False)
    cli_default: Any = field(default=..., repr=False)
    note: str = ""
    by_problem: tuple[tuple[tuple[str, ...], Any], ...] = ()

    def default_for(self, problem: str):
        """The default on ``problem``: ``default``, unless a ``by_problem`` pair ``(problems, value)``
        names ``problem``."""
        for problems, value in self.by_problem:
            if problem in problems:
                return value
        return self.default

    def __post_init__(self):
        if self.kind not in KINDS or (self.kind == "choice") != bool(self.choices):
            raise ValueError(f"option table: row {self.name!r} has kind {self.kind!r} and choices {self.choices!r}")

    @property
    def flag(self) -> str:
        """The command-line spelling."""
        return "--" + self.name.replace("_", "-")

    @property
    def group(self) -> str | None:
        """The spec group (``None``: top level)."""
        return self.field.split(".")[0] if self.field and "." in self.field else None

    @property
    def attribute(self) -> str:
        return self.field.split(".")[-1]

    @property
    def stored_unused(self):
        """What a spec holds where this option does not apply."""
        return self.default if self.unused is ... else self.unused

    def allowed(self) -> str:
        """What is allowed, as the error messages and ``--help`` say it."""
        if self.kind == "choice":
            return ", ".join(self.choices)
        if self.kind == "bool":
            return "true or false"
        if self.kind == "loss":
            return (f"{', '.join(LOSSES)}, a loss published under the entry points {LOSS_ENTRY_POINTS!r}, "
                    f"or 'module:attr'")
        if self.kind == "schedule":
            return (f"pairs (t_start, T), starting at t = 0, start times increasing, at most "
                    f"{format_number(MAX_TIME)}")
        if self.kind == "times":
            return "times in [0, t_max]"
        return range_text(self.low, self.high, self.low_open, self.high_open, self.at_most,
                          integer=self.kind == "int")

    def check(self, value):
        """``value`` checked against the row (``ValueError`` naming the option otherwise), as stored."""
        if value is None and self.optional:
            return None
        if self.kind == "float":
            return check_number(self.name, value, low=self.low, high=self.high, low_open=self.low_open,
                                high_open=self.high_open, at_most=self.at_most)
        if self.kind == "int":
            return check_integer(self.name, value, low=self.low, at_most=self.at_most)
        if self.kind == "bool":
            return check_flag(self.name, value)
        if self.kind == "choice":
            return check_choice(self.name, value, self.choices)
        if self.kind == "loss":
            return check_loss_reference(value)
        return value              # schedule, times: checked by their group, which knows the other fields

    def parse(self, text: str):
        """A value from command-line text (a bool comes as a bool); the row's check follows."""
        if not isinstance(text, str):
            return text
        if self.kind == "schedule":
            return parse_schedule(text)
        try:
            if self.kind == "float":
                return float(text)
            if self.kind == "int":
                if not re.fullmatch(r"[+-]?\d+", text.strip()):
                    raise ValueError
                return int(text)
            if self.kind == "bool":
                return {"true": True, "false": False}[text.lower()]
            if self.kind == "times":
                return tuple(float(t) for t in text.split(",") if t.strip())
        except (ValueError, KeyError):
            raise ValueError(f"{self.name}: {text!r} is not allowed; allowed: {self.allowed()}") from None
        return text

    def describe(self) -> str:
        """The help text: what the option is, what is allowed, its unit, where it applies."""
        text = self.help.rstrip(".") + "."
        if self.kind not in ("choice", "bool"):
            text += f" Allowed: {self.allowed()}."
        if self.unit:
            text += f" Unit: {self.unit}."
        if self.applies:
            text += f" Only with {conditions_text(self.applies)}."
        for problems, value in self.by_problem:
            text += f" Default on {', '.join(problems)}: {format_value(value)}."
        return text


def format_value(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(format_value(v) for v in value)
    return format_number(value) if isinstance(value, (int, float)) else str(value)


def conditions_text(conditions) -> str:
    return " and ".join(f"{key} {', '.join(values)}" for key, values in conditions)


def parse_schedule(text: str) -> tuple[tuple[float, float], ...]:
    """``"0:1,700:0"`` -> ``((0.0, 1.0), (700.0, 0.0))``: pairs ``t_start:T``."""
    pairs = []
    for item in text.split(","):
        parts = item.split(":")
        try:
            if len(parts) != 2:
                raise ValueError
            pairs.append((float(parts[0]), float(parts[1])))
        except ValueError:
            raise ValueError(f"temperature_schedule: {item!r} in {text!r} is not 't_start:T'; "
                             f"example: '0:1,700:0' (T = 1 until t = 700, then 0)") from None
    return tuple(pairs)


STOCHASTIC = (("algorithm", ("sgd", "psgd")),)
GRADIENT = (("algorithm", GRADIENT_ALGORITHMS),)
AMP = (("algorithm", ("amp",)),)
NOISY = (("algorithm", ("langevin", "sgd", "psgd")),)
WITH_VELOCITY = ("momentum", "nesterov", "adam")


def _rows(*rows: Option) -> dict[str, Option]:
    return {row.name: row for row in rows}


SIMULATION = _rows(
    # problem: the data, the teacher and the loss
    Option("problem", "problem.name", "choice", "phase-retrieval", "Teacher-student problem", "problem",
           choices=PROBLEMS),
    Option("alpha", "problem.alpha", "float", 3.0, "Samples per dimension, M = round(alpha N)", "problem",
           low=0, low_open=True, at_most=1e6),
    Option("n", "problem.n", "int", 1000, "Dimension N (at least 2: the warm start m(0) = m0 needs a direction "
           "orthogonal to the teacher)", "problem", low=2, at_most=10 ** 7, cli_default=256),
    Option("n_test", "problem.n_test", "int", 0, "Held-out samples for an empirical test error "
           "(0: the formula only)", "problem", low=0, at_most=10 ** 7),
    Option("precision", "problem.precision", "choice", "float64", "Storage precision of the inputs X "
           "(fields and gradients are accumulated in float64)", "problem", choices=PRECISIONS),
    Option("share_data", "problem.share_data", "bool", False, "One teacher and dataset for all seeds "
           "(only the initialization and the noise vary)", "problem"),
    Option("labels", "problem.labels", "choice", "teacher", "Training labels: the teacher's; random: the "
           "teacher's permuted among the samples (reshuffled labels); fresh: drawn from the label law "
           "independently of the inputs (label(z), z ~ N(0, 1): the teacher's field variance; teacher problems "
           "only)", "problem", choices=LABELS),
    Option("loss", "problem.loss", "loss", None, "Loss: a built-in name, the name of a loss an installed "
           "package publishes, or 'module:attr' (a prcy.Loss.v2 capsule or a function marked as a prcy loss "
           "factory; this imports the module: docs/engine.md) [default: the problem's]", "problem", optional=True,
           applies=GRADIENT),
    Option("teacher", "problem.teacher", "choice", "gaussian", "Teacher vector: Gaussian or Rademacher "
           "entries (|w0|^2 = N)", "problem", choices=TEACHERS),
    Option("onset", "problem.onset", "float", 0.67449, "Door: labels y = sign(|h0| - onset); mixture-3: L of "
           "the classifier sign(h^2 - L^2)", "problem", low=0, low_open=True, at_most=1e3,
           applies=(("problem", ("door", "mixture-3")),), by_problem=((("mixture-3",), 0.7),)),
    Option("delta", "problem.delta", "float", 0.5, "Cluster variance Delta of a Gaussian mixture, "
           "x = c v*/sqrt(N) + sqrt(Delta) z", "problem", low=0, low_open=True, at_most=1e6,
           applies=(("problem", MIXTURES),), by_problem=((("mixture-3",), 0.05),)),
    Option("hidden", "problem.hidden", "int", 1, "Hidden units K of the student: output (1/K) sum_k g(h_k), "
           "h_k = w_k.x/sqrt(N), g(h) = h^2 (phase retrieval) or sqrt(h^2 + smoothing) (door); a committee machine, "
           "Dmitriev 2021 eq 2.3 (1: a single unit; docs/engine.md, \"Committee machines\")", "problem", low=1,
           at_most=10 ** 6, applies=GRADIENT + (("problem", COMMITTEE_PROBLEMS),)),
    Option("smoothing", "problem.smoothing", "float", 1e-6, "eps of the smoothed modulus sqrt(h^2 + eps) "
           "the loss trains on", "problem", low=0, low_open=True, at_most=1e3,
           applies=(("loss", SMOOTHED_LOSSES),)),
    # dynamics: the algorithm (selection, noise, update rule) and the constraint
    Option("algorithm", "algorithm.name", "choice", "gd", "Algorithm (prcy simulate and prcy sweep: one or "
           "more, comma-separated)", "dynamics", choices=ALGORITHMS, cli_default=("gd", "sgd", "psgd")),
    Option("lr", "algorithm.lr", "float", 0.01, "Learning rate eta (physical time per step)", "dynamics",
           low=0, low_open=True, at_most=1e3, applies=GRADIENT, unused=1.0,
           note="amp stores 1: its time is the iteration"),
    Option("amp_damping", "algorithm.amp_damping", "float", 0.0, "AMP: weight of the previous iterate in the "
           "update of the output message, the precision, the estimate and its variance (0: plain GAMP, whose "
           "iterates follow the state evolution; the fixed points do not depend on it; 0.5 avoids the divergences "
           "of plain GAMP from a random start, docs/theory.md, \"Finite-N AMP\")", "dynamics", low=0, high=1,
           high_open=True, applies=AMP),
    Option("batch_fraction", "algorithm.batch_fraction", "float", 0.5, "Mini-batch fraction ell",
           "dynamics", low=0, high=1, low_open=True, applies=STOCHASTIC, unused=1.0, optional=True),
    Option("persistence", "algorithm.persistence", "float", 1.0, "Persistence time tau of the selection "
           "chain (eq 7); at least lr max(1, (1 - ell)/ell)", "dynamics", low=0, low_open=True,
           at_most=MAX_TIME, unit="time", applies=(("algorithm", ("psgd",)),), unused=None, optional=True),
    Option("temperature", "algorithm.temperature", "float", 0.0, "Temperature T of the Langevin noise",
           "dynamics", low=0, at_most=1e6, applies=NOISY,
           note="use algorithm 'langevin' for gradient descent with noise"),
    Option("temperature_schedule", "algorithm.temperature_schedule", "schedule", None,
           "Piecewise-constant temperature 't0:T0,t1:T1,...', e.g. '0:1,700:0' (T = 1 until t = 700, "
           "then 0); instead of temperature", "dynamics", optional=True, sweepable=False, applies=NOISY,
           note="use algorithm 'langevin' for gradient descent with noise"),
    Option("anneal_at", "algorithm.anneal_at", "float", None, "Set the temperature to 0 from this time on",
           "dynamics", low=0, low_open=True, at_most=MAX_TIME, unit="time", optional=True, applies=NOISY),
    Option("rescale", "algorithm.rescale", "bool", True, "Divide the stochastic gradient by ell (Mignacco et "
           "al. 2021, eq 8; the mixtures' eq 7 of Mignacco et al. 2020 does not)", "dynamics", applies=STOCHASTIC,
           by_problem=((MIXTURES, False),)),
    Option("optimizer", "algorithm.optimizer", "choice", "plain", "Update rule: plain gradient step, "
           "heavy-ball momentum, Nesterov momentum or Adam", "dynamics", choices=OPTIMIZERS, applies=GRADIENT),
    Option("momentum", "algorithm.momentum", "float", 0.9, "Momentum coefficient", "dynamics", low=0, high=1,
           high_open=True, applies=(("optimizer", ("momentum", "nesterov")),)),
    Option("beta1", "algorithm.beta1", "float", 0.9, "Adam: decay of the first-moment average", "dynamics",
           low=0, high=1, high_open=True, applies=(("optimizer", ("adam",)),)),
    Option("beta2", "algorithm.beta2", "float", 0.999, "Adam: decay of the second-moment average",
           "dynamics", low=0, high=1, high_open=True, applies=(("optimizer", ("adam",)),)),
    Option("adam_eps", "algorithm.adam_eps", "float", 1e-8, "Adam: eps added to the root of the second "
           "moment", "dynamics", low=0, low_open=True, at_most=1.0, applies=(("optimizer", ("adam",)),)),
    Option("project_velocity", "algorithm.project_velocity", "bool", False, "Project the optimizer's "
           "velocity on the sphere's tangent space after each step", "dynamics",
           applies=(("optimizer", WITH_VELOCITY), ("constraint", ("sphere",)))),
    Option("constraint", "constraint.kind", "choice", "sphere", "Spherical projection (|w|^2 = N) or a "
           "ridge term", "dynamics", choices=CONSTRAINTS, by_problem=((MIXTURES, "ridge"),), applies=GRADIENT),
    Option("ridge", "constraint.ridge", "float", 0.0, "Ridge strength lambda (0: plain descent)", "dynamics",
           low=0, at_most=1e6, applies=(("constraint", ("ridge",)),)),
    # init: w(0)
    Option("init", "init.kind", "choice", "warm", "Initialization: warm start m(0) = m0 (eq 11), w(0) "
           "independent of the teacher (m(0) ~ N^-1/2), or the leading eigenvector of (1/M) sum_mu T(y_mu) x_mu "
           "x_mu^T (spectral; phase retrieval)", "init", choices=INITS, by_problem=((MIXTURES, "random"),)),
    Option("preprocessing", "init.preprocessing", "choice", "optimal", "T(y) of the spectral start: y^2 "
           "(square), y^2 for |y| <= 3 (truncated), or max(1 - 1/y^2, -1000) (optimal: weak recovery from "
           "alpha = 1/2)", "init", choices=PREPROCESSINGS, applies=(("init", ("spectral",)),)),
    Option("m0", "init.m0", "float", 0.2, "Initial magnetization of the warm start (amp: also its |w|^2/N, "
           "the state evolution's m0)", "init", low=0, high=1,
           applies=(("init", ("warm",)),)),
    Option("init_variance", "init.variance", "float", 1.0, "Variance R of the random start w(0) ~ N(0, R I) "
           "with a ridge", "init", low=0, at_most=1e6, applies=(("init", ("random",)), ("constraint", ("ridge",)))),
    # landscape: Hessian observables on the recording grid (prcy.hessian)
    Option("hessian", "recording.hessian", "int", 0, "Record the K lowest eigenpairs of the training loss' "
           "Hessian (on the sphere: restricted to the tangent space, with the multiplier of the projected "
           "dynamics) at the recording times (0: none)", "recording", low=0, at_most=64),
    Option("hessian_every", "recording.hessian_every", "int", 1, "Hessian at every k-th recording time (the "
           "first and last always)", "recording", low=1, at_most=10 ** 6),
    Option("hessian_density", "recording.hessian_density", "int", 0, "With --hessian: also the histogram of the "
           "Hessian's whole spectrum on this many equal bins of [hessian_low, hessian_high] at the same times "
           "(dense eigh for n <= 2048, stochastic Lanczos quadrature above; 0: none)", "recording", low=0,
           at_most=10 ** 5, sweepable=False),
    Option("hessian_low", "recording.hessian_low", "float", -20.0, "Lower end of the --hessian-density bins",
           "recording", low=-1e6, at_most=1e6, sweepable=False),
    Option("hessian_high", "recording.hessian_high", "float", 180.0, "Upper end of the --hessian-density bins "
           "(above hessian_low)", "recording", low=-1e6, at_most=1e6, sweepable=False),
    Option("overlap_units", "recording.overlap_units", "int", 16, "Record the overlap matrix Q = W W^T/N of "
           "the hidden units (K x K per seed and recording time) for a student of at most this many units",
           "recording", low=0, at_most=10 ** 6, applies=GRADIENT + (("problem", COMMITTEE_PROBLEMS),)),
    Option("label_moments", "recording.label_moments", "bool", False, "Record the moments E[h^a y^b] of the "
           "student's fields h and the training labels y over the training samples at the recording times "
           "((a, b) = (2,0), (4,0), (6,0), (2,2), (4,2), (2,4); Sarao Mannelli et al. 2020, eq 17)", "recording",
           sweepable=False, applies=GRADIENT),
    # recording: the time grid (shared by all runs of a sweep)
    Option("t_max", "recording.t_max", "float", 100.0, "Horizon (amp: the number of iterations)", "recording",
           low=0, low_open=True,
           at_most=MAX_TIME, unit="time", sweepable=False),
    Option("points", "recording.points", "int", 100, "Recording points (always including 0 and t_max)",
           "recording", low=2, at_most=10 ** 6, sweepable=False),
    Option("grid", "recording.grid", "choice", "log", "Spacing of the recording steps", "recording",
           choices=GRIDS, sweepable=False),
    Option("times", "recording.times", "times", None, "Explicit recording times, comma-separated [default: "
           "points on grid]", "recording", optional=True, unit="time", sweepable=False),
    # stopping: success and when a seed stops
    Option("success", "stopping.success", "choice", "train-loss", "Success criterion: training loss per "
           "sample below tol, test error below error_tol, or every training sample classified right at the end "
           "(train-accuracy; one criterion per file: not swept)", "stopping", choices=SUCCESS, sweepable=False),
    Option("tol", "stopping.tol", "float", 1e-7, "Training loss per sample below tol: success (success "
           "train-loss) and the --early-stop criterion", "stopping", low=0, low_open=True, at_most=1e6),
    Option("error_tol", "stopping.error_tol", "float", 5e-3, "Success: test error below error_tol",
           "stopping", low=0, low_open=True, at_most=1e6, applies=(("success", ("test-error",)),)),
    Option("grad_tol", "stopping.grad_tol", "float", 0.0, "Stop a seed when max_j |G_j| < grad_tol, G the "
           "step's gradient, tangent to the sphere there (0: never)", "stopping", low=0, at_most=1e6, applies=GRADIENT),
    Option("early_stop", "stopping.early_stop", "bool", False, "Stop a seed once its training loss per "
           "sample is below tol (its state is carried forward)", "stopping"),
    Option("check_interval", "stopping.check_interval", "float", 1.0, "Time between success checks of the "
           "stochastic algorithms (full-batch ones check every step)", "stopping", low=0, low_open=True,
           at_most=MAX_TIME, unit="time", applies=STOCHASTIC),
    # run: the seeds
    Option("seeds", "seeds", "int", 50, "Number of seeds (independent trajectories)", "run", low=1,
           at_most=10 ** 6, sweepable=False, cli_default=32),
    Option("first_seed", "first_seed", "int", 0, "Index of the first seed (to extend a run)", "run", low=0,
           at_most=MAX_SEED, sweepable=False),
    Option("seed", "seed", "int", 0, "Root random seed (a 64-bit NetCDF attribute)", "run", low=0,
           at_most=MAX_SEED, sweepable=False),
)

# the DMFT: N = infinity (no n, no data), plain updates, the problem's start (warm on the teacher problems,
# random on the mixtures), success by the training loss
_SHARED = ("lr", "batch_fraction", "persistence", "temperature", "temperature_schedule",
           "anneal_at", "rescale", "constraint", "ridge")
DMFT = _rows(
    Option("problem", "problem", "choice", "phase-retrieval", "Teacher-student problem or Gaussian mixture "
           "(docs/dmft.md, \"The mixture DMFT\")", choices=DMFT_PROBLEMS),
    Option("alpha", "alpha", "float", 3.0, "Samples per dimension", low=0, low_open=True, at_most=1e6),
    Option("loss", "loss", "loss", None, SIMULATION["loss"].help, optional=True),
    replace(SIMULATION["delta"], field="delta"),
    replace(SIMULATION["onset"], field="onset", help="L of the three-cluster classifier sign(h^2 - L^2)",
            default=SIMULATION["onset"].default_for("mixture-3"), by_problem=(), applies=(("problem", ("mixture-3",)),)),
    replace(SIMULATION["algorithm"], choices=GRADIENT_ALGORITHMS),        # amp's theory is its state evolution
    *(SIMULATION[name] for name in _SHARED),
    replace(SIMULATION["m0"], help="Initial magnetization m(0): the warm start's; on a mixture m(0) of its eq 18 "
            "(0: the limit d -> infinity; a random start in dimension d has E|m(0)| = sqrt(2R/(pi d)))",
            applies=(), by_problem=((MIXTURES, 0.0),)),
    replace(SIMULATION["init_variance"], help="Variance R of a mixture's random start w(0) ~ N(0, R I): "
            "h(0) ~ N(0, R) (eq 17)", applies=(("problem", MIXTURES),)),
    Option("dt", "solver.dt", "float", None, "Grid step [default: lr; sgd: must be lr]", low=0, low_open=True,
           at_most=MAX_TIME, unit="time", optional=True),
    Option("t_max", "solver.t_max", "float", 10.0, "Horizon", low=0, low_open=True, at_most=MAX_TIME,
           unit="time"),
    Option("samples", "solver.samples", "int", 10000, "Samples of the effective process", low=1,
           at_most=10 ** 7),
    Option("damping", "solver.damping", "float", 0.5, "Weight of the previous M_R in the update", low=0,
           high=1, high_open=True),
    Option("max_iter", "solver.max_iter", "int", 100, "Maximum number of iterations", low=1, at_most=10 ** 6),
    Option("tol", "solver.tol", "float", 1e-8, "Convergence: residual below tol", low=0, low_open=True,
           at_most=1e6),
    Option("nu_form", "solver.nu_form", "choice", "A.29", "Lagrange multiplier on the sphere: A.29 (from the "
           "kernels) or A.19 (from the samples)", choices=NU_FORMS),
    Option("m_equation", "solver.m_equation", "choice", "eq14", "Magnetization equation: eq14 (dm/dt = "
           "-nu_hat m - mu) or A.23 (nu_hat + delta_nu, as printed in appendix A)", choices=M_EQUATIONS),
    Option("chain", "solver.chain", "choice", "flow", "Persistent SGD's selection: the continuous-time chain of "
           "eq 7 (its lr -> 0 limit) seen at the grid times, any dt; or the simulations' chain, one step per grid "
           "point (dt = lr: the N -> infinity limit of the simulated algorithm; Mignacco et al. 2020, section 4)",
           choices=CHAINS, applies=(("algorithm", ("psgd",)),), by_problem=((MIXTURES, "steps"),)),
    Option("sphere", "solver.sphere", "choice", "multiplier", "Spherical constraint of the DMFT: the Lagrange "
           "multiplier nu_hat (--nu-form; the lr -> 0 limit) or the simulations' projection back to |w|^2 = N after "
           "every grid step (dt = lr: the N -> infinity limit of the simulated algorithm; docs/dmft.md)",
           choices=SPHERES, applies=(("constraint", ("sphere",)),)),
    Option("adaptive", "solver.adaptive", "bool", False, "Adaptive damping (raised when the residual grows)"),
    Option("anderson", "solver.anderson", "int", 5, "Depth of Anderson mixing (0: plain damped iteration)",
           low=0, at_most=100),
    Option("seed", "solver.seed", "int", 0, "Root random seed", low=0, at_most=MAX_SEED),
    Option("replicas", "solver.replicas", "int", None, "Independent solves along a replica dimension (mean "
           "and standard error with prcy.analysis.replica_summary) [default: one solve]", low=1, at_most=10 ** 6,
           optional=True),
    Option("first_replica", "solver.first_replica", "int", 0, "Index of the first replica (to extend an "
           "ensemble)", low=0, at_most=MAX_SEED),
    Option("target_se", "solver.target_se", "float", None, "Add replicas, in batches of --replicas, until the "
           f"standard error of m(t_max) over the converged replicas (at least {TARGET_SE_MIN_REPLICAS}) is below "
           "this (docs/dmft.md) [default: the ensemble of --replicas]", low=0, low_open=True, at_most=1e3,
           optional=True),
    Option("time_budget", "solver.time_budget", "float", None, "With --target-se: add no batch after this "
           "many seconds [default: no limit]", low=0, low_open=True, at_most=MAX_TIME, unit="s", optional=True),
    Option("antithetic", "solver.antithetic", "bool", False, "Antithetic pairs: sample S/2 + i is sample i with "
           "-h0 and the same h(0), noise and selection (unbiased; a smaller spread for persistent SGD, "
           "docs/validation.md 7f); needs an even --samples"),
    Option("response_kick", "solver.response_kick", "float", 0.0, "0: linear response (A.22); > 0: size of "
           "the kicks of h whose finite-difference response replaces it, for losses whose linear response "
           "is heavy-tailed (docs/dmft.md)", low=0, at_most=1e3),
    Option("window", "solver.window", "float", None, "Horizon windows: solve t <= window, then t <= 2 window, "
           "... with the earlier M_R frozen (the same fixed point; converges where the whole horizon at once "
           "stalls, docs/dmft.md) [default: the whole horizon at once]", low=0, low_open=True,
           at_most=MAX_TIME, unit="time", optional=True),
)

# how a run is executed (keywords of prcy.simulate, prcy.dmft.solve, prcy.sweep.run_sweep)
EXECUTION = _rows(
    Option("threads", None, "int", None, "Threads (per task in a sweep) [default: all the OpenMP default "
           "allows; sweeps: cores / processes]", low=1, at_most=MAX_THREADS, optional=True),
    Option("processes", None, "int", None, "Worker processes of a sweep [default: one per core]", low=1,
           at_most=MAX_THREADS, optional=True),
    Option("dask_workers", None, "int", None, "Run a sweep on a local Dask cluster with this many workers",
           low=1, at_most=MAX_THREADS, optional=True),
    Option("seeds_per_task", None, "int", None, "Split each grid point's seeds into tasks of this many "
           "seeds [default: one task per grid point]", "run", low=1, at_most=10 ** 6, optional=True,
           sweepable=False),
)

# options of a simulation that the DMFT does not take: prcy dmft and prcy.dmft.solve refuse them
NOT_IN_DMFT = tuple(name for name in SIMULATION if name not in DMFT)


def not_in_dmft_error(name: str, value: Any = None) -> ValueError:
    if name == "hidden":
        return ValueError(f"hidden: {value!r} is not allowed in the DMFT: the DMFT of committee machines is not "
                          f"implemented (docs/dmft.md, \"Committee machines\"); allowed: a single unit (omit --hidden)")
    return ValueError(f"{name}: not an option of the DMFT (N = infinity, plain updates, the problem's start: warm, "
                      f"random on a mixture; success by the training loss); allowed: {', '.join(DMFT)}")


def problem_defaults(table: dict[str, Option], values: dict[str, Any]) -> dict[str, Any]:
    """The problem's own defaults (``Option.by_problem``) of the options of ``table`` that ``values``
    (flat name -> value) does not give and that apply there."""
    problem = values.get("problem", table["problem"].default)
    filled = {name: row.default_for(problem) for name, row in table.items()
              if name not in values and row.by_problem and row.default_for(problem) != row.default}
    where = context(values)
    return {name: value for name, value in filled.items() if applies(table[name], where)}


def defaults(table: dict[str, Option]) -> dict[str, Any]:
    """Flat name -> library default."""
    return {name: row.default for name, row in table.items()}


def flat_paths(table: dict[str, Option]) -> dict[str, tuple[str | None, str]]:
    """Flat name -> ``(group or None, field)`` in the spec."""
    return {name: (row.group, row.attribute) for name, row in table.items() if row.field is not None}


def check_group(obj, group: str | None, table: dict[str, Option]) -> None:
    """Check (and store, coerced) every field of the frozen dataclass ``obj`` that ``table`` declares
    in ``group`` (``None``: the spec's top level)."""
    for row in table.values():
        if row.field is not None and row.group == group:
            object.__setattr__(obj, row.attribute, row.check(getattr(obj, row.attribute)))


def context(values: dict[str, Any]) -> dict[str, Any]:
    """The values the ``applies`` conditions look at, from flat values (the problem's defaults fill the
    gaps); the loss is the one that trains: ``loss``, or the problem's."""
    problem = values.get("problem", SIMULATION["problem"].default)
    out = {name: values.get(name, SIMULATION[name].default_for(problem))
           for name in ("algorithm", "optimizer", "problem", "constraint", "init", "success")}
    loss = values.get("loss")
    out["loss"] = loss if loss is not None else DEFAULT_LOSS.get(out["problem"], out["problem"])
    return out


def applies(row: Option, where: dict[str, Any]) -> bool:
    """Whether ``row`` applies in the context ``where`` (see ``context``)."""
    return all(where[key] in allowed for key, allowed in row.applies)


def not_applicable_error(row: Option, value, *wheres: dict[str, Any]) -> ValueError:
    """The error for ``row`` given as ``value`` where it does not apply (one or more contexts)."""
    failing = [(key, tuple(dict.fromkeys(w[key] for w in wheres if w[key] not in allowed)))
               for key, allowed in row.applies]
    failing = [(key, values) for key, values in failing if values]
    note = f" ({row.note})" if row.note else ""
    return ValueError(f"{row.name}: {value!r} does not apply to {conditions_text(failing)}; allowed: only with "
                      f"{conditions_text(row.applies)}{note}")


def check_applicable(table: dict[str, Option], values: dict[str, Any], given=()) -> None:
    """Refuse an option that does not apply in the context of ``values`` (flat name -> value): one
    whose value is not what a spec stores there, or one named in ``given`` (given explicitly)."""
    where = context(values)
    for name, value in values.items():
        row = table.get(name)
        if row is None or applies(row, where):
            continue
        if name in given or value != row.stored_unused:
            raise not_applicable_error(row, value, where)


def applicable_options(options: dict, table: dict[str, Option] = SIMULATION) -> dict:
    """``options`` without those that do not apply in their own context (``algorithm``, ``optimizer``,
    ...)."""
    where = context(options)
    return {k: v for k, v in options.items() if k not in table or applies(table[k], where)}


def runs_without_unused(runs: list[dict], table: dict[str, Option] = SIMULATION) -> list[dict]:
    """The options of several runs (one dict each, e.g. one per algorithm or grid cell), each without
    the options that do not apply to it; an option that applies to none of the runs is refused."""
    kept = [applicable_options(run, table) for run in runs]
    for name in {k for run in runs for k in run}:
        if name in table and not any(name in run for run in kept):
            given = [run for run in runs if name in run]
            raise not_applicable_error(table[name], given[0][name], *(context(run) for run in given))
    return kept


def sections(table: dict[str, Option]) -> dict[str, tuple]:
    """TOML section -> its option names, in table order."""
    out: dict[str, list[str]] = {}
    for row in table.values():
        if row.section is not None:
            out.setdefault(row.section, []).append(row.name)
    return {section: tuple(names) for section, names in out.items()}
