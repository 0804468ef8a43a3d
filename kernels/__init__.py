"""Compiled kernels of prcy (Cython, ``nogil``).

Public Cython modules (``cimport prcy.kernels.<name>``): ``losses``, ``switching``, ``dynamics``,
``parallel``. Each module's docstring documents its C-level API.
"""
