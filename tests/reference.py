"""A plain, slow, obvious NumPy reference for the gradient dynamics (written from PHYSICS.md, not from
the kernels), used by ``test_reference.py`` to check ``prcy.kernels.dynamics`` step for step.

One step ``k`` (physical time ``k eta``), eqs 5-10 of Mignacco et al. 2021::

    h_mu = x_mu.w / sqrt(n)
    g    = (1/ell) sum_{mu: s_mu(k) = 1} dv(h_mu; y_mu) x_mu / sqrt(n)       (1/ell only when rescaled)
    w   <- w - eta (g + ridge w) + sqrt(2 T_k eta) z_k                        (plain; or the optimizer's step)
    w   <- w sqrt(n) / |w|                                                  (sphere only)

Observables at a recording step ``k`` are those of the state *before* step ``k``'s update (so the
record at ``k = n_steps`` is the final state).
"""
import numpy as np

# --- losses: v(h; y), dv/dh, and the test error of one held-out sample --------------------------
# Phase retrieval and linear regression are written out with their derivatives (Mignacco et al. 2021,
# eq 4); the losses of Dmitriev 2021 (eqs 2.6-2.8) are written as v only, and their derivative is the
# complex-step derivative Im v(h + i e) / e, exact to rounding for these analytic functions.


def _pr_v(h, y, theta):
    return (h * h - y * y) ** 2 / 4.0


def _pr_dv(h, y, theta):
    return (h * h - y * y) * h


def _modulus_err(h, y, theta):
    return (np.abs(y) - np.abs(h)) ** 2


def _lin_v(h, y, theta):
    return (h - y) ** 2 / 2.0


def _lin_dv(h, y, theta):
    return h - y


def _lin_err(h, y, theta):
    return (y - h) ** 2


def _smooth_modulus(h, eps):
    return np.sqrt(h * h + eps)


def _absolute_v(h, y, theta):
    return (y - _smooth_modulus(h, theta[0])) ** 2


def _door_square_v(h, y, theta):
    return (y - _smooth_modulus(h, theta[0]) + theta[1]) ** 2


def _door_logistic_v(h, y, theta):
    return np.log(1.0 + np.exp(-y * (_smooth_modulus(h, theta[0]) - theta[1])))


def _door_err(h, y, theta):
    return (np.where(np.abs(h) > theta[1], 1.0, -1.0) != y).astype(float)


# Margin losses of Mignacco et al. 2020 (eqs 5-7): v = l(y phi(h)), phi(h) = h or h^2 - L^2 (L = theta[0]),
# err = (y - sign(phi))^2 / 4 (eq 23). Logistic and square are analytic (complex-step derivative); the
# hinge's derivative is written out.
def _phi(h, theta, quadratic):
    return h * h - theta[0] ** 2 if quadratic else h


def _margin(l, quadratic):
    return lambda h, y, theta: l(y * _phi(h, theta, quadratic))


def _logistic(u):
    return np.log(1.0 + np.exp(-u))


def _square(u):
    return (1.0 - u) ** 2 / 2.0


def _hinge(u):
    return np.maximum(0.0, 1.0 - u)


def _hinge_dv(quadratic):
    def dv(h, y, theta):
        slope = 2.0 * h if quadratic else 1.0
        return np.where(y * _phi(h, theta, quadratic) < 1.0, -y * slope, 0.0)
    return dv


def _margin_err(quadratic):
    return lambda h, y, theta: (y - np.sign(_phi(h, theta, quadratic))) ** 2 / 4.0


def complex_step(v, step=1e-30):
    """``dv/dh`` of an analytic ``v(h, y, theta)`` by the complex step."""
    return lambda h, y, theta: np.imag(v(np.asarray(h, dtype=complex) + 1j * step, y, theta)) / step


LOSSES = {        # name: (v, dv, err)
    "phase-retrieval": (_pr_v, _pr_dv, _modulus_err),
    "linear-regression": (_lin_v, _lin_dv, _lin_err),
    "absolute": (_absolute_v, complex_step(_absolute_v), _modulus_err),
    "door-square": (_door_square_v, complex_step(_door_square_v), _door_err),
    "door-logistic": (_door_logistic_v, complex_step(_door_logistic_v), _door_err),
}
for _quadratic, _prefix in ((False, ""), (True, "quadratic-")):
    for _name, _l in (("logistic", _logistic), ("square", _square)):
        _v = _margin(_l, _quadratic)
        LOSSES[_prefix + _name] = (_v, complex_step(_v), _margin_err(_quadratic))
    LOSSES[_prefix + "hinge"] = (_margin(_hinge, _quadratic), _hinge_dv(_quadratic), _margin_err(_quadratic))

LABELS = {        # label of the teacher field h0; theta = (onset K,)
    "phase-retrieval": lambda h0, theta: np.abs(h0),
    "linear-regression": lambda h0, theta: h0,
    "door": lambda h0, theta: np.where(np.abs(h0) > theta[0], 1.0, -1.0),
}


def observables(w, w0, X, y, Xt, yt, loss, theta=()):
    """``(magnetization, norm, train loss per sample, test error, train error per sample)`` of the
    weights ``w``."""
    v, _, err = LOSSES[loss]
    n = w.shape[0]
    h = X @ w / np.sqrt(n)
    ht = Xt @ w / np.sqrt(n)
    return (
        float(w @ w0) / n,
        float(w @ w) / n,
        float(np.mean(v(h, y, theta))),
        float(np.mean(err(ht, yt, theta))) if len(yt) else np.nan,
        float(np.mean(err(h, y, theta))),
    )


# --- committee losses: Lambda(y, h[K]) of the fields H (m x K) of a student with K hidden units ------
# (Dmitriev 2021 eq 2.3): phase retrieval on yhat = mean_k h_k^2 at the single unit's scale; the modulus
# losses on a = mean_k sqrt(h_k^2 + eps). dLambda/dh_k by the complex step, column by column.

def _committee_pr(H, y, theta):
    return (np.mean(H * H, axis=1) - y * y) ** 2 / 4.0


def _committee_pr_err(H, y, theta):
    return (np.abs(y) - np.sqrt(np.mean(H * H, axis=1))) ** 2


def _committee_modulus(v):
    """The single-unit modulus loss ``v(h, y, theta)`` with ``a(h)`` replaced by the mean of ``a(h_k)``:
    ``v`` is called with the field ``sqrt(a^2 - eps)``, whose smoothed modulus is ``a``."""
    def loss(H, y, theta):
        a = np.mean(_smooth_modulus(H, theta[0]), axis=1)
        return v(np.sqrt(a * a - theta[0]), y, theta)
    return loss


def _committee_modulus_err(H, y, theta):
    return (np.abs(y) - np.mean(np.abs(H), axis=1)) ** 2


def _committee_door_err(H, y, theta):
    return (np.where(np.mean(np.abs(H), axis=1) > theta[1], 1.0, -1.0) != y).astype(float)


def committee_gradient(loss, step=1e-30):
    """``dLambda/dh_k`` (m x K) of an analytic ``loss(H, y, theta)`` by the complex step per column."""
    def grad(H, y, theta):
        out = np.empty(H.shape)
        for k in range(H.shape[1]):
            Hc = np.asarray(H, dtype=complex)
            Hc[:, k] += 1j * step
            out[:, k] = np.imag(loss(Hc, y, theta)) / step
        return out
    return grad


COMMITTEE_LOSSES = {        # name: (Lambda, err)
    "phase-retrieval": (_committee_pr, _committee_pr_err),
    "absolute": (_committee_modulus(_absolute_v), _committee_modulus_err),
    "door-square": (_committee_modulus(_door_square_v), _committee_door_err),
    "door-logistic": (_committee_modulus(_door_logistic_v), _committee_door_err),
}


def committee_observables(W, w0, X, y, Xt, yt, loss, theta=()):
    """A committee's record: ``M_k = w_k.w0/n``, ``Q = W W^T/n``, ``A = W^T W/(K n)`` and its summaries,
    the training loss and error and the held-out error, as a dict."""
    lam, err = COMMITTEE_LOSSES[loss]
    K, n = W.shape
    M = W @ w0 / n
    Q = W @ W.T / n
    A = W.T @ W / (K * n)
    H = X @ W.T / np.sqrt(n)
    Ht = Xt @ W.T / np.sqrt(n)
    return dict(unit_magnetization=M, overlap=Q, magnetization=np.sqrt(np.sum(M * M) / K), norm=np.trace(A),
                a_square=np.sum(A * A), train_loss=float(np.mean(lam(H, y, theta))),
                train_error=float(np.mean(err(H, y, theta))),
                test_error=float(np.mean(err(Ht, yt, theta))) if len(yt) else np.nan)


def reference_trajectory(X, y, w0, w_init, selection, noise, *, loss, eta, rescale_ell, ridge, sphere,
                         temperatures, record_steps, Xt=None, yt=None, theta=(), optimizer="plain", momentum=0.0,
                         beta1=0.9, beta2=0.999, adam_eps=1e-8, project_velocity=False, grad_tol=0.0,
                         committee=False):
    """Run ``len(selection)`` steps from ``w_init``.

    ``y``: the labels; ``selection``: ``(n_steps, m)`` 0/1 matrix, row ``k`` = samples used at step ``k``;
    ``noise``: ``(n_steps, n)`` standard normals, row ``k`` used at step ``k`` (only when ``T_k > 0``);
    ``rescale_ell``: ``ell`` (gradient divided by it) or ``None``; ``temperatures``: ``T_k`` per step;
    ``theta``: the loss's parameters. The update with ``G = g + ridge w`` (Dmitriev 2021, eqs 2.9, 2.13,
    2.14; Kingma & Ba 2015 for Adam), then the noise, then the projection to the sphere (and, with
    ``project_velocity``, of the velocity to the sphere's tangent space). ``grad_tol > 0``: stop before the
    update of the first step whose ``max |G|`` (on the sphere: of G's part tangent to the sphere) is below it.

    ``committee``: ``w_init`` is ``K x n``, one row per hidden unit, ``loss`` names a
    ``COMMITTEE_LOSSES`` entry, ``noise`` is ``(n_steps, K n)``; the gradient of unit ``k`` is
    ``sum_mu dLambda/dh_k x_mu / sqrt(n)``, the update acts on every weight, the sphere on each unit.

    Returns a dict with ``magnetization``, ``norm``, ``train_loss``, ``test_error``, ``train_error`` at
    ``record_steps`` (a committee: every ``committee_observables`` entry), up to the stop, the final
    weights ``w`` and ``weights`` (the state before every step), the full training-loss history
    ``loss_history`` (per sample, before every step) and ``stop_step``.
    """
    X = np.asarray(X, dtype=np.float64)
    Xt = np.zeros((0, X.shape[1])) if Xt is None else np.asarray(Xt, dtype=np.float64)
    yt = np.zeros(0) if yt is None else np.asarray(yt, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    selection = np.asarray(selection)
    noise = np.asarray(noise, dtype=np.float64)
    temperatures = np.asarray(temperatures, dtype=np.float64)
    n_steps = selection.shape[0]
    m, n = X.shape
    assert selection.shape == (n_steps, m)
    assert temperatures.shape == (n_steps,)
    if committee:
        lam, _ = COMMITTEE_LOSSES[loss]
        dlam = committee_gradient(lam)

        def observe(W):
            return committee_observables(W, w0, X, y, Xt, yt, loss, theta)
    else:
        _, dv, _ = LOSSES[loss]

        def dlam(H, y, theta):
            return dv(H[:, 0], y, theta)[:, None]

        def observe(W):
            return dict(zip(("magnetization", "norm", "train_loss", "test_error", "train_error"),
                            observables(W[0], w0, X, y, Xt, yt, loss, theta)))

    w = np.atleast_2d(np.array(w_init, dtype=np.float64))
    K = w.shape[0]
    v1 = np.zeros_like(w)       # velocity, or Adam's first moment
    v2 = np.zeros_like(w)       # Adam's second moment
    weights = [w.copy()]
    history = []
    record = {}
    record_set = set(int(r) for r in record_steps)
    stop = n_steps
    with np.errstate(all="ignore"):
        for k in range(n_steps + 1):
            obs = observe(w)
            history.append(obs["train_loss"])
            if k in record_set:
                for key, value in obs.items():
                    record.setdefault(key, []).append(value)
            if k == n_steps:
                break
            H = X @ w.T / np.sqrt(n)
            D = dlam(H, y, theta)
            g = np.zeros((K, n))
            for mu in range(m):
                if selection[k, mu]:
                    g += np.outer(D[mu], X[mu]) / np.sqrt(n)
            if rescale_ell is not None:
                g = g / rescale_ell
            G = g + ridge * w
            if grad_tol > 0:
                tangent = (G - np.sum(G * w, axis=1, keepdims=True) / np.sum(w * w, axis=1, keepdims=True) * w
                           if sphere else G)
                if np.max(np.abs(tangent)) < grad_tol:
                    stop = k
                    break
            if optimizer == "plain":
                w = w - eta * (g + ridge * w)
            elif optimizer in ("momentum", "nesterov"):
                v1 = momentum * v1 + G
                w = w - eta * (G + momentum * v1 if optimizer == "nesterov" else v1)
            elif optimizer == "adam":
                t = k + 1
                v1 = beta1 * v1 + (1 - beta1) * G
                v2 = beta2 * v2 + (1 - beta2) * G * G
                w = w - eta * (v1 / (1 - beta1 ** t)) / (np.sqrt(v2 / (1 - beta2 ** t)) + adam_eps)
            else:
                raise ValueError(optimizer)
            if temperatures[k] > 0:
                w = w + np.sqrt(2.0 * temperatures[k] * eta) * noise[k].reshape(K, n)
            if sphere:
                w = w * np.sqrt(n) / np.sqrt(np.sum(w * w, axis=1, keepdims=True))
                if project_velocity:
                    v1 = v1 - np.sum(v1 * w, axis=1, keepdims=True) / np.sum(w * w, axis=1, keepdims=True) * w
            weights.append(w.copy())
    out = {key: np.array(value) for key, value in record.items()}
    single = (lambda a: a[..., 0, :]) if not committee else (lambda a: a)
    out["w"] = single(w)
    out["weights"] = single(np.array(weights))
    out["loss_history"] = np.array(history)
    out["stop_step"] = stop
    return out


def temperature_per_step(n_steps, temp_starts, temp_values):
    """``T_k`` for ``k < n_steps`` from a piecewise-constant schedule (value ``j`` from step ``starts[j]``)."""
    T = np.empty(n_steps)
    for k in range(n_steps):
        j = max(i for i, s in enumerate(temp_starts) if s <= k)
        T[k] = temp_values[j]
    return T
