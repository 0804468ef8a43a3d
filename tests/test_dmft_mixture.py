"""The Gaussian-mixture DMFT (Mignacco et al. 2020, eqs 15-25): the kernels against a NumPy transcription
of the paper's equations in its own variables, the samples' law, the solver against simulations and
against the ridge-logistic minimizer, bad input, the command line."""
import math
import os
import sys

import numpy as np
import pytest
from scipy.linalg import solve_triangular
from scipy.special import expit

import prcy
from prcy import dmft
from prcy.analysis import ridge_logistic_two_cluster
from prcy.kernels import dmft as kd, losses
from prcy.kernels.problems import labels
from prcy.problems import CLUSTERS

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from docs_examples import run_section  # noqa: E402


# ---------------------------------------------------------------------------------------------
# slow reference: eqs 15-22 as printed, in the paper's variables (r, c, h0, Delta, Lambda), one line each

def margin_loss(door, onset):
    """``Lambda(y, r) = l(y phi(r))`` with the logistic ``l`` and ``phi(r) = r`` (two clusters) or
    ``r^2 - L^2`` (the door, three clusters; eqs 5-7), with ``Lambda'``, ``Lambda''`` and ``phi``."""
    def phi(r):
        return r * r - onset * onset if door else r

    def dphi(r):
        return 2 * r if door else np.ones_like(r)

    def parts(y, r):
        u = y * phi(r)
        sig = expit(-u)                                  # -l'(u)
        lam = np.logaddexp(0.0, -u)
        d1 = -y * sig * dphi(r)
        d2 = sig * (1 - sig) * dphi(r) ** 2 - (y * sig * 2.0 if door else 0.0)
        return lam, d1, d2
    return parts, phi


def ref_mixture_march(loss, phi, alpha, delta, lam, dt, m0, q0, jitter_rel, MR, h_init, c, h0, y, Z, sel):
    """Eq 15 (h), 16 (xi = L z, L L^T = M_C), 18 (m), 19 (hat_lambda, mu, M_C), 20 (C, R), 21 (e),
    22 (a), explicit Euler on t_k = k dt."""
    K, S = Z.shape
    a = math.sqrt(delta)
    u = c + a * h0
    H, dL, d2L = np.zeros((K, S)), np.zeros((K, S)), np.zeros((K, S))
    MC, L = np.zeros((K, K)), np.zeros((K, K))
    m, lamhat, mu, e, acc = (np.zeros(K) for _ in range(5))
    H[0], m[0] = h_init, m0
    diag_max = 0.0
    for k in range(K):
        if k > 0:
            H[k] = H[k - 1] + dt * (-(lam + lamhat[k - 1]) * H[k - 1] - a * dL[k - 1]
                                    + dt * MR[k - 1, :k - 1] @ H[:k - 1] + L[k - 1, :k] @ Z[:k])      # eq 15
        r = a * H[k] + m[k] * u
        s = 1.0 if sel is None else sel[k].astype(float)
        lk, d1, d2 = loss(y, r)
        dL[k], d2L[k] = s * d1, s * d2
        lamhat[k] = alpha * delta * d2L[k].mean()                                                  # eq 19
        mu[k] = alpha * np.mean(u * dL[k])
        MC[k, :k + 1] = alpha * delta * (dL[:k + 1] @ dL[k]) / S
        MC[:k + 1, k] = MC[k, :k + 1]
        e[k] = alpha * lk.mean()                                                                   # eq 21
        acc[k] = 1 - np.mean(y * phi(r) < 0)                                                       # eq 22
        if k + 1 < K:
            m[k + 1] = m[k] + dt * (-lam * m[k] - mu[k])                                           # eq 18
        diag_max = max(diag_max, MC[k, k])
        if k:
            L[k, :k] = solve_triangular(L[:k, :k], MC[k, :k], lower=True)
        L[k, k] = np.sqrt(MC[k, k] + jitter_rel * diag_max - L[k, :k] @ L[k, :k])
    # eq 20, stepped in t: R(t, t') for t' fixed, C(t, t') for t' <= t (C(t, t) as C(t, t') with t' = t)
    lt = lam + lamhat
    R, C = np.zeros((K, K)), np.zeros((K, K))
    C[0, 0] = q0 + m0 * m0
    for k in range(K):
        R[k, k] = 1.0
        if k + 1 < K:
            R[k + 1, :k + 1] = R[k, :k + 1] + dt * (-lt[k] * R[k, :k + 1] + dt * MR[k, :k] @ R[:k, :k + 1])
    for k in range(K - 1):
        drift = dt * MR[k, :k] @ m[:k] + mu[k] - lamhat[k] * m[k]
        for j in range(k + 2):
            Ckj = C[k, j] if j <= k else C[j, k]           # C(t_k, t_j), j = k + 1: from the row just made
            C[k + 1, j] = Ckj + dt * (-lt[k] * Ckj + dt * MR[k, :k] @ C[:k, j] + dt * MC[k, :j] @ R[j, 1:j + 1]
                                      - m[j] * drift)
            C[j, k + 1] = C[k + 1, j]
    return dict(H=H, m=m, delta_nu=lamhat, mu=mu, M_C=MC, L=L, C=C, R=R, train_loss=e / alpha,
                train_error=1 - acc, G=a * dL, D=delta * d2L)


def ref_mixture_response(loss, alpha, delta, lam, lamhat, dt, H, m, c, h0, y, sel, kick=0.0):
    """``M_R(t_k, t_j) = -(alpha Delta / dt) d<s Lambda'(r(t_k))>/dY_j`` with ``Y_j`` a shift of the loss's
    argument ``r(t_j)``, propagated by eq 15 linearized (``kick = 0``); or by eq 15 itself from kicks of
    ``h(t_{j+1})`` by ``+-kick`` (the finite-difference response of ``response(..., kick=...)``)."""
    K, S = H.shape
    a = math.sqrt(delta)
    r = a * H + m[:, None] * (c + a * h0)
    s = np.ones((K, S)) if sel is None else sel.astype(float)
    d2 = s * loss(y, r)[2]
    d1 = lambda k, x: s[k] * loss(y, r[k] + a * x)[1]            # noqa: E731
    MR = np.zeros((K, K))
    for j in range(K - 2, -1, -1):
        if kick == 0:
            dh = np.zeros((K, S))
            dh[j + 1] = -dt * a * d2[j]
            for k in range(j + 1, K):
                MR[k, j] = -(alpha * delta / dt) * np.mean(d2[k] * a * dh[k])
                if k < K - 1:
                    dh[k + 1] = (dh[k] * (1 - dt * (lam + lamhat[k])) - dt * a * d2[k] * a * dh[k]
                                 + dt * dt * MR[k, j + 1:k] @ dh[j + 1:k])
            continue
        U = {sign: np.zeros((K, S)) for sign in (1, -1)}
        for sign in U:
            U[sign][j + 1] = sign * kick
        for k in range(j + 1, K):
            MR[k, j] = alpha * np.mean(delta * d2[j] * a * (d1(k, U[1][k]) - d1(k, U[-1][k])) / (2 * kick))
            if k < K - 1:
                for x in U.values():
                    x[k + 1] = (x[k] * (1 - dt * (lam + lamhat[k])) - dt * a * (d1(k, x[k]) - d1(k, 0.0))
                                + dt * dt * MR[k, j + 1:k] @ x[j + 1:k])
    return MR


PROBLEMS = {"mixture-2": dict(delta=0.5, door=False, capsule=lambda: losses.capsule("logistic")),
            "mixture-3": dict(delta=0.05, door=True, capsule=lambda: losses.capsule("quadratic-logistic", onset=0.7))}


def _mixture_inputs(problem, K=10, S=37, seed=2):
    rng = np.random.default_rng(seed)
    values, weights = CLUSTERS[problem]
    c = rng.choice(values, size=S, p=weights)
    return dict(MR=np.tril(rng.normal(0, 0.3, (K, K)), -1), h_init=0.3 * rng.normal(size=S), c=c,
                h0=rng.normal(size=S), y=labels(problem, c), Z=rng.normal(size=(K, S)),
                sel=(rng.random((K, S)) < 0.6).astype(np.uint8))


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("with_sel", [False, True])
def test_march_matches_the_transcription_of_eqs_15_to_22(problem, with_sel):
    """The kernels' process with the amplitude a = sqrt(Delta) and quenched h0 = c/sqrt(Delta) + h0 is
    2020's: paths, m, hat_lambda (delta_nu), mu, M_C, the noise factor, C and R of eq 20, the training
    loss e/alpha (eq 21) and error 1 - a (eq 22)."""
    p = PROBLEMS[problem]
    x = _mixture_inputs(problem)
    sel = x["sel"] if with_sel else None
    loss, phi = margin_loss(p["door"], 0.7)
    args = dict(alpha=2.5, delta=p["delta"], lam=0.3, dt=0.1, m0=0.4, q0=0.09, jitter_rel=1e-10)
    ref = ref_mixture_march(loss, phi, **args, MR=x["MR"], h_init=x["h_init"], c=x["c"], h0=x["h0"], y=x["y"],
                            Z=x["Z"], sel=sel)
    a = math.sqrt(p["delta"])
    out = kd.march(p["capsule"](), alpha=args["alpha"], grad_scale=1.0, dt=args["dt"], m0=args["m0"], q0=args["q0"],
                   nu_form=kd.NU_FORMS["ridge"], ridge=args["lam"], m_with_delta_nu=False, temps=np.zeros(10),
                   jitter_rel=args["jitter_rel"], MR=x["MR"], h_init=x["h_init"], h0=x["c"] / a + x["h0"], y=x["y"],
                   Z=x["Z"], sel=sel, amplitude=a, n_threads=2)
    assert out["bad_step"] == -1 and out["n_clipped"] == 0
    for key, val in ref.items():
        # M_C of a smooth process is nearly singular (condition number ~1e11 here): its factor, and the
        # paths through the noise, carry rounding of ~1e-10
        np.testing.assert_allclose(out[key], val, rtol=1e-9, atol=1e-9 if key in ("L", "H") else 1e-11, err_msg=key)
    np.testing.assert_array_equal(out["nu_hat"], args["lam"])
    assert 0 < ref["train_error"].max() < 1                  # the error is not trivially 0 or 1 here


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("kick", [0.0, 0.1])
def test_response_matches_the_transcription_of_eq_19(problem, kick):
    """M_R from the march's paths: the linear response to a shift of the loss's argument (eq 19), and the
    kicked response, with the amplitude sqrt(Delta)."""
    p = PROBLEMS[problem]
    x = _mixture_inputs(problem, K=12, S=37, seed=5)
    loss, _ = margin_loss(p["door"], 0.7)
    a, cap, dt, lam = math.sqrt(p["delta"]), p["capsule"](), 0.1, 0.3
    out = kd.march(cap, alpha=2.5, grad_scale=1.0, dt=dt, m0=0.4, q0=0.09, nu_form=kd.NU_FORMS["ridge"], ridge=lam,
                   m_with_delta_nu=False, temps=np.zeros(12), jitter_rel=1e-10, MR=x["MR"], h_init=x["h_init"],
                   h0=x["c"] / a + x["h0"], y=x["y"], Z=x["Z"], sel=x["sel"], amplitude=a)
    nut = np.ascontiguousarray(out["nu_hat"] + out["delta_nu"])
    got = kd.response(out["D"], nut, dt, 2.5, 1.0, kick=kick, loss=cap, H=out["H"], h0=x["c"] / a + x["h0"], y=x["y"],
                      m=out["m"], sel=x["sel"], amplitude=a, n_threads=2)
    ref = ref_mixture_response(loss, 2.5, p["delta"], lam, out["delta_nu"], dt, out["H"], out["m"], x["c"], x["h0"],
                               x["y"], x["sel"], kick=kick)
    assert np.abs(ref).max() > 1e-3
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12 * np.abs(ref).max())


def test_the_hinge_kink_is_outside_the_response():
    """The hinge's d2v is 0 (its kink, where the curvature is a delta function, is a point): hat_lambda
    and M_R are identically 0, in the linear response and in the kicked one (whose source is D(t') =
    s d2v(t')); the DMFT therefore refuses the hinges (docs/dmft.md, "The mixture DMFT")."""
    x = _mixture_inputs("mixture-2", K=8, S=40)
    a, cap = math.sqrt(0.5), losses.capsule("hinge")
    out = kd.march(cap, alpha=2.0, grad_scale=1.0, dt=0.2, m0=0.5, q0=0.5, nu_form=kd.NU_FORMS["ridge"], ridge=0.0,
                   m_with_delta_nu=False, temps=np.zeros(8), jitter_rel=1e-10, MR=np.zeros((8, 8)),
                   h_init=x["h_init"], h0=x["c"] / a + x["h0"], y=x["y"], Z=x["Z"], sel=None, amplitude=a)
    assert np.all(out["delta_nu"] == 0) and np.abs(out["G"]).max() > 0
    nut = np.ascontiguousarray(out["nu_hat"] + out["delta_nu"])
    for kick in (0.0, 0.1):
        MR = kd.response(out["D"], nut, 0.2, 2.0, 1.0, kick=kick, loss=cap, H=out["H"], h0=x["c"] / a + x["h0"],
                         y=x["y"], m=out["m"], amplitude=a)
        assert np.all(MR == 0)
    for loss in ("hinge", "quadratic-hinge"):
        with pytest.raises(ValueError, match=f"loss: '{loss}' is not allowed in the DMFT"):
            dmft.solve(problem="mixture-2", loss=loss, samples=10)


# ---------------------------------------------------------------------------------------------
# the samples and the spec

def test_the_samples_of_a_mixture_follow_its_law():
    spec = dmft.DMFTSpec.from_flat(problem="mixture-3", samples=20000, init_variance=0.04, m0=0.01, t_max=0.04)
    assert (spec.delta, spec.onset, spec.init.kind, spec.constraint.kind) == (0.05, 0.7, "random", "ridge")
    smp = dmft.draw_samples(spec)
    streams = np.random.SeedSequence(0).spawn(len(dmft.STREAMS))
    gauss = np.random.Generator(np.random.PCG64(streams[0])).standard_normal(20000)
    c = smp["c"]
    np.testing.assert_array_equal(c, np.random.Generator(np.random.PCG64(streams[4])).choice(
        (0.0, 1.0, -1.0), size=20000, p=(0.5, 0.25, 0.25)))
    np.testing.assert_allclose(smp["h0"], c / math.sqrt(0.05) + gauss, rtol=1e-15)
    np.testing.assert_array_equal(smp["y"], np.where(c == 0, -1.0, 1.0))
    assert abs(np.mean(c == 0) - 0.5) < 0.015 and abs(np.mean(c == 1) - 0.25) < 0.015
    assert abs(np.var(smp["h_init"]) / 0.04 - 1) < 0.03            # h(0) ~ N(0, R) (eq 17)
    # a mirror image negates the kernels' h0: the cluster and the Gaussian part
    anti = dmft.draw_samples(dmft.DMFTSpec.from_flat(problem="mixture-2", samples=10, antithetic=True, t_max=0.04))
    np.testing.assert_array_equal(anti["c"][:5], -anti["c"][5:])
    np.testing.assert_array_equal(anti["h0"][:5], -anti["h0"][5:])
    np.testing.assert_array_equal(anti["y"], anti["c"])


def test_persistent_sgd_chain_steps_is_the_simulations_chain():
    """chain "steps" (a mixture's default): P(0->1) = lr/tau, P(1->0) = (1-ell) lr/(ell tau) per grid
    step, as in the simulations; "flow" the continuous-time chain at the grid times."""
    kw = dict(problem="mixture-2", algorithm="psgd", lr=0.2, batch_fraction=0.3, persistence=1 / 0.6, t_max=200,
              samples=400)
    rates = {}
    for chain in ("steps", "flow"):
        spec = dmft.DMFTSpec.from_flat(**kw, chain=chain)
        sel = dmft.draw_samples(spec)["sel"].astype(bool)
        rates[chain] = (np.mean(sel[1:][~sel[:-1]]), np.mean(~sel[1:][sel[:-1]]))
    assert dmft.DMFTSpec.from_flat(**kw).solver.chain == "steps"
    np.testing.assert_allclose(rates["steps"], (0.12, 0.28), rtol=0.03)
    decay = -math.expm1(-0.2 / (0.3 / 0.6))
    np.testing.assert_allclose(rates["flow"], (0.3 * decay, 0.7 * decay), rtol=0.03)
    assert dmft.DMFTSpec.from_flat(problem="phase-retrieval", algorithm="psgd").solver.chain == "flow"


@pytest.mark.parametrize("options, match", [
    (dict(problem="mixture-2", constraint="sphere"), "constraint: 'sphere' is not allowed on mixture-2; allowed: ridge"),
    (dict(delta=0.3), "delta: 0.3 does not apply to problem phase-retrieval"),
    (dict(init_variance=0.3), "init_variance: 0.3 does not apply to problem phase-retrieval"),
    (dict(problem="mixture-2", onset=0.5), "onset: 0.5 does not apply to problem mixture-2"),
    (dict(problem="mixture-3", delta=0.0), "delta: 0.0 is not allowed"),
    (dict(problem="mixture-3", init_variance=-1.0), "init_variance: -1.0 is not allowed"),
    (dict(problem="mixture-2", chain="steps"), "chain: 'steps' does not apply to algorithm gd"),
    (dict(problem="mixture-2", algorithm="psgd", lr=0.2, persistence=2.0, dt=0.1), "dt: 0.1 differs from lr = 0.2"),
    (dict(problem="mixture-2", init="random"), "init: not an option of the DMFT"),
])
def test_bad_mixture_input_is_named(options, match):
    with pytest.raises(ValueError, match=match):
        dmft.solve(**{"samples": 10, **options})


def test_estimators_refuse_a_mixture():
    with pytest.raises(ValueError, match="problem: 'mixture-2' is not allowed"):
        dmft.estimators(np.zeros((2, 3)), np.zeros(3), alpha=2.0, problem="mixture-2")


def test_the_solvers_machinery_serves_the_mixture(tmp_path):
    """One solver: checkpoints (resumed bitwise; another Delta is another spec), horizon windows (the same
    fixed point), warm starts, threads (bitwise) and the kicked response (close to the linear one for
    the smooth logistic loss) on a mixture."""
    kw = dict(problem="mixture-3", alpha=3.0, lr=0.2, init_variance=0.01, m0=0.05, ridge=0.1, t_max=4, samples=300,
              tol=1e-10, max_iter=60)
    whole = dmft.solve(**kw, threads=1)
    assert whole.attrs["status"] == "converged"
    np.testing.assert_array_equal(dmft.solve(**kw, threads=2).magnetization.values, whole.magnetization.values)
    ck = tmp_path / "ck.npz"
    dmft.solve(**{**kw, "max_iter": 2}, checkpoint=ck)
    np.testing.assert_array_equal(dmft.solve(**kw, checkpoint=ck).magnetization.values, whole.magnetization.values)
    with pytest.raises(ValueError, match="checkpoint.*another spec"):
        dmft.solve(**{**kw, "delta": 0.1}, checkpoint=ck)
    windowed = dmft.solve(**kw, window=1.0)
    np.testing.assert_allclose(windowed.magnetization.values, whole.magnetization.values, atol=1e-8)
    warm = dmft.solve(**kw, initial=whole)
    assert warm.attrs["iterations"] < whole.attrs["iterations"]
    kicked = dmft.solve(**kw, response_kick=0.05)
    assert kicked.attrs["status"] == "converged"
    np.testing.assert_allclose(kicked.test_error.values, whole.test_error.values, atol=2e-3)


# ---------------------------------------------------------------------------------------------
# the solver against simulations and the static minimizer (docs/dmft.md, "The mixture DMFT")

MIX = dict(problem="mixture-2", alpha=2.0, delta=0.5, lr=0.2, init_variance=0.01)


def _compare(theory, sims, times):
    """DMFT minus simulations in test error at ``times`` and the simulations' standard error."""
    th = theory.test_error.sel(time=times, method="nearest").values
    sim = sims.test_error.sel(time=times, method="nearest")
    return th - sim.mean("seed").values, sim.std("seed", ddof=1).values / math.sqrt(sims.sizes["seed"])


def test_two_cluster_gd_matches_simulations():
    """Fig 1 (right) at lambda = 0 to t = 10: the DMFT (S = 2000) within 0.004 of the mean of 8 simulations
    at d = 1000 in test error, and within 3 standard errors of both sides in norm and training accuracy.
    (d = 2000, 32 seeds, S = 4000 x 4 replicas to t = 100: docs/validation.md.)"""
    theory = dmft.solve(**MIX, t_max=10, samples=2000, threads=2)
    assert theory.attrs["status"] == "converged"
    sims = prcy.simulate(**MIX, n=1000, t_max=10, seeds=8, times=(0.2, 1, 2, 5, 10), threads=2)
    diff, se = _compare(theory, sims, [0.2, 1, 2, 5, 10])
    assert np.max(np.abs(diff)) < 0.004 and np.max(se) < 0.0015, (diff, se)
    assert float(theory.test_error.sel(time=0.2)) < 0.13 < 0.5 == float(theory.test_error[0])    # the first step
    for name in ("norm", "train_accuracy"):
        th = theory[name].sel(time=[1, 5, 10], method="nearest").values
        sim = sims[name].sel(time=[1, 5, 10], method="nearest")
        assert np.all(np.abs(th - sim.mean("seed").values) < 0.02 * np.maximum(1, th)), name


def test_persistent_sgd_matches_simulations_within_their_errors():
    """Fig 1 (left), b = 0.3, 1/tau = 0.6, to t = 10: with the simulations' selection chain the DMFT (mean
    of 3 replicas at S = 4000; solve-to-solve s.d. of the test error 0.001, measured) is within 3 combined
    standard errors of 16 simulations at d = 1000."""
    kw = dict(**MIX, algorithm="psgd", batch_fraction=0.3, persistence=1 / 0.6, t_max=10)
    times = [1, 2, 5, 10]
    theory = dmft.solve(**kw, samples=4000, replicas=3, threads=2)
    assert theory.attrs["status"] == "converged"
    sims = prcy.simulate(**kw, n=1000, seeds=16, times=tuple(times), threads=2)
    th = theory.test_error.sel(time=times, method="nearest").mean("replica")
    sim = sims.test_error.sel(time=times, method="nearest")
    se = np.hypot(0.001 / math.sqrt(3), sim.std("seed", ddof=1) / 4)
    z = (th - sim.mean("seed")) / se
    assert float(np.abs(z).max()) < 3, (th.values, sim.mean("seed").values, se.values)


def test_gd_with_a_ridge_converges_to_the_ridge_logistic_minimizer():
    """lambda = 1: GD's fixed point is the minimizer of the regularized logistic loss, whatever the step,
    so the DMFT on a coarse grid (dt = lr = 0.5) ends at the static m, C and test error of
    prcy.analysis.ridge_logistic_two_cluster (0.5628, 0.4014, 0.1045) within its Monte Carlo error: the
    solve-to-solve s.d. of m(t_max) is 0.0036 at S = 4000 and 0.0005 at S = 64000 (docs/dmft.md, "The
    mixture DMFT"), so 0.003 in m and C is 3 s.d. at S = 32000."""
    m, C, err = ridge_logistic_two_cluster(2.0, 0.5, 1.0)
    ds = dmft.solve(**{**MIX, "lr": 0.5}, ridge=1.0, t_max=10, samples=32000, threads=2)
    assert ds.attrs["status"] == "converged"
    end = ds.isel(time=-1)
    for value, exact, tol in ((end.magnetization, m, 0.003), (end.norm, C, 0.003), (end.test_error, err, 3e-4)):
        assert abs(float(value) - exact) < tol, (float(value), exact)
    np.testing.assert_allclose(ds.magnetization[-1], ds.magnetization[-5], atol=1e-6)        # stationary


def test_three_clusters_keep_the_symmetry_of_m0_0_with_mirror_pairs_and_break_it_with_a_start():
    """The door is even: m(0) = 0 stays 0 for d -> infinity, and so it does in the DMFT with mirror pairs
    (antithetic), test error 1/2; independent samples break the symmetry by their Monte Carlo noise (like
    a finite d); m(0) = sqrt(2R/(pi d)), the mean |m(0)| of a random start in dimension d, lets the door
    learn (Fig 3's initialization)."""
    kw = dict(problem="mixture-3", alpha=2.0, lr=0.2, init_variance=1.0, t_max=20, samples=2000, threads=2)
    flat = dmft.solve(**kw, antithetic=True)
    noisy = dmft.solve(**kw)
    start = math.sqrt(2 / (math.pi * 1000))
    broken = dmft.solve(**kw, m0=start)
    assert flat.attrs["status"] == noisy.attrs["status"] == broken.attrs["status"] == "converged"
    assert float(np.abs(flat.magnetization).max()) < 1e-6
    np.testing.assert_allclose(flat.test_error, 0.5, atol=1e-6)
    assert float(np.abs(noisy.magnetization[-1])) > 0.1
    assert float(broken.magnetization[0]) == pytest.approx(start) and float(broken.test_error[-1]) < 0.3
    assert broken.attrs["onset"] == 0.7 and broken.attrs["delta"] == 0.05


def test_the_command_line_solves_a_mixture(tmp_path):
    from typer.testing import CliRunner

    from prcy.cli import app
    from prcy.io import open_dataset

    runner = CliRunner()
    out = tmp_path / "mix.nc"
    result = runner.invoke(app, ["dmft", "--problem", "mixture-2", "--delta", "0.5", "--init-variance", "0.01",
                                 "--lr", "0.2", "--t-max", "2", "--samples", "500", "--no-progress", "-o", str(out)])
    assert result.exit_code == 0, result.output
    ds = open_dataset(out)
    assert {"test_error", "train_accuracy", "train_error", "train_loss"} <= set(ds.data_vars)
    assert (ds.attrs["delta"], ds.attrs["init_variance"], ds.attrs["init"]) == (0.5, 0.01, "random")
    bad = runner.invoke(app, ["dmft", "--problem", "mixture-2", "--constraint", "sphere", "-o", str(tmp_path / "x.nc")])
    assert bad.exit_code == 2 and "constraint: 'sphere' is not allowed on mixture-2" in bad.output
    assert "Traceback" not in bad.output


def test_the_docs_examples_run():
    """The ``>>>`` examples of docs/dmft.md, "The mixture DMFT", give their printed output (seed 0)."""
    assert run_section("dmft.md", "## The mixture DMFT") == (0, 6)
