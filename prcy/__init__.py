"""prcy: gradient-based dynamics on rough high-dimensional landscapes (phase retrieval).

``prcy.simulate(...)`` runs GD, multi-pass SGD, persistent SGD and Langevin dynamics with compiled
kernels (``prcy.kernels``) and returns a labelled ``xarray.Dataset``; ``prcy.io`` writes and reads
NetCDF; ``prcy.analysis`` holds formulas and summaries; ``prcy`` on the command line wraps them.
"""
__version__ = "0.1.0"


def get_include() -> str:
    """The folder to put on Cython's include path (``include_path=[prcy.get_include()]`` in
    ``cythonize``, or ``-I`` for ``cython``) so that ``cimport prcy.kernels.losses`` (and
    ``switching``, ``dynamics``, ``dmft``, ``parallel``) finds the installed ``.pxd`` files. The
    kernels need no C headers or libraries of their own at link time: their functions are reached
    through the modules' ``__pyx_capi__`` once ``prcy.kernels.X`` is imported."""
    import os
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from prcy.specs import (Algorithm, Constraint, Initialization, Problem, Recording, SimulationSpec,  # noqa: E402
                        Stopping)
from prcy.simulate import simulate  # noqa: E402  (rebinds prcy.simulate from the module to the function)

__all__ = ["get_include", "simulate", "SimulationSpec", "Problem", "Algorithm", "Constraint", "Initialization",
           "Recording", "Stopping", "__version__"]
