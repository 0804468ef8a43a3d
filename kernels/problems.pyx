"""Teacher-student problems: how a teacher is drawn and how a sample's label follows from the
teacher's field ``h0 = x.w0/sqrt(n)``.

Usable from Cython via ``cimport prcy.kernels.problems``. A ``Problem`` holds the teacher's law
(``TeacherKind``) and the label function ``y = label(h0, theta)``; ``prcy.kernels.dynamics`` draws the
teacher and the inputs and labels the samples with it. Built in (``problem_init``):

- ``"phase-retrieval"``: ``y = |h0|`` (Mignacco et al. 2021, section 2);
- ``"linear-regression"``: ``y = h0``;
- ``"door"``: the symmetric door ``y = sign(|h0| - K)`` with ``K = theta[0]`` (``onset``; Dmitriev
  2021, section 2.3.2, uses ``K = 0.67449``, for which ``P(y = 1) = 1/2``).

Teachers: ``"gaussian"`` is uniform on the sphere ``|w0|^2 = n``; ``"rademacher"`` has entries
``+-1``. Both use the same ``n`` standard normals of the data stream (the Rademacher teacher takes
their signs), so the inputs drawn after them are the same for either teacher.
"""
import numpy as np

NAMES = ("phase-retrieval", "linear-regression", "door")
TEACHERS = {"gaussian": TEACHER_GAUSSIAN, "rademacher": TEACHER_RADEMACHER}


cdef double label_modulus(double h0, const double* theta) noexcept nogil:
    return h0 if h0 >= 0 else -h0

cdef double label_identity(double h0, const double* theta) noexcept nogil:
    return h0

cdef double label_door(double h0, const double* theta) noexcept nogil:
    return 1.0 if (h0 if h0 >= 0 else -h0) > theta[0] else -1.0


cdef int problem_init(Problem* problem, str name, str teacher, double onset) except -1:
    """Fill ``problem`` for the built-in ``name`` and ``teacher`` (``onset``: the door's ``K``)."""
    if name not in NAMES:
        raise ValueError(f"problem: {name!r} is not allowed; allowed: {', '.join(NAMES)}")
    if teacher not in TEACHERS:
        raise ValueError(f"teacher: {teacher!r} is not allowed; allowed: {', '.join(TEACHERS)}")
    problem.teacher = TEACHERS[teacher]
    problem.theta[0] = onset
    problem.theta[1] = 0.0
    if name == "phase-retrieval":
        problem.label = label_modulus
    elif name == "linear-regression":
        problem.label = label_identity
    else:
        if not onset > 0:
            raise ValueError(f"onset: {onset!r} is not allowed; allowed: a finite number > 0")
        problem.label = label_door
    return 0


def labels(str name, h0, double onset=0.0):
    """The labels ``y = label(h0)`` of problem ``name``, elementwise (Python twin; ``onset``: the
    door's ``K``, needed for the door only)."""
    cdef Problem problem
    problem_init(&problem, name, "gaussian", onset)
    src = np.ascontiguousarray(h0, dtype=np.float64)
    out = np.empty_like(src)
    cdef double[::1] a = src.reshape(-1), o = out.reshape(-1)
    cdef Py_ssize_t i
    with nogil:
        for i in range(a.shape[0]):
            o[i] = problem.label(a[i], problem.theta)
    return out
