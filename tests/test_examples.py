"""The shipped example grids stay valid (parsed and expanded into tasks, no compute)."""
from pathlib import Path

import pytest

from prcy.sweep import Sweep, load_grid_file

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.toml"))


def test_examples_exist():
    names = {p.stem for p in EXAMPLES}
    assert {"fig2", "fig2-laptop", "fig4-batch", "fig4-persistence", "fig4-temperature", "fig7",
            "success-vs-alpha"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_grid_is_valid(path):
    sweep = Sweep.from_options(load_grid_file(path))
    assert sweep.dims and len(sweep.tasks()) >= 3
