"""Statistics and draw order of the selection processes ``prcy.kernels.switching.sample``.

Persistent chain (eq 7 of Mignacco et al. 2021): per step ``P(0->1) = eta/tau``,
``P(1->0) = (1-ell) eta/(ell tau)``, started from ``Bernoulli(ell)``. Its stationary active fraction is
``ell``, its mean dwell time (physical time ``steps * eta``) is ``ell tau/(1-ell)`` when active and ``tau``
when inactive, its lag-1 autocorrelation is ``1 - P(0->1) - P(1->0)``, and ``tau = eta/ell`` makes it
i.i.d. Bernoulli(``ell``). Tolerances are 5 standard errors, computed from the sample sizes.
"""
import math

import numpy as np
import pytest

from prcy.kernels import switching

Z = 5.0  # tolerance in standard errors


def _sample(kind, m, n_steps, ell, tau, eta, seed):
    S = switching.sample(kind, m, n_steps, ell, tau, eta, np.random.PCG64(seed))
    assert S.dtype == np.uint8 and S.shape == (n_steps, m)
    assert set(np.unique(S)) <= {0, 1}
    return S


def _runs(S):
    """Complete runs of every chain (column), the censored first and last run of each excluded.

    Returns ``(lengths, states)`` in steps."""
    C = S.T.astype(np.int8)                              # (m, n_steps): one chain per row
    chain, pos = np.nonzero(np.diff(C, axis=1))          # s[pos] != s[pos + 1]: a run ends at pos
    same = chain[1:] == chain[:-1]
    lengths = (pos[1:] - pos[:-1])[same]
    states = C[chain[:-1][same], pos[:-1][same] + 1]
    return lengths, states


def _lag_autocorrelation(S, ell, lag=1):
    """Per chain ``mean((s_k - ell)(s_{k+lag} - ell)) / (ell (1 - ell))``: mean and standard error over
    the (independent) chains."""
    A = S.astype(np.float64) - ell
    per_chain = np.mean(A[:-lag] * A[lag:], axis=0) / (ell * (1 - ell))
    return per_chain.mean(), per_chain.std(ddof=1) / math.sqrt(len(per_chain))


def _neighbour_correlation(S, ell):
    """Correlation of samples ``2i`` and ``2i + 1`` at the same step (independent chains: 0): per disjoint
    pair of chains, time-averaged; mean and standard error over the (independent) pairs."""
    A = S.astype(np.float64) - ell
    m2 = A.shape[1] - A.shape[1] % 2
    per_pair = np.mean(A[:, 0:m2:2] * A[:, 1:m2:2], axis=0) / (ell * (1 - ell))
    return per_pair.mean(), per_pair.std(ddof=1) / math.sqrt(len(per_pair))


PERSISTENT = [  # (ell, tau, eta)
    (0.3, 0.5, 0.05),   # P(0->1) = 0.1, P(1->0) = 0.2333
    (0.2, 1.0, 0.05),   # P(0->1) = 0.05, P(1->0) = 0.2
    (0.7, 0.4, 0.02),   # P(0->1) = 0.05, P(1->0) = 0.0214
]


@pytest.mark.parametrize("ell,tau,eta", PERSISTENT)
def test_persistent_stationary_fraction_and_autocorrelation(ell, tau, eta):
    m, n_steps = 200, 20000
    S = _sample("persistent", m, n_steps, ell, tau, eta, seed=11)
    p_on, p_off = eta / tau, (1 - ell) * eta / (ell * tau)
    assert switching.transition_probabilities(ell, tau, eta) == pytest.approx((p_on, p_off), rel=1e-15)
    lam = 1.0 - p_on - p_off
    # time-and-sample average, with the AR(1) variance inflation (1 + lam) / (1 - lam) of a two-state chain
    se = math.sqrt(ell * (1 - ell) * (1 + lam) / (1 - lam) / (m * n_steps))
    assert abs(S.mean() - ell) < Z * se, (S.mean(), ell, se)
    # lag-1 and lag-3 autocorrelations lam, lam^3
    for lag in (1, 3):
        r, se_r = _lag_autocorrelation(S, ell, lag)
        assert abs(r - lam ** lag) < Z * se_r, (lag, r, lam ** lag, se_r)
    # the samples are independent chains
    c, se_c = _neighbour_correlation(S, ell)
    assert abs(c) < Z * se_c


@pytest.mark.parametrize("ell,tau,eta", PERSISTENT)
def test_persistent_starts_stationary(ell, tau, eta):
    """s(0) ~ Bernoulli(ell) and the law stays stationary: at every one of the first steps, the fraction
    of active samples across many independent chains is ell."""
    m, n_steps = 20000, 20
    S = _sample("persistent", m, n_steps, ell, tau, eta, seed=10)
    se = math.sqrt(ell * (1 - ell) / m)
    dev = np.abs(S.mean(axis=1) - ell)
    assert np.all(dev < Z * se), (dev.max(), se)


@pytest.mark.parametrize("ell,tau,eta", PERSISTENT)
def test_persistent_transition_probabilities(ell, tau, eta):
    """Per-step flip frequencies estimate eq 7 directly (binomial standard errors)."""
    m, n_steps = 200, 20000
    S = _sample("persistent", m, n_steps, ell, tau, eta, seed=12)
    prev, nxt = S[:-1], S[1:]
    n0, n1 = np.sum(prev == 0), np.sum(prev == 1)
    f01 = np.sum((prev == 0) & (nxt == 1)) / n0
    f10 = np.sum((prev == 1) & (nxt == 0)) / n1
    p_on, p_off = eta / tau, (1 - ell) * eta / (ell * tau)
    assert abs(f01 - p_on) < Z * math.sqrt(p_on * (1 - p_on) / n0), (f01, p_on)
    assert abs(f10 - p_off) < Z * math.sqrt(p_off * (1 - p_off) / n1), (f10, p_off)


@pytest.mark.parametrize("ell,tau,eta", PERSISTENT)
def test_persistent_dwell_times(ell, tau, eta):
    """Mean dwell times (physical time) from complete runs: ell tau/(1-ell) active, tau inactive; runs are
    geometric, so a run of one step has probability equal to the flip probability."""
    m, n_steps = 200, 20000
    S = _sample("persistent", m, n_steps, ell, tau, eta, seed=13)
    lengths, states = _runs(S)
    p_on, p_off = eta / tau, (1 - ell) * eta / (ell * tau)
    for state, p, expected in ((1, p_off, ell * tau / (1 - ell)), (0, p_on, tau)):
        L = lengths[states == state]
        assert L.size > 10000
        dwell = L.mean() * eta
        se = L.std(ddof=1) / math.sqrt(L.size) * eta
        assert abs(dwell - expected) < Z * se, (state, dwell, expected, se)
        # geometric law: P(L = 1) = p and the variance (1 - p)/p^2
        frac1 = np.mean(L == 1)
        assert abs(frac1 - p) < Z * math.sqrt(p * (1 - p) / L.size), (state, frac1, p)
        assert abs(L.var() / ((1 - p) / p ** 2) - 1) < 0.05


@pytest.mark.parametrize("ell", [0.5, 0.25, 0.8])
def test_persistent_sgd_limit_is_bernoulli(ell):
    """tau = eta/ell: P(0->1) = ell, P(1->0) = 1 - ell, the chain forgets its state every step."""
    m, n_steps, eta = 300, 5000, 0.01
    tau = eta / ell
    S = _sample("persistent", m, n_steps, ell, tau, eta, seed=21)
    se = math.sqrt(ell * (1 - ell) / (m * n_steps))
    assert abs(S.mean() - ell) < Z * se
    for lag in (1, 2):
        r, se_r = _lag_autocorrelation(S, ell, lag)
        assert abs(r) < Z * se_r, (lag, r, se_r)
        # the independent-pairs standard error, as a cross-check of the estimated one
        assert abs(r) < Z / math.sqrt(m * (n_steps - lag))
    c, se_c = _neighbour_correlation(S, ell)
    assert abs(c) < Z * se_c


@pytest.mark.parametrize("ell", [0.5, 0.1, 0.9])
def test_bernoulli_fraction_and_independence(ell):
    m, n_steps = 300, 5000
    S = _sample("bernoulli", m, n_steps, ell, 1.0, 0.01, seed=31)
    se = math.sqrt(ell * (1 - ell) / (m * n_steps))
    assert abs(S.mean() - ell) < Z * se
    per_step = S.mean(axis=1)          # fraction per step: binomial(m, ell) / m at every step
    assert abs(per_step.var(ddof=1) / (ell * (1 - ell) / m) - 1) < Z * math.sqrt(2 / (n_steps - 1))
    for lag in (1, 2):
        r, se_r = _lag_autocorrelation(S, ell, lag)
        assert abs(r) < Z * se_r and abs(r) < Z / math.sqrt(m * (n_steps - lag)), (lag, r)
    c, se_c = _neighbour_correlation(S, ell)
    assert abs(c) < Z * se_c


def test_bernoulli_ignores_tau_and_eta():
    a = _sample("bernoulli", 17, 40, 0.4, 1.0, 0.01, seed=5)
    b = _sample("bernoulli", 17, 40, 0.4, 0.003, 0.5, seed=5)
    np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------------------------------
# exact draw order (documented in switching.pyx)


def _holding_time(u, p):
    """``max(1, ceil(log1p(-u) / log1p(-p)))``: geometric on {1, 2, ...} with success probability ``p``."""
    return max(1, math.ceil(math.log1p(-u) / math.log1p(-p)))


def _persistent_by_hand(m, n_steps, ell, tau, eta, seed):
    g = np.random.Generator(np.random.PCG64(seed))
    p_on, p_off = eta / tau, (1 - ell) * eta / (ell * tau)
    state = np.zeros(m, dtype=np.uint8)
    next_flip = np.zeros(m, dtype=np.int64)
    for mu in range(m):                                  # start: state, then its holding time
        state[mu] = g.random() < ell
        next_flip[mu] = _holding_time(g.random(), p_off if state[mu] else p_on)
    out = np.zeros((n_steps, m), dtype=np.uint8)
    for k in range(n_steps):
        for mu in range(m):                              # flips due now, in sample order
            if next_flip[mu] == k:
                state[mu] = 1 - state[mu]
                next_flip[mu] = k + _holding_time(g.random(), p_off if state[mu] else p_on)
        out[k] = state
    return out


@pytest.mark.parametrize("ell,tau,eta", [(0.3, 0.5, 0.05), (0.5, 0.02, 0.01), (0.6, 0.05, 0.01)])
def test_persistent_draw_order(ell, tau, eta):
    m, n_steps, seed = 13, 300, 2024
    got = _sample("persistent", m, n_steps, ell, tau, eta, seed)
    expected = _persistent_by_hand(m, n_steps, ell, tau, eta, seed)
    assert 0 < expected.mean() < 1 and np.any(expected[1:] != expected[:-1])
    np.testing.assert_array_equal(got, expected)


def test_bernoulli_draw_order():
    m, n_steps, ell, seed = 13, 50, 0.35, 77
    got = _sample("bernoulli", m, n_steps, ell, 1.0, 0.01, seed)
    g = np.random.Generator(np.random.PCG64(seed))
    expected = np.array([[g.random() < ell for _ in range(m)] for _ in range(n_steps)], dtype=np.uint8)
    np.testing.assert_array_equal(got, expected)


def test_invalid_arguments():
    with pytest.raises(ValueError):
        switching.sample("persistent", 5, 5, 0.5, 0.001, 0.01, np.random.PCG64(0))   # P(0->1) = 10
    with pytest.raises(ValueError):
        switching.sample("shuffle", 5, 5, 0.5, 1.0, 0.01, np.random.PCG64(0))
