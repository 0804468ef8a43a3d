# Public Cython API of prcy.kernels.dmft: see the module docstring in dmft.pyx.
from prcy.kernels.losses cimport Loss

cdef enum:
    DMFT_BLOCK = 16      # samples whose responses are propagated together (SIMD width of the recursion)
    DMFT_CHUNK = 64      # samples per work item of the march
    DMFT_PANEL = 64      # samples per work item of the blocked response pass (the width of its matrix products)
    DMFT_ROWS = 48       # grid points per row block of the blocked response pass

cdef enum NuForm:        # how the march gets nu_hat
    NU_RIDGE = 0         # the ridge: nu_hat = lambda
    NU_A19 = 1           # from the samples: -alpha <g h~> + T (A.19)
    NU_A29 = 2           # on the sphere from C, R and the kernels (A.29)

cdef enum:               # the sample sums of evaluate_chunk: sums[SUM_D], ..., N_SUMS of them
    SUM_D = 0            # sum s d2v(h~)
    SUM_HT_DV = 1        # sum s h~ dv(h~)
    SUM_H0_DV = 2        # sum s h0 dv(h~)
    SUM_V = 3            # sum v(h~)
    N_SUMS = 4

cdef double cholesky_row(const double* A, double* L, Py_ssize_t K, Py_ssize_t k, double jitter) noexcept nogil
cdef void response_column(const double* D, Py_ssize_t S, Py_ssize_t c0, Py_ssize_t nb, Py_ssize_t K,
                          Py_ssize_t j, const double* nut, const double* MR, double dt, double grad_scale,
                          double* Tcol, double* acc) noexcept nogil
cdef void evaluate_chunk(const Loss* loss, const double* h, const double* h0, const double* y,
                         const unsigned char* sel, Py_ssize_t n, double m, double grad_scale, double* g, double* d,
                         double* sums) noexcept nogil
