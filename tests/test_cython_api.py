"""The exported C-level signatures of prcy.kernels (``__pyx_capi__``) against the checked-in list
``tests/cython_api.txt``: removing or changing a signature breaks other people's Cython code and fails
here; adding one passes."""
import ctypes
import importlib
from pathlib import Path

ctypes.pythonapi.PyCapsule_GetName.restype = ctypes.c_char_p
ctypes.pythonapi.PyCapsule_GetName.argtypes = [ctypes.py_object]


def exported():
    out = set()
    for module in ("losses", "problems", "optimizers", "switching", "dynamics", "parallel", "dmft"):
        mod = importlib.import_module(f"prcy.kernels.{module}")
        for name, capsule in mod.__pyx_capi__.items():
            if not name.startswith("__pyx_fuse_"):
                out.add((module, name, ctypes.pythonapi.PyCapsule_GetName(capsule).decode()))
    return out


def test_pinned_signatures_are_all_still_exported():
    lines = (Path(__file__).parent / "cython_api.txt").read_text().splitlines()
    pinned = {tuple(line.split("\t")) for line in lines if line and not line.startswith("#")}
    assert len(pinned) >= 20
    missing = pinned - exported()
    assert not missing, f"removed or changed C signatures: {sorted(missing)}"
