"""Threads and build facts.

``effective_n_threads(n_threads)`` (``cdef int ... except -1``, needs the GIL): ``None`` -> OpenMP's
default (honours ``OMP_NUM_THREADS``), ``n >= 1`` -> ``n``, ``-1`` -> all cores; always 1 when prcy was
built without OpenMP; any other value raises ``ValueError`` (returned as -1 to Cython callers).
``build_info()``: how the kernels were compiled (OpenMP, instruction set).
"""
cimport openmp

cdef extern from *:
    """
    #ifndef PRCY_MARCH
    #define PRCY_MARCH "unknown"
    #endif
    #ifndef PRCY_OPENMP
    #define PRCY_OPENMP 0
    #endif
    """
    const char* PRCY_MARCH
    int PRCY_OPENMP


def openmp_enabled():
    """True when the kernels were built with OpenMP."""
    return bool(PRCY_OPENMP)


cdef int effective_n_threads(object n_threads) except -1:
    if n_threads is not None and (not isinstance(n_threads, int) or isinstance(n_threads, bool)
                                  or n_threads == 0 or n_threads < -1):
        raise ValueError(f"threads: {n_threads!r} is not allowed; use None, -1 (all cores) or an integer >= 1")
    if not PRCY_OPENMP:
        return 1
    if n_threads is None:
        return openmp.omp_get_max_threads()
    if n_threads == -1:
        return openmp.omp_get_num_procs()
    return n_threads


def n_threads(value=None):
    """Python twin of ``effective_n_threads``."""
    return effective_n_threads(value)


def build_info():
    """``{"openmp": bool, "march": str}``: how the kernels were compiled."""
    return {"openmp": bool(PRCY_OPENMP), "march": PRCY_MARCH.decode()}
