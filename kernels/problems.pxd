# Public Cython API of prcy.kernels.problems: see the module docstring in problems.pyx.

cdef enum TeacherKind:
    TEACHER_GAUSSIAN = 0         # uniform on the sphere |w0|^2 = n (a normalized Gaussian vector)
    TEACHER_RADEMACHER = 1       # w0_i = +-1 with probability 1/2 each

cdef enum:
    PROBLEM_N_PARAMS = 2         # length of Problem.theta

ctypedef double (*label_fn)(double h0, const double* theta) noexcept nogil

ctypedef struct Problem:
    int teacher                  # TeacherKind (for a mixture: the law of the cluster mean v*)
    label_fn label               # y = label(h0, theta) from the teacher's field h0 = x.w0/sqrt(n);
                                 # for a mixture y = label(c, theta) from the sample's cluster c
    double theta[PROBLEM_N_PARAMS]
    int clusters                 # 0: labels from a teacher; 2 or 3: a Gaussian mixture (c = +-1; or 0, +-1)
    double delta                 # a mixture's cluster variance Delta (x = c v*/sqrt(n) + sqrt(Delta) z)

cdef double label_modulus(double h0, const double* theta) noexcept nogil
cdef double label_identity(double h0, const double* theta) noexcept nogil
cdef double label_door(double h0, const double* theta) noexcept nogil
cdef double label_center(double c, const double* theta) noexcept nogil
cdef int problem_init(Problem* problem, str name, str teacher, double onset) except -1
cdef int problem_setup(Problem* problem, str name, str teacher, double onset, double delta) except -1
