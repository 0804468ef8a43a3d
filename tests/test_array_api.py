"""Analysis functions that take arrays accept other array-API libraries (array_api_strict, torch when
installed) through DLPack and answer in the caller's namespace, with the same numbers as NumPy."""
import numpy as np
import pytest

from prcy.analysis import label_mse, linear_ridge_dynamics, three_cluster_error, two_cluster_error
from prcy.analysis.generalization import linear_mse
from prcy.analysis.theory import se_fixed_point

xps = [pytest.importorskip("array_api_strict")]
try:
    import torch
    xps.append(torch)
except ImportError:
    pass

M = np.array([0.0, 0.3, 0.9, 1.0])
Q = np.array([1.0, 1.2, 0.9, 1.0])


@pytest.mark.parametrize("xp", xps, ids=lambda x: x.__name__)
def test_generalization_errors_answer_in_the_callers_namespace(xp):
    from array_api_compat import array_namespace
    for func, args in [(label_mse, (M, Q)), (linear_mse, (M, Q)), (two_cluster_error, (M, Q, 0.5)),
                       (three_cluster_error, (M, Q, 0.5, 0.7))]:
        expected = func(*args)
        got = func(*(xp.asarray(a) if isinstance(a, np.ndarray) else a for a in args))
        assert array_namespace(got) is array_namespace(xp.asarray([1.0]))
        np.testing.assert_allclose(np.from_dlpack(got), expected, rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("xp", xps, ids=lambda x: x.__name__)
def test_theory_curves_accept_foreign_arrays(xp):
    alphas = np.array([0.4, 1.0, 2.0])
    np.testing.assert_allclose(np.from_dlpack(se_fixed_point(xp.asarray(alphas))), se_fixed_point(alphas))
    t = np.array([0.0, 1.0, 5.0])
    m, q, loss = linear_ridge_dynamics(xp.asarray(t), 3.0, 0.2, 0.5)
    np.testing.assert_allclose(np.from_dlpack(m), linear_ridge_dynamics(t, 3.0, 0.2, 0.5)[0])


def test_out_of_domain_still_raises_through_the_boundary():
    xp = xps[0]
    with pytest.raises(ValueError, match="m"):
        label_mse(xp.asarray([1.5]), xp.asarray([1.0]))
