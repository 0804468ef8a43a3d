"""The DMFT with the simulations' projection back to the sphere after every grid step
(``sphere="projection"``, docs/dmft.md "The projection at dt = lr") against the step of the simulated
algorithm worked out by hand, and its kernels' plumbing."""
import numpy as np
import pytest

from prcy import dmft
from prcy.kernels import dmft as kd, losses
from prcy.kernels.problems import labels

HARD = dict(problem="phase-retrieval", alpha=3.0, m0=0.2, lr=0.05)
ALGORITHMS = {
    "psgd": dict(algorithm="psgd", batch_fraction=0.5, persistence=1.0, chain="steps"),
    "gd": dict(algorithm="gd"),
    "langevin": dict(algorithm="langevin", temperature=0.5),
}


def simulated_first_step(spec, samples):
    """``m(lr)`` of the simulated algorithm for N -> infinity, on the DMFT's own samples: with
    ``w(0) = m0 w0 + sqrt(1 - m0^2) e1`` and ``G = c sum_mu s_mu dv(h~_mu) x_mu / sqrt(N)``, the step
    ``w' = w - lr G + sqrt(2 T lr) z`` has ``w'.w0/N = m0 - lr mu``, ``w.G/N = alpha c <s dv h~>`` and
    ``|G|^2/N = alpha c^2 <s dv^2> + mu^2 + (alpha c <s dv xi>)^2`` (``x_mu = h0 e0 + xi e1 + r``,
    ``|r|^2 = N``; the cross terms of the ``r`` vanish), and the projection divides by ``|w'|/sqrt(N)``."""
    a, alpha, m0, lr = spec.algorithm, spec.alpha, spec.init.m0, spec.dt
    h0, h = samples["h0"], samples["h_init"]
    ht, xi = h + m0 * h0, h / np.sqrt(1 - m0 ** 2)
    s = 1.0 if samples["sel"] is None else samples["sel"][0].astype(float)
    c = a.grad_scale
    dv = losses.derivative("phase-retrieval", ht, h0)
    mu = alpha * c * np.mean(s * dv * h0)
    wg = alpha * c * np.mean(s * dv * ht)
    gg = alpha * c * c * np.mean(s * dv * dv) + mu ** 2 + (alpha * c * np.mean(s * dv * xi)) ** 2
    return (m0 - lr * mu) / np.sqrt(1 - 2 * lr * wg + lr * lr * gg + 2 * a.temperature * lr)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_the_first_step_is_the_simulated_algorithms_step(algorithm):
    """At alpha = 3, m0 = 0.2, lr = dt = 0.05 the projected DMFT's m(lr) is the simulated step's to
    Monte Carlo error (2e-4 at S = 4e5; the two use the fields' Gaussian identities differently). The
    Lagrange multiplier misses persistent SGD's by 0.015 (its 1/ell = 2 makes the step's lr^2 |G|^2 large),
    Langevin's by 0.004, GD's by -0.0015 (docs/validation.md 7g)."""
    got = {}
    for sphere in ("projection", "multiplier"):
        spec = dmft.DMFTSpec.from_flat(**HARD, **ALGORITHMS[algorithm], t_max=0.1, samples=400_000, sphere=sphere)
        ds = dmft.solve(spec, threads=1)
        got[sphere] = float(ds.magnetization[1])
    expected = simulated_first_step(spec, dmft.draw_samples(spec))
    assert abs(got["projection"] - expected) < 2e-3
    if algorithm == "psgd":
        assert got["multiplier"] - expected > 0.01


def test_projection_stays_on_the_sphere_and_is_refused_with_a_ridge():
    ds = dmft.solve(**HARD, **ALGORITHMS["psgd"], t_max=0.5, samples=2000, sphere="projection", threads=1)
    assert ds.attrs["status"] == "converged"
    np.testing.assert_allclose(ds.norm.values, 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.diag(ds.C.values), 1.0, rtol=0, atol=1e-12)
    assert ds.attrs["max_norm_deviation"] < 1e-12
    default = dmft.solve(**HARD, **ALGORITHMS["psgd"], t_max=0.5, samples=2000, threads=1)
    assert '"sphere": "multiplier"' in default.attrs["spec"]
    assert default.attrs["max_norm_deviation"] > 0.01        # the multiplier keeps C(t, t) = 1 only as dt -> 0
    with pytest.raises(ValueError, match="sphere"):
        dmft.solve(problem="linear-regression", constraint="ridge", ridge=0.5, alpha=3.0, m0=0.2, algorithm="gd",
                   dt=0.05, t_max=0.5, samples=200, sphere="projection")


def test_kicked_response_with_the_projection_tends_to_the_linear_one():
    """On a projected march (``D`` divided by ``B_k^2``, loss argument ``B_k a h~``) the kicked response
    with the march's ``scale`` tends to the linear response on its ``D`` like kick^2, and a scale of 1
    everywhere is the plain kicked response (to rounding)."""
    spec = dmft.DMFTSpec.from_flat(**HARD, **ALGORITHMS["psgd"], t_max=0.6, samples=400, sphere="projection")
    samples = dmft.draw_samples(spec)
    loss, _ = dmft._resolve_loss(spec)
    K = spec.n_points
    rng = np.random.default_rng(2)
    MR = np.tril(rng.normal(0, 0.3, (K, K)), -1)
    out = dmft._march(spec, MR, samples, 1, None, loss)
    assert out["scale"][0] == 1.0 and np.all(out["scale"][1:] != 1.0) and np.isfinite(out["scale"]).all()
    nut = np.ascontiguousarray(out["nu_hat"] + out["delta_nu"])
    c, dt = spec.algorithm.grad_scale, spec.dt
    linear = kd.response(out["D"], nut, dt, spec.alpha, c)
    kw = dict(loss=loss, H=out["H"], h0=samples["h0"], y=samples["y"], m=out["m_v"], sel=samples["sel"])
    errors = [np.abs(kd.response(out["D"], nut, dt, spec.alpha, c, kick=kick, project_scale=out["scale"], **kw)
                     - linear).max() / np.abs(linear).max() for kick in (0.02, 0.002)]
    assert errors[1] < 1e-3 and 80 < errors[0] / errors[1] < 120          # ~ kick^2
    np.testing.assert_allclose(kd.response(out["D"], nut, dt, spec.alpha, c, kick=0.05, project_scale=np.ones(K), **kw),
                               kd.response(out["D"], nut, dt, spec.alpha, c, kick=0.05, **kw), rtol=1e-12, atol=1e-13)
    assert np.array_equal(labels("phase-retrieval", samples["h0"]), samples["y"])
