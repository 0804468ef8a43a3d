"""The array boundary: public functions that take arrays accept NumPy arrays, Python numbers and
sequences, and any array that implements ``__dlpack__`` (array API standard libraries: torch, jax,
array_api_strict, CuPy on a host copy...), compute with NumPy, and give results back in the caller's
namespace.

Conversion happens once, at the edge: a NumPy input is used as is (``np.asarray``, no copy for a
float64 array); another namespace's CPU array is read through DLPack (zero-copy when the producer
allows it), and the result is handed back with that namespace's ``asarray``. An array that cannot be
read on the host (a GPU tensor) is a clear ``ValueError`` naming the argument.
"""
from __future__ import annotations

import functools
import inspect

import numpy as np


def _foreign(value) -> bool:
    return hasattr(value, "__dlpack__") and not isinstance(value, (np.ndarray, np.generic))


def to_numpy(value, name: str):
    """``value`` as a NumPy array (or number), read through DLPack when it is another library's array."""
    if not _foreign(value):
        return value
    try:
        return np.from_dlpack(value)
    except (BufferError, RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(f"{name}: cannot read this {type(value).__module__}.{type(value).__name__} on the host "
                         f"({exc}); allowed: CPU arrays (move it to the CPU first)") from None


def real_array(value, name: str) -> np.ndarray:
    """``value`` (any array-API / DLPack / buffer-protocol / ``__array_interface__`` object) as NumPy,
    without copying; a clear error when it cannot be read on the host or is not real numbers."""
    if value is None:
        raise ValueError(f"{name}: missing")
    arr = to_numpy(value, name)
    try:
        arr = np.asarray(arr)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: cannot be read as an array ({exc})") from None
    if arr.dtype.kind not in "fiu" or arr.dtype.itemsize > 8:
        raise ValueError(f"{name}: dtype {arr.dtype} is not allowed; allowed: real numbers (float64 and float32 "
                         f"are used as they are, other real types are converted to float64)")
    return arr


def array_api_boundary(*names: str):
    """Decorator: the arguments ``names`` may be any array-API / DLPack array; if one is, the result (or
    each array in a returned tuple) comes back in its namespace."""
    def wrap(func):
        signature = inspect.signature(func)

        @functools.wraps(func)
        def inner(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            xp = None
            for name in names:
                if name in bound.arguments and _foreign(bound.arguments[name]):
                    if xp is None:
                        from array_api_compat import array_namespace
                        xp = array_namespace(bound.arguments[name])
                    bound.arguments[name] = to_numpy(bound.arguments[name], name)
            out = func(*bound.args, **bound.kwargs)
            if xp is None:
                return out
            if isinstance(out, tuple):
                return tuple(xp.asarray(np.asarray(o)) for o in out)
            return xp.asarray(np.asarray(out))
        return inner
    return wrap
