"""Sample-selection processes ``s_mu(t)`` for stochastic gradient algorithms.

Usable from Cython via ``cimport prcy.kernels.switching``:

- ``Switching``: the state of one selection process over ``m`` samples (see ``switching.pxd``);
- ``switching_start(sw, rng)``: draws ``s_mu(0)`` (and, for the persistent chain, each sample's first
  flip time);
- ``switching_select(sw, step, rng, active) -> n``: writes the indices of the samples used at ``step``
  (increasing order) into ``active`` and returns their number. Steps must be visited in order
  ``0, 1, 2, ...``;
- errors: none can occur; every function is ``noexcept nogil`` (the caller provides the buffers);
- ``geometric(rng, log_stay) -> k >= 1``: a geometric holding time, ``P(k) = (1-p)^(k-1) p`` with
  ``log_stay = log(1-p)``, by inversion of one uniform draw.

Laws. Bernoulli (``SELECT_BERNOULLI``, eq 6 of Mignacco et al. 2021): ``s_mu(t) ~ Bernoulli(ell)``
independently at every step, one uniform draw per sample per step. Persistent (``SELECT_PERSISTENT``,
eq 7): ``s_mu(0) ~ Bernoulli(ell)``, then per step ``P(0->1) = eta/tau`` and
``P(1->0) = (1-ell) eta / (ell tau)``. A chain whose per-step flip probability depends only on the
current state stays there a geometric number of steps, so the kernel draws that holding time once per
flip instead of one uniform per sample per step: the law is exactly eq 7, and the cost is one draw per
flip (a fraction ``~ 2 eta (1-ell)/tau`` of the samples per step) plus an integer comparison per sample.
``tau = eta/ell`` gives ``P(0->1) = ell``, ``P(1->0) = 1-ell``: the chain forgets its state at every
step and is the Bernoulli process again.

Draw order (so a NumPy reference can consume the same stream): Bernoulli: for each step, for each
sample in order, one ``random_standard_uniform``, active when ``< ell``. Persistent: at start, for each
sample, one uniform (active when ``< ell``) then one uniform for its geometric holding time; at a
step, for each sample whose flip time equals the step (in sample order), one uniform for the next
holding time. Holding time: ``max(1, ceil(log1p(-u) / log_stay))``.
"""
from libc.math cimport ceil, log1p, isfinite
from libc.stdint cimport int64_t
from numpy.random cimport bitgen_t
from numpy.random.c_distributions cimport random_standard_uniform
cimport cython
from cpython.pycapsule cimport PyCapsule_GetPointer

import numpy as np

cdef int64_t _NEVER = (<int64_t>1) << 62


cdef int64_t geometric(bitgen_t* rng, double log_stay) noexcept nogil:
    cdef double u = random_standard_uniform(rng)
    if log_stay == 0.0:          # p = 0: never leaves
        return _NEVER
    cdef double k = ceil(log1p(-u) / log_stay)
    if k < 1.0:
        return 1
    if k > <double>_NEVER or not isfinite(k):
        return _NEVER
    return <int64_t>k


cdef void switching_init(Switching* sw, int kind, Py_ssize_t m, double ell, double p_on, double p_off,
                         unsigned char* state, int64_t* next_flip, const unsigned char* replay) noexcept nogil:
    sw.kind = kind
    sw.m = m
    sw.ell = ell
    sw.log_stay_off = log1p(-p_on)     # -inf when p_on = 1: geometric() then returns 1
    sw.log_stay_on = log1p(-p_off)
    sw.state = state
    sw.next_flip = next_flip
    sw.replay = replay


cdef void switching_start(Switching* sw, bitgen_t* rng) noexcept nogil:
    cdef Py_ssize_t mu
    if sw.kind != SELECT_PERSISTENT:
        return
    for mu in range(sw.m):
        sw.state[mu] = random_standard_uniform(rng) < sw.ell
        sw.next_flip[mu] = geometric(rng, sw.log_stay_on if sw.state[mu] else sw.log_stay_off)


cdef Py_ssize_t switching_select(Switching* sw, int64_t step, bitgen_t* rng, Py_ssize_t* active) noexcept nogil:
    cdef Py_ssize_t mu, n = 0
    cdef const unsigned char* row
    if sw.kind == SELECT_FULL:
        for mu in range(sw.m):
            active[mu] = mu
        return sw.m
    if sw.kind == SELECT_BERNOULLI:
        for mu in range(sw.m):
            if random_standard_uniform(rng) < sw.ell:
                active[n] = mu
                n += 1
        return n
    if sw.kind == SELECT_PERSISTENT:
        for mu in range(sw.m):
            if sw.next_flip[mu] == step:
                sw.state[mu] = 1 - sw.state[mu]
                sw.next_flip[mu] = step + geometric(rng, sw.log_stay_on if sw.state[mu] else sw.log_stay_off)
            if sw.state[mu]:
                active[n] = mu
                n += 1
        return n
    row = sw.replay + step * sw.m
    for mu in range(sw.m):
        if row[mu]:
            active[n] = mu
            n += 1
    return n


def transition_probabilities(double ell, double tau, double eta):
    """``(P(0->1), P(1->0))`` per step of the persistent chain (eq 7)."""
    return eta / tau, (1.0 - ell) * eta / (ell * tau)


@cython.boundscheck(False)
def sample(str kind, Py_ssize_t m, int64_t n_steps, double ell, double tau, double eta, bitgenerator):
    """Python twin: the ``(n_steps, m)`` 0/1 selection matrix of one process, drawn from
    ``bitgenerator`` (a ``numpy.random.BitGenerator``) exactly as the simulation kernels draw it.

    ``kind`` is ``"bernoulli"`` or ``"persistent"`` (``tau`` and ``eta`` only matter for the latter).
    """
    cdef Switching sw
    cdef int code
    p_on, p_off = transition_probabilities(ell, tau, eta)
    if kind == "bernoulli":
        code = SELECT_BERNOULLI
    elif kind == "persistent":
        code = SELECT_PERSISTENT
        if not (0.0 <= p_on <= 1.0 and 0.0 <= p_off <= 1.0):
            raise ValueError(f"persistent chain: transition probabilities ({p_on}, {p_off}) outside [0, 1]")
    else:
        raise ValueError(f"kind: {kind!r} is not 'bernoulli' or 'persistent'")
    out = np.zeros((n_steps, m), dtype=np.uint8)
    state = np.zeros(m, dtype=np.uint8)
    next_flip = np.zeros(m, dtype=np.int64)
    active = np.zeros(m, dtype=np.intp)
    cdef unsigned char[:, ::1] o = out
    cdef unsigned char[::1] st = state
    cdef int64_t[::1] nf = next_flip
    cdef Py_ssize_t[::1] act = active
    switching_init(&sw, code, m, ell, p_on, p_off, &st[0] if m else NULL, &nf[0] if m else NULL, NULL)
    capsule = bitgenerator.capsule
    cdef bitgen_t* rng = <bitgen_t*> PyCapsule_GetPointer(capsule, "BitGenerator")
    cdef int64_t k
    cdef Py_ssize_t i, n
    with bitgenerator.lock, nogil:
        switching_start(&sw, rng)
        for k in range(n_steps):
            n = switching_select(&sw, k, rng, &act[0])
            for i in range(n):
                o[k, act[i]] = 1
    return out
