"""Runs with the options of the engine before Engine v2 give the same numbers, bitwise
(``tests/baseline_runs.py`` says how the stored runs were made)."""
import numpy as np
import pytest

from baseline_runs import DMFT, PATH, RUNS, run, run_dmft


@pytest.fixture(scope="module")
def stored():
    with np.load(PATH) as f:
        return dict(f)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_simulation_is_bitwise_the_stored_run(stored, name):
    got = run(name)
    keys = sorted(k.split("/", 1)[1] for k in stored if k.startswith(name + "/"))
    assert sorted(got) == keys
    for v in keys:
        np.testing.assert_array_equal(got[v], stored[f"{name}/{v}"], err_msg=f"{name}: {v}")


@pytest.mark.parametrize("name", sorted(DMFT))
def test_dmft_is_bitwise_the_stored_solve(stored, name):
    got = run_dmft(name)
    for v, value in got.items():
        np.testing.assert_array_equal(value, stored[f"{name}/{v}"], err_msg=f"{name}: {v}")
