"""Kernels of the dynamical mean-field theory (DMFT): the effective single-sample process of
Mignacco et al. 2021 (section 4, appendix A) and of the Gaussian mixtures of Mignacco et al. 2020
(eqs 15-20) sampled on a time grid, and the estimators of its kernels.

A sample's loss is ``v(a h~; y)`` with ``h~ = h + h0 m``: the problem supplies the amplitude ``a``, the
quenched variable ``h0`` and the label ``y`` (``march``'s ``amplitude``, ``h0``, ``y``). Teacher-student
problems: ``a = 1``, ``h0`` the teacher's field, ``y`` its label. A Gaussian mixture: ``a = sqrt(Delta)``,
``h0 = c/sqrt(Delta) + h0'`` (``c`` the cluster, ``h0' ~ N(0, 1)``), ``y = y(c)``, so that the loss's
argument ``a h~ = sqrt(Delta) h + m (c + sqrt(Delta) h0')`` is the ``r`` of 2020's eq 15. With ``a = 1``
the factors ``a`` are exact multiplications by 1: the 2021 process, bitwise.

Discretization (explicit Euler, ``t_k = k dt``; ``g = c s a dv(a h~; y)`` with ``c = 1/ell``, or 1
without rescaling; ``D = s a^2 d2v(a h~; y)``: ``g/c`` and ``D`` are the first and second derivatives
of the sample's loss in ``h``)::

    h_{k+1} = h_k + dt [ -nut_k h_k - g_k + dt sum_{j<k} M_R(k, j) h_j + chi_k ],   nut = nu_hat + delta_nu
    chi Gaussian, covariance M_C(k, j) + (2 T_k / dt) delta_kj:  chi = L z,  L L^T that covariance
    m_{k+1} = m_k + dt (-nu_hat_k m_k - mu_k)                                          (eq 14; 2020: eq 18)
    M_C(k, j) = alpha <g_k g_j>,  delta_nu_k = alpha c <D_k>,  mu_k = alpha <g_k h0>,
    nu_hat_k = -alpha <g_k h~_k> + T_k (A.19)  or A.29 (from C, R, the kernels)  or lambda (ridge)
    T(j+1, j) = D_j,  T(k+1, j) = T(k, j) (1 - dt nut_k - dt c D_k) + dt^2 sum_{j<i<k} M_R(k, i) T(i, j)
    M_R(k, j) = alpha c^2 <D_k T(k, j)>
    train_loss_k = <v(a h~_k; y)>,  train_error_k = <err(a h~_k; y)>       (per sample; 2020: eqs 21-22)

On a mixture (``c = 1``: 2020's eq 7 has no ``1/ell``) ``delta_nu = alpha Delta <s Lambda''>`` is 2020's
``hat_lambda``, ``mu = alpha <s (c + sqrt(Delta) h0') Lambda'>`` its ``mu``, ``M_C`` its ``M_C``, and
``M_R`` its ``M_R`` with ``delta / delta Y(t')`` the response to a shift of the loss's argument at
``t'`` (docs/dmft.md, "The mixture DMFT"); ``march``'s ``C`` and ``R`` (A.28) solve its eq 20.

For ridge this is exactly the ``N -> infinity`` limit of the Euler-discretized algorithm with
``lr = dt``; on the sphere the projection is replaced by ``nu_hat`` (an O(dt) difference), or, with
``march(..., project=True)``, is made part of the discrete process exactly (see ``march``).

Two passes per fixed-point iteration, both causal and self-consistent:

- ``march``: every sample advanced together, one grid step at a time. At step ``k`` the samples'
  ``h_k`` give ``M_C(k, <=k)``, ``delta_nu_k``, ``mu_k``, ``nu_hat_k``, the next row of the Cholesky
  factor of the noise covariance and ``m_{k+1}``, before any sample takes step ``k+1``: everything but
  ``M_R`` is at its fixed point after one march (``M_R`` is taken from the previous iteration).
- ``response``: ``M_R`` from the paths of the march, one column ``t' = t_j`` at a time in decreasing
  ``j``: the recursion for ``T(., j)`` only needs ``M_R(k, i)`` with ``i > j``, already final, so this
  pass is self-consistent too; the fixed-point iteration is left with the coupling of ``M_R`` to the
  paths through the memory term.

Heavy-tailed responses (docs/dmft.md): ``response(..., kick=...)`` replaces ``T`` by the response of
each sample to kicks of ``h`` by ``+-kick`` marched with the full loss (``_kick_panel``, or
``_kick_column`` as the recursion), which saturates where the linear response of a sample near a
hilltop of the loss (``d2v < 0``) grows without bound.

Cost per iteration (K grid points, S samples): the march O(K^2 S) (memory term, noise, ``M_C`` row, per step)
plus O(K^3) for ``L``, ``C`` and ``R``; the response ``K^3 S / 6`` multiply-adds. The march's noise and
``M_C`` row need the factor's and ``g``'s newest row, so they read the samples' whole history at every step;
its memory term from before the current block of ``DMFT_MARCH_BLOCK`` steps is one matrix product per block
(``_sample_pass``), which reads ``h``'s history once per block. For a frozen column ``j`` the recursions of
all samples are one lower-triangular system whose off-diagonal part ``dt^2 M_R`` is shared by the samples, so
the response pass (``method="blocked"``, ``_panel_column``) takes the samples in panels of ``DMFT_PANEL`` and
the rows in blocks of ``DMFT_ROWS``: the memory term of a row block from the rows before it is matrix products
(``dgemm`` of ``scipy.linalg.cython_blas``, one BLAS thread per worker thread), and only the triangles inside
the row blocks (a fraction ``~1.5 DMFT_ROWS / K`` of the work) run as the recursion. Below its diagonal
``M_R`` is smooth where the paths are (GD on phase retrieval: a block of 48 columns has numerical rank about
13 at ``K = 401`` and 11 at ``K = 1001`` at ``rank_tol = 1e-13``, 9 at 1e-8; the noise of Langevin and SGD
leaves it full rank): each column block of ``DMFT_ROWS``, once final, is replaced below its rows by ``C V^T``
with ``V`` its right singular vectors above ``rank_tol`` times the largest (``_compress``: an SVD of ``K x
DMFT_ROWS``), and each panel keeps its history's rows of that block in that basis (``Y = V^T T``,
``_project``), so the memory term from the compressed blocks is ``C Y``: the product's inner size drops from
the block's ``DMFT_ROWS`` to its rank. The columns from ``j + 1`` to the end of their block (not all of that
block is final yet) are multiplied as they are; to make them fewer the blocks are kept on ``DMFT_GRIDS = 2``
grids offset by half a block, and column ``j`` takes the grid on which a block starts first after ``j``
(``_nearest_grid``; its row blocks follow that grid), which halves those columns on average. A block whose
rank saves nothing (more than half kept), or that holds a value that is not finite, is kept as it is (``V =
I``). The blocks ``first .. g - 1`` below row block ``g`` together have about the rank of one of them, so
their product ``sum_b C_b Y_b`` (inner size the sum of their ranks) is replaced by one window per pair
``(first, g)`` (``_windows``): a basis nested in the window before it and block ``g - 1``'s, in which the
panel's coordinates follow from the window before's and that block's ``Y`` by a small product
(``_window_product``), so that a row block far from ``j`` costs about what the next one does. With the default
``rank_tol = 1e-13`` the pass's ``M_R`` moves by 1e-17 to 2e-16 of its largest entry; the solver passes
``min(tol, 1e-8)`` (``prcy.dmft.RANK_TOL_MAX``), at which it moves by about 1e-11 and the pass costs about
half as much on the later iterations of a GD solve, whose ``M_R`` is less smooth than a first guess's
(docs/dmft.md, "Cost"). A panel of consecutive samples (a full batch) loads its rows of ``D`` directly,
``PREFETCH_ROWS`` rows ahead, instead of gathering them. A sample with ``D(t_j) = 0`` (not selected at
``t_j``) contributes 0 to column ``j`` (its ``T(., j)`` is 0; the kicked contribution carries the factor
``D(t_j)``), so the panels of column ``j`` gather only the samples with ``D(t_j) != 0``: with mini-batches of
a fraction ``ell`` the pass does about ``ell`` of the work. Given ``M_R`` the memory term of a kicked
deviation is linear in its past too, so the kicked response is blocked the same way (``_kick_panel``: both
deviations of a panel's samples in one matrix product per row block; the loss and the clamping row by row
inside the block). The plain recursion (``method="recursion"``, ``_response_column`` and ``_kick_column``: 16
samples at once, each ``M_R(k, i)`` loaded once feeds a 16-wide FMA) is the reference. SciPy's OpenBLAS
(pthreads) would start its own threads inside a ``dgemm`` call of this size; ``response`` limits it to one
thread (``threadpoolctl``) while the pass runs. Scratch: ``(2 K + DMFT_ROWS + 2 WINDOW_RANK) x DMFT_PANEL``
doubles per thread (blocked, with ``Y`` and two windows' ``Y``; ``2 (K + DMFT_ROWS) x DMFT_PANEL`` kicked) and
``K x K`` for ``C`` per grid, a window's rows and ``E`` (at most ``(3 DMFT_ROWS) x WINDOW_RANK``) per pair of
blocks, ``K x 16`` per lane (recursion; twice that kicked); the paths ``h``, ``g``, ``D`` are ``3 K S``
doubles, and the kicked pass keeps ``a dv(a h~)`` (``K S``, ``_kick_base``).

Determinism: samples are cut in fixed chunks (``DMFT_CHUNK`` for the march, ``DMFT_PANEL`` of the
samples with ``D(t_j) != 0`` or ``DMFT_BLOCK`` for the response) and the panels and row blocks of a
column depend on the column only; partial sums are kept per chunk (march), per panel (blocked
response) or per lane of blocks (recursion, ``n_lanes`` lanes, block ``b`` in lane ``b mod
n_lanes``) and added in a fixed order, so results are bitwise the same for any number of threads.

Usable from Cython via ``cimport prcy.kernels.dmft`` (``noexcept nogil``; no errors are raised):

- ``cholesky_row(A, L, K, k, jitter) -> clipped``: row ``k`` of the lower Cholesky factor of the
  row-major ``K x K`` ``A + jitter I`` given rows ``< k``; a pivot that is not positive is set to 0
  with the column below it, and its magnitude returned (0 when nothing was clipped).
- ``evaluate_chunk(loss, h, h0, y, sel, n, m, c, g, d, sums)``: for ``n`` samples (amplitude ``a = 1``), ``g = c s dv(h~)``,
  ``d = s d2v(h~)`` and ``sums[SUM_D], sums[SUM_HT_DV], sums[SUM_H0_DV], sums[SUM_V] += sum d,
  sum s h~ dv, sum s h0 dv, sum v`` (``sel`` NULL: all selected; the ``SUM_*`` indices are the
  ``.pxd``'s enum, ``N_SUMS`` of them).
- ``response_column(D, S, c0, nb, K, j, nut, MR, dt, c, Tcol, acc)``: for samples ``c0 .. c0+nb-1``
  (``nb <= DMFT_BLOCK``) of the ``K x S`` row-major ``D``, propagate ``T(., j)`` and add
  ``sum_b D[k, b] T_b(k, j)`` to ``acc[k]``; ``Tcol`` is ``K x DMFT_BLOCK`` scratch.
"""
from libc.math cimport sqrt, isfinite, fabs
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memcpy, memset
from cython.parallel cimport prange, threadid
from scipy.linalg.cython_blas cimport dgemm
from scipy.linalg.cython_lapack cimport dgesvd
cimport cython

import numpy as np
from threadpoolctl import threadpool_limits

from prcy.kernels.losses cimport Loss, loss_fn, loss_from_capsule
from prcy.kernels.parallel cimport effective_n_threads

cdef extern from *:
    void __builtin_prefetch(const void* addr) noexcept nogil


cdef enum:
    PREFETCH_ROWS = 4    # the blocked pass asks for the rows of D this far ahead of its loads
    CACHE_LINE = 64      # bytes: empty_aligned's arrays (the march's paths, the pass's scratch) start on one
    DMFT_MARCH_BLOCK = 32    # steps of the march whose memory terms from their far past are one matrix product

cdef enum:               # the march's sample sums: evaluate_chunk's N_SUMS, then the training error
    SUM_ERR = N_SUMS     # sum err(a h~; y)
    N_MARCH_SUMS = N_SUMS + 1

BLOCK = DMFT_BLOCK
CHUNK = DMFT_CHUNK
PANEL = DMFT_PANEL
ROWS = DMFT_ROWS
MARCH_BLOCK = DMFT_MARCH_BLOCK
NU_FORMS = {"ridge": NU_RIDGE, "A.19": NU_A19, "A.29": NU_A29}
RESPONSE_METHODS = ("blocked", "recursion")
RANK_TOL = 1e-13         # response: singular values of a column block of M_R kept above this times its largest


cdef double cholesky_row(const double* A, double* L, Py_ssize_t K, Py_ssize_t k, double jitter) noexcept nogil:
    cdef Py_ssize_t j, p
    cdef double s, d
    for j in range(k + 1):
        s = A[k * K + j]
        for p in range(j):
            s = s - L[k * K + p] * L[j * K + p]
        if j < k:
            d = L[j * K + j]
            L[k * K + j] = s / d if d > 0 else 0.0
        else:
            s = s + jitter
            if s > 0:
                L[k * K + k] = sqrt(s)
                return 0.0
            L[k * K + k] = 0.0
            return -s
    return 0.0


cdef void evaluate_chunk(const Loss* loss, const double* h, const double* h0, const double* y,
                         const unsigned char* sel, Py_ssize_t n, double m, double grad_scale, double* g, double* d,
                         double* sums) noexcept nogil:
    _evaluate(loss, h, h0, y, sel, n, m, 1.0, grad_scale, g, d, sums, NULL)


cdef inline void _evaluate(const Loss* loss, const double* h, const double* h0, const double* y,
                           const unsigned char* sel, Py_ssize_t n, double m, double a, double grad_scale,
                           double* g, double* d, double* sums, double* err) noexcept nogil:
    """``evaluate_chunk`` with the loss's argument ``a h~`` (the amplitude ``a``: a sample's loss is
    ``v(a h~; y)``, whose derivatives in ``h`` are ``a dv`` and ``a^2 d2v``); ``err`` (or NULL):
    ``err[0] += sum err(a h~; y)``, the samples' training error."""
    cdef Py_ssize_t i
    cdef double ht, r, dv, s
    cdef loss_fn f_v = loss.v, f_dv = loss.dv, f_d2v = loss.d2v, f_err = loss.err
    for i in range(n):
        ht = h[i] + h0[i] * m
        r = a * ht
        s = 1.0 if sel == NULL else <double>sel[i]
        dv = s * (a * f_dv(r, y[i], loss.theta))
        g[i] = grad_scale * dv
        d[i] = s * (a * a * f_d2v(r, y[i], loss.theta))
        sums[SUM_D] += d[i]
        sums[SUM_HT_DV] += ht * dv
        sums[SUM_H0_DV] += h0[i] * dv
        sums[SUM_V] += f_v(r, y[i], loss.theta)
        if err != NULL:
            err[0] += f_err(r, y[i], loss.theta)


cdef inline void _chunk_moments(const Loss* lp, const double* H, const double* h0, const double* y,
                                const unsigned char* sel,
                                Py_ssize_t S, Py_ssize_t k, Py_ssize_t c0, Py_ssize_t n, double m, double a, double c,
                                double* G, double* D, double* pc) noexcept nogil:
    """Grid step ``k``, samples ``c0 .. c0+n-1`` of the ``K x S`` rows ``H`` (``h``, with ``h~ = h + h0 m``),
    ``sel``, ``G``, ``D``: fill ``G``, ``D`` and the chunk's partial sums ``pc[:N_MARCH_SUMS]`` (``_evaluate``
    with the amplitude ``a``) and ``pc[N_MARCH_SUMS + j] = sum G_k G_j`` for ``j <= k``."""
    cdef Py_ssize_t j, i
    cdef double x
    cdef const double* gk = G + k * S + c0
    cdef const double* gj
    memset(pc, 0, (N_MARCH_SUMS + k + 1) * sizeof(double))
    _evaluate(lp, H + k * S + c0, h0 + c0, y + c0, NULL if sel == NULL else sel + k * S + c0, n, m, a, c,
              G + k * S + c0, D + k * S + c0, pc, pc + SUM_ERR)
    for j in range(k + 1):
        gj = G + j * S + c0
        x = 0.0
        for i in range(n):
            x = x + gk[i] * gj[i]
        pc[N_MARCH_SUMS + j] = x


cdef inline void _reduce_moments(const double* part, Py_ssize_t stride, Py_ssize_t n_chunks, Py_ssize_t k,
                                 Py_ssize_t K, double alpha, double inv_s, double* MC, double* sums) noexcept nogil:
    """Add the chunks' partial sums in chunk order (so the result does not depend on the thread count):
    ``sums[:N_MARCH_SUMS]``, and ``M_C(k, j) = M_C(j, k) = alpha <g_k g_j>`` for ``j <= k``."""
    cdef Py_ssize_t ch, j, a
    cdef double x
    for a in range(N_MARCH_SUMS):
        x = 0.0
        for ch in range(n_chunks):
            x = x + part[ch * stride + a]
        sums[a] = x
    for j in range(k + 1):
        x = 0.0
        for ch in range(n_chunks):
            x = x + part[ch * stride + N_MARCH_SUMS + j]
        MC[k * K + j] = alpha * x * inv_s
        MC[j * K + k] = MC[k * K + j]


cdef void response_column(const double* D, Py_ssize_t S, Py_ssize_t c0, Py_ssize_t nb, Py_ssize_t K,
                          Py_ssize_t j, const double* nut, const double* MR, double dt, double grad_scale,
                          double* Tcol, double* acc) noexcept nogil:
    _response_column(D, S, c0, nb, K, j, nut, MR, dt, grad_scale, Tcol, acc, NULL, NULL)


cdef inline void _contributions(const double* x, Py_ssize_t nb, Py_ssize_t k, Py_ssize_t K, double* acc,
                                double* stats, double* rowabs) noexcept nogil:
    """Add a block's contributions ``x_b`` (``DMFT_BLOCK`` of them, zero beyond ``nb``) to entry ``k``
    of a column: ``acc[k] += sum x_b``; with ``stats`` (``2 x K``, or NULL) also ``sum |x_b|``
    (row 0) and ``sum x_b^2`` (row 1), and each ``|x_b|`` to ``rowabs[k, b]`` (the block's own
    ``K x DMFT_BLOCK`` accumulator): the tail diagnostics of ``M_R``."""
    cdef Py_ssize_t b
    cdef double tot = 0.0, ta = 0.0, tq = 0.0, a
    for b in range(DMFT_BLOCK):
        tot += x[b]
    acc[k] += tot
    if stats != NULL:
        for b in range(nb):
            a = fabs(x[b])
            ta = ta + a
            tq = tq + a * a
            rowabs[k * DMFT_BLOCK + b] += a
        stats[k] += ta
        stats[K + k] += tq


cdef inline void _memory(const double* row, const double* T, Py_ssize_t j, Py_ssize_t k, double* mem) noexcept nogil:
    """``mem[b] = sum_{j<i<k} row[i] T[i, b]`` for the ``K x DMFT_BLOCK`` history ``T`` of a column:
    the memory term of the response recursions."""
    cdef Py_ssize_t i, b
    cdef double mr
    for b in range(DMFT_BLOCK):
        mem[b] = 0.0
    for i in range(j + 1, k):
        mr = row[i]
        for b in range(DMFT_BLOCK):
            mem[b] += mr * T[i * DMFT_BLOCK + b]


cdef inline void _response_column(const double* D, Py_ssize_t S, Py_ssize_t c0, Py_ssize_t nb, Py_ssize_t K,
                                  Py_ssize_t j, const double* nut, const double* MR, double dt, double grad_scale,
                                  double* Tcol, double* acc, double* stats, double* rowabs) noexcept nogil:
    """``response_column``, with the diagnostics of ``_contributions`` (``x_b = D[k, b] T_b(k, j)``)."""
    cdef Py_ssize_t k, b
    cdef double dt2 = dt * dt
    cdef double db[DMFT_BLOCK]
    cdef double xb[DMFT_BLOCK]
    cdef double mem[DMFT_BLOCK]
    for b in range(DMFT_BLOCK):
        Tcol[(j + 1) * DMFT_BLOCK + b] = D[j * S + c0 + b] if b < nb else 0.0
    for k in range(j + 1, K):
        for b in range(DMFT_BLOCK):
            db[b] = D[k * S + c0 + b] if b < nb else 0.0
        for b in range(DMFT_BLOCK):
            xb[b] = db[b] * Tcol[k * DMFT_BLOCK + b]
        _contributions(xb, nb, k, K, acc, stats, rowabs)
        if k == K - 1:
            break
        _memory(MR + k * K, Tcol, j, k, mem)
        for b in range(DMFT_BLOCK):
            Tcol[(k + 1) * DMFT_BLOCK + b] = (Tcol[k * DMFT_BLOCK + b] * (1.0 - dt * nut[k] - dt * grad_scale * db[b])
                                              + dt2 * mem[b])


cdef inline void _rows_product(const double* B, int width, int ld, const double* A, Py_ssize_t lda, Py_ssize_t c0,
                               Py_ssize_t c1, Py_ssize_t r0, Py_ssize_t r1, double beta, double* mem) noexcept nogil:
    """``mem = beta mem + A[r0:r1, c0:c1] B[c0:c1, :]`` (row-major ``A`` with leading dimension ``lda``,
    ``B`` and ``mem`` with ``width`` columns and leading dimension ``ld``, ``mem`` ``r1 - r0`` rows), one
    ``dgemm``; with ``c1 <= c0`` just ``beta mem`` (``beta`` is 0 or 1). The memory term of a row block:
    ``A = M_R``, ``B`` the history (``c0 = j + 1``), or ``A = C``, ``B = Y`` (``Compressed``); and the
    march's memory term from the far past (``_sample_pass``)."""
    cdef int n_r = <int>(r1 - r0), n_i = <int>(c1 - c0), ld_a = <int>lda
    cdef double one = 1.0
    cdef Py_ssize_t r
    cdef char* no_trans = b"N"
    if n_i > 0:
        # row-major mem = A[r0:r1, c0:c1] @ B[c0:c1]: column-major mem^T = B^T A^T
        dgemm(no_trans, no_trans, &width, &n_r, &n_i, &one, <double*>(B + c0 * ld), &ld,
              <double*>(A + r0 * lda + c0), &ld_a, &beta, mem, &ld)
    elif beta == 0.0:
        for r in range(n_r):
            memset(mem + r * ld, 0, width * sizeof(double))


cdef enum:
    DMFT_GRIDS = 2       # grids of column blocks, offset by DMFT_ROWS / DMFT_GRIDS (Compressed)
    COMPRESS_WORK = DMFT_ROWS + DMFT_ROWS * DMFT_ROWS    # _compress's scratch besides A^T (K DMFT_ROWS) and dgesvd's
    WINDOW_RANK = DMFT_ROWS // 2     # the most singular vectors a window keeps (_windows)
    WINDOW_COLS = 2 * DMFT_ROWS      # the most columns of a window's SVD: the window before it and a block
    WINDOW_WORK = WINDOW_COLS + WINDOW_COLS * WINDOW_COLS     # _windows: sv, U (besides B^T, dgesvd, 2 K x WINDOW_RANK)


cdef struct Compressed:
    # The final column blocks of M_R on one grid: block g holds the columns g DMFT_ROWS - shift ..
    # (g + 1) DMFT_ROWS - shift - 1 (cut at 0 and K), each kept below its own rows:
    # M_R[k, i] = sum_q C[k, off[g] + q] V[i, q] for k past the block, q < rank[g] (_compress).
    Py_ssize_t shift
    double* C               # K x K, row-major; columns off[g] .. off[g] + rank[g] - 1 hold block g
    double* V               # K x DMFT_ROWS, row-major: V[i, q], orthonormal columns per block
    Py_ssize_t* off         # per block; blocks are appended in decreasing g, so blocks g0 .. g1 are contiguous
    Py_ssize_t* rank
    unsigned char* exact    # per block: 1 when kept as it is (V = I, C = M_R's columns, Y = T's rows)
    Py_ssize_t used         # columns of C taken
    # The windows (_windows): for blocks first + 2 <= g, the columns of blocks first .. g - 1 below the
    # start of block g, in a basis nested in those of the window before it (first .. g - 2) and of
    # block g - 1. Window (first, g) is at [first * n_blocks + g]; wrank -1 when there is none.
    Py_ssize_t n_blocks
    Py_ssize_t* wrank
    double** window         # its rows of block g of W (rows x wrank, row-major), then E (n x wrank)


cdef Py_ssize_t _leading(double* buf, Py_ssize_t n, Py_ssize_t m, double tol, double* sv, double* U, double* lw,
                         int lwork) noexcept nogil:
    """The SVD of an ``m x n`` matrix ``A`` given as ``buf = A^T``, column-major ``n x m`` (destroyed):
    ``A``'s right singular vectors in the columns of ``U`` (``n x min(n, m)``), its singular values in
    ``sv``; returns how many of them are above ``tol`` times the largest, -1 when ``dgesvd`` fails."""
    cdef int n_i = <int>n, m_i = <int>m, one_i = 1, info = 0
    cdef double no_vt = 0.0
    cdef Py_ssize_t r = 0
    dgesvd(b"S", b"N", &n_i, &m_i, buf, &n_i, sv, U, &n_i, &no_vt, &one_i, lw, &lwork, &info)
    if info != 0:
        return -1
    while r < min(n, m) and sv[r] > tol * sv[0]:
        r = r + 1
    return r


cdef void _compress(const double* MR, Py_ssize_t K, Py_ssize_t g, double tol, Compressed* cm, double* work,
                    int lwork) noexcept nogil:
    """Compress column block ``g`` of ``M_R`` (final) below its own rows: the ``m x n`` block
    ``A = M_R[c1:K, c0:c1]`` is ``A V V^T`` up to its singular values ``<= tol sigma_1`` with ``V`` its
    leading right singular vectors (``dgesvd``), so ``C[:, off:off + r] = A V`` and ``V`` replace it. Kept as
    it is (exact, ``V = I``) when ``tol == 0``, when more than half the singular values are kept (no work
    saved), when ``A`` holds a value that is not finite, or when the SVD fails. ``work``:
    ``COMPRESS_WORK`` doubles (``A^T``, the singular values, ``U``) and ``lwork`` more for ``dgesvd``."""
    cdef Py_ssize_t c0 = max(g * DMFT_ROWS - cm.shift, 0), c1 = min((g + 1) * DMFT_ROWS - cm.shift, K)
    cdef Py_ssize_t n = c1 - c0, m = K - c1, i, r, q
    cdef int n_i = <int>n, m_i = <int>m, r_i, ld_k = <int>K, ld_v = DMFT_ROWS
    cdef double one = 1.0, zero = 0.0
    cdef char* no_trans = b"N"
    cdef double* buf = work                                  # A^T, column-major n x m
    cdef double* sv = work + DMFT_ROWS * K
    cdef double* U = sv + DMFT_ROWS
    cdef bint ok = tol > 0                                   # compressed: the SVD ran on finite values
    cm.off[g] = cm.used
    cm.exact[g] = 0
    if m == 0:                 # no rows below: never taken from the compressed form
        cm.rank[g] = 0
        return
    for r in range(m):
        for i in range(n):
            buf[r * n + i] = MR[(c1 + r) * K + c0 + i]
            ok = ok and isfinite(buf[r * n + i])
    r = _leading(buf, n, m, tol, sv, U, U + DMFT_ROWS * DMFT_ROWS, lwork) if ok else -1
    if r < 0 or 2 * r > n:
        cm.rank[g] = n
        cm.exact[g] = 1
        for r in range(m):
            for i in range(n):
                cm.C[(c1 + r) * K + cm.used + i] = MR[(c1 + r) * K + c0 + i]
        cm.used += n
        return
    cm.rank[g] = r
    for i in range(n):          # U's first r columns are V
        for q in range(r):
            cm.V[(c0 + i) * DMFT_ROWS + q] = U[q * n + i]
    if r > 0:
        # row-major C[c1:K, used:used + r] = A V: column-major C^T = V^T A^T
        r_i = <int>r
        dgemm(no_trans, no_trans, &r_i, &m_i, &n_i, &one, cm.V + c0 * DMFT_ROWS, &ld_v,
              <double*>(MR + c1 * K + c0), &ld_k, &zero, cm.C + c1 * K + cm.used, &ld_k)
    cm.used += r


cdef inline void _project(const Compressed* cm, Py_ssize_t g, const double* T, int width, double* Y) noexcept nogil:
    """``Y[off[g] .. off[g] + rank[g], :] = V_g^T T[c0:c1, :]`` for the rows ``c0 .. c1 - 1`` of block ``g``
    of a history ``T`` (``width`` columns): the block's part of the history in the basis of ``_compress``
    (its rows copied when the block is kept exact)."""
    cdef Py_ssize_t c0 = g * DMFT_ROWS - cm.shift, o = cm.off[g], i
    # a compressed block the walk takes has rows below it and starts after 0: all DMFT_ROWS of its rows
    cdef int n_i = DMFT_ROWS, r_i = <int>cm.rank[g], ld_v = DMFT_ROWS
    cdef double one = 1.0, zero = 0.0
    cdef char* no_trans = b"N"
    cdef char* trans = b"T"
    if cm.exact[g]:
        memcpy(Y + o * width, T + c0 * width, cm.rank[g] * width * sizeof(double))
    elif r_i > 0:
        # row-major Y[o:o + r] = V^T T[c0:c1]: column-major Y^T = T^T V
        dgemm(no_trans, trans, &width, &r_i, &n_i, &one, <double*>(T + c0 * width), &width,
              cm.V + c0 * DMFT_ROWS, &ld_v, &zero, Y + o * width, &width)


cdef void _windows(Compressed* cm, Py_ssize_t K, Py_ssize_t first, double tol, double* work,
                   int lwork) noexcept nogil:
    """The windows of column block ``first`` (just compressed by ``_compress``), for ``g = first + 2,
    first + 3, ...``: the columns of blocks ``first .. g - 1`` below the start ``g0`` of block ``g``,
    ``A_g = M_R[g0:K, cols]``. The window before, ``A_{g-1} = W_{g-1} U_{g-1}^T`` (block ``first``'s
    ``C V^T`` for ``g = first + 2``), and block ``b = g - 1``, ``C_b V_b^T``, give, on the rows from ``g0``,
    ``A_g = B diag(U_{g-1}, V_b)^T`` with ``B = [W_{g-1}, C_b]`` (``m x n``, ``n = r_{g-1} + r_b``); with
    ``B``'s right singular vectors ``E`` above ``tol`` times its largest singular value, ``A_g = W_g U_g^T``,
    ``W_g = B E`` and ``U_g = diag(U_{g-1}, V_b) E``: the history's coordinates in window ``g`` are
    ``Y_g = E^T [Y_{g-1}; Y_b]`` (``_window_product``), at ``r_g (r_{g-1} + r_b)`` per sample instead of
    a product over every block's ``Y``. Each window keeps its rows of block ``g`` of ``W_g``, and ``E``.
    The chain stops at a window that keeps more than ``WINDOW_RANK`` vectors, none, or that holds a value
    that is not finite (the blocks beyond it are taken block by block). ``work``: ``WINDOW_COLS x K``
    (``B^T``) + ``WINDOW_WORK`` + ``lwork`` (``dgesvd``'s) + ``2 K WINDOW_RANK`` (``W`` of the window
    before and of this one, rows indexed from 0) doubles."""
    cdef Py_ssize_t sh = cm.shift, nb = cm.n_blocks, g, g0, m, n, r, i, q, rp, rb, rw, rows
    cdef int m_i, rp_i, rb_i, rw_i, ld_k = <int>K, ld_w = WINDOW_RANK, ld_p
    cdef double one = 1.0, zero = 0.0
    cdef char* no_trans = b"N"
    cdef double* buf = work                                  # B^T, column-major n x m
    cdef double* sv = work + WINDOW_COLS * K
    cdef double* U = sv + WINDOW_COLS
    cdef double* lw = U + WINDOW_COLS * WINDOW_COLS
    cdef double* prev = lw + lwork                           # W of the window before (ld WINDOW_RANK)
    cdef double* cur = prev + K * WINDOW_RANK
    cdef double* swap
    cdef double* win
    cdef const double* P = cm.C + cm.off[first]             # W of the window before: block first's C, ld K
    cdef const double* Cb
    cdef bint ok
    ld_p = ld_k
    rp = cm.rank[first]
    for g in range(first + 2, nb):
        g0 = g * DMFT_ROWS - sh
        if g0 >= K:
            break
        m, rb = K - g0, cm.rank[g - 1]
        n = rp + rb
        if n == 0 or n > WINDOW_COLS:
            break
        Cb = cm.C + cm.off[g - 1]
        ok = True
        for r in range(m):
            for i in range(rp):
                buf[r * n + i] = P[(g0 + r) * ld_p + i]
                ok = ok and isfinite(buf[r * n + i])
            for i in range(rb):
                buf[r * n + rp + i] = Cb[(g0 + r) * K + i]
                ok = ok and isfinite(buf[r * n + rp + i])
        if not ok:
            break
        rw = _leading(buf, n, m, tol, sv, U, lw, lwork)
        if rw <= 0 or rw > WINDOW_RANK:
            break
        m_i = <int>m
        rows = min(DMFT_ROWS, m)
        win = <double*> malloc((rows + n) * rw * sizeof(double))
        if win == NULL:
            break
        for i in range(n):          # U's first rw columns are E
            for q in range(rw):
                win[(rows + i) * rw + q] = U[q * n + i]
        # row-major W_g = cur[g0:K] = [P, C_b][g0:K] E: column-major cur^T = E_1^T P^T + E_2^T C_b^T
        rp_i, rb_i, rw_i = <int>rp, <int>rb, <int>rw
        dgemm(no_trans, no_trans, &rw_i, &m_i, &rp_i, &one, win + rows * rw, &rw_i, <double*>(P + g0 * ld_p), &ld_p,
              &zero, cur + g0 * WINDOW_RANK, &ld_w)
        dgemm(no_trans, no_trans, &rw_i, &m_i, &rb_i, &one, win + (rows + rp) * rw, &rw_i, <double*>(Cb + g0 * K),
              &ld_k, &one, cur + g0 * WINDOW_RANK, &ld_w)
        for r in range(rows):
            for q in range(rw):
                win[r * rw + q] = cur[(g0 + r) * WINDOW_RANK + q]
        cm.window[first * nb + g] = win
        cm.wrank[first * nb + g] = rw
        swap = prev
        prev = cur
        cur = swap
        P, ld_p, rp = prev, ld_w, rw


cdef inline void _window_product(const Compressed* cm, Py_ssize_t first, Py_ssize_t g, const double* Y, double* wy,
                                 Py_ssize_t rows, double* mem) noexcept nogil:
    """``mem += W_g Y_g`` for the rows of block ``g`` (``rows`` of them) from window ``(first, g)``
    (``_windows``), with ``Y_g = E^T [Y_{g-1}; Y_b]`` from the window before (block ``first``'s ``Y`` for
    ``g = first + 2``) and block ``b = g - 1``'s ``Y``. ``wy``: ``2 x WINDOW_RANK x DMFT_PANEL``, the
    windows' ``Y`` alternately (window ``g`` in half ``(g - first) % 2``)."""
    cdef Py_ssize_t nb = cm.n_blocks
    cdef const double* win = cm.window[first * nb + g]
    cdef int rw = <int>cm.wrank[first * nb + g], rb = <int>cm.rank[g - 1], rp, width = DMFT_PANEL
    cdef int n_r = <int>rows
    cdef double one = 1.0, zero = 0.0
    cdef char* no_trans = b"N"
    cdef char* trans = b"T"
    cdef const double* yp
    cdef double* yg = wy + ((g - first) % 2) * WINDOW_RANK * DMFT_PANEL
    if g == first + 2:
        rp, yp = <int>cm.rank[first], Y + cm.off[first] * DMFT_PANEL
    else:
        rp, yp = <int>cm.wrank[first * nb + g - 1], wy + ((g - 1 - first) % 2) * WINDOW_RANK * DMFT_PANEL
    # row-major Y_g = E_1^T Y_{g-1} + E_2^T Y_b: column-major Y_g^T = Y_{g-1}^T E_1 + Y_b^T E_2
    dgemm(no_trans, trans, &width, &rw, &rp, &one, <double*>yp, &width, <double*>(win + rows * rw), &rw, &zero,
          yg, &width)
    dgemm(no_trans, trans, &width, &rw, &rb, &one, <double*>(Y + cm.off[g - 1] * DMFT_PANEL), &width,
          <double*>(win + (rows + rp) * rw), &rw, &one, yg, &width)
    # row-major mem += W_g Y_g: column-major mem^T += Y_g^T W_g^T
    dgemm(no_trans, no_trans, &width, &n_r, &rw, &one, yg, &width, <double*>win, &rw, &one, mem, &width)


cdef inline bint _consecutive(const Py_ssize_t* idx, Py_ssize_t nb) noexcept nogil:
    """Whether a panel's ``nb`` samples ``idx`` (increasing) are consecutive (a full batch): its rows of
    ``D`` and of the diagnostics are then loaded and stored directly, not gathered."""
    return idx[nb - 1] - idx[0] == nb - 1


cdef inline const Compressed* _nearest_grid(const Compressed* grids, Py_ssize_t j) noexcept nogil:
    """The grid whose first block that starts after ``j`` starts nearest to ``j + 1`` (the first of them
    on a tie): the fewest columns of column ``j``'s memory term taken as they are."""
    cdef Py_ssize_t o, best = 0, gap, best_gap = DMFT_ROWS
    for o in range(DMFT_GRIDS):
        gap = (DMFT_ROWS - (j + 1 + grids[o].shift) % DMFT_ROWS) % DMFT_ROWS
        if gap < best_gap:
            best, best_gap = o, gap
    return grids + best


cdef inline void _panel_column(const double* D, Py_ssize_t S, const Py_ssize_t* idx, Py_ssize_t nb, Py_ssize_t K,
                               Py_ssize_t j, const double* nut, const double* MR, const Compressed* cm, double dt,
                               double grad_scale, double* T, double* Y, double* mem, double* wy, double* acc,
                               double* stats, double* rowabs) noexcept nogil:
    """``_response_column`` for a panel of ``nb <= DMFT_PANEL`` samples ``idx[0 .. nb-1]`` (any samples of
    the ``K x S`` ``D``), rows in the blocks of ``DMFT_ROWS`` grid points of the grid ``cm`` (the one
    ``_nearest_grid`` picks for ``j``; the first block cut at ``j + 1``): for the rows ``r0 <= k < r1`` of
    a block, the memory term's part from the rows ``j < i < r0`` of the history is two matrix products
    (``_rows_product``), ``M_R[r0:r1, j+1:c] T[j+1:c]`` over the columns of the block that holds
    ``j + 1`` when ``j + 1`` starts no block (``c`` its end; those columns of ``M_R`` are not all final
    yet), and ``C[r0:r1, o] Y[o]`` over the compressed blocks from ``c`` to ``r0`` (``o`` their columns
    of ``C``; ``Y`` holds the history's rows of each in its basis, ``_project``, filled as the walk
    passes them), and the part from ``r0 <= i < k`` (a triangle within the block) is added by the
    recursion itself. ``T`` (``K x DMFT_PANEL``) holds the panel's history, ``Y`` (``K x DMFT_PANEL``) its
    compressed form, ``mem`` (``DMFT_ROWS x DMFT_PANEL``) the block's memory terms; samples beyond
    ``nb`` are zero. The blocks and ranks depend on ``j`` and ``M_R`` only, so the summation order does
    not depend on the thread count."""
    cdef Py_ssize_t k, i, p, r0, r1, g
    cdef Py_ssize_t sh = cm.shift
    cdef Py_ssize_t first = (j + sh + DMFT_ROWS) // DMFT_ROWS     # its first block that starts after j
    cdef Py_ssize_t dense_end = min(first * DMFT_ROWS - sh, K)
    cdef double dt2 = dt * dt, mr, a
    cdef double db[DMFT_PANEL]
    cdef double tri[DMFT_PANEL]
    cdef double* row
    cdef double* Tk
    cdef const double* Ti
    cdef const double* Dk
    cdef bint run = _consecutive(idx, nb)
    for p in range(DMFT_PANEL):
        T[(j + 1) * DMFT_PANEL + p] = D[j * S + idx[p]] if p < nb else 0.0
    r0 = j + 1
    while r0 < K:
        g = (r0 + sh) // DMFT_ROWS
        r1 = min((g + 1) * DMFT_ROWS - sh, K)
        _rows_product(T, DMFT_PANEL, DMFT_PANEL, MR, K, j + 1, min(dense_end, r0), r0, r1, 0.0, mem)
        if g > first + 1 and cm.wrank[first * cm.n_blocks + g] >= 0:
            _window_product(cm, first, g, Y, wy, r1 - r0, mem)
        elif g > first:
            _rows_product(Y, DMFT_PANEL, DMFT_PANEL, cm.C, K, cm.off[g - 1], cm.off[first] + cm.rank[first], r0, r1,
                          1.0, mem)
        for k in range(r0, r1):
            row = mem + (k - r0) * DMFT_PANEL
            Tk = T + k * DMFT_PANEL
            if run:
                Dk = D + k * S + idx[0]
                if k + PREFETCH_ROWS < K:
                    for p in range(0, nb, 8):
                        __builtin_prefetch(Dk + PREFETCH_ROWS * S + p)
                for p in range(DMFT_PANEL):
                    db[p] = Dk[p] if p < nb else 0.0
            else:
                for p in range(DMFT_PANEL):
                    db[p] = D[k * S + idx[p]] if p < nb else 0.0
            _panel_contributions(db, Tk, idx, nb, run, k, K, S, acc, stats, rowabs)
            if k == K - 1:
                break
            for p in range(DMFT_PANEL):
                tri[p] = row[p]
            for i in range(r0, k):
                mr = MR[k * K + i]
                Ti = T + i * DMFT_PANEL
                for p in range(DMFT_PANEL):
                    tri[p] += mr * Ti[p]
            a = 1.0 - dt * nut[k]
            for p in range(DMFT_PANEL):
                Tk[DMFT_PANEL + p] = Tk[p] * (a - dt * grad_scale * db[p]) + dt2 * tri[p]
        if g >= first and r1 < K:
            _project(cm, g, T, DMFT_PANEL, Y)
        r0 = r1


cdef inline void _panel_contributions(const double* db, const double* Tk, const Py_ssize_t* idx, Py_ssize_t nb,
                                      bint run, Py_ssize_t k, Py_ssize_t K, Py_ssize_t S, double* acc, double* stats,
                                      double* rowabs) noexcept nogil:
    """``_contributions`` for a panel: ``x_p = db[p] Tk[p]`` of its ``nb`` samples ``idx[p]`` (``run``: they are
    consecutive) to entry ``k`` of a column (``rowabs``: the ``K x S`` accumulator of ``|x_p|``, sample by
    sample); ``db`` and ``Tk`` are zero beyond ``nb``."""
    cdef Py_ssize_t p
    cdef double tot = 0.0, ta = 0.0, tq = 0.0
    cdef double xa[DMFT_PANEL]
    cdef double* ra
    for p in range(DMFT_PANEL):
        tot += db[p] * Tk[p]
    acc[k] += tot
    if stats != NULL:
        for p in range(DMFT_PANEL):
            xa[p] = fabs(db[p] * Tk[p])
            ta += xa[p]
            tq += xa[p] * xa[p]
        if run:
            ra = rowabs + k * S + idx[0]
            for p in range(nb):
                ra[p] += xa[p]
        else:
            for p in range(nb):
                rowabs[k * S + idx[p]] += xa[p]
        stats[k] += ta
        stats[K + k] += tq


cdef struct KickPaths:
    # what the finite-difference response needs besides D: the loss and the marched paths
    const Loss* loss
    const double* H          # h (K x S), h~ = h + h0 m
    const double* h0
    const double* y          # labels
    const double* m
    const unsigned char* sel # K x S, or NULL (full batch)
    double a                 # amplitude: the loss's argument is a h~
    double kick, cap         # kick size; bound on a kicked deviation |u|
    const double* scale      # K: march's B_k (project: loss argument a B_k h~, gradient factor 1/B_k^2), or NULL
    const double* base       # K x S: a dv(a h~) of the selected samples (_kick_base)


cdef inline int _clamp(double* u, double cap) noexcept nogil:
    """Set ``u`` back into ``[-cap, cap]`` (0 if it is not a number); 1 if it was outside."""
    if fabs(u[0]) <= cap:
        return 0
    u[0] = (cap if u[0] > 0 else -cap) if u[0] == u[0] else 0.0
    return 1


cdef inline double _kick_amplitude(const KickPaths* kp, Py_ssize_t k, double* cs) noexcept nogil:
    """The amplitude of grid step ``k``'s loss, ``kp.a`` (times ``B_k`` with ``kp.scale``); ``cs[0]``:
    the factor of that loss, ``1 / B_k^2`` with ``kp.scale``, else 1."""
    if kp.scale == NULL:
        cs[0] = 1.0
        return kp.a
    cs[0] = 1.0 / (kp.scale[k] * kp.scale[k])
    return kp.a * kp.scale[k]


cdef void _kick_base(const KickPaths* kp, Py_ssize_t K, Py_ssize_t S, double* base) noexcept nogil:
    """``base[k, s] = a dv(a h~_k)`` (``K x S``; ``a`` of ``_kick_amplitude``) for the samples selected at
    ``k`` (0 for the others): the unkicked derivative, the same for every column of the kicked pass."""
    cdef Py_ssize_t k, s_
    cdef double a, cs, ht
    cdef loss_fn dv = kp.loss.dv
    for k in range(K):
        a = _kick_amplitude(kp, k, &cs)
        for s_ in range(S):
            base[k * S + s_] = 0.0
            if kp.sel == NULL or kp.sel[k * S + s_] != 0:
                ht = kp.H[k * S + s_] + kp.h0[s_] * kp.m[k]
                base[k * S + s_] = a * dv(a * ht, kp.y[s_], kp.loss.theta)


cdef inline double _kick_row(const KickPaths* kp, Py_ssize_t S, const Py_ssize_t* idx, Py_ssize_t nb, Py_ssize_t width,
                             Py_ssize_t k, const double* up, const double* um, double* gp,
                             double* gm) noexcept nogil:
    """The loss at grid step ``k`` on the kicked paths of samples ``idx[0 .. nb-1]`` (``nb <= DMFT_PANEL``)
    with deviations ``up[b]``, ``um[b]``: ``gp[b] = a dv(a (h~_k + up[b])) - a dv(a h~_k)`` (the second
    term from ``kp.base``) and ``gm[b]`` alike, ``a`` of ``_kick_amplitude``; 0 for a sample not selected
    at ``k`` and for ``nb <= b < width``. The selected samples are listed first, so that the loop over
    them does not branch on the selection. Returns the factor ``cs`` of step ``k``'s loss."""
    cdef Py_ssize_t b, i, s_, n = 0
    cdef Py_ssize_t on[DMFT_PANEL]
    cdef double cs, ht
    cdef double a = _kick_amplitude(kp, k, &cs), m = kp.m[k]
    cdef const double* H = kp.H + k * S
    cdef const double* base = kp.base + k * S
    cdef const double* theta = kp.loss.theta
    cdef const unsigned char* sel = NULL if kp.sel == NULL else kp.sel + k * S
    cdef loss_fn dv = kp.loss.dv
    for b in range(width):
        gp[b] = 0.0
        gm[b] = 0.0
    for b in range(nb):
        on[n] = b
        n += <Py_ssize_t>(sel == NULL or sel[idx[b]] != 0)
    for i in range(n):
        b = on[i]
        s_ = idx[b]
        ht = H[s_] + kp.h0[s_] * m
        gp[b] = a * dv(a * (ht + up[b]), kp.y[s_], theta) - base[s_]
        gm[b] = a * dv(a * (ht + um[b]), kp.y[s_], theta) - base[s_]
    return cs


cdef inline void _kick_column(const KickPaths* kp, const double* D, Py_ssize_t S, Py_ssize_t c0, Py_ssize_t nb,
                              Py_ssize_t K, Py_ssize_t j, const double* nut, const double* MR, double dt,
                              double grad_scale, double* Tcol, double* acc, double* stats,
                              double* rowabs, Py_ssize_t* clamped) noexcept nogil:
    """The column ``j`` of ``M_R`` from finite kicks instead of the linear response: each sample's
    ``h(t_{j+1})`` is kicked by ``+kick`` and ``-kick`` and the two deviations ``u+-`` are marched
    with the sample's own noise, selection and memory term,
    ``u(k+1) = u(k) (1 - dt nut_k) - dt c s_k [dv(h~_k + u(k)) - dv(h~_k)] + dt^2 sum_{j<i<k} M_R(k, i) u(i)``;
    the contribution is ``x_b = D_j s_k [dv(h~_k + u+) - dv(h~_k + u-)] / (2 kick)``, which tends to
    ``D[k, b] T_b(k, j)`` as ``kick -> 0`` (exactly equal for a quadratic loss); ``dv`` is the
    derivative in ``h`` of the sample's loss, ``a dv(a h~)`` with the amplitude ``kp.a``. A deviation that
    leaves ``|u| <= cap`` (the explicit Euler step of a kicked path outside the region where the
    march is stable; not finite) is set back to ``+-cap`` (0 if not a number) and counted in
    ``clamped[0]`` if the sample contributes (``D_j != 0``; the others are set back uncounted, so that
    their zero contributions stay finite). ``Tcol`` holds ``u+`` and ``u-`` (``2 x K x DMFT_BLOCK``).
    With ``kp.scale`` (the march's ``project``) step ``k``'s loss is ``v(B_k a h~) / B_k^2``: amplitude
    ``a B_k`` and the differences of ``dv`` times ``1 / B_k^2`` (``_kick_row``). The reference of
    ``_kick_panel``."""
    cdef Py_ssize_t k, b
    cdef double dt2 = dt * dt, cs
    cdef double inv = 0.5 / kp.kick
    cdef double src[DMFT_BLOCK]
    cdef double gp[DMFT_BLOCK]
    cdef double gm[DMFT_BLOCK]
    cdef double xb[DMFT_BLOCK]
    cdef double memp[DMFT_BLOCK]
    cdef double memm[DMFT_BLOCK]
    cdef double* Up = Tcol
    cdef double* Um = Tcol + K * DMFT_BLOCK
    cdef Py_ssize_t idx[DMFT_BLOCK]
    for b in range(DMFT_BLOCK):
        idx[b] = c0 + b
        src[b] = D[j * S + c0 + b] * inv if b < nb else 0.0
        Up[(j + 1) * DMFT_BLOCK + b] = kp.kick
        Um[(j + 1) * DMFT_BLOCK + b] = -kp.kick
    for k in range(j + 1, K):
        cs = _kick_row(kp, S, idx, nb, DMFT_BLOCK, k, Up + k * DMFT_BLOCK, Um + k * DMFT_BLOCK, gp, gm)
        if kp.scale == NULL:
            for b in range(DMFT_BLOCK):
                xb[b] = src[b] * (gp[b] - gm[b])
        else:
            for b in range(DMFT_BLOCK):
                xb[b] = src[b] * (gp[b] - gm[b]) * cs
        _contributions(xb, nb, k, K, acc, stats, rowabs)
        if k == K - 1:
            break
        _memory(MR + k * K, Up, j, k, memp)
        _memory(MR + k * K, Um, j, k, memm)
        if kp.scale == NULL:
            for b in range(DMFT_BLOCK):
                Up[(k + 1) * DMFT_BLOCK + b] = (Up[k * DMFT_BLOCK + b] * (1.0 - dt * nut[k]) - dt * grad_scale * gp[b]
                                                + dt2 * memp[b])
                Um[(k + 1) * DMFT_BLOCK + b] = (Um[k * DMFT_BLOCK + b] * (1.0 - dt * nut[k]) - dt * grad_scale * gm[b]
                                                + dt2 * memm[b])
        else:
            for b in range(DMFT_BLOCK):
                Up[(k + 1) * DMFT_BLOCK + b] = (Up[k * DMFT_BLOCK + b] * (1.0 - dt * nut[k])
                                                - dt * grad_scale * cs * gp[b] + dt2 * memp[b])
                Um[(k + 1) * DMFT_BLOCK + b] = (Um[k * DMFT_BLOCK + b] * (1.0 - dt * nut[k])
                                                - dt * grad_scale * cs * gm[b] + dt2 * memm[b])
        for b in range(nb):
            if src[b] != 0:
                clamped[0] += (_clamp(&Up[(k + 1) * DMFT_BLOCK + b], kp.cap)
                               + _clamp(&Um[(k + 1) * DMFT_BLOCK + b], kp.cap))
            else:
                _clamp(&Up[(k + 1) * DMFT_BLOCK + b], kp.cap)
                _clamp(&Um[(k + 1) * DMFT_BLOCK + b], kp.cap)


cdef inline void _kick_panel(const KickPaths* kp, const double* D, Py_ssize_t S, const Py_ssize_t* idx, Py_ssize_t nb,
                             Py_ssize_t K, Py_ssize_t j, const double* nut, const double* MR, double dt,
                             double grad_scale, double* U, double* mem, double* acc, double* stats,
                             double* rowabs, Py_ssize_t* clamped) noexcept nogil:
    """``_kick_column`` for a panel of ``nb <= DMFT_PANEL`` samples ``idx[0 .. nb-1]``, rows in blocks of ``DMFT_ROWS``
    grid points as in ``_panel_column``: given ``M_R`` the memory term of a deviation is linear in its
    past, so the part of a block's rows ``r0 <= k < r1`` from the rows ``j < i < r0`` is one matrix
    product for both deviations of all the panel's samples (``_rows_product`` on ``2 DMFT_PANEL``
    columns, ``M_R`` as it is), and only the triangle ``r0 <= i < k`` runs row by row, with the loss (``_kick_row``) and
    the clamping. ``U`` (``K x 2 DMFT_PANEL``) holds the history, row ``i``: ``u+`` of the panel's
    samples, then their ``u-``; ``mem`` (``DMFT_ROWS x 2 DMFT_PANEL``) the block's memory terms; the
    deviations of samples beyond ``nb`` are zero. Agrees with ``_kick_column`` to rounding."""
    cdef Py_ssize_t k, i, p, r0, r1
    cdef double dt2 = dt * dt, inv = 0.5 / kp.kick, mr, a, f, cs
    cdef double src[DMFT_PANEL]
    cdef double dg[DMFT_PANEL]
    cdef double g[2 * DMFT_PANEL]
    cdef double tri[2 * DMFT_PANEL]
    cdef double* row
    cdef double* Uk
    cdef const double* Ui
    cdef bint run = _consecutive(idx, nb)
    for p in range(DMFT_PANEL):
        src[p] = D[j * S + idx[p]] * inv if p < nb else 0.0
        U[(j + 1) * 2 * DMFT_PANEL + p] = kp.kick if p < nb else 0.0
        U[(j + 1) * 2 * DMFT_PANEL + DMFT_PANEL + p] = -kp.kick if p < nb else 0.0
    r0 = j + 1
    while r0 < K:
        r1 = min(r0 + DMFT_ROWS, K)
        _rows_product(U, 2 * DMFT_PANEL, 2 * DMFT_PANEL, MR, K, j + 1, r0, r0, r1, 0.0, mem)
        for k in range(r0, r1):
            Uk = U + k * 2 * DMFT_PANEL
            cs = _kick_row(kp, S, idx, nb, DMFT_PANEL, k, Uk, Uk + DMFT_PANEL, g, g + DMFT_PANEL)
            for p in range(DMFT_PANEL):
                dg[p] = (g[p] - g[DMFT_PANEL + p]) * cs
            _panel_contributions(src, dg, idx, nb, run, k, K, S, acc, stats, rowabs)
            if k == K - 1:
                break
            row = mem + (k - r0) * 2 * DMFT_PANEL
            for p in range(2 * DMFT_PANEL):
                tri[p] = row[p]
            for i in range(r0, k):
                mr = MR[k * K + i]
                Ui = U + i * 2 * DMFT_PANEL
                for p in range(2 * DMFT_PANEL):
                    tri[p] += mr * Ui[p]
            a = 1.0 - dt * nut[k]
            f = dt * grad_scale * cs
            for p in range(2 * DMFT_PANEL):
                Uk[2 * DMFT_PANEL + p] = Uk[p] * a - f * g[p] + dt2 * tri[p]
            for p in range(nb):
                clamped[0] += (_clamp(&Uk[2 * DMFT_PANEL + p], kp.cap)
                               + _clamp(&Uk[3 * DMFT_PANEL + p], kp.cap))
        r0 = r1


def empty_aligned(shape):
    """An uninitialized C-contiguous float64 array of ``shape`` whose data start on a cache line
    (``CACHE_LINE`` bytes; NumPy's own start 16 bytes past one): with rows of a multiple of 8 doubles, the
    march's and the pass's loads of 64 samples then each fill whole lines (the march's paths, the pass's
    scratch, the normals ``Z`` of ``prcy.dmft.draw_samples``)."""
    n = int(np.prod(shape))
    buf = np.empty(n + CACHE_LINE // 8)
    skip = (-buf.ctypes.data % CACHE_LINE) // 8
    return buf[skip:skip + n].reshape(shape)


cdef _selection(sel, Py_ssize_t K, Py_ssize_t S, str name):
    """``sel`` as a ``K x S`` uint8 memoryview, or None (full batch); a shape mismatch names ``name``."""
    if sel is None:
        return None
    cdef const unsigned char[:, ::1] v = sel
    if v.shape[0] != K or v.shape[1] != S:
        raise ValueError(f"{name}: shape {(v.shape[0], v.shape[1])} does not match {(K, S)}")
    return v


cdef struct Estimates:
    # the estimators at one grid point from the sample sums (sums of N_MARCH_SUMS, over S samples)
    double delta_nu          # alpha c <s d2v>
    double nu_hat            # -alpha <g h~> + T (A.19)
    double mu                # alpha <g h0>
    double train_loss        # <v>
    double train_error       # <err>


cdef inline Estimates _estimates(const double* sums, double alpha, double grad_scale, double inv_s,
                                 double temperature) noexcept nogil:
    """The estimators from the sample sums of a grid point (``evaluate_chunk``, ``inv_s = 1 / S``, ``c =
    grad_scale``, ``T = temperature``): the march and ``estimate`` scale them here alike."""
    cdef Estimates e
    e.delta_nu = alpha * grad_scale * sums[SUM_D] * inv_s
    e.nu_hat = -alpha * grad_scale * sums[SUM_HT_DV] * inv_s + temperature
    e.mu = alpha * grad_scale * sums[SUM_H0_DV] * inv_s
    e.train_loss = sums[SUM_V] * inv_s
    e.train_error = sums[SUM_ERR] * inv_s
    return e


cdef inline void _sample_pass(const Loss* lp, double* H, double* G, double* D, const double* Z, const double* MR,
                              const double* L, const double* h0, const double* y, const unsigned char* sel,
                              Py_ssize_t S, Py_ssize_t K, Py_ssize_t k, double dt, double nut_prev, double m,
                              double a, double grad_scale, double* part, double* far, int nt) noexcept nogil:
    """The samples at grid step ``k``: each chunk of ``DMFT_CHUNK`` samples takes the step ``k-1 -> k``
    (``_advance``, with the friction ``nut_prev`` of step ``k-1``) and is evaluated at ``k``
    (``_chunk_moments``: its partial sums in its row of ``part``), in parallel over the chunks. The steps
    come in blocks of ``DMFT_MARCH_BLOCK``; at the first step ``k0`` of a block each chunk computes the memory
    terms of the whole block from the rows ``j < k0 - 1`` of its history, one matrix product
    (``far``, ``DMFT_MARCH_BLOCK x S``: row ``r`` for the step ``k0 + r``), and each step adds those from the
    rows since: the history is read once per block instead of once per step."""
    cdef Py_ssize_t ch, c0, n
    cdef Py_ssize_t n_chunks = (S + DMFT_CHUNK - 1) // DMFT_CHUNK
    cdef Py_ssize_t k0 = k - (k - 1) % DMFT_MARCH_BLOCK        # the block's first step (k >= 1)
    for ch in prange(n_chunks, num_threads=nt, schedule="static"):
        c0 = ch * DMFT_CHUNK
        n = min(DMFT_CHUNK, S - c0)
        if k > 0:
            if k == k0:
                _rows_product(H + c0, <int>n, <int>S, MR, K, 0, k0 - 1, k0 - 1, min(k0 - 1 + DMFT_MARCH_BLOCK, K - 1),
                              0.0, far + c0)
            _advance(H, G, Z, MR, L, S, K, k, k0 - 1, far + (k - k0) * S, c0, n, dt, nut_prev)
        _chunk_moments(lp, H, h0, y, sel, S, k, c0, n, m, a, grad_scale, G, D, part + ch * (N_MARCH_SUMS + K))


cdef inline void _weight_rows(Py_ssize_t k, double dt, double q0, const double[::1] temps, const double* m,
                              const double* nut, const double[:, ::1] MR, const double[:, ::1] MC,
                              double[:, ::1] R, double[:, ::1] V, double[:, ::1] C) noexcept nogil:
    """Row ``k`` of the response ``R`` and of the correlation ``C`` of the weights (A.28), from the rows
    before it: ``R(k, j) = (1 - dt nut_{k-1}) R(k-1, j) + dt^2 sum_{j<=i<k-1} M_R(k-1, i) R(i, j)``,
    ``R(k, k) = 1``; ``V(k, b) = sum_{a<k} dt R(k, a+1) N(a, b)`` with ``N = M_C + diag(2T/dt)``, and
    ``C = Q + m m^T`` with ``Q(k, j) = q0 R(k, 0) R(j, 0) + sum_{b<j} V(k, b) dt R(j, b+1)``."""
    cdef Py_ssize_t i, j, a, b
    cdef double x, q
    if k > 0:
        for j in range(k):
            R[k, j] = (1.0 - dt * nut[k - 1]) * R[k - 1, j]
        for i in range(k - 1):
            x = dt * dt * MR[k - 1, i]
            for j in range(i + 1):
                R[k, j] += x * R[i, j]
    R[k, k] = 1.0
    for b in range(k):
        V[k, b] = 2.0 * temps[b] * R[k, b + 1]
    for a in range(k):
        x = dt * R[k, a + 1]
        for b in range(k):
            V[k, b] += x * MC[a, b]
    for j in range(k + 1):
        q = q0 * R[k, 0] * R[j, 0]
        for b in range(j):
            q = q + V[k, b] * dt * R[j, b + 1]
        C[k, j] = q + m[k] * m[j]
        C[j, k] = C[k, j]


cdef inline double _nu_hat(NuForm form, const Estimates* e, double ridge, Py_ssize_t k, double dt,
                           double temperature, const double* m, const double[:, ::1] MR,
                           const double[:, ::1] MC, const double[:, ::1] C, const double[:, ::1] R) noexcept nogil:
    """``nu_hat_k`` in the form ``form``: the ridge's ``lambda``; A.19 from the samples
    (``e.nu_hat``); or A.29 from row ``k`` of ``C``, ``R`` and the kernels,
    ``-delta_nu + T + dt sum_{j<k} [M_R(k, j) C(k, j) + M_C(k, j) R(k, j+1)]
    - m_k (mu - delta_nu m_k + dt sum_{j<k} M_R(k, j) m_j)``."""
    cdef Py_ssize_t j
    cdef double x = 0.0, q = 0.0
    if form == NU_RIDGE:
        return ridge
    if form == NU_A19:
        return e.nu_hat
    for j in range(k):
        x = x + MR[k, j] * C[k, j] + MC[k, j] * R[k, j + 1]
        q = q + MR[k, j] * m[j]
    return -e.delta_nu + temperature + dt * x - m[k] * (e.mu - e.delta_nu * m[k] + dt * q)


@cython.boundscheck(False)
@cython.wraparound(False)
def march(loss, *, double alpha, double grad_scale, double dt, double m0, double q0, int nu_form,
          double ridge, bint m_with_delta_nu, const double[::1] temps, double jitter_rel,
          const double[:, ::1] MR, const double[::1] h_init, const double[::1] h0, const double[::1] y,
          const double[:, ::1] Z, sel, double amplitude=1.0, n_threads=None, abort=None, bint project=False):
    """Advance all ``S`` samples together over the ``K`` grid points with ``M_R`` given (see the
    module docstring); returns a dict with the paths ``H``, ``G`` (``g``), ``D`` (``K x S``), the
    functions ``m``, ``nu_hat``, ``delta_nu``, ``mu``, ``train_loss`` (``<v>``), ``train_error``
    (``<err>``, the loss's per-sample test error on the training samples) (length K), ``M_C``, the noise
    factor ``L``, the weights' correlation ``C`` and response ``R`` (A.28); ``clipped`` (summed magnitude of
    clipped pivots), ``n_clipped``, ``bad_step`` (first grid index where some ``h`` is not finite, -1
    when none), ``aborted``.

    ``nu_form``: a value of ``NU_FORMS`` (``"ridge"``: ``nu_hat = ridge``, ``"A.19"``, ``"A.29"``).
    ``q0``: variance of ``h(0)``. ``h0``: the samples' quenched variables (the teacher fields; on a
    Gaussian mixture ``c/sqrt(Delta) + h0``), ``y``: their labels; ``amplitude``: ``a`` of the loss's
    argument ``a h~`` (1; on a mixture ``sqrt(Delta)``; module docstring). ``Z``: ``K x S`` standard
    normals; ``sel``: ``K x S`` uint8 selection or None (full batch).

    Each grid step ``k``: the samples' pass (``_sample_pass``: step to ``k``, the moments at ``k``;
    ``_reduce_moments``: their sums in a fixed order, row ``k`` of ``M_C``), the estimators
    (``_estimates``), rows ``k`` of ``R`` and ``C`` (``_weight_rows``), ``nu_hat_k`` (``_nu_hat``),
    ``m_{k+1}``, and row ``k`` of the noise factor (``cholesky_row``).

    ``project=True`` (sphere only): the exact projection ``w <- sqrt(N) w / |w|`` after every step of the
    simulations instead of the Lagrange multiplier ``nu_hat``. Written for the unprojected weights
    ``v_k = w_k / B_k`` (``B_k = prod_{i<k}`` of the projections' factors), the projected algorithm is plain
    descent (no multiplier, no ridge) on the loss ``v(B_k a h~; y) / B_k^2`` of step ``k`` with the
    temperature ``T_k / B_k^2``: the ridge form above with ``lambda = 0``, exact in discrete time, where
    ``B_k = C(k, k)^(-1/2)`` from row ``k`` of ``C`` (A.28), which depends on rows ``< k`` only. So at step
    ``k`` the amplitude is ``a B_k``, the gradient's factor ``c / B_k^2``, and the returned ``D`` row is
    divided by ``B_k^2`` (so that ``c D`` is the curvature of step ``k``'s loss: ``response`` with ``c`` and
    the same ``scale`` is then exact too). ``H``, ``m``, ``M_C``, ``mu``, ``delta_nu``, ``C`` and ``R`` are
    those of ``v``; ``nu_hat`` is 0; ``scale`` (length K) is ``B_k``, so ``w``'s magnetization is
    ``scale * m`` and its correlation ``scale_k scale_j C(k, j)`` (``C(k, k) scale_k^2 = 1``).
    Without ``project`` ``scale`` is 1.
    """
    cdef Py_ssize_t K = temps.shape[0], S = h0.shape[0]
    for name, arr, shape in (("MR", MR, (K, K)), ("h_init", h_init, (S,)), ("y", y, (S,)), ("Z", Z, (K, S))):
        if tuple(arr.shape[:len(shape)]) != shape:
            raise ValueError(f"{name}: shape {tuple(arr.shape[:len(shape)])} does not match {shape} "
                             f"(K = {K} grid points, S = {S} samples)")
    if K < 2 or S < 1:
        raise ValueError(f"march: K = {K} grid points and S = {S} samples; allowed: K >= 2, S >= 1")
    if nu_form not in NU_FORMS.values():
        raise ValueError(f"nu_form: {nu_form!r} is not allowed; allowed: "
                         f"{', '.join(f'{v} ({k})' for k, v in NU_FORMS.items())}")
    cdef NuForm form = <NuForm>nu_form
    cdef const unsigned char[:, ::1] sel_v = _selection(sel, K, S, "sel")
    cdef const unsigned char* sel_ptr = NULL if sel_v is None else &sel_v[0, 0]
    abort_arr = np.zeros(1, dtype=np.int32) if abort is None else abort
    cdef const int[::1] ab = abort_arr
    cdef int nt = effective_n_threads(n_threads)
    cdef const Loss* lp = loss_from_capsule(loss)
    cdef Py_ssize_t n_chunks = (S + DMFT_CHUNK - 1) // DMFT_CHUNK
    H_a, G_a, D_a = empty_aligned((K, S)), empty_aligned((K, S)), empty_aligned((K, S))
    MC_a, L_a = np.zeros((K, K)), np.zeros((K, K))
    C_a, R_a, V_a = np.zeros((K, K)), np.zeros((K, K)), np.zeros((K, K))
    vec_a = np.zeros((7, K))          # m, nu_hat, delta_nu, mu, loss, nut, training error
    scale_a = np.ones(K)              # B_k of project (1 without)
    teff_a = np.array(temps, dtype=float)     # the temperature of step k in v's units: T_k / B_k^2 (T_k without project)
    cdef double[::1] scale = scale_a, teff = teff_a
    cdef double amp_k = amplitude, gs_k = grad_scale, inv_b2 = 1.0
    cdef double ridge_k = 0.0 if project else ridge
    if project:
        form = NU_RIDGE
    part_a = np.zeros((n_chunks, N_MARCH_SUMS + K))
    far_a = empty_aligned((DMFT_MARCH_BLOCK, S))  # _sample_pass: the memory terms of a block of steps from its far past
    cdef double[:, ::1] H = H_a, G = G_a, D = D_a, MC = MC_a, L = L_a, C = C_a, R = R_a, V = V_a
    cdef double[:, ::1] vec = vec_a, part = part_a, far = far_a
    cdef double* m = &vec[0, 0]
    cdef double* nu_hat = &vec[1, 0]
    cdef double* dnu = &vec[2, 0]
    cdef double* mu = &vec[3, 0]
    cdef double* lossv = &vec[4, 0]
    cdef double* nut = &vec[5, 0]
    cdef double* errv = &vec[6, 0]
    cdef Py_ssize_t k, s_
    cdef double sums[N_MARCH_SUMS]
    cdef Estimates e
    cdef double noise_kk, diag_max = 0.0, clipped = 0.0, cl, nu_m
    cdef double inv_s = 1.0 / S
    cdef Py_ssize_t n_clipped = 0, bad = K
    # one BLAS thread per worker thread (_sample_pass); as a context, so that this thread gives up its
    # control of OpenBLAS's limits on leaving (threadpoolctl lets one thread at a time set them)
    with threadpool_limits(1, user_api="blas"):
        with nogil:
            for s_ in range(S):
                H[0, s_] = h_init[s_]
            m[0] = m0
            R[0, 0] = 1.0
            for k in range(K):
                if ab[0] != 0:
                    break
                if project:         # row k of C needs rows < k only: B_k before the samples take step k
                    _weight_rows(k, dt, q0, teff, m, nut, MR, MC, R, V, C)
                    if not C[k, k] > 0:
                        bad = k
                        break
                    scale[k] = 1.0 / sqrt(C[k, k])
                    inv_b2 = C[k, k]
                    amp_k = amplitude * scale[k]
                    gs_k = grad_scale * inv_b2
                    teff[k] = temps[k] * inv_b2
                _sample_pass(lp, &H[0, 0], &G[0, 0], &D[0, 0], &Z[0, 0], &MR[0, 0], &L[0, 0], &h0[0], &y[0], sel_ptr,
                             S, K, k, dt, nut[k - 1] if k > 0 else 0.0, m[k], amp_k, gs_k, &part[0, 0], &far[0, 0], nt)
                _reduce_moments(&part[0, 0], N_MARCH_SUMS + K, n_chunks, k, K, alpha, inv_s, &MC[0, 0], sums)
                for s_ in range(S):
                    if not isfinite(H[k, s_]):
                        bad = k
                        break
                if bad < K:
                    break
                e = _estimates(sums, alpha, gs_k, inv_s, teff[k])
                dnu[k] = e.delta_nu
                mu[k] = e.mu
                lossv[k] = e.train_loss
                errv[k] = e.train_error
                if project:
                    for s_ in range(S):
                        D[k, s_] = D[k, s_] * inv_b2
                else:
                    _weight_rows(k, dt, q0, teff, m, nut, MR, MC, R, V, C)
                nu_hat[k] = _nu_hat(form, &e, ridge_k, k, dt, teff[k], m, MR, MC, C, R)
                nut[k] = nu_hat[k] + dnu[k]
                if k + 1 < K:
                    nu_m = nu_hat[k] + (dnu[k] if m_with_delta_nu else 0.0)
                    m[k + 1] = m[k] + dt * (-nu_m * m[k] - mu[k])
                # next row of the noise factor: N = M_C + diag(2T/dt) + jitter
                noise_kk = MC[k, k] + 2.0 * teff[k] / dt
                if noise_kk > diag_max:
                    diag_max = noise_kk
                MC[k, k] = noise_kk             # for the factor's read of row k only
                cl = cholesky_row(&MC[0, 0], &L[0, 0], K, k, jitter_rel * diag_max)
                MC[k, k] = noise_kk - 2.0 * teff[k] / dt
                if cl > 0:
                    clipped += cl
                    n_clipped += 1
    out = {"H": H_a, "G": G_a, "D": D_a, "m": vec_a[0], "nu_hat": vec_a[1], "delta_nu": vec_a[2],
           "mu": vec_a[3], "train_loss": vec_a[4], "train_error": vec_a[6], "M_C": MC_a, "L": L_a, "clipped": clipped,
           "n_clipped": int(n_clipped), "bad_step": int(bad) if bad < K else -1,
           "aborted": bool(abort_arr[0]), "C": C_a, "R": R_a, "scale": scale_a}
    return out


cdef inline void _advance(double* H, const double* G, const double* Z, const double* MR, const double* L,
                          Py_ssize_t S, Py_ssize_t K, Py_ssize_t k, Py_ssize_t j0, const double* far, Py_ssize_t c0,
                          Py_ssize_t n, double dt, double nut) noexcept nogil:
    """``h_k`` of samples ``c0 .. c0+n-1`` from their past (memory term, noise ``chi_{k-1} = L z``): the
    memory term from the rows ``j < j0`` given in ``far`` (its entries ``c0 ..``), that from the rows since
    summed here."""
    cdef Py_ssize_t j, i
    cdef double a, l
    cdef double mem[DMFT_CHUNK]
    cdef double chi[DMFT_CHUNK]
    for i in range(n):
        mem[i] = far[c0 + i]
        chi[i] = 0.0
    for j in range(j0, k - 1):
        a = MR[(k - 1) * K + j]
        for i in range(n):
            mem[i] += a * H[j * S + c0 + i]
    for j in range(k):
        l = L[(k - 1) * K + j]
        for i in range(n):
            chi[i] += l * Z[j * S + c0 + i]
    for i in range(n):
        H[k * S + c0 + i] = H[(k - 1) * S + c0 + i] + dt * (-nut * H[(k - 1) * S + c0 + i] - G[(k - 1) * S + c0 + i]
                                                          + dt * mem[i] + chi[i])


@cython.boundscheck(False)
@cython.wraparound(False)
def response(const double[:, ::1] D, const double[::1] nut, double dt, double alpha, double grad_scale,
             Py_ssize_t n_lanes=8, n_threads=None, abort=None, bint stats=False, double kick=0.0, loss=None,
             H=None, h0=None, y=None, m=None, sel=None, double amplitude=1.0, double cap=10.0, clamped=None,
             str method="blocked", project_scale=None, double rank_tol=RANK_TOL, ranks=None, windows=None):
    """``M_R`` (``K x K``, strictly lower) from the paths ``D = s d2v`` (``K x S``) and the friction
    ``nut``, columns in decreasing order so that each column uses only final entries (see the
    module docstring).

    ``stats=True`` returns ``(M_R, stderr, ess, row_ess)`` instead: from the per-sample contributions
    ``x_b = D[k, b] T_b(k, j)`` of each entry (``M_R = alpha c^2 mean(x)``), its Monte Carlo standard
    error ``alpha c^2 sd(x) / sqrt(S)`` and the effective number of samples behind it,
    ``ess = (sum_b |x_b|)^2 / sum_b x_b^2`` (``S`` when all samples contribute alike, 1 when one sample
    carries the entry; NaN where no sample contributes); and the same for the whole row ``k`` (the
    memory kernel at ``t_k``), with ``|x_b|`` replaced by the sample's ``sum_j |x_b(k, j)|``
    (length ``K``; NaN for the first row). A small ``ess`` means that ``M_R`` rests on a few samples:
    a heavy-tailed response, whose mean the solve at this ``S`` has not resolved.

    ``kick > 0``: the finite-difference response of ``_kick_panel`` (``_kick_column``) (kicks of ``h`` by
    ``+-kick``, marched with the ``loss`` on the march's paths ``H`` = ``h``, ``h0``, labels ``y``, ``m``, the
    selection ``sel``, ``K x S`` uint8 or None, and the ``amplitude`` of ``march``) instead of the linear
    response ``T``: a sample near a hilltop of the loss (``d2v < 0``) has a linear response growing
    without bound, but its response to a finite kick saturates, so that the contributions keep a
    finite variance, at a bias of order ``kick^2`` (docs/dmft.md). About twice the cost of the linear response
    (docs/benchmarks.md, "The kicked response"). A kicked
    deviation is kept within ``|u| <= cap``; ``clamped`` (an int64 array of length 1, optional)
    receives how many times a deviation of a sample that contributes (``D(t') != 0``) had to be set back.

    ``method``: ``"blocked"`` (row blocks whose memory terms are matrix products, ``_panel_column``,
    for the samples with ``D(t') != 0`` of each column ``t'``) or ``"recursion"`` (``_response_column``,
    the reference, every sample); the two agree to rounding. The same for
    the kicked response: ``_kick_panel`` (blocked) or ``_kick_column`` (recursion). ``n_lanes`` applies
    to the recursion only. ``project_scale``: the march's ``scale`` with ``project`` (with its ``D`` and ``m``);
    only the kicked response needs it, the linear one is exact on that ``D`` as it is.

    ``rank_tol`` (blocked linear response): the column blocks of ``M_R`` keep their singular values above
    ``rank_tol`` times the largest (module docstring; 0: every block as it is). ``ranks`` (an intp array
    of ``ceil(K / DMFT_ROWS)``, optional) receives each block's rank on the grid without offset, -1 for a
    block kept as it is (all -1 for the recursion and the kicked response). ``windows`` (an intp array of
    ``ceil(K / DMFT_ROWS) x ceil(K / DMFT_ROWS)``, optional) receives the ranks of the windows on that grid
    (``_windows``: entry ``(first, g)`` for the blocks ``first .. g - 1`` below block ``g``), -1 where
    there is none."""
    cdef Py_ssize_t K = D.shape[0], S = D.shape[1], j, lane, blk, k
    if nut.shape[0] != K:
        raise ValueError(f"nut: length {nut.shape[0]} does not match D's {K} grid points")
    cdef KickPaths kp
    cdef const double[:, ::1] H_v
    cdef const double[::1] h0_v, y_v, m_v
    cdef const unsigned char[:, ::1] sel_v
    cdef const double[::1] sc_v
    cdef double[:, ::1] base_v
    if not kick >= 0:
        raise ValueError(f"kick: {kick!r} is not allowed; allowed: 0 (linear response) or a positive kick")
    if kick > 0:
        if loss is None or H is None or h0 is None or y is None or m is None:
            raise ValueError("kick: the finite-difference response needs loss, H, h0, y and m")
        H_v, h0_v, y_v, m_v = H, h0, y, m
        if (H_v.shape[0] != K or H_v.shape[1] != S or h0_v.shape[0] != S or y_v.shape[0] != S
                or m_v.shape[0] != K):
            raise ValueError(f"H, h0, y, m: shapes {(H_v.shape[0], H_v.shape[1])}, {h0_v.shape[0]}, {y_v.shape[0]}, "
                             f"{m_v.shape[0]} do not match D's {(K, S)}")
        sel_v = _selection(sel, K, S, "sel")
        kp.loss = loss_from_capsule(loss)
        kp.H, kp.h0, kp.y, kp.m, kp.kick, kp.cap = &H_v[0, 0], &h0_v[0], &y_v[0], &m_v[0], kick, cap
        kp.a = amplitude
        kp.sel = NULL if sel_v is None else &sel_v[0, 0]
        kp.scale = NULL
        if project_scale is not None:
            scale_v = np.ascontiguousarray(project_scale, dtype=float)
            if scale_v.shape != (K,):
                raise ValueError(f"project_scale: shape {scale_v.shape} does not match D's {K} grid points")
            sc_v = scale_v
            kp.scale = &sc_v[0]
        base_a = np.empty((K, S))
        base_v = base_a
        kp.base = &base_v[0, 0]
        with nogil:
            _kick_base(&kp, K, S, &base_v[0, 0])
    if method not in RESPONSE_METHODS:
        raise ValueError(f"method: {method!r} is not allowed; allowed: {', '.join(RESPONSE_METHODS)}")
    if not 0 <= rank_tol < 1:
        raise ValueError(f"rank_tol: {rank_tol!r} is not allowed; allowed: 0 (M_R as it is) or a tolerance in (0, 1)")
    cdef bint blocked = method == "blocked"
    cdef Py_ssize_t unit = DMFT_PANEL if blocked else DMFT_BLOCK
    cdef Py_ssize_t n_dev = 2 if kick > 0 else 1       # histories per sample: T, or the deviations u+ and u-
    # blocked: the history, its compressed form (linear response only) and the memory terms
    cdef bint compressing = blocked and kick == 0
    cdef Py_ssize_t width = (((2 * K + 2 * WINDOW_RANK if compressing else K * n_dev) + DMFT_ROWS * n_dev) * DMFT_PANEL
                             if blocked else n_dev * K * DMFT_BLOCK)
    cdef int nt = effective_n_threads(n_threads)
    cdef Py_ssize_t n_blocks = (S + unit - 1) // unit
    # partial sums: one per panel (blocked pass), or per lane of blocks
    cdef Py_ssize_t nl = n_blocks if blocked else max(1, min(n_lanes, n_blocks))
    cdef Py_ssize_t n_scratch = nt if blocked else nl
    clamp_a = np.zeros(nl, dtype=np.intp)
    cdef Py_ssize_t[::1] clamp_n = clamp_a
    abort_arr = np.zeros(1, dtype=np.int32) if abort is None else abort
    cdef const int[::1] ab = abort_arr
    MR_a = np.zeros((K, K))
    acc_a = np.zeros((nl, K))
    st_a = np.zeros((nl if stats else 1, 2, K if stats else 1))
    SE_a = np.full((K, K), np.nan) if stats else None
    ESS_a = np.full((K, K), np.nan) if stats else None
    # |x| per sample and row: K x S (blocked: panels gather different samples column by column), or per block
    ROW_a = np.zeros((1 if blocked else n_blocks, K, S if blocked else unit)) if stats else np.zeros((1, 1, 1))
    act_a = np.empty(S if blocked else 1, dtype=np.intp)
    cdef Py_ssize_t[::1] act = act_a
    cdef Py_ssize_t n_act, n_sum = nl, s_, nb
    cdef double[:, ::1] MR = MR_a, acc = acc_a
    cdef double[:, :, ::1] st = st_a
    cdef double[:, ::1] SE, ESS
    cdef double[:, :, ::1] ROW = ROW_a
    if stats:
        SE, ESS = SE_a, ESS_a
    cdef double scale = alpha * grad_scale * grad_scale / S, x, xa, xq
    # on a cache line, so that a panel's rows of 64 doubles each fill whole lines (malloc's 16 bytes past one
    # left the pass up to a third slower in some processes, docs/benchmarks.md, "The iteration of a solve")
    scratch_a = empty_aligned((n_scratch * width,))
    cdef double[::1] scratch_v = scratch_a
    cdef double* scratch = &scratch_v[0]
    cdef double* own
    cdef Py_ssize_t n_groups = K // DMFT_ROWS + 2        # blocks of a grid, shifted or not (a bound)
    cdef Compressed grids[DMFT_GRIDS]
    cdef const Compressed* cm = grids
    cdef int lwork = -1, n_q = DMFT_ROWS, m_q = <int>K, one_q = 1, info_q = 0
    cdef double w_q = 0.0, no_q = 0.0
    cdef Py_ssize_t kc = K if compressing else 1, o
    C_a, V_a = np.zeros((DMFT_GRIDS, kc, kc)), np.zeros((DMFT_GRIDS, kc, DMFT_ROWS))
    off_a, rank_a = np.zeros((DMFT_GRIDS, n_groups), dtype=np.intp), np.zeros((DMFT_GRIDS, n_groups), dtype=np.intp)
    exact_a = np.zeros((DMFT_GRIDS, n_groups), dtype=np.uint8)
    cdef double[:, :, ::1] C_v = C_a, V_v = V_a
    cdef Py_ssize_t[:, ::1] off_v = off_a, rank_v = rank_a
    cdef unsigned char[:, ::1] exact_v = exact_a
    cdef Py_ssize_t n_win = n_groups if compressing else 1
    wrank_a = np.full((DMFT_GRIDS, n_win * n_win), -1, dtype=np.intp)
    cdef Py_ssize_t[:, ::1] wrank_v = wrank_a
    cdef double** wins
    for o in range(DMFT_GRIDS):
        grids[o].shift = (DMFT_ROWS - o * DMFT_ROWS // DMFT_GRIDS) % DMFT_ROWS
        grids[o].C, grids[o].V, grids[o].off = &C_v[o, 0, 0], &V_v[o, 0, 0], &off_v[o, 0]
        grids[o].rank, grids[o].exact, grids[o].used = &rank_v[o, 0], &exact_v[o, 0], 0
        grids[o].n_blocks = (K + grids[o].shift + DMFT_ROWS - 1) // DMFT_ROWS if compressing else 1
        grids[o].wrank = &wrank_v[o, 0]
    cdef int wlwork = -1, n_w = WINDOW_COLS
    if compressing:             # dgesvd's workspace for the largest block (DMFT_ROWS x K) and window (WINDOW_COLS x K)
        dgesvd(b"S", b"N", &n_q, &m_q, &no_q, &n_q, &no_q, &no_q, &n_q, &no_q, &one_q, &w_q, &lwork, &info_q)
        lwork = max(<int>w_q, 5 * DMFT_ROWS + <int>K)
        dgesvd(b"S", b"N", &n_w, &m_q, &no_q, &n_w, &no_q, &no_q, &n_w, &no_q, &one_q, &w_q, &wlwork, &info_q)
        wlwork = max(<int>w_q, 5 * WINDOW_COLS + <int>K)
    svd_a = np.empty(DMFT_ROWS * K + COMPRESS_WORK + max(lwork, 1) if compressing else 1)
    win_a = np.empty(WINDOW_COLS * K + WINDOW_WORK + max(wlwork, 1) + 2 * K * WINDOW_RANK if compressing else 1)
    cdef double[::1] svd_v = svd_a, win_v = win_a
    cdef double* svd_buf = &svd_v[0]
    cdef double* win_buf = &win_v[0]
    wins = <double**> calloc(DMFT_GRIDS * n_win * n_win, sizeof(double*))
    if wins == NULL:
        raise MemoryError(f"response: cannot allocate {DMFT_GRIDS * n_win * n_win * 8} bytes for the windows")
    for o in range(DMFT_GRIDS):
        grids[o].window = wins + o * n_win * n_win
    try:
        with threadpool_limits(1, user_api="blas"):    # one BLAS thread per worker thread (as in march)
            with nogil:
                for j in range(K - 2, -1, -1):
                    if ab[0] != 0:
                        break
                    if blocked:
                        # the samples with D(t_j) != 0, in sample order: the others contribute 0 to the column
                        n_act = 0
                        for s_ in range(S):
                            if D[j, s_] != 0:
                                act[n_act] = s_
                                n_act = n_act + 1
                        n_sum = (n_act + DMFT_PANEL - 1) // DMFT_PANEL
                        cm = _nearest_grid(grids, j)
                        # panels in any order on any thread (the scratch is the thread's, the sums the panel's)
                        for blk in prange(n_sum, num_threads=nt, schedule="dynamic"):
                            own = scratch + threadid() * width
                            memset(&acc[blk, 0], 0, K * sizeof(double))
                            if stats:
                                memset(&st[blk, 0, 0], 0, 2 * K * sizeof(double))
                            nb = min(DMFT_PANEL, n_act - blk * DMFT_PANEL)
                            if kick > 0:
                                _kick_panel(&kp, &D[0, 0], S, &act[blk * DMFT_PANEL], nb, K, j, &nut[0], &MR[0, 0], dt,
                                            grad_scale, own, own + 2 * K * DMFT_PANEL, &acc[blk, 0],
                                            &st[blk, 0, 0] if stats else NULL, &ROW[0, 0, 0] if stats else NULL,
                                            &clamp_n[blk])
                            else:
                                _panel_column(&D[0, 0], S, &act[blk * DMFT_PANEL], nb, K, j, &nut[0], &MR[0, 0], cm, dt,
                                              grad_scale, own, own + K * DMFT_PANEL, own + 2 * K * DMFT_PANEL,
                                              own + (2 * K + DMFT_ROWS) * DMFT_PANEL, &acc[blk, 0],
                                              &st[blk, 0, 0] if stats else NULL, &ROW[0, 0, 0] if stats else NULL)
                    for lane in prange(0 if blocked else nl, num_threads=nt, schedule="static", chunksize=1):
                        memset(&acc[lane, 0], 0, K * sizeof(double))
                        if stats:
                            memset(&st[lane, 0, 0], 0, 2 * K * sizeof(double))
                        blk = lane
                        while blk < n_blocks:
                            if kick > 0:
                                _kick_column(&kp, &D[0, 0], S, blk * DMFT_BLOCK, min(DMFT_BLOCK, S - blk * DMFT_BLOCK),
                                             K, j, &nut[0], &MR[0, 0], dt, grad_scale, scratch + lane * width,
                                             &acc[lane, 0], &st[lane, 0, 0] if stats else NULL,
                                             &ROW[blk, 0, 0] if stats else NULL, &clamp_n[lane])
                            else:
                                _response_column(&D[0, 0], S, blk * DMFT_BLOCK, min(DMFT_BLOCK, S - blk * DMFT_BLOCK),
                                                 K, j, &nut[0], &MR[0, 0], dt, grad_scale, scratch + lane * width,
                                                 &acc[lane, 0], &st[lane, 0, 0] if stats else NULL,
                                                 &ROW[blk, 0, 0] if stats else NULL)
                            blk = blk + nl
                    for k in range(j + 1, K):
                        x = 0.0
                        for lane in range(n_sum):
                            x = x + acc[lane, k]
                        MR[k, j] = scale * x
                        if stats:
                            xa = 0.0
                            xq = 0.0
                            for lane in range(n_sum):
                                xa = xa + st[lane, 0, k]
                                xq = xq + st[lane, 1, k]
                            if xq > 0:
                                ESS[k, j] = xa * xa / xq
                                SE[k, j] = scale * sqrt(max(0.0, xq - x * x / S) * S / (S - 1.0)) if S > 1 else 0.0
                    for o in range(DMFT_GRIDS if compressing else 0):
                        if (j + grids[o].shift) % DMFT_ROWS == 0:     # a column block of that grid is final
                            _compress(&MR[0, 0], K, (j + grids[o].shift) // DMFT_ROWS, rank_tol, &grids[o], svd_buf,
                                      lwork)
                            if rank_tol > 0:
                                _windows(&grids[o], K, (j + grids[o].shift) // DMFT_ROWS, rank_tol, win_buf, wlwork)
    finally:
        for o in range(DMFT_GRIDS * n_win * n_win):
            free(wins[o])
        free(wins)
    if clamped is not None:
        clamped[0] = clamp_a.sum()
    if ranks is not None:
        ranks[:] = np.where(exact_a[0] == 1, -1, rank_a[0])[:len(ranks)] if compressing else -1
    if windows is not None:
        nb0 = grids[0].n_blocks
        windows[:] = (wrank_a[0, :nb0 * nb0].reshape(nb0, nb0)[:windows.shape[0], :windows.shape[1]] if compressing
                      else -1)
    if stats:
        with np.errstate(invalid="ignore", divide="ignore"):
            row_ess = ROW_a.sum(axis=(0, 2)) ** 2 / np.einsum("nkb,nkb->k", ROW_a, ROW_a)
        return MR_a, SE_a, ESS_a, row_ess
    return MR_a


def cholesky(const double[:, ::1] A, double jitter=0.0):
    """``(L, n_clipped, clipped)``: the lower Cholesky factor of ``A + jitter I`` row by row with
    ``cholesky_row`` (pivots that are not positive clipped to 0)."""
    cdef Py_ssize_t K = A.shape[0], k, n = 0
    if A.shape[1] != K:
        raise ValueError(f"A: shape {(A.shape[0], A.shape[1])} is not square")
    L = np.zeros((K, K))
    cdef double[:, ::1] Lv = L
    cdef double clipped = 0.0, c
    with nogil:
        for k in range(K):
            c = cholesky_row(&A[0, 0], &Lv[0, 0], K, k, jitter)
            if c > 0:
                clipped += c
                n += 1
    return L, int(n), float(clipped)


@cython.boundscheck(False)
@cython.wraparound(False)
def estimate(loss, const double[:, ::1] h_tilde, const double[::1] h0, const double[::1] y, sel, double alpha,
             double grad_scale, const double[::1] temps):
    """The march's estimators on given paths ``h~`` (``K x S``), teacher fields ``h0`` and labels ``y`` (``S``) and
    selection (``K x S`` uint8, or None): ``(M_C, delta_nu, nu_hat (A.19), mu, train_loss, G, D)`` with
    ``G = c s dv`` and ``D = s d2v`` (the inputs of ``response``)."""
    cdef Py_ssize_t K = h_tilde.shape[0], S = h_tilde.shape[1], k
    if h0.shape[0] != S or y.shape[0] != S or temps.shape[0] != K:
        raise ValueError(f"h0, y, temperature: lengths {h0.shape[0]}, {y.shape[0]}, {temps.shape[0]} do not match h_tilde's "
                         f"{S} samples and {K} times")
    cdef const unsigned char[:, ::1] sel_v = _selection(sel, K, S, "selection")
    cdef const unsigned char* sel_ptr = NULL if sel_v is None else &sel_v[0, 0]
    cdef const Loss* lp = loss_from_capsule(loss)
    # evaluate_chunk takes h and m with h~ = h + h0 m: pass h~ itself with m = 0
    cdef Py_ssize_t n_chunks = (S + DMFT_CHUNK - 1) // DMFT_CHUNK, ch
    G_a, D_a, MC_a, vec_a = np.empty((K, S)), np.empty((K, S)), np.zeros((K, K)), np.zeros((4, K))
    part_a = np.zeros((n_chunks, N_MARCH_SUMS + K))
    cdef double[:, ::1] G = G_a, D = D_a, MC = MC_a, vec = vec_a, part = part_a
    cdef double sums[N_MARCH_SUMS]
    cdef Estimates e
    cdef double inv_s = 1.0 / S
    with nogil:
        for k in range(K):
            for ch in range(n_chunks):
                _chunk_moments(lp, &h_tilde[0, 0], &h0[0], &y[0], sel_ptr, S, k, ch * DMFT_CHUNK,
                               min(DMFT_CHUNK, S - ch * DMFT_CHUNK), 0.0, 1.0, grad_scale, &G[0, 0], &D[0, 0],
                               &part[ch, 0])
            _reduce_moments(&part[0, 0], N_MARCH_SUMS + K, n_chunks, k, K, alpha, inv_s, &MC[0, 0], sums)
            e = _estimates(sums, alpha, grad_scale, inv_s, temps[k])
            vec[0, k] = e.delta_nu
            vec[1, k] = e.nu_hat
            vec[2, k] = e.mu
            vec[3, k] = e.train_loss
    return MC_a, vec_a[0], vec_a[1], vec_a[2], vec_a[3], G_a, D_a
