"""Loss families as structs of ``nogil`` function pointers, on the student's field and the label.

Usable from Cython via ``cimport prcy.kernels.losses``. Layers, as in the other kernels:

(a) single-sample functions ``double f(double h, double y, const double* theta) noexcept nogil``:
    ``h`` the student's field ``w.x/sqrt(N)``, ``y`` the sample's label, ``theta`` the loss's
    parameters (``Loss.theta``);
(b) the struct ``Loss`` that groups ``v``, ``dv = dv/dh``, ``d2v = d^2v/dh^2`` and ``err`` (the test
    error of one sample predicted with field ``h`` when its label is ``y``), with its parameters;
(c) array loops live in ``prcy.kernels.dynamics`` and ``prcy.kernels.dmft``, which call a ``Loss``
    through its pointers as ``loss.dv(h, y, loss.theta)``; a gradient step takes ``v`` and ``dv`` of the
    built-in logistic losses in one call (``fused_value_derivative``: one exp for both, the same bits);
(d) Python twins here (``value``, ``derivative``, ``second_derivative``, ``test_error``) for tests.

Built-in losses (``capsule(name, **parameters)``; ``a = sqrt(h^2 + eps)`` is the smoothed modulus,
``eps = theta[0]`` (``smoothing``), ``K = theta[1]`` (``onset``)):

- ``"phase-retrieval"``: ``v = (h^2 - y^2)^2 / 4`` (Mignacco et al. 2021, eq 4, labels ``y = |h0|``),
  ``err = (y - |h|)^2``;
- ``"linear-regression"``: ``v = (h - y)^2 / 2``, ``err = (y - h)^2``;
- ``"absolute"``: ``v = (y - a)^2`` (Dmitriev 2021, eq 2.6), ``err = (y - |h|)^2``;
- ``"door-square"``: ``v = (y - a + K)^2`` (eq 2.7), labels ``y = +-1``;
- ``"door-logistic"``: ``v = log(1 + exp(-y (a - K)))`` (eq 2.8), evaluated without overflow;
  both door losses have ``err = 1`` when ``sign(|h| - K) != y``, else 0.

Margin losses of a classifier ``sign(phi(h))`` on labels ``y = +-1`` (Mignacco et al. 2020, eqs 5-7):
``v = l(y phi(h))`` with the activation ``phi(h) = h`` (``"logistic"``, ``"square"``, ``"hinge"``) or
``phi(h) = h^2 - L^2`` (``"quadratic-logistic"``, ``"quadratic-square"``, ``"quadratic-hinge"``, the
door of the three-cluster mixture; ``L = theta[0]``, ``onset``) and the margin function
``l(u) = log(1 + e^-u)`` (evaluated without overflow), ``(1 - u)^2 / 2`` or ``max(0, 1 - u)``; the hinge
has ``l'' = 0`` (its kink at ``u = 1`` is a point where ``d2v`` is taken as 0). ``err`` is eq 23's
``(y - sign(phi(h)))^2 / 4``: 0 or 1, and 1/4 when ``phi(h) = 0``. Their ``theta`` is
``(L, activation, margin function, 0)``: ``theta[1]`` 0 linear / 1 quadratic, ``theta[2]`` 0 logistic /
1 square / 2 hinge, set by ``capsule``.

ABI (version ``LOSS_ABI_VERSION`` = 2). A loss of your own: write the four functions in Cython, fill
a ``Loss`` with ``loss_init`` (it sets ``magic``, ``version`` and ``size``) and your parameters in
``theta``, and hand its address to prcy in a ``PyCapsule`` named ``"prcy.Loss.v2"``; the struct must
outlive every run that uses it. ``loss_from_capsule`` checks the capsule's name, then ``magic``,
``version`` and ``size``, and that no function pointer is NULL: a capsule of the first ABI
(``"prcy.Loss"``, functions of ``(h, h0)``) is refused with a message saying so. Nothing can check
the functions themselves: they must be pure, thread-safe, ``noexcept nogil``, read nothing but their
arguments and ``theta``, and return a finite number for finite arguments.

Committee losses (a student with ``K`` hidden units, output ``phi((1/K) sum_k g(h_k))``, Dmitriev
2021 eq 2.3): a ``CommitteeLoss`` holds ``v(h, K, y, theta, dv)``, which returns ``Lambda(y, h[K])``
and, when ``dv`` is not NULL, writes ``dLambda/dh_k`` into ``dv[0..K-1]``, and ``err(h, K, y, theta)``.
Built in (``committee_capsule(name, **parameters)``, the names and parameters of the single-unit
losses they extend; at ``K = 1`` each is the single-unit loss of the same name):

- ``"phase-retrieval"``: ``g(h) = h^2``, ``yhat = (1/K) sum_k h_k^2``, ``Lambda = (yhat - y^2)^2 / 4``
  (the single unit's scale), ``err = (|y| - yhat^(1/2))^2`` (the single unit's label error with
  ``yhat^(1/2)`` in place of ``|h|``);
- ``"absolute"``, ``"door-square"``, ``"door-logistic"``: ``g(h) = a(h) = sqrt(h^2 + eps)``, the
  single-unit loss of ``a = (1/K) sum_k a(h_k)`` in place of ``a(h)``; ``err`` with the unsmoothed
  ``(1/K) sum_k |h_k|`` in place of ``|h|``.

ABI (version ``COMMITTEE_LOSS_ABI_VERSION`` = 1): fill a ``CommitteeLoss`` with
``committee_loss_init`` and hand its address in a ``PyCapsule`` named ``"prcy.CommitteeLoss.v1"``;
``committee_loss_from_capsule`` checks the name, ``magic``, ``version``, ``size`` and the pointers,
and the functions owe what a ``Loss``'s owe.
"""
from cpython.pycapsule cimport PyCapsule_New, PyCapsule_GetPointer, PyCapsule_IsValid
from libc.math cimport sqrt, fabs
from libc.stdlib cimport malloc, free
import numpy as np

CAPSULE_NAME = "prcy.Loss.v2"
cdef const char* _CAPSULE_NAME = b"prcy.Loss.v2"   # static storage: a capsule keeps the pointer
cdef const char* _CAPSULE_NAME_V1 = b"prcy.Loss"
COMMITTEE_CAPSULE_NAME = "prcy.CommitteeLoss.v1"
cdef const char* _COMMITTEE_CAPSULE_NAME = b"prcy.CommitteeLoss.v1"


cdef double phase_retrieval_v(double h, double y, const double* theta) noexcept nogil:
    cdef double d = h * h - y * y
    return 0.25 * d * d

cdef double phase_retrieval_dv(double h, double y, const double* theta) noexcept nogil:
    return (h * h - y * y) * h

cdef double phase_retrieval_d2v(double h, double y, const double* theta) noexcept nogil:
    return 3.0 * h * h - y * y

cdef double phase_retrieval_err(double h, double y, const double* theta) noexcept nogil:
    cdef double d = (y if y >= 0 else -y) - (h if h >= 0 else -h)
    return d * d


cdef double linear_v(double h, double y, const double* theta) noexcept nogil:
    return 0.5 * (h - y) * (h - y)

cdef double linear_dv(double h, double y, const double* theta) noexcept nogil:
    return h - y

cdef double linear_d2v(double h, double y, const double* theta) noexcept nogil:
    return 1.0

cdef double linear_err(double h, double y, const double* theta) noexcept nogil:
    return (y - h) * (y - h)


# absolute loss: v = (y - a)^2, a = sqrt(h^2 + eps); da/dh = h/a, d2a/dh2 = eps/a^3
cdef double absolute_v(double h, double y, const double* theta) noexcept nogil:
    cdef double r = y - sqrt(h * h + theta[0])
    return r * r

cdef double absolute_dv(double h, double y, const double* theta) noexcept nogil:
    cdef double a = sqrt(h * h + theta[0])
    return -2.0 * (y - a) * h / a

cdef double absolute_d2v(double h, double y, const double* theta) noexcept nogil:
    cdef double a = sqrt(h * h + theta[0])
    return 2.0 * h * h / (a * a) - 2.0 * (y - a) * theta[0] / (a * a * a)


# symmetric door, square loss: v = r^2, r = y - a + K
cdef double door_square_v(double h, double y, const double* theta) noexcept nogil:
    cdef double r = y - sqrt(h * h + theta[0]) + theta[1]
    return r * r

cdef double door_square_dv(double h, double y, const double* theta) noexcept nogil:
    cdef double a = sqrt(h * h + theta[0])
    return -2.0 * (y - a + theta[1]) * h / a

cdef double door_square_d2v(double h, double y, const double* theta) noexcept nogil:
    cdef double a = sqrt(h * h + theta[0])
    return 2.0 * h * h / (a * a) - 2.0 * (y - a + theta[1]) * theta[0] / (a * a * a)


# the logistic function's two pieces, shared by the door's and the margins' logistic losses, from one
# e = e^-|x| (prcy_exp_neg, below): the sigmoid as 1/(1 + e) or e/(1 + e) by the sign of x (a select,
# not a branch: a field's sign is a coin flip early in training, and a mispredicted branch costs more
# than the exp), the softplus as max(-z, 0) + log1p(e), with log1p(e) = log(p) + (e - (p - 1)) / p,
# p = 1 + e rounded: the correction restores what the rounding of p lost (within an ulp of log1p, at half
# the cost of glibc's log1p). The kernels are compiled with -fassociative-math, which would fold
# e - (p - 1) to 0: the volatile p and p - 1 keep them as written. prcy_logistic_pair gives both from one
# exp, equal bit for bit to the two apart (the step's one-call value and derivative,
# fused_value_derivative). prcy_logistic_bounds gives the same sigmoid and, instead of the softplus,
# bounds on it without a log: e - e^2/2 <= log1p(e) <= e - e^2/2 + e^3/3 for 0 <= e <= 1 (the
# alternating series), a bracket of width e^3/3.
#
# prcy_exp_neg(x) = e^x for x <= 0 in straight-line arithmetic, so that a loop over a block of samples
# (fused_derivative_bounds) runs as vector instructions, which a call to the C library's exp prevents:
# x = k ln2 + r with k = rint(x / ln2), |r| <= ln2 / 2, r from two fused multiply-adds with ln2 split in
# two doubles (each rounded once: the reduction's error is below 2^-60 |r|, and -fassociative-math does
# not reorder an fma); e^r by its Taylor series to r^13 (remainder below 5e-18 of e^r); 2^k as two
# normal powers of two built from k's bits, so that results down to the subnormals are rounded once.
# Within an ulp or two of e^x (tests/test_losses.py against long double); x below -746 gives 0 and a NaN
# stays NaN. The same function serves every evaluation of these losses, so a sample's step, loss
# and DMFT share its bits.
cdef extern from *:
    """
    #include <math.h>
    #include <stdint.h>
    #include <string.h>
    static inline double prcy_log1p_rounded(double e) {
        volatile double p = 1.0 + e;
        volatile double kept = p - 1.0;
        double q = p;
        return log(q) + (e - kept) / q;
    }
    static inline double prcy_positive_part(double x) {   /* max(x, 0), 0 for NaN as fmax: a select */
        return x > 0.0 ? x : 0.0;
    }
    static inline double prcy_sigmoid_of(double x, double e) {   /* e = e^-|x| */
        return (x >= 0.0 ? 1.0 : e) / (1.0 + e);
    }
    static inline double prcy_exp_neg(double x) {
        const double inv_ln2 = 0x1.71547652b82fep0;
        const double ln2_hi = 0x1.62e42fefa39efp-1, ln2_lo = 0x1.abc9e3b39803fp-56;
        double xc = x < -746.0 ? -746.0 : x, k, r, p, t;
        uint64_t bits, k1, k2;
        k = rint(xc * inv_ln2);
        r = fma(-k, ln2_lo, fma(-k, ln2_hi, xc));
        p = 1.0 / 6227020800.0;
        p = fma(p, r, 1.0 / 479001600.0);
        p = fma(p, r, 1.0 / 39916800.0);
        p = fma(p, r, 1.0 / 3628800.0);
        p = fma(p, r, 1.0 / 362880.0);
        p = fma(p, r, 1.0 / 40320.0);
        p = fma(p, r, 1.0 / 5040.0);
        p = fma(p, r, 1.0 / 720.0);
        p = fma(p, r, 1.0 / 120.0);
        p = fma(p, r, 1.0 / 24.0);
        p = fma(p, r, 1.0 / 6.0);
        p = fma(p, r, 0.5);
        p = fma(p, r, 1.0);
        p = fma(p, r, 1.0);
        t = k + 0x1.8p52;                      /* k (-1077 <= k <= 0) in the low bits of t's mantissa */
        memcpy(&bits, &t, sizeof bits);
        bits -= 0x4338000000000000ULL;         /* k as a two's-complement integer */
        k1 = (uint64_t)((int64_t)bits >> 1);
        k2 = bits - k1;
        k1 = (k1 + 1023) << 52;                /* 2^(k / 2) and 2^(k - k / 2): both normal */
        k2 = (k2 + 1023) << 52;
        memcpy(&t, &k1, sizeof t);
        p *= t;
        memcpy(&t, &k2, sizeof t);
        return p * t;
    }
    static inline double prcy_sigmoid(double x) {
        return prcy_sigmoid_of(x, prcy_exp_neg(-fabs(x)));
    }
    static inline double prcy_logistic_pair(double z, double* sigmoid_neg) {
        double e = prcy_exp_neg(-fabs(z));
        *sigmoid_neg = prcy_sigmoid_of(-z, e);
        return prcy_positive_part(-z) + prcy_log1p_rounded(e);
    }
    static inline double prcy_logistic_bounds(double z, double* sigmoid_neg, double* lower) {
        double e = prcy_exp_neg(-fabs(z));
        double c = prcy_positive_part(-z);
        *sigmoid_neg = prcy_sigmoid_of(-z, e);
        *lower = c + e * (1.0 - 0.5 * e);
        return c + e * (1.0 - e * (0.5 - e / 3.0));
    }
    """
    double prcy_log1p_rounded(double e) noexcept nogil
    double prcy_exp_neg(double x) noexcept nogil
    double prcy_positive_part(double x) noexcept nogil
    double prcy_sigmoid(double x) noexcept nogil
    double prcy_logistic_pair(double z, double* sigmoid_neg) noexcept nogil
    double prcy_logistic_bounds(double z, double* sigmoid_neg, double* lower) noexcept nogil

cdef inline double _sigmoid(double x) noexcept nogil:
    """``1 / (1 + e^-x)``"""
    return prcy_sigmoid(x)

cdef inline double _softplus_neg(double z) noexcept nogil:
    """``log(1 + e^-z)`` without overflow: ``max(-z, 0) + log1p(e^-|z|)``"""
    return prcy_positive_part(-z) + prcy_log1p_rounded(prcy_exp_neg(-fabs(z)))


# symmetric door, logistic loss: v = softplus(-z), z = y (a - K); sigma(-z) = 1 / (1 + e^z)
cdef double door_logistic_v(double h, double y, const double* theta) noexcept nogil:
    cdef double z = y * (sqrt(h * h + theta[0]) - theta[1])
    return _softplus_neg(z)

cdef double door_logistic_dv(double h, double y, const double* theta) noexcept nogil:
    cdef double a = sqrt(h * h + theta[0])
    return -y * _sigmoid(-y * (a - theta[1])) * h / a

cdef double _door_logistic_vdv(double h, double y, const double* theta, double* dv) noexcept nogil:
    """``door_logistic_v`` and ``door_logistic_dv`` from one exp"""
    cdef double a = sqrt(h * h + theta[0])
    cdef double sm
    cdef double v = prcy_logistic_pair(y * (a - theta[1]), &sm)
    dv[0] = -y * sm * h / a
    return v

cdef void _door_logistic_bounds(const double* h, const double* y, Py_ssize_t n, const double* theta,
                               double* dv, double* lower, double* upper) noexcept nogil:
    """``door_logistic_dv`` of ``n`` samples, and bounds on ``door_logistic_v`` (one loop of inlined
    arithmetic: vector instructions)"""
    cdef double a, sm, lo
    cdef double smoothing = theta[0], onset = theta[1]      # not re-read after each store
    cdef Py_ssize_t i
    for i in range(n):
        a = sqrt(h[i] * h[i] + smoothing)
        upper[i] = prcy_logistic_bounds(y[i] * (a - onset), &sm, &lo)
        lower[i] = lo
        dv[i] = -y[i] * sm * h[i] / a

cdef double door_logistic_d2v(double h, double y, const double* theta) noexcept nogil:
    cdef double a = sqrt(h * h + theta[0])
    cdef double z = y * (a - theta[1])
    cdef double sm = _sigmoid(-z)
    return y * y * sm * (1.0 - sm) * h * h / (a * a) - y * sm * theta[0] / (a * a * a)

cdef double door_err(double h, double y, const double* theta) noexcept nogil:
    cdef double predicted = 1.0 if fabs(h) > theta[1] else -1.0
    return 0.0 if predicted == y else 1.0


# margin losses v = l(u), u = y phi(h): theta = (L, activation, margin function, 0)
cdef enum:
    MARGIN_LOGISTIC = 0
    MARGIN_SQUARE = 1
    MARGIN_HINGE = 2

cdef inline double _phi(double h, const double* theta) noexcept nogil:
    return h * h - theta[0] * theta[0] if theta[1] != 0.0 else h

cdef inline double _l1(double u, const double* theta) noexcept nogil:
    """l'(u)"""
    if theta[2] == MARGIN_LOGISTIC:
        return -_sigmoid(-u)
    if theta[2] == MARGIN_SQUARE:
        return u - 1.0
    return -1.0 if u < 1.0 else 0.0

cdef double margin_v(double h, double y, const double* theta) noexcept nogil:
    cdef double u = y * _phi(h, theta)
    if theta[2] == MARGIN_LOGISTIC:
        return _softplus_neg(u)
    if theta[2] == MARGIN_SQUARE:
        return 0.5 * (1.0 - u) * (1.0 - u)
    return 1.0 - u if u < 1.0 else 0.0

cdef double margin_dv(double h, double y, const double* theta) noexcept nogil:
    cdef double l1 = y * _l1(y * _phi(h, theta), theta)
    return 2.0 * h * l1 if theta[1] != 0.0 else l1

cdef double _margin_logistic_vdv(double h, double y, const double* theta, double* dv) noexcept nogil:
    """``margin_v`` and ``margin_dv`` of a logistic margin function from one exp"""
    cdef double sm
    cdef double v = prcy_logistic_pair(y * _phi(h, theta), &sm)
    cdef double l1 = y * -sm
    dv[0] = 2.0 * h * l1 if theta[1] != 0.0 else l1
    return v

cdef void _margin_logistic_bounds(const double* h, const double* y, Py_ssize_t n, const double* theta,
                                 double* dv, double* lower, double* upper) noexcept nogil:
    """``margin_dv`` of a logistic margin function for ``n`` samples, and bounds on ``margin_v`` (one loop
    of inlined arithmetic: vector instructions)"""
    cdef double sm, l1, lo
    cdef double th[2]                                      # not re-read after each store
    cdef Py_ssize_t i
    th[0] = theta[0]
    th[1] = theta[1]
    for i in range(n):
        upper[i] = prcy_logistic_bounds(y[i] * _phi(h[i], th), &sm, &lo)
        lower[i] = lo
        l1 = y[i] * -sm
        dv[i] = 2.0 * h[i] * l1 if th[1] != 0.0 else l1

cdef double margin_d2v(double h, double y, const double* theta) noexcept nogil:
    cdef double u = y * _phi(h, theta), l2, sm
    if theta[2] == MARGIN_LOGISTIC:
        sm = _sigmoid(-u)
        l2 = sm * (1.0 - sm)
    elif theta[2] == MARGIN_SQUARE:
        l2 = 1.0
    else:
        l2 = 0.0
    if theta[1] == 0.0:
        return y * y * l2
    return 4.0 * h * h * y * y * l2 + 2.0 * y * _l1(u, theta)

cdef double margin_err(double h, double y, const double* theta) noexcept nogil:
    cdef double f = _phi(h, theta)
    cdef double r = y - (1.0 if f > 0 else (-1.0 if f < 0 else 0.0))
    return 0.25 * r * r


# committee losses: the fields h[0..k-1] of one sample
cdef inline double _mean_square(const double* h, Py_ssize_t k) noexcept nogil:
    """``yhat = (1/k) sum_j h_j^2``, the quadratic network's output"""
    cdef double s = 0.0
    cdef Py_ssize_t j
    for j in range(k):
        s += h[j] * h[j]
    return s / k

cdef double committee_phase_retrieval_v(const double* h, Py_ssize_t k, double y, const double* theta,
                                        double* dv) noexcept nogil:
    cdef double r = _mean_square(h, k) - y * y
    cdef Py_ssize_t j
    if dv != NULL:
        for j in range(k):
            dv[j] = r * h[j] / k
    return 0.25 * r * r

cdef double committee_phase_retrieval_err(const double* h, Py_ssize_t k, double y, const double* theta) noexcept nogil:
    """The label error of the single unit's ``phase_retrieval_err``, ``(|y| - yhat^(1/2))^2``: the network's
    output ``yhat = (1/K) sum_k h_k^2`` stands for ``y^2``"""
    cdef double r = fabs(y) - sqrt(_mean_square(h, k))
    return r * r

cdef inline double _mean_modulus(const double* h, Py_ssize_t k, double eps) noexcept nogil:
    """``(1/k) sum_j sqrt(h_j^2 + eps)``"""
    cdef double a = 0.0
    cdef Py_ssize_t j
    for j in range(k):
        a += sqrt(h[j] * h[j] + eps)
    return a / k

cdef inline void _modulus_gradient(const double* h, Py_ssize_t k, double eps, double outer,
                                   double* dv) noexcept nogil:
    """``dv_j = outer * (h_j / a(h_j)) / k``: the chain rule through the mean smoothed modulus."""
    cdef Py_ssize_t j
    if dv != NULL:
        for j in range(k):
            dv[j] = outer * (h[j] / sqrt(h[j] * h[j] + eps)) / k

cdef double committee_absolute_v(const double* h, Py_ssize_t k, double y, const double* theta,
                                 double* dv) noexcept nogil:
    cdef double r = y - _mean_modulus(h, k, theta[0])
    _modulus_gradient(h, k, theta[0], -2.0 * r, dv)
    return r * r

cdef double committee_door_square_v(const double* h, Py_ssize_t k, double y, const double* theta,
                                    double* dv) noexcept nogil:
    cdef double r = y - _mean_modulus(h, k, theta[0]) + theta[1]
    _modulus_gradient(h, k, theta[0], -2.0 * r, dv)
    return r * r

cdef double committee_door_logistic_v(const double* h, Py_ssize_t k, double y, const double* theta,
                                      double* dv) noexcept nogil:
    cdef double z = y * (_mean_modulus(h, k, theta[0]) - theta[1])
    _modulus_gradient(h, k, theta[0], -y * _sigmoid(-z), dv)
    return _softplus_neg(z)

cdef inline double _mean_abs(const double* h, Py_ssize_t k) noexcept nogil:
    cdef double a = 0.0
    cdef Py_ssize_t j
    for j in range(k):
        a += fabs(h[j])
    return a / k

cdef double committee_modulus_err(const double* h, Py_ssize_t k, double y, const double* theta) noexcept nogil:
    cdef double r = fabs(y) - _mean_abs(h, k)
    return r * r

cdef double committee_door_err(const double* h, Py_ssize_t k, double y, const double* theta) noexcept nogil:
    cdef double predicted = 1.0 if _mean_abs(h, k) > theta[1] else -1.0
    return 0.0 if predicted == y else 1.0


cdef void committee_loss_init(CommitteeLoss* loss, committee_fn v, committee_err_fn err) noexcept nogil:
    """Fill ``loss``'s header (magic, version, size) and functions; ``theta`` set to 0."""
    cdef Py_ssize_t i
    loss.magic = COMMITTEE_LOSS_MAGIC
    loss.version = COMMITTEE_LOSS_ABI_VERSION
    loss.size = sizeof(CommitteeLoss)
    loss.v = v
    loss.err = err
    for i in range(LOSS_N_PARAMS):
        loss.theta[i] = 0.0


cdef loss_vdv_fn fused_value_derivative(const Loss* loss) noexcept nogil:
    """``v`` and ``dv`` in one call for the built-in losses whose two share their work (the logistic
    ones: one exp), equal bit for bit to ``loss.v`` and ``loss.dv``; NULL for every other loss, which is
    called as ``v`` and ``dv``."""
    if loss.v == door_logistic_v and loss.dv == door_logistic_dv:
        return _door_logistic_vdv
    if loss.v == margin_v and loss.dv == margin_dv and loss.theta[2] == MARGIN_LOGISTIC:
        return _margin_logistic_vdv
    return NULL


cdef loss_block_dv_bounds_fn fused_derivative_bounds(const Loss* loss) noexcept nogil:
    """For the losses of ``fused_value_derivative``, over a block of samples: ``dv`` (bit for bit
    ``loss.dv``) and, for ``v``, a lower and an upper bound that differ by ``e^3/3`` with
    ``e = e^-|margin|``, without a log, for a caller that compares a sum of ``v`` with a threshold;
    NULL for every other loss."""
    if loss.v == door_logistic_v and loss.dv == door_logistic_dv:
        return _door_logistic_bounds
    if loss.v == margin_v and loss.dv == margin_dv and loss.theta[2] == MARGIN_LOGISTIC:
        return _margin_logistic_bounds
    return NULL


cdef void loss_init(Loss* loss, loss_fn v, loss_fn dv, loss_fn d2v, loss_fn err) noexcept nogil:
    """Fill ``loss``'s header (magic, version, size) and functions; ``theta`` set to 0."""
    cdef Py_ssize_t i
    loss.magic = LOSS_MAGIC
    loss.version = LOSS_ABI_VERSION
    loss.size = sizeof(Loss)
    loss.v = v
    loss.dv = dv
    loss.d2v = d2v
    loss.err = err
    for i in range(LOSS_N_PARAMS):
        loss.theta[i] = 0.0


# the parameters of each built-in loss, in the order of theta
PARAMETERS = {
    "phase-retrieval": (),
    "linear-regression": (),
    "absolute": ("smoothing",),
    "door-square": ("smoothing", "onset"),
    "door-logistic": ("smoothing", "onset"),
    "logistic": (),
    "square": (),
    "hinge": (),
    "quadratic-logistic": ("onset",),
    "quadratic-square": ("onset",),
    "quadratic-hinge": ("onset",),
}
# the margin losses: name -> (activation, margin function), theta[1] and theta[2]
MARGIN = {"logistic": (0, MARGIN_LOGISTIC), "square": (0, MARGIN_SQUARE), "hinge": (0, MARGIN_HINGE),
          "quadratic-logistic": (1, MARGIN_LOGISTIC), "quadratic-square": (1, MARGIN_SQUARE),
          "quadratic-hinge": (1, MARGIN_HINGE)}
NAMES = tuple(PARAMETERS)


cdef void _free_loss(object cap) noexcept:
    free(PyCapsule_GetPointer(cap, _CAPSULE_NAME))


def _check_parameters(name, parameters, names):
    """The parameters of the built-in loss ``name`` (one of ``names``) in the order of theta."""
    if name not in names:
        raise ValueError(f"loss: unknown name {name!r}; allowed: {', '.join(names)}")
    wanted = PARAMETERS[name]
    if set(parameters) != set(wanted):
        raise ValueError(f"loss {name!r}: parameters {sorted(parameters)} given; needed: {list(wanted) or 'none'}")
    for key in wanted:
        value = parameters[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < float(value) < float("inf")):
            raise ValueError(f"{key}: {value!r} is not allowed; allowed: a finite number > 0")
    return [float(parameters[key]) for key in wanted]


def capsule(name, **parameters):
    """A new ``PyCapsule`` (name ``"prcy.Loss.v2"``) holding the built-in loss ``name`` with its
    ``parameters`` (``PARAMETERS[name]``, each a finite number: ``smoothing > 0``, ``onset > 0``).
    The capsule owns its ``Loss`` and frees it when it is collected."""
    theta = _check_parameters(name, parameters, NAMES)
    cdef Loss* loss = <Loss*>malloc(sizeof(Loss))
    if loss == NULL:
        raise MemoryError("loss: could not allocate a Loss")
    if name == "phase-retrieval":
        loss_init(loss, phase_retrieval_v, phase_retrieval_dv, phase_retrieval_d2v, phase_retrieval_err)
    elif name == "linear-regression":
        loss_init(loss, linear_v, linear_dv, linear_d2v, linear_err)
    elif name == "absolute":
        loss_init(loss, absolute_v, absolute_dv, absolute_d2v, phase_retrieval_err)
    elif name == "door-square":
        loss_init(loss, door_square_v, door_square_dv, door_square_d2v, door_err)
    elif name == "door-logistic":
        loss_init(loss, door_logistic_v, door_logistic_dv, door_logistic_d2v, door_err)
    else:
        loss_init(loss, margin_v, margin_dv, margin_d2v, margin_err)
        loss.theta[1], loss.theta[2] = MARGIN[name]
    for i, value in enumerate(theta):
        loss.theta[i] = value
    return PyCapsule_New(<void*>loss, _CAPSULE_NAME, <void (*)(object) noexcept>_free_loss)


COMMITTEE_NAMES = ("phase-retrieval", "absolute", "door-square", "door-logistic")


cdef void _free_committee_loss(object cap) noexcept:
    free(PyCapsule_GetPointer(cap, _COMMITTEE_CAPSULE_NAME))


def committee_capsule(name, **parameters):
    """A new ``PyCapsule`` (name ``"prcy.CommitteeLoss.v1"``) holding the built-in committee loss
    ``name`` (``COMMITTEE_NAMES``) with the parameters of the single-unit loss of that name."""
    theta = _check_parameters(name, parameters, COMMITTEE_NAMES)
    cdef CommitteeLoss* loss = <CommitteeLoss*>malloc(sizeof(CommitteeLoss))
    if loss == NULL:
        raise MemoryError("loss: could not allocate a CommitteeLoss")
    if name == "phase-retrieval":
        committee_loss_init(loss, committee_phase_retrieval_v, committee_phase_retrieval_err)
    elif name == "absolute":
        committee_loss_init(loss, committee_absolute_v, committee_modulus_err)
    elif name == "door-square":
        committee_loss_init(loss, committee_door_square_v, committee_door_err)
    else:
        committee_loss_init(loss, committee_door_logistic_v, committee_door_err)
    for i, value in enumerate(theta):
        loss.theta[i] = value
    return PyCapsule_New(<void*>loss, _COMMITTEE_CAPSULE_NAME, <void (*)(object) noexcept>_free_committee_loss)


def is_committee_capsule(cap):
    """Whether ``cap`` is a PyCapsule named ``"prcy.CommitteeLoss.v1"``."""
    return bool(PyCapsule_IsValid(cap, _COMMITTEE_CAPSULE_NAME))


cdef const CommitteeLoss* committee_loss_from_capsule(object cap) except NULL:
    """The ``CommitteeLoss`` inside ``cap``; raises ``TypeError`` when ``cap`` is not a
    ``"prcy.CommitteeLoss.v1"`` capsule (naming a single-unit loss as such) or its header is not this
    ABI's, and ``ValueError`` when a function pointer is NULL."""
    if PyCapsule_IsValid(cap, _CAPSULE_NAME):
        raise TypeError("loss: a 'prcy.Loss.v2' capsule is a single-unit loss; a student with hidden units needs a "
                        "committee loss: a capsule named 'prcy.CommitteeLoss.v1' (see prcy.kernels.losses)")
    if not PyCapsule_IsValid(cap, _COMMITTEE_CAPSULE_NAME):
        raise TypeError(f"loss: expected a PyCapsule named 'prcy.CommitteeLoss.v1', got {type(cap).__name__}")
    cdef const CommitteeLoss* loss = <const CommitteeLoss*> PyCapsule_GetPointer(cap, _COMMITTEE_CAPSULE_NAME)
    if (loss.magic != COMMITTEE_LOSS_MAGIC or loss.version != COMMITTEE_LOSS_ABI_VERSION
            or loss.size != sizeof(CommitteeLoss)):
        raise TypeError(f"loss: the capsule's CommitteeLoss header (magic {loss.magic:#x}, version {loss.version}, "
                        f"size {loss.size}) is not ABI {COMMITTEE_LOSS_ABI_VERSION}'s (magic "
                        f"{COMMITTEE_LOSS_MAGIC:#x}, size {sizeof(CommitteeLoss)}): fill it with committee_loss_init")
    if loss.v == NULL or loss.err == NULL:
        raise ValueError("loss: the capsule's CommitteeLoss has a NULL function pointer")
    return loss


def check_committee_capsule(cap):
    """Raise as ``committee_loss_from_capsule`` does when ``cap`` is not a usable committee loss capsule."""
    committee_loss_from_capsule(cap)


def committee_evaluate(cap, h, y):
    """``(Lambda, dLambda/dh, err)`` of the committee loss in ``cap`` (or the built-in committee loss
    without parameters that ``cap`` names) for fields ``h`` (``m x K``) and labels ``y`` (``m``): arrays
    of shapes ``m``, ``m x K``, ``m`` (the Python twin)."""
    if isinstance(cap, str):
        cap = committee_capsule(cap)
    cdef const CommitteeLoss* loss = committee_loss_from_capsule(cap)
    H = np.ascontiguousarray(np.atleast_2d(h), dtype=np.float64)
    Y = np.ascontiguousarray(y, dtype=np.float64).reshape(-1)
    if Y.shape[0] != H.shape[0] or H.shape[1] < 1:
        raise ValueError(f"committee_evaluate: h has shape {H.shape}, y {Y.shape}; needed (m, K >= 1) and (m,)")
    value, err, grad = np.empty(H.shape[0]), np.empty(H.shape[0]), np.empty_like(H)
    cdef const double[:, ::1] hv = H
    cdef const double[::1] yv = Y
    cdef double[::1] vv = value, ev = err
    cdef double[:, ::1] gv = grad
    cdef Py_ssize_t i, k = H.shape[1]
    with nogil:
        for i in range(hv.shape[0]):
            vv[i] = loss.v(&hv[i, 0], k, yv[i], loss.theta, &gv[i, 0])
            ev[i] = loss.err(&hv[i, 0], k, yv[i], loss.theta)
    return value, grad, err


cdef const Loss* loss_from_capsule(object cap) except NULL:
    """The ``Loss`` inside ``cap``; raises ``TypeError`` when ``cap`` is not a ``"prcy.Loss.v2"``
    capsule (naming a first-ABI capsule as such) or its header is not that of this ABI, and
    ``ValueError`` when a function pointer is NULL."""
    if PyCapsule_IsValid(cap, _CAPSULE_NAME_V1):
        raise TypeError("loss: a capsule named 'prcy.Loss' has the first loss ABI (functions of (h, h0)); "
                        "prcy needs ABI 2: functions of (h, y, theta), a Loss filled by loss_init, a capsule "
                        "named 'prcy.Loss.v2' (see prcy.kernels.losses)")
    if not PyCapsule_IsValid(cap, _CAPSULE_NAME):
        raise TypeError(f"loss: expected a PyCapsule named 'prcy.Loss.v2', got {type(cap).__name__}")
    cdef const Loss* loss = <const Loss*> PyCapsule_GetPointer(cap, _CAPSULE_NAME)
    if loss.magic != LOSS_MAGIC or loss.version != LOSS_ABI_VERSION or loss.size != sizeof(Loss):
        raise TypeError(f"loss: the capsule's Loss header (magic {loss.magic:#x}, version {loss.version}, size "
                        f"{loss.size}) is not ABI {LOSS_ABI_VERSION}'s (magic {LOSS_MAGIC:#x}, size "
                        f"{sizeof(Loss)}): fill it with loss_init")
    if loss.v == NULL or loss.dv == NULL or loss.d2v == NULL or loss.err == NULL:
        raise ValueError("loss: the capsule's Loss has a NULL function pointer")
    return loss


def check_capsule(cap):
    """Raise as ``loss_from_capsule`` does when ``cap`` is not a usable loss capsule."""
    loss_from_capsule(cap)


def parameters(cap):
    """The ``theta`` of the loss in ``cap``."""
    cdef const Loss* loss = loss_from_capsule(cap)
    return tuple(loss.theta[i] for i in range(LOSS_N_PARAMS))


cdef enum LossPart:      # which function of a Loss a Python twin evaluates
    PART_V
    PART_DV
    PART_D2V
    PART_ERR


def _broadcast(h, y):
    """The shape of ``h`` and ``y`` broadcast together, and both flattened (contiguous float64)."""
    hb, yb = np.broadcast_arrays(np.asarray(h, dtype=np.float64), np.asarray(y, dtype=np.float64))
    return hb.shape, np.ascontiguousarray(hb).reshape(-1), np.ascontiguousarray(yb).reshape(-1)


cdef _apply(object cap, LossPart part, h, y):
    if isinstance(cap, str):
        cap = capsule(cap)
    cdef const Loss* loss = loss_from_capsule(cap)
    cdef loss_fn f
    if part == PART_V:
        f = loss.v
    elif part == PART_DV:
        f = loss.dv
    elif part == PART_D2V:
        f = loss.d2v
    else:
        f = loss.err
    shape, flat_h, flat_y = _broadcast(h, y)
    out = np.empty(shape, dtype=np.float64)
    cdef double[::1] o = out.reshape(-1)
    cdef const double[::1] a = flat_h
    cdef const double[::1] b = flat_y
    cdef Py_ssize_t i
    with nogil:
        for i in range(o.shape[0]):
            o[i] = f(a[i], b[i], loss.theta)
    return out


def value(cap, h, y):
    """``v(h; y)`` of the loss in the ``"prcy.Loss.v2"`` capsule ``cap`` (or the built-in loss without
    parameters that ``cap`` names), elementwise."""
    return _apply(cap, PART_V, h, y)

def derivative(cap, h, y):
    """``dv/dh`` elementwise."""
    return _apply(cap, PART_DV, h, y)

def value_and_derivative(cap, h, y, bint bounds=False):
    """``(v, dv/dh)`` elementwise from the one-call form a gradient step uses
    (``fused_value_derivative``); with ``bounds``, ``(lower, upper, dv/dh)`` from its bounded form
    (``fused_derivative_bounds``); ``None`` for a loss without it, which a step calls as ``v`` and ``dv``."""
    if isinstance(cap, str):
        cap = capsule(cap)
    cdef const Loss* loss = loss_from_capsule(cap)
    cdef loss_vdv_fn f = fused_value_derivative(loss)
    cdef loss_block_dv_bounds_fn fb = fused_derivative_bounds(loss)
    if f == NULL:
        return None
    shape, flat_h, flat_y = _broadcast(h, y)
    out = np.empty((3,) + shape, dtype=np.float64)           # lower, v or upper, dv
    cdef double[:, ::1] o = out.reshape(3, -1)
    cdef const double[::1] hv = flat_h, yv = flat_y
    cdef Py_ssize_t i, n = o.shape[1]
    with nogil:
        if bounds and n > 0:
            fb(&hv[0], &yv[0], n, loss.theta, &o[2, 0], &o[0, 0], &o[1, 0])
        elif not bounds:
            for i in range(n):
                o[1, i] = f(hv[i], yv[i], loss.theta, &o[2, i])
    return (out[0], out[1], out[2]) if bounds else (out[1], out[2])

def second_derivative(cap, h, y):
    """``d^2v/dh^2`` elementwise."""
    return _apply(cap, PART_D2V, h, y)

def test_error(cap, h, y):
    """Per-sample test error ``err(h; y)`` elementwise."""
    return _apply(cap, PART_ERR, h, y)
