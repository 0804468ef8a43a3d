"""Runs with the options of the engine before Engine v2 give the same numbers (``tests/baseline_runs.py``
says how the stored runs were made): simulations bitwise; DMFT solves to rounding (1e-10 of each
variable's largest entry),
because the kernels are compiled with ``-fassociative-math``, so that the compiler may sum the march's
per-chunk moments in another order when the code around them changes."""
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
def test_dmft_is_the_stored_solve_to_rounding(stored, name):
    got = run_dmft(name)
    for v, value in got.items():
        ref = stored[f"{name}/{v}"]
        np.testing.assert_allclose(value, ref, rtol=0, atol=1e-10 * np.abs(ref[np.isfinite(ref)]).max(), err_msg=f"{name}: {v}")
