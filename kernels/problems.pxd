# Public Cython API of prcy.kernels.problems: see the module docstring in problems.pyx.

cdef enum TeacherKind:
    TEACHER_GAUSSIAN = 0         # uniform on the sphere |w0|^2 = n (a normalized Gaussian vector)
    TEACHER_RADEMACHER = 1       # w0_i = +-1 with probability 1/2 each

cdef enum:
    PROBLEM_N_PARAMS = 2         # length of Problem.theta

ctypedef double (*label_fn)(double h0, const double* theta) noexcept nogil

ctypedef struct Problem:
    int teacher                  # TeacherKind
    label_fn label               # y = label(h0, theta) from the teacher's field h0 = x.w0/sqrt(n)
    double theta[PROBLEM_N_PARAMS]

cdef double label_modulus(double h0, const double* theta) noexcept nogil
cdef double label_identity(double h0, const double* theta) noexcept nogil
cdef double label_door(double h0, const double* theta) noexcept nogil
cdef int problem_init(Problem* problem, str name, str teacher, double onset) except -1
