import os

import prcy

SOURCE_TREE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

if not os.path.isdir(os.path.join(os.path.dirname(prcy.__file__), "kernels")):
    raise ImportError(
        f"prcy was imported from {os.path.dirname(prcy.__file__)}, which has no compiled kernels: "
        f"install it (pip install '.[test]') and run `pytest` (not `python -m pytest`, which puts the "
        f"source folder first on sys.path)")
