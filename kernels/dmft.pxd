# Public Cython API of prcy.kernels.dmft: see the module docstring in dmft.pyx.
from prcy.kernels.losses cimport Loss

cdef enum:
    DMFT_BLOCK = 16      # samples whose responses are propagated together (SIMD width of the recursion)
    DMFT_CHUNK = 64      # samples per work item of the march
    DMFT_PANEL = 64      # samples per work item of the blocked response pass (the width of its matrix products)
    DMFT_ROWS = 32       # grid points per row block of the blocked response pass

cdef double cholesky_row(const double* A, double* L, Py_ssize_t K, Py_ssize_t k, double jitter) noexcept nogil
cdef void response_column(const double* D, Py_ssize_t S, Py_ssize_t c0, Py_ssize_t nb, Py_ssize_t K,
                          Py_ssize_t j, const double* nut, const double* MR, double dt, double grad_scale,
                          double* Tcol, double* acc) noexcept nogil
cdef void evaluate_chunk(const Loss* loss, const double* h, const double* h0, const double* y,
                         const unsigned char* sel, Py_ssize_t n, double m, double grad_scale, double* g, double* d,
                         double* sums) noexcept nogil
