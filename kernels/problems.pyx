"""Problems: how the data of a sample is drawn and labelled.

Usable from Cython via ``cimport prcy.kernels.problems``. A ``Problem`` holds the teacher's law
(``TeacherKind``), the label function ``y = label(., theta)`` and, for a Gaussian mixture, its number
of clusters and cluster variance; ``prcy.kernels.dynamics`` draws the teacher and the inputs and
labels the samples with it. Built in (``problem_setup``):

- ``"phase-retrieval"``: ``y = |h0|`` with ``h0 = x.w0/sqrt(n)`` the teacher's field (Mignacco et al.
  2021, section 2);
- ``"linear-regression"``: ``y = h0``;
- ``"door"``: the symmetric door ``y = sign(|h0| - K)`` with ``K = theta[0]`` (``onset``; Dmitriev
  2021, section 2.3.2, uses ``K = 0.67449``, for which ``P(y = 1) = 1/2``);
- ``"mixture-2"``, ``"mixture-3"``: Gaussian mixtures (Mignacco et al. 2020, eqs 1-3), inputs
  ``x = c v*/sqrt(n) + sqrt(Delta) z`` with ``z ~ N(0, I)`` and the cluster mean ``v*`` (the teacher
  vector, ``|v*|^2 = n``); two clusters: ``c = +-1`` with probability 1/2 each and ``y = c``
  (``label_identity`` of ``c``); three clusters: ``c = 0`` with probability 1/2, ``c = +-1`` with 1/4
  each, ``y = -1`` if ``c = 0`` else ``+1`` (``label_center``).

Teachers: ``"gaussian"`` is uniform on the sphere ``|w0|^2 = n``; ``"rademacher"`` has entries
``+-1``. Both use the same ``n`` standard normals of the data stream (the Rademacher teacher takes
their signs), so the inputs drawn after them are the same for either teacher. For a mixture the law
of everything prcy computes depends on ``v*`` only through ``|v*|^2 = n``: ``z`` and every
initialization are invariant under rotations (and ``v* = (1, ..., 1)``, the paper's choice, is a
Rademacher vector up to flipping the signs of coordinates, which leaves ``z`` and ``w(0)`` in law
unchanged).
"""
import numpy as np

TEACHER_PROBLEMS = ("phase-retrieval", "linear-regression", "door")
MIXTURES = {"mixture-2": 2, "mixture-3": 3}
NAMES = TEACHER_PROBLEMS + tuple(MIXTURES)
TEACHERS = {"gaussian": TEACHER_GAUSSIAN, "rademacher": TEACHER_RADEMACHER}


cdef double label_modulus(double h0, const double* theta) noexcept nogil:
    return h0 if h0 >= 0 else -h0

cdef double label_identity(double h0, const double* theta) noexcept nogil:
    return h0

cdef double label_door(double h0, const double* theta) noexcept nogil:
    return 1.0 if (h0 if h0 >= 0 else -h0) > theta[0] else -1.0

cdef double label_center(double c, const double* theta) noexcept nogil:
    return -1.0 if c == 0.0 else 1.0


cdef int problem_setup(Problem* problem, str name, str teacher, double onset, double delta) except -1:
    """Fill ``problem`` for the built-in ``name`` and ``teacher`` (``onset``: the door's ``K``;
    ``delta``: a mixture's cluster variance, ignored otherwise)."""
    if name not in NAMES:
        raise ValueError(f"problem: {name!r} is not allowed; allowed: {', '.join(NAMES)}")
    if teacher not in TEACHERS:
        raise ValueError(f"teacher: {teacher!r} is not allowed; allowed: {', '.join(TEACHERS)}")
    problem.teacher = TEACHERS[teacher]
    problem.theta[0] = onset
    problem.theta[1] = 0.0
    problem.clusters = MIXTURES.get(name, 0)
    problem.delta = 0.0
    if problem.clusters:
        if not 0 < delta < float("inf"):
            raise ValueError(f"delta: {delta!r} is not allowed; allowed: a finite number > 0")
        problem.delta = delta
        problem.label = label_identity if problem.clusters == 2 else label_center
    elif name == "phase-retrieval":
        problem.label = label_modulus
    elif name == "linear-regression":
        problem.label = label_identity
    else:
        if not onset > 0:
            raise ValueError(f"onset: {onset!r} is not allowed; allowed: a finite number > 0")
        problem.label = label_door
    return 0


cdef int problem_init(Problem* problem, str name, str teacher, double onset) except -1:
    """``problem_setup`` for a problem labelled by a teacher (the first API, kept for Cython users;
    a mixture needs its ``delta``: ``problem_setup``)."""
    if name in MIXTURES:
        raise ValueError(f"problem: {name!r} needs its cluster variance; use problem_setup(..., delta)")
    return problem_setup(problem, name, teacher, onset, 0.0)


def labels(str name, h0, double onset=0.0):
    """The labels ``y = label(h0)`` of problem ``name``, elementwise (Python twin; ``onset``: the
    door's ``K``, needed for the door only). For a mixture ``h0`` holds the clusters ``c``."""
    cdef Problem problem
    problem_setup(&problem, name, "gaussian", onset, 1.0)
    src = np.ascontiguousarray(h0, dtype=np.float64)
    out = np.empty_like(src)
    cdef double[::1] a = src.reshape(-1), o = out.reshape(-1)
    cdef Py_ssize_t i
    with nogil:
        for i in range(a.shape[0]):
            o[i] = problem.label(a[i], problem.theta)
    return out
