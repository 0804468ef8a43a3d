"""A plain, slow, obvious NumPy reference for the gradient dynamics (written from PHYSICS.md, not from
the kernels), used by ``test_reference.py`` to check ``prcy.kernels.dynamics`` step for step.

One step ``k`` (physical time ``k eta``), eqs 5-10 of Mignacco et al. 2021::

    h_mu = x_mu.w / sqrt(n)
    g    = (1/ell) sum_{mu: s_mu(k) = 1} dv(h_mu; h0_mu) x_mu / sqrt(n)      (1/ell only when rescaled)
    w   <- w - eta (g + ridge w) + sqrt(2 T_k eta) z_k
    w   <- w sqrt(n) / |w|                                                  (sphere only)

Observables at a recording step ``k`` are those of the state *before* step ``k``'s update (so the
record at ``k = n_steps`` is the final state).
"""
import numpy as np

# --- losses: v(h; h0), dv/dh, and the test error of one held-out sample --------------------------


def _pr_v(h, h0):
    return (h * h - h0 * h0) ** 2 / 4.0


def _pr_dv(h, h0):
    return (h * h - h0 * h0) * h


def _pr_err(h, h0):
    return (np.abs(h0) - np.abs(h)) ** 2


def _lin_v(h, h0):
    return (h - h0) ** 2 / 2.0


def _lin_dv(h, h0):
    return h - h0


def _lin_err(h, h0):
    return (h0 - h) ** 2


LOSSES = {
    "phase-retrieval": (_pr_v, _pr_dv, _pr_err),
    "linear-regression": (_lin_v, _lin_dv, _lin_err),
}


def observables(w, w0, X, h0, Xt, h0t, loss):
    """``(magnetization, norm, train loss per sample, test error)`` of the weights ``w``."""
    v, _, err = LOSSES[loss]
    n = w.shape[0]
    h = X @ w / np.sqrt(n)
    ht = Xt @ w / np.sqrt(n)
    return (
        float(w @ w0) / n,
        float(w @ w) / n,
        float(np.mean(v(h, h0))),
        float(np.mean(err(ht, h0t))) if len(h0t) else np.nan,
    )


def reference_trajectory(X, h0, w0, w_init, selection, noise, *, loss, eta, rescale_ell, ridge, sphere,
                         temperatures, record_steps, Xt=None, h0t=None):
    """Run ``len(selection)`` steps from ``w_init``.

    ``selection``: ``(n_steps, m)`` 0/1 matrix, row ``k`` = samples used at step ``k``;
    ``noise``: ``(n_steps, n)`` standard normals, row ``k`` used at step ``k`` (only when ``T_k > 0``);
    ``rescale_ell``: ``ell`` (gradient divided by it) or ``None``; ``temperatures``: ``T_k`` per step.

    Returns a dict with ``magnetization``, ``norm``, ``train_loss``, ``test_error`` at ``record_steps``,
    the final weights ``w`` and ``weights`` (the state before every step, ``n_steps + 1`` rows) and the
    full training-loss history ``loss_history`` (per sample, before every step).
    """
    X = np.asarray(X, dtype=np.float64)
    Xt = np.zeros((0, X.shape[1])) if Xt is None else np.asarray(Xt, dtype=np.float64)
    h0t = np.zeros(0) if h0t is None else np.asarray(h0t, dtype=np.float64)
    h0 = np.asarray(h0, dtype=np.float64)
    selection = np.asarray(selection)
    noise = np.asarray(noise, dtype=np.float64)
    temperatures = np.asarray(temperatures, dtype=np.float64)
    n_steps = selection.shape[0]
    m, n = X.shape
    assert selection.shape == (n_steps, m)
    assert temperatures.shape == (n_steps,)
    _, dv, _ = LOSSES[loss]

    w = np.array(w_init, dtype=np.float64)
    weights = [w.copy()]
    history = []
    record = {k: [] for k in ("magnetization", "norm", "train_loss", "test_error")}
    record_set = set(int(r) for r in record_steps)
    with np.errstate(all="ignore"):
        for k in range(n_steps + 1):
            obs = observables(w, w0, X, h0, Xt, h0t, loss)
            history.append(obs[2])
            if k in record_set:
                for key, value in zip(record, obs):
                    record[key].append(value)
            if k == n_steps:
                break
            h = X @ w / np.sqrt(n)
            g = np.zeros(n)
            for mu in range(m):
                if selection[k, mu]:
                    g += dv(h[mu], h0[mu]) * X[mu] / np.sqrt(n)
            if rescale_ell is not None:
                g = g / rescale_ell
            w = w - eta * (g + ridge * w)
            if temperatures[k] > 0:
                w = w + np.sqrt(2.0 * temperatures[k] * eta) * noise[k]
            if sphere:
                w = w * np.sqrt(n) / np.sqrt(w @ w)
            weights.append(w.copy())
    out = {key: np.array(value) for key, value in record.items()}
    out["w"] = w
    out["weights"] = np.array(weights)
    out["loss_history"] = np.array(history)
    return out


def temperature_per_step(n_steps, temp_starts, temp_values):
    """``T_k`` for ``k < n_steps`` from a piecewise-constant schedule (value ``j`` from step ``starts[j]``)."""
    T = np.empty(n_steps)
    for k in range(n_steps):
        j = max(i for i, s in enumerate(temp_starts) if s <= k)
        T[k] = temp_values[j]
    return T
