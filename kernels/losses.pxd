# Public Cython API of prcy.kernels.losses: see the module docstring in losses.pyx.

ctypedef double (*loss_fn)(double h, double h0) noexcept nogil

ctypedef struct Loss:
    loss_fn v      # per-sample loss v(h; h0)
    loss_fn dv     # dv/dh
    loss_fn d2v    # d^2v/dh^2
    loss_fn err    # test error of predicting with field h when the teacher field is h0

cdef double phase_retrieval_v(double h, double h0) noexcept nogil
cdef double phase_retrieval_dv(double h, double h0) noexcept nogil
cdef double phase_retrieval_d2v(double h, double h0) noexcept nogil
cdef double phase_retrieval_err(double h, double h0) noexcept nogil

cdef double linear_v(double h, double h0) noexcept nogil
cdef double linear_dv(double h, double h0) noexcept nogil
cdef double linear_d2v(double h, double h0) noexcept nogil
cdef double linear_err(double h, double h0) noexcept nogil

cdef const Loss* loss_from_capsule(object capsule) except NULL
