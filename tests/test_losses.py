"""The built-in losses (``prcy.kernels.losses``) against ``tests/reference.py``: values, first
derivatives against the complex-step derivative of the reference, second derivatives against central
differences of the first; the capsule ABI's checks."""
import ctypes

import numpy as np
import pytest

from reference import LOSSES, complex_step

from prcy.kernels import losses

PARAMS = {"phase-retrieval": {}, "linear-regression": {}, "absolute": dict(smoothing=1e-3),
          "door-square": dict(smoothing=1e-3, onset=0.67449), "door-logistic": dict(smoothing=1e-2, onset=0.5),
          "logistic": {}, "square": {}, "hinge": {}, "quadratic-logistic": dict(onset=0.7),
          "quadratic-square": dict(onset=0.7), "quadratic-hinge": dict(onset=0.7)}
CLASSIFYING = ("door", "logistic", "square", "hinge", "quadratic")      # losses on labels +-1


def test_every_built_in_loss_is_tested_and_named_in_the_specs():
    from prcy.options import LOSSES as SPEC_LOSSES
    assert set(PARAMS) == set(losses.NAMES) == set(LOSSES) == set(SPEC_LOSSES)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_value_and_derivatives(name):
    rng = np.random.default_rng(3)
    h = rng.normal(scale=1.5, size=500)
    y = np.abs(rng.normal(size=500)) if name in ("phase-retrieval", "absolute") else \
        np.sign(rng.normal(size=500)) if name.startswith(CLASSIFYING) else rng.normal(size=500)
    cap = losses.capsule(name, **PARAMS[name])
    theta = tuple(PARAMS[name].values())
    v, dv, err = LOSSES[name]
    np.testing.assert_allclose(losses.value(cap, h, y), v(h, y, theta), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(losses.derivative(cap, h, y), dv(h, y, theta), rtol=1e-12, atol=1e-13)
    e = 1e-5
    fd = (losses.derivative(cap, h + e, y) - losses.derivative(cap, h - e, y)) / (2 * e)
    np.testing.assert_allclose(losses.second_derivative(cap, h, y), fd, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(losses.test_error(cap, h, y), err(h, y, theta), rtol=1e-13, atol=0)


def test_logistic_loss_is_finite_far_from_the_margin():
    cap = losses.capsule("door-logistic", smoothing=1e-6, onset=0.5)
    h = np.array([1e3, 1e3, 1e-3, 1e-3])
    y = np.array([1.0, -1.0, -1.0, 1.0])
    v = losses.value(cap, h, y)
    np.testing.assert_allclose(v[[0, 2]], np.log1p(np.exp(-np.abs([1e3 - 0.5, np.sqrt(1e-6 + 1e-6) - 0.5]))),
                               rtol=1e-12)
    np.testing.assert_allclose(v[1], 1e3 - 0.5, rtol=1e-12)
    assert np.all(np.isfinite(losses.derivative(cap, h, y))) and np.all(np.isfinite(losses.second_derivative(cap, h, y)))


def test_margin_losses_far_from_the_margin_and_at_zero():
    """The logistic margin loss without overflow at |y phi| = 1e6; eq 23's error 1/4 where phi(h) = 0;
    the hinge's second derivative is 0 (its kink is a point)."""
    cap = losses.capsule("quadratic-logistic", onset=0.7)
    h = np.array([1e3, 1e3, 0.0, 0.0])
    y = np.array([1.0, -1.0, -1.0, 1.0])
    np.testing.assert_allclose(losses.value(cap, h, y), [0.0, 1e6 - 0.49, np.log1p(np.exp(-0.49)),
                                                         0.49 + np.log1p(np.exp(-0.49))], rtol=1e-12, atol=1e-300)
    assert np.all(np.isfinite(losses.derivative(cap, h, y))) and np.all(np.isfinite(losses.second_derivative(cap, h, y)))
    np.testing.assert_array_equal(losses.test_error("logistic", [0.0, 0.5, -0.5], [1.0, 1.0, 1.0]), [0.25, 0.0, 1.0])
    door = losses.capsule("quadratic-logistic", onset=0.5)              # 0.5^2 is exact: phi(0.5) = 0
    np.testing.assert_array_equal(losses.test_error(door, [0.5, 0.8, 0.3], [1.0, 1.0, -1.0]), [0.25, 0.0, 0.0])
    np.testing.assert_array_equal(losses.second_derivative("hinge", [0.5, 2.0], [1.0, 1.0]), [0.0, 0.0])


def test_logistic_function_within_two_ulps_of_extended_precision():
    """The logistic loss ``log(1 + e^-u)`` and its derivative ``-1 / (1 + e^u)`` over u in [-700, 700]
    (where ``e^-|u|`` crosses the rounding of ``1 + e`` near u = 36.7 and 37.4) against NumPy in long double
    (80-bit on x86: 11 more bits than the kernels' doubles)."""
    u = np.concatenate([np.linspace(-700, 700, 140001), np.linspace(35, 39, 4001), [0.0, 1e-20, -1e-20]])
    ul = u.astype(np.longdouble)
    v_ref = np.maximum(-ul, 0) + np.log1p(np.exp(-np.abs(ul)))
    dv_ref = -1 / (1 + np.exp(ul))
    ulp = np.finfo(np.float64).eps
    v, dv = losses.value("logistic", u, np.ones_like(u)), losses.derivative("logistic", u, np.ones_like(u))
    assert float(np.max(np.abs(v - v_ref) / v_ref)) < 2 * ulp
    keep = np.abs(dv_ref) > 1e-290                       # below it the reference itself is subnormal
    assert float(np.max(np.abs(dv - dv_ref)[keep] / np.abs(dv_ref[keep]))) < 2 * ulp


def test_logistic_function_into_the_subnormals_and_at_inf_and_nan():
    """``e^-|u|`` is prcy's own exp (``prcy_exp_neg``): into the subnormals (|u| from 700 to 746, where
    the sigmoid is ``e^-u`` itself) within 2 ulps or 2 subnormal steps, 0 beyond, and inf and NaN
    carried as the C library's exp would."""
    u = np.concatenate([np.linspace(700, 750, 50001), [745.13, 745.14, 708.39, 708.4]])
    dv_ref = -np.exp(-u.astype(np.longdouble)) / (1 + np.exp(-u.astype(np.longdouble)))
    dv = losses.derivative("logistic", u, np.ones_like(u))
    tiny = np.finfo(np.float64).smallest_subnormal
    assert np.all(np.abs(dv - dv_ref) <= 2 * np.finfo(np.float64).eps * np.abs(dv_ref) + 2 * tiny)
    assert np.all(dv[u > 746] == 0)
    out = losses.derivative("logistic", [np.inf, -np.inf, np.nan], [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(out, [0.0, -1.0, np.nan])
    assert np.isnan(losses.value("logistic", [np.nan], [1.0])[0])


@pytest.mark.parametrize("name, parameters", [("logistic", {}), ("quadratic-logistic", {"onset": 0.7}),
                                              ("door-logistic", {"smoothing": 1e-6, "onset": 0.7})])
def test_the_steps_one_call_value_and_derivative_are_the_two_apart_bit_for_bit(name, parameters):
    """A gradient step takes a logistic loss's ``v`` and ``dv`` from one exp (``fused_value_derivative``);
    they equal ``value`` and ``derivative`` bit for bit, both signs of the margin, to overflow."""
    cap = losses.capsule(name, **parameters)
    h = np.concatenate([np.linspace(-40, 40, 20001), [0.0, 0.7, -0.7, 1e3, -1e3, 3e2]])
    for y in (1.0, -1.0):
        v, dv = losses.value_and_derivative(cap, h, y)
        np.testing.assert_array_equal(v, losses.value(cap, h, y))
        np.testing.assert_array_equal(dv, losses.derivative(cap, h, y))


@pytest.mark.parametrize("name, parameters", [("logistic", {}), ("quadratic-logistic", {"onset": 0.7}),
                                              ("door-logistic", {"smoothing": 1e-6, "onset": 0.7})])
def test_the_steps_bounds_bracket_the_value_without_its_log(name, parameters):
    """The bounded form a full-batch step uses (``fused_derivative_bounds``, over a block of samples):
    ``dv`` bit for bit, for any block length, and
    ``lower <= v <= upper`` with ``upper - lower`` the series' next term ``e^3/3`` (``e = e^-|margin|``),
    against ``log1p`` in long double; rounding may put a bound an ulp or two past ``v`` where the bracket
    is narrower than an ulp, which the step's comparison leaves room for (``4 (m + 8)`` ulps)."""
    cap = losses.capsule(name, **parameters)
    h = np.concatenate([np.linspace(-40, 40, 20001), [0.0, 0.7, -0.7, 1e3, -1e3, 3e2]])
    for y in (1.0, -1.0):
        lower, upper, dv = losses.value_and_derivative(cap, h, y, bounds=True)
        np.testing.assert_array_equal(dv, losses.derivative(cap, h, y))
        for n in range(1, 10):               # the step's blocks of 8 and their remainders: the same bits
            part = losses.value_and_derivative(cap, h[-n:], y, bounds=True)
            for got, whole in zip(part, (lower, upper, dv)):
                np.testing.assert_array_equal(got, whole[-n:])
        v = losses.value(cap, h, y)
        ulps = 4 * np.finfo(float).eps
        assert np.all(lower <= v * (1 + ulps)) and np.all(v <= upper * (1 + ulps))
        # margin u, e = e^-|u| and the exact softplus in long double
        a = np.sqrt(h * h + parameters.get("smoothing", 0.0))
        u = y * {"logistic": h, "quadratic-logistic": h * h - 0.49, "door-logistic": a - 0.7}[name]
        e = np.exp(-np.abs(u).astype(np.longdouble))
        exact = (np.maximum(-u, 0).astype(np.longdouble) + np.log1p(e)).astype(np.float64)
        # (this margin is rounded apart from the kernel's: e^-|u| differs by ~|u| ulps, so |u| < 100)
        ok = np.abs(u) < 100
        assert np.all(lower[ok] <= exact[ok] * (1 + 1e-13)) and np.all(exact[ok] <= upper[ok] * (1 + 1e-13))
        width = (e ** 3 / 3).astype(np.float64)                 # to the rounding of the bounds
        assert np.all(np.abs((upper - lower) - width) <= 1e-6 * width + ulps * upper)


def test_losses_without_shared_work_have_no_one_call_form():
    for name in ("phase-retrieval", "square", "hinge", "linear-regression"):
        assert losses.value_and_derivative(name, [0.5], [1.0]) is None


def test_parameters_are_checked():
    with pytest.raises(ValueError, match="smoothing"):
        losses.capsule("absolute")
    with pytest.raises(ValueError, match="smoothing: -1"):
        losses.capsule("absolute", smoothing=-1)
    with pytest.raises(ValueError, match="unknown name"):
        losses.capsule("huber")
    with pytest.raises(ValueError, match="onset"):
        losses.capsule("quadratic-hinge")
    assert losses.parameters(losses.capsule("door-square", smoothing=0.1, onset=0.7))[:2] == (0.1, 0.7)


ctypes.pythonapi.PyCapsule_New.restype = ctypes.py_object
ctypes.pythonapi.PyCapsule_New.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]


def test_a_first_abi_capsule_and_a_forged_header_are_refused_before_any_call():
    buffer = ctypes.create_string_buffer(256)          # zeros: no magic, no functions
    old = ctypes.pythonapi.PyCapsule_New(ctypes.addressof(buffer), b"prcy.Loss", None)
    with pytest.raises(TypeError, match="first loss ABI"):
        losses.check_capsule(old)
    forged = ctypes.pythonapi.PyCapsule_New(ctypes.addressof(buffer), b"prcy.Loss.v2", None)
    with pytest.raises(TypeError, match="header"):
        losses.value(forged, 0.0, 0.0)
    with pytest.raises(TypeError, match="PyCapsule"):
        losses.check_capsule(object())
