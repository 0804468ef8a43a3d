"""Update rules: an optimizer owns its per-weight state and one ``nogil`` step ``w <- step(w, g)``.

Usable from Cython via ``cimport prcy.kernels.optimizers``. With ``G = g + ridge w`` the gradient
of the step's objective (data term ``g`` and ridge) at the current weights and ``t = 1, 2, ...`` the
step count:

- ``plain``:    ``w <- w - eta G``;
- ``momentum``: ``v <- gamma v + G``, ``w <- w - eta v`` (heavy ball; Dmitriev 2021, eq 2.13);
- ``nesterov``: ``v <- gamma v + G``, ``w <- w - eta (G + gamma v)`` (eq 2.14);
- ``adam``:     ``m <- b1 m + (1 - b1) G``, ``s <- b2 s + (1 - b2) G^2``,
                ``w <- w - eta (m / (1 - b1^t)) / (sqrt(s / (1 - b2^t)) + eps)`` (Kingma & Ba 2015).

The state (``n_state`` vectors of length ``n``: ``v``, or ``m`` then ``s``) starts at zero. Langevin
noise and the constraint act after the step (``prcy.kernels.dynamics``); on the sphere the
velocity (``v``, Adam's ``m``) is left as it is after the projection of ``w``, as in Dmitriev 2021,
unless ``project_velocity``, which removes its component along ``w`` (``optimizer_project``).

Layers: (a) the step of each rule, (b) ``optimizer_step``/``optimizer_project`` dispatching on
``Optimizer.kind``, (c) ``optimizer_init`` from names, (d) the Python twin ``step``. A new rule is a
new ``OptimizerKind``, its step in (a) and its case in (b) and (c).
"""
from libc.math cimport sqrt, pow
from libc.stdint cimport int64_t
import numpy as np

NAMES = {"plain": OPT_PLAIN, "momentum": OPT_MOMENTUM, "nesterov": OPT_NESTEROV, "adam": OPT_ADAM}
STATE_VECTORS = {OPT_PLAIN: 0, OPT_MOMENTUM: 1, OPT_NESTEROV: 1, OPT_ADAM: 2}


cdef inline void _plain(double* w, const double* g, double ridge, double eta, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n):
        w[j] -= eta * (g[j] + ridge * w[j])


cdef inline void _heavy_ball(double* w, const double* g, double ridge, double eta, double gamma, double* v,
                             int nesterov, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    cdef double G
    for j in range(n):
        G = g[j] + ridge * w[j]
        v[j] = gamma * v[j] + G
        w[j] -= eta * (G + gamma * v[j]) if nesterov else eta * v[j]


cdef inline void _adam(const Optimizer* opt, double* w, const double* g, double ridge, double eta,
                       double* m, double* s, int64_t t, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    cdef double G
    cdef double b1 = opt.beta1, b2 = opt.beta2
    cdef double c1 = 1.0 - pow(b1, <double>t), c2 = 1.0 - pow(b2, <double>t)
    for j in range(n):
        G = g[j] + ridge * w[j]
        m[j] = b1 * m[j] + (1.0 - b1) * G
        s[j] = b2 * s[j] + (1.0 - b2) * G * G
        w[j] -= eta * (m[j] / c1) / (sqrt(s[j] / c2) + opt.eps)


cdef void optimizer_step(const Optimizer* opt, double* w, const double* g, double ridge, double eta,
                         double* state, int64_t t, Py_ssize_t n) noexcept nogil:
    """One step of the rule ``opt.kind`` at step count ``t >= 1``; ``state``: ``opt.n_state * n``."""
    if opt.kind == OPT_MOMENTUM or opt.kind == OPT_NESTEROV:
        _heavy_ball(w, g, ridge, eta, opt.momentum, state, opt.kind == OPT_NESTEROV, n)
    elif opt.kind == OPT_ADAM:
        _adam(opt, w, g, ridge, eta, state, state + n, t, n)
    else:
        _plain(w, g, ridge, eta, n)


cdef void optimizer_project(const Optimizer* opt, double* state, const double* w, Py_ssize_t n) noexcept nogil:
    """With ``project_velocity``: ``v <- v - (v.w / w.w) w`` for the first state vector."""
    cdef Py_ssize_t j
    cdef double vw = 0.0, ww = 0.0, c
    if not opt.project_velocity or opt.n_state == 0:
        return
    for j in range(n):
        vw += state[j] * w[j]
        ww += w[j] * w[j]
    c = vw / ww
    for j in range(n):
        state[j] -= c * w[j]


def _kind(str name):
    if name not in NAMES:
        raise ValueError(f"optimizer: {name!r} is not allowed; allowed: {', '.join(NAMES)}")
    return NAMES[name]


cdef int optimizer_init(Optimizer* opt, str name, double momentum, double beta1, double beta2, double eps,
                        bint project_velocity) except -1:
    """Fill ``opt`` for the rule ``name`` (``NAMES``) with its coefficients."""
    opt.kind = _kind(name)
    opt.n_state = STATE_VECTORS[opt.kind]
    opt.momentum = momentum
    opt.beta1 = beta1
    opt.beta2 = beta2
    opt.eps = eps
    opt.project_velocity = project_velocity
    return 0


def state_vectors(str name):
    """How many vectors of length ``n`` the rule ``name`` keeps per weight vector."""
    return STATE_VECTORS[_kind(name)]


def step(str name, double[::1] w, const double[::1] g, double[::1] state, *, double ridge=0.0, double eta,
         int64_t t, double momentum=0.0, double beta1=0.0, double beta2=0.0, double eps=0.0):
    """One step in place on ``w`` and ``state`` (length ``state_vectors(name) * n``): the Python twin of
    ``optimizer_step``."""
    cdef Optimizer opt
    optimizer_init(&opt, name, momentum, beta1, beta2, eps, False)
    cdef Py_ssize_t n = w.shape[0]
    if g.shape[0] != n or state.shape[0] != opt.n_state * n:
        raise ValueError(f"step: g has length {g.shape[0]}, state {state.shape[0]}; needed {n}, {opt.n_state * n}")
    with nogil:
        optimizer_step(&opt, &w[0], &g[0], ridge, eta, &state[0] if opt.n_state else NULL, t, n)
