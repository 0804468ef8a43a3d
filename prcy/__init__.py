"""prcy: gradient-based dynamics on rough high-dimensional landscapes (phase retrieval).

``prcy.simulate(...)`` runs GD, multi-pass SGD, persistent SGD and Langevin dynamics with compiled
kernels (``prcy.kernels``) and returns a labelled ``xarray.Dataset``; ``prcy.io`` writes and reads
NetCDF; ``prcy.analysis`` holds formulas and summaries; ``prcy`` on the command line wraps them.
"""
__version__ = "0.1.0"

from prcy.specs import (Algorithm, Constraint, Initialization, Problem, Recording, SimulationSpec,  # noqa: E402
                        Stopping)
from prcy.simulate import simulate  # noqa: E402  (rebinds prcy.simulate from the module to the function)

__all__ = ["simulate", "SimulationSpec", "Problem", "Algorithm", "Constraint", "Initialization",
           "Recording", "Stopping", "__version__"]
