"""The option table (prcy.options): every option is reachable with the same name and default from
Python, the command line and TOML; specs, flat names, sections and the typer options follow the
table; one rule for options that do not apply; absurd values are one-line errors before any compute."""
import dataclasses
import json
import sys

import pytest
from typer.testing import CliRunner

import prcy
import prcy.dmft
from prcy import options as opt
from prcy.cli import app
from prcy.dmft import DMFTSpec
from prcy.specs import GROUPS, SimulationSpec
from prcy.sweep import NOT_SWEPT, SECTIONS, Sweep, load_grid_file, parse_overrides, run_sweep

runner = CliRunner()


def _where(row):
    """Flat options under which ``row`` applies (the first allowed value of each condition)."""
    return {key: values[0] for key, values in row.applies}


def _sample(row):
    """A valid value of ``row`` other than its default, and its command-line text."""
    if row.kind == "choice":
        value = next(c for c in reversed(row.choices) if c != row.default)
        if row.name == "problem" and row.field == "problem.name":
            value = "linear-regression"
        if row.name == "success":                  # train-accuracy needs a classifying problem
            value = "test-error"
        return value, value
    if row.kind == "bool":
        return (not row.default), None
    if row.kind == "loss":
        return "linear-regression", "linear-regression"
    if row.kind == "schedule":
        return ((0.0, 1.0), (2.0, 0.0)), "0:1,2:0"
    if row.kind == "times":
        return (0.0, 1.0), "0,1"
    if row.kind == "int":
        value = (row.default or row.low) + 3
        return value, str(value)
    if row.high is not None:
        value = (row.low + row.high) / 2
    else:
        value = 2.0 * row.default if row.default else 0.5
    if row.name == "persistence":
        value = 3.0
    return value, repr(value)


def _path_value(spec, row):
    return getattr(getattr(spec, row.group), row.attribute) if row.group else getattr(spec, row.attribute)


def _cli_args(row, value, text):
    if row.kind == "bool":
        return [row.flag if value else f"--no-{row.flag[2:]}"]
    return [row.flag, text]


@pytest.fixture
def captured(monkeypatch):
    """The options the commands pass to the library (the run itself is replaced by a stop)."""
    got = {}

    def stop(**kw):
        got.clear()
        got.update(kw)
        raise ValueError("captured")
    monkeypatch.setattr(sys.modules["prcy.simulate"], "simulate", stop)
    monkeypatch.setattr(prcy.dmft, "solve", stop)
    return got


@pytest.fixture(scope="module")
def simulate_help():
    return " ".join(runner.invoke(app, ["simulate", "--help"], terminal_width=400).output.split())


@pytest.fixture(scope="module")
def dmft_help():
    return " ".join(runner.invoke(app, ["dmft", "--help"], terminal_width=400).output.split())


@pytest.mark.parametrize("name", list(opt.SIMULATION))
def test_simulation_option_same_name_and_default_in_python_cli_and_toml(name, simulate_help, captured, tmp_path):
    row = opt.SIMULATION[name]
    where = _where(row)
    if name == "persistence" or where.get("algorithm") == "langevin":
        where["algorithm"] = "psgd"
    # Python: the spec's field holds the table's default; the flat name sets it
    spec = SimulationSpec.from_flat(**where)
    default = _path_value(spec, row)
    assert default == row.default, (name, default)
    value, text = _sample(row)
    extra = {"temperature": 1.0} if name in ("anneal_at",) else {}
    extra = {**extra, **({"algorithm": "langevin"} if name == "temperature_schedule" else {})}
    extra = {**extra, **({"n_test": 10} if name == "hidden" else {})}      # a committee's test error is held out
    extra = {**extra, **({"hessian": 1} if name == "hessian_density" else {})}      # the histogram needs the Hessian
    if name == "algorithm":
        value = "psgd"
        text = "psgd"
    assert _path_value(SimulationSpec.from_flat(**{**where, **extra, name: value}), row) == value
    # the command line: --name with the default the help states, and the value reaches prcy.simulate
    shown = row.cli_default if row.cli_default is not ... else row.default
    assert f"{row.flag} " in simulate_help
    if row.cli_default is not ...:
        assert (f"[default: {opt.format_value(shown)}, a laptop-size run; prcy.simulate, prcy sweep and grid "
                f"files: {opt.format_value(row.default)}]") in simulate_help
    elif shown is not None:
        assert f"[default: {opt.format_value(shown)}]" in simulate_help
    args = [*(a for k, v in {**where, **extra}.items() for a in (opt.SIMULATION[k].flag, opt.format_value(v))),
            *_cli_args(row, value, text)]
    result = runner.invoke(app, ["simulate", *args, "-o", str(tmp_path / "x.nc"), "--no-progress"])
    assert "error: captured" in result.output, (args, result.output)
    assert captured[name] == value
    # TOML: the same name in its section
    toml_value = {str: f'"{text}"', bool: str(value).lower()}.get(type(value), text)
    if row.kind == "schedule":
        toml_value = "[[0, 1], [2, 0]]"
    if row.kind == "times":
        toml_value = "[0.0, 1.0]"
    grid = tmp_path / "grid.toml"
    grid.write_text(f"[{row.section}]\n{name} = {toml_value}\n")
    loaded = load_grid_file(grid)[name]
    assert (tuple(map(tuple, loaded)) if row.kind == "schedule" else
            tuple(loaded) if row.kind == "times" else loaded) == value


@pytest.mark.parametrize("name", list(opt.DMFT))
def test_dmft_option_same_name_and_default_in_python_and_cli(name, dmft_help, captured, tmp_path):
    row = opt.DMFT[name]
    where = {key: value for key, value in _where(row).items() if key in opt.DMFT}
    if name == "persistence" or where.get("algorithm") == "langevin":
        where["algorithm"] = "psgd"
    if where.get("algorithm") == "psgd":
        where["dt"] = 0.01
    spec = DMFTSpec.from_flat(**where)
    assert _path_value(spec, row) == row.default
    assert f"{row.flag} " in dmft_help
    if row.default is not None:
        assert f"[default: {opt.format_value(row.default)}]" in dmft_help
    value, text = _sample(row)
    if name == "algorithm":
        value = text = "psgd"
    extra = {"temperature": 1.0} if name == "anneal_at" else {}
    extra = {**extra, **({"algorithm": "langevin"} if name == "temperature_schedule" else {})}
    args = [*(a for k, v in {**where, **extra}.items() for a in (opt.DMFT[k].flag, opt.format_value(v))),
            *_cli_args(row, value, text)]
    result = runner.invoke(app, ["dmft", *args, "-o", str(tmp_path / "x.nc"), "--no-progress"])
    assert "error: captured" in result.output, (args, result.output)
    assert captured[name] == value


def test_the_table_and_the_spec_dataclasses_declare_the_same_fields():
    paths = {row.field for row in opt.SIMULATION.values()}
    fields = {f"{g}.{f.name}" for g, cls in GROUPS.items() for f in dataclasses.fields(cls)}
    fields |= {f.name for f in dataclasses.fields(SimulationSpec) if f.name not in GROUPS}
    assert paths == fields
    dmft_fields = {f"solver.{f.name}" for f in dataclasses.fields(prcy.dmft.Solver)} | {"problem", "alpha", "loss"}
    assert dmft_fields <= {row.field for row in opt.DMFT.values()}
    assert set(SECTIONS) == {"problem", "dynamics", "init", "recording", "stopping", "run"}
    assert set(NOT_SWEPT) == {"t_max", "points", "grid", "times", "seeds", "seed", "seeds_per_task",
                              "temperature_schedule", "first_seed", "success", "hessian_density", "hessian_low",
                              "hessian_high", "label_moments"}
    assert SECTIONS["init"] == ("init", "preprocessing", "m0", "init_variance")
    assert {"success", "error_tol", "grad_tol"} < set(SECTIONS["stopping"])


def test_cli_options_are_the_contract_spellings():
    words = " ".join(runner.invoke(app, ["simulate", "--help"], terminal_width=400).output.split())
    for flag in ("--problem", "--algorithm", "--alpha", "--n", "--m0", "--lr", "--batch-fraction", "--persistence",
                 "--temperature", "--constraint", "--ridge", "--t-max", "--seeds", "--seed", "--tol", "--threads",
                 "--teacher", "--onset", "--smoothing", "--optimizer", "--momentum", "--beta1", "--beta2",
                 "--adam-eps", "--project-velocity / --no-project-velocity", "--init", "--init-variance",
                 "--success", "--error-tol", "--grad-tol", "--loss", "-o, --output", "--overwrite"):
        assert flag + " " in words, flag
    dmft_words = " ".join(runner.invoke(app, ["dmft", "--help"], terminal_width=400).output.split())
    for flag in ("--dt", "--t-max", "--samples", "--damping", "--max-iter", "--alpha", "--algorithm"):
        assert flag + " " in dmft_words
    assert "--optimizer [" not in dmft_words           # not offered: refused when given


def test_old_json_without_the_new_fields_loads_as_the_default():
    spec = SimulationSpec.from_flat(algorithm="psgd", n=64, constraint="ridge", ridge=0.1)
    d = json.loads(spec.to_json())
    new = {"problem": ("teacher", "onset", "smoothing"),
           "algorithm": ("optimizer", "momentum", "beta1", "beta2", "adam_eps", "project_velocity"),
           "init": ("kind", "variance"), "stopping": ("success", "error_tol", "grad_tol")}
    for group, names in new.items():
        for name in names:
            del d[group][name]
    assert SimulationSpec.from_dict(d) == spec
    dspec = DMFTSpec.from_flat(algorithm="sgd", dt=0.01)
    d = json.loads(dspec.to_json())
    for group in ("algorithm", "init"):
        for name in new[group]:
            del d[group][name]
    assert DMFTSpec.from_dict(d) == dspec


def test_new_options_are_validated_with_their_range():
    for kw, needle in [(dict(optimizer="sgd"), "optimizer: 'sgd' is not allowed; allowed: plain, momentum"),
                       (dict(optimizer="momentum", momentum=1.0), "momentum: 1.0 is not allowed; allowed: [0, 1)"),
                       (dict(optimizer="adam", beta2=-0.1), "beta2: -0.1"),
                       (dict(optimizer="adam", adam_eps=0), "adam_eps: 0 is not allowed"),
                       (dict(problem="door", onset=0), "onset: 0"),
                       (dict(loss="absolute", smoothing=-1), "smoothing: -1"),
                       (dict(teacher="binary"), "teacher: 'binary' is not allowed; allowed: gaussian, rademacher"),
                       (dict(init="orthogonal"), "init: 'orthogonal'"),
                           (dict(init="spectral", preprocessing="cubic"), "preprocessing: 'cubic'"),
                       (dict(init="random", constraint="ridge", init_variance=-1), "init_variance: -1"),
                       (dict(success="accuracy"), "success: 'accuracy'"),
                       (dict(success="test-error", error_tol=0), "error_tol: 0"),
                       (dict(grad_tol=-1e-9), "grad_tol: -1e-09")]:
        with pytest.raises(ValueError) as info:
            SimulationSpec.from_flat(**kw)
        assert needle in str(info.value), (kw, str(info.value))


@pytest.mark.parametrize("kw,needle", [
    (dict(algorithm="gd", anneal_at=0.5), "anneal_at: 0.5 does not apply to algorithm gd"),
    (dict(algorithm="gd", check_interval=0.5), "check_interval: 0.5 does not apply to algorithm gd"),
    (dict(algorithm="gd", check_interval=1.0), "check_interval: 1.0 does not apply"),      # the default, given
    (dict(algorithm="langevin", temperature=1, rescale=False), "rescale: False does not apply"),
    (dict(momentum=0.5), "momentum: 0.5 does not apply to optimizer plain; allowed: only with optimizer momentum, "
                         "nesterov"),
    (dict(optimizer="adam", momentum=0.5), "momentum: 0.5 does not apply to optimizer adam"),
    (dict(optimizer="momentum", beta1=0.5), "beta1: 0.5 does not apply to optimizer momentum"),
    (dict(optimizer="momentum", constraint="ridge", project_velocity=True),
     "project_velocity: True does not apply to constraint ridge"),
    (dict(onset=1.0), "onset: 1.0 does not apply to problem phase-retrieval"),
    (dict(smoothing=1e-3), "smoothing: 0.001 does not apply to loss phase-retrieval"),
    (dict(init="random", m0=0.3), "m0: 0.3 does not apply to init random"),
    (dict(init="random", init_variance=2.0), "init_variance: 2.0 does not apply to constraint sphere"),
    (dict(init_variance=2.0), "init_variance: 2.0 does not apply to init warm and constraint sphere"),
    (dict(error_tol=1e-2), "error_tol: 0.01 does not apply to success train-loss"),
])
def test_an_option_given_where_it_does_not_apply_is_refused(kw, needle):
    with pytest.raises(ValueError) as info:
        SimulationSpec.from_flat(**kw)
    assert needle in str(info.value)
    flat = {**kw}
    with pytest.raises(ValueError, match=needle.split(":")[0]):
        prcy.simulate(n=8, t_max=0.1, seeds=1, **flat)


def test_options_that_do_apply_are_accepted():
    spec = SimulationSpec.from_flat(problem="door", onset=0.5, smoothing=1e-4, optimizer="nesterov", momentum=0.8,
                                    project_velocity=True, init="random", success="test-error", error_tol=1e-2,
                                    grad_tol=5e-10, teacher="rademacher")
    assert spec.problem.training_loss == "door-square" and spec.algorithm.momentum == 0.8
    assert spec.init.kind == "random" and spec.init.m0 == 0.2          # stored default, not used
    adam = SimulationSpec.from_flat(optimizer="adam", beta1=0.8, beta2=0.99, adam_eps=1e-6, constraint="ridge",
                                    init="random", init_variance=0.5)
    assert (adam.algorithm.beta1, adam.algorithm.beta2, adam.init.variance) == (0.8, 0.99, 0.5)
    assert SimulationSpec.from_flat(loss="absolute", smoothing=1e-3).problem.smoothing == 1e-3


def test_several_runs_drop_what_does_not_apply_and_refuse_what_applies_to_none():
    from prcy.specs import specs_from_options
    gd, psgd = specs_from_options(dict(algorithm=["gd", "psgd"], persistence=2.0, check_interval=0.5))
    assert gd.algorithm.persistence is None and gd.stopping.check_interval == 1.0
    assert psgd.algorithm.persistence == 2.0 and psgd.stopping.check_interval == 0.5
    with pytest.raises(ValueError, match="persistence: 2.0 does not apply to algorithm gd, sgd; allowed: only with "
                                         "algorithm psgd"):
        specs_from_options(dict(algorithm=["gd", "sgd"], persistence=2.0))
    with pytest.raises(ValueError, match="momentum: 0.5 does not apply to optimizer plain"):
        Sweep.from_options(dict(algorithm=["gd", "psgd"], momentum=0.5, n=8, t_max=0.1, seeds=1))
    sweep = Sweep.from_options(dict(algorithm=["gd", "psgd"], optimizer=["plain", "momentum"], momentum=[0.5, 0.9],
                                    persistence=[1.0, 2.0], n=8, t_max=0.1, seeds=1))
    assert sweep.independent_of() == {"gd": ["persistence"], "psgd": []}
    assert len(sweep.tasks()) == (1 + 2) * (1 + 2)          # plain runs once per momentum, gd once per persistence


# --------------------------------------------------------------------------------------------------
# absurd values: one line naming the option and what is allowed, exit code 2, nothing computed

SIM = ["simulate", "--n", "8", "--seeds", "1", "--t-max", "0.1", "--no-progress"]
DMFT_ARGS = ["dmft", "--t-max", "0.2", "--samples", "10", "--no-progress"]


@pytest.mark.parametrize("args,needle", [
    (SIM + ["--alpha", "1e300"], "alpha: 1e+300 is not allowed; allowed: a finite number > 0, at most 1e6"),
    (SIM[:-3] + ["--t-max", "1e300", "--no-progress"], "t_max: 1e+300 is not allowed; allowed: a finite number > 0, "
                                                       "at most 1e9"),
    (SIM[:-3] + ["--t-max", "1e9", "--lr", "1e-6", "--no-progress"], "t_max / lr <= 1e10"),
    (SIM + ["--algorithm", "langevin", "--temperature", "1", "--anneal-at", "1e300"], "anneal_at: 1e+300"),
    (SIM + ["--algorithm", "psgd", "--check-interval", "1e300"], "check_interval: 1e+300"),
    (SIM + ["--algorithm", "langevin", "--temperature-schedule", "0:1,1e300:0"],
     "temperature_schedule[1].t_start: 1e+300 is not allowed"),
    (SIM + ["--n-test", "99999999999999999999"], "n_test: 99999999999999999999 is not allowed; allowed: an integer "
                                                 ">= 0, at most 1e7"),
    (SIM + ["--threads", "1e20"], "threads: '1e20' is not allowed; allowed: an integer >= 1, at most 4096"),
    (SIM + ["--seed", "18446744073709551616"], "seed: 18446744073709551616 is not allowed; allowed: an integer >= 0, "
                                               "at most 2^63 - 1 (int64)"),
    (SIM + ["--first-seed", "1e20"], "first_seed: '1e20' is not allowed"),
    (SIM + ["--first-seed", "9223372036854775807", "--seeds", "2"], "first_seed + seeds - 1 <= 2^63 - 1"),
    (SIM + ["--points", "99999999999999999999"], "points: 99999999999999999999 is not allowed; allowed: an integer "
                                                 ">= 2, at most 1e6"),
    (SIM + ["--algorithm", "langevin", "--temperature", "5", "--temperature-schedule", "0:1"],
     "temperature: give either temperature or temperature_schedule, not both"),
    (SIM + ["--algorithm", "gd", "--anneal-at", "0.5"], "anneal_at: 0.5 does not apply to algorithm gd"),
    (SIM + ["--algorithm", "gd", "--check-interval", "0.5"], "check_interval: 0.5 does not apply to algorithm gd"),
    (SIM + ["--algorithm", "gd", "--temperature", "1"], "temperature: 1.0 does not apply to algorithm gd"),
    (SIM + ["--momentum", "0.5"], "momentum: 0.5 does not apply to optimizer plain"),
    (DMFT_ARGS[:2] + ["1e300", "--no-progress"],
     "t_max: 1e+300 is not allowed; allowed: a finite number > 0, at most 1e9"),
    (DMFT_ARGS[:2] + ["1e6", "--no-progress"], "t_max / dt + 1 <= 100000"),
    (DMFT_ARGS[:4] + ["1e20", "--no-progress"],
     "samples: '1e20' is not allowed; allowed: an integer >= 1, at most 1e7"),
    (DMFT_ARGS + ["--optimizer", "adam"], "optimizer: not an option of the DMFT"),
    (DMFT_ARGS + ["--init", "random"], "init: not an option of the DMFT"),
    (DMFT_ARGS + ["--success", "test-error"], "success: not an option of the DMFT"),
    (["sweep", "--processes", "1e20", "--n", "8", "--no-progress"], "processes: '1e20' is not allowed; allowed: an "
                                                                    "integer >= 1, at most 4096"),
    (["sweep", "--threads", "99999", "--n", "8", "--no-progress"], "threads: 99999 is not allowed"),
    (["sweep", "--n", "8", "--alpha"], "alpha: a value is needed; allowed: a finite number > 0"),
    (["sweep", "--alpha", "--n", "8"], "alpha: a value is needed"),
    (["sweep", "--n", "8", "--no-alpha"], "alpha: --no-alpha is only for true/false options"),
    (["sweep", "--n", "8", "--algorithm", "gd,sgd", "--persistence", "2"],
     "persistence: 2.0 does not apply to algorithm gd, sgd"),
    (["sweep", "--n", "8", "--alpha", "1e300"], "alpha: 1e+300 is not allowed"),
])
def test_absurd_values_are_one_line_errors_before_compute(args, needle, tmp_path):
    out = tmp_path / "x.nc"
    result = runner.invoke(app, [*args, "-o", str(out)])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and needle in errors[0], result.output
    assert "Traceback" not in result.output and not out.exists()


def test_sweep_flags_and_schedules_from_the_command_line():
    assert parse_overrides(["--early-stop", "--no-rescale", "--algorithm", "gd,psgd"]) == \
        {"early_stop": True, "rescale": False, "algorithm": ["gd", "psgd"]}
    assert parse_overrides(["--temperature-schedule", "0:1,700:0", "--times", "0,1,5"]) == \
        {"temperature_schedule": ((0.0, 1.0), (700.0, 0.0)), "times": (0.0, 1.0, 5.0)}
    assert parse_overrides(["--n=32", "--lr", "0.01,0.02"]) == {"n": 32, "lr": [0.01, 0.02]}


def test_binary_grid_file_is_named(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_bytes(b"\xff\xfe\x00\x81binary")
    with pytest.raises(ValueError, match="grid: .*grid.toml"):
        load_grid_file(grid)


