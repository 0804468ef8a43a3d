"""Loss families as structs of ``nogil`` function pointers.

Usable from Cython via ``cimport prcy.kernels.losses``. Layers, as in the other kernels:

(a) single-sample functions ``double f(double h, double h0) noexcept nogil``;
(b) the struct ``Loss`` that groups ``v``, ``dv = dv/dh``, ``d2v = d^2v/dh^2`` and ``err`` (the test
    error of one sample: predicted field ``h``, teacher field ``h0``);
(c) array loops live in ``prcy.kernels.dynamics``, which calls a ``Loss`` through its pointers;
(d) Python twins here (``value``, ``derivative``, ``second_derivative``, ``test_error``) for tests.

Built-in families (names as used by ``prcy.simulate(problem=...)``):

- ``"phase-retrieval"``: ``v = (h^2 - h0^2)^2 / 4``, ``dv = (h^2 - h0^2) h``, ``d2v = 3 h^2 - h0^2``,
  ``err = (|h0| - |h|)^2`` (labels ``y = |h0|``);
- ``"linear-regression"``: ``v = (h - h0)^2 / 2``, ``dv = h - h0``, ``d2v = 1``, ``err = (h0 - h)^2``.

A loss of your own: write the four functions in Cython, fill a ``Loss`` and hand its address to prcy
in a ``PyCapsule`` named ``"prcy.Loss"`` (see ``capsule``). ``loss_from_capsule`` checks the name and
that no pointer is NULL. The functions must be pure, thread-safe and ``noexcept nogil``.
"""
from cpython.pycapsule cimport PyCapsule_New, PyCapsule_GetPointer, PyCapsule_IsValid
import numpy as np

CAPSULE_NAME = "prcy.Loss"
cdef const char* _CAPSULE_NAME = b"prcy.Loss"   # static storage: a capsule keeps the pointer


cdef double phase_retrieval_v(double h, double h0) noexcept nogil:
    cdef double d = h * h - h0 * h0
    return 0.25 * d * d

cdef double phase_retrieval_dv(double h, double h0) noexcept nogil:
    return (h * h - h0 * h0) * h

cdef double phase_retrieval_d2v(double h, double h0) noexcept nogil:
    return 3.0 * h * h - h0 * h0

cdef double phase_retrieval_err(double h, double h0) noexcept nogil:
    cdef double d = (h0 if h0 >= 0 else -h0) - (h if h >= 0 else -h)
    return d * d


cdef double linear_v(double h, double h0) noexcept nogil:
    return 0.5 * (h - h0) * (h - h0)

cdef double linear_dv(double h, double h0) noexcept nogil:
    return h - h0

cdef double linear_d2v(double h, double h0) noexcept nogil:
    return 1.0

cdef double linear_err(double h, double h0) noexcept nogil:
    return (h0 - h) * (h0 - h)


cdef Loss _PHASE_RETRIEVAL
_PHASE_RETRIEVAL.v = phase_retrieval_v
_PHASE_RETRIEVAL.dv = phase_retrieval_dv
_PHASE_RETRIEVAL.d2v = phase_retrieval_d2v
_PHASE_RETRIEVAL.err = phase_retrieval_err

cdef Loss _LINEAR
_LINEAR.v = linear_v
_LINEAR.dv = linear_dv
_LINEAR.d2v = linear_d2v
_LINEAR.err = linear_err

cdef dict _BUILTIN = {
    "phase-retrieval": PyCapsule_New(<void*>&_PHASE_RETRIEVAL, _CAPSULE_NAME, NULL),
    "linear-regression": PyCapsule_New(<void*>&_LINEAR, _CAPSULE_NAME, NULL),
}

NAMES = tuple(_BUILTIN)


def capsule(name):
    """The ``PyCapsule`` (name ``"prcy.Loss"``) holding the built-in loss ``name``."""
    try:
        return _BUILTIN[name]
    except KeyError:
        raise ValueError(f"loss: unknown name {name!r}; allowed: {', '.join(NAMES)}") from None


cdef const Loss* loss_from_capsule(object cap) except NULL:
    """The ``Loss`` inside ``cap``; raises when it is not a ``"prcy.Loss"`` capsule or has NULLs."""
    if not PyCapsule_IsValid(cap, _CAPSULE_NAME):
        raise TypeError(f"loss: expected a PyCapsule named 'prcy.Loss', got {type(cap).__name__}")
    cdef const Loss* loss = <const Loss*> PyCapsule_GetPointer(cap, _CAPSULE_NAME)
    if loss.v == NULL or loss.dv == NULL or loss.d2v == NULL or loss.err == NULL:
        raise ValueError("loss: the capsule's Loss has a NULL function pointer")
    return loss


def _resolve(loss):
    """A built-in name or a capsule -> a capsule."""
    return capsule(loss) if isinstance(loss, str) else loss


cdef _apply(object loss_or_name, int which, h, h0):
    cdef const Loss* loss = loss_from_capsule(_resolve(loss_or_name))
    cdef loss_fn f
    if which == 0:
        f = loss.v
    elif which == 1:
        f = loss.dv
    elif which == 2:
        f = loss.d2v
    else:
        f = loss.err
    hb, h0b = np.broadcast_arrays(np.asarray(h, dtype=np.float64), np.asarray(h0, dtype=np.float64))
    out = np.empty(hb.shape, dtype=np.float64)
    cdef double[::1] o = out.reshape(-1)
    cdef double[::1] a = np.ascontiguousarray(hb).reshape(-1)
    cdef double[::1] b = np.ascontiguousarray(h0b).reshape(-1)
    cdef Py_ssize_t i
    with nogil:
        for i in range(o.shape[0]):
            o[i] = f(a[i], b[i])
    return out


def value(name, h, h0):
    """``v(h; h0)`` of the built-in loss ``name`` (or a ``"prcy.Loss"`` capsule), elementwise."""
    return _apply(name, 0, h, h0)

def derivative(name, h, h0):
    """``dv/dh`` elementwise."""
    return _apply(name, 1, h, h0)

def second_derivative(name, h, h0):
    """``d^2v/dh^2`` elementwise."""
    return _apply(name, 2, h, h0)

def test_error(name, h, h0):
    """Per-sample test error ``err(h; h0)`` elementwise."""
    return _apply(name, 3, h, h0)
