"""The package imports as a DAG: no module imports, directly or through others, itself.

The graph is built from the source (``ast``), so it also sees imports inside functions, which
hide cycles at run time: every ``import``/``from`` statement of every alphafree_d2 module gives an
edge to the alphafree_d2 module it names (``from pkg import name`` to ``pkg.name`` when that is a
module, else to ``pkg``, i.e. its ``__init__``), and to the packages that importing it
initialises first, except the importing module's own enclosing packages (already initialising).
"""

import ast
import graphlib
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "alphafree_d2"


def _modules(root):
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        modules[".".join(parts)] = (path, is_package)
    return modules


def import_graph(root=PACKAGE_ROOT):
    """{module: set of the package's modules it imports}, for the package folder ``root``."""
    modules = _modules(root)
    graph = {}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names
                ]
            else:
                continue
            for target in targets:
                # Importing a.b.c first initialises a and a.b: those of them that are not already
                # initialising around this module (its own ancestors) are edges too.
                parts = target.split(".")
                for depth in range(1, len(parts) + 1):
                    edge = ".".join(parts[:depth])
                    if edge in modules and edge != name and not name.startswith(edge + "."):
                        edges.add(edge)
        graph[name] = edges
    return graph


def test_graph_sees_the_package():
    graph = import_graph()
    assert "alphafree_d2.modeling.meta_arch" in graph["alphafree_d2.modeling"]
    assert "alphafree_d2.data.datasets.demo" in graph["alphafree_d2.data.datasets.builtin"]
    assert len(graph) > 30


def _cycle(graph):
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as e:
        return e.args[1]
    return None


def test_package_imports_as_a_dag():
    cycle = _cycle(import_graph())
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_package_modules_import_each_other_relatively():
    # detectron2's convention inside a package: `from .x import` / `from ..x import`; the
    # absolute `alphafree_d2....` form is for tools, configs, examples, benchmarks and tests.
    absolute = []
    for name, (path, _) in _modules(PACKAGE_ROOT).items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            absolute += [
                f"{path.name}:{node.lineno}" for n in names if n.split(".")[0] == "alphafree_d2"
            ]
    assert absolute == []


def test_hidden_cycles_are_found(tmp_path):
    # A function-local import back into a package that imports this module: a cycle Python only
    # trips over at call time.
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from . import sub\n")
    (pkg / "sub" / "__init__.py").write_text("from .a import f\n")
    (pkg / "sub" / "a.py").write_text("def f():\n    return 1\n")
    (pkg / "b.py").write_text("from .sub import f as g\n")
    assert _cycle(import_graph(pkg)) is None
    (pkg / "sub" / "a.py").write_text("def f():\n    from pkg.b import g\n    return g\n")
    cycle = _cycle(import_graph(pkg))
    assert cycle is not None and {"pkg.b", "pkg.sub", "pkg.sub.a"} <= set(cycle)
