# Public Cython API of prcy.kernels.optimizers: see the module docstring in optimizers.pyx.
from libc.stdint cimport int64_t

cdef enum OptimizerKind:
    OPT_PLAIN = 0                # w <- w - eta G
    OPT_MOMENTUM = 1             # heavy ball (Dmitriev 2021, eq 2.13)
    OPT_NESTEROV = 2             # Nesterov (eq 2.14)
    OPT_ADAM = 3                 # Adam, bias-corrected (Kingma & Ba 2015)

ctypedef struct Optimizer:
    int kind                     # OptimizerKind
    Py_ssize_t n_state           # vectors of length n of per-weight state (0, 1 or 2)
    double momentum              # gamma (momentum, nesterov)
    double beta1                 # Adam's decay rates and epsilon
    double beta2
    double eps
    int project_velocity         # on the sphere: keep the first state vector tangent to the sphere

cdef void optimizer_step(const Optimizer* opt, double* w, const double* g, double ridge, double eta,
                         double* state, int64_t t, Py_ssize_t n) noexcept nogil
cdef void optimizer_project(const Optimizer* opt, double* state, const double* w, Py_ssize_t n) noexcept nogil
cdef int optimizer_init(Optimizer* opt, str name, double momentum, double beta1, double beta2, double eps,
                        bint project_velocity) except -1
