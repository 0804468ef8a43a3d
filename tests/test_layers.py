"""The package's layers, read from its sources: no import circle between modules, and no module
imports another module's private (``_x``) name."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# source folder -> the package it is installed as
PACKAGES = {"prcy": "prcy", "analysis": "prcy.analysis"}


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).glob("*.py")):
            found[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path):
    """``(module, imported name or None, local name)`` for every import in the module's source, at any
    depth (imports inside functions count: they make a circle all the same)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, alias.asname
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name if path.stem == "__init__" else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            for alias in node.names:
                yield base, alias.name, alias.asname or alias.name


def _graph() -> dict[str, set[str]]:
    """Which of the package's modules each module imports (a package ``__init__`` that re-exports is
    not an edge of its own modules' circles: ``from prcy.analysis import x`` counts as importing the
    module that defines ``x`` only through the package)."""
    graph = {}
    for name, path in MODULES.items():
        edges = set()
        for module, item, _ in _imports(name, path):
            if item is not None and f"{module}.{item}" in MODULES:
                edges.add(f"{module}.{item}")       # from prcy.analysis import plots
            elif module in MODULES:
                edges.add(module)
        edges.discard(name)
        graph[name] = edges
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_sources_are_found():
    assert {"prcy.io", "prcy.dmft", "prcy.cli", "prcy.analysis.plots", "prcy.analysis"} <= set(MODULES)


def test_no_import_circle_between_modules():
    graph = _graph()
    # a package's __init__ imports its modules; a module importing from its package goes through it
    for package in PACKAGES.values():
        for name in graph:
            if name.startswith(package + ".") and name.count(".") == package.count(".") + 1:
                graph[name].discard(package)
    cycle = _cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def _is_package_module(name: str) -> bool:
    return name in MODULES or name.startswith("prcy.kernels.")


def test_no_module_imports_another_modules_private_name():
    found = []
    for name, path in MODULES.items():
        aliases = {}            # local name -> the package's module it is bound to
        for module, item, local in _imports(name, path):
            full = module if item is None else f"{module}.{item}"
            if local is not None and _is_package_module(full):
                aliases[local] = full
            if item is not None and module.startswith("prcy") and item.startswith("_") \
                    and not item.startswith("__"):
                found.append(f"{name} imports {full}")
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases \
                    and node.attr.startswith("_") and not node.attr.startswith("__"):
                found.append(f"{name} uses {aliases[node.value.id]}.{node.attr}")
    assert not found, "\n".join(found)


def test_the_circle_finder_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_io_and_analysis_sit_below_the_drivers():
    """Storage knows no physics: ``prcy.io`` imports no other module of the package (the package itself
    only, for its version); ``prcy.analysis`` imports no driver, sweep or command line."""
    graph = _graph()
    assert graph["prcy.io"] <= {"prcy"}
    above = {"prcy.simulate", "prcy.dmft", "prcy.data", "prcy.sweep", "prcy.cli"}
    for name, edges in graph.items():
        if name.startswith("prcy.analysis"):
            assert not edges & above, f"{name} imports {sorted(edges & above)}"
