"""Gradient dynamics of a single-layer model on Gaussian data: GD, multi-pass SGD, persistent SGD and
Langevin, with a plain, momentum, Nesterov or Adam update (``prcy.kernels.optimizers``), on the sphere
or with a ridge term.

Usable from Cython via ``cimport prcy.kernels.dynamics``. Layers:

(a) row kernels: ``field_dot`` (one field ``x.w``), and blocks of eight rows (``_dot8``/``_axpy8``)
    that keep a block in cache between the field and the gradient product, so each active row of
    ``X`` is read from memory once per step;
(b) passes over the data: ``gradient_pass`` (fields, loss derivative and gradient of the given rows
    in one pass; returns the summed loss of those rows, which a step takes as bounds where the loss
    has a bounded form: ``_gradient_pass``), ``loss_pass`` (summed loss or test error);
    the data draw ``generate_data`` (teacher and labels from a ``prcy.kernels.problems.Problem``) and
    the initialization ``init_weights``;
(c) ``trajectory``: one seed from its initial weights to ``n_steps``, with observables on a recording
    grid, success/stop bookkeeping, the optimizer's step and Langevin noise; ``run_seeds``: many seeds in parallel
    (``prange``, one RNG stream per seed, so results do not depend on the number of threads);
    ``committee_pass`` and ``committee_trajectory``: the same for a student with ``K`` hidden units
    (weights ``W``, ``K x n``; a ``prcy.kernels.losses.CommitteeLoss`` on the ``K`` fields of a sample;
    the constraint per unit; observables per unit and of ``Q = W W^T/n``), its rows read once per step by
    eight-row blocks or by ``dgemm`` on row blocks (one BLAS thread per seed: ``run_seeds`` limits BLAS
    with ``threadpoolctl`` while its seeds run);
(d) Python twins: ``run_seeds``, ``run_trajectory`` (one seed on given data, optionally replaying a
    given selection matrix and noise matrix), ``generate`` (the data draw), ``initial_weights``,
    ``weighted_gram_product`` (``X^T diag(c) X v / n`` by ``gradient_pass``: spectral starts).

One step at physical time ``t = k eta`` (eqs 5-9 of Mignacco et al. 2021)::

    h_mu = x_mu.w / sqrt(n)                                  (active rows only)
    g    = grad_scale * sum_{mu active} dv(h_mu; y_mu) x_mu / sqrt(n)
    w   <- step(w, g + ridge w)                               (plain: w - eta (g + ridge w))
    w   <- w + sqrt(2 T(t) eta) z,                            z ~ N(0, I_n)
    w   <- w sqrt(n) / |w|                                    (sphere only)

Observables at recording steps, on the state *before* that step's update: ``w.w0/n``,
``|w|^2/n``, ``sum_mu v(h_mu; y_mu)/m`` and ``sum_mu err(h_mu; y_mu)/m`` over all training samples,
and the empirical test error.
A seed also stops (``STOP_STATIONARY``) when ``grad_tol > 0`` and the step's gradient
``G = g + ridge w`` (on the sphere its part tangent to the sphere) has ``max_j |G_j| < grad_tol``.
Success: the training loss per sample is checked at every step when every sample is active (the
step's own pass yields it), else every ``check_every`` steps and at the recording steps; the first
checked step with a loss below ``tol`` is ``solved_step``.

Errors: kernels never raise. A seed whose ``|w|^2`` becomes non-finite (or 0 on the sphere, which
cannot be projected back) stops with ``STOP_DIVERGED`` and NaN for the rest of its record;
``abort[0] != 0`` stops every seed with ``STOP_INTERRUPTED``; allocation failures are reported to Python after the parallel loop.

Random numbers: numpy's ``bitgen_t``. Per seed, three streams: data (teacher ``n`` normals, then
``X`` row-major (a mixture: each row's cluster, then its normals), then the held-out set, then the
permutation of reshuffled labels), initialization
(``n`` normals), dynamics (selection draws of ``prcy.kernels.switching``, then, per step with
``T > 0``, ``n`` normals for the noise).
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport sqrt, isfinite, NAN
from libc.float cimport DBL_EPSILON
from libc.stdint cimport int64_t, uint64_t, uintptr_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy
from numpy.random cimport bitgen_t
from numpy.random.c_distributions cimport random_standard_normal, random_interval
from cpython.pycapsule cimport PyCapsule_GetPointer

from prcy.kernels.losses cimport (Loss, loss_from_capsule, loss_init, loss_vdv_fn, fused_value_derivative,
                                  loss_block_dv_bounds_fn, fused_derivative_bounds,
                                  CommitteeLoss, committee_loss_from_capsule)
from prcy.kernels.optimizers cimport Optimizer, optimizer_init, optimizer_step, optimizer_project
from prcy.kernels.problems cimport Problem, problem_setup, TEACHER_RADEMACHER
from prcy.kernels.switching cimport (Switching, switching_init, switching_start, switching_select,
                                     SELECT_FULL, SELECT_BERNOULLI, SELECT_PERSISTENT, SELECT_REPLAY)
from prcy.kernels.parallel cimport effective_n_threads
from scipy.linalg.cython_blas cimport dgemm

from contextlib import nullcontext

import numpy as np
from threadpoolctl import threadpool_limits

from prcy.kernels.losses import is_committee_capsule

SELECTION = {"full": SELECT_FULL, "bernoulli": SELECT_BERNOULLI, "persistent": SELECT_PERSISTENT,
             "replay": SELECT_REPLAY}
STOP_REASONS = ("max_time", "converged", "diverged", "interrupted", "stationary")
INIT_KINDS = {"warm": INIT_WARM, "random": INIT_RANDOM, "given": INIT_GIVEN}
LABEL_KINDS = {"teacher": LABELS_TEACHER, "random": LABELS_PERMUTED, "fresh": LABELS_FRESH}   # --labels


# ---------------------------------------------------------------------------------------------
# (a) row kernels. Plain loops with a fixed association order that the compiler vectorizes; the
# eight-row block reads w (for the fields) and g (for the gradient) once per eight rows.
#
# float32 storage: every element is converted to double twice per step (fields, then gradient), and
# the conversion, not memory, bounds the step. With AVX2 + FMA the float32 block kernels below convert
# 4 floats straight from memory (``vcvtps2pd ymm, m128``), written with intrinsics because the
# compiler's vectorization of the plain loop converts through a wider register at half that rate
# (docs/benchmarks.md); the arithmetic is the plain loop's: exact float->double conversion, float64
# products and sums, a fixed summation order. Without AVX2 + FMA the plain loops are used.
cdef extern from *:
    """
    #if defined(__AVX2__) && defined(__FMA__)
    #include <immintrin.h>
    #define PRCY_F32_SIMD 1
    #define PRCY_CV4(p) _mm256_cvtps_pd(_mm_loadu_ps(p))
    static inline double prcy_hsum4(__m256d v) {
        __m128d lo = _mm256_castpd256_pd128(v), hi = _mm256_extractf128_pd(v, 1);
        __m128d s = _mm_add_pd(lo, hi);                       /* (l0 + l2), (l1 + l3) */
        return _mm_cvtsd_f64(s) + _mm_cvtsd_f64(_mm_unpackhi_pd(s, s));
    }
    /* out[r] = sum_j x_r[j] w[j]: lane k of row r sums j = k mod 4, then the lanes, then the tail */
    static inline void prcy_dot8_f32(const float* x0, const float* x1, const float* x2, const float* x3,
                                     const float* x4, const float* x5, const float* x6, const float* x7,
                                     const double* w, Py_ssize_t n, double* out) {
        __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        Py_ssize_t j, n4 = n - n % 4;
        for (j = 0; j < n4; j += 4) {
            __m256d wj = _mm256_loadu_pd(w + j);
            a0 = _mm256_fmadd_pd(PRCY_CV4(x0 + j), wj, a0);
            a1 = _mm256_fmadd_pd(PRCY_CV4(x1 + j), wj, a1);
            a2 = _mm256_fmadd_pd(PRCY_CV4(x2 + j), wj, a2);
            a3 = _mm256_fmadd_pd(PRCY_CV4(x3 + j), wj, a3);
            a4 = _mm256_fmadd_pd(PRCY_CV4(x4 + j), wj, a4);
            a5 = _mm256_fmadd_pd(PRCY_CV4(x5 + j), wj, a5);
            a6 = _mm256_fmadd_pd(PRCY_CV4(x6 + j), wj, a6);
            a7 = _mm256_fmadd_pd(PRCY_CV4(x7 + j), wj, a7);
        }
        out[0] = prcy_hsum4(a0); out[1] = prcy_hsum4(a1); out[2] = prcy_hsum4(a2); out[3] = prcy_hsum4(a3);
        out[4] = prcy_hsum4(a4); out[5] = prcy_hsum4(a5); out[6] = prcy_hsum4(a6); out[7] = prcy_hsum4(a7);
        for (j = n4; j < n; j++) {
            double wj = w[j];
            out[0] += (double)x0[j] * wj; out[1] += (double)x1[j] * wj;
            out[2] += (double)x2[j] * wj; out[3] += (double)x3[j] * wj;
            out[4] += (double)x4[j] * wj; out[5] += (double)x5[j] * wj;
            out[6] += (double)x6[j] * wj; out[7] += (double)x7[j] * wj;
        }
    }
    /* g[j] += sum_r c[r] x_r[j], as (g + c0 x0 + c2 x2 + c4 x4 + c6 x6) + (c1 x1 + c3 x3 + c5 x5 + c7 x7) */
    static inline void prcy_axpy8_f32(const float* x0, const float* x1, const float* x2, const float* x3,
                                      const float* x4, const float* x5, const float* x6, const float* x7,
                                      const double* c, double* g, Py_ssize_t n) {
        __m256d c0 = _mm256_set1_pd(c[0]), c1 = _mm256_set1_pd(c[1]), c2 = _mm256_set1_pd(c[2]);
        __m256d c3 = _mm256_set1_pd(c[3]), c4 = _mm256_set1_pd(c[4]), c5 = _mm256_set1_pd(c[5]);
        __m256d c6 = _mm256_set1_pd(c[6]), c7 = _mm256_set1_pd(c[7]);
        Py_ssize_t j, n4 = n - n % 4;
        for (j = 0; j < n4; j += 4) {
            __m256d s = _mm256_fmadd_pd(c0, PRCY_CV4(x0 + j), _mm256_loadu_pd(g + j));
            __m256d t = _mm256_mul_pd(c1, PRCY_CV4(x1 + j));
            s = _mm256_fmadd_pd(c2, PRCY_CV4(x2 + j), s);
            t = _mm256_fmadd_pd(c3, PRCY_CV4(x3 + j), t);
            s = _mm256_fmadd_pd(c4, PRCY_CV4(x4 + j), s);
            t = _mm256_fmadd_pd(c5, PRCY_CV4(x5 + j), t);
            s = _mm256_fmadd_pd(c6, PRCY_CV4(x6 + j), s);
            t = _mm256_fmadd_pd(c7, PRCY_CV4(x7 + j), t);
            _mm256_storeu_pd(g + j, _mm256_add_pd(s, t));
        }
        for (j = n4; j < n; j++) {
            double s = g[j] + c[0] * (double)x0[j], t = c[1] * (double)x1[j];
            s += c[2] * (double)x2[j]; t += c[3] * (double)x3[j];
            s += c[4] * (double)x4[j]; t += c[5] * (double)x5[j];
            s += c[6] * (double)x6[j]; t += c[7] * (double)x7[j];
            g[j] = s + t;
        }
    }
    #else
    #define PRCY_F32_SIMD 0
    static inline void prcy_dot8_f32(const float* x0, const float* x1, const float* x2, const float* x3,
                                     const float* x4, const float* x5, const float* x6, const float* x7,
                                     const double* w, Py_ssize_t n, double* out) {}
    static inline void prcy_axpy8_f32(const float* x0, const float* x1, const float* x2, const float* x3,
                                      const float* x4, const float* x5, const float* x6, const float* x7,
                                      const double* c, double* g, Py_ssize_t n) {}
    #endif
    """
    const int PRCY_F32_SIMD
    void prcy_dot8_f32(const float* x0, const float* x1, const float* x2, const float* x3,
                       const float* x4, const float* x5, const float* x6, const float* x7,
                       const double* w, Py_ssize_t n, double* out) noexcept nogil
    void prcy_axpy8_f32(const float* x0, const float* x1, const float* x2, const float* x3,
                        const float* x4, const float* x5, const float* x6, const float* x7,
                        const double* c, double* g, Py_ssize_t n) noexcept nogil

FLOAT32_SIMD = bool(PRCY_F32_SIMD)   # float32 row kernels built with AVX2/FMA intrinsics (else plain loops)


cdef double field_dot(const floating* x, const double* w, Py_ssize_t n) noexcept nogil:
    cdef double a = 0.0
    cdef Py_ssize_t j
    for j in range(n):
        a += x[j] * w[j]
    return a


cdef inline void _dot8(const floating* x0, const floating* x1, const floating* x2, const floating* x3,
                       const floating* x4, const floating* x5, const floating* x6, const floating* x7,
                       const double* w, Py_ssize_t n, double* out) noexcept nogil:
    cdef double a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0, wj
    cdef Py_ssize_t j
    if floating is float:
        if PRCY_F32_SIMD:
            prcy_dot8_f32(x0, x1, x2, x3, x4, x5, x6, x7, w, n, out)
            return
    for j in range(n):
        wj = w[j]
        a0 += x0[j] * wj
        a1 += x1[j] * wj
        a2 += x2[j] * wj
        a3 += x3[j] * wj
        a4 += x4[j] * wj
        a5 += x5[j] * wj
        a6 += x6[j] * wj
        a7 += x7[j] * wj
    out[0] = a0; out[1] = a1; out[2] = a2; out[3] = a3
    out[4] = a4; out[5] = a5; out[6] = a6; out[7] = a7


cdef inline void _axpy8(const floating* x0, const floating* x1, const floating* x2, const floating* x3,
                        const floating* x4, const floating* x5, const floating* x6, const floating* x7,
                        const double* c, double* g, Py_ssize_t n) noexcept nogil:
    cdef double c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3], c4 = c[4], c5 = c[5], c6 = c[6], c7 = c[7]
    cdef Py_ssize_t j
    if floating is float:
        if PRCY_F32_SIMD:
            prcy_axpy8_f32(x0, x1, x2, x3, x4, x5, x6, x7, c, g, n)
            return
    for j in range(n):
        g[j] += (((c0 * x0[j] + c1 * x1[j]) + (c2 * x2[j] + c3 * x3[j]))
                 + ((c4 * x4[j] + c5 * x5[j]) + (c6 * x6[j] + c7 * x7[j])))


# ---------------------------------------------------------------------------------------------
# (b) passes over the data

cdef double gradient_pass(const floating* X, Py_ssize_t n, const Py_ssize_t* rows, Py_ssize_t n_rows,
                          const double* y, const double* w, const Loss* loss, double coef,
                          double* g) noexcept nogil:
    """``g = coef sum_{mu in rows} dv(h_mu; y_mu) x_mu / sqrt(n)``; returns ``sum_{mu in rows} v``
    (``v`` and ``dv`` in one call where the loss has the fused form, ``fused_value_derivative``)."""
    return _gradient_pass(X, n, rows, n_rows, y, w, loss, coef, g, NULL)


cdef inline void _bounded_rows(loss_block_dv_bounds_fn vdb, const double* theta, double* h,
                               const double* y, const Py_ssize_t* rows, Py_ssize_t nr, double s, double coef,
                               double* c, double* total, double* low) noexcept nogil:
    """``nr <= 8`` rows ``rows[r]`` with fields ``h[r] = w.x`` (scaled in place by ``s``) through a loss's
    bounded block form: ``c[r] = coef s dv``, and the bounds on ``v`` added to ``total`` (upper) and
    ``low`` (lower)."""
    cdef double ys[8]
    cdef double lo[8]
    cdef double up[8]
    cdef Py_ssize_t r
    for r in range(nr):
        h[r] = h[r] * s
        ys[r] = y[rows[r]]
    vdb(h, ys, nr, theta, c, lo, up)
    for r in range(nr):
        total[0] += up[r]
        low[0] += lo[r]
        c[r] = coef * s * c[r]


cdef inline double _gradient_pass(const floating* X, Py_ssize_t n, const Py_ssize_t* rows, Py_ssize_t n_rows,
                                  const double* y, const double* w, const Loss* loss, double coef,
                                  double* g, double* lower) noexcept nogil:
    """``gradient_pass``; with ``lower``, the summed loss as bounds where the loss has a bounded fused
    form (no log for the logistic losses), taken for a block of rows at a time: the upper returned, the
    lower in ``lower`` (for every other loss both are the sum)."""
    cdef double s = 1.0 / sqrt(<double>n)
    cdef double total = 0.0, low = 0.0, hr, d
    cdef double h[8]
    cdef double c[8]
    cdef Py_ssize_t b, r, j, mu
    cdef Py_ssize_t n_blocks = n_rows - n_rows % 8
    # separate branches, not a helper that fills dv either way: under -fassociative-math the compiler's
    # order of the products follows the code's shape, and the unfused branch keeps the stored runs' bits
    cdef loss_vdv_fn vdv = fused_value_derivative(loss) if lower == NULL else NULL
    cdef loss_block_dv_bounds_fn vdb = fused_derivative_bounds(loss) if lower != NULL else NULL
    for j in range(n):
        g[j] = 0.0
    for b in range(0, n_blocks, 8):
        _dot8(X + rows[b] * n, X + rows[b + 1] * n, X + rows[b + 2] * n, X + rows[b + 3] * n,
              X + rows[b + 4] * n, X + rows[b + 5] * n, X + rows[b + 6] * n, X + rows[b + 7] * n,
              w, n, h)
        if vdb != NULL:
            _bounded_rows(vdb, loss.theta, h, y, rows + b, 8, s, coef, c, &total, &low)
        else:
            for r in range(8):
                mu = rows[b + r]
                hr = h[r] * s
                if vdv == NULL:
                    total += loss.v(hr, y[mu], loss.theta)
                    c[r] = coef * s * loss.dv(hr, y[mu], loss.theta)
                else:
                    total += vdv(hr, y[mu], loss.theta, &d)
                    c[r] = coef * s * d
        _axpy8(X + rows[b] * n, X + rows[b + 1] * n, X + rows[b + 2] * n, X + rows[b + 3] * n,
               X + rows[b + 4] * n, X + rows[b + 5] * n, X + rows[b + 6] * n, X + rows[b + 7] * n,
               c, g, n)
    if vdb != NULL:
        for r in range(n_rows - n_blocks):
            h[r] = field_dot(X + rows[n_blocks + r] * n, w, n)
        _bounded_rows(vdb, loss.theta, h, y, rows + n_blocks, n_rows - n_blocks, s, coef, c, &total, &low)
        for r in range(n_rows - n_blocks):
            mu = rows[n_blocks + r]
            for j in range(n):
                g[j] += c[r] * X[mu * n + j]
        lower[0] = low
        return total
    for b in range(n_blocks, n_rows):
        mu = rows[b]
        hr = field_dot(X + mu * n, w, n) * s
        if vdv == NULL:
            total += loss.v(hr, y[mu], loss.theta)
            hr = coef * s * loss.dv(hr, y[mu], loss.theta)
        else:
            total += vdv(hr, y[mu], loss.theta, &d)
            hr = coef * s * d
        for j in range(n):
            g[j] += hr * X[mu * n + j]
    if lower != NULL:
        lower[0] = total
    return total


cdef double loss_pass(const floating* X, Py_ssize_t n, Py_ssize_t m, const double* y, const double* w,
                      const Loss* loss, int use_err) noexcept nogil:
    """``sum_mu v(h_mu; y_mu)`` over all ``m`` rows (``err`` instead of ``v`` when ``use_err``)."""
    cdef double s = 1.0 / sqrt(<double>n)
    cdef double total = 0.0
    cdef double h[8]
    cdef Py_ssize_t b, r
    cdef Py_ssize_t n_blocks = m - m % 8
    for b in range(0, n_blocks, 8):
        _dot8(X + b * n, X + (b + 1) * n, X + (b + 2) * n, X + (b + 3) * n,
              X + (b + 4) * n, X + (b + 5) * n, X + (b + 6) * n, X + (b + 7) * n, w, n, h)
        for r in range(8):
            total += (loss.err(h[r] * s, y[b + r], loss.theta) if use_err
                      else loss.v(h[r] * s, y[b + r], loss.theta))
    for b in range(n_blocks, m):
        h[0] = field_dot(X + b * n, w, n) * s
        total += loss.err(h[0], y[b], loss.theta) if use_err else loss.v(h[0], y[b], loss.theta)
    return total


cdef inline bint _undecided(double lower, double upper, double threshold, Py_ssize_t m) noexcept nogil:
    """Whether a sum of ``m`` nonnegative terms, each between its lower and upper bound, may fall on
    either side of ``threshold`` (``sum < threshold``), with room for the rounding of the three sums."""
    cdef double slack = 4.0 * (m + 8) * DBL_EPSILON
    return not (upper * (1.0 + slack) < threshold or lower * (1.0 - slack) >= threshold)


cdef inline Py_ssize_t _row(const Py_ssize_t* rows, Py_ssize_t b) noexcept nogil:
    return rows[b] if rows != NULL else b


cdef inline double _block_losses(const CommitteeLoss* loss, double* h, double* c, Py_ssize_t nb, Py_ssize_t k,
                                 double s, double coef, const double* y, const Py_ssize_t* rows, Py_ssize_t b,
                                 int gradient, int use_err) noexcept nogil:
    """For the ``nb`` rows ``b, b+1, ...`` of ``rows`` whose unscaled fields are ``h`` (``nb x k``):
    scale them by ``s`` and return the summed loss (``err`` when ``use_err``); with ``gradient`` also
    ``c = coef s dLambda/dh`` (``nb x k``)."""
    cdef double total = 0.0
    cdef double* hr
    cdef Py_ssize_t r, u
    cdef double y_r
    for r in range(nb):
        hr = h + r * k
        for u in range(k):
            hr[u] *= s
        y_r = y[_row(rows, b + r)]
        if use_err:
            total += loss.err(hr, k, y_r, loss.theta)
        elif gradient:
            total += loss.v(hr, k, y_r, loss.theta, c + r * k)
            for u in range(k):
                c[r * k + u] *= coef * s
        else:
            total += loss.v(hr, k, y_r, loss.theta, NULL)
    return total


cdef double committee_pass(const floating* X, Py_ssize_t n, const Py_ssize_t* rows, Py_ssize_t n_rows,
                           const double* y, const double* W, const Committee* c, double coef, double* G,
                           int use_err, CommitteeScratch* cw) noexcept nogil:
    """A committee's pass over ``n_rows`` rows (``rows`` NULL: rows ``0..n_rows-1``), each read from
    memory once. With ``G`` (``k x n``): ``G_k = coef sum_mu dLambda/dh_k x_mu / sqrt(n)``, returning
    ``sum_mu Lambda``; without: the sum of ``Lambda`` (of ``err`` when ``use_err``).

    ``c.block > 0``: blocks of ``c.block`` rows copied to ``cw.xb`` in float64 (sized to stay in L2; float64
    rows that follow each other in ``X`` are used in place), fields ``H = X_b W^T`` and gradient
    ``G += C^T X_b`` by ``dgemm``; else blocks of eight rows, the
    fields of every unit by ``_dot8`` and the gradient by ``_axpy8`` while the rows are in cache."""
    cdef double s = 1.0 / sqrt(<double>n)
    cdef double total = 0.0, hr
    cdef const CommitteeLoss* loss = c.loss
    cdef Py_ssize_t k = c.k, b, nb, r, u, j, mu
    cdef int gradient = G != NULL
    cdef int bk = <int>k, bn = <int>n, bnb
    cdef double one = 1.0, zero = 0.0
    cdef const floating* x
    cdef const floating* xr[8]
    cdef double* xb
    if gradient:
        for j in range(k * n):
            G[j] = 0.0
    if c.block > 0:
        b = 0
        while b < n_rows:
            nb = c.block if n_rows - b > c.block else n_rows - b
            bnb = <int>nb
            xb = cw.xb
            if floating is double:            # consecutive float64 rows: dgemm reads them in place
                mu = _row(rows, b)
                r = 1
                while r < nb and _row(rows, b + r) == mu + r:
                    r += 1
                if r == nb:
                    xb = <double*>(X + mu * n)
            if xb == cw.xb:
                for r in range(nb):
                    x = X + _row(rows, b + r) * n
                    for j in range(n):
                        cw.xb[r * n + j] = x[j]
            dgemm("T", "N", &bk, &bnb, &bn, &one, <double*>W, &bn, xb, &bn, &zero, cw.h, &bk)
            total += _block_losses(loss, cw.h, cw.c, nb, k, s, coef, y, rows, b, gradient, use_err)
            if gradient:
                dgemm("N", "T", &bn, &bk, &bnb, &one, xb, &bn, cw.c, &bk, &one, G, &bn)
            b += nb
        return total
    cdef Py_ssize_t n_blocks = n_rows - n_rows % 8
    for b in range(0, n_blocks, 8):
        for r in range(8):
            xr[r] = X + _row(rows, b + r) * n
        for u in range(k):            # unit-major into c, then row-major into h
            _dot8(xr[0], xr[1], xr[2], xr[3], xr[4], xr[5], xr[6], xr[7], W + u * n, n, cw.c + u * 8)
        for r in range(8):
            for u in range(k):
                cw.h[r * k + u] = cw.c[u * 8 + r]
        total += _block_losses(loss, cw.h, cw.c, 8, k, s, coef, y, rows, b, gradient, use_err)
        if gradient:
            for r in range(8):        # unit-major into h
                for u in range(k):
                    cw.h[u * 8 + r] = cw.c[r * k + u]
            for u in range(k):
                _axpy8(xr[0], xr[1], xr[2], xr[3], xr[4], xr[5], xr[6], xr[7], cw.h + u * 8, G + u * n, n)
    for b in range(n_blocks, n_rows):
        x = X + _row(rows, b) * n
        for u in range(k):
            cw.h[u] = field_dot(x, W + u * n, n)
        total += _block_losses(loss, cw.h, cw.c, 1, k, s, coef, y, rows, b, gradient, use_err)
        if gradient:
            for u in range(k):
                hr = cw.c[u]
                for j in range(n):
                    G[u * n + j] += hr * x[j]
    return total


cdef inline void _mixture_rows(bitgen_t* rng, const Problem* problem, Py_ssize_t rows, Py_ssize_t n,
                               const double* v, floating* X, double* y) noexcept nogil:
    """Per row: the cluster ``c`` (two clusters: ``random_interval(rng, 1)``, 0 -> ``+1``, 1 -> ``-1``;
    three: ``random_interval(rng, 3)``, 0 or 1 -> ``0``, 2 -> ``+1``, 3 -> ``-1``), then ``n`` normals
    ``z``: ``x = c v/sqrt(n) + sqrt(delta) z`` rounded to the storage precision, ``y = label(c)``."""
    cdef Py_ssize_t i, j
    cdef uint64_t r
    cdef double c, a = 1.0 / sqrt(<double>n), b = sqrt(problem.delta)
    for i in range(rows):
        if problem.clusters == 2:
            c = 1.0 if random_interval(rng, 1) == 0 else -1.0
        else:
            r = random_interval(rng, 3)
            c = 0.0 if r < 2 else (1.0 if r == 2 else -1.0)
        for j in range(n):
            X[i * n + j] = <floating>(c * v[j] * a + b * random_standard_normal(rng))
        y[i] = problem.label(c, problem.theta)


cdef void generate_data(bitgen_t* rng, const Problem* problem, Py_ssize_t m, Py_ssize_t n, Py_ssize_t m_test,
                        double* w0, floating* X, double* y, floating* Xt, double* yt,
                        int labels) noexcept nogil:
    """Teacher from ``n`` standard normals: normalized to ``|w0|^2 = n`` (Gaussian teacher) or their
    signs (Rademacher). Labelled by the teacher: ``X``, ``Xt`` i.i.d. N(0, 1) (rounded to the storage
    precision); labels ``y = problem.label(h0)`` with ``h0 = X w0 / sqrt(n)`` from the rounded ``X``.
    A mixture (``problem.clusters``): ``w0`` is the cluster mean ``v*``; the training rows, then the
    held-out rows, each drawn as ``_mixture_rows`` says.
    ``labels`` (``LabelKind``): ``LABELS_PERMUTED``: the training labels are then permuted among the
    samples (reshuffled labels: same empirical label law, no information on ``X``), by the Fisher-Yates
    draws of ``numpy.random.Generator.shuffle``; ``LABELS_FRESH``: then replaced by ``label(z_mu)`` with
    ``m`` fresh standard normals ``z_mu`` (the teacher's field law, ``|w0|^2 = n``: matched variance),
    teacher problems only. The held-out set keeps its own labels."""
    cdef Py_ssize_t i, j
    cdef double norm2 = 0.0, s
    for i in range(n):
        w0[i] = random_standard_normal(rng)
        norm2 += w0[i] * w0[i]
    if problem.teacher == TEACHER_RADEMACHER:
        for i in range(n):
            w0[i] = 1.0 if w0[i] >= 0 else -1.0
    else:
        s = sqrt(n / norm2)
        for i in range(n):
            w0[i] *= s
    if problem.clusters:
        _mixture_rows(rng, problem, m, n, w0, X, y)
        _mixture_rows(rng, problem, m_test, n, w0, Xt, yt)
    else:
        for i in range(m * n):
            X[i] = <floating>random_standard_normal(rng)
        for i in range(m_test * n):
            Xt[i] = <floating>random_standard_normal(rng)
        s = 1.0 / sqrt(<double>n)
        for i in range(m):
            y[i] = problem.label(field_dot(X + i * n, w0, n) * s, problem.theta)
        for i in range(m_test):
            yt[i] = problem.label(field_dot(Xt + i * n, w0, n) * s, problem.theta)
    if labels == LABELS_FRESH:
        for i in range(m):
            y[i] = problem.label(random_standard_normal(rng), problem.theta)
    elif labels == LABELS_PERMUTED:
        for i in range(m - 1, 0, -1):
            j = <Py_ssize_t>random_interval(rng, <uint64_t>i)
            s = y[i]
            y[i] = y[j]
            y[j] = s


cdef void init_weights(bitgen_t* rng, const double* w0, Py_ssize_t n, int kind, double m0, double variance,
                       int sphere, double* w) noexcept nogil:
    """From ``z ~ N(0, I)`` (``n`` normals of the initialization stream). Warm start on the sphere
    (eq 11): ``w = m0 w0 + c z_perp`` with ``z_perp`` the part of ``z`` orthogonal to ``w0`` and ``c``
    such that ``|w|^2 = n`` (so ``w.w0/n = m0`` exactly); with the ridge (eq C.2): ``w = m0 w0 + z``.
    Random start (``INIT_RANDOM``), independent of the teacher: ``w = z sqrt(n) / |z|``, uniform on
    the sphere (so ``w.w0/n ~ N(0, 1/n)``); with the ridge ``w = sqrt(variance) z``."""
    cdef Py_ssize_t i
    cdef double proj = 0.0, norm2 = 0.0, c
    for i in range(n):
        w[i] = random_standard_normal(rng)
    if kind == INIT_RANDOM:
        if sphere:
            for i in range(n):
                norm2 += w[i] * w[i]
            c = sqrt(n / norm2)
        else:
            c = sqrt(variance)
        for i in range(n):
            w[i] *= c
        return
    if not sphere:
        for i in range(n):
            w[i] += m0 * w0[i]
        return
    for i in range(n):
        proj += w[i] * w0[i]
    proj /= n
    for i in range(n):
        w[i] -= proj * w0[i]
        norm2 += w[i] * w[i]
    c = sqrt((1.0 - m0 * m0) * n / norm2)
    for i in range(n):
        w[i] = m0 * w0[i] + c * w[i]


# ---------------------------------------------------------------------------------------------
# (c) one trajectory

cdef inline void _observe(const Dynamics* d, const floating* X, const double* y, const floating* Xt,
                          const double* yt, const double* w0, const double* w, Record* rec,
                          Py_ssize_t i) noexcept nogil:
    cdef double mag = 0.0, q = 0.0
    cdef Py_ssize_t j
    for j in range(d.n):
        mag += w[j] * w0[j]
        q += w[j] * w[j]
    rec.magnetization[i] = mag / d.n
    rec.norm[i] = q / d.n
    rec.train_loss[i] = loss_pass(X, d.n, d.m, y, w, d.loss, 0) / d.m
    rec.train_error[i] = loss_pass(X, d.n, d.m, y, w, d.loss, 1) / d.m
    rec.test_error[i] = loss_pass(Xt, d.n, d.m_test, yt, w, d.loss, 1) / d.m_test if d.m_test else NAN
    if rec.weights != NULL:
        memcpy(rec.weights + i * d.n, w, d.n * sizeof(double))


cdef inline void _fill(Record* rec, Py_ssize_t src, Py_ssize_t start, Py_ssize_t stop, Py_ssize_t n) noexcept nogil:
    """Copy record entry ``src`` (or NaN when ``src < 0``) into entries ``start..stop-1`` (``n``: the
    length of a row of ``rec.weights``)."""
    cdef Py_ssize_t i, j
    if rec.weights != NULL:
        for i in range(start, stop):
            for j in range(n):
                rec.weights[i * n + j] = rec.weights[src * n + j] if src >= 0 else NAN
    for i in range(start, stop):
        rec.magnetization[i] = rec.magnetization[src] if src >= 0 else NAN
        rec.norm[i] = rec.norm[src] if src >= 0 else NAN
        rec.train_loss[i] = rec.train_loss[src] if src >= 0 else NAN
        rec.train_error[i] = rec.train_error[src] if src >= 0 else NAN
        rec.test_error[i] = rec.test_error[src] if src >= 0 else NAN


cdef inline double _gradient_max(const Dynamics* d, const double* g, const double* w) noexcept nogil:
    """``max_j |G_j|`` of ``G = g + ridge w``; on the sphere of ``G - (G.w / w.w) w``."""
    cdef Py_ssize_t j
    cdef double gw = 0.0, ww = 0.0, c = 0.0, G, top = 0.0
    if d.sphere:
        for j in range(d.n):
            gw += (g[j] + d.ridge * w[j]) * w[j]
            ww += w[j] * w[j]
        c = gw / ww
    for j in range(d.n):
        G = g[j] + d.ridge * w[j] - c * w[j]
        G = G if G >= 0 else -G
        if G > top:
            top = G
    return top


cdef inline void _committee_observe(const Dynamics* d, const Committee* c, CommitteeScratch* cw,
                                    const floating* X, const double* y, const floating* Xt, const double* yt,
                                    const double* w0, const double* W, Record* rec, CommitteeRecord* crec,
                                    Py_ssize_t i) noexcept nogil:
    """A committee's record ``i``: ``M_k = w_k.w0/n``, ``Q = W W^T/n`` (``dgemm``), ``magnetization =
    sqrt(sum_k M_k^2/k)``, ``norm = tr Q/k`` (``tr A``), ``a_square = |Q|_F^2/k^2`` (``|A|_F^2``), the
    training loss, training error and empirical test error."""
    cdef Py_ssize_t k = c.k, n = d.n, u, j
    cdef int bk = <int>k, bn = <int>n
    cdef double mag, msq = 0.0, tr = 0.0, fro = 0.0, inv_n = 1.0 / n, zero = 0.0
    for u in range(k):
        mag = 0.0
        for j in range(n):
            mag += W[u * n + j] * w0[j]
        mag /= n
        crec.unit_magnetization[i * k + u] = mag
        msq += mag * mag
    dgemm("T", "N", &bk, &bk, &bn, &inv_n, <double*>W, &bn, <double*>W, &bn, &zero, cw.q, &bk)
    for u in range(k * k):
        fro += cw.q[u] * cw.q[u]
    for u in range(k):
        tr += cw.q[u * k + u]
    rec.magnetization[i] = sqrt(msq / k)
    rec.norm[i] = tr / k
    crec.a_square[i] = fro / (k * k)
    if crec.overlap != NULL:
        memcpy(crec.overlap + i * k * k, cw.q, k * k * sizeof(double))
    rec.train_loss[i] = committee_pass(X, n, NULL, d.m, y, W, c, 1.0, NULL, 0, cw) / d.m
    rec.train_error[i] = committee_pass(X, n, NULL, d.m, y, W, c, 1.0, NULL, 1, cw) / d.m
    rec.test_error[i] = committee_pass(Xt, n, NULL, d.m_test, yt, W, c, 1.0, NULL, 1, cw) / d.m_test if d.m_test else NAN


cdef inline void _committee_fill(CommitteeRecord* crec, Py_ssize_t k, Py_ssize_t src, Py_ssize_t start,
                                 Py_ssize_t stop) noexcept nogil:
    """``_fill`` of a committee's own records."""
    cdef Py_ssize_t i, j
    for i in range(start, stop):
        crec.a_square[i] = crec.a_square[src] if src >= 0 else NAN
        for j in range(k):
            crec.unit_magnetization[i * k + j] = crec.unit_magnetization[src * k + j] if src >= 0 else NAN
        if crec.overlap != NULL:
            for j in range(k * k):
                crec.overlap[i * k * k + j] = crec.overlap[src * k * k + j] if src >= 0 else NAN


cdef inline void _record(const Dynamics* d, const Committee* c, CommitteeScratch* cw, const floating* X,
                         const double* y, const floating* Xt, const double* yt, const double* w0, const double* w,
                         Record* rec, CommitteeRecord* crec, Py_ssize_t i) noexcept nogil:
    if c == NULL:
        _observe(d, X, y, Xt, yt, w0, w, rec, i)
    else:
        _committee_observe(d, c, cw, X, y, Xt, yt, w0, w, rec, crec, i)


cdef inline void _fill_records(const Dynamics* d, const Committee* c, Record* rec, CommitteeRecord* crec,
                               Py_ssize_t src, Py_ssize_t start) noexcept nogil:
    _fill(rec, src, start, d.n_record, d.n)
    if c != NULL:
        _committee_fill(crec, c.k, src, start, d.n_record)


cdef void trajectory(const Dynamics* d, const floating* X, const double* y, const floating* Xt,
                     const double* yt, const double* w0, double* w, Switching* sw, Scratch* work,
                     bitgen_t* rng, const double* noise_replay, Record* rec, int64_t* progress) noexcept nogil:
    _trajectory(d, NULL, X, y, Xt, yt, w0, w, sw, work, NULL, rng, noise_replay, rec, NULL, progress)


cdef void committee_trajectory(const Dynamics* d, const Committee* c, const floating* X, const double* y,
                               const floating* Xt, const double* yt, const double* w0, double* W, Switching* sw,
                               Scratch* work, CommitteeScratch* cw, bitgen_t* rng, const double* noise_replay,
                               Record* rec, CommitteeRecord* crec, int64_t* progress) noexcept nogil:
    _trajectory(d, c, X, y, Xt, yt, w0, W, sw, work, cw, rng, noise_replay, rec, crec, progress)


cdef inline void _trajectory(const Dynamics* d, const Committee* c, const floating* X, const double* y,
                             const floating* Xt, const double* yt, const double* w0, double* w, Switching* sw,
                             Scratch* work, CommitteeScratch* cw, bitgen_t* rng, const double* noise_replay,
                             Record* rec, CommitteeRecord* crec, int64_t* progress) noexcept nogil:
    """One seed: a single unit (``c`` NULL: ``w`` has ``n`` entries) or a committee of ``c.k`` units
    (``w`` is ``k x n``; the constraint acts on each unit, the optimizer on all ``k n`` weights)."""
    cdef Py_ssize_t n = d.n, j, u, rec_i = 0, n_active, temp_i = 0
    cdef Py_ssize_t units = c.k if c != NULL else 1, size = units * n
    cdef int64_t k
    cdef int full_batch = sw.kind == SELECT_FULL
    cdef int recorded, have_loss, stop = -1, diverged
    cdef double loss_k = 0.0, step_loss, step_lower, amp, norm2, scale, top
    # a full-batch step's loss decides success only: a loss with a bounded form gives it without its log
    # (bounds), the exact sum by a loss pass only where the bounds straddle the threshold
    cdef bint bounded = c == NULL and fused_derivative_bounds(d.loss) != NULL
    rec.solved_step = -1
    rec.stop_reason = STOP_MAX_TIME
    rec.stop_step = d.n_steps
    for j in range(d.opt.n_state * size):
        work.opt_state[j] = 0.0
    switching_start(sw, rng)
    k = 0
    while True:
        progress[0] = k
        if d.abort[0]:
            rec.stop_reason = STOP_INTERRUPTED
            rec.stop_step = k
            _fill_records(d, c, rec, crec, -1, rec_i)
            return
        recorded = rec_i < d.n_record and d.record_steps[rec_i] == k
        have_loss = 0
        if recorded:
            _record(d, c, cw, X, y, Xt, yt, w0, w, rec, crec, rec_i)
            loss_k = rec.train_loss[rec_i] * d.m
            have_loss = 1
            rec_i += 1
        elif rec.solved_step < 0 and not full_batch and k % d.check_every == 0:
            loss_k = (loss_pass(X, n, d.m, y, w, d.loss, 0) if c == NULL
                      else committee_pass(X, n, NULL, d.m, y, w, c, 1.0, NULL, 0, cw))
            have_loss = 1
        if k < d.n_steps:
            n_active = switching_select(sw, k, rng, work.active)
            if c == NULL:
                step_loss = _gradient_pass(X, n, work.active, n_active, y, w, d.loss, d.grad_scale, work.g,
                                           &step_lower if bounded else NULL)
            else:
                step_loss = committee_pass(X, n, work.active, n_active, y, w, c, d.grad_scale, work.g, 0, cw)
            if full_batch:
                loss_k = step_loss
                if bounded and rec.solved_step < 0 and _undecided(step_lower, step_loss, d.tol * d.m, d.m):
                    loss_k = loss_pass(X, n, d.m, y, w, d.loss, 0)
                have_loss = 1
            if d.grad_tol > 0.0:
                top = 0.0
                for u in range(units):
                    scale = _gradient_max(d, work.g + u * n, w + u * n)
                    if scale > top:
                        top = scale
                if top < d.grad_tol:
                    stop = STOP_STATIONARY
        if rec.solved_step < 0 and have_loss and loss_k < d.tol * d.m:
            rec.solved_step = k
            if d.early_stop:
                stop = STOP_CONVERGED
        if stop >= 0:                 # the state at step k stands for the rest of the record
            rec.stop_reason = stop
            rec.stop_step = k
            if not recorded:
                _record(d, c, cw, X, y, Xt, yt, w0, w, rec, crec, rec_i)
                rec_i += 1
            _fill_records(d, c, rec, crec, rec_i - 1, rec_i)
            return
        if k == d.n_steps:
            return
        # update: the optimizer's step, sqrt(2 T eta) z, then the constraint (per unit)
        while temp_i + 1 < d.n_temp and d.temp_starts[temp_i + 1] <= k:
            temp_i += 1
        amp = sqrt(2.0 * d.temp_values[temp_i] * d.eta) if d.n_temp else 0.0
        optimizer_step(&d.opt, w, work.g, d.ridge, d.eta, work.opt_state, k + 1, size)
        if noise_replay != NULL:
            for j in range(size):
                w[j] += amp * noise_replay[k * size + j]
        elif amp > 0.0:
            for j in range(size):
                w[j] += amp * random_standard_normal(rng)
        k += 1
        diverged = 0
        for u in range(units):
            norm2 = 0.0
            for j in range(u * n, (u + 1) * n):
                norm2 += w[j] * w[j]
            if not isfinite(norm2) or (d.sphere and norm2 == 0.0):
                diverged = 1
                break
            if d.sphere:
                scale = sqrt(n / norm2)
                for j in range(u * n, (u + 1) * n):
                    w[j] *= scale
                optimizer_project(&d.opt, work.opt_state + u * n, w + u * n, n)
        if diverged:
            rec.stop_reason = STOP_DIVERGED
            rec.stop_step = k
            _fill_records(d, c, rec, crec, -1, rec_i)
            return


# ---------------------------------------------------------------------------------------------
# (d) Python twins

cdef bitgen_t* _bitgen(object bitgenerator) except NULL:
    return <bitgen_t*> PyCapsule_GetPointer(bitgenerator.capsule, "BitGenerator")


cdef int _fill_dynamics(Dynamics* d, object loss, Py_ssize_t m, Py_ssize_t n, Py_ssize_t m_test,
                        dict p, const int64_t[::1] record_steps, const int64_t[::1] temp_starts,
                        const double[::1] temp_values, const int[::1] abort) except -1:
    d.loss = NULL if is_committee_capsule(loss) else loss_from_capsule(loss)
    d.m = m
    d.n = n
    d.m_test = m_test
    d.eta = p["eta"]
    d.grad_scale = p["grad_scale"]
    d.ridge = p["ridge"]
    d.sphere = p["sphere"]
    d.n_steps = p["n_steps"]
    d.check_every = p["check_every"]
    d.tol = p["tol"]
    d.early_stop = p["early_stop"]
    d.grad_tol = p["grad_tol"]
    optimizer_init(&d.opt, p["optimizer"], p["momentum"], p["beta1"], p["beta2"], p["adam_eps"],
                   p["project_velocity"])
    d.record_steps = &record_steps[0]
    d.n_record = record_steps.shape[0]
    d.temp_starts = &temp_starts[0]
    d.temp_values = &temp_values[0]
    d.n_temp = temp_values.shape[0]
    d.abort = &abort[0]
    return 0


def _record_arrays(Py_ssize_t n_seeds, Py_ssize_t n_record, Py_ssize_t hidden=0, bint overlap=False):
    """The record arrays of ``n_seeds`` seeds; with ``hidden`` units also a committee's (the overlap
    matrix if ``overlap``)."""
    out = {name: np.full((n_seeds, n_record), np.nan)
           for name in ("magnetization", "norm", "train_loss", "train_error", "test_error")}
    if hidden:
        out["unit_magnetization"] = np.full((n_seeds, n_record, hidden), np.nan)
        out["a_square"] = np.full((n_seeds, n_record), np.nan)
        if overlap:
            out["overlap"] = np.full((n_seeds, n_record, hidden, hidden), np.nan)
    out["solved_step"] = np.full(n_seeds, -1, dtype=np.int64)
    out["stop_step"] = np.zeros(n_seeds, dtype=np.int64)
    out["stop_reason"] = np.zeros(n_seeds, dtype=np.int8)
    return out


cdef inline void _point_record(Record* rec, double[:, ::1] mag, double[:, ::1] nrm, double[:, ::1] loss,
                               double[:, ::1] err, double[:, ::1] test, Py_ssize_t s) noexcept nogil:
    rec.magnetization = &mag[s, 0]
    rec.norm = &nrm[s, 0]
    rec.train_loss = &loss[s, 0]
    rec.train_error = &err[s, 0]
    rec.test_error = &test[s, 0]


BLAS_UNITS = 4              # committees of at least this many units take the dgemm path
BLOCK_BYTES = 1024 * 1024   # a dgemm row block in float64 at most: stays in L2 between the two products
BLOCK_ROWS = 128            # and at most this many rows (docs/benchmarks.md, "Committee machines")


def committee_block(Py_ssize_t k, Py_ssize_t n):
    """The ``block`` of ``run_seeds`` for ``k`` units in dimension ``n``: 0 (blocks of eight rows) below
    ``BLAS_UNITS`` units, else the rows of ``BLOCK_BYTES`` of float64, between 8 and ``BLOCK_ROWS``."""
    return 0 if k < BLAS_UNITS else max(8, min(BLOCK_ROWS, BLOCK_BYTES // (8 * n)))


cdef int _committee_setup(Committee* c, object loss, Py_ssize_t hidden, Py_ssize_t block) except -1:
    """Fill ``c`` for a committee run (``loss``: a committee capsule), checking ``hidden`` and ``block``."""
    if hidden < 1:
        raise ValueError(f"hidden: {hidden!r} is not allowed; allowed: an integer >= 1")
    if block < 0:
        raise ValueError(f"block: {block!r} is not allowed; allowed: 0 (blocks of eight rows) or >= 1 rows")
    c.loss = committee_loss_from_capsule(loss)
    c.k = hidden
    c.block = block
    return 0


cdef void _committee_scratch_free(CommitteeScratch* cw) noexcept nogil:
    if cw != NULL:
        free(cw.xb)
        free(cw.h)
        free(cw.c)
        free(cw.q)
    free(cw)


cdef CommitteeScratch* _committee_scratch(const Committee* c, Py_ssize_t n) noexcept nogil:
    """The per-thread scratch of a committee (``CommitteeScratch``), NULL when an allocation fails."""
    cdef Py_ssize_t rows = c.block if c.block > 8 else 8
    cdef CommitteeScratch* cw = <CommitteeScratch*>malloc(sizeof(CommitteeScratch))
    if cw == NULL:
        return NULL
    cw.xb = <double*>malloc(c.block * n * sizeof(double) + 1)
    cw.h = <double*>malloc(rows * c.k * sizeof(double))
    cw.c = <double*>malloc(rows * c.k * sizeof(double))
    cw.q = <double*>malloc(c.k * c.k * sizeof(double))
    if cw.xb == NULL or cw.h == NULL or cw.c == NULL or cw.q == NULL:
        _committee_scratch_free(cw)
        return NULL
    return cw


cdef inline void _point_committee_record(CommitteeRecord* crec, double[:, :, ::1] um, double[:, ::1] a2,
                                         double* overlap, Py_ssize_t s, Py_ssize_t n_record,
                                         Py_ssize_t k) noexcept nogil:
    crec.unit_magnetization = &um[s, 0, 0]
    crec.a_square = &a2[s, 0]
    crec.overlap = overlap + s * n_record * k * k if overlap != NULL else NULL


def run_seeds(loss, const floating[:, ::1] X_shared, const double[::1] y_shared,
              const double[::1] w0_shared, const floating[:, ::1] Xt_shared,
              const double[::1] yt_shared, *, bint shared_data, Py_ssize_t m, Py_ssize_t n,
              Py_ssize_t m_test, str problem, str teacher, double onset, double delta, str selection, double ell,
              double p_on, double p_off, str init, double m0, double init_variance, str labels="teacher",
              dict params, const int64_t[::1] record_steps, const int64_t[::1] temp_starts,
              const double[::1] temp_values, list data_rngs, list init_rngs, list dynamics_rngs,
              int64_t[::1] progress, int[::1] abort, n_threads=None, w_init=None, bint save_weights=False,
              Py_ssize_t hidden=1, Py_ssize_t block=0, bint record_overlap=False):
    """Run ``len(init_rngs)`` seeds in parallel; returns a dict of record arrays.

    ``loss``: a ``"prcy.Loss.v2"`` capsule, or a ``"prcy.CommitteeLoss.v1"`` capsule for a student of
    ``hidden`` units (``block``: rows per block of its BLAS path, 0 for blocks of eight rows; each
    unit drawn as ``init`` says, one after the other from the initialization stream; the output adds
    ``unit_magnetization`` (``n_seeds x n_record x hidden``), ``a_square`` and, if ``record_overlap``,
    ``overlap`` (``n_seeds x n_record x hidden x hidden``)). ``X_shared`` etc.: the data (inputs, labels, teacher)
    used by every seed when ``shared_data`` (else empty arrays of the storage dtype; each seed then
    draws its own data from ``data_rngs[s]`` for ``problem``, ``teacher``, ``onset``, ``delta``: see
    ``prcy.kernels.problems``). ``init``: ``"warm"`` (``m0``), ``"random"`` (``init_variance``
    with the ridge) or ``"given"`` (row ``s`` of ``w_init``, ``n_seeds x n``, starts seed ``s``). ``params``: ``eta, grad_scale, ridge, sphere, n_steps, check_every, tol,
    early_stop, grad_tol, optimizer, momentum, beta1, beta2, adam_eps, project_velocity``. The
    ``*_rngs`` are ``numpy.random.BitGenerator`` objects, one per seed and stream.
    ``progress[s]`` holds the step seed ``s`` is at; ``abort[0] = 1`` stops all seeds. ``save_weights``:
    also return ``weights`` (``n_seeds x n_record x n``), ``w`` at every recording step.
    This is the kernel boundary: ``prcy.simulate`` validates every argument before calling it.
    """
    cdef Dynamics d
    _fill_dynamics(&d, loss, m, n, m_test, params, record_steps, temp_starts, temp_values, abort)
    cdef Py_ssize_t n_seeds = len(init_rngs), n_record = record_steps.shape[0]
    cdef Committee comm
    cdef const Committee* c = NULL
    if d.loss == NULL:
        _committee_setup(&comm, loss, hidden, block)
        c = &comm
        if save_weights or INIT_KINDS[init] == INIT_GIVEN:
            raise ValueError("run_seeds: a committee takes neither save_weights nor given initial weights")
    elif hidden != 1:
        raise ValueError(f"hidden: {hidden!r} needs a committee loss (a 'prcy.CommitteeLoss.v1' capsule)")
    cdef Py_ssize_t units = c.k if c != NULL else 1
    if not (len(dynamics_rngs) == n_seeds and (shared_data or len(data_rngs) == n_seeds)):
        raise ValueError("run_seeds: one RNG per seed and stream is needed")
    if shared_data and not (X_shared.shape[0] == m and X_shared.shape[1] == n and Xt_shared.shape[0] == m_test):
        raise ValueError("run_seeds: shared data has the wrong shape")
    cdef int kind = SELECTION[selection]
    if kind == SELECT_REPLAY:
        raise ValueError("run_seeds: use run_trajectory to replay a selection")
    cdef Problem prob
    problem_setup(&prob, problem, teacher, onset, delta)
    cdef int init_kind = INIT_KINDS[init]
    cdef int label_kind = LABEL_KINDS[labels]
    cdef const double[:, ::1] given
    cdef const double* given_ptr = NULL
    if init_kind == INIT_GIVEN:
        given = np.ascontiguousarray(w_init, dtype=np.float64)
        if given.shape[0] != n_seeds or given.shape[1] != n:
            raise ValueError(f"w_init: shape ({given.shape[0]}, {given.shape[1]}) but ({n_seeds}, {n}) needed")
        given_ptr = &given[0, 0]
    out = _record_arrays(n_seeds, n_record, units if c != NULL else 0, record_overlap)
    cdef double[:, :, ::1] o_um
    cdef double[:, ::1] o_a2
    cdef double[:, :, :, ::1] o_ov
    cdef double* overlap_ptr = NULL
    if c != NULL:
        o_um = out["unit_magnetization"]
        o_a2 = out["a_square"]
        if "overlap" in out:
            o_ov = out["overlap"]
            overlap_ptr = &o_ov[0, 0, 0, 0]
    cdef double[:, ::1] o_mag = out["magnetization"], o_norm = out["norm"]
    cdef double[:, ::1] o_loss = out["train_loss"], o_err = out["train_error"], o_test = out["test_error"]
    cdef int64_t[::1] o_solved = out["solved_step"], o_stop = out["stop_step"]
    cdef signed char[::1] o_reason = out["stop_reason"]
    cdef double* weights_ptr = NULL
    cdef double[:, :, ::1] o_weights
    if save_weights:
        out["weights"] = np.full((n_seeds, n_record, n), np.nan)
        o_weights = out["weights"]
        weights_ptr = &o_weights[0, 0, 0]
    rng_arrays = [np.array([<uintptr_t>_bitgen(g) for g in rngs] or [0], dtype=np.uintp)
                  for rngs in (data_rngs if not shared_data else init_rngs, init_rngs, dynamics_rngs)]
    cdef uintptr_t[::1] data_ptr = rng_arrays[0], init_ptr = rng_arrays[1], dyn_ptr = rng_arrays[2]
    cdef int threads = effective_n_threads(n_threads)
    cdef int alloc_failed = 0
    cdef int* failed = &alloc_failed
    cdef Py_ssize_t s
    # per-thread state lives behind pointers: Cython makes a variable thread-private only when it is
    # assigned as a whole inside the parallel block, never a struct whose fields are assigned
    cdef Switching* sw
    cdef Scratch* work
    cdef Record* rec
    cdef CommitteeRecord* crec
    cdef CommitteeScratch* cw
    cdef Py_ssize_t u
    cdef floating* X
    cdef floating* Xt
    cdef double* y
    cdef double* yt
    cdef double* w0
    cdef double* w
    cdef size_t fsize = sizeof(floating)
    cdef Py_ssize_t n_state = d.opt.n_state
    # one BLAS thread per seed; as a context, so that this thread gives up its control of OpenBLAS's
    # limits on leaving (threadpoolctl lets one thread at a time set them)
    with threadpool_limits(1, user_api="blas") if c != NULL else nullcontext():
        with nogil, parallel(num_threads=threads):
            if shared_data:
                X = <floating*>&X_shared[0, 0] if m else NULL
                Xt = <floating*>&Xt_shared[0, 0] if m_test else NULL
                y = <double*>&y_shared[0] if m else NULL
                yt = <double*>&yt_shared[0] if m_test else NULL
                w0 = <double*>&w0_shared[0]
            else:
                X = <floating*>malloc(m * n * fsize + 1)
                Xt = <floating*>malloc(m_test * n * fsize + 1)
                y = <double*>malloc(m * sizeof(double) + 1)
                yt = <double*>malloc(m_test * sizeof(double) + 1)
                w0 = <double*>malloc(n * sizeof(double))
            w = <double*>malloc(units * n * sizeof(double))
            sw = <Switching*>malloc(sizeof(Switching))
            rec = <Record*>malloc(sizeof(Record))
            crec = <CommitteeRecord*>malloc(sizeof(CommitteeRecord))
            cw = _committee_scratch(c, n) if c != NULL else NULL
            work = <Scratch*>malloc(sizeof(Scratch))
            if work != NULL:
                work.g = <double*>malloc(units * n * sizeof(double))
                work.opt_state = <double*>malloc(n_state * units * n * sizeof(double) + 1)
                work.active = <Py_ssize_t*>malloc(m * sizeof(Py_ssize_t) + 1)
                work.state = <unsigned char*>malloc(m + 1)
                work.next_flip = <int64_t*>malloc(m * sizeof(int64_t) + 1)
            if (w == NULL or sw == NULL or rec == NULL or crec == NULL or (c != NULL and cw == NULL)
                    or work == NULL or work.g == NULL
                    or work.opt_state == NULL or work.active == NULL or work.state == NULL or work.next_flip == NULL
                    or (not shared_data and (X == NULL or Xt == NULL or y == NULL or yt == NULL
                                             or w0 == NULL))):
                failed[0] = 1
            for s in prange(n_seeds, schedule="dynamic"):
                if failed[0]:
                    continue
                if not shared_data:
                    generate_data(<bitgen_t*>data_ptr[s], &prob, m, n, m_test, w0, X, y, Xt, yt, label_kind)
                if init_kind == INIT_GIVEN:
                    memcpy(w, given_ptr + s * n, n * sizeof(double))
                else:
                    for u in range(units):
                        init_weights(<bitgen_t*>init_ptr[s], w0, n, init_kind, m0, init_variance, d.sphere, w + u * n)
                switching_init(sw, kind, m, ell, p_on, p_off, work.state, work.next_flip, NULL)
                _point_record(rec, o_mag, o_norm, o_loss, o_err, o_test, s)
                rec.weights = weights_ptr + s * n_record * n if weights_ptr != NULL else NULL
                if c == NULL:
                    trajectory(&d, X, y, Xt, yt, w0, w, sw, work, <bitgen_t*>dyn_ptr[s], NULL, rec,
                               &progress[s])
                else:
                    _point_committee_record(crec, o_um, o_a2, overlap_ptr, s, n_record, units)
                    committee_trajectory(&d, c, X, y, Xt, yt, w0, w, sw, work, cw, <bitgen_t*>dyn_ptr[s], NULL,
                                         rec, crec, &progress[s])
                o_solved[s] = rec.solved_step
                o_stop[s] = rec.stop_step
                o_reason[s] = rec.stop_reason
            if not shared_data:
                free(X)
                free(Xt)
                free(y)
                free(yt)
                free(w0)
            free(w)
            if work != NULL:
                free(work.g)
                free(work.opt_state)
                free(work.active)
                free(work.state)
                free(work.next_flip)
            free(work)
            free(sw)
            free(rec)
            free(crec)
            _committee_scratch_free(cw)
    if alloc_failed:
        raise MemoryError(f"run_seeds: could not allocate the per-thread buffers (m={m}, n={n}, "
                          f"{threads} threads)")
    return out


def run_trajectory(loss, const floating[:, ::1] X, const double[::1] y, const double[::1] w0,
                   const double[::1] w_init, const floating[:, ::1] Xt, const double[::1] yt, *,
                   str selection, double ell=1.0, double p_on=1.0, double p_off=0.0, dict params,
                   const int64_t[::1] record_steps, const int64_t[::1] temp_starts,
                   const double[::1] temp_values, rng=None, selection_replay=None, noise_replay=None,
                   Py_ssize_t block=0, bint record_overlap=True):
    """One seed on given data (inputs ``X``, labels ``y``, teacher ``w0``; held-out ``Xt``, ``yt``),
    from given initial weights: the Python twin of ``trajectory``, and of ``committee_trajectory``
    when ``loss`` is a committee capsule (``w_init`` then ``k x n``, flattened row by row; ``block`` as
    in ``run_seeds``; ``noise_replay`` ``(n_steps, k n)``; the overlap matrix if ``record_overlap``).

    ``selection`` is ``"full"``, ``"bernoulli"``, ``"persistent"`` (drawn from ``rng``) or
    ``"replay"`` (``selection_replay``: an ``(n_steps, m)`` 0/1 uint8 matrix, row ``k`` used at step
    ``k``). ``noise_replay``: ``(n_steps, n)`` standard normals used instead of the Langevin draws.
    Returns the record arrays (shape ``(1, n_record)``) and the final weights.
    """
    cdef Py_ssize_t m = X.shape[0], n = X.shape[1], m_test = Xt.shape[0]
    cdef int abort_flag = 0
    cdef int[::1] abort = <int[:1]>&abort_flag
    cdef Dynamics d
    _fill_dynamics(&d, loss, m, n, m_test, params, record_steps, temp_starts, temp_values, abort)
    cdef Py_ssize_t units = w_init.shape[0] // n if d.loss == NULL else 1
    cdef Committee comm
    cdef CommitteeScratch* cw = NULL
    cdef CommitteeRecord crec
    if d.loss == NULL:
        if w_init.shape[0] != units * n or units < 1:
            raise ValueError(f"w_init: {w_init.shape[0]} entries is not k x n = k x {n}")
        _committee_setup(&comm, loss, units, block)
    cdef int kind = SELECTION[selection]
    cdef const unsigned char[:, ::1] sel
    cdef const double[:, ::1] noise
    cdef const unsigned char* sel_ptr = NULL
    cdef const double* noise_ptr = NULL
    if kind == SELECT_REPLAY:
        sel = np.ascontiguousarray(selection_replay, dtype=np.uint8)
        if sel.shape[0] < d.n_steps or sel.shape[1] != m:
            raise ValueError(f"selection_replay: shape ({sel.shape[0]}, {sel.shape[1]}) but ({d.n_steps}, {m}) needed")
        sel_ptr = &sel[0, 0]
    if noise_replay is not None:
        noise = np.ascontiguousarray(noise_replay, dtype=np.float64)
        if noise.shape[0] < d.n_steps or noise.shape[1] != units * n:
            raise ValueError(f"noise_replay: shape ({noise.shape[0]}, {noise.shape[1]}) but ({d.n_steps}, "
                             f"{units * n}) needed")
        noise_ptr = &noise[0, 0]
    if kind in (SELECT_BERNOULLI, SELECT_PERSISTENT) or (noise_ptr == NULL and np.any(np.asarray(temp_values) > 0)):
        if rng is None:
            raise ValueError("rng: a numpy BitGenerator is needed to draw the selection or the noise")
    cdef bitgen_t* gen = _bitgen(rng) if rng is not None else NULL
    w = np.array(w_init, dtype=np.float64)
    cdef double[::1] wv = w
    g = np.zeros(units * n)
    opt_state = np.zeros(d.opt.n_state * units * n + 1)
    active = np.zeros(max(m, 1), dtype=np.intp)
    state = np.zeros(max(m, 1), dtype=np.uint8)
    next_flip = np.zeros(max(m, 1), dtype=np.int64)
    cdef double[::1] gv = g
    cdef double[::1] ov = opt_state
    cdef Py_ssize_t[::1] av = active
    cdef unsigned char[::1] sv = state
    cdef int64_t[::1] nv = next_flip
    cdef Scratch work
    work.g = &gv[0]
    work.opt_state = &ov[0]
    work.active = &av[0]
    work.state = &sv[0]
    work.next_flip = &nv[0]
    cdef Switching sw
    switching_init(&sw, kind, m, ell, p_on, p_off, work.state, work.next_flip, sel_ptr)
    out = _record_arrays(1, d.n_record, units if d.loss == NULL else 0, record_overlap)
    cdef Record rec
    _point_record(&rec, out["magnetization"], out["norm"], out["train_loss"], out["train_error"],
                  out["test_error"], 0)
    rec.weights = NULL
    cdef double[:, :, :, ::1] o_ov
    cdef int64_t progress = 0
    if d.loss != NULL:
        with nogil:
            trajectory(&d, &X[0, 0], &y[0], &Xt[0, 0] if m_test else NULL, &yt[0] if m_test else NULL,
                       &w0[0], &wv[0], &sw, &work, gen, noise_ptr, &rec, &progress)
    else:
        if "overlap" in out:
            o_ov = out["overlap"]
        _point_committee_record(&crec, out["unit_magnetization"], out["a_square"],
                                &o_ov[0, 0, 0, 0] if "overlap" in out else NULL, 0, d.n_record, units)
        cw = _committee_scratch(&comm, n)
        if cw == NULL:
            raise MemoryError(f"run_trajectory: could not allocate a committee's scratch (k={units}, n={n})")
        try:
            with threadpool_limits(1, user_api="blas"):
                with nogil:
                    committee_trajectory(&d, &comm, &X[0, 0], &y[0], &Xt[0, 0] if m_test else NULL,
                                         &yt[0] if m_test else NULL, &w0[0], &wv[0], &sw, &work, cw, gen,
                                         noise_ptr, &rec, &crec, &progress)
        finally:
            _committee_scratch_free(cw)
        w = w.reshape(units, n)
    out["solved_step"][0] = rec.solved_step
    out["stop_step"][0] = rec.stop_step
    out["stop_reason"][0] = rec.stop_reason
    out["w"] = w
    return out


# the quadratic form (1/2) c h^2 as a Loss: gradient_pass with the weights c as "labels" gives
# sum_mu c_mu (x_mu.v) x_mu / n, the product of the weighted Gram matrix with v
cdef double _quadratic_v(double h, double c, const double* theta) noexcept nogil:
    return 0.5 * c * h * h

cdef double _quadratic_dv(double h, double c, const double* theta) noexcept nogil:
    return c * h

cdef double _quadratic_d2v(double h, double c, const double* theta) noexcept nogil:
    return c

cdef double _quadratic_err(double h, double c, const double* theta) noexcept nogil:
    return 0.0


def weighted_gram_product(const floating[:, ::1] X, const double[::1] c, const double[::1] v):
    """``sum_mu c_mu (x_mu.v) x_mu / n`` over the rows of ``X`` (``m x n``): the product of the matrix
    ``X^T diag(c) X / n`` with ``v``, by ``gradient_pass`` (each row read once: the field and the
    product of a block of rows share it). It is the spectral matrix of ``prcy.spectral`` (``c = T(y)``)
    times ``M / n``."""
    cdef Py_ssize_t m = X.shape[0], n = X.shape[1]
    if c.shape[0] != m or v.shape[0] != n:
        raise ValueError(f"weighted_gram_product: X is {m} x {n}, c has {c.shape[0]} and v {v.shape[0]} entries")
    cdef Loss quad
    loss_init(&quad, _quadratic_v, _quadratic_dv, _quadratic_d2v, _quadratic_err)
    rows = np.arange(m, dtype=np.intp)
    out = np.empty(n)
    cdef const Py_ssize_t[::1] r = rows
    cdef double[::1] o = out
    with nogil:
        gradient_pass(&X[0, 0], n, &r[0], m, &c[0], &v[0], &quad, 1.0, &o[0])
    return out


def generate(bitgenerator, Py_ssize_t m, Py_ssize_t n, Py_ssize_t m_test=0, dtype=np.float64,
             str labels="teacher", str problem="phase-retrieval", str teacher="gaussian", double onset=0.0,
             double delta=1.0):
    """The data draw of one seed: ``(w0, X, y, Xt, yt)`` (teacher or cluster mean, inputs, labels,
    held-out inputs and labels), exactly as ``run_seeds`` draws it (``delta``: a mixture's only)."""
    w0 = np.empty(n)
    X = np.empty((m, n), dtype=dtype)
    Xt = np.empty((m_test, n), dtype=dtype)
    y = np.empty(m)
    yt = np.empty(m_test)
    _generate(bitgenerator, X, Xt, w0, y, yt, LABEL_KINDS[labels], problem, teacher, onset, delta)
    return w0, X, y, Xt, yt


def _generate(bitgenerator, floating[:, ::1] X, floating[:, ::1] Xt, double[::1] w0, double[::1] y,
              double[::1] yt, int label_kind, str problem, str teacher, double onset, double delta):
    cdef Problem prob
    problem_setup(&prob, problem, teacher, onset, delta)
    cdef bitgen_t* gen = _bitgen(bitgenerator)
    cdef Py_ssize_t m = X.shape[0], n = X.shape[1], m_test = Xt.shape[0]
    with bitgenerator.lock, nogil:
        generate_data(gen, &prob, m, n, m_test, &w0[0], &X[0, 0] if m else NULL, &y[0] if m else NULL,
                      &Xt[0, 0] if m_test else NULL, &yt[0] if m_test else NULL, label_kind)


def initial_weights(bitgenerator, const double[::1] w0, double m0, bint sphere, str init="warm",
                    double init_variance=1.0):
    """The initialization draw of one seed, exactly as ``run_seeds`` draws it."""
    w = np.empty(w0.shape[0])
    cdef double[::1] wv = w
    cdef bitgen_t* gen = _bitgen(bitgenerator)
    cdef int kind = INIT_KINDS[init]
    with bitgenerator.lock, nogil:
        init_weights(gen, &w0[0], w0.shape[0], kind, m0, init_variance, sphere, &wv[0])
    return w
