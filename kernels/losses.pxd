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

# v(h; y), with dv/dh written to dv[0]: the one-call form of a built-in loss whose v and dv share work
ctypedef double (*loss_vdv_fn)(double h, double y, const double* theta, double* dv) noexcept nogil
cdef loss_vdv_fn fused_value_derivative(const Loss* loss) noexcept nogil
# n samples (fields h[i], labels y[i]): dv/dh written to dv[i], a lower and an upper bound on v to
# lower[i] and upper[i]: the same loss's form for a sum of v that is only compared with a threshold
ctypedef void (*loss_block_dv_bounds_fn)(const double* h, const double* y, Py_ssize_t n,
                                         const double* theta, double* dv, double* lower,
                                         double* upper) noexcept nogil
cdef loss_block_dv_bounds_fn fused_derivative_bounds(const Loss* loss) noexcept nogil

cdef void loss_init(Loss* loss, loss_fn v, loss_fn dv, loss_fn d2v, loss_fn err) noexcept nogil
cdef const Loss* loss_from_capsule(object capsule) except NULL


# Committee losses (a student with K hidden units, Dmitriev 2021 eq 2.3): one call per sample takes the
# K fields h_k = w_k.x/sqrt(N) and returns Lambda(y, h[K]); with dv != NULL it also writes dLambda/dh_k
# into dv[0..K-1]. Capsule name "prcy.CommitteeLoss.v1".
cdef enum:
    COMMITTEE_LOSS_MAGIC = 0x70726363        # "prcc": first field of every CommitteeLoss
    COMMITTEE_LOSS_ABI_VERSION = 1

ctypedef double (*committee_fn)(const double* h, Py_ssize_t k, double y, const double* theta,
                                double* dv) noexcept nogil
ctypedef double (*committee_err_fn)(const double* h, Py_ssize_t k, double y, const double* theta) noexcept nogil

ctypedef struct CommitteeLoss:
    uint32_t magic               # COMMITTEE_LOSS_MAGIC
    uint32_t version             # COMMITTEE_LOSS_ABI_VERSION
    size_t size                  # sizeof(CommitteeLoss)
    committee_fn v               # Lambda(y, h[k]); fills dv[0..k-1] = dLambda/dh_j unless dv is NULL
    committee_err_fn err         # test error of one sample with fields h[k] and label y
    double theta[LOSS_N_PARAMS]  # the loss's parameters, passed to every call

cdef double committee_phase_retrieval_v(const double* h, Py_ssize_t k, double y, const double* theta,
                                        double* dv) noexcept nogil
cdef double committee_phase_retrieval_err(const double* h, Py_ssize_t k, double y, const double* theta) noexcept nogil
cdef double committee_absolute_v(const double* h, Py_ssize_t k, double y, const double* theta,
                                 double* dv) noexcept nogil
cdef double committee_modulus_err(const double* h, Py_ssize_t k, double y, const double* theta) noexcept nogil
cdef double committee_door_square_v(const double* h, Py_ssize_t k, double y, const double* theta,
                                    double* dv) noexcept nogil
cdef double committee_door_logistic_v(const double* h, Py_ssize_t k, double y, const double* theta,
                                      double* dv) noexcept nogil
cdef double committee_door_err(const double* h, Py_ssize_t k, double y, const double* theta) noexcept nogil

cdef void committee_loss_init(CommitteeLoss* loss, committee_fn v, committee_err_fn err) noexcept nogil
cdef const CommitteeLoss* committee_loss_from_capsule(object capsule) except NULL
