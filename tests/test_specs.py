"""(g) Every parameter is validated up front, with an error naming the parameter, the value and what
is allowed; specs round-trip through dicts."""
import math

import numpy as np
import pytest

import prcy
from prcy.specs import SimulationSpec

BAD = [
    # (flat options, parameter named in the message, text of the allowed range)
    (dict(alpha=0), "alpha", "> 0"),
    (dict(alpha=-1.5), "alpha", "> 0"),
    (dict(alpha=math.nan), "alpha", "> 0"),
    (dict(alpha=math.inf), "alpha", "> 0"),
    (dict(alpha="3"), "alpha", "not a number"),
    (dict(n=1), "n", ">= 2"),
    (dict(n=2.5), "n", "integer"),
    (dict(n=True), "n", "integer"),
    (dict(algorithm="sgd", batch_fraction=0), "batch_fraction", "(0, 1]"),
    (dict(algorithm="sgd", batch_fraction=1.2), "batch_fraction", "(0, 1]"),
    (dict(algorithm="psgd", persistence=0), "persistence", "> 0"),
    (dict(algorithm="psgd", persistence=-1), "persistence", "> 0"),
    (dict(algorithm="psgd", persistence=0.005, lr=0.01), "persistence", "persistence >= 0.01"),
    (dict(algorithm="psgd", batch_fraction=0.1, persistence=0.05, lr=0.01), "persistence", "persistence >= 0.09"),
    (dict(lr=0), "lr", "> 0"),
    (dict(lr=-0.01), "lr", "> 0"),
    (dict(lr=math.inf), "lr", "> 0"),
    (dict(algorithm="langevin", temperature=-1), "temperature", ">= 0"),
    (dict(algorithm="langevin", temperature=math.nan), "temperature", ">= 0"),
    (dict(algorithm="langevin", temperature=0), "temperature", "langevin needs a temperature > 0"),
    (dict(algorithm="gd", temperature=1.0), "temperature", "use algorithm 'langevin'"),
    (dict(algorithm="langevin", temperature_schedule=((5, 1.0),)), "temperature_schedule", "start at t = 0"),
    (dict(algorithm="langevin", temperature_schedule=((0, 1.0), (0, 0.0))), "temperature_schedule", "strictly increasing"),
    (dict(algorithm="langevin", temperature_schedule=((0, -1.0),)), "temperature_schedule[0].T", ">= 0"),
    (dict(algorithm="langevin", temperature=1, temperature_schedule=((0, 1.0),)), "temperature", "not both"),
    (dict(algorithm="langevin", temperature=1, anneal_at=0), "anneal_at", "> 0"),
    (dict(algorithm="langevin", temperature_schedule=((0, 1.0),), anneal_at=5), "anneal_at", "not both"),
    (dict(m0=-0.1), "m0", "[0, 1]"),
    (dict(m0=1.5), "m0", "[0, 1]"),
    (dict(m0=math.nan), "m0", "[0, 1]"),
    (dict(t_max=0), "t_max", "> 0"),
    (dict(t_max=0.001, lr=0.01), "t_max", "t_max >= lr"),
    (dict(t_max=10, times=(0.0, 5.0, 11.0)), "times[2]", "[0, t_max = 10]"),
    (dict(t_max=10, times=(-1.0,)), "times[0]", "[0, t_max = 10]"),
    (dict(points=1), "points", ">= 2"),
    (dict(grid="cubic"), "grid", "log, linear"),
    (dict(seeds=0), "seeds", ">= 1"),
    (dict(first_seed=-1), "first_seed", ">= 0"),
    (dict(seed=-3), "seed", ">= 0"),
    (dict(tol=0), "tol", "> 0"),
    (dict(check_interval=0), "check_interval", "> 0"),
    (dict(n_test=-1), "n_test", ">= 0"),
    (dict(algorithm="adam"), "algorithm", "gd, sgd, psgd, langevin"),
    (dict(problem="mixture-4"), "problem", "phase-retrieval, linear-regression, door, mixture-2, mixture-3"),
    (dict(problem="mixture-2", delta=0.0), "delta", "> 0"),
    (dict(problem="mixture-2", delta=-1.0), "delta", "> 0"),
    (dict(problem="mixture-3", onset=-0.7), "onset", "> 0"),
    (dict(problem="mixture-2", init_variance=-0.01), "init_variance", ">= 0"),
    (dict(problem="phase-retrieval", delta=0.5), "delta", "only with problem mixture-2, mixture-3"),
    (dict(problem="mixture-2", onset=0.7), "onset", "only with problem door, mixture-3"),
    (dict(problem="phase-retrieval", success="train-accuracy"), "success", "only with problem door, mixture-2"),
    (dict(constraint="box"), "constraint", "sphere, ridge"),
    (dict(constraint="ridge", ridge=-0.5), "ridge", ">= 0"),
    (dict(constraint="sphere", ridge=0.5), "ridge", "only with constraint ridge"),
    (dict(precision="float16"), "precision", "float64, float32"),
    (dict(algorithm="gd", batch_fraction=0.5), "batch_fraction", "only with algorithm sgd, psgd"),
    (dict(algorithm="sgd", persistence=1.0), "persistence", "only with algorithm psgd"),
    (dict(early_stop="yes"), "early_stop", "true or false"),
    (dict(alpha=0.001, n=100), "alpha", "no sample"),
    (dict(colour="red"), "colour", "unknown option"),
]


@pytest.mark.parametrize("options,name,allowed", BAD, ids=[f"{b[1]}={list(b[0].values())[-1]!r}" for b in BAD])
def test_bad_parameter_is_named_with_value_and_range(options, name, allowed):
    with pytest.raises(ValueError) as info:
        SimulationSpec.from_flat(**options)
    message = str(info.value)
    assert name in message.split(":")[0]          # the parameter is named before the first colon
    assert allowed in message


def test_simulate_rejects_bad_input_before_any_compute():
    with pytest.raises(ValueError, match="m0"):
        prcy.simulate(algorithm=["gd", "psgd"], m0=2.0, n=8, t_max=1, seeds=1)
    with pytest.raises(ValueError, match="repeats"):
        prcy.simulate(algorithm=["gd", "gd"], n=8, t_max=1, seeds=1)
    with pytest.raises(ValueError, match="empty"):
        prcy.simulate(algorithm=[], n=8, t_max=1, seeds=1)
    with pytest.raises(ValueError, match="threads"):
        prcy.simulate(algorithm="gd", n=8, t_max=0.1, seeds=1, threads=0)


def test_defaults_follow_the_paper():
    spec = SimulationSpec.from_flat(algorithm="psgd")
    assert spec.algorithm.batch_fraction == 0.5 and spec.algorithm.persistence == 1.0
    assert spec.stopping.tol == 1e-7 and spec.constraint.kind == "sphere"
    p_on, p_off = spec.algorithm.switching_probabilities()
    assert p_on == pytest.approx(0.01) and p_off == pytest.approx(0.5 * 0.01 / 0.5)
    sgd = SimulationSpec.from_flat(algorithm="sgd", batch_fraction=0.3).algorithm
    assert sgd.switching_probabilities() == pytest.approx((0.3, 0.7))


def test_anneal_at_is_a_two_piece_schedule():
    algo = SimulationSpec.from_flat(algorithm="langevin", temperature=2.0, anneal_at=700).algorithm
    assert algo.schedule() == ((0.0, 2.0), (700.0, 0.0))
    assert SimulationSpec.from_flat(algorithm="langevin", temperature=2.0).algorithm.schedule() == ((0.0, 2.0),)


def test_spec_round_trips_through_dict_and_json():
    import json
    spec = SimulationSpec.from_flat(algorithm="langevin", temperature_schedule=((0, 2.0), (7, 0.0)),
                                    constraint="ridge", ridge=0.5, times=(0.0, 1.0, 3.0), t_max=10,
                                    seeds=3, first_seed=2, seed=9, precision="float32", n_test=10)
    again = SimulationSpec.from_dict(json.loads(spec.to_json()))
    assert again == spec
    with pytest.raises(ValueError, match="unknown field"):
        SimulationSpec.from_dict({**spec.to_dict(), "extra": 1})


def test_recording_grid_holds_zero_and_t_max_and_is_log_spaced():
    rec = SimulationSpec.from_flat(t_max=100, points=50, lr=0.01).recording
    steps = rec.steps(0.01)
    assert steps[0] == 0 and steps[-1] == 10000
    assert np.all(np.diff(steps) > 0)
    ratios = steps[2:] / steps[1:-1]
    assert ratios[-1] == pytest.approx(10 ** (4 / 48), rel=0.02)   # geometric spacing at late times
    explicit = SimulationSpec.from_flat(t_max=10, times=(2.5, 0.5, 2.5), lr=0.01).recording.steps(0.01)
    assert explicit.tolist() == [0, 50, 250, 1000]
    linear = SimulationSpec.from_flat(t_max=1, points=11, grid="linear", lr=0.01).recording.steps(0.01)
    assert linear.tolist() == list(range(0, 101, 10))
