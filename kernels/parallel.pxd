# Public Cython API of prcy.kernels.parallel: see the module docstring in parallel.pyx.
cdef int effective_n_threads(object n_threads) except -1
