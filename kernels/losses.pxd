# Public Cython API of prcy.kernels.losses: see the module docstring in losses.pyx.
from libc.stdint cimport uint32_t

cdef enum:
    LOSS_MAGIC = 0x70726379      # "prcy": first field of every Loss
    LOSS_ABI_VERSION = 2         # functions of (h, y, theta); capsule name "prcy.Loss.v2"
    LOSS_N_PARAMS = 4            # length of Loss.theta

ctypedef double (*loss_fn)(double h, double y, const double* theta) noexcept nogil

ctypedef struct Loss:
    uint32_t magic               # LOSS_MAGIC
    uint32_t version             # LOSS_ABI_VERSION
    size_t size                  # sizeof(Loss)
    loss_fn v                    # per-sample loss v(h; y): student field h, label y
    loss_fn dv                   # dv/dh
    loss_fn d2v                  # d^2v/dh^2
    loss_fn err                  # test error of predicting with field h a sample whose label is y
    double theta[LOSS_N_PARAMS]  # the loss's parameters, passed to every call

cdef double phase_retrieval_v(double h, double y, const double* theta) noexcept nogil
cdef double phase_retrieval_dv(double h, double y, const double* theta) noexcept nogil
cdef double phase_retrieval_d2v(double h, double y, const double* theta) noexcept nogil
cdef double phase_retrieval_err(double h, double y, const double* theta) noexcept nogil

cdef double linear_v(double h, double y, const double* theta) noexcept nogil
cdef double linear_dv(double h, double y, const double* theta) noexcept nogil
cdef double linear_d2v(double h, double y, const double* theta) noexcept nogil
cdef double linear_err(double h, double y, const double* theta) noexcept nogil

cdef double absolute_v(double h, double y, const double* theta) noexcept nogil
cdef double absolute_dv(double h, double y, const double* theta) noexcept nogil
cdef double absolute_d2v(double h, double y, const double* theta) noexcept nogil

cdef double door_square_v(double h, double y, const double* theta) noexcept nogil
cdef double door_square_dv(double h, double y, const double* theta) noexcept nogil
cdef double door_square_d2v(double h, double y, const double* theta) noexcept nogil
cdef double door_logistic_v(double h, double y, const double* theta) noexcept nogil
cdef double door_logistic_dv(double h, double y, const double* theta) noexcept nogil
cdef double door_logistic_d2v(double h, double y, const double* theta) noexcept nogil
cdef double door_err(double h, double y, const double* theta) noexcept nogil

cdef double margin_v(double h, double y, const double* theta) noexcept nogil
cdef double margin_dv(double h, double y, const double* theta) noexcept nogil
cdef double margin_d2v(double h, double y, const double* theta) noexcept nogil
cdef double margin_err(double h, double y, const double* theta) noexcept nogil

cdef void loss_init(Loss* loss, loss_fn v, loss_fn dv, loss_fn d2v, loss_fn err) noexcept nogil
cdef const Loss* loss_from_capsule(object capsule) except NULL
